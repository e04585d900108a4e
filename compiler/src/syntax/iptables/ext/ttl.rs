//! `-m ttl --ttl-eq|--ttl-lt|--ttl-gt N` (IPv4), `-m hl --hl-eq|--hl-lt|--hl-gt N` (IPv6), and the mangle
//! targets `-j TTL --ttl-set|--ttl-inc|--ttl-dec N`, `-j HL --hl-set|--hl-inc|--hl-dec N` (exactly one option;
//! increments and decrements of 0 are rejected, as iptables does).
use super::*;

fn byte(a: &[&str], _: Family) -> Result<Val, ValErr> {
    parse_uint(a, 255, "value")
}
fn step(a: &[&str], _: Family) -> Result<Val, ValErr> {
    match uint(a[0], 255) {
        Some(n) if n > 0 => Ok(Val::Num(n)),
        _ => Err(("E0320", format!("invalid step `{}` (1-255)", a[0]))),
    }
}

static TTL_OPTS: [OptDef; 3] = [
    // `--ttl` is libipt_ttl's old spelling of `--ttl-eq` (an exact name, so no abbreviation clash).
    OptDef::new("ttl-eq", Arity::One, true, byte).aliases(&["ttl"]),
    OptDef::new("ttl-lt", Arity::One, false, byte),
    OptDef::new("ttl-gt", Arity::One, false, byte),
];
static HL_OPTS: [OptDef; 3] = [
    OptDef::new("hl-eq", Arity::One, true, byte).aliases(&["hl"]),
    OptDef::new("hl-lt", Arity::One, false, byte),
    OptDef::new("hl-gt", Arity::One, false, byte),
];
static TTL_TARGET_OPTS: [OptDef; 3] = [
    OptDef::new("ttl-set", Arity::One, false, byte),
    OptDef::new("ttl-inc", Arity::One, false, step),
    OptDef::new("ttl-dec", Arity::One, false, step),
];
static HL_TARGET_OPTS: [OptDef; 3] = [
    OptDef::new("hl-set", Arity::One, false, byte),
    OptDef::new("hl-inc", Arity::One, false, step),
    OptDef::new("hl-dec", Arity::One, false, step),
];

/// Exactly one of the module's options.
fn one_of(i: &Inst, _: &RuleCtx) -> CheckResult {
    let names: Vec<&'static str> = i.ext.opts.iter().map(|o| o.name).collect();
    need_one(i, &names)?;
    exclusive(i, &names)
}

pub static TTL_MATCH: Ext = Ext {
    name: "ttl",
    target: false,
    family: Some(Family::V4),
    protos: &[],
    tables: &[],
    hooks: &[],
    opts: &TTL_OPTS,
    check: one_of,
    save: save_in_order,
};
pub static HL_MATCH: Ext = Ext {
    name: "hl",
    target: false,
    family: Some(Family::V6),
    protos: &[],
    tables: &[],
    hooks: &[],
    opts: &HL_OPTS,
    check: one_of,
    save: save_in_order,
};
pub static TTL_TARGET: Ext = Ext {
    name: "TTL",
    target: true,
    family: Some(Family::V4),
    protos: &[],
    tables: &["mangle"],
    hooks: &[],
    opts: &TTL_TARGET_OPTS,
    check: one_of,
    save: save_in_order,
};
pub static HL_TARGET: Ext = Ext {
    name: "HL",
    target: true,
    family: Some(Family::V6),
    protos: &[],
    tables: &["mangle"],
    hooks: &[],
    opts: &HL_TARGET_OPTS,
    check: one_of,
    save: save_in_order,
};
