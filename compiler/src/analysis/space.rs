//! The header space a hook's packets live in: one dimension per field of the field table
//! ([`crate::ir::FIELDS`]) plus the transport-header state ([`Dim::L4`]), each with its finite domain
//! of values.
//!
//! - numeric fields: `0..=Field::max_value()` (a test's [`crate::ir::Test::bounds`] is its set);
//! - interface fields ([`Lookup::Iface`]): names are reduced to finitely many classes (*atoms*) for the
//!   patterns of the rulesets being compared ([`IfaceAtoms`]); atom 0 is *no interface known*, and at
//!   a hook without that interface ([`Hook::has_iface`]) the domain is atom 0 alone;
//! - [`Dim::L4`]: [`L4_PRESENT`] (ports readable), [`L4_ABSENT`] (non-first fragment, or a protocol
//!   without ports), [`L4_TRUNCATED`] (TCP/UDP first fragment with a header cut short).
//!
//! A new field of the field table gets a dimension here without code: numeric fields by their width,
//! interface-like fields by their lookup kind.
use super::set::Set;
use crate::ir::{Family, Field, Hook, Lookup, Match, Ruleset, Test};

/// Transport header readable: the port fields hold values.
pub const L4_PRESENT: u128 = 0;
/// No transport header to read: a non-first fragment, or a protocol without ports.
pub const L4_ABSENT: u128 = 1;
/// A TCP/UDP first fragment whose header is shorter than the tcp/udp match needs (hotdrop).
pub const L4_TRUNCATED: u128 = 2;

/// One dimension of the header space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dim {
    /// The transport-header state ([`L4_PRESENT`], [`L4_ABSENT`], [`L4_TRUNCATED`]).
    L4,
    /// A field of the field table: its values, or for interface fields the [`IfaceAtoms`] indices.
    Field(Field),
}

/// Interface names reduced to finitely many classes for a set of patterns.
///
/// Two names are in the same class when every `-i`/`-o` pattern treats them alike. Representatives:
/// *unknown* (`None`: no interface, `-i X` fails and `! -i X` holds), every pattern string `t`
/// itself, and for every pattern string `t` (and the empty string) `t` followed by a character that
/// continues no pattern. Any name `n` falls in the class of `t·fresh` where `t` is the longest pattern
/// string that is a proper prefix of `n` (or of `t` itself when `n == t`), so every class has a
/// representative.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IfaceAtoms {
    /// Atom → representative; atom 0 is `None`.
    pub reps: Vec<Option<String>>,
}

impl IfaceAtoms {
    /// The classes of interface names for the pattern strings `patterns` (the `name` of every
    /// [`crate::ir::Test::Iface`] tested, wildcard or not; duplicates allowed).
    pub fn new<'a>(patterns: impl Iterator<Item = &'a str>) -> IfaceAtoms {
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
            // Prefer a character that reads as part of a name (`eth0` → `eth00`).
            let fresh = ('0'..='9')
                .chain('a'..='z')
                .chain('!'..='~')
                .find(|c| !used.contains(c))
                .unwrap_or('\u{80}');
            reps.push(Some(format!("{t}{fresh}")));
        }
        IfaceAtoms { reps }
    }
    /// The atoms a match admits (negation applied).
    pub fn admitted(&self, m: &Match) -> Set {
        Set::from_intervals(
            self.reps
                .iter()
                .enumerate()
                .filter(|(_, n)| m.contains_iface(n.as_deref().unwrap_or("")) != m.negated)
                .map(|(i, _)| (i as u128, i as u128))
                .collect(),
        )
    }
}

/// One dimension and its domain.
#[derive(Clone, Debug)]
pub struct DimInfo {
    /// Which dimension.
    pub dim: Dim,
    /// Every value the dimension can take at this hook (one interval).
    pub domain: Set,
    /// Interface dimensions: the atoms.
    pub atoms: Option<IfaceAtoms>,
}

/// The header space of one hook, shared by the programs being compared.
#[derive(Clone, Debug)]
pub struct Space {
    /// The hook whose packets the space holds (decides which interface fields exist).
    pub hook: Hook,
    /// The rulesets' address family: the packets of the space are of this family only (the addresses
    /// of the other family's fields stay at their full domain, untested).
    pub family: Family,
    /// `dims[0]` is [`Dim::L4`], then one per field in [`Field::ALL`] order.
    pub dims: Vec<DimInfo>,
}

impl Space {
    /// The space of `hook` for the given rulesets (their interface patterns decide the atoms).
    pub fn new(hook: Hook, rulesets: &[&Ruleset]) -> Space {
        let mut dims = vec![DimInfo {
            dim: Dim::L4,
            domain: Set::range(L4_PRESENT, L4_TRUNCATED),
            atoms: None,
        }];
        for f in Field::ALL {
            let info = f.info();
            let (domain, atoms) = match info.lookup {
                Lookup::Iface => {
                    let atoms = if hook.has_iface(f) {
                        IfaceAtoms::new(
                            rulesets
                                .iter()
                                .flat_map(|rs| rs.rules())
                                .filter_map(move |r| r.get(f))
                                .flat_map(|m| m.tests.iter())
                                .filter_map(|t| match t {
                                    Test::Iface { name, .. } => Some(name.as_str()),
                                    _ => None,
                                }),
                        )
                    } else {
                        IfaceAtoms { reps: vec![None] }
                    };
                    (Set::range(0, atoms.reps.len() as u128 - 1), Some(atoms))
                }
                _ => (Set::range(0, f.max_value()), None),
            };
            dims.push(DimInfo {
                dim: Dim::Field(f),
                domain,
                atoms,
            });
        }
        let family = rulesets.first().map_or(Family::V4, |rs| rs.family);
        Space { hook, family, dims }
    }
    /// Index of a field's dimension.
    pub fn field_dim(f: Field) -> usize {
        1 + f as usize
    }
    /// The values a match admits, within the domain: the union of its tests, complemented if negated.
    pub fn match_set(&self, m: &Match) -> Set {
        let d = &self.dims[Space::field_dim(m.field)];
        if let Some(a) = &d.atoms {
            return a.admitted(m).intersect(&d.domain);
        }
        let tests = Set::from_intervals(m.bounds().collect());
        if m.negated {
            d.domain.subtract(&tests)
        } else {
            tests.intersect(&d.domain)
        }
    }
    /// Every dimension at its full domain.
    pub fn universe(&self) -> Vec<Set> {
        self.dims.iter().map(|d| d.domain.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iface_atoms_have_distinct_behaviour_and_unknown_first() {
        let a = IfaceAtoms::new(["eth", "eth0", "lo"].into_iter());
        assert_eq!(a.reps[0], None);
        let reps: Vec<&str> = a.reps[1..].iter().map(|r| r.as_deref().unwrap()).collect();
        assert_eq!(reps, ["0", "eth", "eth1", "eth0", "eth00", "lo", "lo0"]);
    }
}
