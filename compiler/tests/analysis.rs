//! The analysis engine against ground truth, on generated pairs of rulesets.
//!
//! Ground truth is a brute-force oracle independent of the engine's search: the rulesets' tests cut
//! every field into elementary intervals, so one value per interval (and per interface class, per
//! transport state) is every packet there is to tell apart; `interp` runs each through both rulesets.
//!
//! Pairs: semantics-preserving rewrites (must be equivalent) and single mutations (the oracle says
//! whether they changed anything). For every pair: the engine's answer equals the oracle's, and every
//! counterexample replayed through `interp` gives exactly the outcomes the engine printed.
//! `ANALYSIS_PAIRS` (default 600) sets the number of base rulesets' pair batches' size, `ANALYSIS_SEED`
//! the seed.
use std::collections::BTreeSet;
use tailwall_compiler::analysis::{self, space::IfaceAtoms, Witness};
use tailwall_compiler::diag::SourceFile;
use tailwall_compiler::interp::{self, Meta};
use tailwall_compiler::ir::Family;
use tailwall_compiler::ir::{Field, Hook, Ruleset, Test, Verdict};
use tailwall_compiler::packet::{Decoded, IpPacket, Ports};
use tailwall_compiler::testgen::{
    self,
    pairs::{mutations, rewrites},
    RulesetOpts,
};

/// Every packet worth trying: one value per elementary interval of every field.
fn atoms(rulesets: &[&Ruleset], hook: Hook) -> Vec<(IpPacket, Meta)> {
    let points = |f: Field| -> Vec<u32> {
        let mut p: BTreeSet<u64> = BTreeSet::from([0]);
        for rs in rulesets {
            for m in rs.rules().filter_map(|r| r.get(f)) {
                for (lo, hi) in m.bounds() {
                    p.insert(lo as u64);
                    p.insert(hi as u64 + 1);
                }
            }
        }
        p.into_iter()
            .filter(|&v| v <= f.max_value() as u64)
            .map(|v| v as u32)
            .collect()
    };
    let ifaces = |f: Field| -> Vec<Option<String>> {
        if !hook.has_iface(f) {
            return vec![None];
        }
        IfaceAtoms::new(
            rulesets
                .iter()
                .flat_map(|rs| rs.rules())
                .filter_map(|r| r.get(f))
                .flat_map(|m| m.tests.iter())
                .filter_map(|t| match t {
                    Test::Iface { name, .. } => Some(name.as_str()),
                    _ => None,
                }),
        )
        .reps
    };
    let (src, dst, proto, sp, dp) = (
        points(Field::SrcIp),
        points(Field::DstIp),
        points(Field::Proto),
        points(Field::SrcPort),
        points(Field::DstPort),
    );
    let (ins, outs) = (ifaces(Field::InIface), ifaces(Field::OutIface));
    let mut out = Vec::new();
    for &s in &src {
        for &d in &dst {
            for &p in &proto {
                let l4 = p == 6 || p == 17;
                let mut ports = vec![Ports::Absent];
                if l4 {
                    ports.push(Ports::Truncated);
                    for &a in &sp {
                        for &b in &dp {
                            ports.push(Ports::Present {
                                src: a as u16,
                                dst: b as u16,
                            });
                        }
                    }
                }
                for &ports in &ports {
                    for i in &ins {
                        for o in &outs {
                            out.push((
                                IpPacket {
                                    family: Family::V4,
                                    src: s.into(),
                                    dst: d.into(),
                                    proto: p as u8,
                                    ip_len: 40,
                                    frag_offset: if ports == Ports::Absent && l4 { 1 } else { 0 },
                                    ports,
                                    tcp_flags: 0x02,
                                    ttl: 64,
                                    icmp: tailwall_compiler::packet::Icmp::Absent,
                                    ct_state: tailwall_compiler::packet::CtState::New,
                                },
                                Meta {
                                    in_iface: i.clone(),
                                    out_iface: o.clone(),
                                },
                            ));
                        }
                    }
                }
            }
        }
    }
    out
}

/// A packet the rulesets decide with different verdicts, by brute force.
fn oracle(a: &Ruleset, b: &Ruleset, hook: Hook) -> Option<(IpPacket, Meta)> {
    atoms(&[a, b], hook).into_iter().find(|(p, m)| {
        let d = Decoded::Ipv4(*p);
        interp::run_with(a, hook, m, &d).verdict != interp::run_with(b, hook, m, &d).verdict
    })
}

/// Check the engine on one pair; returns whether they differ.
fn check_pair(a: &Ruleset, b: &Ruleset, hook: Hook, what: &str) -> bool {
    let d = analysis::diff(a, b, hook, 64, &mut |_| {}).unwrap();
    let truth = oracle(a, b, hook);
    assert_eq!(
        d.comparison.equivalent(),
        truth.is_none(),
        "{what}: engine says equivalent={}, oracle found {truth:?}\nA:\n{}\nB:\n{}",
        d.comparison.equivalent(),
        a.dump(),
        b.dump()
    );
    for c in d.counterexamples() {
        let (oa, ob) = (
            analysis::replay(a, hook, &c.witness),
            analysis::replay(b, hook, &c.witness),
        );
        assert_eq!(
            (oa, ob),
            (c.old, c.new),
            "{what}: counterexample {} replays differently\nA:\n{}\nB:\n{}",
            c.witness.spec(),
            a.dump(),
            b.dump()
        );
        assert_ne!(oa.verdict, ob.verdict);
        assert_eq!(Witness::parse(&c.witness.spec()).unwrap(), c.witness);
    }
    !d.comparison.equivalent()
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn generated_pairs_match_the_oracle_and_counterexamples_replay() {
    let want = env("ANALYSIS_PAIRS", 600) as usize;
    let seed = env("ANALYSIS_SEED", 9);
    let opts = RulesetOpts {
        port_lists: true,
        addr_lists: true,
        user_chains: true,
        ..RulesetOpts::new(5)
    };
    let (mut pairs, mut equivalent, mut different) = (0, 0, 0);
    let mut kinds: BTreeSet<String> = BTreeSet::new();
    let mut round = 0u64;
    while pairs < want {
        let bases = testgen::sample_rulesets_with(seed + round, 20, opts);
        round += 1;
        for (k, rs) in bases.iter().enumerate() {
            for (what, x) in rewrites(rs, k) {
                assert!(
                    !check_pair(rs, &x, Hook::Input, &what),
                    "rewrite {what} found different"
                );
                kinds.insert(what.split(' ').next().unwrap().to_string());
                pairs += 1;
                equivalent += 1;
            }
            for (what, x) in mutations(rs, k) {
                if check_pair(rs, &x, Hook::Input, &what) {
                    different += 1;
                } else {
                    equivalent += 1;
                }
                kinds.insert(what.split(' ').next().unwrap().to_string());
                pairs += 1;
            }
        }
        assert!(round < 200, "too few pairs generated");
    }
    // iptables-save text vs its migrated YAML.
    let plain = RulesetOpts {
        addr_lists: false,
        ..opts
    };
    for rs in testgen::sample_rulesets_with(seed, 30, plain) {
        let text = testgen::iptables_restore_text(&rs);
        let a = tailwall_compiler::lower::iptables(&SourceFile::new("a.rules", text.clone()))
            .unwrap()
            .ruleset;
        let m = tailwall_compiler::lower::migrate(&SourceFile::new("a.rules", text)).unwrap();
        let yaml = tailwall_compiler::yaml::print::print(&m.ruleset, &Default::default());
        let b = tailwall_compiler::yaml::lower(&SourceFile::new("a.yaml", yaml))
            .unwrap()
            .ruleset;
        assert!(!check_pair(&a, &b, Hook::Input, "migrate"));
        pairs += 1;
        equivalent += 1;
    }
    eprintln!(
        "analysis: {pairs} pairs ({equivalent} equivalent, {different} different), kinds {kinds:?}"
    );
    assert!(
        pairs >= 500 && different >= 100,
        "{pairs} pairs, {different} different"
    );
}

fn rules(text: &str) -> Ruleset {
    tailwall_compiler::lower::iptables(&SourceFile::new("t.rules", text))
        .unwrap_or_else(|d| panic!("{d:?}"))
        .ruleset
}

#[test]
fn interfaces_and_forward_hook_are_compared() {
    let a = rules("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n-A FORWARD -i eth+ -o wan0 -j ACCEPT\n-A FORWARD ! -i lo -p tcp --dport 22 -j ACCEPT\nCOMMIT\n");
    let b = rules("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n-A FORWARD -i eth0 -o wan0 -j ACCEPT\n-A FORWARD ! -i lo -p tcp --dport 22 -j ACCEPT\nCOMMIT\n");
    assert!(check_pair(&a, &b, Hook::Forward, "eth+ vs eth0"));
    assert!(!check_pair(&a, &b, Hook::Input, "input unchanged"));
    let d = analysis::diff(&a, &b, Hook::Forward, 8, &mut |_| {}).unwrap();
    let c = &d.counterexamples()[0];
    assert_eq!(c.witness.meta.out_iface.as_deref(), Some("wan0"));
    assert!(c
        .witness
        .meta
        .in_iface
        .as_deref()
        .unwrap()
        .starts_with("eth"));
}

#[test]
fn validation_proves_generated_artifacts_and_catches_a_corrupted_table() {
    for rs in testgen::sample_rulesets_with(
        11,
        60,
        RulesetOpts {
            port_lists: true,
            addr_lists: true,
            ..RulesetOpts::new(12)
        },
    ) {
        let art = tailwall_compiler::artifact::build(&rs, Hook::Input).unwrap();
        analysis::validate(&rs, &art).unwrap_or_else(|e| panic!("{e}\n{}", rs.dump()));
    }
    // IPv6 twins (128-bit LPM tables), alone and next to an IPv4 ruleset in one generation: each
    // ruleset is proven against its own family's region.
    let sets = testgen::sample_rulesets_with(
        12,
        20,
        RulesetOpts {
            port_lists: true,
            addr_lists: true,
            user_chains: true,
            ..RulesetOpts::new(10)
        },
    );
    for pair in sets.chunks(2) {
        let six = testgen::to_ipv6(&pair[1]);
        let art = tailwall_compiler::artifact::build(&six, Hook::Input).unwrap();
        analysis::validate(&six, &art).unwrap_or_else(|e| panic!("{e}\n{}", six.dump()));
        let both = tailwall_compiler::artifact::build_sets(&[&pair[0], &six], Hook::Input).unwrap();
        for rs in [&pair[0], &six] {
            analysis::validate(rs, &both).unwrap_or_else(|e| panic!("{e}\n{}", rs.dump()));
        }
    }
    // Corrupt the rule metadata: rule 1's action flips. Validation names a packet where the tables
    // (and `sim`) now disagree with the rules.
    let rs = rules("*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\n-A INPUT -s 10.0.0.0/8 -j ACCEPT\nCOMMIT\n");
    let mut art = tailwall_compiler::artifact::build(&rs, Hook::Input).unwrap();
    let m = art
        .maps
        .iter_mut()
        .find(|m| m.name == tailwall_abi::MAP_RULES)
        .unwrap();
    m.entries[1].1[0..4].copy_from_slice(&tailwall_abi::ACTION_DROP.to_le_bytes());
    // The artifact's own position list is corrupted the same way, so the artifact stays
    // self-consistent (`Layout::check` would refuse an image that disagrees with it) and only
    // validation against the rules can tell.
    art.positions[1].action = tailwall_abi::ACTION_DROP;
    let e = analysis::validate(&rs, &art).unwrap_err();
    let analysis::ValidationError::Mismatch {
        spec, ir, compiled, ..
    } = e
    else {
        panic!("{e}")
    };
    let w = Witness::parse(&spec).unwrap();
    let sim = tailwall_compiler::sim::Sim::new(&art).unwrap();
    let frame = w.frame();
    assert_eq!(sim.run_frame(&frame), compiled);
    assert_eq!(analysis::replay(&rs, Hook::Input, &w), ir);
    assert_ne!(ir.verdict, compiled.verdict);
    // In a user chain: the jump's CONTINUE position (a skip to the next position, dropped as a no-op
    // from the program) made to skip the RETURN, and the RETURN made an ACCEPT. Either is a packet
    // from 1.0.0.0/8 to 10.0.0.0/8 port 80 that the rules drop (RETURN, policy) and the tables
    // accept.
    let rs = rules("*filter\n:INPUT DROP [0:0]\n:svc - [0:0]\n-A INPUT -d 10.0.0.0/8 -j svc\n-A svc -s 1.0.0.0/8 -j RETURN\n-A svc -p tcp --dport 80 -j ACCEPT\nCOMMIT\n");
    let good = tailwall_compiler::artifact::build(&rs, Hook::Input).unwrap();
    analysis::validate(&rs, &good).unwrap();
    let first = good.region(Hook::Input, Family::V4).unwrap().first as usize;
    assert_eq!(good.positions[first].action, tailwall_abi::ACTION_CONTINUE);
    assert_eq!(good.positions[first].next as usize, first + 1);
    for (at, action, next) in [
        (first, tailwall_abi::ACTION_CONTINUE, first + 2),
        (first + 1, tailwall_abi::ACTION_ACCEPT, 0),
    ] {
        let mut art = good.clone();
        let m = art
            .maps
            .iter_mut()
            .find(|m| m.name == tailwall_abi::MAP_RULES)
            .unwrap();
        let v = &mut m
            .entries
            .iter_mut()
            .find(|(k, _)| k[0..4] == (at as u32).to_le_bytes())
            .unwrap()
            .1;
        v[0..4].copy_from_slice(&action.to_le_bytes());
        v[8..12].copy_from_slice(&(next as u32).to_le_bytes());
        art.positions[at].action = action;
        art.positions[at].next = next as u32;
        let e = analysis::validate(&rs, &art).unwrap_err();
        let analysis::ValidationError::Mismatch {
            spec, ir, compiled, ..
        } = e
        else {
            panic!("{e}")
        };
        let w = Witness::parse(&spec).unwrap();
        let sim = tailwall_compiler::sim::Sim::new(&art).unwrap();
        assert_eq!(sim.run_frame(&w.frame()), compiled, "{spec}");
        assert_eq!(analysis::replay(&rs, Hook::Input, &w), ir, "{spec}");
        assert_eq!(
            (ir.verdict, compiled.verdict),
            (Verdict::Drop, Verdict::Accept),
            "{spec}"
        );
    }
}

/// `rs` as an IPv6 ruleset: every IPv4 prefix `a/len` becomes `2001:db8::a/(96 + len)` (the IPv4
/// space embedded in one /96), so an IPv4 pair and its image differ exactly when the originals do.
fn to_v6(rs: &Ruleset) -> Ruleset {
    const BASE: u128 = 0x2001_0db8 << 96;
    let mut x = rs.clone();
    x.family = Family::V6;
    for c in &mut x.chains {
        for r in &mut c.rules {
            for m in &mut r.matches {
                m.field = match m.field {
                    Field::SrcIp => Field::SrcIp6,
                    Field::DstIp => Field::DstIp6,
                    f => f,
                };
                for t in &mut m.tests {
                    if let (Field::SrcIp6 | Field::DstIp6, Test::Prefix { addr, len }) =
                        (m.field, &*t)
                    {
                        *t = Test::Prefix {
                            addr: BASE | addr,
                            len: len + 96,
                        };
                    }
                }
            }
            r.matches.sort_by_key(|m| m.field);
        }
    }
    tailwall_compiler::ir::verify(&x).unwrap_or_else(|e| panic!("{e}\n{}", x.dump()));
    x
}

/// `diff` on IPv6 rulesets: the IPv6 image of every generated pair gets the same answer as the pair,
/// and every IPv6 counterexample (an IPv6 frame, its SPEC in IPv6 spelling) replays through `interp`
/// with the outcomes printed. Mixing the families is refused.
#[test]
fn ipv6_pairs_are_compared_like_their_ipv4_originals() {
    let opts = RulesetOpts {
        port_lists: true,
        addr_lists: true,
        user_chains: true,
        ..RulesetOpts::new(5)
    };
    let (mut pairs, mut different) = (0, 0);
    for (k, rs) in testgen::sample_rulesets_with(env("ANALYSIS_SEED", 9) + 100, 30, opts)
        .iter()
        .enumerate()
    {
        let a6 = to_v6(rs);
        for (what, x) in rewrites(rs, k).into_iter().chain(mutations(rs, k)) {
            let d4 = analysis::diff(rs, &x, Hook::Input, 8, &mut |_| {}).unwrap();
            let x6 = to_v6(&x);
            let d6 = analysis::diff(&a6, &x6, Hook::Input, 8, &mut |_| {}).unwrap();
            assert_eq!(
                d4.comparison.equivalent(),
                d6.comparison.equivalent(),
                "{what}: IPv4 and IPv6 answers differ\n{}",
                a6.dump()
            );
            for c in d6.counterexamples() {
                assert_eq!(c.witness.family, Family::V6);
                let spec = c.witness.spec();
                assert_eq!(Witness::parse(&spec).unwrap(), c.witness, "{spec}");
                assert_eq!(
                    (
                        analysis::replay(&a6, Hook::Input, &c.witness),
                        analysis::replay(&x6, Hook::Input, &c.witness)
                    ),
                    (c.old, c.new),
                    "{what}: {spec} replays differently\nA:\n{}\nB:\n{}",
                    a6.dump(),
                    x6.dump()
                );
            }
            different += usize::from(!d6.comparison.equivalent());
            pairs += 1;
        }
        let err = analysis::diff(rs, &a6, Hook::Input, 1, &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains("one family"), "{err}");
    }
    eprintln!("analysis ipv6: {pairs} pairs, {different} different");
    assert!(
        pairs >= 100 && different >= 20,
        "{pairs} pairs, {different} different"
    );
}

/// `diff` tells REJECT kinds apart from each other and from DROP (the kind is part of the verdict),
/// and finds two rulesets rejecting alike equivalent.
#[test]
fn reject_kinds_are_different_verdicts() {
    let r = |t: &str| {
        rules(&format!("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n{t}\nCOMMIT\n"))
    };
    let rst = r("-A INPUT -p tcp --dport 25 -j REJECT --reject-with tcp-reset");
    let port = r("-A INPUT -p tcp --dport 25 -j REJECT");
    let drop = r("-A INPUT -p tcp --dport 25 -j DROP");
    let alias = r("-A INPUT -p tcp --dport 25 -j REJECT --reject-with tcp-rst");
    assert!(check_pair(
        &rst,
        &port,
        Hook::Input,
        "tcp-reset vs port-unreachable"
    ));
    assert!(check_pair(&port, &drop, Hook::Input, "reject vs drop"));
    assert!(!check_pair(
        &rst,
        &alias,
        Hook::Input,
        "tcp-rst is tcp-reset"
    ));
    let d = analysis::diff(&rst, &drop, Hook::Input, 8, &mut |_| {}).unwrap();
    let c = &d.counterexamples()[0];
    assert_eq!(c.old.verdict.as_str(), "reject tcp-reset");
    assert_eq!(c.new.verdict.as_str(), "drop");
}
