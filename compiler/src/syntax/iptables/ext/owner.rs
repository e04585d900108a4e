//! `-m owner --uid-owner ID[-ID] --gid-owner ID[-ID] --socket-exists --suppl-groups` (OUTPUT and
//! POSTROUTING only). User and group names other than `root` depend on the machine and are rejected.
use super::*;

fn parse_id(a: &[&str], _: Family) -> Result<Val, ValErr> {
    let s = a[0];
    if s == "root" {
        return Ok(Val::Range(0, 0));
    }
    let bad = || {
        (
            "E0320",
            format!(
                "invalid id `{s}` (a number or range N-M; names other than root are not looked up)"
            ),
        )
    };
    let (lo, hi) = match s.split_once('-') {
        Some((a, b)) => (
            uint(a, u32::MAX as u64).ok_or_else(bad)?,
            uint(b, u32::MAX as u64).ok_or_else(bad)?,
        ),
        None => {
            let v = uint(s, u32::MAX as u64).ok_or_else(bad)?;
            (v, v)
        }
    };
    if lo > hi {
        return Err(("E0305", format!("invalid id range `{s}` (min > max)")));
    }
    Ok(Val::Range(lo, hi))
}

fn flag(_: &[&str], _: Family) -> Result<Val, ValErr> {
    Ok(Val::Flag)
}

static OPTS: [OptDef; 4] = [
    OptDef::new("socket-exists", Arity::Zero, true, flag),
    OptDef::new("uid-owner", Arity::One, true, parse_id),
    OptDef::new("gid-owner", Arity::One, true, parse_id),
    OptDef::new("suppl-groups", Arity::Zero, false, flag),
];

fn check(i: &Inst, _: &RuleCtx) -> Result<(), (String, Option<&'static str>)> {
    if i.given.is_empty() {
        return Err(("`owner` needs at least one option".into(), None));
    }
    if let Some(pos) = i.given.iter().position(|g| g.name == "suppl-groups") {
        if !i.given[..pos].iter().any(|g| g.name == "gid-owner") {
            return Err((
                "`--suppl-groups` needs `--gid-owner` before it".into(),
                Some("suppl-groups"),
            ));
        }
    }
    Ok(())
}

fn save(i: &Inst, out: &mut String) {
    for def in &OPTS {
        if let Some(g) = i.get(def.name) {
            opt_head(out, g);
            if let Val::Range(a, b) = g.val {
                if a == b {
                    out.push_str(&format!(" {a}"));
                } else {
                    out.push_str(&format!(" {a}-{b}"));
                }
            }
        }
    }
}

pub static EXT: Ext = Ext {
    name: "owner",
    target: false,
    family: None,
    protos: &[],
    tables: &[],
    hooks: &["OUTPUT", "POSTROUTING"],
    opts: &OPTS,
    check,
    save,
};
