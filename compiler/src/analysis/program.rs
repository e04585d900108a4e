//! Programs: a hook's decision procedure flattened into a list of boxes, so that every source — the IR
//! with its user chains, or the compiled artifact's tables — is analysed by one engine.
//!
//! A [`Program`] is a list of [`Entry`]s tried in order: a packet *enters* an entry when its value on
//! every dimension is in the entry's set; then [`Act::Decide`] gives the outcome, [`Act::Skip`]
//! continues at a later entry, [`Act::Impossible`] marks packets no wire can carry. No entry entered:
//! the policy. Programs only ever skip forward.
//!
//! From the IR ([`Program::from_ruleset`]), with `interp`'s semantics:
//! - entry 0 (in every program): protocol neither TCP, UDP nor the family's ICMP with a transport
//!   header present or truncated is
//!   [`Act::Impossible`], so regions and counterexamples are always packets that exist;
//! - a rule with a transport test becomes two entries: its IP part on [`L4_TRUNCATED`] decides
//!   *hotdrop* (drop), its whole box on [`L4_PRESENT`] takes its action (a transport test fails on
//!   [`L4_ABSENT`], negated or not);
//! - a user chain is inlined at each jump, its rules' boxes intersected with the jumping rule's box
//!   (the *guard*): `RETURN` skips to the entry after the inlined chain, falling off its end continues
//!   there. A goto inlines the chain with the caller's exit as its return point, followed by a skip to
//!   that exit on the goto rule's box (the end of a goto chain returns to the caller's caller).
//!   `RETURN` in the built-in chain skips to the end: the policy;
//! - an entry whose box is empty (a rule the guard excludes) is not emitted.
//!
//! Both sources then lose their *no-op skips* (a skip whose box overlaps none of the entries it jumps
//! over; see `drop_noop_skips`): the artifact's jump positions and the IR's last-rule `RETURN`s, so
//! that an IR and the tables compiled from it are the same sequence of boxes and the search proves
//! them equal without splitting inside the user chains.
//!
//! From an artifact ([`Program::from_artifact`]): the map images are decoded as the datapath reads them
//! (longest-prefix tables, arrays, class vectors, rule metadata), and rule `i`'s box on each stage field
//! is the set of values whose class vector has bit `i`; its transport state is present (the port
//! tables' values), absent (bit `i` in every port stage's `PORT_ABSENT` class) and truncated (bit `i`
//! in the `PORT_TRUNCATED` classes; `RULE_F_NEEDS_L4` makes it a hotdrop). Fields without a stage are
//! unconstrained. This reads the images independently of `sim`, which runs the same images packet by
//! packet.
use super::set::Set;
use super::space::{Dim, Space, L4_ABSENT, L4_PRESENT, L4_TRUNCATED};
use crate::artifact::Artifact;
use crate::interp::{Decided, Outcome};
use crate::ir::{Action, Chain, ChainId, Field, Lookup, Rule, Ruleset, Verdict};
use crate::packet::{IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP};
use tailwall_abi as abi;

/// Most entries a program may have (inlining a user chain at every jump multiplies them).
pub const MAX_ENTRIES: usize = 4_000_000;

/// What entering an entry does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    /// The packet's outcome: a rule's verdict, or a hotdrop.
    Decide(Outcome),
    /// Continue at entry `.0` (always after this one; `entries.len()` is the policy).
    Skip(u32),
    /// Packets no wire carries (ports on a protocol without ports).
    Impossible,
}

/// One box and what entering it does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// One set per dimension of the [`Space`], non-empty.
    pub sets: Vec<Set>,
    /// Bit `d` set: `sets[d]` is not the whole domain.
    pub constrained: u64,
    /// What a packet of the box that reaches this entry gets.
    pub act: Act,
}

/// A hook's decision procedure as a list of boxes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    /// In order: a packet is decided by the first entry whose box holds it (after skips).
    pub entries: Vec<Entry>,
    /// What decides when no entry does.
    pub policy: Outcome,
}

/// Why a program could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProgramError {
    /// Inlining the user chains at every jump gives more than [`MAX_ENTRIES`] entries.
    #[error("inlining the user chains gives more than {MAX_ENTRIES} boxes: too large to analyse")]
    TooLarge,
    /// The artifact's images do not hold what the program needs (a map missing, a class without a
    /// vector); the text says what.
    #[error("artifact: {0}")]
    Artifact(String),
    /// The two rulesets filter different address families: no packet is judged by both.
    #[error("OLD is an {} ruleset and NEW an {} one: diff compares two rulesets of one family (iptables-save with iptables-save, ip6tables-save with ip6tables-save)", old.as_str(), new.as_str())]
    Families {
        /// The first (OLD) ruleset's family.
        old: crate::ir::Family,
        /// The second (NEW) ruleset's family.
        new: crate::ir::Family,
    },
}

struct Builder<'s> {
    space: &'s Space,
    entries: Vec<Entry>,
    /// Label → entry index, once bound.
    labels: Vec<Option<u32>>,
    /// Entries whose `Skip` holds a label id, patched at the end.
    patches: Vec<usize>,
}

const END: u32 = u32::MAX;

impl Builder<'_> {
    fn push(&mut self, sets: Vec<Set>, act: Act) -> Result<(), ProgramError> {
        if sets.iter().any(Set::is_empty) {
            return Ok(());
        }
        if self.entries.len() >= MAX_ENTRIES {
            return Err(ProgramError::TooLarge);
        }
        let constrained = constrained_mask(self.space, &sets);
        if let Act::Skip(_) = act {
            self.patches.push(self.entries.len());
        }
        self.entries.push(Entry {
            sets,
            constrained,
            act,
        });
        Ok(())
    }
    fn label(&mut self) -> u32 {
        self.labels.push(None);
        self.labels.len() as u32 - 1
    }
    fn bind(&mut self, l: u32) {
        self.labels[l as usize] = Some(self.entries.len() as u32);
    }
    /// The rule's box: its matches per field, its transport state.
    fn rule_box(&self, r: &Rule) -> Vec<Set> {
        let mut b = self.space.universe();
        for m in &r.matches {
            b[Space::field_dim(m.field)] = self.space.match_set(m);
        }
        if r.needs_l4() {
            b[0] = Set::single(L4_PRESENT);
        }
        b
    }
    fn chain(
        &mut self,
        rs: &Ruleset,
        chain: &Chain,
        guard: &[Set],
        exit: u32,
    ) -> Result<(), ProgramError> {
        for r in &chain.rules {
            let rule_box = self.rule_box(r);
            let bx: Vec<Set> = guard
                .iter()
                .zip(&rule_box)
                .map(|(g, s)| g.intersect(s))
                .collect();
            if r.needs_l4() {
                let mut hot = bx.clone();
                for (d, info) in self.space.dims.iter().enumerate() {
                    if let Dim::Field(f) = info.dim {
                        if f.info().transport {
                            hot[d] = guard[d].clone();
                        }
                    }
                }
                hot[0] = guard[0].intersect(&Set::single(L4_TRUNCATED));
                self.push(
                    hot,
                    Act::Decide(Outcome {
                        verdict: Verdict::Drop,
                        decided: Decided::Hotdrop {
                            chain: chain.id,
                            rule: r.id,
                            position: r.position,
                        },
                    }),
                )?;
            }
            if bx.iter().any(Set::is_empty) {
                continue;
            }
            match r.action {
                Action::Accept | Action::Drop | Action::Reject(_) => {
                    let verdict = r.action.verdict().unwrap_or(Verdict::Drop);
                    self.push(
                        bx,
                        Act::Decide(Outcome {
                            verdict,
                            decided: Decided::Rule {
                                chain: chain.id,
                                rule: r.id,
                                position: r.position,
                            },
                        }),
                    )?;
                }
                Action::Return => self.push(bx, Act::Skip(exit))?,
                // LOG/NFLOG never decide (XT_CONTINUE): only their hotdrop above is an entry. The
                // analysis compares decisions, not log events (`docs/decisions/0014`).
                Action::Log(_) => {}
                Action::Jump(t) => {
                    if let Some(tc) = rs.chain(t) {
                        let after = self.label();
                        self.chain(rs, tc, &bx, after)?;
                        self.bind(after);
                    }
                }
                Action::Goto(t) => {
                    if let Some(tc) = rs.chain(t) {
                        self.chain(rs, tc, &bx, exit)?;
                        self.push(bx, Act::Skip(exit))?;
                    }
                }
            }
        }
        Ok(())
    }
    fn finish(mut self, policy: Outcome) -> Program {
        let end = self.entries.len() as u32;
        for &i in &self.patches {
            if let Act::Skip(l) = self.entries[i].act {
                let to = if l == END {
                    end
                } else {
                    self.labels[l as usize].unwrap_or(end)
                };
                self.entries[i].act = Act::Skip(to);
            }
        }
        Program {
            entries: drop_noop_skips(self.entries),
            policy,
        }
    }
    fn impossible(&mut self) -> Result<(), ProgramError> {
        let mut b = self.space.universe();
        let p = Space::field_dim(Field::Proto);
        // The family's ICMP carries the icmp_type transport field.
        let icmp = match self.space.family {
            crate::ir::Family::V4 => IPPROTO_ICMP,
            crate::ir::Family::V6 => IPPROTO_ICMPV6,
        } as u128;
        b[p] = b[p].subtract(&Set::from_intervals(vec![
            (icmp, icmp),
            (IPPROTO_TCP as u128, IPPROTO_TCP as u128),
            (IPPROTO_UDP as u128, IPPROTO_UDP as u128),
        ]));
        b[0] = Set::from_intervals(vec![(L4_PRESENT, L4_PRESENT), (L4_TRUNCATED, L4_TRUNCATED)]);
        self.push(b, Act::Impossible)
    }
}

/// Longest skip (in entries jumped over) checked for being a no-op; longer skips are kept (exact either
/// way: only the prune may then apply later). The check stops at the first entry the skip overlaps.
const NOOP_SCAN: usize = 1024;

/// `entries` without the skips that change no packet's walk: a skip whose box is disjoint from every
/// entry it jumps over (a packet entering it would enter none of them; the walk goes on where it would
/// anyway), targets renumbered. The artifact's jump is such a skip (a `CONTINUE` position to the
/// position after it, `flatten`'s `-j` expansion) where the IR's program has no entry, and so is a
/// `RETURN` whose box no later rule of its chain overlaps: removing them from both sides by the same
/// test (on the boxes, not on where they came from) makes the two programs the same sequence, so the
/// search's `same_rest` prune applies inside every chain a jump leads into.
fn drop_noop_skips(entries: Vec<Entry>) -> Vec<Entry> {
    let disjoint = |a: &Entry, b: &Entry| {
        (0..a.sets.len()).any(|d| {
            (a.constrained & b.constrained) >> d & 1 != 0 && !a.sets[d].intersects(&b.sets[d])
        })
    };
    let noop: Vec<bool> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| match e.act {
            Act::Skip(t) => {
                let t = t as usize;
                let over = &entries[(i + 1).min(t)..t.min(entries.len())];
                over.len() <= NOOP_SCAN && over.iter().all(|o| disjoint(e, o))
            }
            _ => false,
        })
        .collect();
    if !noop.contains(&true) {
        return entries;
    }
    // New index of the first kept entry at or after each old index (`len` → the new end).
    let mut renumber = Vec::with_capacity(entries.len() + 1);
    let mut kept = 0u32;
    for &n in &noop {
        renumber.push(kept);
        kept += u32::from(!n);
    }
    renumber.push(kept);
    entries
        .into_iter()
        .zip(noop)
        .filter(|(_, n)| !n)
        .map(|(mut e, _)| {
            if let Act::Skip(t) = e.act {
                e.act = Act::Skip(renumber[t as usize]);
            }
            e
        })
        .collect()
}

fn constrained_mask(space: &Space, sets: &[Set]) -> u64 {
    sets.iter()
        .zip(&space.dims)
        .enumerate()
        .filter(|(_, (s, d))| **s != d.domain)
        .fold(0u64, |m, (i, _)| m | 1 << i)
}

impl Program {
    /// The program of `rs` at the space's hook (see the module docs). A ruleset without a chain for the
    /// hook accepts, as `interp` says (policy of chain `ChainId(u32::MAX)`).
    ///
    /// # Errors
    /// [`ProgramError::TooLarge`] when inlining the user chains exceeds [`MAX_ENTRIES`] entries.
    pub fn from_ruleset(space: &Space, rs: &Ruleset) -> Result<Program, ProgramError> {
        let mut b = Builder {
            space,
            entries: Vec::new(),
            labels: Vec::new(),
            patches: Vec::new(),
        };
        b.impossible()?;
        let Some(chain) = rs.hook_chain(space.hook) else {
            return Ok(b.finish(Outcome {
                verdict: Verdict::Accept,
                decided: Decided::Policy {
                    chain: ChainId(u32::MAX),
                },
            }));
        };
        b.chain(rs, chain, &space.universe(), END)?;
        Ok(b.finish(Outcome {
            verdict: chain.policy.unwrap_or(Verdict::Accept),
            decided: Decided::Policy { chain: chain.id },
        }))
    }

    /// The program the artifact's tables compute in the region of `space.hook` and `family` (see the
    /// module docs). Errors name what the images do not hold (a map missing, a class without a vector): `sim` refuses such an artifact too.
    ///
    /// # Errors
    /// [`ProgramError::Artifact`] for images that do not hold what the program reads,
    /// [`ProgramError::TooLarge`] beyond [`MAX_ENTRIES`] entries.
    pub fn from_artifact(
        space: &Space,
        art: &Artifact,
        family: crate::ir::Family,
    ) -> Result<Program, ProgramError> {
        let err = |s: String| ProgramError::Artifact(s);
        let g = art.globals;
        let nrules = g.nrules as usize;
        let nchunks = g.nchunks.max(1) as usize;
        let words = nchunks * abi::CHUNK_WORDS;
        let le32 = |b: &[u8]| -> u32 {
            b.get(..4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .unwrap_or(0)
        };
        let verdict = |code: u32, next: u32| {
            crate::layout::verdict_of(code, next)
                .ok_or_else(|| err(format!("action code {code} next {next}")))
        };
        let rules_map = art
            .map(abi::MAP_RULES)
            .ok_or_else(|| err(format!("no map {}", abi::MAP_RULES)))?;
        let mut metas = vec![(0u32, 0u32, 0u32); nrules];
        for (k, v) in &rules_map.entries {
            let i = le32(k) as usize;
            if i < nrules && v.len() >= 12 {
                metas[i] = (le32(&v[0..4]), le32(&v[4..8]), le32(&v[8..12]));
            }
        }
        if art.positions.len() != nrules {
            return Err(err(format!(
                "{} position infos for {nrules} positions",
                art.positions.len()
            )));
        }
        let region = art
            .region(space.hook, family)
            .ok_or_else(|| err(format!("no {} region", space.hook.chain_name())))?;
        // The positions whose boxes the program needs: the region's, its policy position aside.
        let first = region.first as usize;
        let policy_pos = region.end as usize - 1;
        if policy_pos >= nrules || first > policy_pos {
            return Err(err(format!("region {first}..{}", region.end)));
        }
        let span = first..policy_pos;
        // Bits of word `w` (positions `64w..64w+64`) inside the span.
        let span_mask = |w: usize| -> u64 {
            let lo = span.start.saturating_sub(w * 64).min(64);
            let hi = span.end.saturating_sub(w * 64).min(64);
            let below = |n: usize| if n >= 64 { u64::MAX } else { (1u64 << n) - 1 };
            below(hi) & !below(lo)
        };
        // Per stage: the class of every value as (interval, class) runs, the sentinel classes, and the
        // class vectors.
        struct StageSets {
            dim: usize,
            transport: bool,
            /// Per position of the span (index `position - first`): the values admitting it.
            sets: Vec<Set>,
            absent: Vec<bool>,
            truncated: Vec<bool>,
        }
        let mut stages = Vec::new();
        for &f in &art.stages {
            let info = f.info();
            let row = info
                .datapath
                .ok_or_else(|| err(format!("stage {f}: no datapath stage")))?;
            let vm = art
                .map(row.vector_map)
                .ok_or_else(|| err(format!("no map {}", row.vector_map)))?;
            let nclasses = vm.max_entries as usize / nchunks;
            let mut vectors = vec![0u64; nclasses * words];
            for (k, v) in &vm.entries {
                let key = le32(k) as usize;
                for w in 0..abi::CHUNK_WORDS {
                    let Some(b) = v.get(w * 8..w * 8 + 8) else {
                        break;
                    };
                    let word = u64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
                    if let Some(slot) = vectors.get_mut(key * abi::CHUNK_WORDS + w) {
                        *slot = word;
                    }
                }
            }
            let bit = |class: u32, rule: usize| -> bool {
                vectors
                    .get(class as usize * words + rule / 64)
                    .is_some_and(|w| w >> (rule % 64) & 1 != 0)
            };
            let tm = art
                .map(row.table_map)
                .ok_or_else(|| err(format!("no map {}", row.table_map)))?;
            let max = f.max_value();
            let mut runs: Vec<(u128, u128, u32)> = Vec::new();
            let mut sentinel = (0u32, 0u32);
            match info.lookup {
                Lookup::Lpm => {
                    // Longest prefix wins: sweep the laminar prefixes, parents before children. Keys
                    // hold the address in network byte order, 4 (IPv4) or 16 (IPv6) bytes.
                    let bits = row.bits.min(128);
                    let key_len = 4 + bits as usize / 8;
                    if tm
                        .entries
                        .iter()
                        .any(|(k, v)| k.len() < key_len || v.len() < 4)
                    {
                        return Err(err(format!("{}: entry of the wrong size", tm.name)));
                    }
                    let mut ps: Vec<(u128, u128, u32)> = tm
                        .entries
                        .iter()
                        .map(|(k, v)| {
                            let len = le32(&k[0..4]).min(bits);
                            let addr = k[4..key_len]
                                .iter()
                                .fold(0u128, |a, &b| (a << 8) | u128::from(b));
                            let host = if len == 0 {
                                max
                            } else {
                                (1u128 << (bits - len)) - 1
                            };
                            (addr & !host, (addr & !host) | host, le32(v))
                        })
                        .collect();
                    ps.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
                    let mut stack: Vec<(u128, u32)> = Vec::new();
                    // The first address not yet emitted; `None` once the last address is.
                    let mut cur = Some(0u128);
                    let emit = |lo: u128, hi: u128, c: u32, runs: &mut Vec<(u128, u128, u32)>| {
                        if lo <= hi {
                            runs.push((lo, hi, c));
                        }
                    };
                    for (lo, hi, c) in ps {
                        while let Some(&(thi, tc)) = stack.last() {
                            if thi >= lo {
                                break;
                            }
                            if let Some(from) = cur {
                                emit(from, thi, tc, &mut runs);
                            }
                            cur = thi.checked_add(1);
                            stack.pop();
                        }
                        if let Some(from) = cur.filter(|&c| c < lo) {
                            match stack.last() {
                                Some(&(_, tc)) => emit(from, lo - 1, tc, &mut runs),
                                None => {
                                    return Err(err(format!(
                                        "{}: addresses without an entry",
                                        tm.name
                                    )))
                                }
                            }
                        }
                        cur = cur.map(|c| c.max(lo));
                        stack.push((hi, c));
                    }
                    while let Some((thi, tc)) = stack.pop() {
                        if let Some(from) = cur {
                            emit(from, thi, tc, &mut runs);
                        }
                        cur = thi.checked_add(1);
                    }
                    if cur.is_some_and(|c| c <= max) {
                        return Err(err(format!("{}: addresses without an entry", tm.name)));
                    }
                }
                Lookup::Exact | Lookup::PortRange => {
                    let mut vals = vec![0u32; tm.max_entries as usize];
                    for (k, v) in &tm.entries {
                        if let Some(slot) = vals.get_mut(le32(k) as usize) {
                            *slot = le32(v);
                        }
                    }
                    if vals.len() <= max as usize {
                        return Err(err(format!("{}: {} entries", tm.name, vals.len())));
                    }
                    for (x, &c) in vals[..=max as usize].iter().enumerate() {
                        match runs.last_mut() {
                            Some(r) if r.2 == c => r.1 = x as u128,
                            _ => runs.push((x as u128, x as u128, c)),
                        }
                    }
                    if info.lookup == Lookup::PortRange {
                        sentinel = (
                            vals.get(abi::PORT_ABSENT as usize).copied().unwrap_or(0),
                            vals.get(abi::PORT_TRUNCATED as usize).copied().unwrap_or(0),
                        );
                    }
                }
                Lookup::Iface => {
                    // One run per name atom of the space: the class the loader gives a device of
                    // that name (atom "no interface": ifindex 0, the empty name's class). Devices
                    // missing from the table (created after the build) are dropped by the
                    // datapath, counted; the analysis assumes every device is known.
                    let names =
                        art.ifaces.iter().find(|i| i.field == f).ok_or_else(|| {
                            err(format!("{}: no interface-name partition", tm.name))
                        })?;
                    let reps = space.dims[Space::field_dim(f)]
                        .atoms
                        .as_ref()
                        .map(|a| a.reps.clone())
                        .unwrap_or_else(|| vec![None]);
                    for (a, rep) in reps.iter().enumerate() {
                        let c = names
                            .table
                            .class_of_name(rep.as_deref().unwrap_or(""))
                            .ok_or_else(|| err(format!("{}: a name without a class", tm.name)))?;
                        runs.push((a as u128, a as u128, c));
                    }
                }
            }
            if let Some(r) = runs.iter().find(|r| r.2 as usize >= nclasses) {
                return Err(err(format!("{}: class {} has no vector", tm.name, r.2)));
            }
            // Rule → values. Rules whose bit is set in every used class are unconstrained (found with
            // one AND over the vectors); the others collect the intervals of the classes with their bit.
            let mut classes: Vec<Vec<(u128, u128)>> = vec![Vec::new(); nclasses];
            for &(lo, hi, c) in &runs {
                classes[c as usize].push((lo, hi));
            }
            let used: Vec<usize> = (0..nclasses).filter(|&c| !classes[c].is_empty()).collect();
            let mut everywhere = vec![u64::MAX; words];
            for &c in &used {
                for (w, a) in everywhere.iter_mut().enumerate() {
                    *a &= vectors[c * words + w];
                }
            }
            let domain = &space.dims[Space::field_dim(f)].domain;
            // Walk the runs in ascending order, appending each run to the rules its class admits
            // (merged with the previous interval when adjacent): sorted sets without sorting.
            // Only the region's positions, and per used class only its non-zero words among them
            // (computed once: a class is the value of many runs).
            let mut class_words: Vec<Vec<(usize, u64)>> = vec![Vec::new(); nclasses];
            for &c in &used {
                for w in span.start / 64..span.end.div_ceil(64) {
                    let bits = vectors[c * words + w] & !everywhere[w] & span_mask(w);
                    if bits != 0 {
                        class_words[c].push((w, bits));
                    }
                }
            }
            let mut lists: Vec<Vec<(u128, u128)>> = vec![Vec::new(); span.len()];
            for &(lo, hi, c) in &runs {
                for &(w, mut bits) in &class_words[c as usize] {
                    while bits != 0 {
                        let r = w * 64 + bits.trailing_zeros() as usize;
                        bits &= bits - 1;
                        let l = &mut lists[r - span.start];
                        match l.last_mut() {
                            Some(last) if last.1 + 1 == lo => last.1 = hi,
                            _ => l.push((lo, hi)),
                        }
                    }
                }
            }
            let sets = lists
                .into_iter()
                .zip(span.clone())
                .map(|(l, r)| {
                    if everywhere[r / 64] >> (r % 64) & 1 != 0 {
                        domain.clone()
                    } else {
                        Set(l)
                    }
                })
                .collect();
            stages.push(StageSets {
                dim: Space::field_dim(f),
                transport: info.transport,
                sets,
                absent: span.clone().map(|r| bit(sentinel.0, r)).collect(),
                truncated: span.clone().map(|r| bit(sentinel.1, r)).collect(),
            });
        }
        let mut b = Builder {
            space,
            entries: Vec::new(),
            labels: Vec::new(),
            patches: Vec::new(),
        };
        b.impossible()?;
        // One label per position of the region; the policy position is the program's end.
        let labels: Vec<u32> = (first..policy_pos).map(|_| b.label()).collect();
        for i in first..policy_pos {
            b.bind(labels[i - first]);
            let (action, flags, next) = metas[i];
            let info = match art.positions[i].origin {
                crate::artifact::PositionOrigin::Rule(r) => art.rules.get(r as usize),
                _ => None,
            };
            let act = if action == abi::ACTION_CONTINUE {
                let next = next as usize;
                if next <= i || next > policy_pos {
                    return Err(err(format!("position {i}: next {next}")));
                }
                Act::Skip(if next == policy_pos {
                    END
                } else {
                    labels[next - first]
                })
            } else {
                let info = info.ok_or_else(|| err(format!("position {i}: no rule")))?;
                Act::Decide(Outcome {
                    verdict: verdict(action, next)?,
                    decided: Decided::Rule {
                        chain: info.chain_id,
                        rule: info.id,
                        position: info.position,
                    },
                })
            };
            let mut present = space.universe();
            for s in &stages {
                present[s.dim] = s.sets[i - first].clone();
            }
            let mut other = present.clone();
            for s in stages.iter().filter(|s| s.transport) {
                other[s.dim] = space.dims[s.dim].domain.clone();
            }
            let ports = stages.iter().filter(|s| s.transport);
            let absent_ok = ports.clone().all(|s| s.absent[i - first]);
            let truncated_ok = ports.clone().all(|s| s.truncated[i - first]);
            present[0] = Set::single(L4_PRESENT);
            b.push(present, act)?;
            if absent_ok {
                let mut a = other.clone();
                a[0] = Set::single(L4_ABSENT);
                b.push(a, act)?;
            }
            if truncated_ok {
                let mut t = other;
                t[0] = Set::single(L4_TRUNCATED);
                let act = match info {
                    Some(info) if flags & abi::RULE_F_NEEDS_L4 != 0 => Act::Decide(Outcome {
                        verdict: Verdict::Drop,
                        decided: Decided::Hotdrop {
                            chain: info.chain_id,
                            rule: info.id,
                            position: info.position,
                        },
                    }),
                    _ => act,
                };
                b.push(t, act)?;
            }
        }
        let chain = region.chain.unwrap_or(ChainId(u32::MAX));
        Ok(b.finish(Outcome {
            verdict: region.policy,
            decided: Decided::Policy { chain },
        }))
    }
}
