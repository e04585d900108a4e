//! One typed rule of the filter table → the IR's matches, action and comment, or the located reasons it
//! cannot be represented (`E02xx`).
use super::SUPPORTED;
use crate::diag::{Diagnostic, Span};
use crate::ir::{Action, ChainId, Field, Match, RejectWith, Test};
use crate::syntax::iptables::ext::{Given, Inst, Val};
use crate::syntax::iptables::rule::{IpNet, Module, Neg, Target, TypedRule};
use crate::syntax::iptables::RuleLine;
use std::collections::HashMap;

pub(super) fn unsupported(code: &'static str, what: String, at: Span) -> Diagnostic {
    Diagnostic::error(code, format!("{what} is not supported yet"))
        .at(at)
        .help(SUPPORTED)
}

/// A value the registry guarantees could not be lowered: a compiler bug, reported, never a panic.
fn internal(at: Span) -> Diagnostic {
    Diagnostic::error("E0999", "internal compiler error: unexpected option value").at(at)
}

/// A match of one numeric field from an option whose value is a range (`--dport 1:1023`, `--length
/// 40:1500`) or a list of ranges (`--dports 22,80:90`); `!` kept.
fn range_match(field: Field, g: &Given) -> Option<Match> {
    let tests = match &g.val {
        Val::Range(a, b) => vec![Test::Range {
            lo: *a as u32,
            hi: *b as u32,
        }],
        Val::Ranges(rs) => rs
            .iter()
            .map(|&(a, b)| Test::Range {
                lo: a as u32,
                hi: b as u32,
            })
            .collect(),
        _ => return None,
    };
    Some(Match {
        field,
        tests,
        negated: g.neg,
        set: None,
        span: g.span,
    })
}

/// A header match (`-m length`, …) written after a transport match of the same rule. iptables tests a
/// rule's matches in order, and its tcp/udp/multiport matches drop a packet whose transport header is
/// truncated ("hotdrop") as soon as they are reached: the header match after it is then never tested.
/// The IR tests header matches with the IP part, before the transport match (the order every rule
/// written the other way has), so this order is refused rather than compiled with a different meaning
/// on truncated packets.
fn after_transport(header: &Inst, transport: Option<&Inst>) -> Option<Diagnostic> {
    let t = transport?;
    Some(
        Diagnostic::error(
            "E0209",
            format!(
                "`-m {}` after `-m {}` is not supported yet",
                header.name(),
                t.name()
            ),
        )
        .at(header.span)
        .label(format!(
            "tested after the {} match, which drops a packet with a truncated transport header before reaching it",
            t.name()
        ))
        .help(format!(
            "write `-m {}` before `-m {}` (the same rule for every packet whose transport header is complete)",
            header.name(),
            t.name()
        )),
    )
}

/// `--tcp-flags MASK COMP` / `--syn` (`MASK` FIN,SYN,RST,ACK, `COMP` SYN): `xt_tcpudp.c` matches
/// `(byte13 & MASK) == COMP`, XOR `!`. Lowered exactly to the list of flag bytes that satisfy it (CWR
/// and ECE are never in a mask iptables can spell, so at least 4 of the 256 bytes). A `COMP` with
/// bits outside `MASK` can never hold and is refused.
fn tcp_flags_match(g: &Given) -> Result<Match, Diagnostic> {
    let Val::Pair(mask, comp) = &g.val else {
        return Err(internal(g.span));
    };
    let (Val::Bits(mask), Val::Bits(comp)) = (mask.as_ref(), comp.as_ref()) else {
        return Err(internal(g.span));
    };
    if comp & !mask != 0 {
        return Err(unsupported(
            "E0201",
            "`--tcp-flags` whose set flags are not all in its mask (it never matches)".into(),
            g.span,
        ));
    }
    let tests = (0u32..=255)
        .filter(|b| b & mask == *comp)
        .map(Test::Exact)
        .collect();
    Ok(Match {
        field: Field::TcpFlags,
        tests,
        negated: g.neg,
        set: None,
        span: g.span,
    })
}

/// `--ctstate LIST` / `--state LIST` (libxt_conntrack's bits: INVALID 1, NEW 2, RELATED 4,
/// ESTABLISHED 8, UNTRACKED 16, SNAT 32, DNAT 64) as a `ct_state` match of the states' values
/// ([`crate::packet::CtState`]), `!` kept. `SNAT`/`DNAT` (NAT bits of the entry, not states) and the
/// other conntrack options are refused, located.
fn ct_state_match(g: &Given) -> Result<Match, Diagnostic> {
    use crate::packet::CtState;
    if !matches!(g.name, "ctstate" | "state") {
        return Err(unsupported(
            "E0201",
            format!("conntrack option `--{}`", g.name),
            g.span,
        ));
    }
    let Val::Bits(bits) = g.val else {
        return Err(internal(g.span));
    };
    if bits & (32 | 64) != 0 {
        return Err(unsupported(
            "E0201",
            "`--ctstate SNAT`/`DNAT` (the entry's NAT status)".into(),
            g.span,
        ));
    }
    let tests = [
        (1, CtState::Invalid),
        (2, CtState::New),
        (8, CtState::Established),
        (4, CtState::Related),
        (16, CtState::Untracked),
    ]
    .into_iter()
    .filter(|(b, _)| bits & b != 0)
    .map(|(_, s)| Test::Exact(s as u32))
    .collect();
    Ok(Match {
        field: Field::CtState,
        tests,
        negated: g.neg,
        set: None,
        span: g.span,
    })
}

/// The states a `ct_state` match admits (its tests, or their complement when negated).
pub(crate) fn ct_admitted(m: &Match) -> Vec<crate::packet::CtState> {
    crate::packet::CtState::ALL
        .into_iter()
        .filter(|s| m.tests.contains(&Test::Exact(*s as u32)) != m.negated)
        .collect()
}

/// The note `N0004` on a rule's `ct_state` match: where tailwall's state differs from iptables' for
/// the states it admits ([`crate::packet::CtState::departures`]); `None` when nothing differs.
pub(crate) fn ct_note(m: &Match) -> Option<Diagnostic> {
    let d = crate::packet::CtState::departures(&ct_admitted(m));
    if d.is_empty() {
        return None;
    }
    Some(
        Diagnostic::note(
            "N0004",
            format!(
                "the connection state is read from XDP/tc before conntrack: {}",
                d.join("; ")
            ),
        )
        .at(m.span),
    )
}

/// A conntrack match after the rule's transport match: iptables tests it after the transport match,
/// which drops a packet with a truncated transport header first; the IR tests `ct_state` with the IP
/// part. Such a packet's state is `INVALID` ([`crate::packet::CtState::without_entry`]), so the order
/// changes nothing when the match admits `INVALID`; otherwise iptables drops the packet where the IR
/// would go on to the next rule: refused (E0209), never compiled with a different meaning.
fn ct_after_transport(header: &Inst, transport: Option<&Inst>, m: &Match) -> Option<Diagnostic> {
    let admits_invalid = m.tests.contains(&Test::Exact(0)) != m.negated;
    if admits_invalid {
        return None;
    }
    after_transport(header, transport)
}

/// The match of `--src-range`/`--dst-range LO-HI` (`!` in `g`) on `field`, taking the rule's `-s`/`-d`
/// match of the same field out of `matches` when there is one (the rule tests both): a range whose
/// low end is above its high end holds for no address (xt_iprange compares `< min || > max`), the
/// intersection with a non-negated `-s`/`-d` prefix is one range. `Ok(None)`: the match holds for
/// every packet. A negated range or prefix together with the other is refused (E0202).
fn iprange_match(
    field: Field,
    lo: u32,
    hi: u32,
    g: &Given,
    matches: &mut Vec<Match>,
) -> Result<Option<Match>, Diagnostic> {
    let full = Test::Range {
        lo: 0,
        hi: u32::MAX,
    };
    // `LO-HI` with LO > HI: no address is in it.
    if lo > hi {
        if g.neg {
            return Ok(None);
        }
        // False AND the rule's `-s`/`-d`: false.
        matches.retain(|m| m.field != field);
        return Ok(Some(Match::single(field, full, true, g.span)));
    }
    let (test, negated) = (Test::Range { lo, hi }, g.neg);
    let Some(at) = matches.iter().position(|m| m.field == field) else {
        return Ok(Some(Match::single(field, test, negated, g.span)));
    };
    let other = &matches[at];
    let prefix = other.single_test().and_then(|t| t.bounds(32));
    let (Some((plo, phi)), false, false) = (prefix, other.negated, negated) else {
        return Err(unsupported(
            "E0202",
            format!(
                "`{}` together with `{}` on the same address, one of them negated,",
                if field == Field::SrcIp { "-s" } else { "-d" },
                if field == Field::SrcIp {
                    "--src-range"
                } else {
                    "--dst-range"
                },
            ),
            g.span,
        ));
    };
    matches.remove(at);
    let (ilo, ihi) = ((plo as u32).max(lo), (phi as u32).min(hi));
    Ok(Some(if ilo > ihi {
        Match::single(field, full, true, g.span)
    } else {
        Match::single(field, Test::Range { lo: ilo, hi: ihi }, false, g.span)
    }))
}

fn iface_match(field: Field, i: &Neg<String>) -> Option<Match> {
    let (name, wildcard) = match i.value.strip_suffix('+') {
        Some(n) => (n.to_string(), true),
        None => (i.value.clone(), false),
    };
    if name.is_empty() && wildcard && !i.negated {
        return None; // `-i +`: any interface.
    }
    Some(Match::single(
        field,
        Test::Iface { name, wildcard },
        i.negated,
        i.span,
    ))
}

/// The matches, action and comment of one typed rule, or the reasons it cannot be represented.
pub(super) fn lower_typed(
    r: &TypedRule,
    line: &RuleLine,
    ids: &HashMap<&str, usize>,
    logs: &mut Vec<crate::ir::LogSpec>,
) -> Result<(Vec<Match>, Action, Option<String>), Vec<Diagnostic>> {
    let mut errs = Vec::new();
    let mut matches: Vec<Match> = Vec::new();
    let mut comments: Vec<String> = Vec::new();
    let push = |m: Match, errs: &mut Vec<Diagnostic>, matches: &mut Vec<Match>| {
        if matches.iter().any(|x| x.field == m.field) {
            errs.push(
                Diagnostic::error("E0306", format!("{} is matched twice in one rule", m.field))
                    .at(m.span)
                    .label(format!("{} is already matched earlier in this rule", m.field))
                    .help("the IR has one match per field; split the rule or merge the values into one list"),
            );
            return;
        }
        matches.push(m);
    };
    for (field, a) in [(Field::SrcIp, &r.src), (Field::DstIp, &r.dst)] {
        let Some(a) = a else { continue };
        // The parser reads the file's family: IPv4 addresses in an iptables file, IPv6 ones in an
        // ip6tables file; each lowers to its family's address field.
        let (field, addr, shown) = match a.value {
            IpNet::V4 { addr, mask } => (
                field,
                u128::from(u32::from(addr) & mask),
                std::net::Ipv4Addr::from(mask).to_string(),
            ),
            IpNet::V6 { addr, mask } => (
                field.for_family(crate::ir::Family::V6),
                u128::from(addr) & mask,
                std::net::Ipv6Addr::from(mask).to_string(),
            ),
        };
        match a.value.prefix_len() {
            Some(0) if !a.negated => {}
            Some(len) => push(
                Match::single(field, Test::Prefix { addr, len }, a.negated, a.span),
                &mut errs,
                &mut matches,
            ),
            None => errs.push(
                Diagnostic::error(
                    "E0207",
                    format!("non-contiguous netmask `{shown}` is not supported yet"),
                )
                .at(a.span)
                .help("use a contiguous mask such as /255.255.255.0 or /64 (a prefix length)"),
            ),
        }
    }
    for (field, i) in [
        (Field::InIface, &r.in_iface),
        (Field::OutIface, &r.out_iface),
    ] {
        let Some(i) = i else { continue };
        if let Some(m) = iface_match(field, i) {
            push(m, &mut errs, &mut matches);
        }
    }
    if let Some(p) = &r.proto {
        if p.value != 0 {
            push(
                Match::single(Field::Proto, Test::Exact(p.value as u32), p.negated, p.span),
                &mut errs,
                &mut matches,
            );
        }
    }
    // `-f`: non-first fragments; `! -f`: first fragments and unfragmented packets.
    if let Some(f) = &r.fragment {
        push(
            Match::single(Field::Fragment, Test::Exact(1), f.negated, f.span),
            &mut errs,
            &mut matches,
        );
    }
    let mut transport: Option<&Inst> = None;
    for m in &r.matches {
        let inst = match m {
            Module::Typed(i) => i,
            Module::Generic { name, span, .. } => {
                errs.push(unsupported(
                    "E0202",
                    format!("match module `-m {name}`"),
                    *span,
                ));
                continue;
            }
        };
        match inst.name() {
            "tcp" | "udp" => {
                transport = Some(inst);
                for g in &inst.given {
                    let field = match g.name {
                        "sport" => Field::SrcPort,
                        "dport" => Field::DstPort,
                        "tcp-flags" | "syn" => {
                            match tcp_flags_match(g) {
                                Ok(m) => push(m, &mut errs, &mut matches),
                                Err(e) => errs.push(e),
                            }
                            continue;
                        }
                        other => {
                            errs.push(unsupported(
                                "E0201",
                                format!("tcp option `--{other}`"),
                                g.span,
                            ));
                            continue;
                        }
                    };
                    match range_match(field, g) {
                        Some(m) => push(m, &mut errs, &mut matches),
                        None => errs.push(internal(g.span)),
                    }
                }
            }
            "multiport" => {
                if !matches!(r.proto.as_ref().map(|p| p.value), Some(6 | 17)) {
                    errs.push(unsupported(
                        "E0202",
                        "`-m multiport` with a protocol other than tcp or udp".into(),
                        inst.span,
                    ));
                    continue;
                }
                transport = Some(inst);
                for g in &inst.given {
                    let field = match g.name {
                        "sports" => Field::SrcPort,
                        "dports" => Field::DstPort,
                        _ => {
                            errs.push(unsupported(
                                "E0202",
                                "`-m multiport --ports` (source or destination)".into(),
                                g.span,
                            ));
                            continue;
                        }
                    };
                    match range_match(field, g) {
                        Some(m) => push(m, &mut errs, &mut matches),
                        None => errs.push(internal(g.span)),
                    }
                }
            }
            // xt_tcpudp.c `icmp_match` / ip6t_icmp6.c `icmp6_match`: `type == T && code in [lo, hi]`,
            // XOR `!`; non-first fragments never match, a header under 8 bytes is hotdropped (the
            // transport-field semantics of `icmp_type`). In IPv4 type 255 (`any`) matches every type
            // (`icmp_type_code_match`: `test_type == 0xFF`); ICMPv6 has no such wildcard.
            "icmp" | "icmp6" => {
                transport = Some(inst);
                for g in &inst.given {
                    let Val::Pair(t, c) = &g.val else {
                        errs.push(internal(g.span));
                        continue;
                    };
                    let (Val::Num(t), Val::Range(a, b)) = (t.as_ref(), c.as_ref()) else {
                        errs.push(internal(g.span));
                        continue;
                    };
                    let (t, a, b) = (*t as u32, *a as u32, *b as u32);
                    let test = if inst.name() == "icmp" && t == 255 {
                        Test::Range { lo: 0, hi: 0xffff }
                    } else {
                        Test::Range {
                            lo: t << 8 | a,
                            hi: t << 8 | b,
                        }
                    };
                    push(
                        Match::single(Field::IcmpType, test, g.neg, g.span),
                        &mut errs,
                        &mut matches,
                    );
                }
            }
            // xt_iprange.c: `min <= addr <= max` XOR `!`, on the source and/or destination: the IP
            // part's address fields as a range test. With `-s`/`-d` on the same field the rule tests
            // both: their intersection when neither is negated.
            "iprange" => {
                if let Some(e) = after_transport(inst, transport) {
                    errs.push(e);
                    continue;
                }
                for g in &inst.given {
                    let field = match g.name {
                        "src-range" => Field::SrcIp,
                        _ => Field::DstIp,
                    };
                    let range = match &g.val {
                        Val::Word(w) => w.split_once('-').and_then(|(a, b)| {
                            Some((
                                a.parse::<std::net::Ipv4Addr>().ok()?,
                                b.parse::<std::net::Ipv4Addr>().ok()?,
                            ))
                        }),
                        _ => None,
                    };
                    let Some((lo, hi)) = range.map(|(a, b)| (u32::from(a), u32::from(b))) else {
                        if r.family == crate::ir::Family::V6 {
                            errs.push(unsupported(
                                "E0202",
                                "`-m iprange` of IPv6 addresses".into(),
                                g.span,
                            ));
                        } else {
                            errs.push(internal(g.span));
                        }
                        continue;
                    };
                    match iprange_match(field, lo, hi, g, &mut matches) {
                        Ok(Some(m)) => push(m, &mut errs, &mut matches),
                        Ok(None) => {}
                        Err(e) => errs.push(e),
                    }
                }
            }
            // xt_length.c: `tot_len` within [min, max], XOR `!`.
            "length" => {
                if let Some(e) = after_transport(inst, transport) {
                    errs.push(e);
                    continue;
                }
                for g in &inst.given {
                    match range_match(Field::Length, g) {
                        Some(m) => push(m, &mut errs, &mut matches),
                        None => errs.push(internal(g.span)),
                    }
                }
            }
            // xt_ttl.c / xt_hl.c: `==`, `!=` (`! --ttl-eq`), `<`, `>` on the TTL / hop limit.
            "ttl" | "hl" => {
                if let Some(e) = after_transport(inst, transport) {
                    errs.push(e);
                    continue;
                }
                for g in &inst.given {
                    let Val::Num(n) = g.val else {
                        errs.push(internal(g.span));
                        continue;
                    };
                    let n = n as u32;
                    // `< 0` and `> 255` hold for no packet: the negated full range.
                    let (test, negated) = match g.name {
                        "ttl-eq" | "hl-eq" => (Test::Range { lo: n, hi: n }, g.neg),
                        "ttl-lt" | "hl-lt" if n == 0 => (Test::Range { lo: 0, hi: 255 }, true),
                        "ttl-lt" | "hl-lt" => (Test::Range { lo: 0, hi: n - 1 }, false),
                        "ttl-gt" | "hl-gt" if n >= 255 => (Test::Range { lo: 0, hi: 255 }, true),
                        "ttl-gt" | "hl-gt" => (Test::Range { lo: n + 1, hi: 255 }, false),
                        _ => {
                            errs.push(internal(g.span));
                            continue;
                        }
                    };
                    push(
                        Match::single(Field::Ttl, test, negated, g.span),
                        &mut errs,
                        &mut matches,
                    );
                }
            }
            // xt_conntrack.c / `-m state` (an alias of it): the packet's state bit (one of INVALID,
            // NEW, ESTABLISHED, RELATED, UNTRACKED) in `--ctstate`'s mask, XOR `!`.
            "conntrack" | "state" => {
                if r.family == crate::ir::Family::V6 {
                    errs.push(unsupported(
                        "E0202",
                        format!("`-m {}` in an ip6tables ruleset", inst.name()),
                        inst.span,
                    ));
                    continue;
                }
                for g in &inst.given {
                    match ct_state_match(g) {
                        Ok(m) => {
                            if let Some(e) = ct_after_transport(inst, transport, &m) {
                                errs.push(e);
                                continue;
                            }
                            push(m, &mut errs, &mut matches)
                        }
                        Err(e) => errs.push(e),
                    }
                }
            }
            "comment" => {
                for g in &inst.given {
                    if let Val::Text(t) = &g.val {
                        comments.push(t.clone());
                    }
                }
            }
            name => errs.push(unsupported(
                "E0202",
                format!("match module `-m {name}`"),
                inst.span,
            )),
        }
    }
    let action = match &r.target {
        None => {
            errs.push(
                Diagnostic::error("E0204", "a rule without `-j` is not supported yet")
                    .at(line.span)
                    .label("no target")
                    .help("add `-j ACCEPT` or `-j DROP`"),
            );
            None
        }
        Some((t, span)) => match t {
            Target::Verdict(v) if v == "ACCEPT" => Some(Action::Accept),
            Target::Verdict(v) if v == "DROP" => Some(Action::Drop),
            Target::Verdict(v) if v == "RETURN" => Some(Action::Return),
            Target::Jump(c) | Target::Goto(c) => match ids.get(c.as_str()) {
                Some(&i) if matches!(t, Target::Jump(_)) => Some(Action::Jump(ChainId(i as u32))),
                Some(&i) => Some(Action::Goto(ChainId(i as u32))),
                // The parser refuses jumps to chains not declared before the rule.
                None => {
                    errs.push(internal(*span));
                    None
                }
            },
            Target::Verdict(v) => {
                errs.push(unsupported("E0203", format!("target `-j {v}`"), *span));
                None
            }
            Target::Ext(i) if matches!(i.name(), "LOG" | "NFLOG") => {
                logs.push(log_spec(i));
                Some(Action::Log(crate::ir::LogId(logs.len() as u32 - 1)))
            }
            // ipt_REJECT.c / ip6t_REJECT.c: the reply's kind, the family's port unreachable by
            // default; `tcp-reset` without `-p tcp` was refused by the extension's check (E0322).
            Target::Ext(i) if i.name() == "REJECT" => match i.get("reject-with") {
                None => Some(Action::Reject(RejectWith::default_for(r.family))),
                Some(g) => match &g.val {
                    Val::Word(w) => match RejectWith::from_name(w, r.family) {
                        Some(k) => Some(Action::Reject(k)),
                        None => {
                            errs.push(internal(g.span));
                            None
                        }
                    },
                    _ => {
                        errs.push(internal(g.span));
                        None
                    }
                },
            },
            Target::Ext(i) => {
                errs.push(unsupported(
                    "E0203",
                    format!("target `-j {}`", i.name()),
                    *span,
                ));
                None
            }
            Target::Generic { name, .. } => {
                errs.push(unsupported("E0203", format!("target `-j {name}`"), *span));
                None
            }
        },
    };
    if !errs.is_empty() {
        return Err(errs);
    }
    // A tcp/udp match without port options still fails on packets without ports (non-first fragments)
    // and drops truncated headers: keep it as a full-range port test.
    if let Some(inst) = transport {
        if !matches.iter().any(|m| m.field.info().transport) {
            matches.push(Match::single(
                Field::DstPort,
                Test::Range { lo: 0, hi: 65535 },
                false,
                inst.span,
            ));
        }
    }
    matches.sort_by_key(|m| m.field);
    let comment = (!comments.is_empty()).then(|| comments.join("; "));
    match action {
        Some(a) => Ok((matches, a, comment)),
        None => Err(Vec::new()),
    }
}

/// The parameters of a typed `-j LOG` / `-j NFLOG` (its options were checked by the extension
/// registry: `syntax/iptables/ext/log.rs`, `nflog.rs`).
fn log_spec(i: &crate::syntax::iptables::ext::Inst) -> crate::ir::LogSpec {
    use crate::ir::{LogKind, LogSpec, LOG_IPOPT, LOG_MACDECODE, LOG_TCPOPT, LOG_TCPSEQ, LOG_UID};
    let num = |name: &str| match i.get(name).map(|g| &g.val) {
        Some(Val::Num(n)) => Some(*n),
        _ => None,
    };
    let text = |name: &str| match i.get(name).map(|g| &g.val) {
        Some(Val::Text(t)) => t.clone(),
        _ => String::new(),
    };
    if i.name() == "NFLOG" {
        return LogSpec {
            kind: LogKind::Nflog {
                group: num("nflog-group").unwrap_or(0) as u16,
                range: num("nflog-range")
                    .or_else(|| num("nflog-size"))
                    .unwrap_or(0) as u32,
                threshold: num("nflog-threshold").unwrap_or(0) as u16,
            },
            prefix: text("nflog-prefix"),
        };
    }
    let mut flags = 0;
    for (name, bit) in [
        ("log-tcp-sequence", LOG_TCPSEQ),
        ("log-tcp-options", LOG_TCPOPT),
        ("log-ip-options", LOG_IPOPT),
        ("log-uid", LOG_UID),
        ("log-macdecode", LOG_MACDECODE),
    ] {
        if i.has(name) {
            flags |= bit;
        }
    }
    LogSpec {
        kind: LogKind::Log {
            level: num("log-level").unwrap_or(4) as u8,
            flags,
        },
        prefix: text("log-prefix"),
    }
}
