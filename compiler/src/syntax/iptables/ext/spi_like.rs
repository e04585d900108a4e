//! Shared helper for matches whose main option is a range that is not printed when it covers everything
//! (`--espspi`, `--ahspi`, `--ipcompspi`, `--mh-type`, `--fragid`, `--rt-segsleft`).
use super::*;

/// ` [!] --NAME A[:B]` unless the range is `0:max` and not negated.
pub fn save_range_unless_full(out: &mut String, g: &Given, max: u64) {
    if let Val::Range(a, b) = g.val {
        if a != 0 || b != max || g.neg {
            opt_head(out, g);
            fmt_range(out, a, b);
        }
    }
}

/// Every given option in declaration order, the u32 range option `range` left out when it covers
/// everything (`--fragid`, `--rt-segsleft`).
pub fn save_eliding_full_range(i: &Inst, out: &mut String, range: &str) {
    for def in i.ext.opts {
        let Some(g) = i.get(def.name) else { continue };
        if def.name == range {
            save_range_unless_full(out, g, u32::MAX as u64);
        } else {
            opt_head(out, g);
            fmt_val(out, &g.val);
        }
    }
}

pub fn u32_range(a: &[&str], _: Family) -> Result<Val, ValErr> {
    let (lo, hi) = parse_range(a[0], u32::MAX as u64, ':', "value")?;
    Ok(Val::Range(lo, hi))
}

pub fn u8_range(a: &[&str], _: Family) -> Result<Val, ValErr> {
    let (lo, hi) = parse_range(a[0], 255, ':', "type")?;
    Ok(Val::Range(lo, hi))
}

pub fn u32_num(a: &[&str], _: Family) -> Result<Val, ValErr> {
    parse_uint(a, u32::MAX as u64, "value")
}

pub fn flag(_: &[&str], _: Family) -> Result<Val, ValErr> {
    Ok(Val::Flag)
}
