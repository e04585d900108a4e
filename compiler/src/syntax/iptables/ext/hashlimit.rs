//! `-m hashlimit --hashlimit-upto|--hashlimit-above RATE --hashlimit-name NAME [--hashlimit-burst N]
//! [--hashlimit-mode srcip,srcport,dstip,dstport] [--hashlimit-srcmask N] [--hashlimit-dstmask N]
//! [--hashlimit-htable-size|-max|-gcinterval|-expire N] [--hashlimit-rate-match] [--hashlimit-rate-interval N]`
//! (revision 3). `! --hashlimit-upto R` is `--hashlimit-above R` and the reverse (libxt_hashlimit's
//! XT_HASHLIMIT_INVERT), printed as such. Packet rates (`N/sec`…) are stored as a period in 1/1000000 s
//! and printed back in the largest unit that divides them, with the burst (default 5) always printed; byte rates (`4kb/s`) are
//! validated and kept as written, their burst printed only when given.
use super::*;

const SCALE: u64 = 1_000_000;
const RATES: [(&str, u64); 4] = [
    ("day", SCALE * 24 * 60 * 60),
    ("hour", SCALE * 60 * 60),
    ("min", SCALE * 60),
    ("sec", SCALE),
];

/// `N[b|kb|mb]` (a byte amount).
fn is_bytes(s: &str) -> bool {
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &s[digits.len()..];
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && matches!(unit, "b" | "kb" | "mb")
}

fn rate(a: &[&str], _: Family) -> Result<Val, ValErr> {
    let s = a[0];
    let bad = || {
        (
            "E0320",
            format!("invalid rate `{s}` (N/sec|min|hour|day or N[b|kb|mb]/s)"),
        )
    };
    if let Some(b) = s.strip_suffix("/s") {
        if is_bytes(b) {
            return Ok(Val::Word(s.to_string()));
        }
    }
    Ok(Val::Num(super::limit::rate_period(s, SCALE, bad)?))
}

fn fmt_rate(period: u64) -> String {
    let mut i = 1;
    while i < RATES.len() {
        let m = RATES[i].1;
        if period > m || m / period < m % period {
            break;
        }
        i += 1;
    }
    format!("{}/{}", RATES[i - 1].1 / period, RATES[i - 1].0)
}

fn burst(a: &[&str], _: Family) -> Result<Val, ValErr> {
    if is_bytes(a[0]) {
        return Ok(Val::Word(a[0].to_string()));
    }
    parse_uint(a, u32::MAX as u64, "burst")
}
fn name(a: &[&str], _: Family) -> Result<Val, ValErr> {
    if a[0].is_empty() || a[0].len() > 255 {
        return Err((
            "E0320",
            format!("invalid name `{}` (1-255 characters)", a[0]),
        ));
    }
    Ok(Val::Word(a[0].to_string()))
}
const MODES: [(&str, u32); 4] = [("srcip", 1), ("srcport", 4), ("dstip", 2), ("dstport", 8)];
fn mode(a: &[&str], _: Family) -> Result<Val, ValErr> {
    Ok(Val::Bits(parse_bits(a[0], &MODES, "hashlimit mode")?))
}
fn u32v(a: &[&str], _: Family) -> Result<Val, ValErr> {
    parse_uint(a, u32::MAX as u64, "value")
}
fn mask(a: &[&str], f: Family) -> Result<Val, ValErr> {
    parse_uint(a, if f == Family::V4 { 32 } else { 128 }, "prefix length")
}
fn flag(_: &[&str], _: Family) -> Result<Val, ValErr> {
    Ok(Val::Flag)
}

static OPTS: [OptDef; 13] = [
    OptDef::new("hashlimit-upto", Arity::One, true, rate).aliases(&["hashlimit"]),
    OptDef::new("hashlimit-above", Arity::One, true, rate),
    OptDef::new("hashlimit-burst", Arity::One, false, burst),
    OptDef::new("hashlimit-mode", Arity::One, false, mode),
    OptDef::new("hashlimit-name", Arity::One, false, name),
    OptDef::new("hashlimit-htable-size", Arity::One, false, u32v),
    OptDef::new("hashlimit-htable-max", Arity::One, false, u32v),
    OptDef::new("hashlimit-htable-gcinterval", Arity::One, false, u32v),
    OptDef::new("hashlimit-htable-expire", Arity::One, false, u32v),
    OptDef::new("hashlimit-srcmask", Arity::One, false, mask),
    OptDef::new("hashlimit-dstmask", Arity::One, false, mask),
    OptDef::new("hashlimit-rate-match", Arity::Zero, false, flag),
    OptDef::new("hashlimit-rate-interval", Arity::One, false, u32v),
];

fn check(i: &Inst, _: &RuleCtx) -> CheckResult {
    need_one(i, &["hashlimit-upto", "hashlimit-above"])?;
    exclusive(i, &["hashlimit-upto", "hashlimit-above"])?;
    need_one(i, &["hashlimit-name"])?;
    let bytes = matches!(
        i.get("hashlimit-upto")
            .or(i.get("hashlimit-above"))
            .map(|g| &g.val),
        Some(Val::Word(_))
    );
    if let Some(g) = i.get("hashlimit-burst") {
        if matches!(g.val, Val::Word(_)) != bytes {
            return Err((
                "a byte burst (`400kb`) goes with a byte rate (`4kb/s`), a number with a packet rate".into(),
                Some("hashlimit-burst"),
            ));
        }
    }
    if i.has("hashlimit-rate-interval") && !i.has("hashlimit-rate-match") {
        return Err((
            "`--hashlimit-rate-interval` needs `--hashlimit-rate-match`".into(),
            Some("hashlimit-rate-interval"),
        ));
    }
    Ok(())
}

fn save(i: &Inst, out: &mut String) {
    let Some(r) = i.get("hashlimit-upto").or(i.get("hashlimit-above")) else {
        return;
    };
    // `! --hashlimit-upto` is `--hashlimit-above` and the reverse (libxt_hashlimit's XT_HASHLIMIT_INVERT).
    let name = match (r.name, r.neg) {
        ("hashlimit-upto", true) => "hashlimit-above",
        ("hashlimit-above", true) => "hashlimit-upto",
        (n, _) => n,
    };
    out.push_str(&format!(" --{name}"));
    match &r.val {
        Val::Num(p) => {
            out.push_str(&format!(" {}", fmt_rate(*p)));
            let b = match i.get("hashlimit-burst").map(|g| &g.val) {
                Some(Val::Num(b)) => *b,
                _ => 5,
            };
            out.push_str(&format!(" --hashlimit-burst {b}"));
        }
        v => {
            fmt_val(out, v);
            if let Some(g) = i.get("hashlimit-burst") {
                opt_head(out, g);
                fmt_val(out, &g.val);
            }
        }
    }
    if let Some(Given {
        val: Val::Bits(b), ..
    }) = i.get("hashlimit-mode")
    {
        out.push_str(" --hashlimit-mode ");
        out.push_str(&fmt_bits(*b, &MODES));
    }
    for def in &OPTS[4..] {
        if let Some(g) = i.get(def.name) {
            opt_head(out, g);
            fmt_val(out, &g.val);
        }
    }
}

pub static EXT: Ext = Ext {
    name: "hashlimit",
    target: false,
    family: None,
    protos: &[],
    tables: &[],
    hooks: &[],
    opts: &OPTS,
    check,
    save,
};
