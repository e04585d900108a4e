//! `-m udp`: `--sport`, `--dport` (libxt_udp).
use super::*;

pub static OPTS: [OptDef; 2] = [
    OptDef::new("sport", Arity::One, true, udp_ports).aliases(&["source-port"]),
    OptDef::new("dport", Arity::One, true, udp_ports).aliases(&["destination-port"]),
];

pub static EXT: Ext = Ext {
    name: "udp",
    target: false,
    family: None,
    protos: &[17],
    tables: &[],
    hooks: &[],
    opts: &OPTS,
    check: no_check,
    save: super::tcp::save_ports,
};
