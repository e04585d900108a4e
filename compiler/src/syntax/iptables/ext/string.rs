//! `-m string --algo bm|kmp --string TEXT | --hex-string |HEX| [--from N] [--to N] [--icase]` (pattern
//! at most 128 bytes). iptables-save always double-quotes the pattern.
use super::*;

const MAX_PATTERN: usize = 128;

fn algo(a: &[&str], _: Family) -> Result<Val, ValErr> {
    match a[0] {
        "bm" | "kmp" => Ok(Val::Word(a[0].to_string())),
        _ => Err(("E0320", format!("unknown algorithm `{}` (bm or kmp)", a[0]))),
    }
}
fn text(a: &[&str], _: Family) -> Result<Val, ValErr> {
    if a[0].is_empty() || a[0].len() > MAX_PATTERN {
        return Err((
            "E0320",
            format!(
                "the pattern must be 1-{MAX_PATTERN} bytes (it is {})",
                a[0].len()
            ),
        ));
    }
    Ok(Val::Text(a[0].to_string()))
}
/// `|0a 0b|`-style hex parts mixed with text; validated and kept as written.
fn hex(a: &[&str], _: Family) -> Result<Val, ValErr> {
    let s = a[0];
    let mut len = 0;
    for (k, part) in s.split('|').enumerate() {
        if k % 2 == 1 {
            let digits: String = part.chars().filter(|c| *c != ' ').collect();
            if !digits.len().is_multiple_of(2) || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(("E0320", format!("invalid hex string `{s}`")));
            }
            len += digits.len() / 2;
        } else {
            len += part.len();
        }
    }
    if !s.matches('|').count().is_multiple_of(2) || len == 0 || len > MAX_PATTERN {
        return Err(("E0320", format!("invalid hex string `{s}`")));
    }
    Ok(Val::Text(s.to_string()))
}
fn offset(a: &[&str], _: Family) -> Result<Val, ValErr> {
    parse_uint(a, 65535, "offset")
}
fn flag(_: &[&str], _: Family) -> Result<Val, ValErr> {
    Ok(Val::Flag)
}

static OPTS: [OptDef; 6] = [
    OptDef::new("string", Arity::One, true, text),
    OptDef::new("hex-string", Arity::One, true, hex),
    OptDef::new("algo", Arity::One, false, algo),
    OptDef::new("from", Arity::One, false, offset),
    OptDef::new("to", Arity::One, false, offset),
    OptDef::new("icase", Arity::Zero, false, flag),
];

fn check(i: &Inst, _: &RuleCtx) -> CheckResult {
    need_one(i, &["string", "hex-string"])?;
    exclusive(i, &["string", "hex-string"])?;
    need_one(i, &["algo"])
}

fn save(i: &Inst, out: &mut String) {
    for n in ["string", "hex-string"] {
        if let Some(g) = i.get(n) {
            if let Val::Text(t) = &g.val {
                opt_head(out, g);
                out.push_str(" \"");
                for c in t.chars() {
                    if n == "string" && matches!(c, '"' | '\\') {
                        out.push('\\');
                    }
                    out.push(c);
                }
                out.push('"');
            }
        }
    }
    if let Some(g) = i.get("algo") {
        opt_head(out, g);
        fmt_val(out, &g.val);
    }
    if let Some(Given {
        val: Val::Num(n), ..
    }) = i.get("from")
    {
        if *n != 0 {
            out.push_str(&format!(" --from {n}"));
        }
    }
    if let Some(Given {
        val: Val::Num(n), ..
    }) = i.get("to")
    {
        if *n != 65535 {
            out.push_str(&format!(" --to {n}"));
        }
    }
    if i.has("icase") {
        out.push_str(" --icase");
    }
}

pub static EXT: Ext = Ext {
    name: "string",
    target: false,
    family: None,
    protos: &[],
    tables: &[],
    hooks: &[],
    opts: &OPTS,
    check,
    save,
};
