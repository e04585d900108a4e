//! `-j AUDIT --type accept|drop|reject`.
use super::*;

fn parse(a: &[&str], _: Family) -> Result<Val, ValErr> {
    match a[0] {
        "accept" | "drop" | "reject" => Ok(Val::Word(a[0].to_string())),
        _ => Err((
            "E0320",
            format!("unknown audit type `{}` (accept, drop or reject)", a[0]),
        )),
    }
}

static OPTS: [OptDef; 1] = [OptDef::new("type", Arity::One, false, parse)];

fn check(i: &Inst, _: &RuleCtx) -> CheckResult {
    need_one(i, &["type"])
}

pub static EXT: Ext = Ext {
    name: "AUDIT",
    target: true,
    family: None,
    protos: &[],
    tables: &[],
    hooks: &[],
    opts: &OPTS,
    check,
    save: save_in_order,
};
