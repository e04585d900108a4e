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
//! - `tw_rules`: Array, key u32 position (the flattened chains' numbering, [`crate::flatten`]) →
//!   `RuleMeta` (action, flags, `next` for CONTINUE positions);
//! - `tw_regions`: Array of `MAX_REGIONS` `RegionMeta` (first and policy position of each (hook,
//!   family), `NO_RULE` for a region this generation does not hold);
//! - per used field `f`: `tw_t_<f>` lookup table → u32 class id (LPM trie keyed by `LpmV4Key` for
//!   IPv4 addresses, `LpmV6Key` for IPv6 ones; Array keyed by u32 value for `proto` (256 entries)
//!   and ports (`PORT_TABLE_ENTRIES` entries));
//!   `tw_v_<f>`: Array, key u32 `class * nchunks + chunk` → `Chunk` (the class's rule bit-vector);
//! - sized, not filled: `tw_scratch` (PerCpuArray of `Chunk`, `nchunks` entries), `tw_rule_cnt`
//!   (PerCpuArray of `Counter`, one per position), `tw_progs` (ProgramArray, `nstages + 1` entries).
//!
//! Map order in [`Artifact::maps`]: `tw_rules`, `tw_regions`, then `tw_t_<f>`, `tw_v_<f>` for each
//! stage in plan order, then `tw_scratch`, `tw_rule_cnt`, `tw_progs`. Array images list every index (`0..max_entries`)
//! explicitly; LPM images list their entries sorted by `(prefix_len, addr)`. [`build`] is the only
//! producer; it reports what the datapath cannot hold ([`BuildError`]) and never panics on a ruleset.
//!
//! What the datapath compiles: one ruleset per family ([`build_sets`]: an IPv4 and an IPv6 one), per
//! hook and family a region of positions ([`crate::flatten`], `tw_regions[hook * 2 + family]`; the
//! families share the stages: a rule of one family never tests the other's address fields, so every
//! position of the other family is set at the address 0 the entry program leaves there): the built-in
//! chain and every user chain it reaches through jumps and gotos, actions accept/drop/jump/goto/
//! return, policies, the fields with a datapath row (`src_ip`, `dst_ip`, `src_ip6`, `dst_ip6`,
//! `proto`, `src_port`, `dst_port`, …) with any number of tests per match (lists compile exactly), at most
//! `MAX_CHUNKS * CHUNK_BITS` positions in all (else `E0502`, located at the jump that crosses it).
//! Every hook's region (INPUT, FORWARD, OUTPUT) is compiled into the one artifact: the entry program
//! judges a packet by the region of the hook the FIB decides (`region = hook * 2 + family`), the tc
//! egress chain by OUTPUT's. A rule reachable from ANY hook's chain that tests something without a
//! datapath row is a [`BuildError::Unsupported`] (`E0501`, located, every such rule reported): the
//! whole build fails rather than leave a hook unenforced (fail closed). [`ignored`] lists only what
//! really is left out: the user chains no hook reaches, one note (`N0501`) each.
//!
//! Rule identities and counters: [`Artifact::rules`] holds one [`RuleInfo`] per IR rule that has a
//! position (a rule of a chain jumped to from several places has several positions);
//! [`Artifact::positions`] maps every position to what it counts for; [`Artifact::origin_counters`]
//! sums the kernel's per-position counters per rule and per region policy.
//!
//! Thrown away: spans, rule counters, the IR's per-chain structure beyond what [`RuleInfo`] keeps.
use crate::classify::{self, Classified, IfaceTable, Table};
use crate::diag::{Diagnostic, Span};
use crate::flatten::{self, FlattenError, Origin, Step};
use crate::ir::{
    Action, ChainId, DisplayAction, DisplayMatch, Family, Field, Hook, RuleId, Ruleset, Verdict,
};
use crate::plan::{self, Plan, PlanError};
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use std::fmt::Write as _;
use tailwall_abi as abi;

/// The BPF map type of a [`MapImage`] (`enum bpf_map_type`, `include/uapi/linux/bpf.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MapKind {
    /// `BPF_MAP_TYPE_ARRAY`: u32 index keys `0..max_entries`, every slot exists.
    Array,
    /// `BPF_MAP_TYPE_PERCPU_ARRAY`: an array with one value per CPU (scratch space, counters).
    PerCpuArray,
    /// `BPF_MAP_TYPE_LPM_TRIE`: longest-prefix match on `{prefixlen, addr}` keys.
    LpmTrie,
    /// `BPF_MAP_TYPE_PROG_ARRAY`: the tail-call table of the stage programs, filled by the loader.
    ProgramArray,
    /// BPF hash map (the interface tables: ifindex → class).
    Hash,
    /// `BPF_MAP_TYPE_RINGBUF` (`tw_log`: no keys or values, `max_entries` is its size in bytes).
    RingBuf,
}

/// One BPF map of the generation: how to create it and what to write into it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MapImage {
    /// The kernel-visible name (`tw_…`, at most 15 bytes: `BPF_OBJ_NAME_LEN` 16 with the NUL).
    pub name: &'static str,
    /// The map type.
    pub kind: MapKind,
    /// Bytes per key (4 for arrays and the ifindex hashes; the `LpmV4Key`/`LpmV6Key` size for tries).
    pub key_size: u32,
    /// Bytes per value (per CPU for [`MapKind::PerCpuArray`]).
    pub value_size: u32,
    /// Capacity: array length, or the most entries of a trie or hash.
    pub max_entries: u32,
    /// (key, value) pairs in ascending key order; empty for maps that are only sized.
    pub entries: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Load-time constants (the eBPF object's read-only globals).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Globals {
    /// 512-position chunks per rule bit-vector (`Plan::nchunks`).
    pub nchunks: u32,
    /// Field stages the walk tail-calls before the final program (`stages.len()`).
    pub nstages: u32,
    /// Positions (bits per vector, `tw_rules` and `tw_rule_cnt` entries).
    pub nrules: u32,
    /// Most positions one walk visits (the walk's loop bound, `1..=MAX_VISITS`).
    pub nvisits: u32,
}

/// One region: the positions of one (hook, family).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RegionInfo {
    /// `tw_regions` index: `hook * 2 + family`.
    pub slot: u32,
    /// The hook of the region.
    pub hook: Hook,
    /// The address family of the region's ruleset.
    pub family: Family,
    /// The built-in chain whose policy ends the region (`None`: the ruleset has none, ACCEPT).
    pub chain: Option<ChainId>,
    /// Its name (`INPUT`, …).
    pub chain_name: String,
    /// The verdict of the region's policy position (ACCEPT when the ruleset has no such chain).
    pub policy: Verdict,
    /// Positions `first..end`; the policy position is `end - 1`.
    pub first: u32,
    /// One past the region's last position (its policy position).
    pub end: u32,
    /// Most positions one walk in this region visits.
    pub max_visits: u32,
}

/// What a position counts for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "index")]
pub enum PositionOrigin {
    /// [`Artifact::rules`]`[i]`.
    Rule(u32),
    /// The policy of [`Artifact::regions`]`[i]`.
    Policy(u32),
    /// Falling off a goto'd chain (counted by nobody, as in iptables).
    FallOff,
}

/// One position: what `tw_rules[index]` holds, plus what it counts for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PositionInfo {
    /// The position: index in `tw_rules` and `tw_rule_cnt`, bit in the rule vectors.
    pub index: u32,
    /// `ACTION_*` code.
    pub action: u32,
    /// For `ACTION_CONTINUE`: where the walk continues (else 0).
    pub next: u32,
    /// The rule or policy the position's counter is added to.
    pub origin: PositionOrigin,
}

/// Per-rule and per-policy totals of the kernel's per-position counters
/// ([`Artifact::origin_counters`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OriginCounters {
    /// By [`Artifact::rules`] index (a rule with several positions: their sum).
    pub rules: Vec<abi::Counter>,
    /// By [`Artifact::regions`] index: the built-in chain's policy counter.
    pub policies: Vec<abi::Counter>,
}

/// What userspace needs to print a rule next to its counters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RuleInfo {
    /// Index in [`Artifact::rules`] (what [`PositionOrigin::Rule`] refers to).
    pub index: u32,
    /// The rule's id in the ruleset it came from.
    pub id: RuleId,
    /// Its chain's name.
    pub chain: String,
    /// 1-based position in its chain.
    pub position: u32,
    /// Id of `chain` in the ruleset (what `interp` reports in [`crate::interp::Decided`]).
    pub chain_id: ChainId,
    /// The action in the IR dump's spelling: `accept`, `drop`, `jump web`, `goto web`, `return`.
    pub action: String,
    /// Match summary in IR dump spelling.
    pub text: String,
    /// The rule's comment (`-m comment` / YAML `comment:`), if any.
    pub comment: Option<String>,
    /// Stable identity: hex SHA-256 of the rule's canonical form (chain, matches, action), so counters
    /// can follow a rule across generations.
    pub identity: String,
    /// A LOG/NFLOG rule's parameters (what `tailwall log` prints its records with); `None` for
    /// other actions. Hashed through `action`, whose spelling holds them.
    pub log: Option<crate::ir::LogSpec>,
}

/// The interface-name partition of one interface stage ([`Artifact::ifaces`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IfaceStage {
    /// The interface field of the stage (`in_iface` or `out_iface`).
    pub field: Field,
    /// Its name partition: each device name's class.
    pub table: IfaceTable,
}

/// One generation: every map image, the load-time constants and what each position means, built by
/// [`build`] and consumed by the loader and `sim`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Artifact {
    /// `tailwall_abi::ABI_VERSION` the images are laid out for; the loader refuses any other.
    pub abi_version: u32,
    /// The hook single-hook consumers (analysis, `explain`, lifecycle summaries) describe; every
    /// hook's region is compiled whatever it is ([`build_sets`]).
    pub hook: Hook,
    /// The eBPF object's read-only globals for this generation.
    pub globals: Globals,
    /// Field stages in prog-array order: `stages[i]` sits at index `i`, the final program at
    /// `stages.len()`.
    pub stages: Vec<Field>,
    /// Every map, in the order of the module documentation.
    pub maps: Vec<MapImage>,
    /// The compiled regions, in position order.
    pub regions: Vec<RegionInfo>,
    /// Indexed by position.
    pub positions: Vec<PositionInfo>,
    /// One per IR rule with a position, in ruleset order.
    pub rules: Vec<RuleInfo>,
    /// The name partition of every interface stage (`in_iface`, `out_iface`), in stage order: the
    /// loader writes each device's class ([`IfaceTable::class_of_name`]) into the stage's
    /// `tw_t_<field>` under its ifindex when it builds the generation; the image holds ifindex 0
    /// (no device, the empty name) only. `docs/decisions/0010`.
    pub ifaces: Vec<IfaceStage>,
    /// Hex SHA-256 over everything above.
    pub digest: String,
}

impl Artifact {
    /// The map called `name` (`tw_rules`, `tw_t_dst_port`, …), if the generation has it.
    pub fn map(&self, name: &str) -> Option<&MapImage> {
        self.maps.iter().find(|m| m.name == name)
    }
    /// The region of `(hook, family)`, if this generation holds it.
    pub fn region(&self, hook: Hook, family: Family) -> Option<&RegionInfo> {
        let slot = flatten::region_slot(hook, family);
        self.regions.iter().find(|r| r.slot == slot)
    }
    /// Sum per-position counters (`tw_rule_cnt`, indexed by position; shorter inputs count as zero)
    /// per rule and per region policy: what `iptables -L -v` shows.
    pub fn origin_counters(&self, per_position: &[abi::Counter]) -> OriginCounters {
        let mut out = OriginCounters {
            rules: vec![abi::Counter::default(); self.rules.len()],
            policies: vec![abi::Counter::default(); self.regions.len()],
        };
        for (p, c) in self.positions.iter().zip(per_position) {
            let slot = match p.origin {
                PositionOrigin::Rule(i) => out.rules.get_mut(i as usize),
                PositionOrigin::Policy(i) => out.policies.get_mut(i as usize),
                PositionOrigin::FallOff => None,
            };
            if let Some(s) = slot {
                s.packets += c.packets;
                s.bytes += c.bytes;
            }
        }
        out
    }
}

/// What the datapath cannot hold.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BuildError {
    /// Too many positions or field stages for the datapath's bounds.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The flattened chains exceed the datapath's positions (`E0502`).
    #[error(transparent)]
    Flatten(#[from] FlattenError),
    /// Several rules the datapath cannot compile (each an [`BuildError::Unsupported`]).
    #[error("{} rules the datapath cannot compile", .0.len())]
    Several(Vec<BuildError>),
    /// [`build_sets`] was given two rulesets of `family`: a generation holds at most one per
    /// family (its regions are `hook * 2 + family`). `span`: the second one's hook chain (default
    /// when it has none). `E0503`.
    #[error("two {} rulesets for one generation: give at most one per family", .family.as_str())]
    Family {
        /// The family given twice.
        family: Family,
        /// The second ruleset's hook chain.
        span: Span,
    },
    /// A rule of the enforced chain uses something the datapath cannot compile (yet).
    #[error("{chain} rule {position} ({rule}): {message}")]
    Unsupported {
        /// The rule.
        rule: RuleId,
        /// Its chain's name and the rule's 1-based position there.
        chain: String,
        /// The rule's 1-based position in `chain`.
        position: u32,
        /// The rule in the source.
        span: Span,
        /// What it is, in words.
        message: String,
        /// What to do instead, if there is a known alternative.
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
            BuildError::Flatten(f) => Some(f.diagnostic()),
            BuildError::Family { span, .. } => Some(
                Diagnostic::error("E0503", self.to_string())
                    .at(*span)
                    .label("the second ruleset of this family")
                    .help("one generation enforces one IPv4 and one IPv6 ruleset together (`compile RULES --v6 RULES6`)"),
            )
            .filter(|_| *span != Span::default()),
            BuildError::Plan(_) | BuildError::Several(_) => None,
        }
    }
    /// Every diagnostic of the error (one per rule for [`BuildError::Several`]).
    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        match self {
            BuildError::Several(es) => es.iter().map(BuildError::to_diagnostic).collect(),
            e => vec![e.to_diagnostic()],
        }
    }
    /// The error as a diagnostic (`E0501`, `E0503` for a family given twice):
    /// [`BuildError::diagnostic`] when it is located, else unlocated.
    pub fn to_diagnostic(&self) -> Diagnostic {
        let code = match self {
            BuildError::Family { .. } => "E0503",
            _ => "E0501",
        };
        self.diagnostic()
            .unwrap_or_else(|| Diagnostic::error(code, self.to_string()))
    }
}

/// Why the datapath leaves a chain out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum IgnoredWhy {
    /// A user chain no jump or goto from any built-in chain (INPUT, FORWARD, OUTPUT) reaches.
    Unreachable,
}

/// A chain the datapath does not enforce.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Ignored {
    /// The chain.
    pub chain: ChainId,
    /// Its name.
    pub name: String,
    /// How many rules it holds (none of them enforced).
    pub rules: usize,
    /// Why it is left out.
    pub why: IgnoredWhy,
    /// The chain's declaration.
    pub span: Span,
}

impl Ignored {
    /// The note (`N0501`) the CLI prints for it, located at the chain's declaration.
    pub fn diagnostic(&self) -> Diagnostic {
        let what = match self.why {
            IgnoredWhy::Unreachable => format!(
                "user chain `{}` ({} rule{}) is not enforced: no rule of INPUT, FORWARD or OUTPUT jumps to it",
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

/// The note (`N0502`) for a generation holding an IPv6 ruleset alone: IPv4 packets pass the
/// datapath unfiltered, as an empty iptables filter table passes them (the host's own iptables rules,
/// if any, still judge them after XDP). `docs/decisions/0013-ipv6-datapath.md`.
pub fn lone_ipv6_note() -> Diagnostic {
    Diagnostic::note(
        "N0502",
        "no IPv4 ruleset: IPv4 packets pass the datapath unfiltered, as an empty iptables filter table passes them",
    )
    .help("give the IPv4 ruleset as RULES and this one with --v6 to enforce both families")
}

/// The chains the datapath leaves out: the user chains reachable from no built-in chain, in chain
/// order (every built-in chain is compiled, [`build`]).
pub fn ignored(rs: &Ruleset) -> Vec<Ignored> {
    let reachable: Vec<ChainId> = Hook::ALL.iter().flat_map(|&h| rs.reachable(h)).collect();
    rs.chains
        .iter()
        .filter(|c| c.hook.is_none() && !reachable.contains(&c.id))
        .map(|c| Ignored {
            chain: c.id,
            name: c.name.clone(),
            rules: c.rules.len(),
            why: IgnoredWhy::Unreachable,
            span: c.span,
        })
        .collect()
}

/// Every refusal of the datapath for `hook`, in rule order: one [`BuildError::Unsupported`] per rule
/// reachable from the hook's chain (through jumps and gotos) that
/// it cannot compile. [`build`] fails with them all; [`enforcement`] (what `migrate` reports) reads
/// them too, so the report and the compiler decide from this one function.
pub fn refusals(rs: &Ruleset, hook: Hook) -> Vec<BuildError> {
    unsupported(rs, hook)
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

/// Every rule reachable from `hook`'s chain that the datapath cannot compile, as errors (rules in
/// ruleset order, each once).
fn unsupported(rs: &Ruleset, hook: Hook) -> Vec<BuildError> {
    let mut out = Vec::new();
    for cid in rs.reachable(hook) {
        let Some(chain) = rs.chain(cid) else { continue };
        for r in &chain.rules {
            if let Some(m) = r.matches.iter().find(|m| m.field.info().datapath.is_none()) {
                out.push(BuildError::Unsupported {
                    rule: r.id,
                    chain: chain.name.clone(),
                    position: r.position,
                    span: r.span,
                    message: format!(
                        "matching `{}` is not supported by the datapath yet",
                        m.field
                    ),
                    help: Some(
                        "docs/architecture.md lists the fields the datapath compiles".into(),
                    ),
                });
            } else if hook == Hook::Output && matches!(r.action, Action::Reject(_)) {
                // tc egress sees the host's own packet after its socket sent it: the reply would
                // have to reach that socket through the stack's input path, which the datapath
                // does not do (docs/decisions/0015-reject.md). Refused, never turned into a drop.
                out.push(BuildError::Unsupported {
                    rule: r.id,
                    chain: chain.name.clone(),
                    position: r.position,
                    span: r.span,
                    message: "`-j REJECT` reached from OUTPUT is not supported by the datapath (tc egress cannot hand the reply to the local socket)".into(),
                    help: Some(
                        "use `-j DROP` in OUTPUT, or REJECT the packet in INPUT/FORWARD; docs/decisions/0015-reject.md".into(),
                    ),
                });
            }
        }
    }
    out.sort_by_key(|e| match e {
        BuildError::Unsupported { rule, .. } => *rule,
        _ => RuleId(u32::MAX),
    });
    out
}

/// The most visits a walk over `nchunks` chunks may take: [`abi::MAX_VISITS`], and at most
/// [`abi::MAX_WALK_WORK`] visits times chunks (the verifier's budget), at least 1.
pub fn visit_bound(nchunks: u32) -> u32 {
    (abi::MAX_WALK_WORK / nchunks.max(1)).clamp(1, abi::MAX_VISITS)
}

impl Artifact {
    /// A warning (`W0501`) when a region's walk may need more visits than the datapath allows
    /// ([`visit_bound`]): a packet that does is dropped and counted (`REASON_BOUND`), never passed.
    pub fn walk_warning(&self) -> Option<Diagnostic> {
        let r = self
            .regions
            .iter()
            .filter(|r| r.max_visits > self.globals.nvisits)
            .max_by_key(|r| r.max_visits)?;
        Some(Diagnostic::warning(
            "W0501",
            format!(
                "a packet may need up to {} visits (jumps, RETURNs, the deciding rule) in {} ({}); the datapath walks at most {} over {} chunk(s): a packet that needs more is dropped and counted as `bound`",
                r.max_visits,
                r.chain_name,
                r.family.as_str(),
                self.globals.nvisits,
                self.globals.nchunks
            ),
        )
        .help("fewer jumps that can match in sequence, or fewer positions, raise the bound"))
    }
}

/// `ACTION_*` code of a verdict.
pub fn action_code(v: Verdict) -> u32 {
    match v {
        Verdict::Accept => abi::ACTION_ACCEPT,
        Verdict::Drop => abi::ACTION_DROP,
        Verdict::Reject(_) => abi::ACTION_REJECT,
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

fn rule_meta_bytes(action: u32, flags: u32, next: u32) -> Vec<u8> {
    let mut b = action.to_le_bytes().to_vec();
    b.extend_from_slice(&flags.to_le_bytes());
    b.extend_from_slice(&next.to_le_bytes());
    b
}

/// Build the artifact of a generation for one ruleset: [`build_sets`] with `&[rs]`.
///
/// # Errors
/// As [`build_sets`].
pub fn build(rs: &Ruleset, hook: Hook) -> Result<Artifact, BuildError> {
    build_sets(&[rs], hook)
}

/// Build the artifact of a generation from one ruleset per family: flatten every hook (INPUT,
/// FORWARD, OUTPUT) of every ruleset into regions ([`crate::flatten`]), classify the positions, plan,
/// lay the tables out as map images. Every region must compile: the rules any hook's chain reaches
/// that the datapath cannot compile are errors, all of them reported once each (fail closed: a hook
/// is never left out, its packets would be judged by nothing). `hook` is recorded as
/// [`Artifact::hook`], the hook single-hook consumers (analysis, `explain`, lifecycle summaries)
/// describe; it does not change what is compiled.
///
/// # Errors
/// [`BuildError::Unsupported`] /
/// [`BuildError::Several`] for rules the datapath cannot compile, [`BuildError::Flatten`] when the
/// positions exceed the datapath's, [`BuildError::Plan`] for too many stages,
/// [`BuildError::Family`] for two rulesets of one family.
pub fn build_sets(sets: &[&Ruleset], hook: Hook) -> Result<Artifact, BuildError> {
    for (i, rs) in sets.iter().enumerate() {
        if sets[..i].iter().any(|o| o.family == rs.family) {
            return Err(BuildError::Family {
                family: rs.family,
                span: rs.hook_chain(hook).map_or_else(Span::default, |c| c.span),
            });
        }
    }
    let mut errors: Vec<BuildError> = Vec::new();
    for rs in sets {
        let mut seen = std::collections::HashSet::new();
        for h in Hook::ALL {
            for e in refusals(rs, h) {
                let key = match &e {
                    BuildError::Unsupported { rule, .. } => Some(*rule),
                    _ => None,
                };
                if seen.insert(key) {
                    errors.push(e);
                }
            }
        }
    }
    errors.sort_by_key(|e| match e {
        BuildError::Unsupported { rule, .. } => *rule,
        _ => RuleId(u32::MAX),
    });
    match errors.len() {
        0 => {}
        1 => return Err(errors.remove(0)),
        _ => return Err(BuildError::Several(errors)),
    }
    let mut flat = flatten::Flat {
        regions: Vec::new(),
        positions: Vec::new(),
    };
    for (set, rs) in sets.iter().enumerate() {
        for h in Hook::ALL {
            flatten::flatten_region(&mut flat, rs, set, h)?;
        }
    }
    let c = classify::classify_flat(flat);
    let p = plan::plan(&c)?;
    Ok(assemble(sets, hook, &c, &p))
}

fn assemble(sets: &[&Ruleset], hook: Hook, c: &Classified<'_>, p: &Plan) -> Artifact {
    let flat = &c.flat;
    let nrules = p.nrules;
    let nchunks = p.nchunks as usize;
    // One RuleInfo per IR rule with a position, in (ruleset, rule id) order.
    let mut origins: Vec<(usize, RuleId)> = flat
        .positions
        .iter()
        .filter_map(|q| match q.origin {
            Origin::Rule { set, rule } => Some((set, rule)),
            _ => None,
        })
        .collect();
    origins.sort_unstable();
    origins.dedup();
    let origin_index = |set: usize, rule: RuleId| {
        origins
            .binary_search(&(set, rule))
            .map_or(u32::MAX, |i| i as u32)
    };
    let positions: Vec<PositionInfo> = flat
        .positions
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let (action, next) = match q.step {
                // A REJECT's kind rides in `next` (`tailwall_abi::ACTION_REJECT`).
                Step::Verdict(Verdict::Reject(k)) => (abi::ACTION_REJECT, k.abi()),
                Step::Verdict(v) => (action_code(v), 0),
                Step::Continue { next } => (abi::ACTION_CONTINUE, next),
            };
            PositionInfo {
                index: i as u32,
                action,
                next,
                origin: match q.origin {
                    Origin::Rule { set, rule } => PositionOrigin::Rule(origin_index(set, rule)),
                    Origin::Policy { region } => PositionOrigin::Policy(region as u32),
                    Origin::FallOff => PositionOrigin::FallOff,
                },
            }
        })
        .collect();
    let mut maps = Vec::new();
    maps.push(MapImage {
        name: abi::MAP_RULES,
        kind: MapKind::Array,
        key_size: 4,
        value_size: std::mem::size_of::<abi::RuleMeta>() as u32,
        max_entries: nrules.max(1),
        entries: flat
            .positions
            .iter()
            .zip(&positions)
            .map(|(q, info)| {
                let mut flags = if q.own().is_some_and(|r| r.needs_l4()) {
                    abi::RULE_F_NEEDS_L4
                } else {
                    0
                };
                if q.own().is_some_and(|r| matches!(r.action, Action::Log(_))) {
                    flags |= abi::RULE_F_LOG;
                }
                (
                    u32_key(info.index),
                    rule_meta_bytes(info.action, flags, info.next),
                )
            })
            .collect(),
    });
    let mut region_meta = vec![(abi::NO_RULE, abi::NO_RULE); abi::MAX_REGIONS as usize];
    for r in &flat.regions {
        if let Some(slot) = region_meta.get_mut(r.slot() as usize) {
            *slot = (r.first, r.policy_position());
        }
    }
    maps.push(MapImage {
        name: abi::MAP_REGIONS,
        kind: MapKind::Array,
        key_size: 4,
        value_size: std::mem::size_of::<abi::RegionMeta>() as u32,
        max_entries: abi::MAX_REGIONS,
        entries: region_meta
            .iter()
            .enumerate()
            .map(|(i, &(first, policy))| {
                let mut v = first.to_le_bytes().to_vec();
                v.extend_from_slice(&policy.to_le_bytes());
                (u32_key(i as u32), v)
            })
            .collect(),
    });
    let mut ifaces = Vec::new();
    for &f in &p.stages {
        let Some(fc) = c.field(f) else { continue };
        // `refusals` admitted only fields with a datapath row.
        let Some(info) = f.info().datapath else {
            continue;
        };
        let table = match &fc.table {
            Table::Lpm(es) => MapImage {
                name: info.table_map,
                kind: MapKind::LpmTrie,
                key_size: info.table_key_size(),
                value_size: 4,
                max_entries: es.len().max(1) as u32,
                entries: es
                    .iter()
                    .map(|e| {
                        let mut k = (e.len as u32).to_le_bytes().to_vec();
                        // The address in network byte order, as wide as the row's key.
                        let be = e.addr.to_be_bytes();
                        k.extend_from_slice(&be[16 - (info.bits as usize / 8)..]);
                        (k, e.class.to_le_bytes().to_vec())
                    })
                    .collect(),
            },
            Table::Iface(t) => {
                ifaces.push(IfaceStage {
                    field: f,
                    table: t.clone(),
                });
                MapImage {
                    name: info.table_map,
                    kind: MapKind::Hash,
                    key_size: 4,
                    value_size: 4,
                    max_entries: info.table_entries(),
                    entries: vec![(
                        u32_key(0),
                        t.class_of_name("").unwrap_or(0).to_le_bytes().to_vec(),
                    )],
                }
            }
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

    // Rule ids are `r0..` in order of appearance (ir::verify), so a rule is found by its index.
    let by_id: Vec<Vec<&crate::ir::Rule>> = sets.iter().map(|rs| rs.rules().collect()).collect();
    let rules: Vec<RuleInfo> = origins
        .iter()
        .enumerate()
        .filter_map(|(i, &(set, id))| {
            let rs = sets[set];
            let r = by_id[set]
                .get(id.0 as usize)
                .copied()
                .filter(|r| r.id == id)
                .or_else(|| rs.rule(id))?;
            let chain_name = rs.chain(r.chain).map_or(String::new(), |c| c.name.clone());
            let text = r
                .matches
                .iter()
                .map(|m| DisplayMatch(m).to_string())
                .collect::<Vec<_>>()
                .join(" ");
            let action = DisplayAction(r.action, rs).to_string();
            let canonical = format!("{chain_name}\n{text}\n{action}");
            Some(RuleInfo {
                index: i as u32,
                id: r.id,
                chain: chain_name,
                position: r.position,
                chain_id: r.chain,
                action,
                text,
                comment: r.comment.clone(),
                identity: hex(&Sha256::digest(canonical.as_bytes())),
                log: match r.action {
                    Action::Log(l) => rs.log(l).cloned(),
                    _ => None,
                },
            })
        })
        .collect();
    let regions: Vec<RegionInfo> = flat
        .regions
        .iter()
        .map(|r| RegionInfo {
            slot: r.slot(),
            hook: r.hook,
            family: r.family,
            chain: r.chain,
            chain_name: r.hook.chain_name().to_string(),
            policy: r.policy,
            first: r.first,
            end: r.end,
            max_visits: r.max_visits,
        })
        .collect();
    let nvisits = regions
        .iter()
        .map(|r| r.max_visits)
        .max()
        .unwrap_or(1)
        .clamp(1, visit_bound(p.nchunks));
    let mut a = Artifact {
        abi_version: abi::ABI_VERSION,
        hook,
        globals: Globals {
            nchunks: p.nchunks,
            nstages: p.stages.len() as u32,
            nrules,
            nvisits,
        },
        stages: p.stages.clone(),
        maps,
        regions,
        positions,
        rules,
        ifaces,
        digest: String::new(),
    };
    a.digest = a.compute_digest();
    a
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
        let g = &self.globals;
        for v in [g.nchunks, g.nstages, g.nrules, g.nvisits] {
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
                MapKind::RingBuf => "ringbuf",
                MapKind::Hash => "hash",
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
        h.u32(self.regions.len() as u32);
        for r in &self.regions {
            h.u32(r.slot);
            h.str(r.hook.chain_name());
            h.str(r.family.as_str());
            h.u32(r.chain.map_or(u32::MAX, |c| c.0));
            h.str(&r.chain_name);
            h.str(r.policy.as_str());
            for v in [r.first, r.end, r.max_visits] {
                h.u32(v);
            }
        }
        h.u32(self.positions.len() as u32);
        for q in &self.positions {
            for v in [q.index, q.action, q.next] {
                h.u32(v);
            }
            match q.origin {
                PositionOrigin::Rule(i) => {
                    h.u32(0);
                    h.u32(i);
                }
                PositionOrigin::Policy(i) => {
                    h.u32(1);
                    h.u32(i);
                }
                PositionOrigin::FallOff => h.u32(2),
            }
        }
        // Hashed only when present, so digests of generations without interface stages stay those
        // of earlier releases.
        if !self.ifaces.is_empty() {
            h.str("ifaces");
            h.u32(self.ifaces.len() as u32);
        }
        for i in &self.ifaces {
            h.str(i.field.name());
            h.u32(i.table.keys.len() as u32);
            for k in &i.table.keys {
                h.str(&k.name);
                h.u32(u32::from(k.wildcard));
                h.u32(k.class);
            }
        }
        h.u32(self.rules.len() as u32);
        for r in &self.rules {
            for v in [r.index, r.id.0, r.position, r.chain_id.0] {
                h.u32(v);
            }
            h.str(&r.chain);
            h.str(&r.action);
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
                "tw_regions",
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
            (vec![1, 0, 0, 0], vec![2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0])
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
                // Two rules, INPUT's policy, and the policy-only FORWARD and OUTPUT regions.
                nrules: 5,
                nvisits: 1
            }
        );
        assert_eq!(
            a.regions
                .iter()
                .map(|r| (r.slot, r.first, r.end))
                .collect::<Vec<_>>(),
            vec![(0, 0, 3), (2, 3, 4), (4, 4, 5)]
        );
        assert_eq!(a.rules[1].text, "proto 6 dst_port 80");
    }

    #[test]
    fn nrules_over_datapath_limit_is_an_error() {
        let n = abi::MAX_CHUNKS as usize * abi::CHUNK_BITS + 1;
        let rs = input(vec![vec![]; n]);
        let e = build(&rs, Hook::Input).unwrap_err();
        assert!(
            matches!(&e, BuildError::Flatten(f) if f.rule.0 as usize == n - 1),
            "{e:?}"
        );
        assert_eq!(e.diagnostic().unwrap().code, "E0502");
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
