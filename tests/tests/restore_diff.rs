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
//! Regression cases: every kind this test found and that was fixed has a file in `tests/fixtures/restore_diff/`
//! (`NAME.rules`, IPv6 when the name has `v6`) with what iptables-legacy-restore 1.8.9 did with it
//! (`NAME.expected`: `refuses line N`, or `accepts` and the rules iptables-save printed). tailwall must give
//! that result (no root needed), and, as root, iptables must still give it.
//!
//! Asserts: zero *unexplained* differences. Every difference is printed with its kind; a difference of a
//! kind in `restore_diff::KNOWN` (documented in docs/conformance.md, "Differential test") is counted, not
//! failed.
use std::time::{Duration, Instant};
use tailwall_tests::netns::require_root_or_skip;
use tailwall_tests::restore_diff::{classify, expected_text, table_of, tailwall, Differ};
use tailwall_tests::restore_gen::{load_seeds, Family, Generator};

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

/// The regression cases: `(name, family, rules bytes, expected text)`.
fn cases() -> Vec<(String, Family, Vec<u8>, String)> {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/restore_diff");
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).expect("fixtures/restore_diff") {
        let path = e.expect("entry").path();
        if path.extension().is_none_or(|x| x != "rules") {
            continue;
        }
        let name = path
            .file_stem()
            .expect("stem")
            .to_string_lossy()
            .into_owned();
        let family = if name.contains("v6") {
            Family::V6
        } else {
            Family::V4
        };
        let bytes = std::fs::read(&path).expect("read case");
        let expected = std::fs::read_to_string(path.with_extension("expected")).expect("expected");
        out.push((name, family, bytes, expected));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(!out.is_empty());
    out
}

#[test]
fn regression_cases_give_iptables_result() {
    for (name, _, bytes, expected) in cases() {
        let got = expected_text(&tailwall(&bytes, &table_of(&bytes)));
        assert_eq!(got, expected, "{name}");
    }
}

#[test]
fn regression_cases_are_what_iptables_does() {
    if !require_root_or_skip("restore_diff") {
        return;
    }
    let mut differ = Differ::new().expect("netns");
    for (name, family, bytes, expected) in cases() {
        let got = differ.iptables_expected(family, &bytes).expect("iptables");
        assert_eq!(
            got, expected,
            "{name}: iptables-legacy-restore 1.8.9 gives this"
        );
    }
}
