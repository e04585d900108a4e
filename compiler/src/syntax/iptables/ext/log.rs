//! `-j LOG --log-level L --log-prefix P --log-tcp-sequence --log-tcp-options --log-ip-options --log-uid
//! --log-macdecode` (prefix at most 29 bytes; level printed as a number when not the default 4).
use super::*;

const LEVELS: [(&str, u64); 10] = [
    ("emerg", 0),
    ("panic", 0),
    ("alert", 1),
    ("crit", 2),
    ("err", 3),
    ("error", 3),
    ("warning", 4),
    ("warn", 4),
    ("notice", 5),
    ("info", 6),
];

fn level(a: &[&str], _: Family) -> Result<Val, ValErr> {
    let s = a[0];
    if s == "debug" {
        return Ok(Val::Num(7));
    }
    if let Some(&(_, v)) = LEVELS.iter().find(|(n, _)| n.eq_ignore_ascii_case(s)) {
        return Ok(Val::Num(v));
    }
    match uint(s, 7) {
        Some(v) => Ok(Val::Num(v)),
        None => Err((
            "E0320",
            format!("invalid log level `{s}` (0-7 or a syslog level name)"),
        )),
    }
}
fn prefix(a: &[&str], _: Family) -> Result<Val, ValErr> {
    // XTTYPE_STRING with `.min = 1` (libxt_LOG, libxt_NFLOG): an empty prefix is refused.
    if a[0].is_empty() {
        return Err((
            "E0320",
            "empty prefix (\"Argument must have a minimum length of 1 characters\"): leave the option out".into(),
        ));
    }
    if a[0].len() > 29 {
        return Err((
            "E0320",
            format!(
                "log prefix is {} bytes long; at most 29 allowed",
                a[0].len()
            ),
        ));
    }
    if a[0].contains('\n') {
        return Err(("E0320", "log prefix cannot contain a newline".into()));
    }
    Ok(Val::Text(a[0].to_string()))
}
fn flag(_: &[&str], _: Family) -> Result<Val, ValErr> {
    Ok(Val::Flag)
}

static OPTS: [OptDef; 7] = [
    OptDef::new("log-prefix", Arity::One, false, prefix),
    OptDef::new("log-level", Arity::One, false, level),
    OptDef::new("log-tcp-sequence", Arity::Zero, false, flag),
    OptDef::new("log-tcp-options", Arity::Zero, false, flag),
    OptDef::new("log-ip-options", Arity::Zero, false, flag),
    OptDef::new("log-uid", Arity::Zero, false, flag),
    OptDef::new("log-macdecode", Arity::Zero, false, flag),
];

fn save(i: &Inst, out: &mut String) {
    for def in &OPTS {
        let Some(g) = i.get(def.name) else { continue };
        match &g.val {
            Val::Text(t) if t.is_empty() => {}
            Val::Num(4) if def.name == "log-level" => {}
            v => {
                opt_head(out, g);
                fmt_val(out, v);
            }
        }
    }
}

pub static EXT: Ext = Ext {
    name: "LOG",
    target: true,
    family: None,
    protos: &[],
    tables: &[],
    hooks: &[],
    opts: &OPTS,
    check: no_check,
    save,
};
