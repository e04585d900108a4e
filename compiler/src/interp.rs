//! Reference semantics: first match over the hook chain, exactly as iptables' `ipt_do_table` evaluates
//! the `filter` table. This is the yardstick for `sim`, the kernel datapath and (in the oracle tests)
//! is itself checked against real iptables.
//!
//! Semantics kept from iptables:
//! - rules are tried in order; the first whose every match holds decides; otherwise the chain policy;
//! - the IP part (`src_ip`, `dst_ip`, `proto`) is tested before the transport match;
//! - a transport test on a packet without ports (non-first fragment, other protocol) fails, negated or
//!   not; on a TCP/UDP first fragment whose header is truncated it drops the packet at once ("hotdrop",
//!   no rule counter is incremented).
use crate::ir::{Chain, ChainId, Hook, Match, Rule, RuleId, Ruleset, Verdict};
use crate::packet::{Decoded, FieldValue, Ipv4Packet};
use serde::Serialize;

/// Who decided a packet's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Decided {
    /// A rule matched; `position` is its 1-based index in `chain`.
    Rule {
        chain: ChainId,
        rule: RuleId,
        position: u32,
    },
    /// No rule matched: the chain policy.
    Policy { chain: ChainId },
    /// `rule` tested a truncated transport header: dropped, no rule counted.
    Hotdrop {
        chain: ChainId,
        rule: RuleId,
        position: u32,
    },
    /// Not IPv4: passed, not filtered.
    NotIpv4,
    /// IPv4 the kernel would reject: dropped.
    Malformed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub verdict: Verdict,
    pub decided: Decided,
}

enum RuleResult {
    Match,
    NoMatch,
    Hotdrop,
}

fn test_match(m: &Match, pkt: &Ipv4Packet) -> RuleResult {
    match pkt.value(m.field) {
        FieldValue::Value(v) => {
            if m.test.contains(v) != m.negated {
                RuleResult::Match
            } else {
                RuleResult::NoMatch
            }
        }
        FieldValue::Absent => RuleResult::NoMatch,
        FieldValue::Truncated => RuleResult::Hotdrop,
    }
}

fn eval_rule(rule: &Rule, pkt: &Ipv4Packet) -> RuleResult {
    // IP part first, then the transport match, as ipt_do_table does.
    let (ip_part, l4_part): (Vec<&Match>, Vec<&Match>) =
        rule.matches.iter().partition(|m| !m.field.info().transport);
    for m in ip_part.into_iter().chain(l4_part) {
        match test_match(m, pkt) {
            RuleResult::Match => {}
            other => return other,
        }
    }
    RuleResult::Match
}

/// Evaluate one decoded packet at `hook`. A ruleset without a chain for the hook accepts (iptables'
/// built-in chains default to ACCEPT).
pub fn run(rs: &Ruleset, hook: Hook, pkt: &Decoded) -> Outcome {
    let pkt = match pkt {
        Decoded::NotIpv4 => {
            return Outcome {
                verdict: Verdict::Accept,
                decided: Decided::NotIpv4,
            }
        }
        Decoded::Malformed(_) => {
            return Outcome {
                verdict: Verdict::Drop,
                decided: Decided::Malformed,
            }
        }
        Decoded::Ipv4(p) => p,
    };
    let Some(chain) = rs.hook_chain(hook) else {
        return Outcome {
            verdict: Verdict::Accept,
            decided: Decided::Policy {
                chain: ChainId(u32::MAX),
            },
        };
    };
    run_chain(chain, pkt)
}

fn run_chain(chain: &Chain, pkt: &Ipv4Packet) -> Outcome {
    for rule in &chain.rules {
        match eval_rule(rule, pkt) {
            RuleResult::Match => {
                return Outcome {
                    verdict: rule.action.verdict(),
                    decided: Decided::Rule {
                        chain: chain.id,
                        rule: rule.id,
                        position: rule.position,
                    },
                }
            }
            RuleResult::NoMatch => {}
            RuleResult::Hotdrop => {
                return Outcome {
                    verdict: Verdict::Drop,
                    decided: Decided::Hotdrop {
                        chain: chain.id,
                        rule: rule.id,
                        position: rule.position,
                    },
                }
            }
        }
    }
    Outcome {
        verdict: chain.policy.unwrap_or(Verdict::Accept),
        decided: Decided::Policy { chain: chain.id },
    }
}
