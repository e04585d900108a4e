//! The datapath model: runs an [`Artifact`]'s map images in userspace exactly as the eBPF programs do.
//!
//! [`Sim::new`] parses the images back (never the IR), checking what the kernel would otherwise find
//! out at run time (a class id without its vector, an LPM trie without `0.0.0.0/0`, a bit beyond the
//! rule count, sizes that disagree with the ABI types), so that [`Sim::run`] cannot fail.
//!
//! [`Sim::run`] mirrors the programs step by step:
//! - `tw_entry`: not IPv4 → pass (`NotIpv4`); malformed IPv4 → drop (`Malformed`); ports become the
//!   port-table index (the port, `PORT_ABSENT` or `PORT_TRUNCATED`);
//! - field stages in prog-array order: look the class up (LPM: longest prefix; arrays: the index), the
//!   first stage copies the class vector into the scratch, later stages AND it in; an all-zero scratch
//!   jumps straight to the final program;
//! - `tw_final`: first set bit → `tw_rules[bit]`; `RULE_F_NEEDS_L4` on a truncated packet → hotdrop;
//!   else the rule's action. No bit → the policy. Zero stages: every rule is a candidate (rule 0 wins
//!   when there is one).
//!
//! Thrown away: counters (the model has no per-CPU state).
use crate::artifact::{ranges, Artifact, MapImage, MapKind};
use crate::interp::{Decided, Outcome};
use crate::ir::{ChainId, Field, RuleId, Verdict};
use crate::packet::{Decoded, FieldValue, Ipv4Packet, Ports};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use tailwall_abi as abi;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SimError {
    #[error("artifact abi version {found}, this model runs {expected}")]
    AbiVersion { found: u32, expected: u32 },
    #[error("map `{0}` is missing from the artifact")]
    MissingMap(String),
    #[error("map `{map}`: {what}")]
    BadMap { map: String, what: String },
    #[error("globals disagree with the artifact: {0}")]
    Globals(String),
}

enum Lookups {
    /// `(len, addr → class)`, longest length first.
    Lpm(Vec<(u8, HashMap<u32, u32>)>),
    Array(Vec<u32>),
}

struct Stage {
    field: Field,
    table: Lookups,
    /// Class vectors, `nchunks * CHUNK_WORDS` words per class.
    vectors: Vec<u64>,
    nclasses: usize,
}

#[derive(Clone, Copy)]
struct RuleSlot {
    action: u32,
    flags: u32,
    chain: ChainId,
    id: RuleId,
    position: u32,
}

/// A parsed artifact, ready to classify packets.
pub struct Sim {
    nchunks: usize,
    policy: Verdict,
    chain: ChainId,
    stages: Vec<Stage>,
    rules: Vec<RuleSlot>,
}

fn bad(map: &str, what: impl Into<String>) -> SimError {
    SimError::BadMap {
        map: map.to_string(),
        what: what.into(),
    }
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn verdict_of(action: u32) -> Option<Verdict> {
    match action {
        abi::ACTION_ACCEPT => Some(Verdict::Accept),
        abi::ACTION_DROP => Some(Verdict::Drop),
        _ => None,
    }
}

fn find<'a>(a: &'a Artifact, name: &str) -> Result<&'a MapImage, SimError> {
    a.map(name)
        .ok_or_else(|| SimError::MissingMap(name.to_string()))
}

fn check_shape(m: &MapImage, kind: MapKind, key: usize, value: usize) -> Result<(), SimError> {
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
fn array_values(m: &MapImage) -> Result<Vec<&[u8]>, SimError> {
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

impl Sim {
    /// Parse and check an artifact's images.
    pub fn new(a: &Artifact) -> Result<Sim, SimError> {
        if a.abi_version != abi::ABI_VERSION {
            return Err(SimError::AbiVersion {
                found: a.abi_version,
                expected: abi::ABI_VERSION,
            });
        }
        let g = a.globals;
        let nchunks = g.nchunks as usize;
        if g.nchunks == 0 || g.nchunks > abi::MAX_CHUNKS {
            return Err(SimError::Globals(format!(
                "nchunks {} outside 1..={}",
                g.nchunks,
                abi::MAX_CHUNKS
            )));
        }
        if g.nstages as usize != a.stages.len() || g.nstages > abi::MAX_STAGES {
            return Err(SimError::Globals(format!(
                "nstages {} for {} stages",
                g.nstages,
                a.stages.len()
            )));
        }
        if g.nrules as usize > nchunks * abi::CHUNK_BITS {
            return Err(SimError::Globals(format!(
                "{} rules do not fit {nchunks} chunks",
                g.nrules
            )));
        }
        let policy = verdict_of(g.policy)
            .ok_or_else(|| SimError::Globals(format!("policy code {}", g.policy)))?;

        let rm = find(a, abi::MAP_RULES)?;
        check_shape(rm, MapKind::Array, 4, std::mem::size_of::<abi::RuleMeta>())?;
        if (rm.max_entries as usize) < g.nrules as usize || a.rules.len() != g.nrules as usize {
            return Err(bad(
                rm.name,
                format!(
                    "{} slots, {} rule infos for {} rules",
                    rm.max_entries,
                    a.rules.len(),
                    g.nrules
                ),
            ));
        }
        let metas = array_values(rm)?;
        let mut rules = Vec::with_capacity(a.rules.len());
        for (i, info) in a.rules.iter().enumerate() {
            let meta = metas[i];
            let action = le32(&meta[0..4]);
            if verdict_of(action).is_none() || info.index as usize != i {
                return Err(bad(
                    rm.name,
                    format!("rule {i}: action code {action}, info index {}", info.index),
                ));
            }
            rules.push(RuleSlot {
                action,
                flags: le32(&meta[4..8]),
                chain: info.chain_id,
                id: info.id,
                position: info.position,
            });
        }

        let mut stages = Vec::with_capacity(a.stages.len());
        for &field in &a.stages {
            let Some(info) = field.info().datapath else {
                return Err(SimError::Globals(format!(
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
                abi::TableKind::LpmV4 => {
                    check_shape(
                        tm,
                        MapKind::LpmTrie,
                        std::mem::size_of::<abi::LpmV4Key>(),
                        4,
                    )?;
                    let mut by_len: HashMap<u8, HashMap<u32, u32>> = HashMap::new();
                    for (k, v) in &tm.entries {
                        let len = le32(&k[0..4]);
                        let addr = u32::from_be_bytes([k[4], k[5], k[6], k[7]]);
                        if len > 32 || (len < 32 && addr & (u32::MAX >> len) != 0) {
                            return Err(bad(
                                tm.name,
                                format!("bad prefix {}/{len}", Ipv4Addr::from(addr)),
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
                            "no 0.0.0.0/0 entry: some addresses would miss",
                        ));
                    }
                    let mut v: Vec<(u8, HashMap<u32, u32>)> = by_len.into_iter().collect();
                    v.sort_by_key(|e| std::cmp::Reverse(e.0));
                    Lookups::Lpm(v)
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
                    Lookups::Array(
                        vals.into_iter()
                            .map(|b| check_class(le32(b)))
                            .collect::<Result<_, _>>()?,
                    )
                }
            };
            stages.push(Stage {
                field,
                table,
                vectors,
                nclasses,
            });
        }
        Ok(Sim {
            nchunks,
            policy,
            chain: a.chain.unwrap_or(ChainId(u32::MAX)),
            stages,
            rules,
        })
    }

    /// `RULE_F_*` flags of a rule (0 for an unknown index).
    pub fn rule_flags(&self, index: u32) -> u32 {
        self.rules.get(index as usize).map_or(0, |r| r.flags)
    }

    /// Decode and classify one Ethernet frame.
    pub fn run_frame(&self, frame: &[u8]) -> Outcome {
        self.run(&crate::packet::decode(frame))
    }

    /// Classify one decoded packet as the eBPF programs do.
    pub fn run(&self, pkt: &Decoded) -> Outcome {
        let p = match crate::interp::classified(pkt) {
            Ok(p) => p,
            Err(outcome) => return outcome,
        };
        let words = self.nchunks * abi::CHUNK_WORDS;
        let mut scratch = vec![0u64; words];
        let mut started = false;
        for s in &self.stages {
            let class = s.class_of(p) as usize;
            let v = &s.vectors[class * words..(class + 1) * words];
            if started {
                scratch.iter_mut().zip(v).for_each(|(a, b)| *a &= b);
            } else {
                scratch.copy_from_slice(v);
                started = true;
            }
            if scratch.iter().all(|&w| w == 0) {
                break;
            }
        }
        let first = if started {
            scratch
                .iter()
                .enumerate()
                .find(|(_, &w)| w != 0)
                .map(|(i, w)| i * 64 + w.trailing_zeros() as usize)
        } else {
            (!self.rules.is_empty()).then_some(0)
        };
        let Some(r) = first.and_then(|i| self.rules.get(i)) else {
            return Outcome {
                verdict: self.policy,
                decided: Decided::Policy { chain: self.chain },
            };
        };
        if r.flags & abi::RULE_F_NEEDS_L4 != 0 && p.ports == Ports::Truncated {
            return Outcome {
                verdict: Verdict::Drop,
                decided: Decided::Hotdrop {
                    chain: r.chain,
                    rule: r.id,
                    position: r.position,
                },
            };
        }
        Outcome {
            verdict: verdict_of(r.action).unwrap_or(Verdict::Drop),
            decided: Decided::Rule {
                chain: r.chain,
                rule: r.id,
                position: r.position,
            },
        }
    }

    /// Append the dump of one field's classes and table (see [`Artifact::dump`]).
    pub(crate) fn dump_field(&self, f: Field, o: &mut String) {
        let Some(s) = self.stages.iter().find(|s| s.field == f) else {
            return;
        };
        let words = self.nchunks * abi::CHUNK_WORDS;
        let _ = writeln!(o, "field {f} classes={}", s.nclasses);
        for c in 0..s.nclasses {
            let v = &s.vectors[c * words..(c + 1) * words];
            let ones = v.iter().enumerate().flat_map(|(i, &w)| {
                (0..64)
                    .filter(move |b| w >> b & 1 != 0)
                    .map(move |b| i * 64 + b)
            });
            let _ = writeln!(o, "  class {c} = {}", ranges(ones));
        }
        match &s.table {
            Lookups::Lpm(by_len) => {
                let mut es: Vec<(u32, u8, u32)> = by_len
                    .iter()
                    .flat_map(|(l, m)| m.iter().map(move |(&a, &c)| (a, *l, c)))
                    .collect();
                es.sort();
                for (a, l, c) in es {
                    let _ = writeln!(o, "  {}/{l} -> {c}", Ipv4Addr::from(a));
                }
            }
            Lookups::Array(t) => {
                let label = |i: usize| match i as u32 {
                    abi::PORT_ABSENT if t.len() == abi::PORT_TABLE_ENTRIES as usize => {
                        "absent".to_string()
                    }
                    abi::PORT_TRUNCATED if t.len() == abi::PORT_TABLE_ENTRIES as usize => {
                        "truncated".to_string()
                    }
                    _ => i.to_string(),
                };
                let values = if t.len() == abi::PORT_TABLE_ENTRIES as usize {
                    65536
                } else {
                    t.len()
                };
                let mut i = 0;
                while i < t.len() {
                    let mut j = i;
                    while j + 1 < values && i < values && t[j + 1] == t[i] {
                        j += 1;
                    }
                    if i == j {
                        let _ = writeln!(o, "  {} -> {}", label(i), t[i]);
                    } else {
                        let _ = writeln!(o, "  {}-{} -> {}", label(i), label(j), t[i]);
                    }
                    i = j + 1;
                }
            }
        }
    }
}

impl Stage {
    /// The class of the packet's value of this stage's field, looked up as the stage program does.
    /// The table's shape was checked against the field's row in `Sim::new`, so every value has a
    /// class (LPM: the trie holds 0.0.0.0/0; arrays: every index up to the sentinels exists).
    fn class_of(&self, p: &Ipv4Packet) -> u32 {
        let value = p.value(self.field);
        match &self.table {
            Lookups::Lpm(by_len) => {
                let FieldValue::Value(a) = value else {
                    unreachable!("an address is always present in an IPv4 packet")
                };
                by_len
                    .iter()
                    .find_map(|(l, m)| {
                        let masked = if *l == 0 {
                            0
                        } else {
                            a & (u32::MAX << (32 - *l as u32))
                        };
                        m.get(&masked).copied()
                    })
                    .expect("checked in Sim::new: the trie holds 0.0.0.0/0")
            }
            Lookups::Array(t) => t[value.table_index() as usize],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::build;
    use crate::diag::Span;
    use crate::interp;
    use crate::ir::{Action, Hook, Match, Ruleset, Test};
    use crate::packet::{build_frame, decode, l4_header};

    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

    fn m(field: Field, test: Test) -> Match {
        Match::single(field, test, false, Span::default())
    }
    fn input(rules: Vec<(Vec<Match>, Action)>) -> Ruleset {
        Ruleset::with_chain(Hook::Input, Verdict::Drop, rules)
    }
    fn tcp(src: [u8; 4], dport: u16) -> Vec<u8> {
        build_frame(
            MAC,
            MAC,
            src.into(),
            [10, 0, 0, 1].into(),
            6,
            0,
            &l4_header(6, 1000, dport, b""),
        )
    }
    fn ssh_rules() -> Ruleset {
        input(vec![
            (
                vec![m(
                    Field::SrcIp,
                    Test::Prefix {
                        addr: 0x0a00_0000,
                        len: 8,
                    },
                )],
                Action::Drop,
            ),
            (
                vec![
                    m(Field::Proto, Test::Exact(6)),
                    m(Field::DstPort, Test::Exact(22)),
                ],
                Action::Accept,
            ),
        ])
    }

    #[test]
    fn dst_port_truncated_header_hotdrops_at_first_l4_candidate() {
        let rs = ssh_rules();
        let sim = Sim::new(&build(&rs, Hook::Input).unwrap()).unwrap();
        let short = build_frame(
            MAC,
            MAC,
            [192, 0, 2, 1].into(),
            [10, 0, 0, 1].into(),
            6,
            0,
            &[0; 10],
        );
        let out = sim.run_frame(&short);
        assert_eq!(out.verdict, Verdict::Drop);
        assert_eq!(
            out.decided,
            Decided::Hotdrop {
                chain: ChainId(0),
                rule: RuleId(1),
                position: 2
            }
        );
        // A rule without a transport test comes first: it decides, no hotdrop.
        let from_ten = build_frame(
            MAC,
            MAC,
            [10, 1, 1, 1].into(),
            [10, 0, 0, 1].into(),
            6,
            0,
            &[0; 10],
        );
        assert_eq!(
            sim.run_frame(&from_ten).decided,
            Decided::Rule {
                chain: ChainId(0),
                rule: RuleId(0),
                position: 1
            }
        );
        for f in [
            short,
            from_ten,
            tcp([192, 0, 2, 1], 22),
            tcp([192, 0, 2, 1], 23),
        ] {
            assert_eq!(
                sim.run_frame(&f),
                interp::run(&rs, Hook::Input, &decode(&f))
            );
        }
    }

    #[test]
    fn src_ip_second_chunk_rule_decides() {
        // 600 rules: rule 550 sits in chunk 1.
        let rules = (0..600)
            .map(|i| {
                (
                    vec![m(
                        Field::SrcIp,
                        Test::Prefix {
                            addr: 0x0b00_0000 + i as u32,
                            len: 32,
                        },
                    )],
                    Action::Accept,
                )
            })
            .collect();
        let rs = input(rules);
        let a = build(&rs, Hook::Input).unwrap();
        assert_eq!(a.globals.nchunks, 2);
        let sim = Sim::new(&a).unwrap();
        let f = tcp([11, 0, 2, 38], 80); // 0x0b000226 = rule 550
        assert_eq!(
            sim.run_frame(&f).decided,
            Decided::Rule {
                chain: ChainId(0),
                rule: RuleId(550),
                position: 551
            }
        );
        assert_eq!(
            sim.run_frame(&tcp([11, 0, 3, 0], 80)).decided,
            Decided::Policy { chain: ChainId(0) }
        );
    }

    #[test]
    fn proto_zero_stages_rule_zero_wins() {
        let rs = input(vec![(vec![], Action::Accept), (vec![], Action::Drop)]);
        let a = build(&rs, Hook::Input).unwrap();
        assert_eq!(a.globals.nstages, 0);
        let out = Sim::new(&a).unwrap().run_frame(&tcp([1, 2, 3, 4], 5));
        assert_eq!(out.verdict, Verdict::Accept);
        assert_eq!(
            out.decided,
            Decided::Rule {
                chain: ChainId(0),
                rule: RuleId(0),
                position: 1
            }
        );
    }

    #[test]
    fn src_ip_tampered_images_are_rejected() {
        let a = build(&ssh_rules(), Hook::Input).unwrap();
        let edit = |f: &dyn Fn(&mut Artifact)| {
            let mut b = a.clone();
            f(&mut b);
            Sim::new(&b).err()
        };
        let map =
            |b: &mut Artifact, name: &str| b.maps.iter().position(|m| m.name == name).unwrap();
        // The LPM trie loses its default route.
        let e = edit(&|b| {
            let i = map(b, abi::SRC_IP.table_map);
            b.maps[i].entries.retain(|(k, _)| k[0] != 0);
        });
        assert!(matches!(e, Some(SimError::BadMap { .. })), "{e:?}");
        // A class id without a vector.
        let e = edit(&|b| {
            let i = map(b, abi::DST_PORT.table_map);
            b.maps[i].entries[22].1 = 99u32.to_le_bytes().to_vec();
        });
        assert!(matches!(e, Some(SimError::BadMap { .. })), "{e:?}");
        // A bit beyond the rule count.
        let e = edit(&|b| {
            let i = map(b, abi::PROTO.vector_map);
            b.maps[i].entries[0].1[0] |= 0x80;
        });
        assert!(matches!(e, Some(SimError::BadMap { .. })), "{e:?}");
        let e = edit(&|b| b.abi_version += 1);
        assert!(matches!(e, Some(SimError::AbiVersion { .. })), "{e:?}");
        let e = edit(&|b| b.globals.nstages = 7);
        assert!(matches!(e, Some(SimError::Globals(_))), "{e:?}");
        assert!(edit(&|_| {}).is_none());
    }
}
