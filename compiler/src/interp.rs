//! Reference semantics: the `filter` table's chains evaluated exactly as iptables' `ipt_do_table` (and,
//! for an IPv6 ruleset, ip6tables' `ip6t_do_table`) does.
//! This is the yardstick for `sim`, the kernel datapath and (in the oracle tests) is itself checked
//! against real iptables.
//!
//! Semantics kept from iptables:
//! - rules are tried in order; a rule matches when every match holds; a match holds when some of its
//!   tests contains the packet's value, XOR `negated`;
//! - the IP part (`src_ip`, `dst_ip`, `proto`, `in_iface`, `out_iface`) is tested before the transport
//!   match;
//! - a ruleset filters its own family only: a frame of the other family is [`Decided::OtherFamily`]
//!   (passed, as the other family's empty table would); for IPv6, `proto` is the upper-layer protocol
//!   after the extension headers ([`crate::packet::decode_ipv6`]);
//! - a transport test on a packet without ports (non-first fragment, other protocol) fails, negated or
//!   not; on a TCP/UDP first fragment whose header is truncated it drops the packet at once ("hotdrop",
//!   no rule counter is incremented), wherever the rule sits (built-in or user chain);
//! - `Log` (LOG, NFLOG) reports the packet ([`run_logged`]) and the walk goes on with the next rule
//!   (`XT_CONTINUE`);
//! - control flow: `Accept`/`Drop` decide; `Jump` pushes a return point (the next rule of the current
//!   chain) and continues at the target's first rule; `Goto` continues at the target without pushing;
//!   `Return` — or falling off the end of a user chain — pops the last return point, and with none
//!   left (a goto chain entered from the built-in chain, or `Return` in the built-in chain itself)
//!   the built-in chain's policy decides, reported as [`Decided::Policy`] of that chain;
//! - at FORWARD the TTL is the forwarded one (`ip_forward` decrements it before the hook; found by the
//!   oracle tier);
//! - interfaces come from [`Meta`]: with no interface known (`None`), `-i X` does not match and `! -i X`
//!   matches (iptables compares against an all-zero name: only `-i +` matches it). At INPUT only `in_iface` exists, at OUTPUT
//!   only `out_iface`, at FORWARD both: the other one is treated as unknown whatever `Meta` says.
//!
//! [`Decided::Rule`] and [`Decided::Hotdrop`] name the rule's OWN chain (a user chain when the decision
//! was taken inside one) and its 1-based position there.
//!
//! Known difference from iptables (found by the oracle tier): the IR does not record which module a
//! port test came from, and every port test hotdrops a truncated TCP (< 20 bytes) / UDP (< 8 bytes)
//! header, as `-m tcp`/`-m udp` do. iptables' `-m multiport` reads only the 4 port bytes: on a header
//! truncated to 4..19 / 4..7 bytes it matches the ports instead of hotdropping.
//!
//! Not modelled: a call stack deeper than the ruleset allows ([`crate::ir::verify`] bounds it by
//! [`crate::ir::MAX_CALL_DEPTH`]); counters.
use crate::ir::Family;
use crate::ir::{Action, ChainId, Field, Hook, Match, Rule, Ruleset, Verdict};
use crate::outcome::Engine;
use crate::packet::{Decoded, FieldValue, IpPacket};
use serde::Serialize;

pub use crate::outcome::{Decided, Outcome};

/// Packet metadata that is not in the frame: the interfaces the packet came in on / goes out on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Meta {
    /// The input interface's name (`-i`); `None`: none known (OUTPUT, or not given).
    pub in_iface: Option<String>,
    /// The output interface's name (`-o`); `None`: none known (INPUT, or not given).
    pub out_iface: Option<String>,
}

impl Meta {
    /// A namespace in which exactly this packet's interfaces exist, as `(ifindex, name)` (ifindex
    /// 1, 2, … in order: input, then output when it is another name): the devices offline engines
    /// (`sim` in `replay`/`explain`) fill the interface tables from
    /// ([`crate::sim::Sim::with_devices`]).
    pub fn devices(&self) -> Vec<(u32, String)> {
        let mut out: Vec<(u32, String)> = Vec::new();
        for n in [&self.in_iface, &self.out_iface].into_iter().flatten() {
            if !out.iter().any(|(_, d)| d == n) {
                out.push((out.len() as u32 + 1, n.clone()));
            }
        }
        out
    }
    /// The interfaces a rule at `hook` can see: iptables has no input interface at OUTPUT and no
    /// output interface at INPUT, so those are dropped (the one definition for interp and explain).
    pub fn at_hook(&self, hook: Hook) -> Meta {
        Meta {
            in_iface: self
                .in_iface
                .clone()
                .filter(|_| hook.has_iface(Field::InIface)),
            out_iface: self
                .out_iface
                .clone()
                .filter(|_| hook.has_iface(Field::OutIface)),
        }
    }
}

enum RuleResult {
    Match,
    NoMatch,
    Hotdrop,
}

fn test_match(m: &Match, pkt: &IpPacket, iface: Option<&str>) -> RuleResult {
    if m.field.info().lookup == crate::ir::Lookup::Iface {
        // No interface known: iptables compares the empty name, which only `+` contains.
        let contains = m.contains_iface(iface.unwrap_or(""));
        return if contains != m.negated {
            RuleResult::Match
        } else {
            RuleResult::NoMatch
        };
    }
    match pkt.value(m.field) {
        FieldValue::Value(v) => {
            if m.admits(v) {
                RuleResult::Match
            } else {
                RuleResult::NoMatch
            }
        }
        FieldValue::Absent => RuleResult::NoMatch,
        FieldValue::Truncated => RuleResult::Hotdrop,
    }
}

fn eval_rule(rule: &Rule, pkt: &IpPacket, meta: &Meta) -> RuleResult {
    // IP part first, then the transport match, as ipt_do_table does.
    let ip_part = rule.matches.iter().filter(|m| !m.field.info().transport);
    let l4_part = rule.matches.iter().filter(|m| m.field.info().transport);
    for m in ip_part.chain(l4_part) {
        let iface = match m.field {
            Field::InIface => meta.in_iface.as_deref(),
            Field::OutIface => meta.out_iface.as_deref(),
            _ => None,
        };
        match test_match(m, pkt, iface) {
            RuleResult::Match => {}
            other => return other,
        }
    }
    RuleResult::Match
}

/// Evaluate one decoded packet at `hook` with no interface known. Equals
/// `run_with(rs, hook, &Meta::default(), pkt)`.
pub fn run(rs: &Ruleset, hook: Hook, pkt: &Decoded) -> Outcome {
    run_with(rs, hook, &Meta::default(), pkt)
}

/// The packet of `family` the classifier sees, or the outcome of a frame it never classifies: neither
/// IPv4 nor IPv6 (passed), the other family (passed: [`Decided::OtherFamily`]; IPv6 unparsed under an
/// IPv4 ruleset, malformed or not), malformed (dropped), a parsing bound hit (too many VLAN tags or
/// IPv6 extension headers: dropped, [`Decided::FailClosed`] with `REASON_BOUND`). Shared by `interp`
/// and `sim`, as the datapath's entry program does all of it.
///
/// # Errors
/// The frame's final [`Outcome`] when it is not a packet of `family` to classify (see above).
pub fn classified(pkt: &Decoded, family: Family) -> Result<&IpPacket, Outcome> {
    let (verdict, decided) = match pkt {
        Decoded::Ipv4(p) | Decoded::Ipv6(p) if p.family == family => return Ok(p),
        Decoded::Ipv4(_) | Decoded::Ipv6(_) => (Verdict::Accept, Decided::OtherFamily),
        Decoded::NotIpv4 => (Verdict::Accept, Decided::NotIpv4),
        Decoded::Bound(_) => (
            Verdict::Drop,
            Decided::FailClosed {
                reason: tailwall_abi::REASON_BOUND,
            },
        ),
        // IPv6 is parsed only for an IPv6 ruleset: under an IPv4 one it passes unparsed, malformed
        // or not. IPv4 headers (and VLAN tags) are always checked, as the entry program does.
        Decoded::MalformedIpv6(_) | Decoded::ExtHeaderBound if family != Family::V6 => {
            (Verdict::Accept, Decided::OtherFamily)
        }
        Decoded::Malformed(_) | Decoded::MalformedIpv6(_) => (Verdict::Drop, Decided::Malformed),
        Decoded::ExtHeaderBound => (
            Verdict::Drop,
            Decided::FailClosed {
                reason: tailwall_abi::REASON_BOUND,
            },
        ),
    };
    Err(Outcome { verdict, decided })
}

/// Evaluate one decoded packet at `hook` with its interfaces. A ruleset without a chain for the hook
/// accepts (iptables' built-in chains default to ACCEPT), reported as the policy of chain
/// `ChainId(u32::MAX)`.
pub fn run_with(rs: &Ruleset, hook: Hook, meta: &Meta, pkt: &Decoded) -> Outcome {
    walk(rs, hook, meta, pkt, &mut |_| {})
}

/// One log event: a `Log` rule (LOG or NFLOG) matched the packet, in walk order. The walk went on
/// with the next rule, as `XT_CONTINUE` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct LogEvent {
    /// The LOG rule's own chain.
    pub chain: ChainId,
    /// The LOG rule.
    pub rule: crate::ir::RuleId,
    /// Its 1-based index in `chain` (its parameters: the rule's `Log` action).
    pub position: u32,
}

/// [`run_with`] and the log events of the packet, in the order the walk met the LOG/NFLOG rules
/// (iptables prints one line per matching LOG rule, before the verdict).
pub fn run_logged(
    rs: &Ruleset,
    hook: Hook,
    meta: &Meta,
    pkt: &Decoded,
) -> (Outcome, Vec<LogEvent>) {
    let mut logs = Vec::new();
    let outcome = walk(rs, hook, meta, pkt, &mut |e| logs.push(e));
    (outcome, logs)
}

/// [`run_sets`] with the log events ([`run_logged`]).
pub fn run_sets_logged(
    sets: &[&Ruleset],
    hook: Hook,
    meta: &Meta,
    pkt: &Decoded,
) -> (Outcome, Vec<LogEvent>) {
    match judging(sets, pkt) {
        Some(rs) => run_logged(rs, hook, meta, pkt),
        None => (run_sets(sets, hook, meta, pkt), Vec::new()),
    }
}

/// The walk of [`run_with`], reporting each matching `Log` rule to `log`.
fn walk(
    rs: &Ruleset,
    hook: Hook,
    meta: &Meta,
    pkt: &Decoded,
    log: &mut dyn FnMut(LogEvent),
) -> Outcome {
    let pkt = match classified(pkt, rs.family) {
        Ok(p) => p.at_hook(hook),
        Err(outcome) => return outcome,
    };
    let pkt = &pkt;
    let Some(chain) = rs.hook_chain(hook) else {
        return Outcome {
            verdict: Verdict::Accept,
            decided: Decided::Policy {
                chain: ChainId(u32::MAX),
            },
        };
    };
    let meta = meta.at_hook(hook);
    let policy = Outcome {
        verdict: chain.policy.unwrap_or(Verdict::Accept),
        decided: Decided::Policy { chain: chain.id },
    };
    // (chain, index of the next rule to try). `stack` holds the return points of jumps.
    let mut cur = (chain.id, 0usize);
    let mut stack: Vec<(ChainId, usize)> = Vec::new();
    loop {
        let Some(c) = rs.chain(cur.0) else {
            // A target that does not exist: `verify` rejects it; never panic on such a ruleset.
            return policy;
        };
        let Some(rule) = c.rules.get(cur.1) else {
            // Fell off the end: a user chain returns, the built-in chain applies its policy.
            if c.hook.is_some() {
                return policy;
            }
            match stack.pop() {
                Some(ret) => {
                    cur = ret;
                    continue;
                }
                None => return policy,
            }
        };
        cur.1 += 1;
        match eval_rule(rule, pkt, &meta) {
            RuleResult::NoMatch => {}
            RuleResult::Hotdrop => {
                return Outcome {
                    verdict: Verdict::Drop,
                    decided: Decided::Hotdrop {
                        chain: c.id,
                        rule: rule.id,
                        position: rule.position,
                    },
                }
            }
            RuleResult::Match => match rule.action {
                Action::Accept | Action::Drop | Action::Reject(_) => {
                    return Outcome {
                        verdict: rule.action.verdict().unwrap_or(Verdict::Drop),
                        decided: Decided::Rule {
                            chain: c.id,
                            rule: rule.id,
                            position: rule.position,
                        },
                    }
                }
                Action::Jump(t) => {
                    if stack.len() > crate::ir::MAX_CALL_DEPTH {
                        // Unreachable for verified rulesets (no cycles, bounded depth).
                        return policy;
                    }
                    stack.push(cur);
                    cur = (t, 0);
                }
                Action::Goto(t) => cur = (t, 0),
                Action::Return => {
                    if c.hook.is_some() {
                        return policy;
                    }
                    match stack.pop() {
                        Some(ret) => cur = ret,
                        None => return policy,
                    }
                }
                // XT_CONTINUE: report, then the next rule.
                Action::Log(_) => log(LogEvent {
                    chain: c.id,
                    rule: rule.id,
                    position: rule.position,
                }),
            },
        }
    }
}

/// The family whose ruleset judges `pkt` in a generation holding `sets` (one ruleset per family): the
/// packet's own family when a ruleset of it is given, else the other one's (which then passes it as
/// [`Decided::OtherFamily`], or drops a malformed IPv4 header: [`classified`]). A frame of neither
/// family (IPv4 unless it is IPv6, malformed IPv6 included) is judged by the IPv4 rules. `None`
/// when `sets` is empty.
pub fn judging<'a>(sets: &[&'a Ruleset], pkt: &Decoded) -> Option<&'a Ruleset> {
    let family = match pkt {
        Decoded::Ipv6(_) | Decoded::MalformedIpv6(_) | Decoded::ExtHeaderBound => Family::V6,
        _ => Family::V4,
    };
    sets.iter()
        .find(|rs| rs.family == family)
        .or_else(|| sets.first())
        .copied()
}

/// [`run_with`] for a generation of one ruleset per family ([`judging`]): what one attachment
/// enforcing an IPv4 and an IPv6 ruleset decides. With no ruleset at all, every packet of either
/// family is passed ([`Decided::OtherFamily`]) as empty tables pass it.
pub fn run_sets(sets: &[&Ruleset], hook: Hook, meta: &Meta, pkt: &Decoded) -> Outcome {
    match judging(sets, pkt) {
        Some(rs) => run_with(rs, hook, meta, pkt),
        None => Outcome {
            verdict: Verdict::Accept,
            decided: Decided::OtherFamily,
        },
    }
}

/// `interp` as an [`Engine`]: one hook of a ruleset, with fixed packet metadata.
#[derive(Clone, Debug)]
pub struct Interp<'a> {
    /// The ruleset judged.
    pub rs: &'a Ruleset,
    /// The hook whose built-in chain judges the packets.
    pub hook: Hook,
    /// The interfaces every packet is judged with (reduced to what `hook` sees by [`Meta::at_hook`]).
    pub meta: Meta,
}

impl Engine for Interp<'_> {
    fn name(&self) -> &'static str {
        "interp"
    }
    fn run_frame(&mut self, frame: &[u8]) -> Result<Outcome, crate::outcome::EngineError> {
        Ok(run_with(
            self.rs,
            self.hook,
            &self.meta,
            &crate::packet::decode(frame),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Span;
    use crate::ir::{Chain, RuleId, Test};
    use crate::packet::{build_frame, decode, l4_header};

    fn rule(chain: u32, matches: Vec<Match>, action: Action) -> Rule {
        Rule {
            id: RuleId(0),
            chain: ChainId(chain),
            position: 0,
            matches,
            action,
            comment: None,
            counters: None,
            span: Span::default(),
        }
    }
    /// Chains `(name, hook, policy, rules)`; ids and positions are filled in.
    fn rs(chains: Vec<(&str, Option<Hook>, Vec<Rule>)>) -> Ruleset {
        let mut next = 0;
        let chains = chains
            .into_iter()
            .enumerate()
            .map(|(ci, (name, hook, rules))| Chain {
                id: ChainId(ci as u32),
                name: name.into(),
                hook,
                policy: hook.map(|_| Verdict::Drop),
                rules: rules
                    .into_iter()
                    .enumerate()
                    .map(|(i, mut r)| {
                        r.id = RuleId(next);
                        next += 1;
                        r.chain = ChainId(ci as u32);
                        r.position = i as u32 + 1;
                        r
                    })
                    .collect(),
                span: Span::default(),
            })
            .collect();
        let rs = Ruleset {
            family: Default::default(),
            chains,
            sets: vec![],
            logs: Vec::new(),
        };
        crate::ir::verify(&rs).unwrap();
        rs
    }
    fn tcp(dport: u16) -> Decoded {
        decode(&build_frame(
            [2, 0, 0, 0, 0, 1],
            [2, 0, 0, 0, 0, 2],
            [10, 0, 0, 2].into(),
            [10, 0, 0, 1].into(),
            6,
            0,
            &l4_header(6, 1000, dport, b""),
        ))
    }
    fn dports(ps: &[u32]) -> Vec<Match> {
        vec![
            Match::single(Field::Proto, Test::Exact(6), false, Span::default()),
            Match {
                field: Field::DstPort,
                tests: ps.iter().map(|&p| Test::Exact(p)).collect(),
                negated: false,
                set: None,
                span: Span::default(),
            },
        ]
    }

    #[test]
    fn jump_return_resumes_after_the_jump() {
        let r = rs(vec![
            (
                "INPUT",
                Some(Hook::Input),
                vec![
                    rule(0, vec![], Action::Jump(ChainId(1))),
                    rule(0, dports(&[80]), Action::Accept),
                ],
            ),
            (
                "web",
                None,
                vec![
                    rule(1, dports(&[22]), Action::Drop),
                    rule(1, vec![], Action::Return),
                ],
            ),
        ]);
        let o = run(&r, Hook::Input, &tcp(80));
        assert_eq!(o.verdict, Verdict::Accept);
        assert_eq!(
            o.decided,
            Decided::Rule {
                chain: ChainId(0),
                rule: RuleId(1),
                position: 2
            }
        );
        let o = run(&r, Hook::Input, &tcp(22));
        assert_eq!(
            o.decided,
            Decided::Rule {
                chain: ChainId(1),
                rule: RuleId(2),
                position: 1
            }
        );
        assert_eq!(
            run(&r, Hook::Input, &tcp(23)).decided,
            Decided::Policy { chain: ChainId(0) }
        );
    }

    #[test]
    fn ttl_at_forward_is_the_decremented_one() {
        let src = crate::diag::SourceFile::new(
            "ttl.rules",
            "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
             -A INPUT -m ttl --ttl-eq 63 -j DROP\n-A FORWARD -m ttl --ttl-eq 63 -j DROP\nCOMMIT\n"
                .to_string(),
        );
        let r = crate::lower::iptables(&src).expect("lowers").ruleset;
        // build_frame sends TTL 64: the router forwards it with 63, which FORWARD's rule sees.
        let pkt = tcp(22);
        assert_eq!(run(&r, Hook::Forward, &pkt).verdict, Verdict::Drop);
        assert_eq!(run(&r, Hook::Input, &pkt).verdict, Verdict::Accept);
    }

    #[test]
    fn in_iface_unknown_matches_only_negated() {
        let m = |neg| {
            vec![Match::single(
                Field::InIface,
                Test::Iface {
                    name: "eth".into(),
                    wildcard: true,
                },
                neg,
                Span::default(),
            )]
        };
        let r = rs(vec![(
            "INPUT",
            Some(Hook::Input),
            vec![
                rule(0, m(false), Action::Accept),
                rule(0, m(true), Action::Drop),
            ],
        )]);
        let eth = Meta {
            in_iface: Some("eth7".into()),
            out_iface: None,
        };
        assert_eq!(
            run_with(&r, Hook::Input, &eth, &tcp(1)).verdict,
            Verdict::Accept
        );
        let o = run(&r, Hook::Input, &tcp(1));
        assert_eq!(
            o.decided,
            Decided::Rule {
                chain: ChainId(0),
                rule: RuleId(1),
                position: 2
            }
        );
    }
}
