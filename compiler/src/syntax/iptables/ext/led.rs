//! `-j LED --led-trigger-id NAME [--led-delay MS|inf] [--led-always-blink]` (the id is always printed
//! double-quoted, as iptables-save does).
use super::*;

fn id(a: &[&str], _: Family) -> Result<Val, ValErr> {
    if a[0].is_empty() || a[0].len() > 26 {
        return Err((
            "E0320",
            format!("invalid trigger id `{}` (1-26 characters)", a[0]),
        ));
    }
    Ok(Val::Word(a[0].to_string()))
}
fn delay(a: &[&str], _: Family) -> Result<Val, ValErr> {
    if a[0] == "inf" {
        return Ok(Val::Word("inf".into()));
    }
    parse_uint(a, u32::MAX as u64, "delay")
}
fn flag(_: &[&str], _: Family) -> Result<Val, ValErr> {
    Ok(Val::Flag)
}

static OPTS: [OptDef; 3] = [
    OptDef::new("led-trigger-id", Arity::One, false, id),
    OptDef::new("led-delay", Arity::One, false, delay),
    OptDef::new("led-always-blink", Arity::Zero, false, flag),
];

fn check(i: &Inst, _: &RuleCtx) -> CheckResult {
    need_one(i, &["led-trigger-id"])
}

fn save(i: &Inst, out: &mut String) {
    if let Some(Given {
        val: Val::Word(w), ..
    }) = i.get("led-trigger-id")
    {
        out.push_str(&format!(" --led-trigger-id \"{w}\""));
    }
    if let Some(g) = i.get("led-delay") {
        opt_head(out, g);
        fmt_val(out, &g.val);
    }
    if i.has("led-always-blink") {
        out.push_str(" --led-always-blink");
    }
}

pub static EXT: Ext = Ext {
    name: "LED",
    target: true,
    family: None,
    protos: &[],
    tables: &[],
    hooks: &[],
    opts: &OPTS,
    check,
    save,
};
