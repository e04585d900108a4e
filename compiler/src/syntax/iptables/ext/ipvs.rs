//! `-m ipvs [--ipvs] [--vproto P] [--vaddr A[/M]] [--vport P] [--vdir ORIGINAL|REPLY] [--vmethod
//! GATE|IPIP|MASQ] [--vportctl P]`. The protocol prints as a number, ports as numbers, the address as
//! written with its mask as a prefix length (a host address without one).
use super::*;
use crate::syntax::iptables::values::{fmt_ip, parse_ip};

fn flag(_: &[&str], _: Family) -> Result<Val, ValErr> {
    Ok(Val::Flag)
}
fn proto(a: &[&str], _: Family) -> Result<Val, ValErr> {
    match crate::syntax::iptables::values::parse_proto(a[0]) {
        Ok(crate::syntax::iptables::values::Proto::Number(n)) => Ok(Val::Num(n as u64)),
        Ok(_) => Ok(Val::Num(0)),
        Err(e) => Err(("E0303", e.to_string())),
    }
}
fn addr(a: &[&str], f: Family) -> Result<Val, ValErr> {
    let s = a[0];
    let bad = || ("E0301", format!("invalid address `{s}`"));
    let (host, mask) = match s.split_once('/') {
        Some((h, m)) => (h, Some(m)),
        None => (s, None),
    };
    let ip = parse_ip(host, f).ok_or_else(bad)?;
    let max = if f == Family::V4 { 32 } else { 128 };
    let len = match mask {
        None => max,
        Some(m) => match uint(m, max) {
            Some(l) => l,
            None => {
                let mk = parse_ip(m, f).ok_or_else(bad)?;
                let bits: u128 = match mk {
                    std::net::IpAddr::V4(v) => (u32::from(v) as u128) << 96,
                    std::net::IpAddr::V6(v) => u128::from(v),
                };
                let l = bits.leading_ones() as u64;
                if bits.checked_shl(l as u32).unwrap_or(0) != 0 {
                    return Err(bad());
                }
                l
            }
        },
    };
    Ok(Val::Word(if len == max {
        fmt_ip(ip)
    } else {
        format!("{}/{len}", fmt_ip(ip))
    }))
}
fn port(a: &[&str], _: Family) -> Result<Val, ValErr> {
    port_or_service(a[0])
        .map(Val::Num)
        .ok_or_else(|| num_err("port", a[0], 65535))
}
fn dir(a: &[&str], _: Family) -> Result<Val, ValErr> {
    match a[0] {
        "ORIGINAL" | "REPLY" => Ok(Val::Word(a[0].to_string())),
        _ => Err((
            "E0320",
            format!("unknown direction `{}` (ORIGINAL or REPLY)", a[0]),
        )),
    }
}
fn method(a: &[&str], _: Family) -> Result<Val, ValErr> {
    match a[0] {
        "GATE" | "IPIP" | "MASQ" => Ok(Val::Word(a[0].to_string())),
        _ => Err((
            "E0320",
            format!("unknown method `{}` (GATE, IPIP or MASQ)", a[0]),
        )),
    }
}

static OPTS: [OptDef; 7] = [
    OptDef::new("ipvs", Arity::Zero, true, flag),
    OptDef::new("vproto", Arity::One, true, proto),
    OptDef::new("vaddr", Arity::One, true, addr),
    OptDef::new("vport", Arity::One, true, port),
    OptDef::new("vdir", Arity::One, false, dir),
    OptDef::new("vmethod", Arity::One, true, method),
    OptDef::new("vportctl", Arity::One, true, port),
];

fn check(i: &Inst, _: &RuleCtx) -> CheckResult {
    if i.given.is_empty() {
        return Err(("`ipvs` needs at least one option".into(), None));
    }
    Ok(())
}

pub static EXT: Ext = Ext {
    name: "ipvs",
    target: false,
    family: None,
    protos: &[],
    tables: &[],
    hooks: &[],
    opts: &OPTS,
    check,
    save: save_in_order,
};
