//! `-m socket [--transparent] [--nowildcard] [--restore-skmark]` (PREROUTING and INPUT of mangle).
use super::*;

fn flag(_: &[&str], _: Family) -> Result<Val, ValErr> {
    Ok(Val::Flag)
}

static OPTS: [OptDef; 3] = [
    OptDef::new("transparent", Arity::Zero, false, flag),
    OptDef::new("nowildcard", Arity::Zero, false, flag),
    OptDef::new("restore-skmark", Arity::Zero, false, flag),
];

pub static EXT: Ext = Ext {
    name: "socket",
    target: false,
    family: None,
    protos: &[],
    tables: &[],
    hooks: &["PREROUTING", "INPUT"],
    opts: &OPTS,
    check: no_check,
    save: save_in_order,
};
