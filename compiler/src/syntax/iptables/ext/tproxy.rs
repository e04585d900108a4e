//! `-j TPROXY --on-port N [--on-ip ADDR] [--tproxy-mark V[/M]]` (mangle PREROUTING, needs `-p tcp|udp`;
//! the mark is printed as `0xV/0xM`).
use super::*;
use crate::syntax::iptables::values::{fmt_ip, parse_ip};

fn port(a: &[&str], _: Family) -> Result<Val, ValErr> {
    port_or_service(a[0])
        .map(Val::Num)
        .ok_or_else(|| num_err("port", a[0], 65535))
}
fn ip(a: &[&str], f: Family) -> Result<Val, ValErr> {
    parse_ip(a[0], f)
        .map(|ip| Val::Word(fmt_ip(ip)))
        .ok_or_else(|| ("E0320", format!("invalid address `{}`", a[0])))
}
fn mark(a: &[&str], _: Family) -> Result<Val, ValErr> {
    let s = a[0];
    let m = u32::MAX as u64;
    let bad = || ("E0320", format!("invalid mark `{s}` (VALUE[/MASK])"));
    match s.split_once('/') {
        Some((v, k)) => Ok(Val::Masked(
            uint(v, m).ok_or_else(bad)?,
            uint(k, m).ok_or_else(bad)?,
        )),
        None => Ok(Val::Masked(uint(s, m).ok_or_else(bad)?, m)),
    }
}

static OPTS: [OptDef; 3] = [
    OptDef::new("on-port", Arity::One, false, port),
    OptDef::new("on-ip", Arity::One, false, ip),
    OptDef::new("tproxy-mark", Arity::One, false, mark),
];

fn check(i: &Inst, _: &RuleCtx) -> CheckResult {
    need_one(i, &["on-port"])
}

pub static EXT: Ext = Ext {
    name: "TPROXY",
    target: true,
    family: None,
    protos: &[6, 17],
    tables: &["mangle"],
    hooks: &["PREROUTING"],
    opts: &OPTS,
    check,
    save: save_in_order,
};
