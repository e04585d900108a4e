//! The path of one packet through a hook's chains, rule by rule (`tailwall explain`).
//!
//! [`trace`] follows `interp`'s semantics step by step and records, for every rule tried, whether it
//! matched and, when not, the first match that failed (IP part first, then the transport match, as
//! `ipt_do_table` tests them). Its final outcome is `interp::run_with`'s: [`trace`] asserts nothing
//! itself, callers compare ([`Trace::outcome`] against `interp`, which stays the one definition of
//! the semantics; the tests check it on generated packets).
use crate::interp::{self, Decided, Meta, Outcome};
use crate::ir::{Action, ChainId, Field, Hook, Lookup, Match, Rule, RuleId, Ruleset, Verdict};
use crate::packet::{Decoded, FieldValue, IpPacket};

/// What trying one rule did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "result", content = "field")]
pub enum Tried {
    /// Every match held: the rule's action was taken.
    Matched,
    /// This field's match failed (for a transport field: possibly because the packet has no ports).
    Failed(Field),
    /// A transport match on a truncated header: dropped at once.
    Hotdrop,
}

/// One rule tried.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Step {
    /// The chain the rule is in.
    pub chain: ChainId,
    /// The rule tried.
    pub rule: RuleId,
    /// 1-based position in `chain`.
    pub position: u32,
    /// Whether it matched, or which match failed.
    pub tried: Tried,
    /// The rule's action (taken only when `tried` is [`Tried::Matched`]).
    pub action: Action,
    /// Call depth (0 in the built-in chain).
    pub depth: usize,
}

/// A packet's path and its outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trace {
    /// Every rule tried, in order, across jumps and returns.
    pub steps: Vec<Step>,
    /// The verdict and what decided it (equal to `interp::run_with`'s).
    pub outcome: Outcome,
}

fn tried(m: &Match, pkt: &IpPacket, meta: &Meta) -> Result<bool, ()> {
    if m.field.info().lookup == Lookup::Iface {
        let name = match m.field {
            Field::InIface => meta.in_iface.as_deref(),
            _ => meta.out_iface.as_deref(),
        };
        return Ok(m.contains_iface(name.unwrap_or("")) != m.negated);
    }
    match pkt.value(m.field) {
        FieldValue::Value(v) => Ok(m.admits(v)),
        FieldValue::Absent => Ok(false),
        FieldValue::Truncated => Err(()),
    }
}

fn try_rule(r: &Rule, pkt: &IpPacket, meta: &Meta) -> Tried {
    let ip = r.matches.iter().filter(|m| !m.field.info().transport);
    let l4 = r.matches.iter().filter(|m| m.field.info().transport);
    for m in ip.chain(l4) {
        match tried(m, pkt, meta) {
            Ok(true) => {}
            Ok(false) => return Tried::Failed(m.field),
            Err(()) => return Tried::Hotdrop,
        }
    }
    Tried::Matched
}

/// The path of `pkt` through `rs` at `hook` (interfaces the hook does not have are unknown, as in
/// `interp`).
pub fn trace(rs: &Ruleset, hook: Hook, meta: &Meta, pkt: &Decoded) -> Trace {
    let mut steps = Vec::new();
    let p = match interp::classified(pkt, rs.family) {
        Ok(p) => p.at_hook(hook),
        Err(outcome) => return Trace { steps, outcome },
    };
    let p = &p;
    let meta = meta.at_hook(hook);
    let Some(chain) = rs.hook_chain(hook) else {
        return Trace {
            steps,
            outcome: Outcome {
                verdict: Verdict::Accept,
                decided: Decided::Policy {
                    chain: ChainId(u32::MAX),
                },
            },
        };
    };
    let policy = Outcome {
        verdict: chain.policy.unwrap_or(Verdict::Accept),
        decided: Decided::Policy { chain: chain.id },
    };
    let mut cur = (chain.id, 0usize);
    let mut stack: Vec<(ChainId, usize)> = Vec::new();
    let done = |steps, outcome| Trace { steps, outcome };
    loop {
        let Some(c) = rs.chain(cur.0) else {
            return done(steps, policy);
        };
        let Some(rule) = c.rules.get(cur.1) else {
            if c.hook.is_some() {
                return done(steps, policy);
            }
            match stack.pop() {
                Some(ret) => {
                    cur = ret;
                    continue;
                }
                None => return done(steps, policy),
            }
        };
        cur.1 += 1;
        let t = try_rule(rule, p, &meta);
        steps.push(Step {
            chain: c.id,
            rule: rule.id,
            position: rule.position,
            tried: t,
            action: rule.action,
            depth: stack.len(),
        });
        let here = (c.id, rule.id, rule.position);
        match t {
            Tried::Failed(_) => {}
            Tried::Hotdrop => {
                return done(
                    steps,
                    Outcome {
                        verdict: Verdict::Drop,
                        decided: Decided::Hotdrop {
                            chain: here.0,
                            rule: here.1,
                            position: here.2,
                        },
                    },
                )
            }
            Tried::Matched => match rule.action {
                Action::Accept | Action::Drop | Action::Reject(_) => {
                    return done(
                        steps,
                        Outcome {
                            verdict: rule.action.verdict().unwrap_or(Verdict::Drop),
                            decided: Decided::Rule {
                                chain: here.0,
                                rule: here.1,
                                position: here.2,
                            },
                        },
                    )
                }
                Action::Jump(t) => {
                    if stack.len() > crate::ir::MAX_CALL_DEPTH {
                        return done(steps, policy);
                    }
                    stack.push(cur);
                    cur = (t, 0);
                }
                Action::Goto(t) => cur = (t, 0),
                // LOG/NFLOG: the step above shows it; the walk goes on.
                Action::Log(_) => {}
                Action::Return => {
                    if c.hook.is_some() {
                        return done(steps, policy);
                    }
                    match stack.pop() {
                        Some(ret) => cur = ret,
                        None => return done(steps, policy),
                    }
                }
            },
        }
    }
}
