//! `-m rpfilter [--loose] [--validmark] [--accept-local] [--invert]` (PREROUTING, raw and mangle).
use super::*;

fn flag(_: &[&str], _: Family) -> Result<Val, ValErr> {
    Ok(Val::Flag)
}

static OPTS: [OptDef; 4] = [
    OptDef::new("loose", Arity::Zero, false, flag),
    OptDef::new("validmark", Arity::Zero, false, flag),
    OptDef::new("accept-local", Arity::Zero, false, flag),
    OptDef::new("invert", Arity::Zero, false, flag),
];

pub static EXT: Ext = Ext {
    name: "rpfilter",
    target: false,
    family: None,
    protos: &[],
    tables: &["raw", "mangle"],
    hooks: &["PREROUTING"],
    opts: &OPTS,
    check: no_check,
    save: save_in_order,
};
