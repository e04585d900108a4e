//! Shadowed and redundant rules: rules that can never decide a packet because earlier rules of the same
//! chain take every packet they would match.
//!
//! Model. A rule is a box: for every field, the set of values it admits (an unconstrained field admits
//! everything), plus one more dimension, *ports*: present or absent (a packet without ports: a non-first
//! fragment, a protocol without ports). A rule that tests a port — negated or not, full range or not —
//! admits only *present*, because the tcp/udp match fails on packets without ports; a rule without port
//! tests admits both. This is why `-p tcp` is **not** covered by `-p tcp -m tcp` (which lowers to
//! `dst_port 0-65535`): the former also matches non-first fragments. Each field's set is a union of
//! closed intervals over its values; negation is the complement within the field's values. Interface
//! names are first reduced to finitely many classes per chain (`IfaceAtoms`); *no interface known*
//! is one of them (`-i X` fails on it, `! -i X` holds).
//!
//! Findings, for rule B of a chain (diagnostics located at B, with one `N0101` note at each covering rule):
//! - `W0103` B can never match on its own: some field admits no value (`! -s 0.0.0.0/0`,
//!   `! --dport 0:65535`; the latter still drops truncated TCP/UDP headers, as iptables' hotdrop does);
//! - `W0101` one earlier rule A with a terminal action (accept, drop, goto, return — not jump, after
//!   which the chain continues) admits, field by field, a superset of B. Then every packet on which B
//!   would match (or hotdrop, for a truncated transport header) is matched or hotdropped by A first, so
//!   B never decides. Proof sketch: B's IP-part tests hold ⇒ A's hold (subset per field); ports present
//!   ⇒ A's port tests hold; ports absent ⇒ B has no port test, so B admits *absent* and so does A, so A
//!   has no port test either; header truncated ⇒ A either has a port test (hotdrop) or none (match).
//!   Worded "redundant" when A has B's action, "can never match" otherwise;
//! - `W0102` no single rule covers B, but the union of several earlier terminal rules does, decided
//!   exactly over the model by the analysis engine ([`crate::analysis::search`], no work budget); the
//!   rules cited are the ones that first take some part of B, greedily reduced to those the others do
//!   not make unnecessary. Sound for the same reason, given that B admits some value on every field
//!   (else `W0103`).
//!
//! Thrown away: the model treats fields as independent, so a cover that holds only because some field
//! combinations cannot occur (ports present on a protocol without ports, interface names longer than
//! the kernel's 15 characters) is not found. The pass never reports a rule that can decide some packet
//! (the property test in `shadow/tests.rs` checks this against `interp`).
use crate::diag::Diagnostic;
use crate::ir::{Action, Chain, Field, Match, Rule, RuleId, Ruleset, Test};

/// The *ports* dimension: index in a [`RuleBox`] after the fields, values present (0) and absent (1).
const PORTS_DIM: usize = Field::ALL.len();

/// A set of values: sorted, disjoint, non-adjacent closed intervals.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Set(Vec<(u128, u128)>);

impl Set {
    /// The values `lo..=hi`; the caller ensures `lo <= hi` (not checked, unlike `from_intervals`).
    pub fn range(lo: u128, hi: u128) -> Set {
        Set(vec![(lo, hi)])
    }
    /// The union of the closed intervals `v` (empty ones dropped; overlapping and adjacent merged).
    pub fn from_intervals(mut v: Vec<(u128, u128)>) -> Set {
        v.retain(|&(lo, hi)| lo <= hi);
        v.sort_unstable();
        let mut out: Vec<(u128, u128)> = Vec::with_capacity(v.len());
        for (lo, hi) in v {
            match out.last_mut() {
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => out.push((lo, hi)),
            }
        }
        Set(out)
    }
    /// Holds no value.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// `v` is in the set.
    pub fn contains(&self, v: u128) -> bool {
        self.0.iter().any(|&(lo, hi)| lo <= v && v <= hi)
    }
    /// The values in both sets (a merge of the interval lists, linear time).
    pub fn intersect(&self, o: &Set) -> Set {
        let (mut i, mut j, mut out) = (0, 0, Vec::new());
        while i < self.0.len() && j < o.0.len() {
            let (a, b) = (self.0[i], o.0[j]);
            let (lo, hi) = (a.0.max(b.0), a.1.min(b.1));
            if lo <= hi {
                out.push((lo, hi));
            }
            if a.1 < b.1 {
                i += 1;
            } else {
                j += 1;
            }
        }
        Set(out)
    }
    /// Some value is in both sets (as `!intersect(o).is_empty()`, without building it).
    pub fn intersects(&self, o: &Set) -> bool {
        let (mut i, mut j) = (0, 0);
        while i < self.0.len() && j < o.0.len() {
            let (a, b) = (self.0[i], o.0[j]);
            if a.0.max(b.0) <= a.1.min(b.1) {
                return true;
            }
            if a.1 < b.1 {
                i += 1;
            } else {
                j += 1;
            }
        }
        false
    }
    /// `self \ o`.
    pub fn subtract(&self, o: &Set) -> Set {
        let mut out = Vec::new();
        let mut j = 0;
        for &(lo, hi) in &self.0 {
            let mut cur = lo;
            while j < o.0.len() && o.0[j].1 < cur {
                j += 1;
            }
            let mut k = j;
            let mut done = false;
            while k < o.0.len() && o.0[k].0 <= hi {
                let (blo, bhi) = o.0[k];
                if blo > cur {
                    out.push((cur, blo - 1));
                }
                if bhi >= hi {
                    done = true;
                    break;
                }
                cur = cur.max(bhi + 1);
                k += 1;
            }
            if !done && cur <= hi {
                out.push((cur, hi));
            }
        }
        Set(out)
    }
    /// Every interval lies inside one interval of `o` (`o`'s intervals are merged, so this is exact).
    pub fn is_subset(&self, o: &Set) -> bool {
        let mut j = 0;
        for &(lo, hi) in &self.0 {
            while j < o.0.len() && o.0[j].1 < lo {
                j += 1;
            }
            match o.0.get(j) {
                Some(&(olo, ohi)) if olo <= lo && hi <= ohi => {}
                _ => return false,
            }
        }
        true
    }
}

/// Interface names, reduced to finitely many classes per chain and field.
///
/// Two names are in the same class when every `-i`/`-o` test of the chain treats them alike. The
/// representatives: *unknown* (no interface: `-i X` fails, `! -i X` holds), every pattern string `t`
/// itself, and for every pattern string `t` (and the empty string) `t` followed by a character that
/// continues no pattern. Any name `n` falls in the class of `t·fresh` where `t` is the longest pattern
/// string that is a prefix of `n` (or of `t` itself when `n == t`), so every class has a representative.
#[derive(Clone, Debug, Default)]
struct IfaceAtoms {
    reps: Vec<Option<String>>,
}

impl IfaceAtoms {
    fn new<'a>(patterns: impl Iterator<Item = &'a str>) -> IfaceAtoms {
        let mut strings: Vec<&str> = patterns.collect();
        strings.push("");
        strings.sort_unstable();
        strings.dedup();
        let mut reps = vec![None];
        for (k, t) in strings.iter().enumerate() {
            if !t.is_empty() {
                reps.push(Some(t.to_string()));
            }
            // The strings extending `t` follow it in sorted order; their next characters are taken.
            let used: std::collections::BTreeSet<char> = strings[k + 1..]
                .iter()
                .take_while(|s| s.starts_with(t))
                .filter_map(|s| s[t.len()..].chars().next())
                .collect();
            let fresh = ('!'..='~')
                .chain('\u{80}'..)
                .find(|c| !used.contains(c))
                .unwrap_or('\u{10FFFF}');
            reps.push(Some(format!("{t}{fresh}")));
        }
        IfaceAtoms { reps }
    }
    fn universe(&self) -> Set {
        Set::range(0, self.reps.len() as u128 - 1)
    }
    fn admitted(&self, m: &Match) -> Set {
        Set::from_intervals(
            self.reps
                .iter()
                .enumerate()
                .filter(|(_, n)| n.as_deref().is_some_and(|n| m.contains_iface(n)) != m.negated)
                .map(|(i, _)| (i as u128, i as u128))
                .collect(),
        )
    }
}

/// Per-chain context: the interface classes of each interface field.
#[derive(Clone, Debug, Default)]
struct Domains {
    in_iface: IfaceAtoms,
    out_iface: IfaceAtoms,
}

impl Domains {
    fn of(chain: &Chain) -> Domains {
        let atoms = |field: Field| {
            IfaceAtoms::new(
                chain
                    .rules
                    .iter()
                    .filter_map(move |r| r.get(field))
                    .flat_map(|m| m.tests.iter())
                    .filter_map(|t| match t {
                        Test::Iface { name, .. } => Some(name.as_str()),
                        _ => None,
                    }),
            )
        };
        Domains {
            in_iface: atoms(Field::InIface),
            out_iface: atoms(Field::OutIface),
        }
    }
    fn iface(&self, field: Field) -> Option<&IfaceAtoms> {
        match field {
            Field::InIface => Some(&self.in_iface),
            Field::OutIface => Some(&self.out_iface),
            _ => None,
        }
    }
    /// Every value a field can take.
    fn universe(&self, field: Field) -> Set {
        if let Some(a) = self.iface(field) {
            a.universe()
        } else {
            Set::range(0, field.max_value())
        }
    }
    /// The values a match admits: the union of its tests, complemented within the field's values if
    /// negated (for interfaces: the classes whose representative the match admits).
    fn match_set(&self, m: &Match) -> Set {
        if let Some(a) = self.iface(m.field) {
            return a.admitted(m);
        }
        let tests = Set::from_intervals(m.bounds().collect());
        if m.negated {
            Set::range(0, m.field.max_value()).subtract(&tests)
        } else {
            tests
        }
    }
    fn rule_box(&self, rule: &Rule) -> RuleBox {
        let mut b: RuleBox = Field::ALL
            .iter()
            .map(|&f| match rule.get(f) {
                Some(m) => self.match_set(m),
                None => self.universe(f),
            })
            .collect();
        b.push(if rule.needs_l4() {
            Set::range(0, 0)
        } else {
            Set::range(0, 1)
        });
        debug_assert_eq!(b.len(), PORTS_DIM + 1);
        b
    }
}

/// The values a numeric match admits (see `Domains::match_set`); interface matches are not numeric.
pub fn match_set(m: &Match) -> Set {
    Domains::default().match_set(m)
}

/// A rule as a box: one set per field, in `Field::ALL` order, then the *ports* dimension.
pub type RuleBox = Vec<Set>;

/// Number of dimensions of a [`RuleBox`].
const DIMS: usize = PORTS_DIM + 1;
type Hull = [(u128, u128); DIMS];

fn hull(b: &RuleBox) -> Hull {
    let mut h = [(1, 0); DIMS];
    for (d, s) in b.iter().enumerate() {
        if let (Some(first), Some(last)) = (s.0.first(), s.0.last()) {
            h[d] = (first.0, last.1);
        }
    }
    h
}
fn hull_intersects(a: &Hull, b: &Hull) -> bool {
    a.iter().zip(b).all(|(x, y)| x.0.max(y.0) <= x.1.min(y.1))
}
fn hull_subset(b: &Hull, a: &Hull) -> bool {
    b.iter().zip(a).all(|(x, y)| y.0 <= x.0 && x.1 <= y.1)
}

fn box_subset(b: &RuleBox, a: &RuleBox) -> bool {
    b.iter().zip(a).all(|(x, y)| x.is_subset(y))
}

/// `r \ a` as disjoint boxes.
fn box_subtract(r: &RuleBox, a: &RuleBox, out: &mut Vec<RuleBox>) {
    let mut prefix = r.clone();
    for i in 0..r.len() {
        let rest = r[i].subtract(&a[i]);
        if !rest.is_empty() {
            let mut piece = prefix.clone();
            piece[i] = rest;
            out.push(piece);
        }
        prefix[i] = r[i].intersect(&a[i]);
        if prefix[i].is_empty() {
            return;
        }
    }
}

/// Does the chain end its traversal when this rule matches (so later rules are not reached)? A
/// jump comes back, a LOG/NFLOG goes on with the next rule.
fn terminal(action: Action) -> bool {
    !matches!(action, Action::Jump(_) | Action::Log(_))
}

fn action_text(rs: &Ruleset, action: Action) -> String {
    let name = |c: crate::ir::ChainId| {
        rs.chains
            .get(c.0 as usize)
            .map(|c| c.name.clone())
            .unwrap_or_else(|| c.to_string())
    };
    match action {
        Action::Accept => "accept".into(),
        Action::Drop => "drop".into(),
        Action::Reject(k) => format!("reject {k}"),
        Action::Jump(c) => format!("jump {}", name(c)),
        Action::Goto(c) => format!("goto {}", name(c)),
        Action::Return => "return".into(),
        Action::Log(id) => rs
            .log(id)
            .map_or_else(|| "log".into(), |l| crate::ir::DisplayLog(l).to_string()),
    }
}

/// Why a rule never decides a packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Why {
    /// The match on this field admits no value.
    Empty(Field),
    /// One earlier rule covers it.
    CoveredBy(RuleId),
    /// Several earlier rules together cover it (in chain order).
    CoveredByUnion(Vec<RuleId>),
}

/// A rule that can never decide a packet, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The dead rule.
    pub rule: RuleId,
    /// What makes it dead: an empty match, or the earlier rule(s) covering it.
    pub why: Why,
}

/// Find every rule that can never decide a packet (see the module docs), in rule order.
pub fn analyze(rs: &Ruleset) -> Vec<Finding> {
    analyze_with(rs, &mut |_| {})
}

/// [`analyze`], calling `progress` with the number of rules examined since the last call.
pub fn analyze_with(rs: &Ruleset, progress: &mut dyn FnMut(usize)) -> Vec<Finding> {
    let mut out = Vec::new();
    for chain in &rs.chains {
        analyze_chain(chain, &mut out, progress);
    }
    out
}

fn analyze_chain(chain: &Chain, out: &mut Vec<Finding>, progress: &mut dyn FnMut(usize)) {
    let domains = Domains::of(chain);
    let boxes: Vec<RuleBox> = chain.rules.iter().map(|r| domains.rule_box(r)).collect();
    let live: Vec<bool> = boxes
        .iter()
        .map(|b| b.iter().all(|s| !s.is_empty()))
        .collect();
    // Per box, the smallest interval holding each dimension's set, inline: a cheap necessary test for
    // "intersects" and "is a subset" before the exact one (long chains compare every pair of rules).
    let hulls: Vec<Hull> = boxes.iter().map(hull).collect();
    let universe: RuleBox = (0..DIMS)
        .map(|d| {
            if d == PORTS_DIM {
                Set::range(0, 1)
            } else {
                domains.universe(Field::ALL[d])
            }
        })
        .collect();
    let cover = Cover::new(&universe, &boxes);
    for (j, b) in boxes.iter().enumerate() {
        progress(1);
        let rule = &chain.rules[j];
        if !live[j] {
            let field = Field::ALL[b.iter().position(Set::is_empty).unwrap_or(0)];
            out.push(Finding {
                rule: rule.id,
                why: Why::Empty(field),
            });
            continue;
        }
        let hb = &hulls[j];
        let earlier: Vec<usize> = (0..j)
            .filter(|&i| {
                live[i] && terminal(chain.rules[i].action) && hull_intersects(hb, &hulls[i])
            })
            .collect();
        if let Some(i) = earlier
            .iter()
            .copied()
            .find(|&i| hull_subset(hb, &hulls[i]) && box_subset(b, &boxes[i]))
        {
            out.push(Finding {
                rule: rule.id,
                why: Why::CoveredBy(chain.rules[i].id),
            });
            continue;
        }
        if let Some(mut used) = cover.union(b, j, earlier.into_iter()) {
            // Keep only the rules the cover needs (greedy: drop each one the others make unnecessary).
            let mut k = 0;
            while k < used.len() && used.len() > 2 {
                let rest = used
                    .iter()
                    .enumerate()
                    .filter(|&(n, _)| n != k)
                    .map(|(_, &i)| i);
                if cover.union(b, j, rest).is_some() {
                    used.remove(k);
                } else {
                    k += 1;
                }
            }
            out.push(Finding {
                rule: rule.id,
                why: Why::CoveredByUnion(used.into_iter().map(|i| chain.rules[i].id).collect()),
            });
        }
    }
}

use crate::analysis::program::{Act, Entry, Program};
use crate::analysis::space::{Dim, DimInfo, Space};
use crate::analysis::Set as Values;

/// The chain's boxes in the analysis engine's terms, for the union-cover question of `W0102`.
struct Cover {
    space: Space,
    universe: RuleBox,
    /// Per rule: its box as the engine's dimensions (transport state first, then the fields).
    boxes: Vec<Vec<Values>>,
}

fn engine_dims(bx: &RuleBox) -> Vec<Values> {
    std::iter::once(&bx[PORTS_DIM])
        .chain(&bx[..PORTS_DIM])
        .map(|s| Values::from_intervals(s.0.iter().map(|&(l, h)| (l, h)).collect()))
        .collect()
}

impl Cover {
    fn new(universe: &RuleBox, boxes: &[RuleBox]) -> Cover {
        let space = Space {
            hook: crate::ir::Hook::Input,
            family: crate::ir::Family::V4,
            dims: std::iter::once(Dim::L4)
                .chain(Field::ALL.into_iter().map(Dim::Field))
                .zip(engine_dims(universe))
                .map(|(dim, domain)| DimInfo {
                    dim,
                    domain,
                    atoms: None,
                })
                .collect(),
        };
        Cover {
            space,
            universe: universe.clone(),
            boxes: boxes.iter().map(engine_dims).collect(),
        }
    }

    /// The earlier boxes (`candidates`, indices of rules before `j`) that together cover box `j`
    /// (`b`), if they do: the ones that are the first to take some part of `b` (in chain order).
    /// Exact: decided by the analysis engine ([`crate::analysis::search`]), comparing "the candidates,
    /// in order, else uncovered" with "covered" over `b`'s box, stopping at the first uncovered packet.
    fn union(
        &self,
        b: &RuleBox,
        j: usize,
        candidates: impl Iterator<Item = usize>,
    ) -> Option<Vec<usize>> {
        use crate::analysis::search::{compare_with, Options};
        use crate::interp::{Decided, Outcome};
        use crate::ir::{ChainId, Verdict};
        let entry = |sets: Vec<Values>, tag: u32| -> Entry {
            let constrained = sets
                .iter()
                .zip(&self.space.dims)
                .enumerate()
                .filter(|(_, (s, d))| **s != d.domain)
                .fold(0u64, |m, (i, _)| m | 1 << i);
            Entry {
                sets,
                constrained,
                act: Act::Decide(Outcome {
                    verdict: Verdict::Accept,
                    decided: Decided::Rule {
                        chain: ChainId(0),
                        rule: crate::ir::RuleId(tag),
                        position: 0,
                    },
                }),
            }
        };
        let bj = &self.boxes[j];
        let mut entries = Vec::new();
        for i in candidates {
            let cut: Vec<Values> = self.boxes[i]
                .iter()
                .zip(bj)
                .map(|(x, y)| x.intersect(y))
                .collect();
            if cut.iter().all(|s| !s.is_empty()) {
                entries.push(entry(cut, i as u32));
            }
        }
        if entries.is_empty() {
            return None;
        }
        // Outside `b`: covered by definition (disjoint pieces of the complement), tried first.
        let mut outside = Vec::new();
        box_subtract(&self.universe, b, &mut outside);
        let mut all: Vec<Entry> = outside
            .iter()
            .map(|p| entry(engine_dims(p), u32::MAX))
            .collect();
        all.append(&mut entries);
        let policy = |verdict| Outcome {
            verdict,
            decided: Decided::Policy { chain: ChainId(0) },
        };
        let covering = Program {
            entries: all,
            policy: policy(Verdict::Drop),
        };
        let covered = Program {
            entries: Vec::new(),
            policy: policy(Verdict::Accept),
        };
        let opts = Options {
            keep: 1,
            stop_early: true,
            deciders: true,
        };
        let c = compare_with(&self.space, &covering, &covered, opts, &mut |_| {});
        if !c.equivalent() {
            return None;
        }
        let mut used: Vec<usize> = c
            .deciders_a
            .iter()
            .filter_map(|o| match o.decided {
                Decided::Rule { rule, .. } if rule.0 != u32::MAX => Some(rule.0 as usize),
                _ => None,
            })
            .collect();
        used.sort_unstable();
        Some(used)
    }
}

fn plural_list(rules: &[&Rule]) -> String {
    let names: Vec<String> = rules.iter().map(|r| format!("#{}", r.position)).collect();
    match names.len() {
        0 | 1 => names.concat(),
        n => format!("{} and {}", names[..n - 1].join(", "), names[n - 1]),
    }
}

/// The pass's diagnostics: one warning per finding, then one `N0101` note per covering rule.
pub fn check(rs: &Ruleset) -> Vec<Diagnostic> {
    check_with(rs, &mut |_| {})
}

/// [`check`], calling `progress` with the number of rules examined since the last call.
pub fn check_with(rs: &Ruleset, progress: &mut dyn FnMut(usize)) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for f in analyze_with(rs, progress) {
        let Some(b) = rs.rule(f.rule) else { continue };
        let chain = rs
            .chains
            .get(b.chain.0 as usize)
            .map(|c| c.name.as_str())
            .unwrap_or("?");
        let covering: Vec<&Rule> = match &f.why {
            Why::Empty(field) => {
                let at = b.get(*field).map(|m| m.span).unwrap_or(b.span);
                out.push(
                    Diagnostic::warning(
                        "W0103",
                        format!("rule #{} in {chain} can never match: its `{field}` match admits no value", b.position),
                    )
                    .at(at)
                    .label("matches nothing")
                    .help("remove the rule, or fix the match (a negated full range or /0 prefix matches nothing)"),
                );
                continue;
            }
            Why::CoveredBy(a) => rs.rule(*a).into_iter().collect(),
            Why::CoveredByUnion(v) => v.iter().filter_map(|a| rs.rule(*a)).collect(),
        };
        let same = covering.iter().all(|a| a.action == b.action);
        let by = plural_list(&covering);
        let single = covering.len() == 1;
        let (code, rules, verb) = if single {
            ("W0101", format!("rule {by}"), "already matches")
        } else {
            ("W0102", format!("rules {by}"), "together already match")
        };
        let (message, help) = if same {
            (
                format!(
                    "rule #{} in {chain} is redundant: {rules} before it {verb} all its packets, with the same action (`{}`)",
                    b.position,
                    action_text(rs, b.action)
                ),
                "remove this rule: it changes nothing".to_string(),
            )
        } else {
            let action = if single {
                format!(" (action `{}`)", action_text(rs, covering[0].action))
            } else {
                String::new()
            };
            (
                format!(
                    "rule #{} in {chain} can never match: {rules}{action} before it {verb} all its packets",
                    b.position
                ),
                format!("remove this rule, or move it above {rules} if it should take precedence"),
            )
        };
        out.push(
            Diagnostic::warning(code, message)
                .at(b.span)
                .label("never decides a packet")
                .help(help),
        );
        for a in covering {
            out.push(
                Diagnostic::note(
                    "N0101",
                    format!(
                        "rule #{} in {chain} covers rule #{}",
                        a.position, b.position
                    ),
                )
                .at(a.span)
                .label(format!("covers rule #{}", b.position)),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests;
