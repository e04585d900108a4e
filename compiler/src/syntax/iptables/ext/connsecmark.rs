//! `-j CONNSECMARK --save | --restore` (mangle, security).
use super::*;

fn flag(_: &[&str], _: Family) -> Result<Val, ValErr> {
    Ok(Val::Flag)
}

static OPTS: [OptDef; 2] = [
    OptDef::new("save", Arity::Zero, false, flag),
    OptDef::new("restore", Arity::Zero, false, flag),
];

fn check(i: &Inst, _: &RuleCtx) -> CheckResult {
    need_one(i, &["save", "restore"])?;
    exclusive(i, &["save", "restore"])
}

pub static EXT: Ext = Ext {
    name: "CONNSECMARK",
    target: true,
    family: None,
    protos: &[],
    tables: &["mangle", "security"],
    hooks: &[],
    opts: &OPTS,
    check,
    save: save_in_order,
};
