//! `-m sctp --sport --dport --chunk-types all|any|only TYPE[:FLAGS],…` (needs `-p sctp`).
use super::*;

const CHUNKS: [&str; 23] = [
    "DATA",
    "INIT",
    "INIT_ACK",
    "SACK",
    "HEARTBEAT",
    "HEARTBEAT_ACK",
    "ABORT",
    "SHUTDOWN",
    "SHUTDOWN_ACK",
    "ERROR",
    "COOKIE_ECHO",
    "COOKIE_ACK",
    "ECN_ECNE",
    "ECN_CWR",
    "SHUTDOWN_COMPLETE",
    "ASCONF",
    "ASCONF_ACK",
    "FORWARD_TSN",
    "I_DATA",
    "RE_CONFIG",
    "PAD",
    "I_FORWARD_TSN",
    "NONE",
];

fn chunks(a: &[&str], _: Family) -> Result<Val, ValErr> {
    if !matches!(a[0], "all" | "any" | "only") {
        return Err(("E0320", format!("`{}` must be all, any or only", a[0])));
    }
    for c in a[1].split(',') {
        let name = c.split(':').next().unwrap_or(c);
        if !CHUNKS.iter().any(|k| k.eq_ignore_ascii_case(name)) {
            return Err(("E0320", format!("unknown SCTP chunk type `{name}`")));
        }
    }
    Ok(Val::Pair(
        Box::new(Val::Word(a[0].to_string())),
        Box::new(Val::Word(a[1].to_string())),
    ))
}

static OPTS: [OptDef; 3] = [
    OptDef::new("sport", Arity::One, true, sctp_ports).aliases(&["source-port"]),
    OptDef::new("dport", Arity::One, true, sctp_ports).aliases(&["destination-port"]),
    OptDef::new("chunk-types", Arity::Two, true, chunks),
];

/// libxt_sctp prints a given port range even when it is the full `0:65535` (tcp and udp leave it out).
fn save(i: &Inst, out: &mut String) {
    for n in ["sport", "dport"] {
        if let Some(
            g @ Given {
                val: Val::Range(a, b),
                ..
            },
        ) = i.get(n)
        {
            opt_head(out, g);
            fmt_range(out, *a, *b);
        }
    }
    if let Some(g) = i.get("chunk-types") {
        opt_head(out, g);
        fmt_val(out, &g.val);
    }
}

pub static EXT: Ext = Ext {
    name: "sctp",
    target: false,
    family: None,
    protos: &[132],
    tables: &[],
    hooks: &[],
    opts: &OPTS,
    check: no_check,
    save,
};
