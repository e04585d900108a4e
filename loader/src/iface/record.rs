//! Records: what userspace must remember about a generation that the kernel cannot tell (its rules,
//! digest, source), written root-only (0600) before the generation is pinned, so that a crash at any
//! later point leaves a record for every pinned generation. Which generation is live is never read from
//! here: the kernel says it (see `reconcile`).
use serde::{Deserialize, Serialize};
use std::path::Path;
use tailwall_compiler::artifact::Artifact;

use super::paths::{read_nofollow, write_atomic, Paths};
use crate::{error::IfaceError, mode::Mode};

/// Version of the record format.
pub const RECORD_SCHEMA: u32 = 4;

/// One rule as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateRule {
    /// Index in [`State::rules`] (what [`State::positions`] refer to).
    pub index: u32,
    /// The chain the rule was written in.
    pub chain: String,
    /// 1-based position in its chain.
    pub position: u32,
    /// The action in the IR dump's spelling: `accept`, `drop`, `jump web`, `goto web`, `return`.
    pub verdict: String,
    /// The rule's text as written.
    pub text: String,
    /// `-m comment` / `comment:`.
    pub comment: Option<String>,
    /// Stable identity (counters follow it across a swap).
    pub identity: String,
    /// A LOG/NFLOG rule's parameters: what `tailwall log` prints the rule's records with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<tailwall_compiler::ir::LogSpec>,
}

/// The record of one generation (`/run/tailwall/<netns>/<iface>/gen-N.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub schema_version: u32,
    pub iface: String,
    pub ifindex: u32,
    /// Inode of the network namespace.
    pub netns: String,
    pub mode: Mode,
    pub generation: u64,
    /// Digest of the artifact (sha256).
    pub digest: String,
    /// `accept` or `drop`.
    pub policy: String,
    /// One per rule with a position, in ruleset order.
    pub rules: Vec<StateRule>,
    /// Per position (`tw_rule_cnt` slot): the index in `rules` it counts for, or `u32::MAX` (a
    /// policy or goto fall-off position). Empty in records of schema 2 and older, whose positions
    /// were the rules themselves.
    #[serde(default)]
    pub positions: Vec<u32>,
    /// The policy positions (`tw_rule_cnt` slots) and the built-in chain each one's count belongs to
    /// (`INPUT`, `FORWARD`, `OUTPUT`: one per compiled region), what `stats` shows on the chain's
    /// `Chain X (policy P n packets, m bytes)` line. Empty in records of schema 3 and older, whose
    /// policy packets `stats` can only show on the attached hook's chain (`tw_reasons[REASON_POLICY]`).
    #[serde(default)]
    pub policy_positions: Vec<PolicyPosition>,
    /// The rules file this generation was compiled from, as given on the command line.
    #[serde(default)]
    pub source: Option<String>,
    /// The rules file's text (root-only: it is the whole ruleset).
    #[serde(default)]
    pub source_text: Option<String>,
    /// Its rule language: `iptables` or `yaml`.
    #[serde(default)]
    pub source_format: Option<String>,
    /// When it was built, seconds since the Unix epoch.
    #[serde(default)]
    pub applied_at: u64,
    /// The generation that was live when this one was built (its counters are carried).
    #[serde(default)]
    pub carried_from: Option<u64>,
}

impl State {
    /// The record of generation `n` of `artifact` on `paths`' interface.
    pub(crate) fn new(
        paths: &Paths,
        ifindex: u32,
        mode: Mode,
        n: u64,
        artifact: &Artifact,
        source: &Source,
        carried_from: Option<u64>,
    ) -> State {
        State {
            schema_version: RECORD_SCHEMA,
            iface: paths.iface.clone(),
            ifindex,
            netns: paths.netns.clone(),
            mode,
            generation: n,
            digest: artifact.digest.clone(),
            // The attached hook's region of the first family held (one ruleset per generation is
            // attached today: `compile --v6 --attach` is refused).
            policy: artifact
                .regions
                .iter()
                .find(|r| r.hook == artifact.hook)
                .map_or("accept", |r| r.policy.as_str())
                .to_string(),
            positions: artifact
                .positions
                .iter()
                .map(|p| match p.origin {
                    tailwall_compiler::artifact::PositionOrigin::Rule(i) => i,
                    _ => u32::MAX,
                })
                .collect(),
            policy_positions: artifact
                .regions
                .iter()
                .map(|r| PolicyPosition {
                    position: r.end - 1,
                    chain: r.hook.chain_name().to_string(),
                })
                .collect(),
            rules: artifact
                .rules
                .iter()
                .map(|r| StateRule {
                    index: r.index,
                    chain: r.chain.clone(),
                    position: r.position,
                    verdict: r.action.clone(),
                    text: r.text.clone(),
                    comment: r.comment.clone(),
                    identity: r.identity.clone(),
                    log: r.log.clone(),
                })
                .collect(),
            source: source.path.clone(),
            source_text: source.text.clone(),
            source_format: source.format.clone(),
            applied_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            carried_from,
        }
    }
}

/// A region's policy position in a generation's record ([`State::policy_positions`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyPosition {
    /// `tw_rule_cnt` slot (the region's last position, `RegionInfo::end - 1`).
    pub position: u32,
    /// The built-in chain whose policy it is (`INPUT`, `FORWARD`, `OUTPUT`).
    pub chain: String,
}

/// Where a ruleset came from (recorded for `status` and `show`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Source {
    /// The path given on the command line.
    pub path: Option<String>,
    /// The file's text.
    pub text: Option<String>,
    /// Its rule language: `iptables` or `yaml`.
    pub format: Option<String>,
}

/// Counters carried into a generation from the one it replaced: added to its own maps' counts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Carry {
    /// `[packets, bytes]` by rule index ([`State::rules`]) of this generation.
    pub rules: Vec<[u64; 2]>,
    /// `[packets, bytes]` by `tw_reasons` slot.
    pub reasons: Vec<[u64; 2]>,
    /// `[packets, bytes]` of each built-in chain's policy ([`State::policy_positions`]), by chain name
    /// (a policy is the same chain's policy in the next generation).
    #[serde(default)]
    pub policies: std::collections::BTreeMap<String, [u64; 2]>,
}

/// A `--confirm` waiting for `tailwall confirm` (`confirm.json`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// The generation that reverts unless confirmed.
    pub generation: u64,
    /// Deadline, seconds since the Unix epoch.
    pub deadline: u64,
    /// The timer process (its liveness is read from its lock, see `confirm`).
    #[serde(default)]
    pub timer_pid: Option<u32>,
}

pub(crate) fn read_json<T: serde::de::DeserializeOwned>(
    path: &Path,
) -> Result<Option<T>, IfaceError> {
    match read_nofollow(path)? {
        None => Ok(None),
        Some(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|source| IfaceError::Record {
                path: path.to_path_buf(),
                source,
            }),
    }
}

pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), IfaceError> {
    write_atomic(
        path,
        &serde_json::to_vec_pretty(value).expect("records serialise"),
    )
}
