//! `-j SYNPROXY [--sack-perm] [--timestamp] [--wscale N] [--mss N] [--ecn]` (needs `-p tcp`).
use super::*;

fn flag(_: &[&str], _: Family) -> Result<Val, ValErr> {
    Ok(Val::Flag)
}
fn wscale(a: &[&str], _: Family) -> Result<Val, ValErr> {
    parse_uint(a, 14, "window scale")
}
fn mss(a: &[&str], _: Family) -> Result<Val, ValErr> {
    parse_uint(a, 65535, "MSS")
}

static OPTS: [OptDef; 5] = [
    OptDef::new("sack-perm", Arity::Zero, false, flag),
    OptDef::new("timestamp", Arity::Zero, false, flag),
    OptDef::new("wscale", Arity::One, false, wscale),
    OptDef::new("mss", Arity::One, false, mss),
    OptDef::new("ecn", Arity::Zero, false, flag),
];

pub static EXT: Ext = Ext {
    name: "SYNPROXY",
    target: true,
    family: None,
    protos: &[6],
    tables: &[],
    hooks: &["INPUT", "FORWARD"],
    opts: &OPTS,
    check: no_check,
    save: save_in_order,
};
