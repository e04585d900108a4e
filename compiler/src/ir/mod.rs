//! The IR: one definition of a ruleset for both front ends.
//!
//! Guarantees (checked by [`verify`], which tests and debug builds run after every pass):
//! 1. rule ids are `r0..rN` in order of appearance across all chains; chain ids are `c0..cM`;
//! 2. each rule's `position` is its 1-based index in its chain (as `iptables -L --line-numbers` shows);
//! 3. a match's value fits the field's width; prefixes have no host bits set; ranges have `lo <= hi`;
//! 4. a rule matches each field at most once;
//! 5. a rule with a transport field (`src_port`, `dst_port`) also matches `proto` tcp (6) or udp (17),
//!    not negated — the `-m tcp`/`-m udp` module requires it;
//! 6. every chain attached to a hook has a policy.
//!
//! Thrown away relative to the source: token order, spelling of options, `-m` module names (kept only as
//! the field constraints they impose), counters (kept in `Rule::counters` for reports only).
pub mod field;

pub use field::{Field, FieldInfo, Lookup, FIELDS};

use crate::diag::Span;
use serde::Serialize;
use std::fmt::{self, Write as _};
use std::net::Ipv4Addr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct RuleId(pub u32);
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ChainId(pub u32);

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r{}", self.0)
    }
}
impl fmt::Display for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}", self.0)
    }
}

/// Netfilter hook a chain is attached to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Hook {
    Input,
}

impl Hook {
    pub fn chain_name(self) -> &'static str {
        match self {
            Hook::Input => "INPUT",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Accept,
    Drop,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Accept => "accept",
            Verdict::Drop => "drop",
        }
    }
    /// iptables' spelling (`ACCEPT`, `DROP`).
    pub fn target(self) -> &'static str {
        match self {
            Verdict::Accept => "ACCEPT",
            Verdict::Drop => "DROP",
        }
    }
}

/// What a rule does when it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Accept,
    Drop,
}

impl Action {
    pub fn verdict(self) -> Verdict {
        match self {
            Action::Accept => Verdict::Accept,
            Action::Drop => Verdict::Drop,
        }
    }
}

/// The test a match applies to its field's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Test {
    /// The top `len` bits equal those of `addr` (host bits of `addr` are zero).
    Prefix { addr: u32, len: u8 },
    /// The value equals.
    Exact(u32),
    /// `lo <= value <= hi`.
    Range { lo: u32, hi: u32 },
}

impl Test {
    /// Does a present value pass the (non-negated) test?
    pub fn contains(&self, v: u32) -> bool {
        match *self {
            Test::Prefix { addr, len } => len == 0 || (v ^ addr) >> (32 - len as u32) == 0,
            Test::Exact(x) => v == x,
            Test::Range { lo, hi } => lo <= v && v <= hi,
        }
    }
}

/// One field constraint of a rule.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Match {
    pub field: Field,
    pub test: Test,
    /// `!`: the rule matches values outside the test. For transport fields an absent value never matches,
    /// negated or not (iptables' tcp/udp matches fail on non-first fragments).
    pub negated: bool,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rule {
    pub id: RuleId,
    pub chain: ChainId,
    /// 1-based index in its chain.
    pub position: u32,
    /// At most one per field, sorted by field.
    pub matches: Vec<Match>,
    pub action: Action,
    pub comment: Option<String>,
    /// `[packets:bytes]` from the dump, if any (reports only).
    pub counters: Option<(u64, u64)>,
    /// The whole rule line in the source.
    pub span: Span,
}

impl Rule {
    pub fn get(&self, field: Field) -> Option<&Match> {
        self.matches.iter().find(|m| m.field == field)
    }
    /// The rule tests a transport-header field, so it needs the transport header.
    pub fn needs_l4(&self) -> bool {
        self.matches.iter().any(|m| m.field.info().transport)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Chain {
    pub id: ChainId,
    pub name: String,
    pub hook: Option<Hook>,
    pub policy: Option<Verdict>,
    pub rules: Vec<Rule>,
    pub span: Span,
}

/// A checked ruleset: the chains of the `filter` table that tailwall enforces.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Ruleset {
    pub chains: Vec<Chain>,
}

impl Ruleset {
    pub fn hook_chain(&self, hook: Hook) -> Option<&Chain> {
        self.chains.iter().find(|c| c.hook == Some(hook))
    }
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.chains.iter().flat_map(|c| c.rules.iter())
    }
    pub fn rule(&self, id: RuleId) -> Option<&Rule> {
        self.rules().find(|r| r.id == id)
    }

    /// Stable textual dump, one item per line: the snapshot format.
    ///
    /// ```text
    /// chain c0 INPUT hook=input policy=drop
    ///   r0 #1 src_ip 10.0.0.0/8 proto 6 dst_port 22 -> accept  # "ssh"
    /// ```
    pub fn dump(&self) -> String {
        let mut out = String::new();
        for c in &self.chains {
            let _ = write!(out, "chain {} {}", c.id, c.name);
            if let Some(h) = c.hook {
                let _ = write!(out, " hook={}", h.chain_name().to_lowercase());
            }
            if let Some(p) = c.policy {
                let _ = write!(out, " policy={}", p.as_str());
            }
            out.push('\n');
            for r in &c.rules {
                let _ = write!(out, "  {} #{}", r.id, r.position);
                for m in &r.matches {
                    let _ = write!(out, " {}", DisplayMatch(m));
                }
                let _ = write!(out, " -> {}", r.action.verdict().as_str());
                if let Some(cm) = &r.comment {
                    let _ = write!(out, "  # {cm:?}");
                }
                out.push('\n');
            }
        }
        out
    }
}

/// `field [!] value` in the dump's spelling.
pub struct DisplayMatch<'a>(pub &'a Match);

impl fmt::Display for DisplayMatch<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(f, "{}{} ", m.field, if m.negated { " !" } else { "" })?;
        match m.test {
            Test::Prefix { addr, len } => write!(f, "{}/{}", Ipv4Addr::from(addr), len),
            Test::Exact(v) => write!(f, "{v}"),
            Test::Range { lo, hi } if lo == hi => write!(f, "{lo}"),
            Test::Range { lo, hi } => write!(f, "{lo}-{hi}"),
        }
    }
}

/// An IR invariant that does not hold (a compiler bug, never a user error).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("IR invariant {invariant} violated at {at}: {what}")]
pub struct VerifyError {
    pub invariant: u8,
    pub at: String,
    pub what: String,
}

/// Check the invariants listed in the module documentation.
pub fn verify(rs: &Ruleset) -> Result<(), VerifyError> {
    let err = |invariant, at: String, what: String| {
        Err(VerifyError {
            invariant,
            at,
            what,
        })
    };
    let mut next_rule = 0;
    for (ci, c) in rs.chains.iter().enumerate() {
        if c.id != ChainId(ci as u32) {
            return err(
                1,
                c.name.clone(),
                format!("chain id {} at index {ci}", c.id),
            );
        }
        if c.hook.is_some() && c.policy.is_none() {
            return err(6, c.name.clone(), "hook chain without policy".into());
        }
        for (ri, r) in c.rules.iter().enumerate() {
            let at = format!("{} {}", c.name, r.id);
            if r.id != RuleId(next_rule) || r.chain != c.id {
                return err(1, at, format!("expected r{next_rule} in {}", c.id));
            }
            next_rule += 1;
            if r.position != ri as u32 + 1 {
                return err(2, at, format!("position {} at index {ri}", r.position));
            }
            for w in r.matches.windows(2) {
                if w[0].field >= w[1].field {
                    return err(4, at, format!("{} repeated or out of order", w[1].field));
                }
            }
            for m in &r.matches {
                let max = m.field.max_value();
                let ok = match m.test {
                    Test::Prefix { addr, len } => {
                        m.field.info().lookup == Lookup::Lpm
                            && len <= 32
                            && (len == 32
                                || addr & (u32::MAX >> len as u32) == 0
                                || len == 0 && addr == 0)
                    }
                    Test::Exact(v) => v <= max,
                    Test::Range { lo, hi } => lo <= hi && hi <= max,
                };
                if !ok {
                    return err(3, at, format!("bad value {}", DisplayMatch(m)));
                }
            }
            if r.needs_l4() {
                match r.get(Field::Proto) {
                    Some(Match {
                        test: Test::Exact(6 | 17),
                        negated: false,
                        ..
                    }) => {}
                    _ => return err(5, at, "transport field without proto tcp/udp".into()),
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_contains_respects_length() {
        let t = Test::Prefix {
            addr: u32::from(Ipv4Addr::new(10, 0, 0, 0)),
            len: 8,
        };
        assert!(t.contains(u32::from(Ipv4Addr::new(10, 200, 1, 1))));
        assert!(!t.contains(u32::from(Ipv4Addr::new(11, 0, 0, 0))));
        assert!(Test::Prefix { addr: 0, len: 0 }.contains(12345));
    }
}
