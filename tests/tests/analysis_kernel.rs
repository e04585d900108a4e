//! `diff`'s counterexamples are real in the kernel: for generated pairs of rulesets (the same rewrites
//! and mutations as the userspace analysis tier, `testgen::pairs`), every counterexample packet that
//! `analysis::diff` prints is turned into its Ethernet frame (`Witness::frame`, what `diff --pcap-out`
//! writes) and run with BPF_PROG_TEST_RUN through both rulesets' loaded generations: the kernel decides
//! it exactly as `diff` printed (verdict, deciding rule or policy), OLD and NEW differently. Rewrites,
//! which `diff` must call equivalent, are checked on the datapath the same way with the generated
//! frames of both rulesets (the kernel gives both the same verdict).
//!
//! Needs root; without it the test prints "skipped: not root" and passes, unless
//! `TAILWALL_REQUIRE_KERNEL=1` (CI). `ANALYSIS_KERNEL_SEED` and `ANALYSIS_KERNEL_BASES` (default 12
//! base rulesets) size it.
use tailwall_compiler::{
    analysis,
    artifact::{self, Artifact},
    ir::{Hook, Ruleset},
    outcome::{Engine, Outcome},
    testgen::{
        pairs::{mutations, rewrites},
        sample_frames, sample_rulesets_with, FrameOpts, RulesetOpts,
    },
};
use tailwall_loader::{engine::KernelEngine, Generation};
use tailwall_tests::netns::require_root_or_skip;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Build and load `rs` for INPUT; `None` when the datapath refuses it (nothing to compare there).
fn load(rs: &Ruleset) -> Option<(Artifact, Generation)> {
    let art = artifact::build(rs, Hook::Input).ok()?;
    // Frames without interfaces, as the analysis' witnesses without an interface.
    let gen =
        Generation::load_nameless(&art).unwrap_or_else(|e| panic!("load: {e}\n{}", rs.dump()));
    Some((art, gen))
}

fn kernel(art: &Artifact, gen: &Generation, frame: &[u8]) -> Outcome {
    KernelEngine {
        generation: gen,
        artifact: art,
    }
    .run_frame(frame)
    .unwrap_or_else(|e| panic!("kernel engine: {e}"))
}

#[test]
fn diff_counterexamples_decide_in_the_kernel_as_printed() {
    if !require_root_or_skip("analysis_kernel") {
        return;
    }
    let seed = env("ANALYSIS_KERNEL_SEED", 17);
    let bases = env("ANALYSIS_KERNEL_BASES", 12) as usize;
    let opts = RulesetOpts {
        port_lists: true,
        addr_lists: true,
        user_chains: true,
        ..RulesetOpts::new(6)
    };
    let (mut different, mut counterexamples, mut equivalent, mut frames) = (0, 0, 0, 0);
    for (k, base) in sample_rulesets_with(seed, bases, opts).iter().enumerate() {
        let Some((base_art, base_gen)) = load(base) else {
            continue;
        };
        for (what, x) in mutations(base, k) {
            let d = analysis::diff(base, &x, Hook::Input, 16, &mut |_| {}).unwrap();
            if d.comparison.equivalent() {
                continue;
            }
            let Some((x_art, x_gen)) = load(&x) else {
                continue;
            };
            different += 1;
            for c in d.counterexamples() {
                let frame = c.witness.frame();
                let (old, new) = (
                    kernel(&base_art, &base_gen, &frame),
                    kernel(&x_art, &x_gen, &frame),
                );
                assert_eq!(
                    (old, new),
                    (c.old, c.new),
                    "{what}: counterexample {} decides differently in the kernel\nOLD:\n{}\nNEW:\n{}",
                    c.witness.spec(),
                    base.dump(),
                    x.dump()
                );
                assert_ne!(old.verdict, new.verdict, "{what}: {}", c.witness.spec());
                counterexamples += 1;
            }
        }
        for (what, x) in rewrites(base, k) {
            let d = analysis::diff(base, &x, Hook::Input, 1, &mut |_| {}).unwrap();
            assert!(d.comparison.equivalent(), "rewrite {what} found different");
            let Some((x_art, x_gen)) = load(&x) else {
                continue;
            };
            let mut sample = sample_frames(base, seed + k as u64, 40, &FrameOpts::default());
            sample.extend(sample_frames(
                &x,
                seed + 1000 + k as u64,
                40,
                &FrameOpts::default(),
            ));
            for f in sample.iter().filter(|f| f.len() >= 14) {
                let (old, new) = (kernel(&base_art, &base_gen, f), kernel(&x_art, &x_gen, f));
                assert_eq!(
                    old.verdict,
                    new.verdict,
                    "rewrite {what} decides a frame differently in the kernel: {f:02x?}\nOLD:\n{}\nNEW:\n{}",
                    base.dump(),
                    x.dump()
                );
                frames += 1;
            }
            equivalent += 1;
        }
    }
    eprintln!(
        "analysis_kernel: {different} different pairs, {counterexamples} counterexamples decided in the \
         kernel as printed; {equivalent} equivalent rewrites, {frames} frames with equal kernel verdicts"
    );
    assert!(
        different >= 10 && counterexamples >= different && equivalent >= 10,
        "the sample must exercise the comparison"
    );
}
