//! Lowering: YAML AST → IR.
//!
//! Guarantees: a file without errors yields a [`Ruleset`] that passes [`crate::ir::verify`] and is the
//! IR the iptables front end builds for the same firewall (chains in the order the file declares them,
//! rule ids `r0..` chain by chain, matches sorted by field, single ports as one-port ranges, single
//! addresses as `/32` prefixes, set references expanded into their elements with `Match::set` naming
//! the set). Checked here, each with a located error: jump/goto targets (`E0410`), set references
//! (`E0412`), ports only with `proto` tcp/udp (`E0408`), built-in chains declared twice (`E0414`), and,
//! with the same codes as the iptables front end (the chain graph, [`crate::ir::graph`]): interfaces a
//! built-in chain's own rules test that its hook does not have (`E0314`), chain loops and nesting deeper
//! than [`crate::ir::MAX_CALL_DEPTH`] (`E0313`); rule ids (`E0417`), comment length (`E0416`). Sets no rule uses get
//! warning `W0401`.
//!
//! Thrown away: the spelling of values (the IR keeps what they denote), YAML spans beyond the match,
//! rule, chain and set level.
use super::ast::{ActionDef, ChainDef, Document, MatchDef, RuleDef, SetDef, Values};
use crate::diag::{Diagnostic, Span};
use crate::ir::graph::{self, ChainGraph};
use crate::ir::{
    Action, Chain, ChainId, Family, Field, Match, NamedSet, RejectWith, Rule, RuleId, Ruleset, Test,
};
use crate::lower::MAX_COMMENT_LEN;
use std::collections::{HashMap, HashSet};

/// Lower a read document; problems are appended to `diags`.
pub fn lower_document(doc: &Document, diags: &mut Vec<Diagnostic>) -> Ruleset {
    let sets: HashMap<&str, &SetDef> = doc
        .sets
        .iter()
        .map(|s| (s.name.value.as_str(), s))
        .collect();
    let mut used_sets: HashSet<&str> = HashSet::new();
    let chain_ids: HashMap<&str, (ChainId, &ChainDef)> = doc
        .chains
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.value.as_str(), (ChainId(i as u32), c)))
        .collect();
    let mut rs = Ruleset {
        family: doc.family.as_ref().map_or(Family::V4, |f| f.value),
        chains: Vec::new(),
        sets: doc
            .sets
            .iter()
            .map(|s| NamedSet {
                name: s.name.value.clone(),
                field_kind: s.kind,
                elements: s.elements.iter().map(|e| e.value.clone()).collect(),
                span: s.span,
            })
            .collect(),
        logs: Vec::new(),
    };
    // Per chain: (target, span of the jump/goto) of every jump and goto, for the loop check.
    let mut edges: Vec<Vec<(usize, Span)>> = Vec::new();
    let mut next_id = 0u32;
    for (ci, c) in doc.chains.iter().enumerate() {
        if let Some(h) = c.hook {
            if let Some(first) = doc.chains[..ci].iter().find(|o| o.hook == Some(h)) {
                diags.push(
                    Diagnostic::error(
                        "E0414",
                        format!("built-in chain `{}` is declared twice", h.chain_name()),
                    )
                    .at(c.name.span)
                    .label(format!("also declared as `{}`", first.name.value))
                    .help("`input`/`INPUT` (and forward, output) name the same built-in chain; keep one"),
                );
            }
        }
        let id = ChainId(ci as u32);
        let mut chain = Chain {
            id,
            name: match c.hook {
                Some(h) => h.chain_name().to_string(),
                None => c.name.value.clone(),
            },
            hook: c.hook,
            policy: c.policy.as_ref().map(|p| p.value),
            rules: Vec::new(),
            span: c.span,
        };
        let mut out = Vec::new();
        for (ri, r) in c.rules.iter().enumerate() {
            let rid = RuleId(next_id);
            next_id += 1;
            if !r.complete {
                continue;
            }
            if let Some(rule) = lower_rule(
                r,
                rs.family,
                rid,
                id,
                ri as u32 + 1,
                &chain_ids,
                &sets,
                &mut used_sets,
                &mut out,
                &mut rs.logs,
                diags,
            ) {
                chain.rules.push(rule);
            }
        }
        edges.push(out);
        rs.chains.push(chain);
    }
    check_graph(&rs, &edges, diags);
    for s in &doc.sets {
        if s.family.is_some_and(|f| f != rs.family) {
            diags.push(family_mismatch(
                &format!("set `{}`", s.name.value),
                rs.family,
                s.span,
            ));
        }
        if !used_sets.contains(&s.name.value.as_str()) {
            diags.push(
                Diagnostic::warning("W0401", format!("set `{}` is never used", s.name.value))
                    .at(s.name.span)
                    .help(format!(
                        "reference it from a rule (`src_ip: \"@{}\"`) or remove it",
                        s.name.value
                    )),
            );
        }
    }
    rs
}

#[allow(clippy::too_many_arguments)]
fn lower_rule<'d>(
    r: &'d RuleDef,
    family: Family,
    id: RuleId,
    chain: ChainId,
    position: u32,
    chains: &HashMap<&str, (ChainId, &ChainDef)>,
    sets: &HashMap<&str, &'d SetDef>,
    used_sets: &mut HashSet<&'d str>,
    edges: &mut Vec<(usize, Span)>,
    logs: &mut Vec<crate::ir::LogSpec>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Rule> {
    let before = diags.len();
    if let Some(want) = &r.id {
        if want.value != id.0 {
            diags.push(
                Diagnostic::error("E0417", format!("rule id `r{}` does not match the rule's place: it is {id}", want.value))
                    .at(want.span)
                    .help("rule ids count rules from r0 across all chains in file order; fix the id or remove it"),
            );
        }
    }
    if let Some(c) = &r.comment {
        if c.value.len() > MAX_COMMENT_LEN {
            diags.push(
                Diagnostic::error(
                    "E0416",
                    format!(
                        "comment is {} bytes long; at most {MAX_COMMENT_LEN} are allowed",
                        c.value.len()
                    ),
                )
                .at(c.span)
                .help("iptables' comment match stores 255 bytes; shorten the comment"),
            );
        }
    }
    let mut matches = Vec::new();
    for m in &r.matches {
        if let Some(lowered) = lower_match(m, family, sets, used_sets, diags) {
            matches.push(lowered);
        }
    }
    check_transport(r, &matches, family, diags);
    if let Some(w) = r
        .with
        .as_ref()
        .filter(|_| !matches!(r.action.as_ref().map(|a| &a.value), Some(ActionDef::Reject)))
    {
        diags.push(
            Diagnostic::error("E0419", "`with:` belongs to `action: reject`")
                .at(w.span)
                .label("this rule does not reject")
                .help("remove `with:`, or write `action: reject`"),
        );
        return None;
    }
    for m in matches.iter().filter(|m| m.field == Field::CtState) {
        // As the iptables front end: no conntrack state in an IPv6 ruleset yet (the datapath reads it
        // for IPv4 only), and `check` names the differences from iptables (N0004).
        if family == Family::V6 {
            diags.push(
                Diagnostic::error(
                    "E0202",
                    "`ct_state` in a `family: ipv6` document is not supported yet",
                )
                .at(m.span)
                .help("the datapath reads the connection state of IPv4 packets only"),
            );
        } else if let Some(n) = crate::lower::rule::ct_note(m) {
            diags.push(n);
        }
    }
    let action = match r.action.as_ref().map(|a| &a.value) {
        Some(ActionDef::Accept) => Action::Accept,
        Some(ActionDef::Drop) => Action::Drop,
        Some(ActionDef::Return) => Action::Return,
        Some(ActionDef::Log(spec)) => {
            logs.push(spec.clone());
            Action::Log(crate::ir::LogId(logs.len() as u32 - 1))
        }
        Some(ActionDef::Reject) => match reject_with(r, &matches, family) {
            Ok(k) => Action::Reject(k),
            Err(d) => {
                diags.push(d);
                return None;
            }
        },
        Some(ActionDef::Jump(target) | ActionDef::Goto(target)) => {
            let jump = matches!(
                r.action.as_ref().map(|a| &a.value),
                Some(ActionDef::Jump(_))
            );
            match chains.get(target.value.as_str()) {
                Some((tid, def)) if def.hook.is_none() => {
                    edges.push((tid.0 as usize, target.span));
                    if jump {
                        Action::Jump(*tid)
                    } else {
                        Action::Goto(*tid)
                    }
                }
                Some(_) => {
                    diags.push(
                        Diagnostic::error("E0410", format!("cannot jump to the built-in chain `{}`", target.value))
                            .at(target.span)
                            .help("jump and goto go to user chains; move the rules into a user chain and jump there from both places"),
                    );
                    return None;
                }
                None => {
                    let mut names: Vec<&str> = chains
                        .iter()
                        .filter(|(_, (_, d))| d.hook.is_none())
                        .map(|(n, _)| *n)
                        .collect();
                    names.sort_unstable();
                    diags.push(
                        Diagnostic::error("E0410", format!("unknown chain `{}`", target.value))
                            .at(target.span)
                            .label("no such user chain")
                            .help(if names.is_empty() {
                                "declare it under `chains:` (`NAME: {rules: [...]}`)".to_string()
                            } else {
                                format!("user chains: {}", names.join(", "))
                            }),
                    );
                    return None;
                }
            }
        }
        None => return None,
    };
    if diags[before..].iter().any(Diagnostic::is_error) {
        return None;
    }
    Some(Rule {
        id,
        chain,
        position,
        matches,
        action,
        comment: r.comment.as_ref().map(|c| c.value.clone()),
        counters: None,
        span: r.span,
    })
}

/// The reply of an `action: reject` rule (`ipt_REJECT.c` / `ip6t_REJECT.c`): `with:` in
/// `--reject-with`'s spellings of the document's family (aliases included), the family's port
/// unreachable without it.
///
/// # Errors
/// `E0419` for a kind unknown in the family, and for `tcp-reset` on a rule that does not match
/// `proto: tcp` exactly (the targets' checkentry refuses it: "TCP_RESET invalid for non-tcp").
fn reject_with(r: &RuleDef, matches: &[Match], family: Family) -> Result<RejectWith, Diagnostic> {
    let Some(w) = &r.with else {
        return Ok(RejectWith::default_for(family));
    };
    let Some(k) = RejectWith::from_name(&w.value, family) else {
        let names: Vec<&str> = RejectWith::ALL
            .iter()
            .filter(|k| k.family().is_none_or(|f| f == family))
            .map(|k| k.as_str())
            .collect();
        return Err(Diagnostic::error(
            "E0419",
            format!("unknown reject kind `{}` for {}", w.value, family.tool()),
        )
        .at(w.span)
        .label("not a reply of this family")
        .help(format!("one of: {}", names.join(", "))));
    };
    let tcp_only = matches.iter().any(|m| {
        m.field == Field::Proto && !m.negated && m.tests.len() == 1 && m.tests[0] == Test::Exact(6)
    });
    if k == RejectWith::TcpReset && !tcp_only {
        return Err(Diagnostic::error("E0419", "`with: tcp-reset` needs `proto: tcp`")
            .at(w.span)
            .label("this rule may match packets that are not TCP")
            .help("add `proto: tcp` to the rule (iptables refuses `--reject-with tcp-reset` without `-p tcp`)"));
    }
    Ok(k)
}

/// An address of the wrong family for the document (`what` spells where it was written).
fn family_mismatch(what: &str, family: Family, at: Span) -> Diagnostic {
    let (other, help) = match family {
        Family::V4 => (
            "IPv6",
            "IPv6 rules belong in a document with `family: ipv6` (an ip6tables ruleset); an IPv4 one holds IPv4 addresses",
        ),
        Family::V6 => (
            "IPv4",
            "this document is `family: ipv6` (an ip6tables ruleset): write IPv6 addresses, or put IPv4 rules in an IPv4 document",
        ),
    };
    Diagnostic::error(
        "E0405",
        format!(
            "{what} holds {other} addresses in an {} ruleset",
            family.as_str()
        ),
    )
    .at(at)
    .help(help)
}

fn lower_match<'d>(
    m: &'d MatchDef,
    family: Family,
    sets: &HashMap<&str, &'d SetDef>,
    used_sets: &mut HashSet<&'d str>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Match> {
    // Written values carry their family (`ast` picks the field by their spelling).
    if matches!(m.values, Values::Tests(_)) && m.field.family().is_some_and(|f| f != family) {
        diags.push(family_mismatch(
            &format!("`{}`", m.field.for_family(Family::V4)),
            family,
            m.span,
        ));
        return None;
    }
    // A set reference on an address key names the document family's field.
    let field = m.field.for_family(family);
    match &m.values {
        Values::Tests(tests) => Some(Match {
            field: m.field,
            tests: tests.iter().map(|t| t.value.clone()).collect(),
            negated: m.negated,
            set: None,
            span: m.span,
        }),
        Values::Set(name) => {
            let Some(set) = sets.get(name.value.as_str()) else {
                let mut names: Vec<&str> = sets.keys().copied().collect();
                names.sort_unstable();
                diags.push(
                    Diagnostic::error("E0412", format!("unknown set `@{}`", name.value))
                        .at(name.span)
                        .label("no such set")
                        .help(if names.is_empty() {
                            format!(
                                "define it under `sets:` (`{}: {{addr: [...]}}`)",
                                name.value
                            )
                        } else {
                            format!(
                                "sets: {}",
                                names
                                    .iter()
                                    .map(|n| format!("@{n}"))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        }),
                );
                return None;
            };
            used_sets.insert(set.name.value.as_str());
            if !set.kind.fits(field) {
                diags.push(
                    Diagnostic::error(
                        "E0412",
                        format!(
                            "set `@{}` holds {} values; `{}` cannot use it",
                            name.value,
                            set.kind.as_str(),
                            m.field
                        ),
                    )
                    .at(name.span)
                    .help(match set.kind {
                        crate::ir::SetKind::Addr => "address sets fit `src_ip` and `dst_ip`",
                        crate::ir::SetKind::Port => "port sets fit `src_port` and `dst_port`",
                        crate::ir::SetKind::Proto => "protocol sets fit `proto`",
                    }),
                );
                return None;
            }
            if set.family.is_some_and(|f| f != family) {
                // Reported once, at the set (below): the reference resolves to nothing.
                return None;
            }
            Some(Match {
                field,
                tests: set.elements.iter().map(|e| e.value.clone()).collect(),
                negated: m.negated,
                set: Some(set.name.value.clone()),
                span: m.span,
            })
        }
    }
}

/// Ports need `proto` tcp or udp, the TCP flags `proto: tcp`, the ICMP type `proto: icmp` (IPv4) or
/// `proto: ipv6-icmp` (IPv6), not negated (iptables: the tcp/udp/multiport/icmp/icmp6 matches require
/// it; [`Field::l4_protos_in`]). Transport fields of different protocols cannot share a rule.
fn check_transport(r: &RuleDef, matches: &[Match], family: Family, diags: &mut Vec<Diagnostic>) {
    let proto = matches.iter().find(|m| m.field == Field::Proto);
    let transport: Vec<_> = r
        .matches
        .iter()
        .filter(|m| m.field.info().transport)
        .collect();
    // The most demanding transport field of the rule decides what `proto` must be.
    let Some(port) = transport
        .iter()
        .min_by_key(|m| m.field.l4_protos_in(family).len())
    else {
        return;
    };
    let protos = port.field.l4_protos_in(family);
    let (what, need, names, help) = match port.field {
        Field::TcpFlags => (
            "the TCP flags",
            "`proto: tcp`",
            "tcp",
            "iptables refuses `--tcp-flags` without `-p tcp`; add `proto: tcp`",
        ),
        Field::IcmpType if family == Family::V4 => (
            "the ICMP type",
            "`proto: icmp`",
            "icmp",
            "iptables refuses `--icmp-type` without `-p icmp`; add `proto: icmp`",
        ),
        Field::IcmpType => (
            "the ICMPv6 type",
            "`proto: ipv6-icmp`",
            "ipv6-icmp (58)",
            "ip6tables refuses `--icmpv6-type` without `-p ipv6-icmp`; add `proto: ipv6-icmp`",
        ),
        _ => (
            "ports",
            "`proto: tcp` or `proto: udp`",
            "tcp or udp",
            "iptables refuses `--dport` without `-p tcp` or `-p udp`; add `proto: tcp` (or udp)",
        ),
    };
    if let Some(other) = transport.iter().find(|m| {
        !protos
            .iter()
            .all(|p| m.field.l4_protos_in(family).contains(p))
    }) {
        diags.push(
            Diagnostic::error(
                "E0408",
                format!(
                    "`{}` and `{}` cannot be matched in one rule: no protocol carries both",
                    port.field, other.field
                ),
            )
            .at(other.span)
            .help("write two rules, one per protocol"),
        );
        return;
    }
    let problem = match proto {
        None if r.matches.iter().any(|m| m.field == Field::Proto) => return, // reported already
        None => format!("a rule that matches {what} must say {need}"),
        Some(p) if p.negated => format!("{what} cannot be matched with a negated `proto`"),
        Some(p)
            if !p
                .tests
                .iter()
                .all(|t| matches!(t, Test::Exact(v) if protos.contains(v))) =>
        {
            format!("{what} can be matched only when `proto` is {names}")
        }
        Some(_) => return,
    };
    diags.push(
        Diagnostic::error("E0408", format!("`{}`: {problem}", port.field))
            .at(port.span)
            .help(help),
    );
}

/// Loops and nesting depth (the chain graph, `E0313`), and interfaces a built-in chain's own rules test
/// that its hook does not have (`E0314`; a user chain may test them, as in iptables).
fn check_graph(rs: &Ruleset, edges: &[Vec<(usize, Span)>], diags: &mut Vec<Diagnostic>) {
    let g = ChainGraph::new(
        rs.chains.len(),
        edges
            .iter()
            .enumerate()
            .flat_map(|(c, es)| es.iter().map(move |&(t, at)| (c, t, at))),
    );
    if let Err(f) = g.check() {
        diags.push(f.diagnostic(|c| rs.chains[c].name.clone()));
    }
    for c in &rs.chains {
        let Some(hook) = c.hook else { continue };
        for r in &c.rules {
            for m in &r.matches {
                diags.extend(graph::iface_error(hook, m.field, m.field.name(), m.span));
            }
        }
    }
}
