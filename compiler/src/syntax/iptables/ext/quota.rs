//! `-m quota --quota BYTES`.
use super::*;

fn parse(a: &[&str], _: Family) -> Result<Val, ValErr> {
    parse_uint(a, u64::MAX, "quota")
}

static OPTS: [OptDef; 1] = [OptDef::new("quota", Arity::One, true, parse)];

fn check(i: &Inst, _: &RuleCtx) -> CheckResult {
    need_one(i, &["quota"])
}

pub static EXT: Ext = Ext {
    name: "quota",
    target: false,
    family: None,
    protos: &[],
    tables: &[],
    hooks: &[],
    opts: &OPTS,
    check,
    save: save_in_order,
};
