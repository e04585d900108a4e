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
/// The pattern's bytes as the value: lowercase hex, two digits a byte (the pattern need not be UTF-8).
fn pattern_val(bytes: &[u8]) -> Result<Val, ValErr> {
    if bytes.is_empty() || bytes.len() > MAX_PATTERN {
        return Err((
            "E0320",
            format!(
                "the pattern must be 1-{MAX_PATTERN} bytes (it is {})",
                bytes.len()
            ),
        ));
    }
    Ok(Val::Word(
        bytes.iter().map(|b| format!("{b:02x}")).collect(),
    ))
}

fn text(a: &[&str], _: Family) -> Result<Val, ValErr> {
    pattern_val(a[0].as_bytes())
}

/// libxt_string's `parse_hex_string`: text, `\c` for a literal byte outside hex blocks, and `|…|` blocks
/// of two-digit hex bytes, each optionally followed by one space (spaces right after the opening `|`
/// are skipped).
fn hex(a: &[&str], _: Family) -> Result<Val, ValErr> {
    let s = a[0].as_bytes();
    let bad = |why: &str| ("E0320", format!("invalid hex string `{}`: {why}", a[0]));
    let (mut out, mut i, mut in_hex) = (Vec::new(), 0, false);
    while i < s.len() {
        match s[i] {
            b'\\' if in_hex => return Err(bad("cannot include literals in hex data")),
            b'\\' => {
                let c = *s
                    .get(i + 1)
                    .ok_or_else(|| bad("bad literal placement at end of string"))?;
                out.push(c);
                i += 2;
            }
            b'|' => {
                in_hex = !in_hex;
                i += 1;
                if in_hex {
                    while s.get(i) == Some(&b' ') {
                        i += 1;
                    }
                }
            }
            _ if in_hex => {
                if i + 1 >= s.len() {
                    return Err(bad("odd number of hex digits"));
                }
                if i + 2 >= s.len() {
                    return Err(bad("invalid hex block"));
                }
                let pair = std::str::from_utf8(&s[i..i + 2])
                    .ok()
                    .filter(|p| p.bytes().all(|b| b.is_ascii_hexdigit()));
                let byte = pair
                    .and_then(|p| u8::from_str_radix(p, 16).ok())
                    .ok_or_else(|| bad("invalid hex char"))?;
                out.push(byte);
                i += if s[i + 2] == b' ' { 3 } else { 2 };
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
        if out.len() > MAX_PATTERN {
            return Err(bad("STRING too long"));
        }
    }
    pattern_val(&out)
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

/// libxt_string's save: a pattern with any byte that is not printable ASCII (`isprint`) is printed as
/// `--hex-string "|…|"`, else as `--string "…"` with `"` and `\\` escaped — whichever option gave it.
fn save(i: &Inst, out: &mut String) {
    if let Some(
        g @ Given {
            val: Val::Word(h), ..
        },
    ) = i.get("string").or(i.get("hex-string"))
    {
        let bytes: Vec<u8> = (0..h.len() / 2)
            .filter_map(|k| u8::from_str_radix(&h[2 * k..2 * k + 2], 16).ok())
            .collect();
        if g.neg {
            out.push_str(" !");
        }
        if bytes.iter().all(|b| (0x20..=0x7e).contains(b)) {
            out.push_str(" --string \"");
            for &b in &bytes {
                if matches!(b, b'"' | b'\\') {
                    out.push('\\');
                }
                out.push(b as char);
            }
        } else {
            out.push_str(" --hex-string \"|");
            out.push_str(h);
            out.push('|');
        }
        out.push('"');
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
