//! `-j TEE --gateway ADDR [--oif IFACE]`.
use super::*;
use crate::syntax::iptables::values::{fmt_ip, parse_ip};

fn gw(a: &[&str], f: Family) -> Result<Val, ValErr> {
    parse_ip(a[0], f)
        .map(|ip| Val::Word(fmt_ip(ip)))
        .ok_or_else(|| ("E0320", format!("invalid gateway address `{}`", a[0])))
}
fn oif(a: &[&str], _: Family) -> Result<Val, ValErr> {
    if a[0].is_empty() || a[0].len() > 15 {
        return Err(("E0320", format!("invalid interface `{}`", a[0])));
    }
    Ok(Val::Word(a[0].to_string()))
}

static OPTS: [OptDef; 2] = [
    OptDef::new("gateway", Arity::One, false, gw),
    OptDef::new("oif", Arity::One, false, oif),
];

fn check(i: &Inst, _: &RuleCtx) -> CheckResult {
    need_one(i, &["gateway"])
}

pub static EXT: Ext = Ext {
    name: "TEE",
    target: true,
    family: None,
    protos: &[],
    tables: &[],
    hooks: &[],
    opts: &OPTS,
    check,
    save: save_in_order,
};
