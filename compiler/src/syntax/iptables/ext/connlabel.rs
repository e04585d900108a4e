//! `-m connlabel --label N [--set]` (label numbers 0-127; names from connlabel.conf are not looked up;
//! the label is always printed double-quoted).
use super::*;

fn label(a: &[&str], _: Family) -> Result<Val, ValErr> {
    match uint(a[0], 127) {
        Some(n) => Ok(Val::Num(n)),
        None => Err((
            "E0320",
            format!(
                "invalid label `{}` (a number 0-127; names from connlabel.conf are not looked up)",
                a[0]
            ),
        )),
    }
}
fn flag(_: &[&str], _: Family) -> Result<Val, ValErr> {
    Ok(Val::Flag)
}

static OPTS: [OptDef; 2] = [
    OptDef::new("label", Arity::One, true, label),
    OptDef::new("set", Arity::Zero, false, flag),
];

fn check(i: &Inst, _: &RuleCtx) -> CheckResult {
    need_one(i, &["label"])
}

fn save(i: &Inst, out: &mut String) {
    if let Some(g) = i.get("label") {
        if let Val::Num(n) = g.val {
            opt_head(out, g);
            out.push_str(&format!(" \"{n}\""));
        }
    }
    if i.has("set") {
        out.push_str(" --set");
    }
}

pub static EXT: Ext = Ext {
    name: "connlabel",
    target: false,
    family: None,
    protos: &[],
    tables: &[],
    hooks: &[],
    opts: &OPTS,
    check,
    save,
};
