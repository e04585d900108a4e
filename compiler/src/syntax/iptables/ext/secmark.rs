//! `-j SECMARK --selctx CONTEXT` (security and mangle tables; printed without quoting, as iptables-save does).
use super::*;

fn parse(a: &[&str], _: Family) -> Result<Val, ValErr> {
    if a[0].is_empty() || a[0].len() > 255 {
        return Err((
            "E0320",
            "invalid security context (1-255 characters)".into(),
        ));
    }
    Ok(Val::Word(a[0].to_string()))
}

static OPTS: [OptDef; 1] = [OptDef::new("selctx", Arity::One, false, parse)];

fn check(i: &Inst, _: &RuleCtx) -> CheckResult {
    need_one(i, &["selctx"])
}

pub static EXT: Ext = Ext {
    name: "SECMARK",
    target: true,
    family: None,
    protos: &[],
    tables: &["security", "mangle"],
    hooks: &[],
    opts: &OPTS,
    check,
    save: save_in_order,
};
