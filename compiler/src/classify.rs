//! Classifier compiler: per-field partitions of the value space into classes, each class carrying the
//! bit-vector of the rules that admit it.
//!
//! Input: the rules of one hook chain, numbered by their order in the chain (the global rule index =
//! bit position). Output: a [`Classified`] with one [`FieldClasses`] per field that at least one rule
//! constrains (fields no rule constrains get no table and no stage).
//!
//! Guarantees:
//! - **exactness**: for every packet value `v` of a used field `f`, bit `r` of the class vector of `v`
//!   is set iff rule `r` admits `v` on `f`: `r` does not constrain `f`, or `r`'s test contains `v` XOR
//!   the test is negated. Negation is folded in at compile time;
//! - transport fields have two extra classes: [`PORT_ABSENT`](tailwall_abi::PORT_ABSENT) admits only
//!   the rules that do not constrain the field (iptables' tcp/udp match fails on packets without ports,
//!   negated or not); [`PORT_TRUNCATED`](tailwall_abi::PORT_TRUNCATED) admits every rule (constrained
//!   or not): the final stage hotdrops when the first candidate carries `RULE_F_NEEDS_L4`;
//! - identical vectors are shared: class ids are unique per distinct vector, assigned in order of first
//!   appearance in ascending key order (LPM: `(prefix_len, addr)`; arrays: index), so the output is
//!   deterministic;
//! - bits at or above the rule count are never set.
//!
//! Thrown away: which rule test produced which boundary, spans, comments, actions (kept by `artifact`).
//!
//! Cost: ports and protocol are built from the elementary intervals between the rules' range
//! boundaries (O(boundaries × rules/64) words, never 65 536 × rules); addresses walk the laminar tree of
//! the rules' prefixes, each prefix's vector being its parent's with the rules anchored exactly at that
//! prefix toggled (O(prefixes × rules/64) words).
use crate::flatten::{Flat, Origin};
use crate::ir::{Field, Hook, Lookup, Rule, Ruleset, Test};
use crate::packet::FieldValue;
use crate::FastMap;
use bitvec::prelude::*;
use std::collections::BTreeSet;

/// A rule bit-vector: bit `i` set = global rule `i` admits the class.
pub type RuleVec = BitVec<u64, Lsb0>;

/// One LPM table entry: addresses whose longest matching entry is `addr/len` have class `class`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LpmEntry {
    /// Prefix length in bits (0..=the field's width).
    pub len: u8,
    /// Host bits are zero; an IPv4 address zero-extended, as the IR holds it.
    pub addr: u128,
    /// The class id of the addresses this entry is the longest match for.
    pub class: u32,
}

/// How a field's value maps to its class id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Table {
    /// Longest-prefix match; sorted by `(len, addr)`; always holds `0.0.0.0/0`.
    Lpm(Vec<LpmEntry>),
    /// Direct index: one class per value (256 for `proto`; for ports every port, then
    /// `PORT_ABSENT` and `PORT_TRUNCATED`).
    Array(Vec<u32>),
    /// Interface names: the loader gives each device (and ifindex 0, the empty name) the class of its
    /// name ([`IfaceTable::class_of_name`]).
    Iface(IfaceTable),
}

/// One key of an interface table: the names `name` (exact) or starting with `name` (`wildcard`) that
/// no more specific key holds.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct IfaceKey {
    /// The exact name, or the prefix of a `+` wildcard (`""` with `wildcard`: the root key).
    pub name: String,
    /// `name` is a prefix (iptables' `eth+`), not an exact name.
    pub wildcard: bool,
    /// The class id of the key's names (an index into the field's class vectors).
    pub class: u32,
}

/// The partition of the interface-name space by the rules' tests (`docs/decisions/0010`): an exact
/// key per tested name, a wildcard key per tested `+` prefix, and the root wildcard key `""` (every
/// other name, the empty name of "no device" included). A name belongs to its most specific key:
/// the exact key equal to it, else the longest wildcard key it starts with. Every name of one key is
/// contained by the same tests ([`crate::ir::Test::contains_iface`]): an exact test contains no name
/// of another key, and a `+` prefix `W` contains the names of wildcard key `P` iff `P` starts with
/// `W` (both are prefixes of the name, and `P` is the longest key). Sorted by `(name, wildcard)`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct IfaceTable {
    /// The keys, sorted by `(name, wildcard)`, the root key `("", wildcard)` among them.
    pub keys: Vec<IfaceKey>,
}

impl IfaceTable {
    /// The key holding interface name `name` (`""`: no device): exact first, else the longest
    /// wildcard prefix. `None` only for a table without the root key (`Layout::check` refuses one).
    pub fn key_of(&self, name: &str) -> Option<&IfaceKey> {
        let test = |k: &IfaceKey| crate::ir::Test::Iface {
            name: k.name.clone(),
            wildcard: k.wildcard,
        };
        self.keys
            .iter()
            .filter(|k| !k.wildcard && test(k).contains_iface(name))
            .chain(
                self.keys
                    .iter()
                    .filter(|k| k.wildcard && test(k).contains_iface(name))
                    .max_by_key(|k| k.name.len()),
            )
            .next()
    }
    /// The class the loader writes for a device named `name` (`""`: ifindex 0, no device).
    pub fn class_of_name(&self, name: &str) -> Option<u32> {
        self.key_of(name).map(|k| k.class)
    }
}

/// Does `t` contain every name of key `(name, wildcard)` of an [`IfaceTable`]? (All names of a key
/// agree, see [`IfaceTable`].)
fn key_contained(t: &crate::ir::Test, name: &str, wildcard: bool) -> bool {
    match t {
        _ if !wildcard => t.contains_iface(name),
        crate::ir::Test::Iface {
            name: w,
            wildcard: true,
        } => name.starts_with(w.as_str()),
        _ => false,
    }
}

/// Interface fields: one class per key of the name partition ([`IfaceTable`]); bit `p` is set iff
/// every conjunct of position `p` testing `f` admits the key's names.
fn iface_classes(
    f: Field,
    live: &RuleVec,
    positions: &[crate::flatten::Position<'_>],
) -> FieldClasses {
    let constrained: Vec<(usize, Vec<&crate::ir::Match>)> = positions
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            let ms: Vec<_> = p.conjuncts.iter().filter_map(|r| r.get(f)).collect();
            (!ms.is_empty()).then_some((i, ms))
        })
        .collect();
    let mut keys: BTreeSet<(String, bool)> = BTreeSet::new();
    keys.insert((String::new(), true));
    for (_, ms) in &constrained {
        for m in ms {
            for t in &m.tests {
                if let crate::ir::Test::Iface { name, wildcard } = t {
                    keys.insert((name.clone(), *wildcard));
                }
            }
        }
    }
    let mut interner = Interner::new();
    let table = keys
        .into_iter()
        .map(|(name, wildcard)| {
            let mut v = live.clone();
            for (i, ms) in &constrained {
                let admits = ms.iter().all(|m| {
                    m.tests.iter().any(|t| key_contained(t, &name, wildcard)) != m.negated
                });
                v.set(*i, admits);
            }
            let class = interner.intern_owned(v);
            IfaceKey {
                name,
                wildcard,
                class,
            }
        })
        .collect();
    FieldClasses {
        field: f,
        constrained: constrained.len(),
        classes: interner.classes,
        table: Table::Iface(IfaceTable { keys: table }),
    }
}

/// The partition of one field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldClasses {
    /// The field partitioned.
    pub field: Field,
    /// Number of rules constraining this field.
    pub constrained: usize,
    /// Class id → vector (each `nrules` bits long).
    pub classes: Vec<RuleVec>,
    /// Value → class id.
    pub table: Table,
}

impl FieldClasses {
    /// The class of a packet's value, by looking the table up as the datapath does (a linear scan for
    /// LPM tables: meant for tests and reports, not per-packet use).
    pub fn class_of(&self, v: FieldValue) -> u32 {
        match (&self.table, v) {
            (Table::Lpm(es), FieldValue::Value(a)) => es
                .iter()
                .filter(|e| {
                    Test::Prefix {
                        addr: e.addr,
                        len: e.len,
                    }
                    .contains(self.field.bits(), a)
                })
                .max_by_key(|e| e.len)
                .map_or(0, |e| e.class),
            (Table::Array(t), v) => t.get(v.table_index() as usize).copied().unwrap_or(0),
            // An interface's class is the class of its name ([`IfaceTable::class_of_name`]); a
            // packet value carries no name: the empty name's (no device).
            (Table::Iface(t), _) => t.class_of_name("").unwrap_or(0),
            // Address and protocol values are always present; class 0 is never looked up for them.
            (Table::Lpm(_), _) => 0,
        }
    }
}

/// The classifier of a flattened ruleset: one bit per position ([`crate::flatten`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Classified<'a> {
    /// The positions; index = bit = counter slot.
    pub flat: Flat<'a>,
    /// Used fields, in field-table order.
    pub fields: Vec<FieldClasses>,
}

impl Classified<'_> {
    /// The classes of field `f`, if some position constrains it (a field with a stage).
    pub fn field(&self, f: Field) -> Option<&FieldClasses> {
        self.fields.iter().find(|c| c.field == f)
    }
    /// Number of positions (bits per vector).
    pub fn npositions(&self) -> usize {
        self.flat.positions.len()
    }
}

/// Classify the region of `hook`'s chain of `rs` alone (tests and tools; the artifact classifies
/// every region with [`classify_flat`]).
///
/// # Panics
/// When the flattened chains exceed [`crate::flatten::MAX_POSITIONS`] (use [`classify_flat`] with
/// [`crate::flatten::flatten`] to get the located error instead).
pub fn classify(rs: &Ruleset, hook: Hook) -> Classified<'_> {
    let flat = crate::flatten::flatten(&[rs], &[hook]).expect("within MAX_POSITIONS");
    classify_flat(flat)
}

/// What a position requires of field `f`: `None` when no conjunct constrains it, else the admitted
/// intervals and whether they are negated. One constraining conjunct keeps its own form (negation
/// folded in by the class builders, as for a flat chain); several are intersected into one
/// non-negated interval list.
fn position_constraint(conjuncts: &[&Rule], f: Field) -> Option<(Vec<Interval>, bool)> {
    let mut ms = conjuncts.iter().filter_map(|r| r.get(f));
    let first = ms.next()?;
    let mut acc = (intervals(first, f), first.negated);
    for m in ms {
        let a = if acc.1 {
            complement(&acc.0, max_value(f))
        } else {
            std::mem::take(&mut acc.0)
        };
        let b = if m.negated {
            complement(&intervals(m, f), max_value(f))
        } else {
            intervals(m, f)
        };
        acc = (intersect(&a, &b), false);
    }
    Some(acc)
}

/// The values of `[0, max]` outside the disjoint, ascending intervals `ivs`.
fn complement(ivs: &[Interval], max: u128) -> Vec<Interval> {
    let mut out = Vec::with_capacity(ivs.len() + 1);
    // The first value not yet covered; `None` once an interval ends at `u128::MAX`.
    let mut next: Option<u128> = Some(0);
    for &(lo, hi) in ivs {
        if let Some(n) = next {
            if lo > n {
                out.push((n, lo - 1));
            }
        }
        next = hi.checked_add(1);
    }
    if let Some(n) = next.filter(|&n| n <= max) {
        out.push((n, max));
    }
    out
}

/// The intersection of two disjoint, ascending interval lists (disjoint and ascending again).
fn intersect(a: &[Interval], b: &[Interval]) -> Vec<Interval> {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        let lo = a[i].0.max(b[j].0);
        let hi = a[i].1.min(b[j].1);
        if lo <= hi {
            out.push((lo, hi));
        }
        if a[i].1 < b[j].1 {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// Classify every position of `flat`: bit `p` of a class of field `f` is set iff every conjunct rule
/// of position `p` admits the class on `f`. Policy positions are never set in any class: the walk
/// reaches them when no earlier position of their region is set, so an all-zero vector still means
/// "nothing but the policy" and the stages' early exit keeps working.
pub fn classify_flat(flat: Flat<'_>) -> Classified<'_> {
    let n = flat.positions.len();
    let mut live = ones(n);
    for (i, p) in flat.positions.iter().enumerate() {
        if matches!(p.origin, Origin::Policy { .. }) {
            live.set(i, false);
        }
    }
    let mut fields = Vec::new();
    for f in crate::ir::Field::ALL {
        let constrained: Vec<(usize, Vec<Interval>, bool)> = flat
            .positions
            .iter()
            .enumerate()
            .filter_map(|(i, p)| position_constraint(&p.conjuncts, f).map(|(v, neg)| (i, v, neg)))
            .collect();
        if constrained.is_empty() {
            continue;
        }
        let fc = match f.info().lookup {
            Lookup::Lpm => lpm_classes(f, &live, &constrained),
            Lookup::Exact => array_classes(f, &live, &constrained, false),
            Lookup::PortRange => array_classes(f, &live, &constrained, true),
            Lookup::Iface => iface_classes(f, &live, &flat.positions),
        };
        fields.push(fc);
    }
    Classified { flat, fields }
}

/// Inclusive interval of values in `[0, field max]` (128 bits wide for the IPv6 addresses).
type Interval = (u128, u128);

/// The largest value of a datapath field.
fn max_value(f: Field) -> u128 {
    f.max_value()
}

/// The values a match's tests contain, as disjoint, non-adjacent intervals in ascending order, clipped
/// to the field's width (the union of the tests: a value is inside iff some test contains it).
/// Interface tests contribute nothing.
fn intervals(m: &crate::ir::Match, f: Field) -> Vec<Interval> {
    let max = max_value(f);
    let mut ivs: Vec<Interval> = m
        .bounds()
        .filter(|&(lo, hi)| lo <= hi && lo <= max)
        .map(|(lo, hi)| (lo, hi.min(max)))
        .collect();
    ivs.sort_unstable();
    let mut out: Vec<Interval> = Vec::with_capacity(ivs.len());
    for (lo, hi) in ivs {
        match out.last_mut() {
            Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

/// The vector of a value outside every constrained rule's interval: unconstrained rules, plus the
/// negated constrained ones.
fn outside_vector(live: &RuleVec, constrained: &[(usize, Vec<Interval>, bool)]) -> RuleVec {
    let mut v = live.clone();
    for (r, _, neg) in constrained {
        v.set(*r, *neg);
    }
    v
}

/// `nrules` set bits. Unlike `BitVec::repeat(true, _)`, the storage bits past the end stay zero, so
/// the raw words are canonical (they key the interner and become the map images).
fn ones(nrules: usize) -> RuleVec {
    let mut v = RuleVec::repeat(false, nrules);
    v.fill(true);
    v
}

/// Interns vectors: identical vectors share one class id, ids in order of first appearance. Keyed by
/// the raw words (bitvec hashes bit by bit, far too slow for 10k-rule vectors); every vector here is
/// built from zeroed storage and only ever has live bits set, so equal vectors have equal words.
struct Interner {
    /// Hash of a vector's raw words → the newest class with that hash; older classes with the same
    /// hash follow through `next`. The vectors themselves are stored once, in `classes`.
    heads: FastMap<u64, u32>,
    /// Per class: the previous class with the same hash (`u32::MAX`: none).
    next: Vec<u32>,
    classes: Vec<RuleVec>,
}

impl Interner {
    fn new() -> Interner {
        Interner {
            heads: FastMap::default(),
            next: Vec::new(),
            classes: Vec::new(),
        }
    }
    /// The class of `v`, stored (cloned) if new.
    fn intern(&mut self, v: &RuleVec) -> u32 {
        match self.find(v) {
            (Some(c), _, _) => c,
            (None, h, head) => self.push(h, head, v.clone()),
        }
    }
    /// [`Interner::intern`] of a vector the caller no longer needs: stored without a copy if new.
    fn intern_owned(&mut self, v: RuleVec) -> u32 {
        match self.find(&v) {
            (Some(c), _, _) => c,
            (None, h, head) => self.push(h, head, v),
        }
    }
    /// The class of `v` if known, else `None`; with `v`'s hash and the head of its hash chain.
    fn find(&self, v: &RuleVec) -> (Option<u32>, u64, u32) {
        use std::hash::BuildHasher;
        let words = v.as_raw_slice();
        let h = self.heads.hasher().hash_one(words);
        let head = self.heads.get(&h).copied().unwrap_or(u32::MAX);
        let mut c = head;
        while c != u32::MAX {
            if self.classes[c as usize].as_raw_slice() == words {
                return (Some(c), h, head);
            }
            c = self.next[c as usize];
        }
        (None, h, head)
    }
    fn push(&mut self, h: u64, head: u32, v: RuleVec) -> u32 {
        let id = self.classes.len() as u32;
        self.heads.insert(h, id);
        self.next.push(head);
        self.classes.push(v);
        id
    }
}

/// Exact and port-range fields: sweep the elementary intervals between the rules' boundaries.
fn array_classes(
    f: Field,
    live: &RuleVec,
    constrained: &[(usize, Vec<Interval>, bool)],
    ports: bool,
) -> FieldClasses {
    // Array fields are at most 16 bits wide (`tailwall_abi` checks every array row).
    let max = max_value(f) as u32;
    // Toggle events: a rule's bit flips when one of its intervals starts and again after it ends. A
    // rule's intervals are disjoint (merged by `intervals`), so inside any of them the bit is flipped
    // exactly once relative to the outside vector.
    let mut events: Vec<(u32, usize)> = Vec::with_capacity(2 * constrained.len());
    for (r, ivs, _) in constrained {
        for &(lo, hi) in ivs {
            let (lo, hi) = (lo as u32, hi as u32);
            events.push((lo, *r));
            if hi < max {
                events.push((hi + 1, *r));
            }
        }
    }
    events.sort_unstable();
    let mut cur = outside_vector(live, constrained);
    let mut interner = Interner::new();
    // The row's size: every value of the field's width (`ct_state`'s values stop below it, at
    // `Field::max_value`; the entries above, which no packet carries, keep class 0).
    let entries = if ports {
        tailwall_abi::PORT_TABLE_ENTRIES
    } else {
        f.info().abi().map_or(max + 1, |r| r.table_entries())
    } as usize;
    let mut table = vec![0u32; entries];
    let mut i = 0;
    let mut start: u32 = 0;
    loop {
        while i < events.len() && events[i].0 == start {
            let r = events[i].1;
            let b = cur[r];
            cur.set(r, !b);
            i += 1;
        }
        let end = if i < events.len() {
            events[i].0
        } else {
            max.wrapping_add(1)
        };
        let class = interner.intern(&cur);
        let stop = if end == 0 {
            max as usize + 1
        } else {
            end as usize
        };
        table[start as usize..stop].fill(class);
        if i >= events.len() {
            break;
        }
        start = end;
    }
    if ports {
        let mut absent = live.clone();
        for (r, _, _) in constrained {
            absent.set(*r, false);
        }
        table[tailwall_abi::PORT_ABSENT as usize] = interner.intern_owned(absent);
        table[tailwall_abi::PORT_TRUNCATED as usize] = interner.intern(live);
    }
    FieldClasses {
        field: f,
        constrained: constrained.len(),
        classes: interner.classes,
        table: Table::Array(table),
    }
}

/// The network mask of a `/len` prefix of a `bits`-wide address (`len <= bits <= 128`).
fn mask(len: u8, bits: u32) -> u128 {
    if len == 0 {
        0
    } else {
        (u128::MAX >> (128 - u32::from(len))) << (bits - u32::from(len))
    }
}

/// `2^k - 1`: the host part of a block of `2^k` addresses.
fn host_ones(k: u32) -> u128 {
    if k == 0 {
        0
    } else {
        u128::MAX >> (128 - k)
    }
}

/// The minimal set of disjoint prefixes `(addr, len)` of a `bits`-wide address (32 or 128) covering
/// `[lo, hi]` (`lo <= hi <= 2^bits - 1`; exact for `/len` tests: one prefix).
pub fn prefix_cover(lo: u128, hi: u128, bits: u32) -> Vec<(u128, u8)> {
    let mut out = Vec::new();
    let mut lo = lo;
    loop {
        // The largest aligned block starting at `lo` inside `[lo, hi]` (aligned, so `lo + 2^k - 1`
        // cannot overflow).
        let mut k = if lo == 0 {
            bits
        } else {
            lo.trailing_zeros().min(bits)
        };
        while k > 0 && lo + host_ones(k) > hi {
            k -= 1;
        }
        out.push((lo, (bits - k) as u8));
        let last = lo + host_ones(k);
        if last >= hi {
            break;
        }
        lo = last + 1;
    }
    out
}

/// Address fields: the prefixes of all rules plus `0.0.0.0/0` form a laminar family (two prefixes are
/// nested or disjoint). An address's class is decided by its most specific covering prefix `P`: every
/// rule prefix `Q` covering the address contains `P` (both cover it, so they are nested, and `P` is the
/// most specific). So rule `r` admits `P` iff it is unconstrained, or (`Q ⊇ P`) XOR negated. Since
/// `Q ⊇ P` iff `Q ⊇ parent(P)` or `Q = P`, `vector(P) = vector(parent(P))` with the rules anchored at
/// `P` toggled. A rule with several tests (a list: `{10.0.0.0/8, 192.168.1.0/24, 1.2.3.4-1.2.3.9}`)
/// admits `P` iff some of its tests contains `P`, XOR negated: its tests are first merged into disjoint
/// intervals (nested or overlapping tests collapse into their union), each interval is covered by
/// disjoint prefixes, so the rule's prefixes are pairwise disjoint and at most one of them lies on any
/// root-to-leaf path: "some prefix of the rule contains `P`" is toggled exactly once along the path to
/// `P`, and the toggling stays exact. The family stays laminar because it is still a set of prefixes.
///
/// Dropped entries: an entry whose class equals its parent's class is not emitted. Proof that lookups
/// are unchanged: let `P` be dropped and `A` its nearest emitted ancestor (the root is always emitted:
/// it has no parent). Every prefix strictly between `A` and `P` was dropped, so by induction along the
/// path each has the class of its parent, hence `class(P) = class(A)`. An address whose most specific
/// covering prefix was `P` now finds `A` (emitted descendants of `P` do not cover it, by definition of
/// `P`), so it gets the same class. Addresses under emitted descendants of `P` are unaffected. The entry
/// that first produced a class is never dropped (its parent, processed earlier, had another class), so
/// every class id is still referenced.
fn lpm_classes(
    f: Field,
    live: &RuleVec,
    constrained: &[(usize, Vec<Interval>, bool)],
) -> FieldClasses {
    let bits = u32::from(f.bits());
    let mut anchored: FastMap<(u8, u128), Vec<usize>> = FastMap::default();
    anchored.insert((0, 0), Vec::new());
    for (r, ivs, _) in constrained {
        for &(lo, hi) in ivs {
            for (addr, len) in prefix_cover(lo, hi, bits) {
                anchored.entry((len, addr)).or_default().push(*r);
            }
        }
    }
    let order: BTreeSet<(u8, u128)> = anchored.keys().copied().collect();
    let outside = outside_vector(live, constrained);
    let mut interner = Interner::new();
    let mut class_of: FastMap<(u8, u128), u32> =
        FastMap::with_capacity_and_hasher(order.len(), Default::default());
    let mut entries = Vec::new();
    for &(len, addr) in &order {
        let parent = (0..len)
            .rev()
            .map(|l| (l, addr & mask(l, bits)))
            .find(|k| anchored.contains_key(k));
        let mut v = match parent {
            Some(p) => interner.classes[class_of[&p] as usize].clone(),
            None => outside.clone(),
        };
        for &r in &anchored[&(len, addr)] {
            let b = v[r];
            v.set(r, !b);
        }
        let class = interner.intern_owned(v);
        class_of.insert((len, addr), class);
        if parent.is_none_or(|p| class_of[&p] != class) {
            entries.push(LpmEntry { len, addr, class });
        }
    }
    FieldClasses {
        field: f,
        constrained: constrained.len(),
        classes: interner.classes,
        table: Table::Lpm(entries),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Span;
    use crate::ir::{Action, Match, Verdict};
    use std::net::Ipv4Addr;

    fn m(field: Field, test: Test, negated: bool) -> Match {
        Match::single(field, test, negated, Span::default())
    }
    fn pfx(s: &str) -> Test {
        let (a, l) = s.split_once('/').unwrap();
        Test::Prefix {
            addr: u32::from(a.parse::<Ipv4Addr>().unwrap()).into(),
            len: l.parse().unwrap(),
        }
    }
    fn rs(rules: Vec<Vec<Match>>) -> Ruleset {
        Ruleset::with_chain(
            Hook::Input,
            Verdict::Drop,
            rules.into_iter().map(|m| (m, Action::Accept)),
        )
    }
    fn bits(v: &RuleVec) -> Vec<usize> {
        v.iter_ones().collect()
    }

    #[test]
    fn dst_port_ranges_and_sentinels() {
        let tcp = m(Field::Proto, Test::Exact(6), false);
        let r = rs(vec![
            vec![
                tcp.clone(),
                m(Field::DstPort, Test::Range { lo: 10, hi: 20 }, false),
            ],
            vec![tcp.clone(), m(Field::DstPort, Test::Exact(15), true)],
            vec![],
        ]);
        let c = classify(&r, Hook::Input);
        let f = c.field(Field::DstPort).unwrap();
        let at = |v| bits(&f.classes[f.class_of(v) as usize]);
        assert_eq!(at(FieldValue::Value(9)), vec![1, 2]);
        assert_eq!(at(FieldValue::Value(10)), vec![0, 1, 2]);
        assert_eq!(at(FieldValue::Value(15)), vec![0, 2]);
        assert_eq!(at(FieldValue::Value(20)), vec![0, 1, 2]);
        assert_eq!(at(FieldValue::Value(21)), vec![1, 2]);
        assert_eq!(at(FieldValue::Value(65535)), vec![1, 2]);
        assert_eq!(at(FieldValue::Absent), vec![2]);
        assert_eq!(at(FieldValue::Truncated), vec![0, 1, 2]);
        // 9 and 21 share a class.
        assert_eq!(
            f.class_of(FieldValue::Value(9)),
            f.class_of(FieldValue::Value(21))
        );
        assert!(c.field(Field::SrcPort).is_none() && c.field(Field::SrcIp).is_none());
    }

    #[test]
    fn dst_port_full_range_at_top_boundary() {
        let tcp = m(Field::Proto, Test::Exact(6), false);
        let r = rs(vec![vec![
            tcp,
            m(Field::DstPort, Test::Range { lo: 0, hi: 65535 }, false),
        ]]);
        let c = classify(&r, Hook::Input);
        let f = c.field(Field::DstPort).unwrap();
        let Table::Array(t) = &f.table else { panic!() };
        assert_eq!(t.len(), tailwall_abi::PORT_TABLE_ENTRIES as usize);
        assert!(t[..65536]
            .iter()
            .all(|&k| bits(&f.classes[k as usize]) == vec![0]));
        assert!(bits(&f.classes[t[65536] as usize]).is_empty());
    }

    #[test]
    fn src_ip_negation_and_nested_prefixes() {
        let r = rs(vec![
            vec![m(Field::SrcIp, pfx("10.0.0.0/8"), false)],
            vec![m(Field::SrcIp, pfx("10.1.0.0/16"), true)],
            vec![m(Field::SrcIp, pfx("10.1.2.3/32"), false)],
        ]);
        let c = classify(&r, Hook::Input);
        let f = c.field(Field::SrcIp).unwrap();
        let at = |s: &str| {
            bits(
                &f.classes[f.class_of(FieldValue::Value(
                    u32::from(s.parse::<Ipv4Addr>().unwrap()).into(),
                )) as usize],
            )
        };
        assert_eq!(at("11.0.0.1"), vec![1]);
        assert_eq!(at("10.2.0.1"), vec![0, 1]);
        assert_eq!(at("10.1.9.9"), vec![0]);
        assert_eq!(at("10.1.2.3"), vec![0, 2]);
    }

    #[test]
    fn src_ip_entry_equal_to_parent_is_dropped() {
        // 10.1.0.0/16 is anchored only by a rule that 10.0.0.0/8 already admits: same vector.
        let r = rs(vec![
            vec![m(Field::SrcIp, pfx("0.0.0.0/0"), false)],
            vec![m(Field::SrcIp, pfx("10.0.0.0/8"), true)],
            vec![m(Field::SrcIp, pfx("10.1.0.0/16"), true)],
            vec![m(Field::SrcIp, pfx("10.1.0.0/16"), true)],
        ]);
        let c = classify(&r, Hook::Input);
        let Table::Lpm(es) = &c.field(Field::SrcIp).unwrap().table else {
            panic!()
        };
        let keys: Vec<(u8, u128)> = es.iter().map(|e| (e.len, e.addr)).collect();
        assert_eq!(keys, vec![(0, 0), (8, 0x0a00_0000), (16, 0x0a01_0000)]);
        let r2 = rs(vec![
            vec![m(Field::SrcIp, pfx("10.0.0.0/8"), false)],
            vec![m(Field::DstIp, pfx("10.1.0.0/16"), false)],
        ]);
        let c2 = classify(&r2, Hook::Input);
        let Table::Lpm(es) = &c2.field(Field::DstIp).unwrap().table else {
            panic!()
        };
        assert_eq!(es.len(), 2);
    }

    #[test]
    fn src_ip_range_is_covered_exactly() {
        assert_eq!(prefix_cover(0, u32::MAX.into(), 32), vec![(0, 0)]);
        assert_eq!(prefix_cover(5, 5, 32), vec![(5, 32)]);
        assert_eq!(
            prefix_cover(1, 6, 32),
            vec![(1, 32), (2, 31), (4, 31), (6, 32)]
        );
        assert_eq!(prefix_cover(0, u128::MAX, 128), vec![(0, 0)]);
        assert_eq!(
            prefix_cover(u128::MAX, u128::MAX, 128),
            vec![(u128::MAX, 128)]
        );
        assert_eq!(prefix_cover(1 << 127, u128::MAX, 128), vec![(1 << 127, 1)]);
        let r = rs(vec![vec![m(
            Field::SrcIp,
            Test::Range { lo: 3, hi: 300 },
            true,
        )]]);
        let c = classify(&r, Hook::Input);
        let f = c.field(Field::SrcIp).unwrap();
        for a in [0u32, 2, 3, 4, 255, 256, 300, 301, 1 << 20] {
            let admits = f.classes[f.class_of(FieldValue::Value(a.into())) as usize][0];
            assert_eq!(admits, !(3..=300).contains(&a), "{a}");
        }
    }

    #[test]
    fn dst_port_vectors_have_zero_storage_past_the_last_rule() {
        let tcp = m(Field::Proto, Test::Exact(6), false);
        let r = rs(vec![
            vec![tcp.clone(), m(Field::DstPort, Test::Exact(1), true)],
            vec![tcp],
            vec![],
        ]);
        let c = classify(&r, Hook::Input);
        for f in &c.fields {
            for v in &f.classes {
                assert_eq!(v.as_raw_slice().len(), 1);
                assert_eq!(v.as_raw_slice()[0] >> 3, 0, "{} {v}", f.field);
            }
        }
    }

    #[test]
    fn proto_exact_table_has_256_entries() {
        let r = rs(vec![
            vec![m(Field::Proto, Test::Exact(6), false)],
            vec![m(Field::Proto, Test::Exact(1), true)],
        ]);
        let c = classify(&r, Hook::Input);
        let f = c.field(Field::Proto).unwrap();
        let Table::Array(t) = &f.table else { panic!() };
        assert_eq!(t.len(), 256);
        assert_eq!(bits(&f.classes[t[6] as usize]), vec![0, 1]);
        assert_eq!(bits(&f.classes[t[1] as usize]), Vec::<usize>::new());
        assert_eq!(bits(&f.classes[t[255] as usize]), vec![1]);
        assert_eq!(f.classes.len(), 3);
    }
}
