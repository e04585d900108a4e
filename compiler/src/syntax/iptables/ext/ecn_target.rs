//! `-j ECN --ecn-tcp-remove | --ecn-tcp-cwr N | --ecn-tcp-ece N | --ecn-ip-ect N` (IPv4 mangle; the TCP
//! options need `-p tcp`).
use super::*;

fn flag(_: &[&str], _: Family) -> Result<Val, ValErr> {
    Ok(Val::Flag)
}
fn bit(a: &[&str], _: Family) -> Result<Val, ValErr> {
    parse_uint(a, 1, "flag value")
}
fn ect(a: &[&str], _: Family) -> Result<Val, ValErr> {
    parse_uint(a, 3, "ECT codepoint")
}

static OPTS: [OptDef; 4] = [
    OptDef::new("ecn-tcp-remove", Arity::Zero, false, flag),
    OptDef::new("ecn-tcp-cwr", Arity::One, false, bit),
    OptDef::new("ecn-tcp-ece", Arity::One, false, bit),
    OptDef::new("ecn-ip-ect", Arity::One, false, ect),
];

fn check(i: &Inst, ctx: &RuleCtx) -> CheckResult {
    need_one(
        i,
        &["ecn-tcp-remove", "ecn-tcp-cwr", "ecn-tcp-ece", "ecn-ip-ect"],
    )?;
    let tcp = ["ecn-tcp-remove", "ecn-tcp-cwr", "ecn-tcp-ece"]
        .iter()
        .any(|n| i.has(n));
    if tcp && ctx.proto != (6, false) {
        return Err(("the ECN TCP options need `-p tcp`".into(), None));
    }
    Ok(())
}

pub static EXT: Ext = Ext {
    name: "ECN",
    target: true,
    family: Some(Family::V4),
    protos: &[],
    tables: &["mangle"],
    hooks: &[],
    opts: &OPTS,
    check,
    save: save_in_order,
};
