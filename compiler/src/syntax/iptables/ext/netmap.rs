//! `-j NETMAP --to ADDR[/LEN]` (nat): the network is printed with its prefix, `/32` (`/128`) added.
use super::*;
use crate::syntax::iptables::values::{fmt_addr, parse_addr_any};

fn to(a: &[&str], f: Family) -> Result<Val, ValErr> {
    let n = parse_addr_any(a[0], f).map_err(|e| ("E0320", e.to_string()))?;
    Ok(Val::Word(fmt_addr(&n)))
}

static OPTS: [OptDef; 1] = [OptDef::new("to", Arity::One, false, to)];

fn check(i: &Inst, _: &RuleCtx) -> CheckResult {
    need_one(i, &["to"])
}

pub static EXT: Ext = Ext {
    name: "NETMAP",
    target: true,
    family: None,
    protos: &[],
    tables: &["nat"],
    hooks: &[],
    opts: &OPTS,
    check,
    save: save_in_order,
};
