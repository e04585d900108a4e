//! `-j IDLETIMER --timeout SECONDS --label NAME [--alarm]` (both required).
use super::*;

fn secs(a: &[&str], _: Family) -> Result<Val, ValErr> {
    parse_uint(a, u32::MAX as u64, "timeout")
}
fn label(a: &[&str], _: Family) -> Result<Val, ValErr> {
    if a[0].is_empty() || a[0].len() > 27 {
        return Err((
            "E0320",
            format!("invalid label `{}` (1-27 characters)", a[0]),
        ));
    }
    Ok(Val::Word(a[0].to_string()))
}
fn flag(_: &[&str], _: Family) -> Result<Val, ValErr> {
    Ok(Val::Flag)
}

static OPTS: [OptDef; 3] = [
    OptDef::new("timeout", Arity::One, false, secs),
    OptDef::new("label", Arity::One, false, label),
    OptDef::new("alarm", Arity::Zero, false, flag),
];

fn check(i: &Inst, _: &RuleCtx) -> CheckResult {
    need_one(i, &["timeout"])?;
    need_one(i, &["label"])
}

pub static EXT: Ext = Ext {
    name: "IDLETIMER",
    target: true,
    family: None,
    protos: &[],
    tables: &[],
    hooks: &[],
    opts: &OPTS,
    check,
    save: save_in_order,
};
