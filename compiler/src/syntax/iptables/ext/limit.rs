//! `-m limit --limit RATE --limit-burst N` (libxt_limit): the rate is stored as a period in 1/10000 s and
//! printed back in the largest unit that divides it (`print_rate`).
use super::*;

const SCALE: u64 = 10000;
const RATES: [(&str, u64); 4] = [
    ("day", SCALE * 24 * 60 * 60),
    ("hour", SCALE * 60 * 60),
    ("min", SCALE * 60),
    ("sec", SCALE),
];

/// The stored period of `N/unit`.
///
/// # Errors
/// `E0320` for a malformed rate, a zero or over-`u32` count, or a rate faster than 10000/s.
pub fn parse_rate(s: &str) -> Result<u64, ValErr> {
    let bad = || {
        (
            "E0320",
            format!("invalid rate `{s}` (N/second, N/minute, N/hour or N/day)"),
        )
    };
    rate_period(s, SCALE, bad)
}

/// The period of a packet rate `N[/unit]` (unit `sec` by default) in units of `1/scale` seconds: the
/// parser `limit` and `hashlimit` share (they differ in scale and in the wording of `bad`).
///
/// # Errors
/// `bad()` for a malformed rate or unit; `E0320` "too fast" when the period rounds to 0.
pub fn rate_period(s: &str, scale: u64, bad: impl Fn() -> ValErr) -> Result<u64, ValErr> {
    let (n, unit) = s.split_once('/').unwrap_or((s, "sec"));
    let n: u64 = uint(n, u32::MAX as u64)
        .filter(|&n| n > 0)
        .ok_or_else(&bad)?;
    let mult = match unit {
        "s" | "sec" | "second" => scale,
        "m" | "min" | "minute" => scale * 60,
        "h" | "hour" => scale * 60 * 60,
        "d" | "day" => scale * 24 * 60 * 60,
        _ => return Err(bad()),
    };
    let period = mult / n;
    if period == 0 {
        return Err(("E0320", format!("rate `{s}` is too fast")));
    }
    Ok(period)
}

/// A limit period (1/10000 s per packet, as `parse_rate` stores it) as libxt_limit's `print_rate`
/// writes it: `N/unit` (N rounded down), going from `day` to `hour`, `min`, `sec` while the period is at
/// most one next unit and the rounding remainder in it stays below the quotient.
pub fn fmt_rate(period: u64) -> String {
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

fn p_rate(a: &[&str], _: Family) -> Result<Val, ValErr> {
    Ok(Val::Num(parse_rate(a[0])?))
}
fn p_burst(a: &[&str], _: Family) -> Result<Val, ValErr> {
    parse_uint(a, 10000, "burst")
}

static OPTS: [OptDef; 2] = [
    OptDef::new("limit", Arity::One, false, p_rate),
    OptDef::new("limit-burst", Arity::One, false, p_burst),
];

fn save(i: &Inst, out: &mut String) {
    let period = match i.get("limit") {
        Some(Given {
            val: Val::Num(p),
            neg,
            ..
        }) => {
            if *neg {
                out.push_str(" !");
            }
            *p
        }
        _ => SCALE * 60 * 60 / 3,
    };
    out.push_str(" --limit ");
    out.push_str(&fmt_rate(period));
    if let Some(Given {
        val: Val::Num(b), ..
    }) = i.get("limit-burst")
    {
        if *b != 5 {
            out.push_str(&format!(" --limit-burst {b}"));
        }
    }
}

pub static EXT: Ext = Ext {
    name: "limit",
    target: false,
    family: None,
    protos: &[],
    tables: &[],
    hooks: &[],
    opts: &OPTS,
    check: no_check,
    save,
};
