//! Small targets of the raw and mangle tables: `CHECKSUM --checksum-fill`, `NOTRACK`, `TRACE`, and `CT`.
use super::*;

fn flag(_: &[&str], _: Family) -> Result<Val, ValErr> {
    Ok(Val::Flag)
}
fn word(a: &[&str], _: Family) -> Result<Val, ValErr> {
    Ok(Val::Word(a[0].to_string()))
}
fn zone(a: &[&str], _: Family) -> Result<Val, ValErr> {
    parse_uint(a, 65535, "zone")
}
/// `ct_event_tbl` of libxt_CT, in the order `ct_print_events` prints the events.
pub(crate) const CT_EVENTS: [&str; 10] = [
    "new",
    "related",
    "destroy",
    "reply",
    "assured",
    "protoinfo",
    "helper",
    "mark",
    "natseqinfo",
    "secmark",
];
fn events(a: &[&str], _: Family) -> Result<Val, ValErr> {
    for e in a[0].split(',') {
        if !CT_EVENTS.contains(&e) {
            return Err(("E0320", format!("unknown conntrack event `{e}`")));
        }
    }
    Ok(Val::Word(a[0].to_string()))
}

static CHECKSUM_OPTS: [OptDef; 1] = [OptDef::new("checksum-fill", Arity::Zero, false, flag)];

fn checksum_check(i: &Inst, _: &RuleCtx) -> Result<(), (String, Option<&'static str>)> {
    need_one(i, &["checksum-fill"])
}

pub static CHECKSUM: Ext = Ext {
    name: "CHECKSUM",
    target: true,
    family: None,
    protos: &[],
    tables: &["mangle"],
    hooks: &[],
    opts: &CHECKSUM_OPTS,
    check: checksum_check,
    save: save_in_order,
};

pub static NOTRACK: Ext = Ext {
    name: "NOTRACK",
    target: true,
    family: None,
    protos: &[],
    tables: &["raw"],
    hooks: &[],
    opts: &[],
    check: no_check,
    save: save_in_order,
};

pub static TRACE: Ext = Ext {
    name: "TRACE",
    target: true,
    family: None,
    protos: &[],
    tables: &["raw"],
    hooks: &[],
    opts: &[],
    check: no_check,
    save: save_in_order,
};

static CT_OPTS: [OptDef; 8] = [
    OptDef::new("notrack", Arity::Zero, false, flag),
    OptDef::new("helper", Arity::One, false, word),
    OptDef::new("timeout", Arity::One, false, word),
    OptDef::new("ctevents", Arity::One, false, events),
    OptDef::new("expevents", Arity::One, false, events),
    OptDef::new("zone", Arity::One, false, zone),
    // libxt_CT's per-direction zones: here so that getopt abbreviations see them (`--zon` is ambiguous).
    OptDef::new("zone-orig", Arity::One, false, zone),
    OptDef::new("zone-reply", Arity::One, false, zone),
];

pub static CT: Ext = Ext {
    name: "CT",
    target: true,
    family: None,
    protos: &[],
    tables: &["raw"],
    hooks: &[],
    opts: &CT_OPTS,
    check: no_check,
    save: save_in_order,
};
