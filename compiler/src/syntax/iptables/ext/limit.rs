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

/// The stored period of `N/unit` (libxt_limit's `parse_rate`): `XT_LIMIT_SCALE * unit / N` in 32-bit
/// arithmetic, N read by `atoi` and cast to `uint32_t` (so `10é00/day` is 10/day, `4294967297/sec` is
/// 1/sec and `-3/sec` is too fast).
///
/// # Errors
/// `E0320` for an unknown or empty unit or a count that reads as 0; "too fast" when the period rounds
/// to 0.
pub fn parse_rate(s: &str) -> Result<u64, ValErr> {
    let bad = || {
        (
            "E0320",
            format!("invalid rate `{s}` (N/second, N/minute, N/hour or N/day)"),
        )
    };
    let unit = rate_unit(s).ok_or_else(bad)?;
    let n = values::atoi(s) as u32;
    if n == 0 {
        return Err(bad());
    }
    // XT_LIMIT_SCALE * mult fits in 32 bits (at most 864,000,000 for a day).
    let period = (SCALE as u32 * unit as u32) / n;
    if period == 0 {
        return Err(("E0320", format!("rate `{s}` is too fast")));
    }
    Ok(u64::from(period))
}

/// The unit of a rate `N[/unit]` in seconds, as libxt_limit's and libxt_hashlimit's `parse_rate` read
/// it: the text after the first `/` is any case-insensitive prefix of `second`, `minute`, `hour` or
/// `day`, tried in that order (`/m` is a minute, `/MINU` too); no `/` means seconds. `None` for an
/// empty or unknown unit.
pub fn rate_unit(s: &str) -> Option<u64> {
    let Some((_, unit)) = s.split_once('/') else {
        return Some(1);
    };
    if unit.is_empty() {
        return None;
    }
    [
        ("second", 1),
        ("minute", 60),
        ("hour", 60 * 60),
        ("day", 24 * 60 * 60),
    ]
    .into_iter()
    .find(|(name, _)| {
        name.len() >= unit.len()
            && name.as_bytes()[..unit.len()].eq_ignore_ascii_case(unit.as_bytes())
    })
    .map(|(_, secs)| secs)
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
