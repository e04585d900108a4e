//! `-m multiport --sports|--dports|--ports LIST` (revision 1: up to 15 ports, a range counting as two).
use super::*;

/// `parse_multi_ports_v1`: comma-separated ports and `A:B` ranges (A < B), each `xtables_parse_port` with the
/// services of the rule's protocol.
fn parse_with(a: &[&str], _: Family, proto: u8) -> Result<Val, ValErr> {
    let name = values::port_proto_name(proto);
    let port = |p: &str| {
        values::parse_port(p, name)
            .map(u64::from)
            .map_err(|m| ("E0304", m))
    };
    let mut v = Vec::new();
    let mut count = 0;
    for part in a[0].split(',') {
        let (lo, hi) = match part.split_once(':') {
            None => {
                let p = port(part)?;
                (p, p)
            }
            Some((x, y)) => {
                let lo = port(x)?;
                let hi = port(y)?;
                if lo >= hi {
                    return Err((
                        "E0305",
                        format!("invalid port range `{part}` (the first port must be lower)"),
                    ));
                }
                count += 1;
                (lo, hi)
            }
        };
        count += 1;
        v.push((lo, hi));
    }
    if count > 15 {
        return Err((
            "E0320",
            format!(
                "too many ports in `{}` (at most 15, a range counts as two)",
                a[0]
            ),
        ));
    }
    Ok(Val::Ranges(v))
}

fn parse(a: &[&str], f: Family) -> Result<Val, ValErr> {
    parse_with(a, f, 0)
}

pub static OPTS: [OptDef; 3] = [
    OptDef::new("sports", Arity::One, true, parse)
        .aliases(&["source-ports"])
        .in_rule(parse_with),
    OptDef::new("dports", Arity::One, true, parse)
        .aliases(&["destination-ports"])
        .in_rule(parse_with),
    OptDef::new("ports", Arity::One, true, parse).in_rule(parse_with),
];

fn check(i: &Inst, _: &RuleCtx) -> Result<(), (String, Option<&'static str>)> {
    need_one(i, &["sports", "dports", "ports"])?;
    exclusive(i, &["sports", "dports", "ports"])
}

pub static EXT: Ext = Ext {
    name: "multiport",
    target: false,
    family: None,
    protos: &[6, 17, 33, 132, 136],
    tables: &[],
    hooks: &[],
    opts: &OPTS,
    check,
    save: save_in_order,
};
