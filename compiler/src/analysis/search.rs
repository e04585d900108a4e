//! The decision procedure: compare two [`Program`]s over the whole header space by splitting it, one
//! dimension at a time, into the equivalence classes of the entries still in play.
//!
//! A *node* is a box of the space (a class on each dimension split so far, the whole domain on the
//! rest) and, per program, the entries that can still be entered by some packet of the box, in order.
//! Every entry in play either admits the box's class on each split dimension or was dropped: the classes
//! are the *atoms* of the entries' sets on that dimension (values that every entry in play treats
//! alike), so on a split dimension "admits" is exact. At each node, per program:
//! 1. *walk*: from the first entry in play, an entry that constrains no unsplit dimension is entered by
//!    every packet of the box — take it (decide, or skip ahead); stop at the first entry that constrains
//!    an unsplit dimension (the program is *open*) or when a decision is reached (*done*);
//! 2. both done: compare the verdicts; a difference is recorded with the box;
//! 3. prune, sound and exact: both open and the entries left are the same sequence (same sets on the
//!    unsplit dimensions, same verdicts, same skip targets relative to the sequence) and the same policy
//!    verdict — the programs agree on the whole box; or every decision either program can still reach
//!    has the same verdict;
//! 4. otherwise split the next dimension (the transport state first, then the protocol, then the
//!    interface names, then the fields most entries constrain) into the atoms of the entries in play
//!    and recurse into each atom.
//!
//! Complete: every packet lies in exactly one leaf box, and in a leaf both programs' outcomes are
//! constant over the box (each took only entries admitting the whole box). Nothing is sampled. The
//! cost is the number of nodes: for two similar programs the prune stops almost every branch after a
//! few splits; the worst case (two unrelated programs whose rules cross on several fields) grows with
//! the product of their classes.
use super::program::{Act, Program};
use super::set::Set;
use super::space::{Dim, Space};
use crate::interp::{Decided, Outcome};
use crate::ir::{Field, Verdict};
use std::collections::BTreeSet;

/// A box of the space on which two programs decide differently.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    /// One set per dimension of the [`Space`].
    pub region: Vec<Set>,
    /// What the first program decides for every packet of the region.
    pub a: Outcome,
    /// What the second program decides for every packet of the region.
    pub b: Outcome,
}

/// The result of [`compare`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Comparison {
    /// One box per distinct pair of deciders (rule, policy or hotdrop of each program), in order of
    /// discovery (the search order: transport state, protocol, then fields), at most `keep`.
    pub differences: Vec<Difference>,
    /// Distinct pairs of deciders found (may exceed `differences.len()`).
    pub pairs: usize,
    /// Leaf boxes on which the programs differ.
    pub regions: u64,
    /// Nodes visited (the work done).
    pub nodes: u64,
    /// The deciders of the first program at the leaves, each once, in order of discovery (the rules
    /// that decide some packet of the space).
    pub deciders_a: Vec<Outcome>,
    /// The search stopped at the first `keep` differences ([`Options::stop_early`]): `pairs` and
    /// `regions` are lower bounds.
    pub stopped: bool,
}

/// How [`compare_with`] searches.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Differences kept (one per distinct pair of deciders).
    pub keep: usize,
    /// Stop once `keep` differences are found (decides "equivalent or not" and finds witnesses, without
    /// counting every difference).
    pub stop_early: bool,
    /// Record [`Comparison::deciders_a`].
    pub deciders: bool,
}

impl Comparison {
    /// The two programs decide every packet of the space alike (no leaf region differs); exact also
    /// after [`Options::stop_early`], which stops only once a difference was recorded.
    pub fn equivalent(&self) -> bool {
        self.regions == 0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Leaf {
    Out(Outcome),
    Impossible,
}

enum Side {
    Done(Leaf),
    /// Entries in play, ascending.
    Open(Vec<u32>),
}

fn walk(p: &Program, s: &[u32], unsplit: u64) -> Result<Leaf, usize> {
    let mut i = 0;
    loop {
        let Some(&e) = s.get(i) else {
            return Ok(Leaf::Out(p.policy));
        };
        let entry = &p.entries[e as usize];
        if entry.constrained & unsplit != 0 {
            return Err(i);
        }
        match entry.act {
            Act::Decide(o) => return Ok(Leaf::Out(o)),
            Act::Impossible => return Ok(Leaf::Impossible),
            Act::Skip(t) => i += s[i..].partition_point(|&x| x < t),
        }
    }
}

/// Verdicts a program can still reach from the entries in play ([`Verdict::bit`]: accept, drop and
/// each reject kind are different verdicts).
fn reachable_verdicts(p: &Program, s: &[u32]) -> u32 {
    let bit = Verdict::bit;
    s.iter()
        .filter_map(|&e| match p.entries[e as usize].act {
            Act::Decide(o) => Some(bit(o.verdict)),
            _ => None,
        })
        .fold(bit(p.policy.verdict), |m, b| m | b)
}

/// The same remaining sequence on the unsplit dimensions (a sufficient condition for agreeing).
fn same_rest(pa: &Program, sa: &[u32], pb: &Program, sb: &[u32], unsplit: u64) -> bool {
    if sa.len() != sb.len() || pa.policy.verdict != pb.policy.verdict {
        return false;
    }
    sa.iter().zip(sb).all(|(&x, &y)| {
        let (ex, ey) = (&pa.entries[x as usize], &pb.entries[y as usize]);
        let acts = match (ex.act, ey.act) {
            (Act::Decide(o), Act::Decide(q)) => o.verdict == q.verdict,
            (Act::Impossible, Act::Impossible) => true,
            (Act::Skip(t), Act::Skip(u)) => {
                sa.partition_point(|&e| e < t) == sb.partition_point(|&e| e < u)
            }
            _ => false,
        };
        acts && ex.constrained & unsplit == ey.constrained & unsplit
            && (0..ex.sets.len())
                .filter(|d| unsplit >> d & 1 != 0 && ex.constrained >> d & 1 != 0)
                .all(|d| ex.sets[d] == ey.sets[d])
    })
}

/// Key of a decider, to group differences.
type DeciderKey = (u8, u32, u32);

fn decider_key(o: &Outcome) -> DeciderKey {
    match o.decided {
        Decided::Rule { chain, rule, .. } => (0, chain.0, rule.0),
        Decided::Policy { chain } => (1, chain.0, 0),
        Decided::Hotdrop { chain, rule, .. } => (2, chain.0, rule.0),
        Decided::NotIpv4 => (3, 0, 0),
        Decided::OtherFamily => (6, 0, 0),
        Decided::Malformed => (4, 0, 0),
        Decided::FailClosed { reason } => (5, reason, 0),
    }
}

struct Search<'a> {
    space: &'a Space,
    progs: [&'a Program; 2],
    order: Vec<usize>,
    opts: Options,
    out: Comparison,
    seen: std::collections::HashSet<(DeciderKey, DeciderKey)>,
    seen_a: std::collections::HashSet<DeciderKey>,
    progress: &'a mut dyn FnMut(u64),
}

impl Search<'_> {
    fn node(&mut self, depth: usize, sides: [Side; 2], region: &mut Vec<Set>) {
        if self.out.stopped {
            return;
        }
        self.out.nodes += 1;
        if self.out.nodes.is_multiple_of(4096) {
            (self.progress)(self.out.nodes);
        }
        let unsplit: u64 = self.order[depth..].iter().fold(0, |m, &d| m | 1 << d);
        let mut sides = sides;
        for (i, side) in sides.iter_mut().enumerate() {
            if let Side::Open(s) = side {
                match walk(self.progs[i], s, unsplit) {
                    Ok(leaf) => *side = Side::Done(leaf),
                    Err(at) => {
                        s.drain(..at);
                    }
                }
            }
        }
        let verdicts = |i: usize, side: &Side| -> u32 {
            match side {
                Side::Done(Leaf::Out(o)) => o.verdict.bit(),
                Side::Done(Leaf::Impossible) => 0,
                Side::Open(s) => reachable_verdicts(self.progs[i], s),
            }
        };
        match (&sides[0], &sides[1]) {
            (Side::Done(Leaf::Impossible), _) | (_, Side::Done(Leaf::Impossible)) => return,
            (Side::Done(Leaf::Out(a)), Side::Done(Leaf::Out(b))) => {
                if self.opts.deciders && self.seen_a.insert(decider_key(a)) {
                    self.out.deciders_a.push(*a);
                }
                if a.verdict != b.verdict {
                    self.record(region, *a, *b);
                }
                return;
            }
            (Side::Open(a), Side::Open(b))
                if same_rest(self.progs[0], a, self.progs[1], b, unsplit) =>
            {
                return
            }
            _ => {}
        }
        let (va, vb) = (verdicts(0, &sides[0]), verdicts(1, &sides[1]));
        if va == vb && va.count_ones() == 1 {
            return;
        }
        let Some(&d) = self.order.get(depth) else {
            // Every dimension is split: each program's walk is done (no entry constrains anything).
            return;
        };
        let bit = 1u64 << d;
        // Entries in play that constrain `d`, numbered locally in (side, entry) order.
        let mut constraining: Vec<(usize, u32)> = Vec::new();
        for (i, side) in sides.iter().enumerate() {
            if let Side::Open(s) = side {
                constraining.extend(
                    s.iter()
                        .filter(|&&e| self.progs[i].entries[e as usize].constrained & bit != 0)
                        .map(|&e| (i, e)),
                );
            }
        }
        if constraining.is_empty() {
            self.node(depth + 1, sides, region);
            return;
        }
        let domain = &self.space.dims[d].domain;
        let (dlo, dhi) = domain.intervals()[0];
        // Toggle events: (point, local id); the entry's admission flips at each.
        let mut events: Vec<(u128, u32)> = Vec::new();
        for (l, &(i, e)) in constraining.iter().enumerate() {
            for &(lo, hi) in self.progs[i].entries[e as usize].sets[d].intervals() {
                events.push((lo, l as u32));
                if hi < dhi {
                    events.push((hi + 1, l as u32));
                }
            }
        }
        events.sort_unstable();
        let mut active: BTreeSet<u32> = BTreeSet::new();
        // (admitting local ids, intervals) per atom.
        type Atom = (Vec<u32>, Vec<(u128, u128)>);
        let mut classes: Vec<Atom> = Vec::new();
        let mut index: crate::FastMap<Vec<u32>, usize> = crate::FastMap::default();
        let mut cur = dlo;
        let mut k = 0;
        loop {
            while k < events.len() && events[k].0 == cur {
                let l = events[k].1;
                if !active.remove(&l) {
                    active.insert(l);
                }
                k += 1;
            }
            let end = if k < events.len() {
                events[k].0 - 1
            } else {
                dhi
            };
            let key: Vec<u32> = active.iter().copied().collect();
            let c = *index.entry(key.clone()).or_insert_with(|| {
                classes.push((key, Vec::new()));
                classes.len() - 1
            });
            classes[c].1.push((cur, end));
            if k >= events.len() {
                break;
            }
            cur = end + 1;
        }
        drop(index);
        // Per side: the entries in play that do not constrain `d` (kept in every atom).
        let free: [Vec<u32>; 2] = [0, 1].map(|i| match &sides[i] {
            Side::Open(s) => s
                .iter()
                .copied()
                .filter(|&e| self.progs[i].entries[e as usize].constrained & bit == 0)
                .collect(),
            Side::Done(_) => Vec::new(),
        });
        let saved = std::mem::take(&mut region[d]);
        for (admitting, intervals) in classes {
            region[d] = Set::from_intervals(intervals);
            let child: [Side; 2] = [0, 1].map(|i| match &sides[i] {
                Side::Done(l) => Side::Done(*l),
                Side::Open(_) => {
                    let mut s: Vec<u32> = Vec::with_capacity(free[i].len() + admitting.len());
                    let mine = admitting
                        .iter()
                        .map(|&l| constraining[l as usize])
                        .filter(|&(side, _)| side == i)
                        .map(|(_, e)| e);
                    // Merge two ascending lists.
                    let mut a = free[i].iter().copied().peekable();
                    let mut b = mine.peekable();
                    loop {
                        match (a.peek(), b.peek()) {
                            (Some(&x), Some(&y)) if x < y => {
                                s.push(x);
                                a.next();
                            }
                            (_, Some(&y)) => {
                                s.push(y);
                                b.next();
                            }
                            (Some(&x), None) => {
                                s.push(x);
                                a.next();
                            }
                            (None, None) => break,
                        }
                    }
                    Side::Open(s)
                }
            });
            self.node(depth + 1, child, region);
        }
        region[d] = saved;
    }

    fn record(&mut self, region: &[Set], a: Outcome, b: Outcome) {
        self.out.regions += 1;
        let key = (decider_key(&a), decider_key(&b));
        if self.seen.insert(key) {
            self.out.pairs += 1;
            if self.out.differences.len() < self.opts.keep {
                self.out.differences.push(Difference {
                    region: region.to_vec(),
                    a,
                    b,
                });
            }
            if self.opts.stop_early && self.out.differences.len() >= self.opts.keep {
                self.out.stopped = true;
            }
        }
    }
}

/// The order dimensions are split in: the transport state, the protocol, then the fields by how many
/// entries of both programs constrain them (most first), ties in field-table order. (Measured against
/// "fewest distinct boundaries first" on the 10,000-rule mixed pair of `tests/analysis_scale.rs`: 5.6 s
/// and 97 thousand differing boxes against 694 s and 9.7 million: the most-constrained field separates
/// the entries into small groups where the prune applies.)
fn split_order(space: &Space, progs: [&Program; 2]) -> Vec<usize> {
    let proto = Space::field_dim(Field::Proto);
    let mut rest: Vec<(usize, usize)> = (0..space.dims.len())
        .filter(|&d| d != 0 && d != proto)
        .map(|d| {
            let n = progs
                .iter()
                .flat_map(|p| p.entries.iter())
                .filter(|e| e.constrained >> d & 1 != 0)
                .count();
            (d, n)
        })
        .collect();
    // Interface dimensions first (after the transport state and the protocol): they have few atoms,
    // and a rule with `-i`/`-o` inside a user chain is one entry of the artifact's walk but the jump's
    // guard intersected into it in the IR's program, so splitting them late re-splits every
    // other dimension once per atom (validation of a 5,000-rule mixed ruleset with 10 % `-i` rules:
    // 30.7 M nodes, 16 s, this order 1.8 M nodes, 2.1 s).
    let iface = |d: usize| space.dims[d].atoms.is_some();
    rest.sort_by(|x, y| {
        iface(y.0)
            .cmp(&iface(x.0))
            .then(y.1.cmp(&x.1))
            .then(x.0.cmp(&y.0))
    });
    debug_assert!(matches!(space.dims[0].dim, Dim::L4));
    [0, proto]
        .into_iter()
        .chain(rest.into_iter().map(|r| r.0))
        .collect()
}

/// Compare two programs over the whole space (see the module docs). Keeps at most `keep` differences;
/// calls `progress` with the number of nodes visited every 4096 nodes.
pub fn compare(
    space: &Space,
    a: &Program,
    b: &Program,
    keep: usize,
    progress: &mut dyn FnMut(u64),
) -> Comparison {
    let opts = Options {
        keep,
        ..Options::default()
    };
    compare_with(space, a, b, opts, progress)
}

/// [`compare`] with [`Options`].
pub fn compare_with(
    space: &Space,
    a: &Program,
    b: &Program,
    opts: Options,
    progress: &mut dyn FnMut(u64),
) -> Comparison {
    let progs = [a, b];
    let mut s = Search {
        space,
        order: split_order(space, progs),
        progs,
        opts,
        out: Comparison::default(),
        seen: Default::default(),
        seen_a: Default::default(),
        progress,
    };
    let all = |p: &Program| Side::Open((0..p.entries.len() as u32).collect());
    let mut region = space.universe();
    s.node(0, [all(a), all(b)], &mut region);
    s.out
}
