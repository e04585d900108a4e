//! Input and privilege hygiene of the `tailwall` binary: output paths that would destroy the input or
//! go through a symlink are refused; the commands that need no privilege run as `nobody`, the ones that
//! do say what they need (exit 6) instead of a raw errno.
use std::{
    os::unix::{fs::PermissionsExt as _, process::CommandExt as _},
    path::PathBuf,
    process::{Command, Output},
};

const BIN: &str = env!("CARGO_BIN_EXE_tailwall");
const RULES: &str = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 22 -j DROP\nCOMMIT\n";

/// A world-readable scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("tw-hyg-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("scratch");
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        Scratch(d)
    }

    fn file(&self, name: &str, body: &str) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, body).expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        p.display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn migrate_refuses_to_overwrite_its_input_or_follow_a_symlink() {
    let s = Scratch::new("migrate");
    let dump = s.file("fw.dump", RULES);
    let o = Command::new(BIN)
        .args(["migrate", &dump, "--to", &dump])
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert_eq!(
        std::fs::read_to_string(&dump).expect("dump"),
        RULES,
        "input intact"
    );
    let victim = s.file("victim", "precious\n");
    let link = s.0.join("out.yaml");
    std::os::unix::fs::symlink(&victim, &link).expect("symlink");
    let o = Command::new(BIN)
        .args(["migrate", &dump, "--to"])
        .arg(&link)
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert_eq!(
        std::fs::read_to_string(&victim).expect("victim"),
        "precious\n"
    );
    let out = s.0.join("fw.yaml");
    let o = Command::new(BIN)
        .args(["migrate", &dump, "--to"])
        .arg(&out)
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(std::fs::read_to_string(&out)
        .expect("yaml")
        .contains("input:"));
}

/// Run tailwall as `nobody` (uid/gid 65534).
fn as_nobody(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .uid(65534)
        .gid(65534)
        .env_remove("HOME")
        .output()
        .expect("run as nobody")
}

/// A one-frame pcap (Ethernet): an IPv4/TCP packet to port 22.
fn pcap() -> Vec<u8> {
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

#[test]
fn unprivileged_commands_run_as_nobody_and_privileged_ones_say_what_they_need() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("nobody: skipped: not root (cannot switch to nobody)");
        return;
    }
    let s = Scratch::new("nobody");
    let rules = s.file("fw.rules", RULES);
    let yaml = s.0.join("fw.yaml");
    let cap = s.0.join("one.pcap");
    std::fs::write(&cap, pcap()).expect("pcap");
    std::fs::set_permissions(&cap, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    std::fs::set_permissions(&s.0, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let cap = cap.display().to_string();
    for args in [
        vec!["check", rules.as_str()],
        vec!["compile", rules.as_str()],
        vec!["compile", rules.as_str(), "--dump", "tables"],
        vec![
            "replay",
            rules.as_str(),
            "--pcap",
            cap.as_str(),
            "--engine",
            "sim",
        ],
        vec![
            "migrate",
            rules.as_str(),
            "--to",
            yaml.to_str().expect("utf-8"),
        ],
        vec!["--version"],
    ] {
        let o = as_nobody(&args);
        assert_eq!(o.status.code(), Some(0), "as nobody {args:?}: {}", text(&o));
    }
    // A namespace to enter with --netns (found by a tester: exit 2 "Operation not permitted").
    let ns = NetnsGuard::new();
    let n = ns.0.as_str();
    for args in [
        vec!["compile", rules.as_str(), "--attach", "lo"],
        vec!["status", "lo"],
        // Without privileges `status` cannot know: it said "no interface filtered", exit 0.
        vec!["status"],
        vec!["stats", "lo"],
        vec!["show", "lo"],
        vec!["detach", "lo"],
        vec!["detach", "--all"],
        vec!["rollback", "lo"],
        vec!["confirm", "lo"],
        vec!["gc"],
        vec![
            "replay",
            rules.as_str(),
            "--pcap",
            cap.as_str(),
            "--engine",
            "kernel",
        ],
        vec!["--netns", n, "status"],
        vec!["--netns", n, "stats", "lo"],
        vec!["--netns", n, "compile", rules.as_str(), "--attach", "lo"],
    ] {
        let o = as_nobody(&args);
        assert_eq!(o.status.code(), Some(6), "as nobody {args:?}: {}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("needs CAP_BPF and CAP_NET_ADMIN"),
            "as nobody {args:?}: {}",
            text(&o)
        );
    }
}

/// A network namespace `twl6-hyg-<pid>`, deleted on drop.
struct NetnsGuard(String);

impl NetnsGuard {
    fn new() -> NetnsGuard {
        let name = format!("twl6-hyg-{}", std::process::id());
        let o = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .expect("ip");
        assert!(o.status.success(), "ip netns add: {}", text(&o));
        NetnsGuard(name)
    }
}

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

#[test]
fn rules_from_stdin_with_format() {
    use std::io::Write as _;
    let run = |args: &[&str], input: &str| {
        let mut child = Command::new(BIN)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write");
        child.wait_with_output().expect("wait")
    };
    let o = run(&["compile", "-", "-o", "json"], RULES);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let yaml = "chains:\n  input:\n    policy: drop\n";
    let o = run(&["compile", "-", "--format", "yaml", "-o", "json"], yaml);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(doc["policy"], "DROP", "{doc}");
    // Without --format, stdin is iptables-save: the YAML is a parse error located in `<stdin>`, and
    // -o json prints no half document.
    let o = run(&["compile", "-"], yaml);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("<stdin>:1:1"),
        "{}",
        text(&o)
    );
    // A runtime error with -o json is a JSON document too.
    let o = run(&["compile", "/nonexistent/x.rules", "-o", "json"], "");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json error");
    assert_eq!(doc["error"]["exit_code"], 2, "{doc}");
}
