//! `-m nfacct --nfacct-name NAME` (whether the accounting object exists is kernel state and is not
//! checked).
use super::*;

fn name(a: &[&str], _: Family) -> Result<Val, ValErr> {
    if a[0].is_empty() || a[0].len() > 31 {
        return Err((
            "E0320",
            format!(
                "invalid accounting object name `{}` (1-31 characters)",
                a[0]
            ),
        ));
    }
    Ok(Val::Word(a[0].to_string()))
}

static OPTS: [OptDef; 1] = [OptDef::new("nfacct-name", Arity::One, false, name)];

fn check(i: &Inst, _: &RuleCtx) -> CheckResult {
    need_one(i, &["nfacct-name"])
}

pub static EXT: Ext = Ext {
    name: "nfacct",
    target: false,
    family: None,
    protos: &[],
    tables: &[],
    hooks: &[],
    opts: &OPTS,
    check,
    save: save_in_order,
};
