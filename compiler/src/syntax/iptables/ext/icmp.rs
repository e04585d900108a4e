//! `-m icmp --icmp-type TYPE[/CODE]` (IPv4) and `-m icmp6 --icmpv6-type TYPE[/CODE]` (IPv6).
//! Stored as (type, code range); iptables-save prints numbers (`any` for type 255, all codes in IPv4).
use super::*;

/// (name, type, code range) from libxtables' icmp tables (the names iptables-save never prints).
const ICMP4: [(&str, u64, u64, u64); 40] = [
    ("any", 255, 0, 255),
    ("echo-reply", 0, 0, 255),
    ("pong", 0, 0, 255),
    ("destination-unreachable", 3, 0, 255),
    ("network-unreachable", 3, 0, 0),
    ("host-unreachable", 3, 1, 1),
    ("protocol-unreachable", 3, 2, 2),
    ("port-unreachable", 3, 3, 3),
    ("fragmentation-needed", 3, 4, 4),
    ("source-route-failed", 3, 5, 5),
    ("network-unknown", 3, 6, 6),
    ("host-unknown", 3, 7, 7),
    ("network-prohibited", 3, 9, 9),
    ("host-prohibited", 3, 10, 10),
    ("TOS-network-unreachable", 3, 11, 11),
    ("TOS-host-unreachable", 3, 12, 12),
    ("communication-prohibited", 3, 13, 13),
    ("host-precedence-violation", 3, 14, 14),
    ("precedence-cutoff", 3, 15, 15),
    ("source-quench", 4, 0, 255),
    ("redirect", 5, 0, 255),
    ("network-redirect", 5, 0, 0),
    ("host-redirect", 5, 1, 1),
    ("TOS-network-redirect", 5, 2, 2),
    ("TOS-host-redirect", 5, 3, 3),
    ("echo-request", 8, 0, 255),
    ("ping", 8, 0, 255),
    ("router-advertisement", 9, 0, 255),
    ("router-solicitation", 10, 0, 255),
    ("time-exceeded", 11, 0, 255),
    ("ttl-exceeded", 11, 0, 255),
    ("ttl-zero-during-transit", 11, 0, 0),
    ("ttl-zero-during-reassembly", 11, 1, 1),
    ("parameter-problem", 12, 0, 255),
    ("ip-header-bad", 12, 0, 0),
    ("required-option-missing", 12, 1, 1),
    ("timestamp-request", 13, 0, 255),
    ("timestamp-reply", 14, 0, 255),
    ("address-mask-request", 17, 0, 255),
    ("address-mask-reply", 18, 0, 255),
];

/// libxtables' ICMPv6 table as ip6tables 1.8.9 lists it (`ip6tables -p ipv6-icmp -m icmp6 -h`), aliases
/// right after their name, then the `mld-*` names iptables 1.8.11 added (its test suite uses them; saved as
/// numbers, which 1.8.9 reads). docs/conformance.md lists this difference from 1.8.9.
const ICMP6: [(&str, u64, u64, u64); 32] = [
    ("destination-unreachable", 1, 0, 255),
    ("no-route", 1, 0, 0),
    ("communication-prohibited", 1, 1, 1),
    ("beyond-scope", 1, 2, 2),
    ("address-unreachable", 1, 3, 3),
    ("port-unreachable", 1, 4, 4),
    ("failed-policy", 1, 5, 5),
    ("reject-route", 1, 6, 6),
    ("packet-too-big", 2, 0, 255),
    ("time-exceeded", 3, 0, 255),
    ("ttl-exceeded", 3, 0, 255),
    ("ttl-zero-during-transit", 3, 0, 0),
    ("ttl-zero-during-reassembly", 3, 1, 1),
    ("parameter-problem", 4, 0, 255),
    ("bad-header", 4, 0, 0),
    ("unknown-header-type", 4, 1, 1),
    ("unknown-option", 4, 2, 2),
    ("echo-request", 128, 0, 255),
    ("ping", 128, 0, 255),
    ("echo-reply", 129, 0, 255),
    ("pong", 129, 0, 255),
    ("router-solicitation", 133, 0, 255),
    ("router-advertisement", 134, 0, 255),
    ("neighbour-solicitation", 135, 0, 255),
    ("neighbor-solicitation", 135, 0, 255),
    ("neighbour-advertisement", 136, 0, 255),
    ("neighbor-advertisement", 136, 0, 255),
    ("redirect", 137, 0, 255),
    ("mld-listener-query", 130, 0, 255),
    ("mld-listener-report", 131, 0, 255),
    ("mld-listener-done", 132, 0, 255),
    ("mld-listener-reduction", 132, 0, 255),
];

/// `parse_icmp`/`parse_icmpv6`: a name is looked up as iptables does — case-insensitively, as a prefix of
/// exactly one table entry (`echo-req`; `ttl` is ambiguous even between aliases of one type) — else
/// `TYPE[/CODE[:CODE]]` with base-0 numbers.
fn lookup(s: &str, names: &[(&str, u64, u64, u64)]) -> Result<Option<(u64, u64, u64)>, ValErr> {
    let hits: Vec<&(&str, u64, u64, u64)> = names
        .iter()
        .filter(|(n, ..)| {
            n.len() >= s.len() && n.as_bytes()[..s.len()].eq_ignore_ascii_case(s.as_bytes())
        })
        .collect();
    match hits.as_slice() {
        [] => Ok(None),
        [&(_, t, a, b)] => Ok(Some((t, a, b))),
        [x, y, ..] => Err((
            "E0320",
            format!("ambiguous ICMP type `{s}`: `{}` or `{}`?", x.0, y.0),
        )),
    }
}

fn parse_with(s: &str, names: &[(&str, u64, u64, u64)]) -> Result<Val, ValErr> {
    if !s.is_empty() && !s.as_bytes()[0].is_ascii_digit() {
        if let Some((t, a, b)) = lookup(s, names)? {
            return Ok(Val::Pair(Box::new(Val::Num(t)), Box::new(Val::Range(a, b))));
        }
    }
    let bad = || {
        (
            "E0320",
            format!("invalid ICMP type `{s}` (a name, TYPE or TYPE/CODE)"),
        )
    };
    let (t, code) = match s.split_once('/') {
        Some((t, c)) => (uint(t, 255).ok_or_else(bad)?, Some(c)),
        None => (uint(s, 255).ok_or_else(bad)?, None),
    };
    let (a, b) = match code {
        None => (0, 255),
        Some(c) => parse_range(c, 255, ':', "ICMP code").map_err(|_| bad())?,
    };
    Ok(Val::Pair(Box::new(Val::Num(t)), Box::new(Val::Range(a, b))))
}

fn parse4(a: &[&str], _: Family) -> Result<Val, ValErr> {
    parse_with(a[0], &ICMP4)
}
fn parse6(a: &[&str], _: Family) -> Result<Val, ValErr> {
    parse_with(a[0], &ICMP6)
}

static OPTS4: [OptDef; 1] = [OptDef::new("icmp-type", Arity::One, true, parse4)];
static OPTS6: [OptDef; 1] = [OptDef::new("icmpv6-type", Arity::One, true, parse6)];

fn save(i: &Inst, out: &mut String) {
    let Some(g) = i.given.first() else {
        if !i.ext.opts[0].name.contains("v6") {
            out.push_str(" --icmp-type any");
        }
        return;
    };
    let Val::Pair(t, c) = &g.val else { return };
    let (Val::Num(t), Val::Range(a, b)) = (&**t, &**c) else {
        return;
    };
    opt_head(out, g);
    if g.name == "icmp-type" && *t == 255 && *a == 0 && *b == 255 {
        out.push_str(" any");
        return;
    }
    out.push_str(&format!(" {t}"));
    if *a != 0 || *b != 255 {
        if a == b {
            out.push_str(&format!("/{a}"));
        } else {
            out.push_str(&format!("/{a}:{b}"));
        }
    }
}

/// `-m icmp` needs `--icmp-type` ("icmp: option \"--icmp-type\" must be specified", iptables 1.8.9; a second
/// `-m icmp` is a second instance that needs its own).
fn check4(i: &Inst, _: &RuleCtx) -> CheckResult {
    need_one(i, &["icmp-type"])
}

/// `-m icmp6` needs `--icmpv6-type`.
fn check6(i: &Inst, _: &RuleCtx) -> CheckResult {
    need_one(i, &["icmpv6-type"])
}

pub static EXT4: Ext = Ext {
    name: "icmp",
    target: false,
    family: Some(Family::V4),
    protos: &[1],
    tables: &[],
    hooks: &[],
    opts: &OPTS4,
    check: check4,
    save,
};

pub static EXT6: Ext = Ext {
    name: "icmp6",
    target: false,
    family: Some(Family::V6),
    protos: &[58],
    tables: &[],
    hooks: &[],
    opts: &OPTS6,
    check: check6,
    save,
};
