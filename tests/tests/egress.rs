//! Kernel tier for OUTPUT: the tc chain (`tw_egress`, the `tw_c_<field>` stages, `tw_final_tc`) that a
//! generation attaches at tcx egress (`docs/decisions/0012`).
//!
//! - every tc program passes the verifier, next to the XDP chain of the same generation;
//! - BPF_PROG_TEST_RUN of the tc chain (an skb leaving by `lo`, with a socket: locally generated)
//!   decides every generated frame as `sim` in the OUTPUT region and as `interp` at OUTPUT, on
//!   generated filter tables with INPUT, FORWARD and OUTPUT chains, user chains and header matches;
//!   the XDP chain of the same generation still decides by INPUT.
//!
//! Needs root; without it every test prints "skipped: not root" and passes, unless
//! `TAILWALL_REQUIRE_KERNEL=1` (CI). Run with `--test-threads=1`.
use tailwall_abi as abi;
use tailwall_compiler::{
    artifact::{self, Artifact},
    interp,
    ir::{Family, Hook, Ruleset},
    outcome::Outcome,
    packet,
    sim::Sim,
    testgen::{sample_frames, sample_rulesets_with, FrameOpts, RulesetOpts},
};
use tailwall_loader::{Generation, TestRun};
use tailwall_tests::netns::require_root_or_skip;

fn root() -> bool {
    require_root_or_skip("egress")
}

/// The OUTPUT region of IPv4 (`tw_regions` index `hook * 2 + family`).
const REGION_OUTPUT_V4: u32 = abi::HOOK_OUTPUT * 2;

fn observed(art: &Artifact, tr: &TestRun) -> Outcome {
    Outcome::from_kernel(art, tr.xdp_action, &tr.decision)
        .unwrap_or_else(|e| panic!("kernel decision record (retval {}): {e}", tr.retval))
}

/// Generated filter tables with all three built-in chains whose OUTPUT region the datapath compiles.
fn rulesets(seed: u64, n: usize) -> Vec<Ruleset> {
    let o = RulesetOpts {
        port_lists: true,
        addr_lists: true,
        user_chains: true,
        hooks: true,
        header_matches: true,
        ..RulesetOpts::new(24)
    };
    sample_rulesets_with(seed, n, o)
}

/// An untagged IPv4 (IPv6) frame shorter than Ethernet + 20 (40) bytes.
fn short_ip(f: &[u8]) -> bool {
    match f.get(12..14) {
        Some([0x08, 0x00]) => f.len() < 14 + 20,
        Some([0x86, 0xdd]) => f.len() < 14 + 40,
        _ => false,
    }
}

#[test]
fn egress_verifier_accepts_the_tc_chain() {
    if !root() {
        return;
    }
    let rs = &rulesets(0x6567_7231, 8)[..];
    let mut seen = 0;
    for (i, rs) in rs.iter().enumerate() {
        let art = artifact::build(rs, Hook::Input).expect("build");
        let gen = Generation::load(&art).unwrap_or_else(|e| panic!("ruleset {i}: {e}"));
        let stats = gen.program_stats().expect("program info");
        let want: Vec<&str> = art
            .stages
            .iter()
            .map(|f| f.info().datapath.expect("stage row").tc_prog)
            .chain([abi::PROG_FINAL_TC, abi::PROG_EGRESS])
            .collect();
        assert_eq!(gen.tc_chain(), &want[..want.len() - 1]);
        for name in &want {
            let s = stats
                .iter()
                .find(|s| s.name == *name)
                .unwrap_or_else(|| panic!("ruleset {i}: {name} not loaded"));
            assert!(s.verified_insns.is_some_and(|n| n > 0), "{name}: {s:?}");
            seen += 1;
        }
        if i == 0 {
            eprintln!(
                "tc chain verified insns: {}",
                stats
                    .iter()
                    .filter(|s| want.contains(&s.name))
                    .map(|s| format!("{}={}", s.name, s.verified_insns.unwrap_or(0)))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
    }
    assert!(seen >= 8 * 2);
}

/// The egress chain decides as `sim` in the OUTPUT region and `interp` at OUTPUT; the XDP chain of
/// the same generation as `sim` in the INPUT region.
#[test]
fn egress_testrun_matches_sim_and_interp_at_output() {
    if !root() {
        return;
    }
    let mut compared = 0;
    let mut decided_by_rule = 0;
    let mut skipped = 0;
    let mut unrunnable = 0;
    for (i, rs) in rulesets(0x6567_7232, 24).iter().enumerate() {
        let art = artifact::build(rs, Hook::Input).expect("build");
        if art.region(Hook::Output, Family::V4).is_none() {
            // OUTPUT reaches a rule the datapath does not compile: no OUTPUT region, no egress.
            skipped += 1;
            continue;
        }
        let sim = Sim::new(&art).expect("sim accepts the artifact");
        let gen = Generation::load(&art).unwrap_or_else(|e| panic!("ruleset {i}: {e}"));
        let frames = sample_frames(rs, 0x6500 + i as u64, 150, &FrameOpts::default());
        for f in frames.iter().filter(|f| f.len() >= 14) {
            let d = packet::decode(f);
            let tr = match gen.test_run_egress(f, 1) {
                Ok(tr) => tr,
                // An skb test run refuses (EINVAL) an IPv4/IPv6 frame shorter than the fixed header:
                // the kernel never sends one (it builds the header), so tc never sees one.
                Err(_) if short_ip(f) => {
                    unrunnable += 1;
                    continue;
                }
                Err(e) => panic!("test-run egress of {d} ({} bytes {f:02x?}): {e}", f.len()),
            };
            let got = observed(&art, &tr);
            let modelled = sim.run_in(REGION_OUTPUT_V4, &d);
            let want = interp::run(rs, Hook::Output, &d);
            assert_eq!(
                got,
                modelled,
                "egress kernel vs sim on {d}\nframe {f:02x?}\nruleset:\n{}",
                rs.dump()
            );
            assert_eq!(
                got,
                want,
                "egress kernel vs interp on {d}\nruleset:\n{}",
                rs.dump()
            );
            if tr.pkt.hook == abi::HOOK_OUTPUT {
                assert_eq!(tr.pkt.region, REGION_OUTPUT_V4, "{d}");
                assert_eq!(tr.pkt.in_ifindex, 0, "no input device at OUTPUT");
                assert_eq!(tr.pkt.out_ifindex, 1, "the test-run skb leaves by lo");
            }
            if matches!(
                got.decided,
                tailwall_compiler::outcome::Decided::Rule { .. }
            ) {
                decided_by_rule += 1;
            }
            // The XDP chain of the same generation still judges by INPUT.
            let tr = gen.test_run(f, 1).expect("test-run");
            assert_eq!(observed(&art, &tr), sim.run(&d), "xdp kernel vs sim on {d}");
            compared += 1;
        }
    }
    eprintln!(
        "egress: compared {compared} frames at OUTPUT ({decided_by_rule} decided by a rule), {skipped} rulesets without an OUTPUT region, {unrunnable} frames shorter than an IP header not test-runnable as an skb"
    );
    assert!(compared >= 16 * 100, "most rulesets have an OUTPUT region");
    assert!(
        decided_by_rule > compared / 10,
        "rules decide, not only policies"
    );
}
