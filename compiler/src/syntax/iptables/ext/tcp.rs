//! `-m tcp`: `--sport`, `--dport`, `--tcp-flags MASK COMP`, `--syn`, `--tcp-option N` (libxt_tcp).
use super::*;

pub const FLAGS: [(&str, u32); 8] = [
    ("FIN", 0x01),
    ("SYN", 0x02),
    ("RST", 0x04),
    ("PSH", 0x08),
    ("ACK", 0x10),
    ("URG", 0x20),
    ("ALL", 0x3f),
    ("NONE", 0),
];

fn flags(s: &str) -> Result<u32, ValErr> {
    parse_bits(s, &FLAGS, "TCP flag")
}

fn parse_flags(a: &[&str], _: Family) -> Result<Val, ValErr> {
    Ok(Val::Pair(
        Box::new(Val::Bits(flags(a[0])?)),
        Box::new(Val::Bits(flags(a[1])?)),
    ))
}

fn parse_syn(_: &[&str], _: Family) -> Result<Val, ValErr> {
    Ok(Val::Pair(
        Box::new(Val::Bits(0x17)),
        Box::new(Val::Bits(0x02)),
    ))
}

fn parse_option(a: &[&str], _: Family) -> Result<Val, ValErr> {
    match uint(a[0], 255) {
        Some(n) if n > 0 => Ok(Val::Num(n)),
        _ => Err(num_err("TCP option", a[0], 255)),
    }
}

/// `print_tcpf`: lowest bit first, `NONE` for none.
pub fn fmt_flags(bits: u32) -> String {
    if bits == 0 {
        return "NONE".into();
    }
    fmt_bits(bits, &FLAGS[..6])
}

pub static OPTS: [OptDef; 5] = [
    OptDef::new("sport", Arity::One, true, tcp_ports).aliases(&["source-port"]),
    OptDef::new("dport", Arity::One, true, tcp_ports).aliases(&["destination-port"]),
    OptDef::new("tcp-option", Arity::One, true, parse_option),
    OptDef::new("tcp-flags", Arity::Two, true, parse_flags),
    OptDef::new("syn", Arity::Zero, true, parse_syn),
];

fn check(i: &Inst, _: &RuleCtx) -> Result<(), (String, Option<&'static str>)> {
    exclusive(i, &["tcp-flags", "syn"])
}

/// Ports printed unless the full range, not negated.
pub fn save_ports(i: &Inst, out: &mut String) {
    for n in ["sport", "dport"] {
        if let Some(g) = i.get(n) {
            if let Val::Range(a, b) = g.val {
                if a != 0 || b != 65535 || g.neg {
                    opt_head(out, g);
                    fmt_range(out, a, b);
                }
            }
        }
    }
}

fn save(i: &Inst, out: &mut String) {
    save_ports(i, out);
    if let Some(g) = i.get("tcp-option") {
        opt_head(out, g);
        fmt_val(out, &g.val);
    }
    if let Some(g) = i.get("tcp-flags").or(i.get("syn")) {
        if let Val::Pair(m, c) = &g.val {
            if let (Val::Bits(m), Val::Bits(c)) = (&**m, &**c) {
                if g.neg {
                    out.push_str(" !");
                }
                out.push_str(&format!(" --tcp-flags {} {}", fmt_flags(*m), fmt_flags(*c)));
            }
        }
    }
}

pub static EXT: Ext = Ext {
    name: "tcp",
    target: false,
    family: None,
    protos: &[6],
    tables: &[],
    hooks: &[],
    opts: &OPTS,
    check,
    save,
};
