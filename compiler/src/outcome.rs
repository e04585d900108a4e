//! What happened to a packet: one type ([`Outcome`]) for every engine — `interp`, `sim`, the kernel
//! (decoded from its decision record by [`Outcome::from_kernel`], the only decoder of `tw_decision`),
//! the oracle and `replay` — and the interface they share ([`Engine`]).
//!
//! Guarantees: [`Outcome::from_kernel`] never guesses — an XDP action that disagrees with the recorded
//! action, a rule index outside the artifact or an unknown reason code is a [`DecisionError`]; the
//! kernel's fail-closed drops (failed tail call, failed lookup, bound hit) are [`Decided::FailClosed`]
//! with their `REASON_*` slot, never folded into another outcome.
use crate::artifact::Artifact;
use crate::ir::{ChainId, RuleId, Verdict};
use serde::Serialize;
use tailwall_abi as abi;

/// Who decided a packet's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Decided {
    /// A rule matched; `position` is its 1-based index in `chain`, the rule's own chain.
    Rule {
        /// The rule's own chain (a user chain when reached by a jump or goto).
        chain: ChainId,
        /// The rule that matched.
        rule: RuleId,
        /// Its 1-based index in `chain`.
        position: u32,
    },
    /// No rule decided: the built-in chain's policy.
    Policy {
        /// The built-in chain whose policy applied (`ChainId(u32::MAX)` from the kernel for a region
        /// whose ruleset has no such chain: its implicit ACCEPT).
        chain: ChainId,
    },
    /// `rule` (in its own chain `chain`) tested a truncated transport header: dropped, no rule counted.
    Hotdrop {
        /// The rule's own chain.
        chain: ChainId,
        /// The rule whose transport match hotdropped (`par->hotdrop` in `xt_tcpudp.c`).
        rule: RuleId,
        /// Its 1-based index in `chain`.
        position: u32,
    },
    /// Neither IPv4 nor IPv6: passed, not filtered.
    NotIpv4,
    /// IPv4 or IPv6 of the family the ruleset (or artifact) does not filter — an IPv6 frame and an
    /// iptables ruleset, or the reverse: passed, as the other family's empty filter table would.
    OtherFamily,
    /// IPv4 or IPv6 the kernel would reject (or whose extension headers cannot be walked): dropped.
    Malformed,
    /// The datapath dropped the packet on an internal fault (`reason`: the `REASON_*` slot: a failed
    /// tail call, a failed lookup, a walk bound hit, a region the generation does not hold). Every
    /// engine reports the parsing bounds of `packet::decode` (`REASON_BOUND`: too many VLAN tags or IPv6 extension headers);
    /// `sim` also the walk's bound and a missing region; the other faults only the kernel.
    FailClosed {
        /// The `tailwall_abi::REASON_*` code (`REASON_TAIL_CALL`, `REASON_BOUND`, `REASON_MAP`,
        /// `REASON_NO_REGION`).
        reason: u32,
    },
}

/// What happened to one packet: the verdict and who decided it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// Accept or drop.
    pub verdict: Verdict,
    /// The rule, policy or condition that gave the verdict.
    pub decided: Decided,
}

/// The kernel's decision record does not make sense for this artifact.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecisionError {
    /// The program returned one XDP action but recorded another verdict.
    #[error("xdp action {xdp} disagrees with the recorded action code {action} ({decision:?})")]
    ActionMismatch {
        /// The XDP action the program returned (`XDP_PASS` 2, `XDP_DROP` 1).
        xdp: u32,
        /// The record's `ACTION_*` code.
        action: u32,
        /// The whole record.
        decision: abi::Decision,
    },
    /// A position the artifact does not have, or one that is not a rule's (for a rule or hotdrop
    /// decision) or a policy's (for a policy decision).
    #[error("position {index} is not a deciding position of the artifact ({decision:?})")]
    UnknownRule {
        /// The recorded position.
        index: u32,
        /// The whole record.
        decision: abi::Decision,
    },
    /// A reason code the ABI does not define.
    #[error("unknown reason code {reason} ({decision:?})")]
    UnknownReason {
        /// The recorded reason code.
        reason: u32,
        /// The whole record.
        decision: abi::Decision,
    },
}

impl Outcome {
    /// Decode the kernel's `tw_decision` record and the XDP action of the same run, for a generation
    /// loaded from `artifact`: the one decoder of the decision record.
    ///
    /// # Errors
    /// [`DecisionError`] when the record contradicts the action or the artifact.
    pub fn from_kernel(
        artifact: &Artifact,
        xdp_action: u32,
        decision: &abi::Decision,
    ) -> Result<Outcome, DecisionError> {
        let d = *decision;
        let verdict = match (d.action, xdp_action) {
            (abi::ACTION_ACCEPT, abi::XDP_PASS) => Verdict::Accept,
            (abi::ACTION_DROP, abi::XDP_DROP) => Verdict::Drop,
            // The rejected packet is dropped; its reply left in its place (`XDP_TX`) when OUTPUT
            // accepted it and the kernel would send one. The kind is the position's.
            (abi::ACTION_REJECT, abi::XDP_DROP | abi::XDP_TX) => match artifact
                .positions
                .get(d.rule as usize)
                .filter(|p| p.index == d.rule && p.action == abi::ACTION_REJECT)
                .and_then(|p| crate::ir::RejectWith::from_abi(p.next))
            {
                Some(k) => Verdict::Reject(k),
                None => {
                    return Err(DecisionError::UnknownRule {
                        index: d.rule,
                        decision: d,
                    })
                }
            },
            (action, xdp) => {
                return Err(DecisionError::ActionMismatch {
                    xdp,
                    action,
                    decision: d,
                })
            }
        };
        let unknown = DecisionError::UnknownRule {
            index: d.rule,
            decision: d,
        };
        // The deciding position and what it counts for: a rule, or a region's policy.
        let origin = artifact
            .positions
            .get(d.rule as usize)
            .filter(|p| p.index == d.rule)
            .map(|p| p.origin);
        let rule = || match origin {
            Some(crate::artifact::PositionOrigin::Rule(i)) => artifact
                .rules
                .get(i as usize)
                .filter(|r| r.index == i)
                .ok_or(unknown.clone()),
            _ => Err(unknown.clone()),
        };
        let decided = match d.reason {
            abi::REASON_RULE => {
                let r = rule()?;
                Decided::Rule {
                    chain: r.chain_id,
                    rule: r.id,
                    position: r.position,
                }
            }
            abi::REASON_HOTDROP => {
                let r = rule()?;
                Decided::Hotdrop {
                    chain: r.chain_id,
                    rule: r.id,
                    position: r.position,
                }
            }
            abi::REASON_POLICY => match origin {
                Some(crate::artifact::PositionOrigin::Policy(k)) => Decided::Policy {
                    chain: artifact
                        .regions
                        .get(k as usize)
                        .ok_or(unknown.clone())?
                        .chain
                        .unwrap_or(ChainId(u32::MAX)),
                },
                _ => return Err(unknown),
            },
            abi::REASON_NOT_IPV4 => Decided::NotIpv4,
            abi::REASON_OTHER_FAMILY => Decided::OtherFamily,
            abi::REASON_MALFORMED => Decided::Malformed,
            abi::REASON_TAIL_CALL
            | abi::REASON_BOUND
            | abi::REASON_MAP
            | abi::REASON_NO_REGION
            | abi::REASON_NO_IFACE
            | abi::REASON_CT => Decided::FailClosed { reason: d.reason },
            reason => {
                return Err(DecisionError::UnknownReason {
                    reason,
                    decision: d,
                })
            }
        };
        Ok(Outcome { verdict, decided })
    }

    /// The XDP action the datapath returns for this outcome (`XDP_PASS` for accept).
    pub fn xdp_action(&self) -> u32 {
        match self.verdict {
            Verdict::Accept => abi::XDP_PASS,
            Verdict::Drop => abi::XDP_DROP,
            // The rejected packet itself is dropped; its reply (when OUTPUT accepts it) leaves in
            // its place (`XDP_TX`): `Generation::test_run` reports the reply separately.
            Verdict::Reject(_) => abi::XDP_DROP,
        }
    }

    /// The deciding rule's 1-based position in its chain (a rule or a hotdrop), else `None`.
    pub fn position(&self) -> Option<u32> {
        match self.decided {
            Decided::Rule { position, .. } | Decided::Hotdrop { position, .. } => Some(position),
            _ => None,
        }
    }

    /// The chain that decided (the rule's own chain, or the built-in chain whose policy applied);
    /// `None` for frames that are not filtered or failed closed.
    pub fn chain(&self) -> Option<ChainId> {
        match self.decided {
            Decided::Rule { chain, .. }
            | Decided::Hotdrop { chain, .. }
            | Decided::Policy { chain } => Some(chain),
            Decided::NotIpv4
            | Decided::OtherFamily
            | Decided::Malformed
            | Decided::FailClosed { .. } => None,
        }
    }

    /// The reason's stable name: `rule`, `policy`, `hotdrop`, `not_ipv4`, `other_family`, `malformed`,
    /// `fail_closed`
    /// (`replay`'s JSON and the test corpus use these).
    pub fn reason(&self) -> &'static str {
        match self.decided {
            Decided::Rule { .. } => "rule",
            Decided::Policy { .. } => "policy",
            Decided::Hotdrop { .. } => "hotdrop",
            Decided::NotIpv4 => "not_ipv4",
            Decided::OtherFamily => "other_family",
            Decided::Malformed => "malformed",
            Decided::FailClosed { .. } => "fail_closed",
        }
    }
}

/// An engine's error: the engine could not run the frame at all (a kernel call failed, the decision
/// record made no sense). A packet the engine drops is an [`Outcome`], not an error.
pub type EngineError = Box<dyn std::error::Error + Send + Sync>;

/// Something that decides packets: `interp` ([`crate::interp::Interp`]), `sim` ([`crate::sim::Sim`]),
/// the kernel (`tailwall_loader::KernelEngine`), the oracle (real iptables, in the test crate).
pub trait Engine {
    /// Short name for reports (`interp`, `sim`, `kernel`, …).
    fn name(&self) -> &'static str;
    /// What the engine does with one Ethernet frame (no FCS).
    ///
    /// # Errors
    /// The engine could not run the frame ([`EngineError`]).
    fn run_frame(&mut self, frame: &[u8]) -> Result<Outcome, EngineError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::build;
    use crate::diag::Span;
    use crate::ir::{Action, Field, Hook, Match, Ruleset, Test};

    #[test]
    fn kernel_record_decodes_to_the_rule_and_refuses_contradictions() {
        let rs = Ruleset::with_chain(
            Hook::Input,
            Verdict::Drop,
            [(
                vec![Match::single(
                    Field::Proto,
                    Test::Exact(6),
                    false,
                    Span::default(),
                )],
                Action::Accept,
            )],
        );
        let a = build(&rs, Hook::Input).unwrap();
        let rec = |rule, reason, action| abi::Decision {
            rule,
            reason,
            action,
            seq: 1,
        };
        let o = Outcome::from_kernel(
            &a,
            abi::XDP_PASS,
            &rec(0, abi::REASON_RULE, abi::ACTION_ACCEPT),
        )
        .unwrap();
        assert_eq!(
            (o.position(), o.reason(), o.xdp_action()),
            (Some(1), "rule", abi::XDP_PASS)
        );
        let p = Outcome::from_kernel(
            &a,
            abi::XDP_DROP,
            &rec(1, abi::REASON_POLICY, abi::ACTION_DROP),
        )
        .unwrap();
        assert_eq!(p.decided, Decided::Policy { chain: ChainId(0) });
        let f = Outcome::from_kernel(
            &a,
            abi::XDP_DROP,
            &rec(abi::NO_RULE, abi::REASON_TAIL_CALL, abi::ACTION_DROP),
        )
        .unwrap();
        assert_eq!(f.reason(), "fail_closed");
        assert!(matches!(
            Outcome::from_kernel(
                &a,
                abi::XDP_DROP,
                &rec(0, abi::REASON_RULE, abi::ACTION_ACCEPT)
            ),
            Err(DecisionError::ActionMismatch { .. })
        ));
        assert!(matches!(
            Outcome::from_kernel(
                &a,
                abi::XDP_PASS,
                &rec(7, abi::REASON_RULE, abi::ACTION_ACCEPT)
            ),
            Err(DecisionError::UnknownRule { .. })
        ));
        assert!(matches!(
            Outcome::from_kernel(&a, abi::XDP_DROP, &rec(0, 99, abi::ACTION_DROP)),
            Err(DecisionError::UnknownReason { .. })
        ));
    }
}
