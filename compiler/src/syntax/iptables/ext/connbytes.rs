//! `-m connbytes --connbytes FROM[:TO] --connbytes-mode packets|bytes|avgpkt --connbytes-dir
//! original|reply|both` (all three required; an open upper bound is printed as `FROM` alone).
use super::*;

fn amount(a: &[&str], _: Family) -> Result<Val, ValErr> {
    let (lo, hi) = parse_range(a[0], u64::MAX, ':', "byte/packet count")?;
    // A single value is a lower bound: FROM alone means FROM to infinity.
    let hi = if a[0].contains(':') { hi } else { u64::MAX };
    Ok(Val::Range(lo, hi))
}
fn mode(a: &[&str], _: Family) -> Result<Val, ValErr> {
    match a[0] {
        "packets" | "bytes" | "avgpkt" => Ok(Val::Word(a[0].to_string())),
        _ => Err((
            "E0320",
            format!("unknown mode `{}` (packets, bytes or avgpkt)", a[0]),
        )),
    }
}
fn dir(a: &[&str], _: Family) -> Result<Val, ValErr> {
    match a[0] {
        "original" | "reply" | "both" => Ok(Val::Word(a[0].to_string())),
        _ => Err((
            "E0320",
            format!("unknown direction `{}` (original, reply or both)", a[0]),
        )),
    }
}

static OPTS: [OptDef; 3] = [
    OptDef::new("connbytes", Arity::One, true, amount),
    OptDef::new("connbytes-mode", Arity::One, false, mode),
    OptDef::new("connbytes-dir", Arity::One, false, dir),
];

fn check(i: &Inst, _: &RuleCtx) -> CheckResult {
    for n in ["connbytes", "connbytes-mode", "connbytes-dir"] {
        need_one(i, &[n])?;
    }
    Ok(())
}

fn save(i: &Inst, out: &mut String) {
    if let Some(g) = i.get("connbytes") {
        if let Val::Range(a, b) = g.val {
            // libxt_connbytes negates by swapping the bounds (from > to); `! A:A` swaps to itself, so
            // the kernel keeps (and iptables-save prints) the plain range.
            if g.neg && a == b {
                out.push_str(&format!(" --{}", g.name));
            } else {
                opt_head(out, g);
            }
            if b == u64::MAX {
                out.push_str(&format!(" {a}"));
            } else {
                out.push_str(&format!(" {a}:{b}"));
            }
        }
    }
    for n in ["connbytes-mode", "connbytes-dir"] {
        if let Some(g) = i.get(n) {
            opt_head(out, g);
            fmt_val(out, &g.val);
        }
    }
}

pub static EXT: Ext = Ext {
    name: "connbytes",
    target: false,
    family: None,
    protos: &[],
    tables: &[],
    hooks: &[],
    opts: &OPTS,
    check,
    save,
};
