//! `-m u32 --u32 TESTS` (the test program is validated for its alphabet only and printed double-quoted).
use super::*;

fn tests(a: &[&str], _: Family) -> Result<Val, ValErr> {
    let ok = !a[0].trim().is_empty()
        && a[0]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b" &=:<>@,&^".contains(&b));
    if !ok {
        return Err(("E0320", format!("invalid u32 test `{}`", a[0])));
    }
    Ok(Val::Word(a[0].to_string()))
}

static OPTS: [OptDef; 1] = [OptDef::new("u32", Arity::One, true, tests)];

fn check(i: &Inst, _: &RuleCtx) -> CheckResult {
    need_one(i, &["u32"])
}

fn save(i: &Inst, out: &mut String) {
    if let Some(g) = i.get("u32") {
        if let Val::Word(w) = &g.val {
            opt_head(out, g);
            out.push_str(&format!(" \"{w}\""));
        }
    }
}

pub static EXT: Ext = Ext {
    name: "u32",
    target: false,
    family: None,
    protos: &[],
    tables: &[],
    hooks: &[],
    opts: &OPTS,
    check,
    save,
};
