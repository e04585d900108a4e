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
    assert!(
        !r.stderr.contains("error[") && !r.stderr.contains("warning["),
        "{}",
        r.stderr
    );
    insta::assert_snapshot!("check_clean_stdout", r.stdout);
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
fn check_semantic_errors_exit_2_all_reported() {
    write(
        "semantic.rules",
        "*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 70000 -j ACCEPT\n-A INPUT -p udp --sport 4:3 -j DROP\n-A INPUT -s 10.0.0.0/33 -j DROP\nCOMMIT\n",
    );
    let r = run_in(&scratch(), &["check", "semantic.rules"]);
    // iptables-restore refuses each of these too: invalid input, exit 2 (issue 7).
    assert_eq!(r.code, 2, "{}", r.stderr);
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

/// `check` and `migrate` need no privileges: run them as `nobody` when the tests run as root.
#[test]
fn check_and_migrate_work_unprivileged() {
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
    let dump = write("nobody.dump", SMALL_DUMP);
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_tailwall"))
        .arg("migrate")
        .arg(&dump)
        .output()
        .expect("setpriv (util-linux)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("summary: 6 rules"), "{stderr}");
}

// ---- migrate ---------------------------------------------------------------------------------------

const SMALL_DUMP: &str = "\
# Generated by iptables-save v1.8.7 on Sat Nov 21 01:00:00 2026
*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
[4:240] -A PREROUTING -p tcp --dport 8080 -j REDIRECT --to-ports 80
[9:540] -A POSTROUTING -o eth0 -j MASQUERADE
COMMIT
*filter
:INPUT DROP [12:720]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [30:1800]
[100:6000] -A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT
[7:420] -A INPUT -s 10.0.0.0/8 -p tcp -m tcp --dport 22 -m comment --comment \"ssh from the lab\" -j ACCEPT
[0:0] -A INPUT -p udp -m udp --dport 53 -j ACCEPT
[3:180] -A INPUT -p tcp -m tcp --dport 8000:8999 -j DROP
COMMIT
# Completed on Sat Nov 21 01:00:00 2026
";

#[test]
fn migrate_small_dump_yaml_and_report() {
    write("small.dump", SMALL_DUMP);
    let r = run_in(&scratch(), &["migrate", "small.dump"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    insta::assert_snapshot!("migrate_small_yaml", r.stdout);
    insta::assert_snapshot!("migrate_small_report", r.stderr);
}

#[test]
fn migrate_json_report_with_to_file() {
    write("small.dump", SMALL_DUMP);
    let r = run_in(
        &scratch(),
        &["migrate", "small.dump", "--to", "small.yaml", "-o", "json"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let yaml = std::fs::read_to_string(scratch().join("small.yaml")).unwrap();
    let stdout_yaml = run_in(&scratch(), &["migrate", "small.dump"]).stdout;
    assert_eq!(yaml, stdout_yaml, "--to writes what stdout would show");
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["schema_version"], 1);
    assert_eq!(doc["rules"].as_array().unwrap().len(), 6);
    insta::assert_snapshot!("migrate_small_json", r.stdout);
    // The YAML it wrote is a valid ruleset for `check`.
    let c = run_in(&scratch(), &["check", "small.yaml"]);
    assert!(c.code == 0 || c.code == 3, "{}", c.stderr);
    assert!(!c.stderr.contains("error[E01"), "{}", c.stderr);
}

#[test]
fn migrate_parse_error_exits_2_and_writes_nothing() {
    write(
        "broken.dump",
        "*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 70000 -j ACCEPT\nCOMMIT\n",
    );
    let r = run_in(
        &scratch(),
        &["migrate", "broken.dump", "--to", "broken.yaml"],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("broken.dump:3:25: error[E0304]"),
        "{}",
        r.stderr
    );
    assert!(!scratch().join("broken.yaml").exists());
    assert_eq!(r.stdout, "");
}

/// Issue 7 item 4 (found with real traffic: a migrated YAML let tcp/9999 through that its dump drops):
/// every unsupported filter rule stays in the YAML as an `unsupported` entry that `check` and `compile`
/// refuse, one located E0418 each; the supported rule is kept as usual.
#[test]
fn migrate_fails_closed_on_unsupported_rules() {
    write(
        "unsup.dump",
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
         -A INPUT -p tcp -m tcp --dport 9999 -m state --state NEW -j DROP\n\
         -A INPUT -p tcp -m tcp --dport 25 -j QUEUE\n\
         -A INPUT -p tcp -m limit --limit 5/sec -j DROP\n\
         -A INPUT -p tcp -m tcp --dport 26 -j DROP\n\
         -A OUTPUT -p udp -m udp --dport 53 -m conntrack --ctstate NEW -j DROP\nCOMMIT\n",
    );
    let r = run_in(&scratch(), &["migrate", "unsup.dump", "--to", "unsup.yaml"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let yaml = std::fs::read_to_string(scratch().join("unsup.yaml")).unwrap();
    assert_eq!(yaml.matches("- unsupported: ").count(), 4, "{yaml}");
    assert!(yaml.contains("dst_port: 26"), "{yaml}");
    for cmd in ["check", "compile"] {
        let r = run_in(&scratch(), &[cmd, "unsup.yaml"]);
        assert_eq!(r.code, 3, "{cmd}: {}", r.stderr);
        assert_eq!(
            r.stderr.matches("error[E0418]").count(),
            4,
            "{cmd}: {}",
            r.stderr
        );
        assert!(r.stderr.contains("unsup.yaml:8:22: error[E0418]: rule `-A INPUT -p tcp -m tcp --dport 9999 -m state --state NEW -j DROP`"), "{cmd}: {}", r.stderr);
        assert!(r.stderr.contains("(unsup.dump:6)"), "{cmd}: {}", r.stderr);
    }
}

/// Lines of a dump that are rules (`-A`/`-I`, optionally after `[packets:bytes]`).
fn rule_lines(text: &str) -> Vec<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| {
            let l = l.trim_start();
            let l = match l.strip_prefix('[') {
                Some(rest) => rest
                    .split_once(']')
                    .map(|(_, r)| r.trim_start())
                    .unwrap_or(l),
                None => l,
            };
            l.starts_with("-A ") || l.starts_with("-I ")
        })
        .map(|(i, _)| i + 1)
        .collect()
}

/// Every dump of the shared corpus: exit 0, one report line per rule line (same line numbers), the
/// YAML reads back (the command checks it), and the summaries are snapshotted.
#[test]
fn migrate_corpus_reports_every_rule() {
    let corpus = root().join("../shared/corpus");
    let mut files = Vec::new();
    for dir in ["dumps", "iptables-testsuite/shell-dumps"] {
        let Ok(rd) = std::fs::read_dir(corpus.join(dir)) else {
            eprintln!("skipped: {} absent", corpus.join(dir).display());
            continue;
        };
        for e in rd {
            files.push(e.unwrap().path());
        }
    }
    if files.is_empty() {
        return;
    }
    files.sort();
    let mut summaries = String::new();
    for f in &files {
        let name = format!(
            "{}/{}",
            f.parent().unwrap().file_name().unwrap().to_string_lossy(),
            f.file_name().unwrap().to_string_lossy()
        );
        let out = scratch().join("corpus.yaml");
        let r = tailwall(&[
            "migrate",
            f.to_str().unwrap(),
            "--to",
            out.to_str().unwrap(),
            "-o",
            "json",
        ]);
        if r.code != 0 {
            // A dump the front end rejects is reported as such (and located), never a crash.
            assert_eq!(r.code, 2, "{name}: {}", r.stderr);
            assert!(r.stderr.contains(": error["), "{name}: {}", r.stderr);
            summaries.push_str(&format!("{name}: rejected (exit 2)\n"));
            continue;
        }
        let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        let lines: Vec<usize> = doc["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["line"].as_u64().unwrap() as usize)
            .collect();
        let text = std::fs::read_to_string(f).unwrap();
        assert_eq!(
            lines,
            rule_lines(&text),
            "{name}: one report line per rule line"
        );
        let s = &doc["summary"];
        let total = s["exact"].as_u64().unwrap()
            + s["approximated"].as_u64().unwrap()
            + s["unsupported"].as_u64().unwrap();
        assert_eq!(total, s["rules"].as_u64().unwrap(), "{name}");
        let tables: Vec<String> = doc["tables"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["enforced"] == false)
            .map(|t| format!("{} {}", t["name"].as_str().unwrap(), t["rules"]))
            .collect();
        summaries.push_str(&format!(
            "{name}: {} rules, {} exact, {} approximated, {} unsupported ({} not enforced); other tables: [{}]\n",
            s["rules"], s["exact"], s["approximated"], s["unsupported"], s["not_enforced"],
            tables.join(", ")
        ));
    }
    insta::assert_snapshot!("migrate_corpus_summaries", summaries);
}

#[test]
fn check_yaml_reports_shadowing_and_compiles_interfaces() {
    write(
        "lists.yaml",
        "chains:\n  input:\n    policy: drop\n    rules:\n      - {proto: tcp, dst_port: [22, 80], action: accept}\n      - {proto: tcp, dst_port: 80, action: drop}\n      - {in_iface: eth0, action: accept}\n",
    );
    let r = run_in(&scratch(), &["check", "lists.yaml"]);
    // Warnings only: the interface match compiles (an `in_iface` stage, decision 0010).
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("lists.yaml:6:9: warning[W0101]"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("lists.yaml:5:9: note[N0101]"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("error["), "{}", r.stderr);
}

/// Exit 2 is "iptables-restore refuses it too" (a jump to a missing chain, a loop), exit 3 "valid, not
/// supported yet"; a file with both kinds is invalid (exit 2).
#[test]
fn check_exit_code_tells_invalid_from_unsupported() {
    let head = "*filter\n:INPUT DROP [0:0]\n:a - [0:0]\n";
    for (name, rules, code) in [
        ("missing.rules", "-A INPUT -j nochain\n", 2),
        ("loop.rules", "-A INPUT -j a\n-A a -j a\n", 2),
        (
            "unsupported.rules",
            "-A INPUT -m quota --quota 10 -j ACCEPT\n",
            3,
        ),
        (
            "both.rules",
            "-A INPUT -m quota --quota 10 -j ACCEPT\n-A INPUT -j nochain\n",
            2,
        ),
    ] {
        write(name, &format!("{head}{rules}COMMIT\n"));
        let r = run_in(&scratch(), &["check", name]);
        assert_eq!(r.code, code, "{name}: {}", r.stderr);
    }
}

#[test]
fn check_yaml_syntax_error_exits_2() {
    write("syntax.yaml", "chains: [\n");
    let r = run_in(&scratch(), &["check", "syntax.yaml"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.starts_with("syntax.yaml:1:9: error["),
        "{}",
        r.stderr
    );
    write("typo.yaml", "chains:\n  input:\n    policy: drop\n    rules:\n      - {proto: tcp, dst_prot: 22, action: accept}\n");
    let r = run_in(&scratch(), &["check", "typo.yaml"]);
    assert_eq!(r.code, 2, "an unknown key is invalid input: {}", r.stderr);
    assert!(r.stderr.contains("typo.yaml:5:22: error["), "{}", r.stderr);
}

/// Regression (found by the `iptables_parse` fuzz target, docs/fuzzing.md): a `--weekdays` value whose
/// third byte falls inside a multi-byte character panicked on a byte slice in the time match.
#[test]
fn check_time_weekday_multibyte_is_an_error_not_a_panic() {
    write(
        "weekday.rules",
        "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m time --weekdays Mo\u{e9}day -j ACCEPT\nCOMMIT\n",
    );
    let r = run_in(&scratch(), &["check", "weekday.rules"]);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("weekday.rules:3:"), "{}", r.stderr);
    let m = run_in(&scratch(), &["migrate", "weekday.rules"]);
    assert!(!m.stderr.contains("panicked"), "{}", m.stderr);
    assert_eq!(m.code, 2, "{}", m.stderr);
}

/// A one-frame pcap (Ethernet, IPv4/TCP to port 22), for `replay`.
fn one_frame_pcap() -> Vec<u8> {
    let frame = tailwall_compiler::packet::build_frame(
        [2, 0, 0, 0, 0, 1],
        [2, 0, 0, 0, 0, 2],
        std::net::Ipv4Addr::new(192, 0, 2, 2),
        std::net::Ipv4Addr::new(192, 0, 2, 1),
        6,
        0,
        &tailwall_compiler::packet::l4_header(6, 40000, 22, b""),
    );
    let mut b = Vec::new();
    b.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&4u16.to_le_bytes());
    for v in [0u32, 0, 65535, 1] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    for v in [0u32, 0, frame.len() as u32, frame.len() as u32] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    b.extend_from_slice(&frame);
    b
}

/// Issue 7 item 5: every non-root subcommand, on every front-end case file and on a large ruleset, with
/// stdout closed before the command writes (`| head -0`): never exit 101, never a panic message. The
/// command ends by SIGPIPE (as `cat` does) or with its own exit code.
#[test]
fn closed_stdout_never_panics_any_command() {
    use std::process::Stdio;
    let cases = root().join("../shared/cases/frontend");
    let Ok(entries) = std::fs::read_dir(&cases) else {
        eprintln!("skipped: {} absent", cases.display());
        return;
    };
    let dir = scratch();
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rules"))
        .collect();
    files.sort();
    let mut big = String::from("*filter\n:INPUT DROP [0:0]\n");
    for i in 0..1000 {
        big.push_str(&format!(
            "-A INPUT -p tcp -m tcp --dport {} -j ACCEPT\n",
            i + 1
        ));
    }
    big.push_str("COMMIT\n");
    let big_path = dir.join("big.rules");
    std::fs::write(&big_path, big).unwrap();
    files.push(big_path);
    let pcap = dir.join("one.pcap");
    std::fs::write(&pcap, one_frame_pcap()).unwrap();
    let pcap = pcap.display().to_string();
    let mut runs = 0;
    for f in &files {
        let f = f.display().to_string();
        let commands: Vec<Vec<&str>> = vec![
            vec!["check", &f],
            vec!["check", "-o", "json", &f],
            vec!["migrate", &f],
            vec!["migrate", "-o", "json", &f],
            vec!["compile", "--dump", "ir", &f],
            vec!["compile", "--dump", "tables", &f],
            vec!["compile", &f],
            vec!["replay", "--pcap", &pcap, &f],
            vec!["replay", "-o", "json", "--pcap", &pcap, &f],
        ];
        for args in commands {
            let mut child = Command::new(env!("CARGO_BIN_EXE_tailwall"))
                .args(&args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            drop(child.stdout.take());
            let out = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_ne!(out.status.code(), Some(101), "{args:?}: {stderr}");
            assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
            runs += 1;
        }
    }
    for args in [vec!["--help"], vec!["manpage"], vec!["completions", "bash"]] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tailwall"))
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_ne!(out.status.code(), Some(101), "{args:?}");
        assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
        runs += 1;
    }
    assert!(runs >= 100, "{runs}");
}

/// Issue 7 item 6: the input bound is checked while reading (`check /dev/zero` stops, exit 2).
#[test]
fn input_size_is_bounded_before_it_is_read() {
    let r = tailwall(&["check", "/dev/zero"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("MiB"), "{}", r.stderr);
}
