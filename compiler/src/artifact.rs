//! The artifact: everything the loader puts into the kernel for one generation, as plain data.
//!
//! Guarantees:
//! - pure and deterministic: building the same ruleset twice gives byte-identical map images and the same
//!   [`Artifact::digest`];
//! - self-describing: every map the datapath uses is listed with its kind, key/value sizes and
//!   `max_entries`, so the loader needs no other knowledge of the ruleset;
//! - `sim` runs these images (not the IR) so that `interp ≡ sim` checks what the kernel will run.
//!
//! Layout of the images (all integers little-endian as the BPF target, keys/values are the
//! `tailwall_abi` types):
//! - `tw_rules`: Array, key u32 global rule index → `RuleMeta`;
//! - per used field `f`: `tw_t_<f>` lookup table → u32 class id (LPM trie keyed by `LpmV4Key` for
//!   addresses; Array keyed by u32 value for `proto` (256 entries) and ports (`PORT_TABLE_ENTRIES`
//!   entries));
//!   `tw_v_<f>`: Array, key u32 `class * nchunks + chunk` → `Chunk` (the class's rule bit-vector);
//! - sized, not filled: `tw_scratch` (PerCpuArray of `Chunk`, `nchunks` entries), `tw_rule_cnt`
//!   (PerCpuArray of `Counter`, one per rule), `tw_progs` (ProgramArray, `nstages + 1` entries).
//!
//! Map order in [`Artifact::maps`]: `tw_rules`, then `tw_t_<f>`, `tw_v_<f>` for each stage in plan
//! order, then `tw_scratch`, `tw_rule_cnt`, `tw_progs`. Array images list every index (`0..max_entries`)
//! explicitly; LPM images list their entries sorted by `(prefix_len, addr)`. [`build`] is the only
//! producer; it reports what the datapath cannot hold ([`BuildError`]) and never panics on a ruleset.
//!
//! What the datapath compiles: the INPUT chain only, actions accept/drop, the fields with
//! a datapath row (`src_ip`, `dst_ip`, `proto`, `src_port`, `dst_port`) with any number of tests
//! per match (lists compile exactly), at most `MAX_CHUNKS * CHUNK_BITS` rules. Anything else in the
//! INPUT chain — jump/goto/return, interface matches — is a [`BuildError::Unsupported`] naming the
//! first offending rule and its span (rendered by the CLI as a located diagnostic, code `E0501`);
//! nothing is dropped silently. The FORWARD and OUTPUT chains and the user chains no jump reaches are
//! not enforced by the datapath: [`ignored`] lists them, one note (`N0501`) each.
//!
//! Thrown away: spans, rule counters, the IR's per-chain structure beyond what [`RuleInfo`] keeps.
use crate::classify::{self, Classified, Table};
use crate::diag::{Diagnostic, Span};
use crate::ir::{Action, ChainId, DisplayMatch, Field, Hook, RuleId, Ruleset, Verdict};
use crate::plan::{self, Plan, PlanError};
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use std::fmt::Write as _;
use tailwall_abi as abi;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MapKind {
    Array,
    PerCpuArray,
    LpmTrie,
    ProgramArray,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MapImage {
    pub name: &'static str,
    pub kind: MapKind,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    /// (key, value) pairs in ascending key order; empty for maps that are only sized.
    pub entries: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Load-time constants (the eBPF object's read-only globals).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Globals {
    pub nchunks: u32,
    pub nstages: u32,
    pub nrules: u32,
    /// `ACTION_*` code of the hook policy.
    pub policy: u32,
}

/// What userspace needs to print a rule next to its counters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RuleInfo {
    /// Global rule index in this hook's numbering (bit position, counter slot).
    pub index: u32,
    pub id: RuleId,
    pub chain: String,
    /// 1-based position in its chain.
    pub position: u32,
    /// Id of `chain` in the ruleset (what `interp` reports in [`crate::interp::Decided`]).
    pub chain_id: ChainId,
    pub verdict: Verdict,
    /// Match summary in IR dump spelling.
    pub text: String,
    pub comment: Option<String>,
    /// Stable identity: hex SHA-256 of the rule's canonical form (chain, matches, action), so counters
    /// can follow a rule across generations.
    pub identity: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Artifact {
    pub abi_version: u32,
    pub hook: Hook,
    /// The hook chain whose policy applies (`None`: the ruleset has no chain for the hook, policy
    /// ACCEPT).
    pub chain: Option<ChainId>,
    pub globals: Globals,
    /// Field stages in prog-array order: `stages[i]` sits at index `i`, the final program at
    /// `stages.len()`.
    pub stages: Vec<Field>,
    pub maps: Vec<MapImage>,
    pub rules: Vec<RuleInfo>,
    /// Hex SHA-256 over everything above.
    pub digest: String,
}

impl Artifact {
    pub fn map(&self, name: &str) -> Option<&MapImage> {
        self.maps.iter().find(|m| m.name == name)
    }
}

/// What the datapath cannot hold.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BuildError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The datapath attaches to INPUT only.
    #[error("the datapath enforces the INPUT chain only, not {}", .0.chain_name())]
    Hook(Hook),
    /// A rule of the enforced chain uses something the datapath cannot compile (yet).
    #[error("{chain} rule {position} ({rule}): {message}")]
    Unsupported {
        rule: RuleId,
        /// Its chain's name and the rule's 1-based position there.
        chain: String,
        position: u32,
        span: Span,
        message: String,
        help: Option<String>,
    },
}

impl BuildError {
    /// The error as a located diagnostic (`E0501`), for the errors that point at a rule.
    pub fn diagnostic(&self) -> Option<Diagnostic> {
        match self {
            BuildError::Unsupported {
                span,
                message,
                help,
                ..
            } => {
                let mut d = Diagnostic::error("E0501", message.clone())
                    .at(*span)
                    .label("the datapath cannot compile this rule");
                if let Some(h) = help {
                    d = d.help(h.clone());
                }
                Some(d)
            }
            BuildError::Plan(_) | BuildError::Hook(_) => None,
        }
    }
    /// The error as a diagnostic (`E0501`): [`BuildError::diagnostic`] when it points at a rule, else
    /// unlocated.
    pub fn to_diagnostic(&self) -> Diagnostic {
        self.diagnostic()
            .unwrap_or_else(|| Diagnostic::error("E0501", self.to_string()))
    }
}

/// Why the datapath leaves a chain out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "hook")]
pub enum IgnoredWhy {
    /// A built-in chain of another hook (FORWARD, OUTPUT).
    OtherHook(Hook),
    /// A user chain no jump or goto from the enforced chain reaches.
    Unreachable,
}

/// A chain the datapath does not enforce.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Ignored {
    pub chain: ChainId,
    pub name: String,
    pub rules: usize,
    pub why: IgnoredWhy,
    pub span: Span,
}

impl Ignored {
    /// The note (`N0501`) the CLI prints for it, located at the chain's declaration.
    pub fn diagnostic(&self) -> Diagnostic {
        let what = match self.why {
            IgnoredWhy::OtherHook(h) => format!(
                "built-in chain {} ({} rule{}) is not enforced: the datapath attaches to INPUT only",
                h.chain_name(),
                self.rules,
                if self.rules == 1 { "" } else { "s" }
            ),
            IgnoredWhy::Unreachable => format!(
                "user chain `{}` ({} rule{}) is not enforced: no rule of INPUT jumps to it",
                self.name,
                self.rules,
                if self.rules == 1 { "" } else { "s" }
            ),
        };
        let d = Diagnostic::note("N0501", what);
        if self.span == Span::default() {
            d
        } else {
            d.at(self.span)
        }
    }
}

/// The chains the datapath for `hook` leaves out: the other built-in chains and the user chains not
/// reachable from `hook`'s chain, in chain order. (Reachable user chains are not listed: reaching one
/// takes a jump, which [`build`] rejects.)
pub fn ignored(rs: &Ruleset, hook: Hook) -> Vec<Ignored> {
    let reachable = rs.reachable(hook);
    rs.chains
        .iter()
        .filter_map(|c| {
            let why = match c.hook {
                Some(h) if h == hook => return None,
                Some(h) => IgnoredWhy::OtherHook(h),
                None if reachable.contains(&c.id) => return None,
                None => IgnoredWhy::Unreachable,
            };
            Some(Ignored {
                chain: c.id,
                name: c.name.clone(),
                rules: c.rules.len(),
                why,
                span: c.span,
            })
        })
        .collect()
}

/// The first rule of `hook`'s chain the datapath cannot compile, as an error.
fn check_supported(rs: &Ruleset, hook: Hook) -> Result<(), BuildError> {
    match refusals(rs, hook).into_iter().next() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Every refusal of the datapath for `hook`, in rule order: [`BuildError::Hook`] alone when the
/// datapath does not compile the hook, else one [`BuildError::Unsupported`] per rule it cannot
/// compile. [`build`] fails with the first; [`enforcement`] (what `migrate` reports) reads them all, so
/// the report and the compiler decide from this one function.
pub fn refusals(rs: &Ruleset, hook: Hook) -> Vec<BuildError> {
    let mut out = Vec::new();
    if hook != Hook::Input {
        out.push(BuildError::Hook(hook));
        return out;
    }
    // The datapath parses IPv4 only (`frontend::load` refuses an IPv6 ruleset with E0208): no rule
    // of an IPv6 ruleset is enforced.
    if rs.family == crate::ir::Family::V6 {
        out.push(BuildError::Hook(hook));
        return out;
    }
    let Some(chain) = rs.hook_chain(hook) else {
        return out;
    };
    let max = abi::MAX_CHUNKS as usize * abi::CHUNK_BITS;
    for (i, r) in chain.rules.iter().enumerate() {
        let unsupported = |message: String, help: Option<&str>| BuildError::Unsupported {
            rule: r.id,
            chain: chain.name.clone(),
            position: r.position,
            span: r.span,
            message,
            help: help.map(str::to_string),
        };
        let name = |c: ChainId| {
            rs.chain(c)
                .map_or_else(|| c.to_string(), |c| c.name.clone())
        };
        match r.action {
            Action::Accept | Action::Drop => {}
            Action::Jump(c) => {
                out.push(unsupported(
                    format!("jump to user chain `{}` is not supported by the datapath yet", name(c)),
                    Some("to enforce it now, copy the user chain's rules into INPUT in its place"),
                ))
            }
            Action::Goto(c) => {
                out.push(unsupported(
                    format!("goto to user chain `{}` is not supported by the datapath yet", name(c)),
                    Some("to enforce it now, copy the user chain's rules into INPUT in its place"),
                ))
            }
            Action::Return => {
                out.push(unsupported(
                    "RETURN in INPUT is not supported by the datapath yet".into(),
                    Some("a RETURN in INPUT applies the policy: use `-j ACCEPT` or `-j DROP` as the policy is"),
                ))
            }
        }
        if let Some(m) = r.matches.iter().find(|m| m.field.info().datapath.is_none()) {
            out.push(unsupported(
                format!(
                    "matching `{}` is not supported by the datapath yet",
                    m.field
                ),
                Some("the XDP datapath sees only the receiving interface it is attached to: attach to that interface and drop the match"),
            ));
        }
        if i == max {
            out.push(unsupported(
                format!(
                    "{} rules in {} exceed the datapath's limit of {max}: this is rule {}",
                    chain.rules.len(),
                    chain.name,
                    max + 1
                ),
                None,
            ));
        }
    }
    out
}

/// What the datapath does with every rule of `rs`: `Ok(())` when some hook's program compiles it,
/// `Err(why)` when the datapath refuses it ([`refusals`]) or never reaches it (its chain is not
/// reached from a hook the datapath compiles, through rules it compiles). Derived from [`refusals`]
/// only, so it follows whatever the datapath learns to compile; `migrate`'s "exact" requires `Ok`.
pub fn enforcement(rs: &Ruleset) -> std::collections::HashMap<RuleId, Result<(), String>> {
    use std::collections::HashMap;
    let mut out: HashMap<RuleId, Result<(), String>> = HashMap::new();
    for hook in Hook::ALL {
        let refused = refusals(rs, hook);
        if refused.iter().any(|e| matches!(e, BuildError::Hook(_))) {
            continue;
        }
        let mut why: HashMap<RuleId, String> = HashMap::new();
        for e in &refused {
            if let BuildError::Unsupported { rule, message, .. } = e {
                why.entry(*rule).or_insert_with(|| message.clone());
            }
        }
        // The chains the hook's program covers: its chain, and the chains its compiled rules reach.
        let Some(start) = rs.hook_chain(hook) else {
            continue;
        };
        let mut seen = vec![start.id];
        let mut todo = vec![start.id];
        while let Some(c) = todo.pop() {
            let Some(chain) = rs.chain(c) else { continue };
            for r in &chain.rules {
                let verdict = match why.get(&r.id) {
                    Some(m) => Err(m.clone()),
                    None => Ok(()),
                };
                let entry = out.entry(r.id).or_insert_with(|| verdict.clone());
                if verdict.is_err() {
                    *entry = verdict;
                    continue;
                }
                if let Some(t) = r.action.target() {
                    if !seen.contains(&t) {
                        seen.push(t);
                        todo.push(t);
                    }
                }
            }
        }
    }
    for c in &rs.chains {
        for r in &c.rules {
            out.entry(r.id).or_insert_with(|| {
                Err(match c.hook {
                    Some(h) => format!(
                        "the datapath does not enforce built-in chain {} yet",
                        h.chain_name()
                    ),
                    None => format!(
                        "chain `{}` is not reached from a chain the datapath enforces",
                        c.name
                    ),
                })
            });
        }
    }
    out
}

/// `ACTION_*` code of a verdict.
pub fn action_code(v: Verdict) -> u32 {
    match v {
        Verdict::Accept => abi::ACTION_ACCEPT,
        Verdict::Drop => abi::ACTION_DROP,
    }
}

fn u32_key(i: u32) -> Vec<u8> {
    i.to_le_bytes().to_vec()
}

/// The `Chunk` image of chunk `c` of a rule vector.
fn chunk_bytes(v: &classify::RuleVec, c: usize) -> Vec<u8> {
    let raw = v.as_raw_slice();
    let mut out = Vec::with_capacity(std::mem::size_of::<abi::Chunk>());
    for w in 0..abi::CHUNK_WORDS {
        let i = c * abi::CHUNK_WORDS + w;
        let live = v.len().saturating_sub(i * 64).min(64);
        let mask = if live == 64 {
            u64::MAX
        } else {
            (1u64 << live) - 1
        };
        let word = raw.get(i).copied().unwrap_or(0) & mask;
        out.extend_from_slice(&word.to_le_bytes());
    }
    out
}

fn rule_meta_bytes(action: u32, flags: u32) -> Vec<u8> {
    let mut b = action.to_le_bytes().to_vec();
    b.extend_from_slice(&flags.to_le_bytes());
    b
}

/// Build the artifact of `hook`: check that the datapath supports every rule of the hook chain,
/// classify, plan, then lay the tables out as map images. The chains [`ignored`] lists play no part.
pub fn build(rs: &Ruleset, hook: Hook) -> Result<Artifact, BuildError> {
    check_supported(rs, hook)?;
    let c = classify::classify(rs, hook);
    let p = plan::plan(&c)?;
    Ok(assemble(rs, &c, &p))
}

fn assemble(rs: &Ruleset, c: &Classified<'_>, p: &Plan) -> Artifact {
    let chain = rs.hook_chain(c.hook);
    let nrules = p.nrules;
    let nchunks = p.nchunks as usize;
    let mut maps = Vec::new();
    maps.push(MapImage {
        name: abi::MAP_RULES,
        kind: MapKind::Array,
        key_size: 4,
        value_size: std::mem::size_of::<abi::RuleMeta>() as u32,
        max_entries: nrules.max(1),
        entries: c
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let flags = if r.needs_l4() {
                    abi::RULE_F_NEEDS_L4
                } else {
                    0
                };
                (
                    u32_key(i as u32),
                    rule_meta_bytes(action_code(rule_verdict(r)), flags),
                )
            })
            .collect(),
    });
    for &f in &p.stages {
        let Some(fc) = c.field(f) else { continue };
        // `check_supported` admitted only fields with a datapath row.
        let Some(info) = f.info().datapath else {
            continue;
        };
        let table = match &fc.table {
            Table::Lpm(es) => MapImage {
                name: info.table_map,
                kind: MapKind::LpmTrie,
                key_size: std::mem::size_of::<abi::LpmV4Key>() as u32,
                value_size: 4,
                max_entries: es.len().max(1) as u32,
                entries: es
                    .iter()
                    .map(|e| {
                        let mut k = (e.len as u32).to_le_bytes().to_vec();
                        k.extend_from_slice(&e.addr.to_be_bytes());
                        (k, e.class.to_le_bytes().to_vec())
                    })
                    .collect(),
            },
            Table::Array(t) => MapImage {
                name: info.table_map,
                kind: MapKind::Array,
                key_size: 4,
                value_size: 4,
                max_entries: t.len() as u32,
                entries: t
                    .iter()
                    .enumerate()
                    .map(|(i, k)| (u32_key(i as u32), k.to_le_bytes().to_vec()))
                    .collect(),
            },
        };
        maps.push(table);
        let mut entries = Vec::with_capacity(fc.classes.len() * nchunks);
        for (k, v) in fc.classes.iter().enumerate() {
            for ch in 0..nchunks {
                entries.push((u32_key((k * nchunks + ch) as u32), chunk_bytes(v, ch)));
            }
        }
        maps.push(MapImage {
            name: info.vector_map,
            kind: MapKind::Array,
            key_size: 4,
            value_size: std::mem::size_of::<abi::Chunk>() as u32,
            max_entries: (fc.classes.len() * nchunks).max(1) as u32,
            entries,
        });
    }
    let sized = |name, kind, value_size: usize, max_entries: u32| MapImage {
        name,
        kind,
        key_size: 4,
        value_size: value_size as u32,
        max_entries,
        entries: Vec::new(),
    };
    maps.push(sized(
        abi::MAP_SCRATCH,
        MapKind::PerCpuArray,
        std::mem::size_of::<abi::Chunk>(),
        p.nchunks,
    ));
    maps.push(sized(
        abi::MAP_RULE_CNT,
        MapKind::PerCpuArray,
        std::mem::size_of::<abi::Counter>(),
        nrules.max(1),
    ));
    maps.push(sized(
        abi::MAP_PROGS,
        MapKind::ProgramArray,
        4,
        p.stages.len() as u32 + 1,
    ));

    let chain_name = chain
        .map(|ch| ch.name.clone())
        .unwrap_or_else(|| c.hook.chain_name().to_string());
    let rules = c
        .rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let text = r
                .matches
                .iter()
                .map(|m| DisplayMatch(m).to_string())
                .collect::<Vec<_>>()
                .join(" ");
            let canonical = format!("{chain_name}\n{text}\n{}", rule_verdict(r).as_str());
            RuleInfo {
                index: i as u32,
                id: r.id,
                chain: chain_name.clone(),
                position: r.position,
                chain_id: r.chain,
                verdict: rule_verdict(r),
                text,
                comment: r.comment.clone(),
                identity: hex(&Sha256::digest(canonical.as_bytes())),
            }
        })
        .collect();
    let mut a = Artifact {
        abi_version: abi::ABI_VERSION,
        hook: c.hook,
        chain: chain.map(|ch| ch.id),
        globals: Globals {
            nchunks: p.nchunks,
            nstages: p.stages.len() as u32,
            nrules,
            policy: action_code(c.policy),
        },
        stages: p.stages.clone(),
        maps,
        rules,
        digest: String::new(),
    };
    a.digest = a.compute_digest();
    a
}

/// The verdict of a rule of the enforced chain (`check_supported` admits accept and drop only).
fn rule_verdict(r: &crate::ir::Rule) -> Verdict {
    r.action.verdict().unwrap_or(Verdict::Drop)
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Length-prefixed canonical serialization fed into SHA-256.
struct Canon(Sha256);

impl Canon {
    fn u32(&mut self, v: u32) {
        self.0.update(v.to_le_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.0.update((b.len() as u64).to_le_bytes());
        self.0.update(b);
    }
    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
}

impl Artifact {
    /// Hex SHA-256 over a canonical (length-prefixed, little-endian) serialization of every field but
    /// [`Artifact::digest`].
    pub fn compute_digest(&self) -> String {
        let mut h = Canon(Sha256::new());
        h.str("tailwall-artifact");
        h.u32(self.abi_version);
        h.str(self.hook.chain_name());
        h.u32(self.chain.map_or(u32::MAX, |c| c.0));
        let g = &self.globals;
        for v in [g.nchunks, g.nstages, g.nrules, g.policy] {
            h.u32(v);
        }
        h.u32(self.stages.len() as u32);
        for s in &self.stages {
            h.str(s.name());
        }
        h.u32(self.maps.len() as u32);
        for m in &self.maps {
            h.str(m.name);
            h.str(match m.kind {
                MapKind::Array => "array",
                MapKind::PerCpuArray => "percpu_array",
                MapKind::LpmTrie => "lpm_trie",
                MapKind::ProgramArray => "prog_array",
            });
            for v in [
                m.key_size,
                m.value_size,
                m.max_entries,
                m.entries.len() as u32,
            ] {
                h.u32(v);
            }
            // Runs of consecutive u32 keys with equal values are hashed once, with their length: the
            // same information, but a 65 538-entry port table costs a handful of updates.
            let mut run: Option<(&[u8], &[u8], u32)> = None;
            for (k, v) in &m.entries {
                run = match run {
                    Some((k0, v0, n))
                        if k.len() == 4
                            && k0.len() == 4
                            && v0 == v.as_slice()
                            && le32(k0).wrapping_add(n) == le32(k) =>
                    {
                        Some((k0, v0, n + 1))
                    }
                    prev => {
                        if let Some((k0, v0, n)) = prev {
                            h.bytes(k0);
                            h.bytes(v0);
                            h.u32(n);
                        }
                        Some((k.as_slice(), v.as_slice(), 1))
                    }
                };
            }
            if let Some((k0, v0, n)) = run {
                h.bytes(k0);
                h.bytes(v0);
                h.u32(n);
            }
        }
        h.u32(self.rules.len() as u32);
        for r in &self.rules {
            for v in [r.index, r.id.0, r.position, r.chain_id.0] {
                h.u32(v);
            }
            h.str(&r.chain);
            h.str(r.verdict.as_str());
            h.str(&r.text);
            match &r.comment {
                Some(c) => {
                    h.u32(1);
                    h.str(c);
                }
                None => h.u32(0),
            }
            h.str(&r.identity);
        }
        hex(&h.0.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Span;
    use crate::ir::{Action, Match, Ruleset, Test};

    fn input(rules: Vec<Vec<Match>>) -> Ruleset {
        let action = |i: usize| {
            if i.is_multiple_of(2) {
                Action::Accept
            } else {
                Action::Drop
            }
        };
        Ruleset::with_chain(
            Hook::Input,
            Verdict::Drop,
            rules.into_iter().enumerate().map(|(i, m)| (m, action(i))),
        )
    }
    fn m(field: Field, test: Test) -> Match {
        Match::single(field, test, false, Span::default())
    }

    #[test]
    fn src_ip_image_layout_matches_abi() {
        let rs = input(vec![
            vec![m(
                Field::SrcIp,
                Test::Prefix {
                    addr: 0x0a01_0000,
                    len: 16,
                },
            )],
            vec![
                m(Field::Proto, Test::Exact(6)),
                m(Field::DstPort, Test::Exact(80)),
            ],
        ]);
        let a = build(&rs, Hook::Input).unwrap();
        let names: Vec<&str> = a.maps.iter().map(|m| m.name).collect();
        // Stage order: proto, dst_port and src_ip are each constrained once: field-table order.
        assert_eq!(a.stages, vec![Field::SrcIp, Field::Proto, Field::DstPort]);
        assert_eq!(
            names,
            [
                "tw_rules",
                "tw_t_src_ip",
                "tw_v_src_ip",
                "tw_t_proto",
                "tw_v_proto",
                "tw_t_dst_port",
                "tw_v_dst_port",
                "tw_scratch",
                "tw_rule_cnt",
                "tw_progs"
            ]
        );
        let rules = a.map(abi::MAP_RULES).unwrap();
        assert_eq!(
            rules.entries[1],
            (vec![1, 0, 0, 0], vec![2, 0, 0, 0, 1, 0, 0, 0])
        );
        let lpm = a.map(abi::SRC_IP.table_map).unwrap();
        assert_eq!(lpm.kind, MapKind::LpmTrie);
        assert_eq!(lpm.entries[1].0, vec![16, 0, 0, 0, 10, 1, 0, 0]);
        // Class of 10.1/16 admits both rules: bits 0 and 1 of word 0.
        let class = u32::from_le_bytes(lpm.entries[1].1.clone().try_into().unwrap());
        let v = &a.map(abi::SRC_IP.vector_map).unwrap().entries[class as usize].1;
        assert_eq!(v.len(), 64);
        assert_eq!(v[0], 0b11);
        assert!(v[1..].iter().all(|&b| b == 0));
        assert_eq!(
            a.map(abi::DST_PORT.table_map).unwrap().max_entries,
            abi::PORT_TABLE_ENTRIES
        );
        assert_eq!(a.map(abi::MAP_PROGS).unwrap().max_entries, 4);
        assert_eq!(
            a.globals,
            Globals {
                nchunks: 1,
                nstages: 3,
                nrules: 2,
                policy: abi::ACTION_DROP
            }
        );
        assert_eq!(a.rules[1].text, "proto 6 dst_port 80");
    }

    #[test]
    fn nrules_over_datapath_limit_is_an_error() {
        let n = abi::MAX_CHUNKS as usize * abi::CHUNK_BITS + 1;
        let rs = input(vec![vec![]; n]);
        let e = build(&rs, Hook::Input).unwrap_err();
        assert!(
            matches!(&e, BuildError::Unsupported { rule, .. } if rule.0 as usize == n - 1),
            "{e:?}"
        );
        assert_eq!(e.diagnostic().unwrap().code, "E0501");
        let hook = BuildError::Hook(Hook::Output).to_diagnostic();
        assert_eq!((hook.code, hook.span), ("E0501", None));
    }

    #[test]
    fn identity_ignores_position_and_comment() {
        let mut rs = input(vec![
            vec![],
            vec![m(Field::Proto, Test::Exact(1))],
            vec![m(Field::Proto, Test::Exact(1))],
        ]);
        rs.chains[0].rules[2].comment = Some("x".into());
        rs.chains[0].rules[2].action = Action::Drop;
        let a = build(&rs, Hook::Input).unwrap();
        assert_eq!(a.rules[1].identity, a.rules[2].identity);
        assert_ne!(a.rules[0].identity, a.rules[1].identity);
        let mut rs2 = rs.clone();
        rs2.chains[0].rules[2].comment = None;
        assert_ne!(build(&rs2, Hook::Input).unwrap().digest, a.digest);
    }
}
