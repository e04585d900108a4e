//! `-m iprange --src-range A[-B] --dst-range A[-B]` (addresses of the rule's family). A single address is
//! the range `A-A` (libxt_iprange's `iprange_parse_spec`), printed as such.
use super::*;
use crate::syntax::iptables::values::{fmt_ip, parse_ip};

fn range(a: &[&str], f: Family) -> Result<Val, ValErr> {
    let bad = || {
        (
            "E0320",
            format!("invalid address range `{}` (ADDR[-ADDR])", a[0]),
        )
    };
    let (lo, hi) = a[0].split_once('-').unwrap_or((a[0], a[0]));
    let (lo, hi) = (
        parse_ip(lo, f).ok_or_else(bad)?,
        parse_ip(hi, f).ok_or_else(bad)?,
    );
    Ok(Val::Word(format!("{}-{}", fmt_ip(lo), fmt_ip(hi))))
}

static OPTS: [OptDef; 2] = [
    OptDef::new("src-range", Arity::One, true, range),
    OptDef::new("dst-range", Arity::One, true, range),
];

fn check(i: &Inst, _: &RuleCtx) -> CheckResult {
    need_one(i, &["src-range", "dst-range"])
}

pub static EXT: Ext = Ext {
    name: "iprange",
    target: false,
    family: None,
    protos: &[],
    tables: &[],
    hooks: &[],
    opts: &OPTS,
    check,
    save: save_in_order,
};
