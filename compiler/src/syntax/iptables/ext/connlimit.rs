//! `-m connlimit --connlimit-upto N | --connlimit-above N [--connlimit-mask LEN] [--connlimit-saddr |
//! --connlimit-daddr]`; the mask (32 or 128 by default) and the address side (saddr) are always printed.
//! `! --connlimit-upto N` is `--connlimit-above N` and `! --connlimit-above N` is `--connlimit-upto N`
//! (libxt_connlimit sets or clears its one "inverse" flag), printed as such.
use super::*;

fn count(a: &[&str], _: Family) -> Result<Val, ValErr> {
    parse_uint(a, u32::MAX as u64, "connection count")
}
fn mask(a: &[&str], f: Family) -> Result<Val, ValErr> {
    let max = if f == Family::V4 { 32 } else { 128 };
    parse_uint(a, max, "prefix length")
}
fn flag(_: &[&str], _: Family) -> Result<Val, ValErr> {
    Ok(Val::Flag)
}

static OPTS: [OptDef; 5] = [
    OptDef::new("connlimit-upto", Arity::One, true, count),
    OptDef::new("connlimit-above", Arity::One, true, count),
    OptDef::new("connlimit-mask", Arity::One, false, mask),
    OptDef::new("connlimit-saddr", Arity::Zero, false, flag),
    OptDef::new("connlimit-daddr", Arity::Zero, false, flag),
];

fn check(i: &Inst, _: &RuleCtx) -> CheckResult {
    need_one(i, &["connlimit-upto", "connlimit-above"])?;
    exclusive(i, &["connlimit-upto", "connlimit-above"])?;
    exclusive(i, &["connlimit-saddr", "connlimit-daddr"])
}

fn save(i: &Inst, out: &mut String) {
    for (n, inverse) in [("connlimit-upto", "above"), ("connlimit-above", "upto")] {
        if let Some(g) = i.get(n) {
            let name = if g.neg {
                inverse
            } else {
                &n["connlimit-".len()..]
            };
            out.push_str(&format!(" --connlimit-{name}"));
            fmt_val(out, &g.val);
        }
    }
    out.push_str(&format!(" --connlimit-mask {}", mask_of(i)));
    out.push_str(if i.has("connlimit-daddr") {
        " --connlimit-daddr"
    } else {
        " --connlimit-saddr"
    });
}

/// The prefix length: given, or the whole address of the rule's family (recorded at check time).
fn mask_of(i: &Inst) -> u64 {
    match i.get("connlimit-mask").map(|g| &g.val) {
        Some(Val::Num(m)) => *m,
        _ => {
            if i.ext.family == Some(Family::V6) {
                128
            } else {
                32
            }
        }
    }
}

pub static EXT4: Ext = Ext {
    name: "connlimit",
    target: false,
    family: Some(Family::V4),
    protos: &[],
    tables: &[],
    hooks: &[],
    opts: &OPTS,
    check,
    save,
};

pub static EXT6: Ext = Ext {
    name: "connlimit",
    target: false,
    family: Some(Family::V6),
    protos: &[],
    tables: &[],
    hooks: &[],
    opts: &OPTS,
    check,
    save,
};
