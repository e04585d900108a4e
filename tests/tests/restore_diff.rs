//! Differential test of the iptables front end against `iptables-legacy-restore` (root; otherwise
//! "skipped: not root", a failure with `TAILWALL_REQUIRE_KERNEL=1`; skipped when the shared corpus is
//! absent). See `tailwall_tests::restore_diff` for what is compared and `restore_gen` for what is
//! generated.
//!
//! CI: seed [`CI_SEED`], files of [`RULES_PER_FILE`] rules until at least [`CI_RULES`] rules were
//! generated. `scripts/restore-diff.sh SEED SECONDS` runs the same test with
//! `TAILWALL_RESTORE_DIFF_SEED` / `TAILWALL_RESTORE_DIFF_SECONDS` (then it runs for that long, however many
//! rules that is).
//!
//! Asserts: zero *unexplained* differences. Every difference is printed with its kind; a difference of a
//! kind in `restore_diff::KNOWN` (documented in docs/conformance.md, "Differential test") is counted, not
//! failed.
use std::time::{Duration, Instant};
use tailwall_tests::netns::require_root_or_skip;
use tailwall_tests::restore_diff::{classify, Differ};
use tailwall_tests::restore_gen::{load_seeds, Generator};

const CI_SEED: u64 = 7;
const CI_RULES: usize = 2_400;
const RULES_PER_FILE: usize = 40;

#[test]
fn generated_files_agree_with_iptables_legacy_restore() {
    if !require_root_or_skip("restore_diff") {
        return;
    }
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    let seeds = load_seeds(&root);
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    let seed = env("TAILWALL_RESTORE_DIFF_SEED").unwrap_or(CI_SEED);
    let seconds = env("TAILWALL_RESTORE_DIFF_SECONDS");
    let n_seeds = seeds.len();
    let Some(mut gen) = Generator::new(seeds, seed) else {
        eprintln!("restore_diff: skipped: corpus {} absent", root.display());
        return;
    };
    let mut differ = Differ::new().expect("netns");
    let started = Instant::now();
    loop {
        let done = match seconds {
            Some(s) => started.elapsed() >= Duration::from_secs(s),
            None => differ.stats.rules >= CI_RULES,
        };
        if done {
            break;
        }
        let file = gen.file(RULES_PER_FILE);
        if let Err(e) = differ.run_file(&file) {
            panic!(
                "{e:#}\n--- file:\n{}",
                String::from_utf8_lossy(&file.bytes())
            );
        }
    }
    let st = &differ.stats;
    let mut unexplained = 0;
    let mut by_kind: std::collections::BTreeMap<&str, usize> = Default::default();
    for d in &st.differences {
        match classify(d) {
            Some(k) => {
                *by_kind.entry(k.name).or_default() += 1;
                eprintln!("known ({}): {d}", k.name);
            }
            None => {
                unexplained += 1;
                eprintln!("UNEXPLAINED: {d}");
            }
        }
    }
    eprintln!(
        "restore_diff: seed {seed}, {n_seeds} corpus seeds, {} files, {} rules generated, {} refused by both at \
         the same line ({} of them by the kernel at COMMIT), {} printed the same, {} differences ({unexplained} unexplained; by kind {by_kind:?}), \
         {} iptables calls, {:?}",
        st.files,
        st.rules,
        st.refused_agreed,
        st.refused_by_kernel,
        st.printed_agreed,
        st.differences.len(),
        st.calls,
        started.elapsed()
    );
    assert!(seconds.is_some() || st.rules >= CI_RULES);
    assert_eq!(unexplained, 0, "unexplained differences (see above)");
}
