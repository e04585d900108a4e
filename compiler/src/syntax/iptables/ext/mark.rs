//! `-m mark --mark V[/M]`, `-m connmark --mark V[/M]` and `-j MARK --set-xmark|--set-mark|--and-mark|
//! --or-mark|--xor-mark`.
use super::*;

const U32: u64 = 0xffff_ffff;

fn masked(s: &str) -> Result<(u64, u64), ValErr> {
    let bad = || {
        (
            "E0320",
            format!("invalid mark `{s}` (VALUE[/MASK], 32-bit numbers)"),
        )
    };
    let (v, m) = match s.split_once('/') {
        Some((v, m)) => (uint(v, U32).ok_or_else(bad)?, uint(m, U32).ok_or_else(bad)?),
        None => (uint(s, U32).ok_or_else(bad)?, U32),
    };
    Ok((v, m))
}

fn parse_masked(a: &[&str], _: Family) -> Result<Val, ValErr> {
    let (v, m) = masked(a[0])?;
    Ok(Val::Masked(v, m))
}

fn parse_plain(a: &[&str], _: Family) -> Result<Val, ValErr> {
    let v = uint(a[0], U32).ok_or_else(|| num_err("mark", a[0], U32))?;
    Ok(Val::Num(v))
}

static MATCH_OPTS: [OptDef; 1] = [OptDef::new("mark", Arity::One, true, parse_masked)];

fn need_mark(i: &Inst, _: &RuleCtx) -> Result<(), (String, Option<&'static str>)> {
    need_one(i, &["mark"])
}

/// ` [!] --mark 0xV[/0xM]` (mask omitted when all ones).
fn save_match(i: &Inst, out: &mut String) {
    if let Some(g) = i.get("mark") {
        if let Val::Masked(v, m) = g.val {
            opt_head(out, g);
            if m == U32 {
                out.push_str(&format!(" 0x{v:x}"));
            } else {
                out.push_str(&format!(" 0x{v:x}/0x{m:x}"));
            }
        }
    }
}

pub static MATCH: Ext = Ext {
    name: "mark",
    target: false,
    family: None,
    protos: &[],
    tables: &[],
    hooks: &[],
    opts: &MATCH_OPTS,
    check: need_mark,
    save: save_match,
};

pub static CONNMARK: Ext = Ext {
    name: "connmark",
    target: false,
    family: None,
    protos: &[],
    tables: &[],
    hooks: &[],
    opts: &MATCH_OPTS,
    check: need_mark,
    save: save_match,
};

static TARGET_OPTS: [OptDef; 5] = [
    OptDef::new("set-xmark", Arity::One, false, parse_masked),
    OptDef::new("set-mark", Arity::One, false, parse_masked),
    OptDef::new("and-mark", Arity::One, false, parse_plain),
    OptDef::new("or-mark", Arity::One, false, parse_plain),
    OptDef::new("xor-mark", Arity::One, false, parse_plain),
];

const TARGET_NAMES: [&str; 5] = ["set-xmark", "set-mark", "and-mark", "or-mark", "xor-mark"];

fn check_target(i: &Inst, _: &RuleCtx) -> Result<(), (String, Option<&'static str>)> {
    need_one(i, &TARGET_NAMES)?;
    exclusive(i, &TARGET_NAMES)
}

/// The value/mask pair the kernel stores (MARK revision 2), as `--set-xmark`.
pub fn xmark(i: &Inst) -> Option<(u64, u64)> {
    let g = i.given.first()?;
    Some(match (g.name, &g.val) {
        ("set-xmark", Val::Masked(v, m)) => (*v, *m),
        ("set-mark", Val::Masked(v, m)) => (*v, (*m | *v) & U32),
        ("and-mark", Val::Num(v)) => (0, !*v & U32),
        ("or-mark", Val::Num(v)) => (*v, *v),
        ("xor-mark", Val::Num(v)) => (*v, 0),
        _ => return None,
    })
}

fn save_target(i: &Inst, out: &mut String) {
    if let Some((v, m)) = xmark(i) {
        out.push_str(&format!(" --set-xmark 0x{v:x}/0x{m:x}"));
    }
}

pub static TARGET: Ext = Ext {
    name: "MARK",
    target: true,
    family: None,
    protos: &[],
    tables: &[],
    hooks: &[],
    opts: &TARGET_OPTS,
    check: check_target,
    save: save_target,
};
