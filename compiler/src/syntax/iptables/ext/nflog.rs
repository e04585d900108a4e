//! `-j NFLOG --nflog-group N --nflog-prefix P --nflog-range N --nflog-size N --nflog-threshold N`.
//! A prefix longer than 63 bytes is truncated, as iptables-legacy does.
use super::*;

fn group(a: &[&str], _: Family) -> Result<Val, ValErr> {
    parse_uint(a, 65535, "group")
}
fn u32v(a: &[&str], _: Family) -> Result<Val, ValErr> {
    parse_uint(a, u32::MAX as u64, "size")
}
fn prefix(a: &[&str], _: Family) -> Result<Val, ValErr> {
    // XTTYPE_STRING with `.min = 1` (libxt_LOG, libxt_NFLOG): an empty prefix is refused.
    if a[0].is_empty() {
        return Err((
            "E0320",
            "empty prefix (\"Argument must have a minimum length of 1 characters\"): leave the option out".into(),
        ));
    }
    let mut p = a[0].to_string();
    while p.len() > 63 {
        p.pop();
    }
    Ok(Val::Text(p))
}

static OPTS: [OptDef; 5] = [
    OptDef::new("nflog-prefix", Arity::One, false, prefix),
    OptDef::new("nflog-group", Arity::One, false, group),
    OptDef::new("nflog-size", Arity::One, false, u32v),
    OptDef::new("nflog-range", Arity::One, false, u32v),
    OptDef::new("nflog-threshold", Arity::One, false, group),
];

fn check(i: &Inst, _: &RuleCtx) -> Result<(), (String, Option<&'static str>)> {
    exclusive(i, &["nflog-size", "nflog-range"])
}

fn save(i: &Inst, out: &mut String) {
    for def in &OPTS {
        let Some(g) = i.get(def.name) else { continue };
        match (def.name, &g.val) {
            ("nflog-prefix", Val::Text(t)) if t.is_empty() => {}
            ("nflog-group" | "nflog-threshold" | "nflog-range", Val::Num(0)) => {}
            (_, v) => {
                opt_head(out, g);
                fmt_val(out, v);
            }
        }
    }
}

pub static EXT: Ext = Ext {
    name: "NFLOG",
    target: true,
    family: None,
    protos: &[],
    tables: &[],
    hooks: &[],
    opts: &OPTS,
    check,
    save,
};
