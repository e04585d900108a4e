//! The artifact contract: [`Layout::check`] validates an [`Artifact`] against the ABI once and decodes
//! its map images; `sim`, the text dump and the loader all consume the result, so no second copy of
//! the checks exists.
//!
//! Guarantees of a [`Layout`] (what the kernel would otherwise find out at run time):
//! - the ABI version is this build's; globals within the datapath's bounds (`nchunks` in
//!   `1..=MAX_CHUNKS`, `nstages = stages.len() <= MAX_STAGES`, positions fit the chunks, `nvisits` in
//!   `1..=MAX_VISITS`);
//! - every map image names a map of the object ([`object_maps`]: the fixed maps and two per row of the
//!   ABI's field table) with the ABI's key/value sizes, `max_entries > 0`, no more entries than that,
//!   every entry of the right size;
//! - every stage is a datapath field, at most once, with both of its maps; its table has the row's
//!   kind and size (LPM tries hold `0.0.0.0/0` and only masked prefixes; arrays have
//!   `table_entries()` entries; interface hash tables have `MAX_IFACES` entries, an
//!   [`Artifact::ifaces`] name partition with the root key `""` and sorted, unique keys, and hold
//!   exactly ifindex 0 with the empty name's class), every class has a vector, no vector sets a bit
//!   at or beyond the rule count;
//! - `tw_rules` holds a known action for every position and agrees with the position infos (numbered
//!   `0..nrules`); a CONTINUE position's `next` is greater than its own index and at most its region's
//!   policy position; every rule origin names a rule info;
//! - `tw_regions` has `MAX_REGIONS` entries and agrees with the region infos; the regions partition
//!   the positions in order, each ends in its policy position (terminal, origin: that region's
//!   policy), and no other position has a policy origin.
//!
//! Thrown away: the images' byte encoding (tables and vectors are decoded).
use crate::artifact::{Artifact, MapImage, MapKind, PositionOrigin};
use crate::ir::{ChainId, Field, RuleId, Verdict};
use crate::packet::{FieldValue, IpPacket};
use std::collections::HashMap;
use tailwall_abi as abi;

/// Why an artifact does not fit the datapath.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LayoutError {
    /// Built for another ABI.
    #[error("artifact abi version {found}, this build runs {expected}")]
    AbiVersion {
        /// The artifact's `abi_version`.
        found: u32,
        /// `tailwall_abi::ABI_VERSION` of this build.
        expected: u32,
    },
    /// A map the layout needs is not in the artifact.
    #[error("map `{0}` is missing from the artifact")]
    MissingMap(String),
    /// A map image is not what the ABI says.
    #[error("map `{map}`: {what}")]
    BadMap {
        /// The map's name.
        map: String,
        /// What is wrong with it (kind, sizes, an entry).
        what: String,
    },
    /// The globals or the stage list are inconsistent or out of bounds.
    #[error("globals disagree with the artifact: {0}")]
    Globals(String),
}

/// Every map of the eBPF object: (name, kind, key size, value size). The fixed maps, then the lookup
/// table and class vectors of every row of the ABI's field table.
pub fn object_maps() -> impl Iterator<Item = (&'static str, MapKind, u32, u32)> {
    use std::mem::size_of;
    let chunk = size_of::<abi::Chunk>() as u32;
    [
        (abi::MAP_PROGS, MapKind::ProgramArray, 4, 4),
        (abi::MAP_PROGS_TC, MapKind::ProgramArray, 4, 4),
        (
            abi::MAP_PKT,
            MapKind::PerCpuArray,
            4,
            size_of::<abi::PktCtx>() as u32,
        ),
        (abi::MAP_SCRATCH, MapKind::PerCpuArray, 4, chunk),
        (
            abi::MAP_REPLY_BUF,
            MapKind::PerCpuArray,
            4,
            size_of::<abi::ReplyBuf>() as u32,
        ),
        (
            abi::MAP_RULES,
            MapKind::Array,
            4,
            size_of::<abi::RuleMeta>() as u32,
        ),
        (
            abi::MAP_RULE_CNT,
            MapKind::PerCpuArray,
            4,
            size_of::<abi::Counter>() as u32,
        ),
        (
            abi::MAP_REASONS,
            MapKind::PerCpuArray,
            4,
            size_of::<abi::Counter>() as u32,
        ),
        (
            abi::MAP_DECISION,
            MapKind::PerCpuArray,
            4,
            size_of::<abi::Decision>() as u32,
        ),
        (
            abi::MAP_REGIONS,
            MapKind::Array,
            4,
            size_of::<abi::RegionMeta>() as u32,
        ),
        (abi::MAP_LOG, MapKind::RingBuf, 0, 0),
        (abi::MAP_LOG_LOST, MapKind::PerCpuArray, 4, 8),
        (
            abi::MAP_MONITOR,
            MapKind::Array,
            4,
            size_of::<abi::MonitorCfg>() as u32,
        ),
    ]
    .into_iter()
    .chain(abi::FIELDS.iter().flat_map(move |f| {
        let kind = match f.table {
            abi::TableKind::LpmV4 | abi::TableKind::LpmV6 => MapKind::LpmTrie,
            abi::TableKind::Array => MapKind::Array,
            abi::TableKind::Hash => MapKind::Hash,
        };
        [
            (f.table_map, kind, f.table_key_size(), 4),
            (f.vector_map, MapKind::Array, 4, chunk),
        ]
    }))
}

/// Every image names an object map, with its kind and sizes, and holds what its `max_entries` allows.
fn check_object_maps(a: &Artifact) -> Result<(), LayoutError> {
    for m in &a.maps {
        let Some((_, kind, k, v)) = object_maps().find(|(n, ..)| *n == m.name) else {
            return Err(bad(
                m.name,
                format!("not a map of abi {}", abi::ABI_VERSION),
            ));
        };
        if m.max_entries == 0 {
            return Err(bad(m.name, "max_entries 0"));
        }
        check_shape(m, kind, k as usize, v as usize)?;
    }
    Ok(())
}

/// A stage's lookup table, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StageTable {
    /// `(len, addr → class)`, longest length first; holds `0.0.0.0/0` (`::/0`). Addresses as the IR
    /// holds them (IPv4 zero-extended), host bits zero.
    Lpm(Vec<(u8, HashMap<u128, u32>)>),
    /// One class per table index ([`abi::FieldAbi::table_entries`] of them).
    Array(Vec<u32>),
    /// An interface stage's name partition (the loader fills the ifindex table from it:
    /// [`StageLayout::iface_entries`]).
    Iface(crate::classify::IfaceTable),
}

/// One field stage of the artifact, decoded and checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageLayout {
    /// The field the stage classifies.
    pub field: Field,
    /// The field's datapath row.
    pub row: &'static abi::FieldAbi,
    /// The lookup table (`tw_t_<field>`): value → class.
    pub table: StageTable,
    /// Class vectors, `nchunks * CHUNK_WORDS` words per class; no bit at or beyond the rule count.
    pub vectors: Vec<u64>,
    /// Classes of the table (`vectors.len() / (nchunks * CHUNK_WORDS)`).
    pub nclasses: usize,
}

/// What a position decides as (from the artifact's position and rule infos).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotOrigin {
    /// An IR rule: its own chain, id and 1-based position there.
    Rule {
        /// The rule's own chain.
        chain: ChainId,
        /// The rule's id.
        id: RuleId,
        /// Its 1-based index in `chain`.
        position: u32,
    },
    /// The policy of the built-in chain `chain` (`ChainId(u32::MAX)`: the ruleset has none).
    Policy {
        /// The built-in chain.
        chain: ChainId,
    },
    /// A goto fall-off (always CONTINUE).
    FallOff,
}

/// One position (`tw_rules[index]` plus what it counts for).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuleSlot {
    /// `ACTION_ACCEPT`, `ACTION_DROP`, `ACTION_REJECT` or `ACTION_CONTINUE` (checked).
    pub action: u32,
    /// `RULE_F_*` bits.
    pub flags: u32,
    /// For CONTINUE: where the walk continues (checked: after this position, within its region);
    /// for REJECT: the reply's kind (checked: a [`crate::ir::RejectWith::abi`] code).
    pub next: u32,
    /// What the position decides as.
    pub origin: SlotOrigin,
}

/// One region's bounds (`tw_regions[slot]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegionSlot {
    /// The region's first position (where a walk starts).
    pub first: u32,
    /// The policy position (the region's last).
    pub policy: u32,
}

/// An artifact checked against the ABI, its images decoded: what `sim`, the dump and the loader
/// consume (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Chunks per rule vector (1..=`MAX_CHUNKS`).
    pub nchunks: usize,
    /// Most positions one walk visits (`1..=MAX_VISITS`).
    pub nvisits: u32,
    /// In prog-array order.
    pub stages: Vec<StageLayout>,
    /// Indexed by position.
    pub rules: Vec<RuleSlot>,
    /// Indexed by region slot (`hook * 2 + family`), `MAX_REGIONS` of them; `None`: not compiled.
    pub regions: Vec<Option<RegionSlot>>,
}

fn bad(map: &str, what: impl Into<String>) -> LayoutError {
    LayoutError::BadMap {
        map: map.to_string(),
        what: what.into(),
    }
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// The verdict of an `ACTION_*` code and its position's `next` (a REJECT's kind,
/// [`crate::ir::RejectWith::abi`]); `None` for CONTINUE, codes the ABI does not define, and a
/// REJECT kind no [`crate::ir::RejectWith`] has.
pub fn verdict_of(action: u32, next: u32) -> Option<Verdict> {
    match action {
        abi::ACTION_ACCEPT => Some(Verdict::Accept),
        abi::ACTION_DROP => Some(Verdict::Drop),
        abi::ACTION_REJECT => crate::ir::RejectWith::from_abi(next).map(Verdict::Reject),
        _ => None,
    }
}

fn find<'a>(a: &'a Artifact, name: &str) -> Result<&'a MapImage, LayoutError> {
    a.map(name)
        .ok_or_else(|| LayoutError::MissingMap(name.to_string()))
}

fn check_shape(m: &MapImage, kind: MapKind, key: usize, value: usize) -> Result<(), LayoutError> {
    if m.kind != kind || m.key_size as usize != key || m.value_size as usize != value {
        return Err(bad(
            m.name,
            format!(
                "expected {kind:?} key {key} value {value}, found {:?} key {} value {}",
                m.kind, m.key_size, m.value_size
            ),
        ));
    }
    if m.entries.len() > m.max_entries as usize {
        return Err(bad(
            m.name,
            format!(
                "{} entries exceed max_entries {}",
                m.entries.len(),
                m.max_entries
            ),
        ));
    }
    for (k, v) in &m.entries {
        if k.len() != key || v.len() != value {
            return Err(bad(m.name, "entry with the wrong key or value size"));
        }
    }
    Ok(())
}

/// An array image as a dense vector of values (missing entries are zero, as in a kernel array).
fn array_values(m: &MapImage) -> Result<Vec<&[u8]>, LayoutError> {
    let zero: &'static [u8] = &[0u8; 64];
    let vs = m.value_size as usize;
    if vs > zero.len() {
        return Err(bad(m.name, "value too large for an array image"));
    }
    let mut out = vec![&zero[..vs]; m.max_entries as usize];
    for (k, v) in &m.entries {
        let i = le32(k) as usize;
        match out.get_mut(i) {
            Some(slot) => *slot = v,
            None => {
                return Err(bad(
                    m.name,
                    format!("key {i} beyond max_entries {}", m.max_entries),
                ))
            }
        }
    }
    Ok(out)
}

impl Layout {
    /// Check an artifact against the ABI and decode its images (see the module docs).
    ///
    /// # Errors
    /// The first fault found: ABI version, globals out of the datapath's bounds, a map the ABI does not
    /// have or with the wrong kind/sizes, a class without a vector, an LPM trie without `0.0.0.0/0`, a
    /// bit at or beyond the rule count, a stage twice or without its maps.
    pub fn check(a: &Artifact) -> Result<Layout, LayoutError> {
        if a.abi_version != abi::ABI_VERSION {
            return Err(LayoutError::AbiVersion {
                found: a.abi_version,
                expected: abi::ABI_VERSION,
            });
        }
        let g = a.globals;
        let nchunks = g.nchunks as usize;
        if g.nchunks == 0 || g.nchunks > abi::MAX_CHUNKS {
            return Err(LayoutError::Globals(format!(
                "nchunks {} outside 1..={}",
                g.nchunks,
                abi::MAX_CHUNKS
            )));
        }
        if g.nstages as usize != a.stages.len() || g.nstages > abi::MAX_STAGES {
            return Err(LayoutError::Globals(format!(
                "nstages {} for {} stages",
                g.nstages,
                a.stages.len()
            )));
        }
        if g.nrules as usize > nchunks * abi::CHUNK_BITS {
            return Err(LayoutError::Globals(format!(
                "{} rules do not fit {nchunks} chunks",
                g.nrules
            )));
        }
        for (i, f) in a.stages.iter().enumerate() {
            if a.stages[..i].contains(f) {
                return Err(LayoutError::Globals(format!("stage {f} appears twice")));
            }
        }
        check_object_maps(a)?;
        if g.nvisits == 0 || g.nvisits > abi::MAX_VISITS {
            return Err(LayoutError::Globals(format!(
                "nvisits {} outside 1..={}",
                g.nvisits,
                abi::MAX_VISITS
            )));
        }

        let rm = find(a, abi::MAP_RULES)?;
        check_shape(rm, MapKind::Array, 4, std::mem::size_of::<abi::RuleMeta>())?;
        if (rm.max_entries as usize) < g.nrules as usize || a.positions.len() != g.nrules as usize {
            return Err(bad(
                rm.name,
                format!(
                    "{} slots, {} position infos for {} positions",
                    rm.max_entries,
                    a.positions.len(),
                    g.nrules
                ),
            ));
        }
        let metas = array_values(rm)?;
        // Regions: the image agrees with the infos, and they partition the positions in order.
        let gm = find(a, abi::MAP_REGIONS)?;
        check_shape(
            gm,
            MapKind::Array,
            4,
            std::mem::size_of::<abi::RegionMeta>(),
        )?;
        if gm.max_entries != abi::MAX_REGIONS {
            return Err(bad(gm.name, format!("max_entries {}", gm.max_entries)));
        }
        let regions: Vec<Option<RegionSlot>> = array_values(gm)?
            .iter()
            .map(|v| {
                let (first, policy) = (le32(&v[0..4]), le32(&v[4..8]));
                (first != abi::NO_RULE).then_some(RegionSlot { first, policy })
            })
            .collect();
        let mut region_of = vec![usize::MAX; g.nrules as usize];
        let mut expect_first = 0u32;
        let mut seen = vec![false; abi::MAX_REGIONS as usize];
        for (k, r) in a.regions.iter().enumerate() {
            let slot = regions.get(r.slot as usize).copied().flatten();
            if slot
                != Some(RegionSlot {
                    first: r.first,
                    policy: r.end.wrapping_sub(1),
                })
                || r.first != expect_first
                || r.end <= r.first
                || seen[r.slot as usize]
            {
                return Err(bad(
                    gm.name,
                    format!(
                        "region {k} (slot {}, positions {}..{}) disagrees with the image or does not follow position {expect_first}",
                        r.slot, r.first, r.end
                    ),
                ));
            }
            seen[r.slot as usize] = true;
            for p in r.first..r.end.min(g.nrules) {
                region_of[p as usize] = k;
            }
            expect_first = r.end;
        }
        if expect_first != g.nrules
            || regions
                .iter()
                .enumerate()
                .any(|(i, r)| r.is_some() != seen[i])
        {
            return Err(bad(
                gm.name,
                format!(
                    "regions cover {expect_first} of {} positions, or the image holds a region without info",
                    g.nrules
                ),
            ));
        }
        let mut rules = Vec::with_capacity(a.positions.len());
        for (i, info) in a.positions.iter().enumerate() {
            let meta = metas[i];
            let (action, flags, next) = (le32(&meta[0..4]), le32(&meta[4..8]), le32(&meta[8..12]));
            let k = region_of[i];
            let region = &a.regions[k];
            let policy_pos = region.end - 1;
            let fault = |what: String| bad(rm.name, format!("position {i}: {what}"));
            if info.index as usize != i || info.action != action || info.next != next {
                return Err(fault(format!(
                    "image (action {action}, next {next}) disagrees with info {info:?}"
                )));
            }
            let origin = match info.origin {
                PositionOrigin::Policy(r) if r as usize == k && i as u32 == policy_pos => {
                    SlotOrigin::Policy {
                        chain: region.chain.unwrap_or(ChainId(u32::MAX)),
                    }
                }
                PositionOrigin::Rule(r) if (i as u32) < policy_pos => {
                    let Some(ri) = a.rules.get(r as usize).filter(|ri| ri.index == r) else {
                        return Err(fault(format!("rule info {r} missing")));
                    };
                    SlotOrigin::Rule {
                        chain: ri.chain_id,
                        id: ri.id,
                        position: ri.position,
                    }
                }
                PositionOrigin::FallOff if (i as u32) < policy_pos => SlotOrigin::FallOff,
                o => {
                    return Err(fault(format!(
                        "origin {o:?} in region {k} whose policy position is {policy_pos}"
                    )))
                }
            };
            let log = flags & abi::RULE_F_LOG != 0;
            let ok = match (action, origin) {
                // A LOG position continues at the next position, and is a rule's.
                _ if log
                    && !(action == abi::ACTION_CONTINUE
                        && next == i as u32 + 1
                        && matches!(origin, SlotOrigin::Rule { .. })) =>
                {
                    false
                }
                (abi::ACTION_CONTINUE, SlotOrigin::Policy { .. }) => false,
                (abi::ACTION_CONTINUE, _) => next > i as u32 && next <= policy_pos,
                (_, SlotOrigin::FallOff) => false,
                (abi::ACTION_REJECT, SlotOrigin::Policy { .. }) => false,
                (abi::ACTION_REJECT, _) => verdict_of(action, next).is_some(),
                (a, _) => verdict_of(a, next).is_some() && next == 0,
            };
            if !ok {
                return Err(fault(format!(
                    "action code {action} next {next} ({origin:?}, region ends at {policy_pos})"
                )));
            }
            rules.push(RuleSlot {
                action,
                flags,
                next,
                origin,
            });
        }

        let mut stages = Vec::with_capacity(a.stages.len());
        for &field in &a.stages {
            let Some(info) = field.info().datapath else {
                return Err(LayoutError::Globals(format!(
                    "stage {field}: the datapath has no stage for this field"
                )));
            };
            let vm = find(a, info.vector_map)?;
            check_shape(vm, MapKind::Array, 4, std::mem::size_of::<abi::Chunk>())?;
            let nclasses = vm.max_entries as usize / nchunks;
            let words_per = nchunks * abi::CHUNK_WORDS;
            let mut vectors = vec![0u64; nclasses * words_per];
            for (k, v) in &vm.entries {
                let key = le32(k) as usize;
                if key >= nclasses * nchunks {
                    return Err(bad(
                        vm.name,
                        format!("key {key} beyond {nclasses} classes of {nchunks} chunks"),
                    ));
                }
                for w in 0..abi::CHUNK_WORDS {
                    let b = &v[w * 8..w * 8 + 8];
                    let word = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
                    let bit0 = (key % nchunks) * abi::CHUNK_BITS + w * 64;
                    let stray = if bit0 >= g.nrules as usize {
                        word
                    } else if bit0 + 64 > g.nrules as usize {
                        word >> (g.nrules as usize - bit0)
                    } else {
                        0
                    };
                    if stray != 0 {
                        return Err(bad(
                            vm.name,
                            format!("key {key} sets bits at or beyond rule count {}", g.nrules),
                        ));
                    }
                    vectors[key * abi::CHUNK_WORDS + w] = word;
                }
            }
            let tm = find(a, info.table_map)?;
            let check_class = |c: u32| {
                if (c as usize) < nclasses {
                    Ok(c)
                } else {
                    Err(bad(
                        tm.name,
                        format!("class {c} has no vector ({nclasses} classes)"),
                    ))
                }
            };
            let table = match info.table {
                abi::TableKind::LpmV4 | abi::TableKind::LpmV6 => {
                    check_shape(tm, MapKind::LpmTrie, info.table_key_size() as usize, 4)?;
                    let bits = info.bits;
                    let mut by_len: HashMap<u8, HashMap<u128, u32>> = HashMap::new();
                    for (k, v) in &tm.entries {
                        let len = le32(&k[0..4]);
                        let addr = k[4..].iter().fold(0u128, |a, &b| a << 8 | u128::from(b));
                        let host = if len >= bits {
                            0
                        } else {
                            u128::MAX >> (128 - (bits - len))
                        };
                        if len > bits || addr & host != 0 {
                            return Err(bad(
                                tm.name,
                                format!("bad prefix {}/{len}", crate::ir::DisplayAddr(addr, field)),
                            ));
                        }
                        by_len
                            .entry(len as u8)
                            .or_default()
                            .insert(addr, check_class(le32(v))?);
                    }
                    if !by_len.get(&0).is_some_and(|m| m.contains_key(&0)) {
                        return Err(bad(
                            tm.name,
                            "no 0.0.0.0/0 (::/0) entry: some addresses would miss",
                        ));
                    }
                    let mut v: Vec<(u8, HashMap<u128, u32>)> = by_len.into_iter().collect();
                    v.sort_by_key(|e| std::cmp::Reverse(e.0));
                    StageTable::Lpm(v)
                }
                abi::TableKind::Hash => {
                    check_shape(tm, MapKind::Hash, 4, 4)?;
                    if tm.max_entries != info.table_entries() {
                        return Err(bad(
                            tm.name,
                            format!(
                                "max_entries {} instead of {}",
                                tm.max_entries,
                                info.table_entries()
                            ),
                        ));
                    }
                    let Some(names) = a.ifaces.iter().find(|i| i.field == field) else {
                        return Err(bad(tm.name, "no interface-name partition in the artifact"));
                    };
                    let keys = &names.table.keys;
                    if !keys
                        .windows(2)
                        .all(|w| (&w[0].name, w[0].wildcard) < (&w[1].name, w[1].wildcard))
                    {
                        return Err(bad(tm.name, "interface keys not sorted and unique"));
                    }
                    if !keys.iter().any(|k| k.name.is_empty() && k.wildcard) {
                        return Err(bad(
                            tm.name,
                            "no root key `+`: some names would have no class",
                        ));
                    }
                    for k in keys {
                        check_class(k.class)?;
                    }
                    let none = names.table.class_of_name("").unwrap_or(u32::MAX);
                    let want = vec![(0u32.to_le_bytes().to_vec(), none.to_le_bytes().to_vec())];
                    if tm.entries != want {
                        return Err(bad(
                            tm.name,
                            "the image must hold ifindex 0 (no device) with the empty name's class, and nothing else",
                        ));
                    }
                    StageTable::Iface(names.table.clone())
                }
                abi::TableKind::Array => {
                    check_shape(tm, MapKind::Array, 4, 4)?;
                    let want = info.table_entries();
                    if tm.max_entries != want {
                        return Err(bad(
                            tm.name,
                            format!("max_entries {} instead of {want}", tm.max_entries),
                        ));
                    }
                    let vals = array_values(tm)?;
                    StageTable::Array(
                        vals.into_iter()
                            .map(|b| check_class(le32(b)))
                            .collect::<Result<_, _>>()?,
                    )
                }
            };
            stages.push(StageLayout {
                field,
                row: info,
                table,
                vectors,
                nclasses,
            });
        }
        Ok(Layout {
            nchunks,
            nvisits: g.nvisits,
            stages,
            rules,
            regions,
        })
    }
}

impl StageLayout {
    /// The class of the packet's value of this stage's field, looked up as the stage program does.
    /// [`Layout::check`] checked the table against the field's row, so every value has a class (LPM:
    /// the trie holds 0.0.0.0/0; arrays: every value and, for transport fields, both sentinels).
    pub fn class_of(&self, p: &IpPacket) -> u32 {
        let value = p.value(self.field);
        match &self.table {
            StageTable::Lpm(by_len) => {
                // The other family's address is absent from the packet; the entry program leaves
                // its `PktCtx` member zero, so the stage looks up the address 0.
                let a = match value {
                    FieldValue::Value(a) => a,
                    FieldValue::Absent | FieldValue::Truncated => 0,
                };
                let bits = self.row.bits;
                by_len
                    .iter()
                    .find_map(|(l, m)| {
                        let l = u32::from(*l);
                        let masked = if l == 0 {
                            0
                        } else {
                            a & ((u128::MAX >> (128 - l)) << (bits - l))
                        };
                        m.get(&masked).copied()
                    })
                    .expect("checked in Layout::check: the trie holds 0.0.0.0/0")
            }
            StageTable::Array(t) => t[value.table_index() as usize],
            // A packet without interface metadata: the class of the empty name (no device), which
            // the image holds at ifindex 0. Engines with interfaces use [`Self::iface_entries`].
            StageTable::Iface(t) => t.class_of_name("").unwrap_or(0),
        }
    }
    /// The entries the loader writes into an interface stage's `tw_t_<field>`: ifindex 0 (no device)
    /// and every device of `devices` (`(ifindex, name)`, the network namespace's, as
    /// `if_nameindex(3)` lists them) with its name's class. Empty for other stages. The one
    /// definition shared by the loader and `sim`.
    pub fn iface_entries(&self, devices: &[(u32, String)]) -> Vec<(u32, u32)> {
        let StageTable::Iface(t) = &self.table else {
            return Vec::new();
        };
        let class = |n: &str| t.class_of_name(n).unwrap_or(0);
        std::iter::once((0, class("")))
            .chain(
                devices
                    .iter()
                    .filter(|(i, _)| *i != 0)
                    .map(|(i, n)| (*i, class(n))),
            )
            .collect()
    }
    /// The vector of class `class` (`nchunks * CHUNK_WORDS` words).
    pub fn vector(&self, class: usize, nchunks: usize) -> &[u64] {
        let words = nchunks * abi::CHUNK_WORDS;
        &self.vectors[class * words..(class + 1) * words]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::build;
    use crate::diag::Span;
    use crate::ir::{Action, Hook, Match, Ruleset, Test};

    fn artifact() -> Artifact {
        let rs = Ruleset::with_chain(
            Hook::Input,
            Verdict::Drop,
            [(
                vec![
                    Match::single(Field::Proto, Test::Exact(6), false, Span::default()),
                    Match::single(Field::DstPort, Test::Exact(22), false, Span::default()),
                ],
                Action::Accept,
            )],
        );
        build(&rs, Hook::Input).unwrap()
    }

    #[test]
    fn built_artifact_fits_and_every_image_is_an_object_map() {
        let a = artifact();
        let l = Layout::check(&a).unwrap();
        assert_eq!(l.stages.len(), 2);
        assert_eq!(l.rules.len(), 4); // the rule, INPUT's policy, FORWARD's and OUTPUT's
        for m in &a.maps {
            assert!(object_maps().any(|(n, k, ..)| n == m.name && k == m.kind));
        }
    }

    #[test]
    fn loader_side_faults_are_refused() {
        let a = artifact();
        let edit = |f: &dyn Fn(&mut Artifact)| {
            let mut b = a.clone();
            f(&mut b);
            Layout::check(&b).unwrap_err()
        };
        let e = edit(&|b| b.maps[0].name = "tw_nope");
        assert!(matches!(e, LayoutError::BadMap { .. }), "{e:?}");
        let e = edit(&|b| b.maps.last_mut().unwrap().max_entries = 0);
        assert!(matches!(e, LayoutError::BadMap { .. }), "{e:?}");
        let e = edit(&|b| {
            b.stages[1] = b.stages[0];
        });
        assert!(matches!(e, LayoutError::Globals(_)), "{e:?}");
        let e = edit(&|b| b.globals.nvisits = 0);
        assert!(matches!(e, LayoutError::Globals(_)), "{e:?}");
        let e = edit(&|b| b.abi_version += 1);
        assert!(matches!(e, LayoutError::AbiVersion { .. }), "{e:?}");
    }
}
