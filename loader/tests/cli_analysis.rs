//! CLI tier of the analysis commands: `diff` (text snapshot, JSON, exit codes, pcap of counterexamples),
//! `explain` (text snapshot, agreement with the compiled tables) and the proof line of `compile`.
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

fn tailwall(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_tailwall"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

const OLD: &str = "compiler/tests/fixtures/analysis/old.rules";
const NEW: &str = "compiler/tests/fixtures/analysis/new.rules";
const SAME: &str = "compiler/tests/fixtures/analysis/same.yaml";

#[test]
fn diff_prints_counterexamples_and_exits_1() {
    let r = tailwall(&["diff", OLD, NEW]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    insta::assert_snapshot!("diff_old_new", r.stdout);
}

#[test]
fn diff_of_equivalent_rulesets_in_two_formats_exits_0() {
    let r = tailwall(&["diff", OLD, SAME]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    insta::assert_snapshot!("diff_old_same", r.stdout);
}

#[test]
fn diff_json_and_pcap_hold_one_packet_per_counterexample() {
    let pcap = std::env::temp_dir().join(format!("tailwall-diff-{}.pcap", std::process::id()));
    let r = tailwall(&[
        "diff",
        OLD,
        NEW,
        "--hook",
        "input",
        "-o",
        "json",
        "--limit",
        "2",
        "--pcap-out",
        pcap.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["schema_version"], 1);
    assert_eq!(doc["equivalent"], false);
    let cx = doc["hooks"][0]["counterexamples"].as_array().unwrap();
    assert_eq!(cx.len(), 2);
    assert_eq!(doc["hooks"][0]["pairs"], 4);
    // The pcap replays through the compiled INPUT classifier... of a ruleset the datapath compiles: the
    // frames must at least be read back, one per counterexample.
    let bytes = std::fs::read(&pcap).unwrap();
    let mut reader = pcap_file::pcap::PcapReader::new(bytes.as_slice()).unwrap();
    let mut n = 0;
    while let Some(p) = reader.next_packet() {
        p.unwrap();
        n += 1;
    }
    assert_eq!(n, 2);
    let _ = std::fs::remove_file(pcap);
}

#[test]
fn diff_input_errors_exit_2_or_3() {
    for (text, code) in [
        (
            "*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport\nCOMMIT\n",
            2,
        ),
        // Invalid (iptables-restore refuses it too): 2.
        (
            "*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport x -j ACCEPT\nCOMMIT\n",
            2,
        ),
        // Valid, not supported yet: 3.
        (
            "*filter\n:INPUT DROP [0:0]\n-A INPUT -m quota --quota 10 -j ACCEPT\nCOMMIT\n",
            3,
        ),
    ] {
        let bad = std::env::temp_dir().join(format!(
            "tailwall-diff-bad-{}-{code}.rules",
            std::process::id()
        ));
        std::fs::write(&bad, text).unwrap();
        let r = tailwall(&["diff", OLD, bad.to_str().unwrap()]);
        assert_eq!(r.code, code, "{}", r.stderr);
        let _ = std::fs::remove_file(bad);
    }
}

#[test]
fn explain_follows_the_jump_and_agrees_with_the_tables() {
    let r = tailwall(&[
        "explain",
        OLD,
        "--packet",
        "tcp 10.20.30.7:40000 -> 192.0.2.1:22",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    insta::assert_snapshot!("explain_ssh", r.stdout);
    // A counterexample printed by diff pastes into explain.
    let r = tailwall(&[
        "explain",
        NEW,
        "--packet",
        "tcp 10.20.0.1:1024 -> 0.0.0.1:22",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("rules:    accept ssh #1"), "{}", r.stdout);
    let r = tailwall(&[
        "explain",
        "examples/rulesets/webserver.rules",
        "--packet",
        "tcp 10.20.30.1:1024 -> 192.0.2.1:22",
        "-o",
        "json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["agree"], true);
    assert_eq!(doc["compiled"]["rule"], 4);
    assert_eq!(doc["steps"][3]["matched"], true);
    assert_eq!(doc["steps"][0]["failed_field"], "src_ip");
    let r = tailwall(&["explain", OLD, "--packet", "tcp 10.0.0.1 -> 10.0.0.2"]);
    assert_eq!(r.code, 2);
}

#[test]
fn compile_reports_the_proof() {
    let r = tailwall(&["compile", "examples/rulesets/webserver.rules", "-o", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(doc["validated"]["ms"].as_f64().is_some());
    assert_eq!(doc["proof"], "proved");
    // --no-validate: the summary and the JSON say the proof was skipped.
    let r = tailwall(&[
        "compile",
        "examples/rulesets/webserver.rules",
        "--no-validate",
        "-o",
        "json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(doc["validated"].is_null(), "{doc}");
    assert_eq!(doc["proof"], "skipped");
    let r = tailwall(&[
        "compile",
        "examples/rulesets/webserver.rules",
        "--no-validate",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("proof:   skipped (--no-validate)"),
        "{}",
        r.stdout
    );
}
