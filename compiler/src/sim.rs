//! The datapath model: runs an [`Artifact`]'s map images in userspace exactly as the eBPF programs do.
//!
//! [`Sim::new`] runs the artifact contract ([`Layout::check`]: the images parsed back, never the IR,
//! and checked for what the kernel would otherwise find out at run time), so that [`Sim::run`] cannot
//! fail.
//!
//! [`Sim::run`] mirrors the programs step by step:
//! - `tw_entry`: neither IPv4 nor IPv6 → pass (`NotIpv4`); a frame of a family the artifact holds
//!   no region of → pass (`OtherFamily`, IPv6 unparsed; [`crate::interp::classified`]); malformed →
//!   drop (`Malformed`); the region is the hook's region of the packet's family (`hook * 2 +
//!   family`); ports become the port-table index (the port, `PORT_ABSENT` or `PORT_TRUNCATED`);
//!   the other family's address fields read 0;
//! - field stages in prog-array order: look the class up (LPM: longest prefix; arrays: the index;
//!   interfaces: the ifindex in the table filled from [`Sim::with_devices`], a miss drops with
//!   `REASON_NO_IFACE`), the
//!   first stage copies the class vector into the scratch, later stages AND it in; an all-zero scratch
//!   jumps straight to the final program;
//! - `tw_final`: the walk over the region's positions ([`crate::flatten`]): from the region's first
//!   position, the first set bit at or after `pos` (none before the policy position: the policy
//!   position) is visited: `RULE_F_NEEDS_L4` on a truncated packet → hotdrop; ACCEPT/DROP decide;
//!   CONTINUE (jump, goto, RETURN, goto fall-off) moves `pos` to `next`. At most `nvisits` visits, then
//!   a fail-closed drop (`REASON_BOUND`); a region the artifact does not hold drops
//!   (`REASON_NO_REGION`). Zero stages: every position is set.
//!
//! Thrown away: counters (the model has no per-CPU state).
use crate::artifact::Artifact;
use crate::interp::{Decided, Meta, Outcome};
use crate::ir::{Family, Field, Hook, Verdict};
use crate::layout::{verdict_of, Layout, LayoutError, SlotOrigin};
use crate::packet::Decoded;
use std::collections::HashMap;
use tailwall_abi as abi;

/// An artifact's images, checked and decoded ([`Layout::check`]), ready to classify packets.
pub struct Sim {
    layout: Layout,
    /// The devices the modelled loader saw when it filled the interface tables (`(ifindex, name)`).
    devices: Vec<(u32, String)>,
    /// Per stage (prog-array order): the interface table `tw_t_<field>` as the loader fills it from
    /// `devices` ([`crate::layout::StageLayout::iface_entries`]); empty for other stages.
    iface_tables: Vec<HashMap<u32, u32>>,
}

/// What [`Sim::new`] refuses: the artifact contract's error.
pub type SimError = LayoutError;

impl Sim {
    /// Check and decode an artifact's images ([`Layout::check`]).
    ///
    /// # Errors
    /// What [`Layout::check`] refuses.
    pub fn new(a: &Artifact) -> Result<Sim, LayoutError> {
        Ok(Sim::from_layout(Layout::check(a)?))
    }

    /// The model of an already checked layout, as loaded in a namespace without devices (the
    /// interface tables hold ifindex 0, "no device", only).
    pub fn from_layout(layout: Layout) -> Sim {
        Sim {
            layout,
            devices: Vec::new(),
            iface_tables: Vec::new(),
        }
        .with_devices(Vec::new())
    }

    /// The model loaded in a namespace whose devices are `devices` (`(ifindex, name)`, ifindex > 0,
    /// as `if_nameindex(3)` lists them): the interface tables are filled as the loader fills them.
    /// A packet's interface names ([`Meta`]) are resolved to ifindexes through `devices`; a name
    /// not among them is a device created after the generation was built.
    pub fn with_devices(mut self, devices: Vec<(u32, String)>) -> Sim {
        self.iface_tables = self
            .layout
            .stages
            .iter()
            .map(|s| s.iface_entries(&devices).into_iter().collect())
            .collect();
        self.devices = devices;
        self
    }

    /// The devices of [`Sim::with_devices`].
    pub fn devices(&self) -> &[(u32, String)] {
        &self.devices
    }

    /// The checked layout this model runs.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// `RULE_F_*` flags of a rule (0 for an unknown index).
    pub fn rule_flags(&self, index: u32) -> u32 {
        self.layout.rules.get(index as usize).map_or(0, |r| r.flags)
    }

    /// Decode and classify one Ethernet frame.
    pub fn run_frame(&self, frame: &[u8]) -> Outcome {
        self.run(&crate::packet::decode(frame))
    }

    /// Classify one decoded packet as the eBPF programs do at INPUT, in the region of the packet's
    /// family: what `tw_entry_in` judges; [`Sim::run_at`] for another hook.
    pub fn run(&self, pkt: &Decoded) -> Outcome {
        self.run_in(abi::REGION_INPUT_V4, pkt)
    }

    /// Does the artifact hold a region of `family` (at any hook)? `tw_entry`'s `family_held`.
    pub fn holds(&self, family: Family) -> bool {
        Hook::ALL.iter().any(|&h| {
            let slot = crate::flatten::region_slot(h, family) as usize;
            self.layout.regions.get(slot).copied().flatten().is_some()
        })
    }

    /// Classify one decoded packet as the eBPF programs do at `hook`, in the region of that hook and
    /// the packet's family ([`Sim::run_in`]).
    pub fn run_at(&self, hook: Hook, pkt: &Decoded) -> Outcome {
        self.run_in(crate::flatten::region_slot(hook, Family::V4), pkt)
    }

    /// Classify one decoded packet at the hook of region `region` (`tw_regions` index, `hook * 2 +
    /// family`; its family part is ignored): in the region of that hook and the packet's family, as
    /// the entry program picks it, the packet as that hook sees it (`IpPacket::at_hook`: FORWARD
    /// reads the decremented TTL, as the entry program writes it). A frame of a family the artifact
    /// holds nothing of passes ([`Decided::OtherFamily`]), as the family's empty table would. No
    /// interface (ifindex 0 for both).
    pub fn run_in(&self, region: u32, pkt: &Decoded) -> Outcome {
        self.run_with(region, &Meta::default(), pkt)
    }

    /// As [`Sim::run_in`], with the packet's interfaces: each name of `meta` the region's hook has
    /// ([`Meta::at_hook`]; no name: ifindex 0) is the ifindex of the device of that name among
    /// [`Sim::devices`]; a name without a device misses the interface table and the packet is
    /// dropped, `REASON_NO_IFACE`, when its stage is reached (as `tw_s_in_iface`).
    pub fn run_with(&self, region: u32, meta: &Meta, pkt: &Decoded) -> Outcome {
        self.run_logged(region, meta, pkt, &mut Vec::new())
    }

    /// [`Sim::run_with`], appending to `logs` the LOG/NFLOG positions the walk visited (`RULE_F_LOG`),
    /// in walk order, as log events of their rules: what the datapath writes to its ring buffer.
    pub fn run_logged(
        &self,
        region: u32,
        meta: &Meta,
        pkt: &Decoded,
        logs: &mut Vec<crate::interp::LogEvent>,
    ) -> Outcome {
        // `tw_entry`: the IPv4 header is always checked, IPv6 is parsed only under an IPv6 ruleset.
        let family = match pkt {
            Decoded::Ipv4(_) => Family::V4,
            Decoded::Ipv6(_) | Decoded::MalformedIpv6(_) | Decoded::ExtHeaderBound => Family::V6,
            _ => Family::V4,
        };
        let judged = match (self.holds(family), family) {
            (true, f) => f,
            (false, Family::V4) => Family::V6,
            (false, Family::V6) => Family::V4,
        };
        let p = match crate::interp::classified(pkt, judged) {
            Ok(p) => p,
            Err(outcome) => return outcome,
        };
        let Some(&hook) = Hook::ALL.get((region / 2) as usize) else {
            return fail_closed(abi::REASON_NO_REGION);
        };
        let meta = meta.at_hook(hook);
        // `None`: a device the tables do not know.
        let ifindex = |name: &Option<String>| match name {
            None => Some(0),
            Some(n) => self.devices.iter().find(|(_, d)| d == n).map(|&(i, _)| i),
        };
        let (in_ifindex, out_ifindex) = (ifindex(&meta.in_iface), ifindex(&meta.out_iface));
        let region = crate::flatten::region_slot(hook, family);
        let p = &p.at_hook(hook);
        let l = &self.layout;
        let words = l.nchunks * abi::CHUNK_WORDS;
        let mut scratch = vec![0u64; words];
        let mut started = false;
        for (i, s) in l.stages.iter().enumerate() {
            let class = match s.field {
                Field::InIface | Field::OutIface => {
                    let ifindex = if s.field == Field::InIface {
                        in_ifindex
                    } else {
                        out_ifindex
                    };
                    match ifindex.and_then(|x| self.iface_tables.get(i)?.get(&x)) {
                        Some(&c) => c,
                        None => return fail_closed(abi::REASON_NO_IFACE),
                    }
                }
                _ => s.class_of(p),
            };
            let v = s.vector(class as usize, l.nchunks);
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
        self.walk(region, &scratch, started, p.truncated(), logs)
    }

    /// `tw_final`'s walk over the stages' result (`scratch`, all set when no stage ran): from the
    /// region's first position, visit the first set bit at or after `pos` (the region's policy
    /// position when none is set before it); a rule testing the transport header on a truncated
    /// packet hotdrops; a terminal position decides; CONTINUE moves `pos` to its `next`. At most
    /// `nvisits` visits, then a counted drop (`REASON_BOUND`), as the kernel.
    fn walk(
        &self,
        region: u32,
        scratch: &[u64],
        started: bool,
        truncated: bool,
        logs: &mut Vec<crate::interp::LogEvent>,
    ) -> Outcome {
        let l = &self.layout;
        let Some(reg) = l.regions.get(region as usize).copied().flatten() else {
            return fail_closed(abi::REASON_NO_REGION);
        };
        let mut pos = reg.first as usize;
        for _ in 0..l.nvisits {
            let policy = reg.policy as usize;
            let cand = if !started {
                pos.min(policy)
            } else {
                first_set_from(scratch, pos, policy).unwrap_or(policy)
            };
            let Some(r) = l.rules.get(cand) else {
                return fail_closed(abi::REASON_MAP);
            };
            if r.flags & abi::RULE_F_NEEDS_L4 != 0 && truncated {
                if let SlotOrigin::Rule {
                    chain,
                    id,
                    position,
                } = r.origin
                {
                    return Outcome {
                        verdict: Verdict::Drop,
                        decided: Decided::Hotdrop {
                            chain,
                            rule: id,
                            position,
                        },
                    };
                }
            }
            if r.action == abi::ACTION_CONTINUE {
                if r.flags & abi::RULE_F_LOG != 0 {
                    if let SlotOrigin::Rule {
                        chain,
                        id,
                        position,
                    } = r.origin
                    {
                        logs.push(crate::interp::LogEvent {
                            chain,
                            rule: id,
                            position,
                        });
                    }
                }
                pos = r.next as usize;
                continue;
            }
            let verdict = verdict_of(r.action, r.next).unwrap_or(Verdict::Drop);
            let decided = match r.origin {
                SlotOrigin::Rule {
                    chain,
                    id,
                    position,
                } => Decided::Rule {
                    chain,
                    rule: id,
                    position,
                },
                SlotOrigin::Policy { chain } => Decided::Policy { chain },
                // Layout::check: fall-off positions always continue.
                SlotOrigin::FallOff => return fail_closed(abi::REASON_MAP),
            };
            return Outcome { verdict, decided };
        }
        fail_closed(abi::REASON_BOUND)
    }
}

/// The kernel's counted drop for `reason`.
fn fail_closed(reason: u32) -> Outcome {
    Outcome {
        verdict: Verdict::Drop,
        decided: Decided::FailClosed { reason },
    }
}

/// The first set bit at or after `from` and before `end`.
fn first_set_from(words: &[u64], from: usize, end: usize) -> Option<usize> {
    let mut w = from / 64;
    let mut x = words.get(w)? & (u64::MAX << (from % 64));
    loop {
        if x != 0 {
            let bit = w * 64 + x.trailing_zeros() as usize;
            return (bit < end).then_some(bit);
        }
        w += 1;
        if w * 64 >= end {
            return None;
        }
        x = *words.get(w)?;
    }
}

impl crate::outcome::Engine for Sim {
    fn name(&self) -> &'static str {
        "sim"
    }
    fn run_frame(&mut self, frame: &[u8]) -> Result<Outcome, crate::outcome::EngineError> {
        Ok(Sim::run_frame(self, frame))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::build;
    use crate::diag::Span;
    use crate::interp;
    use crate::ir::{Action, ChainId, Field, Hook, Match, RuleId, Ruleset, Test};
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
                            addr: (0x0b00_0000 + i as u32).into(),
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
