//! `-m osf --genre NAME [--ttl 0|1|2] [--log 0|1|2]` (passive OS fingerprinting; needs `-p tcp`).
use super::*;

fn genre(a: &[&str], _: Family) -> Result<Val, ValErr> {
    if a[0].is_empty() || a[0].len() > 32 {
        return Err((
            "E0320",
            format!("invalid genre `{}` (1-32 characters)", a[0]),
        ));
    }
    Ok(Val::Word(a[0].to_string()))
}
fn level(a: &[&str], _: Family) -> Result<Val, ValErr> {
    parse_uint(a, 2, "level")
}

static OPTS: [OptDef; 3] = [
    OptDef::new("genre", Arity::One, true, genre),
    OptDef::new("ttl", Arity::One, false, level),
    OptDef::new("log", Arity::One, false, level),
];

fn check(i: &Inst, _: &RuleCtx) -> CheckResult {
    need_one(i, &["genre"])
}

pub static EXT: Ext = Ext {
    name: "osf",
    target: false,
    family: Some(Family::V4),
    protos: &[6],
    tables: &[],
    hooks: &[],
    opts: &OPTS,
    check,
    save: save_in_order,
};
