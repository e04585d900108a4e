//! `-m statistic --mode random --probability P` / `--mode nth --every N --packet P`.
//! The probability is stored as `round(P * 2^31)` and printed with 11 decimals, as iptables-save does.
use super::*;

fn mode(a: &[&str], _: Family) -> Result<Val, ValErr> {
    match a[0] {
        "random" | "nth" => Ok(Val::Word(a[0].to_string())),
        _ => Err(("E0320", format!("unknown mode `{}` (random or nth)", a[0]))),
    }
}
fn prob(a: &[&str], _: Family) -> Result<Val, ValErr> {
    let p: f64 = a[0]
        .parse()
        .ok()
        .filter(|p: &f64| (0.0..=1.0).contains(p))
        .ok_or_else(|| {
            (
                "E0320",
                format!("invalid probability `{}` (0.0 to 1.0)", a[0]),
            )
        })?;
    Ok(Val::Num((p * 2147483648.0).round() as u64))
}
fn every(a: &[&str], _: Family) -> Result<Val, ValErr> {
    match uint(a[0], u32::MAX as u64) {
        Some(n) if n > 0 => Ok(Val::Num(n)),
        _ => Err(num_err("--every value", a[0], u32::MAX as u64)),
    }
}
fn packet(a: &[&str], _: Family) -> Result<Val, ValErr> {
    parse_uint(a, u32::MAX as u64, "--packet value")
}

static OPTS: [OptDef; 4] = [
    OptDef::new("mode", Arity::One, false, mode),
    OptDef::new("probability", Arity::One, true, prob),
    OptDef::new("every", Arity::One, true, every),
    OptDef::new("packet", Arity::One, false, packet),
];

fn num(i: &Inst, n: &str) -> Option<u64> {
    match i.get(n)?.val {
        Val::Num(v) => Some(v),
        _ => None,
    }
}

fn check(i: &Inst, _: &RuleCtx) -> Result<(), (String, Option<&'static str>)> {
    let mode = match i.get("mode").map(|g| &g.val) {
        Some(Val::Word(m)) => m.as_str(),
        _ => {
            return Err((
                "`statistic` needs `--mode random` or `--mode nth`".into(),
                None,
            ))
        }
    };
    match mode {
        "random" => {
            if !i.has("probability") {
                return Err(("`--mode random` needs `--probability`".into(), Some("mode")));
            }
            if i.has("every") || i.has("packet") {
                return Err((
                    "`--every`/`--packet` need `--mode nth`".into(),
                    Some("mode"),
                ));
            }
        }
        _ => {
            if i.has("probability") {
                return Err((
                    "`--probability` needs `--mode random`".into(),
                    Some("probability"),
                ));
            }
            let (Some(e), Some(p)) = (num(i, "every"), num(i, "packet")) else {
                return Err((
                    "`--mode nth` needs `--every` and `--packet`".into(),
                    Some("mode"),
                ));
            };
            if p >= e {
                return Err((
                    format!("`--packet {p}` must be below `--every {e}`"),
                    Some("packet"),
                ));
            }
        }
    }
    Ok(())
}

fn save(i: &Inst, out: &mut String) {
    let Some(Val::Word(mode)) = i.get("mode").map(|g| &g.val) else {
        return;
    };
    out.push_str(&format!(" --mode {mode}"));
    if let Some(g) = i.get("probability") {
        if let Val::Num(p) = g.val {
            opt_head(out, g);
            out.push_str(&format!(" {:.11}", p as f64 / 2147483648.0));
        }
    }
    if let Some(g) = i.get("every") {
        opt_head(out, g);
        fmt_val(out, &g.val);
        out.push_str(&format!(" --packet {}", num(i, "packet").unwrap_or(0)));
    }
}

pub static EXT: Ext = Ext {
    name: "statistic",
    target: false,
    family: None,
    protos: &[],
    tables: &[],
    hooks: &[],
    opts: &OPTS,
    check,
    save,
};
