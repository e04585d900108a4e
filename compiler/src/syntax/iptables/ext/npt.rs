//! `-j DNPT|SNPT --src-pfx PREFIX --dst-pfx PREFIX` (ip6tables mangle; both prefixes required, at most /64).
use super::*;
use crate::syntax::iptables::values::{fmt_addr, parse_addr_any};

fn pfx(a: &[&str], f: Family) -> Result<Val, ValErr> {
    let n = parse_addr_any(a[0], f).map_err(|e| ("E0320", e.to_string()))?;
    match n.prefix_len() {
        Some(l) if l <= 64 => Ok(Val::Word(fmt_addr(&n))),
        _ => Err(("E0320", format!("prefix `{}` must be at most /64", a[0]))),
    }
}

static OPTS: [OptDef; 2] = [
    OptDef::new("src-pfx", Arity::One, false, pfx),
    OptDef::new("dst-pfx", Arity::One, false, pfx),
];

fn check(i: &Inst, _: &RuleCtx) -> CheckResult {
    need_one(i, &["src-pfx"])?;
    need_one(i, &["dst-pfx"])
}

pub static DNPT: Ext = Ext {
    name: "DNPT",
    target: true,
    family: Some(Family::V6),
    protos: &[],
    tables: &["mangle"],
    hooks: &["PREROUTING", "OUTPUT"],
    opts: &OPTS,
    check,
    save: save_in_order,
};

pub static SNPT: Ext = Ext {
    name: "SNPT",
    target: true,
    family: Some(Family::V6),
    protos: &[],
    tables: &["mangle"],
    hooks: &["INPUT", "POSTROUTING"],
    opts: &OPTS,
    check,
    save: save_in_order,
};
