//! `-m dccp --sport --dport --dccp-types LIST --dccp-option N` (needs `-p dccp`; ports are printed even
//! when they cover the full range, as libxt_dccp does).
use super::*;

const TYPES: [(&str, u32); 11] = [
    ("REQUEST", 1),
    ("RESPONSE", 2),
    ("DATA", 4),
    ("ACK", 8),
    ("DATAACK", 16),
    ("CLOSEREQ", 32),
    ("CLOSE", 64),
    ("RESET", 128),
    ("SYNC", 256),
    ("SYNCACK", 512),
    ("INVALID", 1024),
];

fn types(a: &[&str], _: Family) -> Result<Val, ValErr> {
    Ok(Val::Bits(parse_bits(a[0], &TYPES, "DCCP packet type")?))
}
fn option(a: &[&str], _: Family) -> Result<Val, ValErr> {
    parse_uint(a, 255, "DCCP option")
}

static OPTS: [OptDef; 4] = [
    OptDef::new("sport", Arity::One, true, dccp_ports).aliases(&["source-port"]),
    OptDef::new("dport", Arity::One, true, dccp_ports).aliases(&["destination-port"]),
    OptDef::new("dccp-types", Arity::One, true, types),
    OptDef::new("dccp-option", Arity::One, true, option),
];

fn save(i: &Inst, out: &mut String) {
    for def in &OPTS {
        let Some(g) = i.get(def.name) else { continue };
        opt_head(out, g);
        match g.val {
            Val::Bits(b) => {
                out.push(' ');
                out.push_str(&fmt_bits(b, &TYPES));
            }
            ref v => fmt_val(out, v),
        }
    }
}

pub static EXT: Ext = Ext {
    name: "dccp",
    target: false,
    family: None,
    protos: &[33],
    tables: &[],
    hooks: &[],
    opts: &OPTS,
    check: no_check,
    save,
};
