//! `-m tcpmss --mss N[:M]` (needs `-p tcp`).
use super::*;

fn mss(a: &[&str], _: Family) -> Result<Val, ValErr> {
    let (lo, hi) = parse_range(a[0], 65535, ':', "MSS")?;
    Ok(Val::Range(lo, hi))
}

static OPTS: [OptDef; 1] = [OptDef::new("mss", Arity::One, true, mss)];

fn check(i: &Inst, _: &RuleCtx) -> CheckResult {
    need_one(i, &["mss"])
}

pub static EXT: Ext = Ext {
    name: "tcpmss",
    target: false,
    family: None,
    protos: &[6],
    tables: &[],
    hooks: &[],
    opts: &OPTS,
    check,
    save: save_in_order,
};
