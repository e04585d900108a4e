//! Flattening: the chains reachable from each built-in chain, expanded into one global numbering of
//! **positions**, so that the datapath walks them with one monotone scan and no call stack
//! (`docs/decisions/0009-chains-flattened.md`).
//!
//! Input: one or more rulesets (one per address family) and the hooks to expand. Output: a [`Flat`] —
//! per (hook, family) a contiguous [`Region`] of [`Position`]s, regions in the order asked for.
//!
//! Expansion of a chain entered with conjuncts `C` (the rules the packet matched on the way there) and
//! return target `R` (where a `RETURN` continues):
//! - every rule `x` becomes a position with conjuncts `C + [x]` (the position admits a packet iff every
//!   conjunct rule matches it: `classify` intersects them per field);
//! - `ACCEPT`/`DROP`: a terminal position;
//! - `-j J`: a CONTINUE position whose `next` is the position right after it, followed by the expansion
//!   of `J` with conjuncts `C + [x]` and return target "the position after that expansion" — falling
//!   off `J` simply continues in the caller;
//! - `-g J`: the same, but `J` is expanded with the caller's return target `R`, and a synthetic
//!   **fall-off** position (conjuncts `C + [x]`, origin [`Origin::FallOff`]) follows the copy with
//!   `next = R`: falling off a goto'd chain returns to where the current chain was entered from;
//! - `RETURN`: a CONTINUE position with `next = R`;
//! - `LOG`/`NFLOG`: a CONTINUE position whose `next` is the position right after it (the walk reports
//!   the packet there and goes on, as `XT_CONTINUE`);
//! - the built-in chain's return target is its region's **policy** position: synthetic, no conjunct,
//!   terminal with the chain's policy, the last position of the region. A hook without a built-in chain
//!   gets a region holding only an ACCEPT policy position (iptables' default).
//!
//! Guarantees:
//! - `next > index` for every CONTINUE position and `next` lies in the same region (so a walk that
//!   starts at a region's first position visits strictly increasing positions and ends, at the latest,
//!   at the region's policy position);
//! - a packet's walk — visit the first admitting position at or after `pos`; terminal: decide; CONTINUE:
//!   `pos = next` — decides exactly as [`crate::interp`] (iptables' `ipt_do_table`), including which
//!   rule decides (its origin): proven by `compiler/tests/equivalence.rs`;
//! - at most [`MAX_POSITIONS`] positions in total: beyond that a [`FlattenError`] located at the
//!   outermost jump or goto of the built-in chain whose expansion crosses the bound (or at the rule
//!   itself in a chain without jumps). The nesting depth is bounded by [`crate::ir::MAX_CALL_DEPTH`]
//!   (`E0313`, checked by `ir::verify` and both front ends); loops are refused there too;
//! - [`Region::max_visits`]: an upper bound on the positions one walk visits in the region (the
//!   longest chain of CONTINUE positions a walk can take, plus the deciding one), computed exactly over
//!   the `next` links.
//!
//! Thrown away: nothing the walk needs; the chain structure survives as each position's origin.
use crate::diag::{Diagnostic, Span};
use crate::ir::{Action, ChainId, Family, Hook, Rule, Ruleset, Verdict};
use tailwall_abi as abi;

/// Positions the datapath holds at most (all regions together): `MAX_CHUNKS` chunks of `CHUNK_BITS`.
pub const MAX_POSITIONS: usize = abi::MAX_CHUNKS as usize * abi::CHUNK_BITS;

/// What a position does when the walk visits it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    /// ACCEPT or DROP: the walk ends.
    Verdict(Verdict),
    /// The walk continues at the first admitting position at or after `next` (jump, goto, RETURN,
    /// goto fall-off).
    Continue {
        /// The position to resume at (`> index`, same region).
        next: u32,
    },
}

/// What a position's counter counts for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    /// An IR rule of ruleset `set` (index into the slice given to [`flatten`]). A rule of a chain
    /// jumped to from several places has several positions: its counter is their sum.
    Rule {
        /// Index of the ruleset in the slice given to [`flatten`].
        set: usize,
        /// The rule's id in that ruleset.
        rule: crate::ir::RuleId,
    },
    /// The policy of region `region` (iptables counts it on the built-in chain).
    Policy {
        /// Index into [`Flat::regions`].
        region: usize,
    },
    /// Falling off a goto'd chain: iptables counts nothing.
    FallOff,
}

/// One position of the global numbering.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position<'a> {
    /// The rules that must all match for the walk to consider this position: the jump/goto rules on
    /// the way here (outermost first), then the position's own rule. Empty for the policy position.
    pub conjuncts: Vec<&'a Rule>,
    /// What the walk does when the position admits the packet.
    pub step: Step,
    /// What the position's counter counts for.
    pub origin: Origin,
    /// The region the position belongs to (index into [`Flat::regions`]).
    pub region: usize,
}

impl Position<'_> {
    /// The rule this position counts for and decides as (`None` for policy and fall-off positions).
    pub fn own(&self) -> Option<&Rule> {
        match self.origin {
            Origin::Rule { .. } => self.conjuncts.last().copied(),
            _ => None,
        }
    }
}

/// The positions of one (hook, family): `first..end`, the policy position at `end - 1`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Region {
    /// The hook whose built-in chain the region expands.
    pub hook: Hook,
    /// The family of the region's ruleset.
    pub family: Family,
    /// Index of the ruleset (in the slice given to [`flatten`]) the region comes from.
    pub set: usize,
    /// The built-in chain (`None`: the ruleset has no chain for the hook).
    pub chain: Option<ChainId>,
    /// The verdict of the policy position (the chain's policy, ACCEPT when there is no chain).
    pub policy: Verdict,
    /// The region's first position (where a walk starts).
    pub first: u32,
    /// One past the region's last position, the policy position.
    pub end: u32,
    /// Upper bound on the positions one walk in this region visits (see the module docs).
    pub max_visits: u32,
}

impl Region {
    /// The region's index in the datapath's region table: `hook * 2 + family` (INPUT 0, FORWARD 1,
    /// OUTPUT 2; IPv4 0, IPv6 1).
    pub fn slot(&self) -> u32 {
        region_slot(self.hook, self.family)
    }
    /// The policy position (the region's last).
    pub fn policy_position(&self) -> u32 {
        self.end - 1
    }
}

/// `hook * 2 + family`: the index of (hook, family) in the datapath's region table (`tw_regions`).
pub fn region_slot(hook: Hook, family: Family) -> u32 {
    let h = match hook {
        Hook::Input => 0,
        Hook::Forward => 1,
        Hook::Output => 2,
    };
    h * 2 + matches!(family, Family::V6) as u32
}

/// Every region's positions in one numbering.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flat<'a> {
    /// The regions in the order asked for; their position ranges are contiguous and ascending.
    pub regions: Vec<Region>,
    /// Every position, indexed by its number.
    pub positions: Vec<Position<'a>>,
}

/// The expansion crosses [`MAX_POSITIONS`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FlattenError {
    /// The outermost jump/goto whose expansion crosses the bound (or the rule that does, in a chain
    /// without jumps).
    pub rule: crate::ir::RuleId,
    /// That rule in the source.
    pub span: Span,
    /// What crossed the bound, with the count and the limit.
    pub message: String,
}

impl FlattenError {
    /// The located `E0502` error.
    pub fn diagnostic(&self) -> Diagnostic {
        Diagnostic::error("E0502", self.message.clone())
            .at(self.span)
            .label("its expansion crosses the bound")
            .help("the datapath copies a user chain once per jump or goto that reaches it; jump to large chains from fewer places, or split the ruleset")
    }
}

struct Builder<'a> {
    rs: &'a Ruleset,
    set: usize,
    region: usize,
    positions: Vec<Position<'a>>,
    /// Return labels: resolved to a position once known.
    labels: Vec<Option<u32>>,
    /// (position, label) of CONTINUE positions whose `next` is a label not yet resolved.
    pending: Vec<(usize, usize)>,
    /// The jump/goto rules being expanded, outermost first.
    stack: Vec<&'a Rule>,
    base: usize,
}

impl<'a> Builder<'a> {
    fn push(
        &mut self,
        conjuncts: Vec<&'a Rule>,
        step: Step,
        origin: Origin,
        at: &'a Rule,
    ) -> Result<usize, FlattenError> {
        if self.base + self.positions.len() >= MAX_POSITIONS {
            let blame = self.stack.first().copied().unwrap_or(at);
            let path: Vec<String> = self
                .stack
                .iter()
                .map(|r| {
                    let c = self.rs.chain(r.chain).map_or("?", |c| c.name.as_str());
                    format!("{c} #{}", r.position)
                })
                .collect();
            let via = if path.is_empty() {
                String::new()
            } else {
                format!(" (expanding {})", path.join(" -> "))
            };
            return Err(FlattenError {
                rule: blame.id,
                span: blame.span,
                message: format!(
                    "the flattened ruleset exceeds the datapath's {MAX_POSITIONS} positions{via}"
                ),
            });
        }
        self.positions.push(Position {
            conjuncts,
            step,
            origin,
            region: self.region,
        });
        Ok(self.positions.len() - 1)
    }

    fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }

    fn resolve(&mut self, label: usize) {
        self.labels[label] = Some((self.base + self.positions.len()) as u32);
    }

    /// A CONTINUE position whose `next` is `label` (patched in [`Builder::finish`]).
    fn push_to(
        &mut self,
        conjuncts: Vec<&'a Rule>,
        label: usize,
        origin: Origin,
        at: &'a Rule,
    ) -> Result<(), FlattenError> {
        let i = self.push(conjuncts, Step::Continue { next: u32::MAX }, origin, at)?;
        self.pending.push((i, label));
        Ok(())
    }

    fn chain(&mut self, id: ChainId, prefix: &[&'a Rule], ret: usize) -> Result<(), FlattenError> {
        let Some(chain) = self.rs.chain(id) else {
            return Ok(());
        };
        for rule in &chain.rules {
            let mut conj = Vec::with_capacity(prefix.len() + 1);
            conj.extend_from_slice(prefix);
            conj.push(rule);
            let origin = Origin::Rule {
                set: self.set,
                rule: rule.id,
            };
            match rule.action {
                Action::Accept | Action::Drop | Action::Reject(_) => {
                    let v = rule.action.verdict().unwrap_or(Verdict::Drop);
                    self.push(conj, Step::Verdict(v), origin, rule)?;
                }
                Action::Return => self.push_to(conj, ret, origin, rule)?,
                // LOG/NFLOG: a CONTINUE position to the next one; the artifact flags it
                // (`RULE_F_LOG`) so the walk reports the packet when it visits it.
                Action::Log(_) => {
                    let next = (self.base + self.positions.len() + 1) as u32;
                    self.push(conj, Step::Continue { next }, origin, rule)?;
                }
                Action::Jump(t) => {
                    let next = (self.base + self.positions.len() + 1) as u32;
                    self.push(conj.clone(), Step::Continue { next }, origin, rule)?;
                    let back = self.label();
                    self.stack.push(rule);
                    self.chain(t, &conj, back)?;
                    self.stack.pop();
                    self.resolve(back);
                }
                Action::Goto(t) => {
                    let next = (self.base + self.positions.len() + 1) as u32;
                    self.push(conj.clone(), Step::Continue { next }, origin, rule)?;
                    self.stack.push(rule);
                    self.chain(t, &conj, ret)?;
                    self.push_to(conj, ret, Origin::FallOff, rule)?;
                    self.stack.pop();
                }
            }
        }
        Ok(())
    }
}

/// Expand `hooks` of every ruleset in `sets` (one per family), regions in the order (set, hook).
///
/// # Errors
/// [`FlattenError`] when the positions of all regions together exceed [`MAX_POSITIONS`].
pub fn flatten<'a>(sets: &[&'a Ruleset], hooks: &[Hook]) -> Result<Flat<'a>, FlattenError> {
    let mut flat = Flat {
        regions: Vec::new(),
        positions: Vec::new(),
    };
    for (set, rs) in sets.iter().enumerate() {
        for &hook in hooks {
            flatten_region(&mut flat, rs, set, hook)?;
        }
    }
    Ok(flat)
}

/// Append the region of `hook` of `rs` to `flat`.
///
/// # Errors
/// As [`flatten`].
pub fn flatten_region<'a>(
    flat: &mut Flat<'a>,
    rs: &'a Ruleset,
    set: usize,
    hook: Hook,
) -> Result<(), FlattenError> {
    let base = flat.positions.len();
    let region = flat.regions.len();
    let chain = rs.hook_chain(hook);
    let mut b = Builder {
        rs,
        set,
        region,
        positions: Vec::new(),
        labels: Vec::new(),
        pending: Vec::new(),
        stack: Vec::new(),
        base,
    };
    let policy_label = b.label();
    if let Some(c) = chain {
        b.chain(c.id, &[], policy_label)?;
    }
    if base + b.positions.len() >= MAX_POSITIONS {
        return Err(FlattenError {
            rule: crate::ir::RuleId(u32::MAX),
            span: chain.map_or(Span::default(), |c| c.span),
            message: format!(
                "the flattened ruleset exceeds the datapath's {MAX_POSITIONS} positions (no room for the {} policy)",
                hook.chain_name()
            ),
        });
    }
    b.resolve(policy_label);
    let policy = chain.and_then(|c| c.policy).unwrap_or(Verdict::Accept);
    b.positions.push(Position {
        conjuncts: Vec::new(),
        step: Step::Verdict(policy),
        origin: Origin::Policy { region },
        region,
    });
    for &(i, l) in &b.pending {
        let next = b.labels[l].expect("every label is resolved before its frame ends");
        b.positions[i].step = Step::Continue { next };
    }
    let n = b.positions.len();
    // best[i]: most positions a walk starting at i visits (the DP of the module docs).
    let mut best = vec![0u32; n + 1];
    for i in (0..n).rev() {
        let here = match b.positions[i].step {
            Step::Verdict(_) => 1,
            Step::Continue { next } => 1 + best[next as usize - base],
        };
        best[i] = best[i + 1].max(here);
    }
    flat.regions.push(Region {
        hook,
        family: rs.family,
        set,
        chain: chain.map(|c| c.id),
        policy,
        first: base as u32,
        end: (base + n) as u32,
        max_visits: best[0],
    });
    flat.positions.extend(b.positions);
    Ok(())
}

impl<'a> Flat<'a> {
    /// The walk over a predicate: the position that decides a packet whose admitted positions are
    /// those where `admits(position)` holds, and the positions visited on the way (the last one
    /// decides). Policy positions are always admitted. Used by tests and `sim`'s documentation; `sim`
    /// runs the same walk over the artifact's images.
    pub fn walk(&self, region: usize, mut admits: impl FnMut(usize) -> bool) -> Vec<usize> {
        let r = &self.regions[region];
        let mut visited = Vec::new();
        let mut pos = r.first as usize;
        loop {
            let p = (pos..r.end as usize - 1)
                .find(|&i| admits(i))
                .unwrap_or(r.end as usize - 1);
            visited.push(p);
            match self.positions[p].step {
                Step::Verdict(_) => return visited,
                Step::Continue { next } => pos = next as usize,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{Chain, Match, RuleId};

    /// INPUT (policy DROP) and user chains, rules given as (chain index, action).
    fn rs(chains: &[(&str, Vec<Action>)]) -> Ruleset {
        let mut id = 0;
        let chains = chains
            .iter()
            .enumerate()
            .map(|(ci, (name, actions))| Chain {
                id: ChainId(ci as u32),
                name: name.to_string(),
                hook: (ci == 0).then_some(Hook::Input),
                policy: (ci == 0).then_some(Verdict::Drop),
                rules: actions
                    .iter()
                    .enumerate()
                    .map(|(i, &action)| {
                        id += 1;
                        Rule {
                            id: RuleId(id - 1),
                            chain: ChainId(ci as u32),
                            position: i as u32 + 1,
                            matches: Vec::<Match>::new(),
                            action,
                            comment: None,
                            counters: None,
                            span: Span::default(),
                        }
                    })
                    .collect(),
                span: Span::default(),
            })
            .collect();
        Ruleset {
            family: Family::V4,
            chains,
            sets: vec![],
            logs: Vec::new(),
        }
    }

    fn steps(f: &Flat) -> Vec<(Option<u32>, Step)> {
        f.positions
            .iter()
            .map(|p| (p.own().map(|r| r.id.0), p.step))
            .collect()
    }

    #[test]
    fn jump_goto_return_layout() {
        // INPUT: r0 -j A, r1 -g B, r2 ACCEPT; A: r3 RETURN, r4 DROP; B: r5 ACCEPT.
        let r = rs(&[
            (
                "INPUT",
                vec![
                    Action::Jump(ChainId(1)),
                    Action::Goto(ChainId(2)),
                    Action::Accept,
                ],
            ),
            ("A", vec![Action::Return, Action::Drop]),
            ("B", vec![Action::Accept]),
        ]);
        let f = flatten(&[&r], &[Hook::Input]).unwrap();
        use Step::*;
        assert_eq!(
            steps(&f),
            vec![
                (Some(0), Continue { next: 1 }),
                (Some(3), Continue { next: 3 }),
                (Some(4), Verdict(crate::ir::Verdict::Drop)),
                (Some(1), Continue { next: 4 }),
                (Some(5), Verdict(crate::ir::Verdict::Accept)),
                (None, Continue { next: 7 }),
                (Some(2), Verdict(crate::ir::Verdict::Accept)),
                (None, Verdict(crate::ir::Verdict::Drop)),
            ]
        );
        assert_eq!(f.positions[4].conjuncts.len(), 2);
        assert_eq!(f.positions[5].origin, Origin::FallOff);
        let reg = &f.regions[0];
        assert_eq!((reg.first, reg.end, reg.slot()), (0, 8, 0));
        // Everything admitted: jump, RETURN, goto, B's ACCEPT.
        assert_eq!(f.walk(0, |_| true), vec![0, 1, 3, 4]);
        // Only the goto and its fall-off: the policy (goto skips INPUT's ACCEPT).
        assert_eq!(f.walk(0, |p| p == 3 || p == 5), vec![3, 5, 7]);
        // 0, 1 (RETURN), 3 (goto), 5 (fall-off), 7 (policy) when B's ACCEPT does not match.
        assert_eq!(reg.max_visits, 5);
    }

    #[test]
    fn nested_return_goes_to_the_inner_callers_next_rule() {
        // INPUT: -j A; A: -j B, DROP; B: RETURN. RETURN in B continues at A's DROP.
        let r = rs(&[
            ("INPUT", vec![Action::Jump(ChainId(1))]),
            ("A", vec![Action::Jump(ChainId(2)), Action::Drop]),
            ("B", vec![Action::Return]),
        ]);
        let f = flatten(&[&r], &[Hook::Input]).unwrap();
        assert_eq!(f.walk(0, |_| true), vec![0, 1, 2, 3]);
        assert_eq!(f.positions[3].own().unwrap().id, RuleId(2));
    }

    #[test]
    fn expansion_over_the_bound_is_located_at_the_outer_jump() {
        // A chain of 600 rules jumped to 300 times: 180,000 positions.
        let mut input = vec![Action::Accept];
        input.extend(std::iter::repeat_n(Action::Jump(ChainId(1)), 300));
        let r = rs(&[("INPUT", input), ("big", vec![Action::Drop; 600])]);
        let e = flatten(&[&r], &[Hook::Input]).unwrap_err();
        // After 218 copies 1 + 218 * 601 = 131,019 positions: the 219th jump (r219, INPUT #220) crosses.
        assert_eq!(e.rule, RuleId(219), "{e}");
        assert!(e.message.contains("INPUT #220"), "{}", e.message);
        assert_eq!(e.diagnostic().code, "E0502");
    }

    #[test]
    fn missing_hook_chain_is_an_accept_policy_region() {
        let r = rs(&[("INPUT", vec![Action::Drop])]);
        let f = flatten(&[&r], &[Hook::Input, Hook::Output]).unwrap();
        assert_eq!(f.regions.len(), 2);
        let out = &f.regions[1];
        assert_eq!((out.first, out.end, out.chain, out.slot()), (2, 3, None, 4));
        assert_eq!(out.policy, Verdict::Accept);
    }
}
