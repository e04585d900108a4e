//! `-m ecn --ecn-tcp-cwr --ecn-tcp-ece --ecn-ip-ect N` (the TCP flags need `-p tcp`).
use super::*;

fn flag(_: &[&str], _: Family) -> Result<Val, ValErr> {
    Ok(Val::Flag)
}
fn ect(a: &[&str], _: Family) -> Result<Val, ValErr> {
    parse_uint(a, 3, "ECT codepoint")
}

static OPTS: [OptDef; 3] = [
    OptDef::new("ecn-tcp-ece", Arity::Zero, true, flag),
    OptDef::new("ecn-tcp-cwr", Arity::Zero, true, flag),
    OptDef::new("ecn-ip-ect", Arity::One, true, ect),
];

fn check(i: &Inst, ctx: &RuleCtx) -> CheckResult {
    need_one(i, &["ecn-tcp-ece", "ecn-tcp-cwr", "ecn-ip-ect"])?;
    if (i.has("ecn-tcp-ece") || i.has("ecn-tcp-cwr")) && ctx.proto != (6, false) {
        return Err(("the ECN TCP flags need `-p tcp`".into(), None));
    }
    Ok(())
}

pub static EXT: Ext = Ext {
    name: "ecn",
    target: false,
    family: None,
    protos: &[],
    tables: &[],
    hooks: &[],
    opts: &OPTS,
    check,
    save: save_in_order,
};
