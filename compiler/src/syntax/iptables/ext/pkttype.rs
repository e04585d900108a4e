//! `-m pkttype --pkt-type unicast|broadcast|multicast|host|otherhost|outgoing|loopback`.
use super::*;

const TYPES: [&str; 7] = [
    "unicast",
    "broadcast",
    "multicast",
    "host",
    "otherhost",
    "outgoing",
    "loopback",
];

fn parse(a: &[&str], _: Family) -> Result<Val, ValErr> {
    let s = a[0].to_ascii_lowercase();
    match TYPES.iter().find(|t| **t == s) {
        Some(t) => Ok(Val::Word(t.to_string())),
        None => Err((
            "E0320",
            format!(
                "unknown packet type `{}` (one of {})",
                a[0],
                TYPES.join(", ")
            ),
        )),
    }
}

static OPTS: [OptDef; 1] = [OptDef::new("pkt-type", Arity::One, true, parse)];

fn check(i: &Inst, _: &RuleCtx) -> Result<(), (String, Option<&'static str>)> {
    need_one(i, &["pkt-type"])
}

pub static EXT: Ext = Ext {
    name: "pkttype",
    target: false,
    family: None,
    protos: &[],
    tables: &[],
    hooks: &[],
    opts: &OPTS,
    check,
    save: save_in_order,
};
