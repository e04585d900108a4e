//! Lowering: iptables-save AST → IR.
//!
//! Every rule arrives typed and validated by the parser ([`crate::syntax::iptables::rule::type_rule`]: errors
//! are what iptables-restore or the kernel would reject); `rule` lowers one rule, `chains` orders and
//! numbers the chains, the chain graph ([`crate::ir::graph`]) decides reachability, loops and depth.
//!
//! What this stage guarantees: the returned [`Ruleset`] holds the `filter` table's built-in chains
//! INPUT/FORWARD/OUTPUT and its user chains, in order of declaration (INPUT first when it is not declared),
//! each with all its rules in order, and passes [`crate::ir::verify`]. Every option of a rule is either
//! compiled into a [`Match`](crate::ir::Match), the action or the comment, or reported: in INPUT and in every chain INPUT
//! can reach by `-j`/`-g`, as an error (`E02xx`, the rule cannot be represented); in a chain INPUT cannot
//! reach (FORWARD, OUTPUT, their user chains), the whole chain is left out with one `N0003` note naming the
//! first such rule, and so is every chain that jumps to a chain left out. Nothing is dropped silently. All
//! errors of the file are reported at once; `Err` carries every diagnostic (at least one error).
//!
//! What it throws away: rules of the other tables (typed and validated, then summarised by one `N0001`
//! note per chain), option order and spelling, `-m tcp`/`-m udp`/`-m multiport` module names (kept only as
//! the constraints they impose: `proto` exact, multiport lists as one match with several tests, and a
//! `dst_port` 0-65535 match for a tcp/udp match without port options, because it still fails on packets
//! without ports), host bits of addresses (masked like iptables does, with warning `W0001`), `-p all`
//! (no constraint), `-i +` (any interface: no constraint). Several `-m comment --comment` of one rule
//! are joined with `"; "`.
//!
//! Deliberate differences from iptables-restore: a field matched twice in one rule (e.g. `--dport` and
//! `-m multiport --dports`) is an error (iptables ANDs them; the IR has one match per field); a built-in
//! chain used without a chain line is accepted, as iptables-restore does, with warning `W0003` for INPUT
//! (policy assumed ACCEPT); jump chains nested deeper than [`ir::MAX_CALL_DEPTH`] are rejected (`E0313`).
//! An ip6tables-save file lowers to an IPv6 ruleset ([`ir::Family::V6`]): its `-s`/`-d` become the
//! 128-bit fields `src_ip6`/`dst_ip6`; whether the datapath enforces it is `artifact::build`'s question.
//!
//! Codes: `E02xx` "not supported yet", `E03xx` semantic errors, `W0xxx` warnings, `N0xxx` notes; the
//! parser's `E01xx` pass through. docs/diagnostics.md lists them all.
use crate::diag::{Diagnostic, SourceFile};
use crate::ir::graph::{self, ChainGraph};
use crate::ir::{self, ChainId, Field, Rule, RuleId, Ruleset};
use crate::syntax::iptables::rule::{IpNet, Neg};
use crate::syntax::iptables::values::numeric_ipv4;
use crate::syntax::iptables::{self as syn, TableKind};
use std::collections::HashMap;

mod chains;
mod migrate;
pub(crate) mod rule;

use chains::{note_ignored, plan_chains, renumber, Plan};
pub use migrate::{migrate, Migration, RuleReport, RuleStatus, TableReport};
use rule::lower_typed;

/// The feature list every "not supported yet" diagnostic repeats.
pub const SUPPORTED: &str = "supported in this version: -s, -d, -i, -o, -p, -f, -m tcp/udp --sport/--dport, -m tcp --tcp-flags/--syn, -m multiport --sports/--dports, -m length, -m ttl, -m icmp --icmp-type, -m icmp6 --icmpv6-type, -m iprange (IPv4), -m conntrack --ctstate / -m state --state (IPv4), -m comment, -j ACCEPT/DROP/RETURN/LOG/NFLOG, -j REJECT --reject-with, -j/-g user chains";

/// iptables' comment match stores at most 255 bytes (XT_MAX_COMMENT_LEN 256 with the NUL).
pub const MAX_COMMENT_LEN: usize = 255;

/// A successfully lowered file.
#[derive(Clone, Debug)]
pub struct Lowered {
    /// The checked IR ([`crate::ir::verify`] holds).
    pub ruleset: Ruleset,
    /// Warnings and notes (no errors).
    pub diagnostics: Vec<Diagnostic>,
}

/// Parse and lower an iptables-save / iptables-restore file. Err carries ALL diagnostics (>= 1 error).
///
/// # Errors
/// Every diagnostic found (parse `E01xx`, unsupported `E02xx`, invalid `E03xx`, limits `E05xx`, and
/// the warnings), at least one of them an error.
pub fn iptables(src: &SourceFile) -> Result<Lowered, Vec<Diagnostic>> {
    let (ast, mut diags) = syn::parse(src);
    let ruleset = lower_ast(&ast, &mut diags);
    finish(ruleset, diags)
}

/// The common end of every front end: diagnostics in source order (stable: same-position ones keep the
/// order they were found in; unlocated ones go last), `Err` if any is an error, else the ruleset after
/// [`ir::verify`] — a violated invariant is a bug in the front end, reported as `E0999`.
pub(crate) fn finish(
    ruleset: Ruleset,
    mut diags: Vec<Diagnostic>,
) -> Result<Lowered, Vec<Diagnostic>> {
    diags.sort_by_key(|d| d.span.map(|s| s.start).unwrap_or(u32::MAX));
    if diags.iter().any(Diagnostic::is_error) {
        return Err(diags);
    }
    if let Err(e) = ir::verify(&ruleset) {
        debug_assert!(false, "{e}");
        return Err(vec![Diagnostic::error(
            "E0999",
            format!("internal compiler error: {e}"),
        )]);
    }
    Ok(Lowered {
        ruleset,
        diagnostics: diags,
    })
}

/// `E0314` for `-i`/`-o` written in a built-in chain whose hook has no such interface (the parser's typed
/// rules carry them; the chain graph module owns the rule).
fn check_hook_ifaces(plans: &[Plan], diags: &mut Vec<Diagnostic>) {
    for p in plans {
        let Some(h) = p.hook else { continue };
        for line in &p.rules {
            for (field, i, flag) in [
                (Field::InIface, &line.rule.in_iface, "-i"),
                (Field::OutIface, &line.rule.out_iface, "-o"),
            ] {
                if let Some(i) = i {
                    diags.extend(graph::iface_error(h, field, flag, i.span));
                }
            }
        }
    }
}

/// The chain graph of the lowered rules (edges point at the rules).
fn graph_of(lowered: &[Vec<Rule>]) -> ChainGraph {
    ChainGraph::new(
        lowered.len(),
        lowered.iter().enumerate().flat_map(|(i, rs)| {
            rs.iter()
                .filter_map(move |r| r.action.target().map(|t| (i, t.0 as usize, r.span)))
        }),
    )
}

/// Lower a parsed file; problems are appended to `diags`.
pub fn lower_ast(ast: &syn::Ast, diags: &mut Vec<Diagnostic>) -> Ruleset {
    let had_errors = diags.iter().any(Diagnostic::is_error);
    let mut warnings = Vec::new();
    let plans = plan_chains(ast, &mut warnings);
    let filter = ast.table(TableKind::Filter);
    check_hook_ifaces(&plans, diags);
    let ids: HashMap<&str, usize> = plans
        .iter()
        .enumerate()
        .map(|(i, p)| (p.name.as_str(), i))
        .collect();
    // Lower each rule; per chain, the problems.
    let mut lowered: Vec<Vec<Rule>> = Vec::new();
    let mut pool = Vec::new();
    let mut problems: Vec<Vec<Diagnostic>> = Vec::new();
    for (ci, p) in plans.iter().enumerate() {
        let mut rules = Vec::new();
        let mut errs = Vec::new();
        for line in &p.rules {
            match lower_typed(&line.rule, line, &ids, &mut pool) {
                Ok((matches, action, comment)) => rules.push(Rule {
                    // `check` names the connection-tracking differences per rule.
                    matches: {
                        warnings.extend(
                            matches
                                .iter()
                                .filter(|m| m.field == crate::ir::Field::CtState)
                                .filter_map(rule::ct_note),
                        );
                        matches
                    },
                    id: RuleId(0),
                    chain: ChainId(ci as u32),
                    position: rules.len() as u32 + 1,
                    action,
                    comment,
                    counters: line.counters.map(|c| (c.packets, c.bytes)),
                    span: line.span,
                }),
                Err(e) => errs.extend(e),
            }
        }
        lowered.push(rules);
        problems.push(errs);
    }
    // Chains a built-in chain reaches must lower completely: the datapath judges every packet at
    // INPUT, FORWARD or OUTPUT, so leaving a chain any of them reaches out of the IR would pass what it
    // drops (fail open). Only user chains no built-in chain reaches are left out when they (or a chain
    // they reach) cannot.
    let graph = graph_of(&lowered);
    let mut from_builtin = vec![false; plans.len()];
    for name in ["INPUT", "FORWARD", "OUTPUT"] {
        if let Some(&i) = ids.get(name) {
            for (seen, r) in from_builtin.iter_mut().zip(graph.reachable_from(i)) {
                *seen |= r;
            }
        }
    }
    let mut keep = vec![true; plans.len()];
    for (ci, errs) in problems.iter().enumerate() {
        if errs.is_empty() {
            continue;
        }
        if from_builtin[ci] {
            diags.extend(errs.iter().cloned());
        } else {
            keep[ci] = false;
            let first = &errs[0];
            let mut d = Diagnostic::note(
                "N0003",
                format!(
                    "chain `{}` is left out (not enforced by this version): {}",
                    plans[ci].name, first.message
                ),
            );
            if let Some(s) = first.span {
                d = d.at(s);
            }
            warnings.push(d);
        }
    }
    // A chain reaching a chain left out is left out too.
    loop {
        let mut changed = false;
        for ci in 0..plans.len() {
            if keep[ci] && !from_builtin[ci] && graph.targets(ci).iter().any(|&t| !keep[t]) {
                keep[ci] = false;
                changed = true;
                warnings.push(
                    Diagnostic::note(
                        "N0003",
                        format!(
                            "chain `{}` is left out: it jumps to a chain that is left out",
                            plans[ci].name
                        ),
                    )
                    .at(plans[ci].span),
                );
            }
        }
        if !changed {
            break;
        }
    }
    if let Err(f) = graph.restricted(&keep).check() {
        diags.push(f.diagnostic(|c| plans[c].name.clone()));
    }
    note_ignored(ast, &mut warnings);
    if !had_errors && !diags.iter().any(Diagnostic::is_error) {
        diags.extend(warnings);
    } else {
        // Host-bit warnings and notes are noise next to errors, except the rule-level ones.
        diags.extend(warnings.into_iter().filter(|w| w.code == "W0001"));
    }
    if filter.is_some() && !diags.iter().any(Diagnostic::is_error) {
        host_bit_warnings(&plans, &keep, diags);
    }
    renumber(ast.family, plans, lowered, keep, pool)
}

/// `W0001` for IPv4 addresses written with host bits (`10.1.2.3/8`), in the chains that are kept: iptables
/// masks them silently.
fn host_bit_warnings(plans: &[Plan], keep: &[bool], diags: &mut Vec<Diagnostic>) {
    for (p, _) in plans.iter().zip(keep).filter(|(_, k)| **k) {
        for line in &p.rules {
            for a in [&line.rule.src, &line.rule.dst].into_iter().flatten() {
                host_bits(line, a, diags);
            }
        }
    }
}

fn host_bits(line: &syn::RuleLine, a: &Neg<IpNet>, diags: &mut Vec<Diagnostic>) {
    let IpNet::V4 { addr, mask } = a.value else {
        return;
    };
    let Some(len) = a.value.prefix_len() else {
        return;
    };
    // The address token is the last one of the option.
    let Some(tok) = line.tokens.iter().rev().find(|t| t.span.end <= a.span.end) else {
        return;
    };
    let text = tok
        .text
        .rsplit_once(['='])
        .map_or(tok.text.as_str(), |(_, v)| v);
    let text = text
        .strip_prefix("-s")
        .or(text.strip_prefix("-d"))
        .unwrap_or(text);
    let host = text.rsplit_once('/').map_or(text, |(h, _)| h);
    let Some(written) = numeric_ipv4(host, false) else {
        return;
    };
    if u32::from(written) & !mask != 0 {
        diags.push(
            Diagnostic::warning(
                "W0001",
                format!("`{}` has host bits set; iptables uses {addr}/{len}", text),
            )
            .at(tok.span)
            .label("host bits masked")
            .help(format!("write `{addr}/{len}`")),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lower(text: &str) -> Result<Lowered, Vec<Diagnostic>> {
        iptables(&SourceFile::new("t.rules", text))
    }
    fn rule(line: &str) -> Result<Lowered, Vec<Diagnostic>> {
        lower(&format!("*filter\n:INPUT DROP [0:0]\n{line}\nCOMMIT\n"))
    }
    fn dump(line: &str) -> String {
        rule(line)
            .unwrap_or_else(|d| panic!("{d:?}"))
            .ruleset
            .dump()
    }
    fn err_codes(line: &str) -> Vec<&'static str> {
        rule(line)
            .unwrap_err()
            .iter()
            .filter(|d| d.is_error())
            .map(|d| d.code)
            .collect()
    }

    #[test]
    fn lower_compiles_basic_options() {
        assert_eq!(
            dump("-A INPUT -s 10.0.0.0/8 ! -d 1.2.3.4 -p tcp -m tcp --sport 1024: --dport 22 -j ACCEPT"),
            "chain c0 INPUT hook=input policy=drop\n  r0 #1 src_ip 10.0.0.0/8 dst_ip ! 1.2.3.4/32 proto 6 src_port 1024-65535 dst_port 22 -> accept\n"
        );
    }

    #[test]
    fn lower_bare_tcp_module_keeps_transport_constraint() {
        assert!(dump("-A INPUT -p tcp -m tcp -j DROP").contains("proto 6 dst_port 0-65535 -> drop"));
        assert!(dump("-A INPUT -p tcp -j DROP").contains("proto 6 -> drop"));
        assert!(
            dump("-A INPUT -p udp --dport 53 -j ACCEPT").contains("proto 17 dst_port 53 -> accept")
        );
    }

    #[test]
    fn lower_proto_all_is_unconstrained() {
        assert!(dump("-A INPUT -p all -j DROP").contains("r0 #1 -> drop"));
        assert!(dump("-A INPUT -p 0 -j DROP").contains("r0 #1 -> drop"));
    }

    #[test]
    fn lower_reports_semantic_errors() {
        assert_eq!(
            err_codes("-A INPUT -p udp -m tcp --dport 1 -j DROP"),
            ["E0307"]
        );
        assert_eq!(err_codes("-A INPUT -m tcp -j DROP"), ["E0307"]);
        assert_eq!(err_codes("-A INPUT ! -p tcp -m tcp -j DROP"), ["E0307"]);
        assert_eq!(err_codes("-A INPUT --dport 22 -j DROP"), ["E0308"]);
        assert_eq!(
            err_codes("-A INPUT -s 1.1.1.1 -s 2.2.2.2 -j DROP"),
            ["E0306"]
        );
        assert_eq!(err_codes("-A INPUT -j DROP -j ACCEPT"), ["E0311"]);
        assert_eq!(err_codes("-A INPUT ! -p all -j DROP"), ["E0310"]);
        assert_eq!(err_codes("-A INPUT -p tcp --dport 2:1 -j DROP"), ["E0305"]);
        assert_eq!(
            err_codes("-A INPUT -p tcp --dport nosuchservice -j DROP"),
            ["E0304"]
        );
        assert_eq!(err_codes("-A INPUT -s example.com -j DROP"), ["E0301"]);
    }

    #[test]
    fn lower_tcp_flags_are_the_bytes_of_mask_and_comp() {
        let l = rule("-A INPUT -p tcp ! --syn -j DROP").unwrap().ruleset;
        let m = l.chains[0].rules[0].get(Field::TcpFlags).unwrap();
        assert!(m.negated);
        assert_eq!(m.tests.len(), 16);
        assert!(m.contains(0x02) && m.contains(0xc2) && m.contains(0x0a));
        assert!(!m.contains(0x12) && !m.contains(0x03) && !m.contains(0));
        let l = rule("-A INPUT -p tcp --tcp-flags ALL NONE -j DROP")
            .unwrap()
            .ruleset;
        let m = l.chains[0].rules[0].get(Field::TcpFlags).unwrap();
        assert_eq!(m.tests, [0, 0x40, 0x80, 0xc0].map(crate::ir::Test::Exact));
    }

    /// `-j REJECT` lowers to a terminal action with its kind: the family's port unreachable by
    /// default, aliases to the canonical kind, `tcp-reset` only with `-p tcp` (checkentry: a
    /// located E0322 at `--reject-with`), another family's kind unknown (E0320).
    #[test]
    fn lower_reject_with_every_kind() {
        assert_eq!(
            dump("-A INPUT -p udp -j REJECT"),
            "chain c0 INPUT hook=input policy=drop\n  r0 #1 proto 17 -> reject icmp-port-unreachable\n"
        );
        for (spelled, kind) in [
            ("icmp-net-unreachable", "icmp-net-unreachable"),
            ("net-unreach", "icmp-net-unreachable"),
            ("host-unreach", "icmp-host-unreachable"),
            ("icmp-proto-unreachable", "icmp-proto-unreachable"),
            ("port-unreach", "icmp-port-unreachable"),
            ("net-prohib", "icmp-net-prohibited"),
            ("icmp-host-prohibited", "icmp-host-prohibited"),
            ("admin-prohib", "icmp-admin-prohibited"),
        ] {
            assert!(
                dump(&format!("-A INPUT -j REJECT --reject-with {spelled}"))
                    .ends_with(&format!("-> reject {kind}\n")),
                "{spelled}"
            );
        }
        assert!(dump("-A INPUT -p tcp -j REJECT --reject-with tcp-rst")
            .ends_with("proto 6 -> reject tcp-reset\n"));
        assert_eq!(
            err_codes("-A INPUT -p udp -j REJECT --reject-with tcp-reset"),
            ["E0322"]
        );
        assert_eq!(
            err_codes("-A INPUT ! -p tcp -j REJECT --reject-with tcp-reset"),
            ["E0322"]
        );
        let v6_kind_in_v4 = iptables(&SourceFile::new(
            "t.rules6",
            "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 2001:db8::/32 -j REJECT --reject-with icmp-port-unreachable\nCOMMIT\n",
        ))
        .unwrap_err();
        assert_eq!(
            v6_kind_in_v4.iter().map(|d| d.code).collect::<Vec<_>>(),
            ["E0320"]
        );
        let v6 = iptables(&SourceFile::new(
            "t.rules6",
            "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 2001:db8::/32 -j REJECT\n-A INPUT -j REJECT --reject-with adm-prohibited\n-A INPUT -p tcp -j REJECT --reject-with tcp-reset\nCOMMIT\n",
        ));
        let dump6 = v6
            .map(|l| l.ruleset.dump())
            .unwrap_or_else(|d| panic!("{d:?}"));
        assert!(
            dump6.contains("-> reject icmp6-port-unreachable\n"),
            "{dump6}"
        );
        assert!(
            dump6.contains("-> reject icmp6-adm-prohibited\n"),
            "{dump6}"
        );
        assert!(dump6.contains("-> reject tcp-reset\n"), "{dump6}");
    }

    #[test]
    fn lower_reports_unsupported_features() {
        assert_eq!(
            err_codes("-A INPUT -m limit --limit 5/min -j ACCEPT"),
            ["E0202"]
        );
        assert_eq!(err_codes("-A INPUT -j QUEUE"), ["E0203"]);
        assert_eq!(err_codes("-A INPUT -s 1.2.3.4"), ["E0204"]);
        assert_eq!(
            err_codes("-A INPUT -p tcp --tcp-option 2 -j DROP"),
            ["E0201"]
        );
        assert_eq!(
            err_codes("-A INPUT -p tcp --tcp-flags SYN ACK -j DROP"),
            ["E0201"]
        );
        assert_eq!(
            err_codes("-A INPUT -p tcp -m tcp --dport 22 -m length --length 9 -j DROP"),
            ["E0209"]
        );
        assert_eq!(
            err_codes("-A INPUT -p sctp -m multiport --dports 1,2 -j DROP"),
            ["E0202"]
        );
        assert_eq!(
            err_codes("-A INPUT -p tcp --dport 1 -m multiport --dports 1,2 -j DROP"),
            ["E0306"]
        );
    }

    #[test]
    fn lower_interfaces_lists_and_chains() {
        let l = lower(
            "*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:web - [0:0]\n\
             -A INPUT -i eth+ -p tcp -m multiport --dports 80,443,8000:8080 -j web\n\
             -A INPUT ! -i lo -g web\n-A FORWARD -i a -o b -j ACCEPT\n-A web -s 10.0.0.0/8 -j RETURN\n\
             -A web -j ACCEPT\nCOMMIT\n",
        )
        .unwrap_or_else(|d| panic!("{d:?}"));
        assert_eq!(
            l.ruleset.dump(),
            "chain c0 INPUT hook=input policy=drop\n  r0 #1 proto 6 dst_port {80, 443, 8000-8080} in_iface eth+ -> jump web\n  \
             r1 #2 in_iface ! lo -> goto web\nchain c1 FORWARD hook=forward policy=accept\n  r2 #1 in_iface a out_iface b -> accept\n\
             chain c2 web\n  r3 #1 src_ip 10.0.0.0/8 -> return\n  r4 #2 -> accept\n"
        );
    }

    #[test]
    fn lower_leaves_out_unreachable_chains_it_cannot_represent() {
        // `fw` and `a` (which jumps to it) are reached by no built-in chain: left out, one note each.
        let l = lower(
            "*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:a - [0:0]\n:fw - [0:0]\n-A INPUT -j ACCEPT\n\
             -A a -j fw\n-A fw -m limit --limit 5/min -j ACCEPT\nCOMMIT\n",
        )
        .unwrap();
        assert_eq!(l.ruleset.chains.len(), 2);
        let codes: Vec<_> = l.diagnostics.iter().map(|d| d.code).collect();
        assert_eq!(codes, ["N0003", "N0003"]);
        // Reached from INPUT, FORWARD or OUTPUT: an error (the datapath judges every hook; leaving
        // the chain out would pass what it drops).
        for hook in ["INPUT", "FORWARD", "OUTPUT"] {
            let e = lower(&format!("*filter\n:{hook} DROP [0:0]\n:fw - [0:0]\n-A {hook} -j fw\n-A fw -m limit --limit 5/min -j ACCEPT\nCOMMIT\n"))
                .unwrap_err();
            assert_eq!(e[0].code, "E0202", "{hook}");
            let e = lower(&format!(
                "*filter\n:{hook} DROP [0:0]\n-A {hook} -m limit --limit 5/min -j ACCEPT\nCOMMIT\n"
            ))
            .unwrap_err();
            assert_eq!(e[0].code, "E0202", "{hook}");
        }
    }

    #[test]
    fn lower_rejects_bad_targets_loops_and_misplaced_interfaces() {
        assert_eq!(err_codes("-A INPUT -j nowhere"), ["E0312"]);
        assert_eq!(err_codes("-A INPUT -j FORWARD"), ["E0312"]);
        assert_eq!(err_codes("-A INPUT -o eth0 -j DROP"), ["E0314"]);
        let e =
            lower("*filter\n:a - [0:0]\n:b - [0:0]\n-A a -j b\n-A b -j a\nCOMMIT\n").unwrap_err();
        assert_eq!(e.iter().map(|d| d.code).collect::<Vec<_>>(), ["E0313"]);
    }

    #[test]
    fn lower_masks_host_bits_with_warning() {
        let l = rule("-A INPUT -s 10.1.2.3/8 -j DROP").unwrap();
        assert!(l.ruleset.dump().contains("src_ip 10.0.0.0/8"));
        assert_eq!(l.diagnostics[0].code, "W0001");
    }

    #[test]
    fn lower_defaults_missing_input_to_accept() {
        let l = lower("*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j ACCEPT\nCOMMIT\n").unwrap();
        assert_eq!(
            l.ruleset.dump(),
            "chain c0 INPUT hook=input policy=accept\n"
        );
        let codes: Vec<_> = l.diagnostics.iter().map(|d| d.code).collect();
        assert_eq!(codes, ["N0001", "W0002"]);
    }
}
