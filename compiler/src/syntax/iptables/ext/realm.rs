//! `-m realm --realm V[/M]` (IPv4 routing realm; the mask is omitted when all ones).
use super::*;

fn realm(a: &[&str], _: Family) -> Result<Val, ValErr> {
    let s = a[0];
    let m = u32::MAX as u64;
    let bad = || {
        (
            "E0320",
            format!("invalid realm `{s}` (VALUE[/MASK]; names are not looked up)"),
        )
    };
    match s.split_once('/') {
        Some((v, k)) => Ok(Val::Masked(
            uint(v, m).ok_or_else(bad)?,
            uint(k, m).ok_or_else(bad)?,
        )),
        None => Ok(Val::Masked(uint(s, m).ok_or_else(bad)?, m)),
    }
}

static OPTS: [OptDef; 1] = [OptDef::new("realm", Arity::One, true, realm)];

fn check(i: &Inst, _: &RuleCtx) -> CheckResult {
    need_one(i, &["realm"])
}

fn save(i: &Inst, out: &mut String) {
    if let Some(g) = i.get("realm") {
        if let Val::Masked(v, m) = g.val {
            opt_head(out, g);
            if m == u32::MAX as u64 {
                out.push_str(&format!(" 0x{v:x}"));
            } else {
                out.push_str(&format!(" 0x{v:x}/0x{m:x}"));
            }
        }
    }
}

pub static EXT: Ext = Ext {
    name: "realm",
    target: false,
    family: Some(Family::V4),
    protos: &[],
    tables: &[],
    hooks: &[],
    opts: &OPTS,
    check,
    save,
};
