//! `-m recent --set|--rcheck|--update|--remove [--seconds N] [--reap] [--hitcount N] [--rttl]
//! [--name NAME] [--mask ADDR] [--rsource|--rdest]` (revision 1). iptables-save always prints the name
//! (`DEFAULT`), the mask (all ones) and the side (`--rsource`).
use super::*;
use crate::syntax::iptables::values::{fmt_ip, parse_ip};

fn flag(_: &[&str], _: Family) -> Result<Val, ValErr> {
    Ok(Val::Flag)
}
fn secs(a: &[&str], _: Family) -> Result<Val, ValErr> {
    parse_uint(a, u32::MAX as u64, "seconds")
}
fn hits(a: &[&str], _: Family) -> Result<Val, ValErr> {
    parse_uint(a, 65535, "hit count")
}
fn name(a: &[&str], _: Family) -> Result<Val, ValErr> {
    if a[0].is_empty() || a[0].len() > 200 || a[0].contains('/') {
        return Err((
            "E0320",
            format!("invalid list name `{}` (1-200 characters, no `/`)", a[0]),
        ));
    }
    Ok(Val::Word(a[0].to_string()))
}
fn mask(a: &[&str], f: Family) -> Result<Val, ValErr> {
    parse_ip(a[0], f)
        .map(|ip| Val::Word(fmt_ip(ip)))
        .ok_or_else(|| ("E0320", format!("invalid mask `{}`", a[0])))
}

static OPTS: [OptDef; 12] = [
    OptDef::new("set", Arity::Zero, true, flag),
    OptDef::new("rcheck", Arity::Zero, true, flag),
    OptDef::new("update", Arity::Zero, true, flag),
    OptDef::new("remove", Arity::Zero, true, flag),
    OptDef::new("seconds", Arity::One, false, secs),
    OptDef::new("reap", Arity::Zero, false, flag),
    OptDef::new("hitcount", Arity::One, false, hits),
    OptDef::new("rttl", Arity::Zero, false, flag),
    OptDef::new("name", Arity::One, false, name),
    OptDef::new("mask", Arity::One, false, mask),
    OptDef::new("rsource", Arity::Zero, false, flag),
    OptDef::new("rdest", Arity::Zero, false, flag),
];

const MODES: [&str; 4] = ["set", "rcheck", "update", "remove"];

fn check(i: &Inst, _: &RuleCtx) -> CheckResult {
    need_one(i, &MODES)?;
    exclusive(i, &MODES)?;
    exclusive(i, &["rsource", "rdest"])?;
    let checks = i.has("rcheck") || i.has("update");
    for opt in ["seconds", "hitcount", "rttl"] {
        if i.has(opt) && !checks {
            return Err((
                format!("`--{opt}` needs `--rcheck` or `--update`"),
                Some(opt),
            ));
        }
    }
    if i.has("reap") && !i.has("seconds") {
        return Err(("`--reap` needs `--seconds`".into(), Some("reap")));
    }
    Ok(())
}

fn save(i: &Inst, out: &mut String) {
    for def in &OPTS[..8] {
        if let Some(g) = i.get(def.name) {
            opt_head(out, g);
            fmt_val(out, &g.val);
        }
    }
    let name = match i.get("name").map(|g| &g.val) {
        Some(Val::Word(n)) => n.clone(),
        _ => "DEFAULT".into(),
    };
    out.push_str(&format!(" --name {name}"));
    let mask = match i.get("mask").map(|g| &g.val) {
        Some(Val::Word(m)) => m.clone(),
        _ if i.ext.family == Some(Family::V6) => "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff".into(),
        _ => "255.255.255.255".into(),
    };
    out.push_str(&format!(" --mask {mask}"));
    out.push_str(if i.has("rdest") {
        " --rdest"
    } else {
        " --rsource"
    });
}

pub static EXT4: Ext = Ext {
    name: "recent",
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
    name: "recent",
    target: false,
    family: Some(Family::V6),
    protos: &[],
    tables: &[],
    hooks: &[],
    opts: &OPTS,
    check,
    save,
};
