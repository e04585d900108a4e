//! `-j CONNMARK --set-xmark|--set-mark|--and-mark|--or-mark|--xor-mark V[/M]` or
//! `--save-mark|--restore-mark [--nfmask M] [--ctmask M] [--mask M]` (revision 1; masks default to all
//! ones and are always printed).
use super::*;

const U32: u64 = 0xffff_ffff;

fn masked(a: &[&str], _: Family) -> Result<Val, ValErr> {
    let s = a[0];
    let bad = || {
        (
            "E0320",
            format!("invalid mark `{s}` (VALUE[/MASK], 32-bit numbers)"),
        )
    };
    match s.split_once('/') {
        Some((v, m)) => Ok(Val::Masked(
            uint(v, U32).ok_or_else(bad)?,
            uint(m, U32).ok_or_else(bad)?,
        )),
        None => Ok(Val::Masked(uint(s, U32).ok_or_else(bad)?, U32)),
    }
}
fn plain(a: &[&str], _: Family) -> Result<Val, ValErr> {
    parse_uint(a, U32, "mask")
}
fn flag(_: &[&str], _: Family) -> Result<Val, ValErr> {
    Ok(Val::Flag)
}

static OPTS: [OptDef; 10] = [
    OptDef::new("set-xmark", Arity::One, false, masked),
    OptDef::new("set-mark", Arity::One, false, masked),
    OptDef::new("and-mark", Arity::One, false, plain),
    OptDef::new("or-mark", Arity::One, false, plain),
    OptDef::new("xor-mark", Arity::One, false, plain),
    OptDef::new("save-mark", Arity::Zero, false, flag),
    OptDef::new("restore-mark", Arity::Zero, false, flag),
    OptDef::new("nfmask", Arity::One, false, plain),
    OptDef::new("ctmask", Arity::One, false, plain),
    OptDef::new("mask", Arity::One, false, plain),
];

const MODES: [&str; 7] = [
    "set-xmark",
    "set-mark",
    "and-mark",
    "or-mark",
    "xor-mark",
    "save-mark",
    "restore-mark",
];

fn check(i: &Inst, _: &RuleCtx) -> CheckResult {
    need_one(i, &MODES)?;
    exclusive(i, &MODES)?;
    if (i.has("nfmask") || i.has("ctmask") || i.has("mask"))
        && !(i.has("save-mark") || i.has("restore-mark"))
    {
        return Err((
            "`--nfmask`/`--ctmask`/`--mask` need `--save-mark` or `--restore-mark`".into(),
            None,
        ));
    }
    Ok(())
}

fn get(i: &Inst, n: &str) -> Option<u64> {
    match i.get(n)?.val {
        Val::Num(v) => Some(v),
        _ => None,
    }
}

fn save(i: &Inst, out: &mut String) {
    for mode in ["save-mark", "restore-mark"] {
        if i.has(mode) {
            let both = get(i, "mask");
            let nf = get(i, "nfmask").or(both).unwrap_or(U32);
            let ct = get(i, "ctmask").or(both).unwrap_or(U32);
            out.push_str(&format!(" --{mode} --nfmask 0x{nf:x} --ctmask 0x{ct:x}"));
            return;
        }
    }
    let Some(g) = i.given.iter().find(|g| MODES.contains(&g.name)) else {
        return;
    };
    let (v, m) = match (g.name, &g.val) {
        ("set-xmark", Val::Masked(v, m)) => (*v, *m),
        ("set-mark", Val::Masked(v, m)) => (*v, (*m | *v) & U32),
        ("and-mark", Val::Num(v)) => (0, !*v & U32),
        ("or-mark", Val::Num(v)) => (*v, *v),
        ("xor-mark", Val::Num(v)) => (*v, 0),
        _ => return,
    };
    out.push_str(&format!(" --set-xmark 0x{v:x}/0x{m:x}"));
}

pub static EXT: Ext = Ext {
    name: "CONNMARK",
    target: true,
    family: None,
    protos: &[],
    tables: &[],
    hooks: &[],
    opts: &OPTS,
    check,
    save,
};
