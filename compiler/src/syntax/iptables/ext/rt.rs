//! `-m rt --rt-type N --rt-segsleft N[:M] --rt-len N --rt-0-res --rt-0-addrs LIST --rt-0-not-strict`
//! (ip6tables routing header).
use super::spi_like::{flag, save_eliding_full_range, u32_num, u32_range};
use super::*;
use crate::syntax::iptables::values::{fmt_ip, parse_ip};

fn rt_type(a: &[&str], _: Family) -> Result<Val, ValErr> {
    parse_uint(a, 255, "routing header type")
}
fn addrs(a: &[&str], f: Family) -> Result<Val, ValErr> {
    let mut v = Vec::new();
    for p in a[0].split(',') {
        let ip = parse_ip(p, f).ok_or_else(|| ("E0320", format!("invalid address `{p}`")))?;
        v.push(fmt_ip(ip));
    }
    if v.len() > 16 {
        return Err(("E0320", "at most 16 addresses".into()));
    }
    Ok(Val::Word(v.join(",")))
}

static OPTS: [OptDef; 6] = [
    OptDef::new("rt-type", Arity::One, true, rt_type),
    OptDef::new("rt-segsleft", Arity::One, true, u32_range),
    OptDef::new("rt-len", Arity::One, true, u32_num),
    OptDef::new("rt-0-res", Arity::Zero, false, flag),
    OptDef::new("rt-0-addrs", Arity::One, false, addrs),
    OptDef::new("rt-0-not-strict", Arity::Zero, false, flag),
];

/// libip6t_rt's parser takes the type-0 options in order: `--rt-0-res` and `--rt-0-addrs` only after
/// `--rt-type 0` (not negated), `--rt-0-not-strict` only after `--rt-0-addrs`.
fn check(i: &Inst, _: &RuleCtx) -> CheckResult {
    let before = |at: usize, ok: &dyn Fn(&Given) -> bool| i.given[..at].iter().any(ok);
    for (at, g) in i.given.iter().enumerate() {
        match g.name {
            "rt-0-res" | "rt-0-addrs"
                if !before(at, &|p| {
                    p.name == "rt-type" && !p.neg && matches!(p.val, Val::Num(0))
                }) =>
            {
                return Err((
                    format!("`--rt-type 0` required before `--{}`", g.name),
                    Some(g.name),
                ));
            }
            "rt-0-not-strict" if !before(at, &|p| p.name == "rt-0-addrs") => {
                return Err((
                    "`--rt-0-addrs` required before `--rt-0-not-strict`".into(),
                    Some("rt-0-not-strict"),
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

fn save(i: &Inst, out: &mut String) {
    save_eliding_full_range(i, out, "rt-segsleft");
}

pub static EXT: Ext = Ext {
    name: "rt",
    target: false,
    family: Some(Family::V6),
    protos: &[],
    tables: &[],
    hooks: &[],
    opts: &OPTS,
    check,
    save,
};
