//! `-m time [--timestart hh:mm[:ss]] [--timestop hh:mm[:ss]] [[!] --monthdays LIST] [[!] --weekdays LIST]
//! [--datestart DATE] [--datestop DATE] [--kerneltz|--localtz] [--contiguous]`. Times and dates are
//! printed in full (`01:02:00`, `2001-02-03T04:05:06`), days in calendar order.
use super::*;

const WEEKDAYS: [(&str, u32); 7] = [
    ("Mon", 1 << 1),
    ("Tue", 1 << 2),
    ("Wed", 1 << 3),
    ("Thu", 1 << 4),
    ("Fri", 1 << 5),
    ("Sat", 1 << 6),
    ("Sun", 1 << 7),
];

fn two(s: &str, max: u32) -> Option<u32> {
    (s.len() <= 2 && !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
        .filter(|&v| v <= max)
}

fn clock(s: &str) -> Option<String> {
    let p: Vec<&str> = s.split(':').collect();
    if !(2..=3).contains(&p.len()) {
        return None;
    }
    let h = two(p[0], 23)?;
    let m = two(p[1], 59)?;
    let sec = match p.get(2) {
        Some(x) => two(x, 59)?,
        None => 0,
    };
    Some(format!("{h:02}:{m:02}:{sec:02}"))
}

fn p_clock(a: &[&str], _: Family) -> Result<Val, ValErr> {
    clock(a[0])
        .map(Val::Word)
        .ok_or_else(|| ("E0320", format!("invalid time `{}` (hh:mm[:ss])", a[0])))
}

fn p_date(a: &[&str], _: Family) -> Result<Val, ValErr> {
    let s = a[0];
    let bad = || {
        (
            "E0320",
            format!("invalid date `{s}` (YYYY[-MM[-DD[Thh[:mm[:ss]]]]])"),
        )
    };
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let d: Vec<&str> = date.split('-').collect();
    if d.is_empty() || d.len() > 3 || d[0].len() != 4 || !d[0].bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let y: u32 = d[0].parse().map_err(|_| bad())?;
    if !(1970..=2038).contains(&y) {
        return Err(bad());
    }
    let mo = d
        .get(1)
        .map(|m| two(m, 12).filter(|&m| m >= 1))
        .unwrap_or(Some(1))
        .ok_or_else(bad)?;
    let day = d
        .get(2)
        .map(|x| two(x, 31).filter(|&x| x >= 1))
        .unwrap_or(Some(1))
        .ok_or_else(bad)?;
    let t = match time {
        None => "00:00:00".to_string(),
        Some(t) => {
            let parts: Vec<&str> = t.split(':').collect();
            let h = two(parts[0], 23).ok_or_else(bad)?;
            let m = parts
                .get(1)
                .map(|m| two(m, 59))
                .unwrap_or(Some(0))
                .ok_or_else(bad)?;
            let sec = parts
                .get(2)
                .map(|x| two(x, 59))
                .unwrap_or(Some(0))
                .ok_or_else(bad)?;
            if parts.len() > 3 {
                return Err(bad());
            }
            format!("{h:02}:{m:02}:{sec:02}")
        }
    };
    Ok(Val::Word(format!("{y:04}-{mo:02}-{day:02}T{t}")))
}

fn p_monthdays(a: &[&str], _: Family) -> Result<Val, ValErr> {
    let mut bits = 0u32;
    for p in a[0].split(',') {
        let d = two(p, 31)
            .filter(|&d| d >= 1)
            .ok_or_else(|| ("E0320", format!("invalid day of month `{p}` (1-31)")))?;
        bits |= 1 << d;
    }
    Ok(Val::Bits(bits))
}

fn p_weekdays(a: &[&str], _: Family) -> Result<Val, ValErr> {
    let mut bits = 0u32;
    for p in a[0].split(',') {
        let b = match two(p, 7).filter(|&d| d >= 1) {
            Some(d) => 1 << d,
            None => WEEKDAYS
                .iter()
                .find(|(n, _)| {
                    n.eq_ignore_ascii_case(p)
                        || (p.len() > 3 && p.get(..3).is_some_and(|q| n.eq_ignore_ascii_case(q)))
                })
                .map(|&(_, b)| b)
                .ok_or_else(|| ("E0320", format!("invalid weekday `{p}` (Mon-Sun or 1-7)")))?,
        };
        bits |= b;
    }
    Ok(Val::Bits(bits))
}

fn flag(_: &[&str], _: Family) -> Result<Val, ValErr> {
    Ok(Val::Flag)
}

static OPTS: [OptDef; 9] = [
    OptDef::new("timestart", Arity::One, false, p_clock),
    OptDef::new("timestop", Arity::One, false, p_clock),
    OptDef::new("monthdays", Arity::One, true, p_monthdays),
    OptDef::new("weekdays", Arity::One, true, p_weekdays),
    OptDef::new("datestart", Arity::One, false, p_date),
    OptDef::new("datestop", Arity::One, false, p_date),
    OptDef::new("localtz", Arity::Zero, false, flag),
    OptDef::new("kerneltz", Arity::Zero, false, flag),
    OptDef::new("contiguous", Arity::Zero, false, flag),
];

fn check(i: &Inst, _: &RuleCtx) -> CheckResult {
    exclusive(i, &["localtz", "kerneltz"])
}

fn save(i: &Inst, out: &mut String) {
    for def in &OPTS {
        let Some(g) = i.get(def.name) else { continue };
        if def.name == "localtz" {
            continue;
        }
        opt_head(out, g);
        match (def.name, &g.val) {
            ("monthdays", Val::Bits(b)) => {
                let days: Vec<String> = (1..=31)
                    .filter(|d| b & (1 << d) != 0)
                    .map(|d| d.to_string())
                    .collect();
                out.push(' ');
                out.push_str(&days.join(","));
            }
            ("weekdays", Val::Bits(b)) => {
                out.push(' ');
                out.push_str(&fmt_bits(*b, &WEEKDAYS));
            }
            (_, v) => fmt_val(out, v),
        }
    }
}

pub static EXT: Ext = Ext {
    name: "time",
    target: false,
    family: None,
    protos: &[],
    tables: &[],
    hooks: &[],
    opts: &OPTS,
    check,
    save,
};
