//! `-m eui64` (ip6tables; no options; PREROUTING, INPUT and FORWARD only).
use super::*;

pub static EXT: Ext = Ext {
    name: "eui64",
    target: false,
    family: Some(Family::V6),
    protos: &[],
    tables: &[],
    hooks: &["PREROUTING", "INPUT", "FORWARD"],
    opts: &[],
    check: no_check,
    save: save_in_order,
};
