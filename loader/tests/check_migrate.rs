//! `tailwall check` and `tailwall migrate`: text and JSON output (insta snapshots), exit codes, no root.
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run_in(dir: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_tailwall"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn tailwall(args: &[&str]) -> Run {
    run_in(&root(), args)
}

/// A scratch directory for this test process; files are written there and the binary runs in it, so
/// that file names in the output are short and stable.
fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tailwall-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(name: &str, text: &str) -> PathBuf {
    let p = scratch().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const SHADOWED: &str = "\
*filter
:INPUT DROP [0:0]
-A INPUT -s 10.0.0.0/8 -j DROP
-A INPUT -s 10.1.0.0/16 -p tcp -m tcp --dport 22 -j ACCEPT
-A INPUT -p tcp -m tcp --dport 0:1023 -j ACCEPT
-A INPUT -p tcp -m tcp --dport 1024:65535 -j ACCEPT
-A INPUT -p tcp -m tcp -j ACCEPT
-A INPUT -p tcp -m tcp --dport 8080 -j DROP
-A INPUT -p tcp -j DROP
-A INPUT -s 10.0.0.0/8 -j DROP
-A INPUT -p udp ! --dport 0:65535 -j ACCEPT
COMMIT
";

#[test]
fn check_clean_ruleset_exits_0() {
    let r = tailwall(&["check", "examples/rulesets/demo.rules"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stderr, "");
    insta::assert_snapshot!(r.stdout, @"examples/rulesets/demo.rules: ok, 8 rules in 1 chain (0 errors, 0 warnings, 0 notes)");
}

#[test]
fn check_shadowed_rules_warn_at_rule_with_notes() {
    write("shadowed.rules", SHADOWED);
    let r = run_in(&scratch(), &["check", "shadowed.rules"]);
    assert_eq!(r.code, 0, "warnings do not fail the check: {}", r.stderr);
    insta::assert_snapshot!(
        "check_shadowed_text",
        format!("{}\n--- stdout\n{}", r.stderr, r.stdout)
    );
}

#[test]
fn check_json_lists_every_diagnostic_with_location() {
    write("shadowed.rules", SHADOWED);
    let r = run_in(&scratch(), &["check", "shadowed.rules", "-o", "json"]);
    assert_eq!(r.code, 0);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["schema_version"], 1);
    assert_eq!(doc["summary"]["warnings"], 5);
    insta::assert_snapshot!("check_shadowed_json", r.stdout);
}

#[test]
fn check_parse_error_exits_2() {
    write(
        "unterminated.rules",
        "*filter\n:INPUT DROP [0:0]\n-A INPUT -m comment --comment \"open -j ACCEPT\nCOMMIT\n",
    );
    let r = run_in(&scratch(), &["check", "unterminated.rules"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("unterminated.rules:3:"), "{}", r.stderr);
    assert!(r.stderr.contains("error[E01"), "{}", r.stderr);
    assert_eq!(r.stdout, "");
    let j = run_in(&scratch(), &["check", "unterminated.rules", "-o", "json"]);
    assert_eq!(j.code, 2);
    let doc: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(doc["diagnostics"][0]["severity"], "error");
    assert_eq!(doc["diagnostics"][0]["line"], 3);
}

#[test]
fn check_semantic_errors_exit_3_all_reported() {
    write(
        "semantic.rules",
        "*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 70000 -j ACCEPT\n-A INPUT -p udp --sport 4:3 -j DROP\n-A INPUT -s 10.0.0.0/33 -j DROP\nCOMMIT\n",
    );
    let r = run_in(&scratch(), &["check", "semantic.rules"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    insta::assert_snapshot!("check_semantic_text", r.stderr);
}

#[test]
fn check_unreadable_file_is_a_usage_error() {
    let r = tailwall(&["check", "does/not/exist.rules"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .starts_with("tailwall: error: cannot read does/not/exist.rules"),
        "{}",
        r.stderr
    );
    let p = scratch().join("binary.rules");
    std::fs::write(&p, b"*filter\n\xff\xfe\nCOMMIT\n").unwrap();
    let r = run_in(&scratch(), &["check", "binary.rules"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("not UTF-8"), "{}", r.stderr);
}

/// `check` needs no privileges: run it as `nobody` when the tests run as root.
#[test]
fn check_works_unprivileged() {
    if unsafe { libc::geteuid() } != 0 {
        // Already unprivileged: the other tests cover it.
        let r = tailwall(&["check", "examples/rulesets/demo.rules"]);
        assert_eq!(r.code, 0);
        return;
    }
    let p = write("nobody.rules", SHADOWED);
    let mut perms = std::fs::metadata(scratch()).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(scratch(), perms).unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_tailwall"))
        .arg("check")
        .arg(&p)
        .output()
        .expect("setpriv (util-linux)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("warning[W0101]"), "{stderr}");
}
