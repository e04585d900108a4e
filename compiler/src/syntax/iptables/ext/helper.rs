//! `-m helper --helper NAME` (the conntrack helper of the connection).
use super::*;

fn parse(a: &[&str], _: Family) -> Result<Val, ValErr> {
    if a[0].is_empty() || a[0].len() > 29 {
        return Err((
            "E0320",
            format!("invalid helper name `{}` (1-29 characters)", a[0]),
        ));
    }
    Ok(Val::Text(a[0].to_string()))
}

static OPTS: [OptDef; 1] = [OptDef::new("helper", Arity::One, true, parse)];

fn check(i: &Inst, _: &RuleCtx) -> CheckResult {
    need_one(i, &["helper"])
}

pub static EXT: Ext = Ext {
    name: "helper",
    target: false,
    family: None,
    protos: &[],
    tables: &[],
    hooks: &[],
    opts: &OPTS,
    check,
    save: save_in_order,
};
