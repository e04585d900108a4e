//! `-j CLASSIFY --set-class MAJOR:MINOR` (mangle), printed as `%04x:%04x`.
use super::*;

fn parse(a: &[&str], _: Family) -> Result<Val, ValErr> {
    let bad = || {
        (
            "E0320",
            format!("invalid class `{}` (MAJOR:MINOR in hex)", a[0]),
        )
    };
    let (ma, mi) = a[0].split_once(':').ok_or_else(bad)?;
    let hex = |s: &str| u16::from_str_radix(s, 16).ok().filter(|_| !s.is_empty());
    let (ma, mi) = (hex(ma).ok_or_else(bad)?, hex(mi).ok_or_else(bad)?);
    Ok(Val::Word(format!("{ma:04x}:{mi:04x}")))
}

static OPTS: [OptDef; 1] = [OptDef::new("set-class", Arity::One, false, parse)];

fn check(i: &Inst, _: &RuleCtx) -> CheckResult {
    need_one(i, &["set-class"])
}

pub static EXT: Ext = Ext {
    name: "CLASSIFY",
    target: true,
    family: None,
    protos: &[],
    tables: &["mangle"],
    hooks: &[],
    opts: &OPTS,
    check,
    save: save_in_order,
};
