//! `-m length --length N[:M]`.
use super::*;

fn parse(a: &[&str], _: Family) -> Result<Val, ValErr> {
    let (lo, hi) = parse_range(a[0], 65535, ':', "length")?;
    Ok(Val::Range(lo, hi))
}

static OPTS: [OptDef; 1] = [OptDef::new("length", Arity::One, true, parse)];

fn check(i: &Inst, _: &RuleCtx) -> Result<(), (String, Option<&'static str>)> {
    need_one(i, &["length"])
}

pub static EXT: Ext = Ext {
    name: "length",
    target: false,
    family: None,
    protos: &[],
    tables: &[],
    hooks: &[],
    opts: &OPTS,
    check,
    save: save_in_order,
};
