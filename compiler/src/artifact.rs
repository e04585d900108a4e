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
use crate::ir::{Field, Hook, RuleId, Verdict};
use serde::Serialize;

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
