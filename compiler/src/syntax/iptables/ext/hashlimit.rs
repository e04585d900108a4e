//! `-m hashlimit --hashlimit-upto|--hashlimit-above RATE --hashlimit-name NAME [--hashlimit-burst N]
//! [--hashlimit-mode srcip,srcport,dstip,dstport] [--hashlimit-srcmask N] [--hashlimit-dstmask N]
//! [--hashlimit-htable-size|-max|-gcinterval|-expire N] [--hashlimit-rate-match] [--hashlimit-rate-interval N]`
//! (revision 3). `! --hashlimit-upto R` is `--hashlimit-above R` and the reverse (libxt_hashlimit's
//! XT_HASHLIMIT_INVERT), printed as such. Packet rates (`N/sec`…) are stored as a period in 1/1000000 s
//! and printed back in the largest unit that divides them, with the burst (default 5) always printed;
//! byte rates (`4kb/s`) as libxt_hashlimit stores them, a cost (`bytes_to_cost`), and printed back from
//! it (`print_bytes`), their burst (a byte amount turned into a count of rates) only when given.
use super::*;

const SCALE: u64 = 1_000_000;
const RATES: [(&str, u64); 4] = [
    ("day", SCALE * 24 * 60 * 60),
    ("hour", SCALE * 60 * 60),
    ("min", SCALE * 60),
    ("sec", SCALE),
];

/// libxt_hashlimit's byte rates are kept as a cost in 32-bit units (`XT_HASHLIMIT_BYTE_SHIFT` 4).
const BYTE_SHIFT: u32 = 4;

/// `bytes_to_cost`: `UINT32_MAX / ((uint32_t)(bytes >> 4) + 1)`; `None` where C would divide by zero.
fn bytes_to_cost(bytes: u64) -> Option<u64> {
    let r = (bytes >> BYTE_SHIFT) as u32;
    r.checked_add(1).map(|d| u64::from(u32::MAX / d))
}

/// `cost_to_bytes`: the byte amount a cost stands for.
fn cost_to_bytes(cost: u64) -> u64 {
    let r = u64::from(u32::MAX)
        .checked_div(cost)
        .unwrap_or(u64::from(u32::MAX));
    r.wrapping_sub(1) << BYTE_SHIFT
}

/// The multiplier a unit letter gives (`get_factor`): `m` 1 MiB, `k` 1 KiB, anything else 1.
fn factor(c: Option<u8>) -> u64 {
    match c {
        Some(b'm') => 1024 * 1024,
        Some(b'k') => 1024,
        _ => 1,
    }
}

/// A byte rate's value: its cost, marked apart from a packet rate's period.
fn byte_rate(cost: u64) -> Val {
    Val::Pair(Box::new(Val::Flag), Box::new(Val::Num(cost)))
}

/// The cost of a byte rate made by [`byte_rate`].
fn as_byte_rate(v: &Val) -> Option<u64> {
    match v {
        Val::Pair(a, b) if **a == Val::Flag => match **b {
            Val::Num(c) => Some(c),
            _ => None,
        },
        _ => None,
    }
}

/// `--hashlimit-upto|above RATE` (revision 3): first libxt_hashlimit's `parse_bytes` — any text holding
/// `b/s` past its first byte, the count read by `atoll`, the letter before `b/s` its unit (`40mb/s x` is
/// 40 MiB/s) — then `parse_rate`: `N[/unit]`, N read by `atoll`.
fn rate(a: &[&str], _: Family) -> Result<Val, ValErr> {
    let s = a[0];
    let bad = || {
        (
            "E0320",
            format!("invalid rate `{s}` (N/sec|min|hour|day or N[b|kb|mb]/s)"),
        )
    };
    if let Some(at) = s.find("b/s").filter(|&at| at > 0) {
        let n = values::atoll(s) as u64;
        if n != 0 {
            let bytes = n.wrapping_mul(factor(s.as_bytes().get(at - 1).copied()));
            return match bytes_to_cost(bytes) {
                Some(cost) if cost != 0 => Ok(byte_rate(cost)),
                _ => Err(("E0320", format!("rate `{s}` is too high"))),
            };
        }
    }
    let unit = super::limit::rate_unit(s).ok_or_else(bad)?;
    let n = values::atoll(s) as u64;
    if n == 0 {
        return Err(bad());
    }
    match (SCALE * unit) / n {
        0 => Err(("E0320", format!("rate `{s}` is too fast"))),
        period => Ok(Val::Num(period)),
    }
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

/// The largest burst of a packet rate (`XT_HASHLIMIT_BURST_MAX`).
const BURST_MAX: u64 = 1_000_000;

/// `--hashlimit-burst` as libxt_hashlimit's `parse_burst` reads it: a number (base 0, at least 1, at
/// most 1,000,000 when nothing follows it), times the unit its next letter gives (`k`, `m`): a byte
/// amount for a byte rate, a packet count for a packet rate (checked against the rate in `check`).
fn burst(a: &[&str], _: Family) -> Result<Val, ValErr> {
    let s = a[0];
    let bad = || {
        (
            "E0320",
            format!("invalid burst `{s}` (a number 1-{BURST_MAX}, or a byte amount N[kb|mb])"),
        )
    };
    let (v, rest) = values::strtoul_prefix(s).ok_or_else(bad)?;
    if v == 0 || (rest.is_empty() && v > BURST_MAX) {
        return Err(bad());
    }
    Ok(Val::Num(v.wrapping_mul(factor(rest.bytes().next()))))
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
    let rate = i.get("hashlimit-upto").or(i.get("hashlimit-above"));
    let burst = i.get("hashlimit-burst").and_then(|g| match g.val {
        Val::Num(b) => Some(b),
        _ => None,
    });
    match (rate.and_then(|g| as_byte_rate(&g.val)), burst) {
        // libxt_hashlimit's final check: a byte burst is at least one rate's worth of bytes.
        (Some(cost), Some(b)) if b < cost_to_bytes(cost) => {
            return Err((
                format!("burst cannot be smaller than {}b", cost_to_bytes(cost)),
                Some("hashlimit-burst"),
            ))
        }
        (None, Some(b)) if b > BURST_MAX => {
            return Err((
                format!(
                    "bad value for option \"--hashlimit-burst\", or out of range (1-{BURST_MAX})"
                ),
                Some("hashlimit-burst"),
            ))
        }
        _ => {}
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
    let burst = i.get("hashlimit-burst").and_then(|g| match g.val {
        Val::Num(b) => Some(b),
        _ => None,
    });
    if let Some(cost) = as_byte_rate(&r.val) {
        print_bytes(out, cost, burst);
    } else if let Val::Num(p) = r.val {
        out.push_str(&format!(" {}", fmt_rate(p)));
        out.push_str(&format!(" --hashlimit-burst {}", burst.unwrap_or(5)));
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

/// libxt_hashlimit's `print_bytes` after its final check: the rate in the largest unit (`mb`, `kb`, `b`)
/// that reads back as the same cost; the burst, given as bytes, became a count of rates rounded up
/// (from the byte amount cut to 32 bits, as the check's `uint32_t` does) and prints back as that many
/// rates' bytes in the largest unit it reaches.
fn print_bytes(out: &mut String, cost: u64, burst: Option<u64>) {
    const UNITS: [(&str, u64); 3] = [("m", 1024 * 1024), ("k", 1024), ("", 1)];
    let r = cost_to_bytes(cost);
    let i = (0..UNITS.len() - 1)
        .find(|&i| r >= UNITS[i].1 && bytes_to_cost(r & !(UNITS[i].1 - 1)) == Some(cost))
        .unwrap_or(UNITS.len() - 1);
    out.push_str(&format!(" {}{}b/s", r / UNITS[i].1, UNITS[i].0));
    let Some(b) = burst else {
        return;
    };
    let per = r.max(1);
    let mut count = u64::from(b as u32) / per;
    if b % per != 0 {
        count += 1;
    }
    let count = u64::from(count as u32);
    if count == 0 {
        return;
    }
    let bytes = r.wrapping_mul(count);
    let i = (0..UNITS.len() - 1)
        .find(|&i| bytes >= UNITS[i].1)
        .unwrap_or(UNITS.len() - 1);
    out.push_str(&format!(
        " --hashlimit-burst {}{}b",
        bytes / UNITS[i].1,
        UNITS[i].0
    ));
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
