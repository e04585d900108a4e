//! `interp ≡ sim`: the reference interpreter and the datapath model (running the artifact's map images)
//! agree on verdict and deciding rule for generated rulesets and frames of every kind.
use proptest::prelude::*;
use tailwall_compiler::analysis;
use tailwall_compiler::artifact::{self, Artifact, BuildError};
use tailwall_compiler::ir::{verify, Hook, Ruleset};
use tailwall_compiler::packet::decode;
use tailwall_compiler::sim::Sim;
use tailwall_compiler::testgen::{
    arb_frame, arb_frame_v6, arb_ruleset, arb_ruleset_with, sample_rulesets, sample_rulesets_with,
    to_ipv6, FrameOpts, RulesetOpts,
};
use tailwall_compiler::{interp, ir};

/// `artifact::build`, and the translation validation `compile` runs on it: every artifact these
/// properties build is also proven to decide every packet of every hook as its ruleset does
/// (`analysis::validate`), so the proof runs on every compile of the suite, not only the CLI's.
fn build(rs: &Ruleset, hook: Hook) -> Result<Artifact, BuildError> {
    build_sets(&[rs], hook)
}

/// [`build`] of a generation of rulesets, each proven against the artifact.
fn build_sets(sets: &[&Ruleset], hook: Hook) -> Result<Artifact, BuildError> {
    let a = artifact::build_sets(sets, hook)?;
    for rs in sets {
        if let Err(e) = analysis::validate(rs, &a) {
            panic!("translation validation: {e}\n{}", rs.dump());
        }
    }
    Ok(a)
}

fn ruleset_and_frames(
    max_rules: usize,
    frames: usize,
) -> impl Strategy<Value = (Ruleset, Vec<Vec<u8>>)> {
    arb_ruleset(max_rules).prop_flat_map(move |rs| {
        let f = prop::collection::vec(arb_frame(&rs, FrameOpts::default()), frames);
        (Just(rs), f)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn sim_equals_interp_on_generated_rulesets((rs, frames) in ruleset_and_frames(12, 40)) {
        verify(&rs).unwrap();
        let a = build(&rs, Hook::Input).unwrap();
        let sim = Sim::new(&a).unwrap();
        for f in &frames {
            let d = decode(f);
            prop_assert_eq!(interp::run(&rs, Hook::Input, &d), sim.run(&d), "frame {:02x?}\n{}", f, rs.dump());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Long rulesets: vectors span several 512-rule chunks.
    #[test]
    fn sim_equals_interp_across_chunks((rs, frames) in ruleset_and_frames(1200, 150)) {
        let a = build(&rs, Hook::Input).unwrap();
        let sim = Sim::new(&a).unwrap();
        for f in &frames {
            let d = decode(f);
            prop_assert_eq!(interp::run(&rs, Hook::Input, &d), sim.run(&d), "frame {:02x?}", f);
        }
    }
}

fn lists(max_rules: usize) -> RulesetOpts {
    RulesetOpts {
        port_lists: true,
        addr_lists: true,
        ..RulesetOpts::new(max_rules)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 100, ..ProptestConfig::default() })]

    /// Lists (several prefixes, ports and ranges, `proto {tcp, udp}`, negated or not) compile exactly.
    #[test]
    fn sim_equals_interp_with_lists(
        (rs, frames) in arb_ruleset_with(lists(10)).prop_flat_map(|rs| {
            let f = prop::collection::vec(arb_frame(&rs, FrameOpts::default()), 40);
            (Just(rs), f)
        })
    ) {
        verify(&rs).unwrap();
        let sim = Sim::new(&build(&rs, Hook::Input).unwrap()).unwrap();
        for f in &frames {
            let d = decode(f);
            prop_assert_eq!(interp::run(&rs, Hook::Input, &d), sim.run(&d), "frame {:02x?}\n{}", f, rs.dump());
        }
    }

    /// The header matches beyond addresses, protocol and ports (`length`, …; `RulesetOpts::header_matches`),
    /// negated or not, with lists, on frames of every shape biased to their boundaries.
    #[test]
    fn sim_equals_interp_with_header_matches(
        (rs, frames) in arb_ruleset_with(RulesetOpts { header_matches: true, ct_state: true, ..lists(10) }).prop_flat_map(|rs| {
            let f = prop::collection::vec(arb_frame(&rs, FrameOpts::default()), 40);
            (Just(rs), f)
        })
    ) {
        verify(&rs).unwrap();
        let sim = Sim::new(&build(&rs, Hook::Input).unwrap()).unwrap();
        for f in &frames {
            let d = decode(f);
            prop_assert_eq!(interp::run(&rs, Hook::Input, &d), sim.run(&d), "frame {:02x?}\n{}", f, rs.dump());
        }
    }

    /// With user chains (jump, goto, RETURN, nesting, negations, lists, header matches): the
    /// flattened datapath (`sim` over the artifact's images) decides every frame as `interp` does —
    /// same verdict, same deciding rule in its own chain, same policy —; and `interp`'s deciding rule
    /// is a terminal rule of the chain reported, a hotdrop names a rule testing ports.
    #[test]
    fn sim_equals_interp_with_user_chains(
        (rs, frames) in arb_ruleset_with(RulesetOpts { user_chains: true, header_matches: true, ct_state: true, ..lists(6) }).prop_flat_map(|rs| {
            let f = prop::collection::vec(arb_frame(&rs, FrameOpts::default()), 30);
            (Just(rs), f)
        })
    ) {
        verify(&rs).unwrap();
        let sim = Sim::new(&build(&rs, Hook::Input).unwrap()).unwrap();
        for f in &frames {
            let d = decode(f);
            let o = interp::run(&rs, Hook::Input, &d);
            prop_assert_eq!(o, sim.run(&d), "frame {:02x?}\n{}", f, rs.dump());
            match o.decided {
                interp::Decided::Rule { chain, rule, position } => {
                    let r = rs.rule(rule).unwrap();
                    prop_assert_eq!((r.chain, r.position), (chain, position));
                    prop_assert_eq!(r.action.verdict(), Some(o.verdict));
                }
                interp::Decided::Hotdrop { rule, chain, .. } => {
                    let r = rs.rule(rule).unwrap();
                    prop_assert!(r.needs_l4() && r.chain == chain);
                }
                interp::Decided::Policy { chain } => prop_assert_eq!(chain, ir::ChainId(0)),
                _ => {}
            }
        }
    }
}

/// Interface names a generated packet arrives on / leaves by: the devices of the modelled namespace
/// (every name of [`tailwall_compiler::testgen::IFACES`]' kind: exact hits, prefixes, near misses) and
/// `ghost`, a device created after the generation was built (not in the interface tables).
const DEVICES: [&str; 8] = ["eth0", "eth1", "wan1", "wan10", "lo", "e", "veth9", "wan"];

fn arb_meta() -> impl Strategy<Value = interp::Meta> {
    let name = prop_oneof![
        2 => Just(None),
        6 => prop::sample::select(DEVICES.to_vec()).prop_map(|n| Some(n.to_string())),
        1 => Just(Some("ghost".to_string())),
    ];
    (name.clone(), name).prop_map(|(in_iface, out_iface)| interp::Meta {
        in_iface,
        out_iface,
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// `-i`/`-o` (exact names, `+` prefixes, `!`, through user chains, in all three built-in chains):
    /// `sim` with the interface tables filled from the namespace's devices as the loader fills them
    /// decides every packet in every hook's region as `interp` does on the names (the region's hook
    /// has no output device at INPUT and no input device at OUTPUT: ifindex 0, as `tw_entry` writes
    /// it); a packet on a device the tables do not know (`ghost`) is dropped, `REASON_NO_IFACE`,
    /// unless the stages decided before its interface stage (then as `interp`).
    #[test]
    fn sim_equals_interp_with_interfaces(
        (rs, frames) in arb_ruleset_with(RulesetOpts { ifaces: true, user_chains: true, hooks: true, ..lists(8) }).prop_flat_map(|rs| {
            let f = prop::collection::vec((arb_frame(&rs, FrameOpts::default()), arb_meta()), 40);
            (Just(rs), f)
        })
    ) {
        verify(&rs).unwrap();
        let devices: Vec<(u32, String)> = DEVICES
            .iter()
            .enumerate()
            .map(|(i, n)| (i as u32 + 1, n.to_string()))
            .collect();
        let a = build(&rs, Hook::Input).unwrap();
        let sim = Sim::new(&a).unwrap().with_devices(devices);
        let no_iface = interp::Outcome {
            verdict: ir::Verdict::Drop,
            decided: interp::Decided::FailClosed { reason: tailwall_abi::REASON_NO_IFACE },
        };
        for hook in Hook::ALL {
            prop_assert!(a.region(hook, ir::Family::V4).is_some(), "{:?} has no region", hook);
            let region = tailwall_compiler::flatten::region_slot(hook, ir::Family::V4);
            for (f, meta) in &frames {
                let d = decode(f);
                let o = interp::run_with(&rs, hook, meta, &d);
                let s = sim.run_with(region, meta, &d);
                let seen = meta.at_hook(hook);
                let ghost = [&seen.in_iface, &seen.out_iface]
                    .iter()
                    .any(|n| n.as_deref() == Some("ghost"));
                if ghost && s == no_iface {
                    continue;
                }
                prop_assert_eq!(o, s, "{:?} frame {:02x?} {:?}\n{}", hook, f, meta, rs.dump());
            }
        }
    }
}

#[test]
fn artifact_build_with_lists_is_deterministic() {
    for rs in sample_rulesets_with(13, 20, lists(20)) {
        let a = build(&rs, Hook::Input).unwrap();
        assert_eq!(a, build(&rs.clone(), Hook::Input).unwrap());
        assert_eq!(a.digest, a.compute_digest());
    }
}

#[test]
fn artifact_build_is_deterministic() {
    for rs in sample_rulesets(11, 20, 30) {
        let a = build(&rs, Hook::Input).unwrap();
        let b = build(&rs.clone(), Hook::Input).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.digest, a.compute_digest());
        assert_eq!(a.digest.len(), 64);
    }
}

#[test]
fn artifact_digest_changes_with_the_ruleset() {
    let sets = sample_rulesets(12, 30, 8);
    let mut digests: Vec<String> = sets
        .iter()
        .map(|rs| build(rs, Hook::Input).unwrap().digest)
        .collect();
    digests.sort();
    digests.dedup();
    // Rulesets differ (policy, rules); identical ones may repeat by chance but not most of them.
    assert!(digests.len() > 20, "{} distinct digests", digests.len());
}

#[test]
fn hook_without_chain_accepts_with_policy() {
    let rs = ir::Ruleset::default();
    let a = build(&rs, Hook::Input).unwrap();
    // Three policy-only regions (INPUT, FORWARD, OUTPUT), all ACCEPT.
    assert_eq!(a.globals.nrules, 3);
    assert_eq!(a.globals.nstages, 0);
    assert!(a
        .regions
        .iter()
        .all(|r| r.policy == ir::Verdict::Accept && r.end == r.first + 1));
    let sim = Sim::new(&a).unwrap();
    let f = tailwall_compiler::packet::build_frame(
        [2, 0, 0, 0, 0, 1],
        [2, 0, 0, 0, 0, 2],
        "10.0.0.1".parse().unwrap(),
        "10.0.0.2".parse().unwrap(),
        6,
        0,
        &tailwall_compiler::packet::l4_header(6, 1, 2, b""),
    );
    assert_eq!(
        sim.run_frame(&f),
        interp::run(&rs, Hook::Input, &decode(&f))
    );
}

/// An IPv4 ruleset with every feature the generators have, its IPv6 twin (`testgen::to_ipv6`), and
/// frames of both families for them.
fn ipv6_case(
    max_rules: usize,
    frames: usize,
) -> impl Strategy<Value = (Ruleset, Vec<Vec<u8>>, Vec<Vec<u8>>)> {
    arb_ruleset_with(RulesetOpts {
        user_chains: true,
        header_matches: true,
        ..lists(max_rules)
    })
    .prop_flat_map(move |rs| {
        let v6 = prop::collection::vec(arb_frame_v6(&rs, FrameOpts::default()), frames);
        let v4 = prop::collection::vec(arb_frame(&rs, FrameOpts::default()), frames / 4);
        (Just(rs), v6, v4)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 100, ..ProptestConfig::default() })]

    /// An IPv6 ruleset alone: IPv6 frames (extension headers, fragments, malformed ones) are
    /// classified as `interp` does; IPv4 frames pass as the other family (malformed IPv4 drops).
    #[test]
    fn sim_equals_interp_on_ipv6((rs4, v6, v4) in ipv6_case(8, 40)) {
        let rs6 = to_ipv6(&rs4);
        verify(&rs6).unwrap();
        let sim = Sim::new(&build(&rs6, Hook::Input).unwrap()).unwrap();
        for f in v6.iter().chain(&v4) {
            let d = decode(f);
            prop_assert_eq!(interp::run(&rs6, Hook::Input, &d), sim.run(&d), "frame {:02x?}\n{}", f, rs6.dump());
        }
    }

    /// One generation of an IPv4 and an IPv6 ruleset (`build_sets`): every frame is judged by its
    /// family's rules, in its family's region, as `interp::run_sets` does.
    #[test]
    fn sim_equals_interp_on_both_families(
        (rs4, v6, v4) in ipv6_case(6, 30),
        other in arb_ruleset_with(RulesetOpts { user_chains: true, header_matches: true, ..lists(6) }),
    ) {
        let rs6 = to_ipv6(&other);
        let sets = [&rs4, &rs6];
        let sim = Sim::new(&build_sets(&sets, Hook::Input).unwrap()).unwrap();
        for f in v6.iter().chain(&v4) {
            let d = decode(f);
            let want = interp::run_sets(&sets, Hook::Input, &interp::Meta::default(), &d);
            prop_assert_eq!(want, sim.run(&d), "frame {:02x?}\n{}\n{}", f, rs4.dump(), rs6.dump());
        }
    }
}

#[test]
fn two_rulesets_of_one_family_are_refused() {
    let rs = sample_rulesets(7, 1, 4).remove(0);
    let e = build_sets(&[&rs, &rs], Hook::Input).unwrap_err();
    assert_eq!(e.to_diagnostic().code, "E0503");
    let six = to_ipv6(&rs);
    assert!(build_sets(&[&six, &rs], Hook::Input).is_ok());
    assert!(build_sets(&[&six, &six], Hook::Input).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 120, ..ProptestConfig::default() })]

    /// LOG and NFLOG rules (`testgen::arb_ruleset_logged`, in every chain, every hook, with user
    /// chains and header matches) never decide: `sim` decides every frame as `interp` does and
    /// reports the same log events in the same order (the rule, its chain and position) at each hook.
    #[test]
    fn sim_equals_interp_with_log_rules(
        (rs, frames) in tailwall_compiler::testgen::arb_ruleset_logged(RulesetOpts {
            user_chains: true, hooks: true, header_matches: true, ct_state: true, ..lists(6)
        }).prop_flat_map(|rs| {
            let f = prop::collection::vec(arb_frame(&rs, FrameOpts::default()), 30);
            (Just(rs), f)
        })
    ) {
        verify(&rs).unwrap();
        let sim = Sim::new(&build(&rs, Hook::Input).unwrap()).unwrap();
        let meta = interp::Meta::default();
        for f in &frames {
            let d = decode(f);
            for hook in Hook::ALL {
                let (o, logs) = interp::run_logged(&rs, hook, &meta, &d);
                let mut sim_logs = Vec::new();
                let region = tailwall_compiler::flatten::region_slot(hook, ir::Family::V4);
                let so = sim.run_logged(region, &meta, &d, &mut sim_logs);
                prop_assert_eq!(o, so, "{:?} frame {:02x?}\n{}", hook, f, rs.dump());
                prop_assert_eq!(&logs, &sim_logs, "{:?} frame {:02x?}\n{}", hook, f, rs.dump());
                for e in &logs {
                    let r = rs.rule(e.rule).unwrap();
                    prop_assert!(matches!(r.action, ir::Action::Log(_)));
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// `-j REJECT` with every `--reject-with` (issue 10 item 2): in INPUT and FORWARD, with user
    /// chains, lists and header matches, IPv4 and its IPv6 twin in one generation: `sim` decides
    /// every frame at both hooks as `interp` does — the same reject kind from the same rule —, and
    /// the generated rulesets do reject (a generator that never did would prove nothing).
    #[test]
    fn sim_equals_interp_with_reject(
        (rs, frames, frames6) in arb_ruleset_with(RulesetOpts { reject: true, user_chains: true, hooks: true, header_matches: true, ..lists(8) }).prop_flat_map(|rs| {
            let f = prop::collection::vec(arb_frame(&rs, FrameOpts::default()), 30);
            let rs6 = to_ipv6(&rs);
            let f6 = prop::collection::vec(arb_frame_v6(&rs6, FrameOpts::default()), 30);
            (Just(rs), f, f6)
        })
    ) {
        verify(&rs).unwrap();
        let rs6 = to_ipv6(&rs);
        verify(&rs6).unwrap();
        let a = build_sets(&[&rs, &rs6], Hook::Input).unwrap();
        let sim = Sim::new(&a).unwrap();
        for hook in [Hook::Input, Hook::Forward] {
            for (family, frames) in [(ir::Family::V4, &frames), (ir::Family::V6, &frames6)] {
                let region = tailwall_compiler::flatten::region_slot(hook, family);
                for f in frames {
                    let d = decode(f);
                    let o = interp::run_sets(&[&rs, &rs6], hook, &interp::Meta::default(), &d);
                    prop_assert_eq!(o, sim.run_in(region, &d), "{:?} frame {:02x?}\n{}", hook, f, rs.dump());
                }
            }
        }
    }
}

#[test]
fn generated_rulesets_reject_with_every_kind() {
    let opts = RulesetOpts {
        reject: true,
        hooks: true,
        ..lists(8)
    };
    let mut seen = std::collections::BTreeSet::new();
    for rs in sample_rulesets_with(7, 60, opts) {
        verify(&rs).unwrap();
        let rs6 = to_ipv6(&rs);
        verify(&rs6).unwrap();
        for r in rs.chains.iter().chain(&rs6.chains).flat_map(|c| &c.rules) {
            if let ir::Action::Reject(k) = r.action {
                seen.insert(k);
            }
        }
    }
    assert!(seen.len() >= 10, "only {seen:?}");
    assert!(seen.contains(&ir::RejectWith::TcpReset));
}
