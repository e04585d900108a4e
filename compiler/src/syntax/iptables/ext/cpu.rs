//! `-m cpu --cpu N`.
use super::*;

fn parse(a: &[&str], _: Family) -> Result<Val, ValErr> {
    parse_uint(a, u32::MAX as u64, "CPU number")
}

static OPTS: [OptDef; 1] = [OptDef::new("cpu", Arity::One, true, parse)];

fn check(i: &Inst, _: &RuleCtx) -> CheckResult {
    need_one(i, &["cpu"])
}

pub static EXT: Ext = Ext {
    name: "cpu",
    target: false,
    family: None,
    protos: &[],
    tables: &[],
    hooks: &[],
    opts: &OPTS,
    check,
    save: save_in_order,
};
