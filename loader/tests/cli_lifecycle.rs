//! The `tailwall` binary's lifecycle commands, end to end as an operator runs them, on a veth pair in
//! a throwaway network namespace (root; skipped otherwise unless `TAILWALL_REQUIRE_KERNEL=1`).
//!
//! Covered: the private-mount-namespace refusal (`ip netns exec NS tailwall … --attach`), the refusal
//! of a ruleset that enforces nothing, `--dump` with `--attach`, `status`, `show`, `stats --zero`,
//! `rollback`, `--confirm` with and without `confirm`, `detach --all`, and the exit codes of each;
//! a `--confirm` cancelled by a later apply and a killed confirm timer; a failed attach leaving no
//! record; a renamed device; a deleted record; re-applying the same rules from another file; a map the
//! kernel cannot allocate. Namespaces are `twl6-<pid>-<n>`.
use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

const BIN: &str = env!("CARGO_BIN_EXE_tailwall");

fn root() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    assert!(
        std::env::var("TAILWALL_REQUIRE_KERNEL").as_deref() != Ok("1"),
        "not root, but TAILWALL_REQUIRE_KERNEL=1"
    );
    eprintln!("cli lifecycle: skipped: not root");
    false
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A network namespace `twl6-<pid>-<n>` holding a veth pair `twa` <-> `twb` (both up), deleted on drop
/// with everything tailwall pinned for it.
struct Ns {
    name: String,
    dir: PathBuf,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip");
    assert!(out.status.success(), "ip {args:?}: {out:?}");
}

impl Ns {
    fn new() -> Ns {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("twl6-{}-{n}", std::process::id());
        ip(&["netns", "add", &name]);
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        ip(&[
            "-n", &name, "link", "add", "twa", "type", "veth", "peer", "name", "twb",
        ]);
        ip(&["-n", &name, "link", "set", "twa", "up"]);
        ip(&["-n", &name, "link", "set", "twb", "up"]);
        let dir = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&dir).expect("temp dir");
        Ns { name, dir }
    }

    /// `tailwall --netns NS ARGS…`.
    fn tw(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .arg("--netns")
            .arg(&self.name)
            .args(args)
            .output()
            .expect("run tailwall")
    }

    fn rules(&self, name: &str, body: &str) -> String {
        let p = self.dir.join(name);
        std::fs::write(&p, body).expect("write rules");
        p.display().to_string()
    }

    fn netns_key(&self) -> String {
        use std::os::unix::fs::MetadataExt as _;
        std::fs::metadata(format!("/run/netns/{}", self.name))
            .expect("netns")
            .ino()
            .to_string()
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = self.tw(&["detach", "--all"]);
        use std::os::unix::fs::MetadataExt as _;
        if let Ok(m) = std::fs::metadata(format!("/run/netns/{}", self.name)) {
            let key = m.ino().to_string();
            let _ = std::fs::remove_dir_all(Path::new("/sys/fs/bpf/tailwall").join(&key));
            let _ = std::fs::remove_dir_all(Path::new("/run/tailwall").join(&key));
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not json ({e}): {}", text(o)))
}

const DROP_SSH: &str = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 22 -j DROP\nCOMMIT\n";
const DROP_DNS: &str = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p udp --dport 53 -j DROP\nCOMMIT\n";

#[test]
fn private_mount_namespace_is_refused_with_the_fix() {
    if !root() {
        return;
    }
    let ns = Ns::new();
    let r = ns.rules("ssh.rules", DROP_SSH);
    // `ip netns exec` runs the command in a private mount namespace with a fresh /sys.
    let o = Command::new("ip")
        .args([
            "netns", "exec", &ns.name, BIN, "compile", &r, "--attach", "twa",
        ])
        .output()
        .expect("ip netns exec");
    assert_eq!(code(&o), 5, "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--netns"), "{}", text(&o));
    assert!(err.contains("would vanish"), "{}", text(&o));
    // Nothing attached, nothing pinned in the host's bpffs.
    let st = ns.tw(&["status", "twa", "-o", "json"]);
    assert_eq!(code(&st), 7, "{}", text(&st));
    assert_eq!(json(&st)["interfaces"].as_array().map(Vec::len), Some(0));
    // The fix works: --netns keeps the host's mount namespace.
    let o = ns.tw(&["compile", &r, "--attach", "twa", "--mode", "generic"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let st = ns.tw(&["status", "twa", "-o", "json"]);
    assert_eq!(code(&st), 0, "{}", text(&st));
    assert_eq!(json(&st)["interfaces"][0]["attached"], true);
}

#[test]
fn refuses_what_would_fail_open() {
    if !root() {
        return;
    }
    let ns = Ns::new();
    for (name, body) in [
        ("empty.rules", ""),
        ("accept.rules", "*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n"),
        (
            "accepts.rules",
            "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp -j ACCEPT\nCOMMIT\n",
        ),
    ] {
        let r = ns.rules(name, body);
        let o = ns.tw(&["compile", &r, "--attach", "twa", "--mode", "generic"]);
        assert_eq!(code(&o), 3, "{name}: {}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("--allow-empty"),
            "{}",
            text(&o)
        );
    }
    let st = ns.tw(&["status", "twa"]);
    assert_eq!(code(&st), 7, "nothing attached: {}", text(&st));
    let r = ns.rules("accept.rules", "*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n");
    let o = ns.tw(&[
        "compile",
        &r,
        "--attach",
        "twa",
        "--mode",
        "generic",
        "--allow-empty",
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o));

    // --dump with --attach is a usage error, not a silent skip of the attach.
    let r = ns.rules("ssh.rules", DROP_SSH);
    let o = ns.tw(&["compile", &r, "--attach", "twa", "--dump", "ir"]);
    assert_eq!(code(&o), 2, "{}", text(&o));

    // Native XDP asked where it cannot be had is an error with a hint; auto falls back with the reason.
    let o = ns.tw(&["compile", &r, "--attach", "lo", "--mode", "native"]);
    assert_ne!(code(&o), 0, "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("hint"),
        "{}",
        text(&o)
    );
    let key = ns.netns_key();
    assert!(
        !Path::new(&format!("/sys/fs/bpf/tailwall/{key}/lo")).exists(),
        "a failed first attach leaves no pins"
    );
    // … and no record directory: `status` listed a phantom "lo: not filtered by tailwall" that
    // `detach --all` did not remove (found by a tester).
    assert!(
        !Path::new(&format!("/run/tailwall/{key}/lo")).exists(),
        "a failed first attach leaves no record directory"
    );
    let st = ns.tw(&["status", "-o", "json"]);
    assert_eq!(code(&st), 0, "{}", text(&st));
    let names: Vec<_> = json(&st)["interfaces"]
        .as_array()
        .expect("interfaces")
        .iter()
        .map(|i| i["iface"].clone())
        .collect();
    assert_eq!(names, ["twa"], "{}", text(&st));
    let o = ns.tw(&["compile", &r, "--attach", "lo", "--mode", "auto"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("using generic"),
        "{}",
        text(&o)
    );
}

#[test]
fn status_show_stats_rollback_confirm_detach() {
    if !root() {
        return;
    }
    let ns = Ns::new();
    let ssh = ns.rules("ssh.rules", DROP_SSH);
    let dns = ns.rules("dns.rules", DROP_DNS);
    let attach = |r: &str, extra: &[&str]| {
        let mut a = vec!["compile", r, "--attach", "twa", "--mode", "generic"];
        a.extend_from_slice(extra);
        let o = ns.tw(&a);
        assert_eq!(code(&o), 0, "{}", text(&o));
        o
    };
    let generation = || {
        let st = ns.tw(&["status", "twa", "-o", "json"]);
        json(&st)["interfaces"][0]["generation"].as_u64()
    };
    attach(&ssh, &[]);
    assert_eq!(generation(), Some(1));
    let again = attach(&ssh, &[]);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("unchanged"),
        "{}",
        text(&again)
    );
    // show: the live ruleset as applied.
    let o = ns.tw(&["show", "twa"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), DROP_SSH);
    let o = ns.tw(&["show", "twa", "--format", "yaml"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("dst_port: 22"),
        "{}",
        text(&o)
    );

    attach(&dns, &[]);
    assert_eq!(generation(), Some(2));
    let st = json(&ns.tw(&["status", "twa", "-o", "json"]));
    assert_eq!(st["interfaces"][0]["previous"], serde_json::json!([1]));
    assert_eq!(
        String::from_utf8_lossy(&ns.tw(&["show", "twa"]).stdout),
        DROP_DNS
    );

    // rollback: back to generation 1, atomically; generation 2 is discarded.
    let o = ns.tw(&["rollback", "twa", "-o", "json"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert_eq!(json(&o)["generation"], 1);
    assert_eq!(generation(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&ns.tw(&["show", "twa"]).stdout),
        DROP_SSH
    );
    let o = ns.tw(&["rollback", "twa"]);
    assert_eq!(code(&o), 2, "nothing older than generation 1: {}", text(&o));

    // --confirm without confirm: reverts by itself.
    attach(&dns, &["--confirm", "2s"]);
    let g = generation().expect("attached");
    let st = json(&ns.tw(&["status", "twa", "-o", "json"]));
    assert_eq!(st["interfaces"][0]["pending_confirm"]["generation"], g);
    let start = Instant::now();
    while generation() != Some(1) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no revert after the --confirm deadline"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // --confirm with confirm: kept.
    attach(&dns, &["--confirm", "2s"]);
    let g = generation().expect("attached");
    let o = ns.tw(&["confirm", "twa"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(generation(), Some(g), "a confirmed apply stays");
    let o = ns.tw(&["confirm", "twa"]);
    assert_eq!(code(&o), 2, "nothing pending: {}", text(&o));

    // stats --zero.
    let o = ns.tw(&["stats", "twa", "--zero", "-o", "json"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert_eq!(json(&o)["zeroed"], true);

    // detach --all: nothing left, status says so (exit 7), stats is a usage error.
    let o = ns.tw(&["detach", "--all", "-o", "json"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert_eq!(json(&o)["detached"], serde_json::json!(["twa"]));
    assert_eq!(code(&ns.tw(&["status", "twa"])), 7);
    assert_eq!(code(&ns.tw(&["stats", "twa"])), 2);
    let key = ns.netns_key();
    assert!(!Path::new(&format!("/sys/fs/bpf/tailwall/{key}/twa")).exists());
}

#[test]
fn apply_config_converges_and_is_idempotent() {
    if !root() {
        return;
    }
    let ns = Ns::new();
    let conf = ns.dir.join("conf");
    std::fs::create_dir_all(&conf).expect("conf dir");
    std::fs::write(conf.join("twa.rules"), DROP_SSH).expect("rules");
    std::fs::write(conf.join("twb.yaml"), "chains:\n  input:\n    policy: accept\n    rules:\n      - proto: udp\n        dst_port: 53\n        action: drop\n").expect("yaml");
    std::fs::write(conf.join("README"), "not a rules file").expect("readme");
    let conf_s = conf.display().to_string();
    let o = ns.tw(&[
        "apply", "--config", &conf_s, "--mode", "generic", "-o", "json",
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let doc = json(&o);
    assert_eq!(doc["interfaces"].as_array().map(Vec::len), Some(2), "{doc}");
    assert_eq!(doc["interfaces"][0]["attached"]["unchanged"], false);
    // Again: nothing changes.
    let o = ns.tw(&["apply", "--config", &conf_s, "-o", "json"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let doc = json(&o);
    for i in 0..2 {
        assert_eq!(doc["interfaces"][i]["attached"]["unchanged"], true, "{doc}");
    }
    // One bad file: the others still converge, the bad one keeps its old filter, exit 3 (semantic).
    std::fs::write(conf.join("twa.rules"), "").expect("truncate");
    std::fs::write(
        conf.join("twb.yaml"),
        "chains:\n  input:\n    policy: drop\n",
    )
    .expect("yaml");
    let o = ns.tw(&["apply", "--config", &conf_s, "-o", "json"]);
    assert_eq!(code(&o), 3, "{}", text(&o));
    let doc = json(&o);
    assert_eq!(doc["interfaces"][0]["ok"], false, "{doc}");
    assert_eq!(doc["interfaces"][1]["ok"], true, "{doc}");
    assert_eq!(
        String::from_utf8_lossy(&ns.tw(&["show", "twa"]).stdout),
        DROP_SSH
    );
    // --only.
    let o = ns.tw(&["apply", "--config", &conf_s, "--only", "twb"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("unchanged"),
        "{}",
        text(&o)
    );
}

#[test]
fn missing_bpffs_and_deleted_namespace() {
    if !root() {
        return;
    }
    let ns = Ns::new();
    let r = ns.rules("ssh.rules", DROP_SSH);
    let o = ns.tw(&["compile", &r, "--attach", "twa", "--mode", "generic"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    // No bpffs at /sys/fs/bpf (a tmpfs over it in a private mount namespace): refused, exit 5, and
    // the filter attached before is untouched.
    let dns = ns.rules("dns.rules", DROP_DNS);
    let o = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(format!(
            "mount -t tmpfs none /sys/fs/bpf && exec {BIN} --netns {} compile {dns} --attach twa --mode generic",
            ns.name
        ))
        .output()
        .expect("unshare");
    assert_eq!(code(&o), 5, "{}", text(&o));
    let st = json(&ns.tw(&["status", "twa", "-o", "json"]));
    assert_eq!(st["interfaces"][0]["generation"], 1, "{st}");
    assert_eq!(
        String::from_utf8_lossy(&ns.tw(&["show", "twa"]).stdout),
        DROP_SSH
    );

    // Delete the namespace while attached: its pins are stale; `gc` removes them.
    let key = ns.netns_key();
    ip(&["netns", "del", &ns.name]);
    let pins = format!("/sys/fs/bpf/tailwall/{key}");
    assert!(Path::new(&pins).exists());
    let start = Instant::now();
    loop {
        let o = Command::new(BIN)
            .args(["gc", "-o", "json"])
            .output()
            .expect("gc");
        assert_eq!(code(&o), 0, "{}", text(&o));
        if !Path::new(&pins).exists() {
            break;
        }
        // The namespace's devices go away asynchronously after the last reference.
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "stale pins never collected: {}",
            text(&o)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The namespace's lock files go too (they stayed forever; namespace inodes are reused).
    let run = format!("/run/tailwall/{key}");
    assert!(
        !Path::new(&run).exists(),
        "{run} left behind: {:?}",
        std::fs::read_dir(&run).map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
    );
}

/// The `--confirm` of a generation that a later apply replaced is cancelled (it reverts nothing and
/// cannot be confirmed any more), and a killed timer is noticed: `status` says so, and the first
/// command after the deadline carries out the revert. Found by a tester: status showed "generation 2
/// reverts at <past time>" forever and `confirm` answered "generation 2 confirmed", exit 0, while
/// generation 3 was live.
#[test]
fn confirm_is_superseded_by_a_later_apply_and_a_killed_timer_is_noticed() {
    if !root() {
        return;
    }
    let ns = Ns::new();
    let ssh = ns.rules("ssh.rules", DROP_SSH);
    let dns = ns.rules("dns.rules", DROP_DNS);
    let both = ns.rules(
        "both.rules",
        "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 22 -j DROP\n-A INPUT -p udp --dport 53 -j DROP\nCOMMIT\n",
    );
    let attach = |r: &str, extra: &[&str]| {
        let mut a = vec!["compile", r, "--attach", "twa", "--mode", "generic"];
        a.extend_from_slice(extra);
        let o = ns.tw(&a);
        assert_eq!(code(&o), 0, "{}", text(&o));
        o
    };
    let status = || {
        let o = ns.tw(&["status", "twa", "-o", "json"]);
        assert_eq!(code(&o), 0, "{}", text(&o));
        json(&o)["interfaces"][0].clone()
    };
    attach(&ssh, &[]);
    attach(&dns, &["--confirm", "3s"]);
    let st = status();
    assert_eq!(st["generation"], 2, "{st}");
    assert_eq!(st["pending_confirm"]["generation"], 2, "{st}");
    assert_eq!(st["pending_confirm"]["timer_running"], true, "{st}");
    let o = attach(&both, &[]);
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .contains("cancelled the pending --confirm of generation 2"),
        "{}",
        text(&o)
    );
    let st = status();
    assert_eq!(st["generation"], 3, "{st}");
    assert_eq!(st["pending_confirm"], serde_json::Value::Null, "{st}");
    let o = ns.tw(&["confirm", "twa"]);
    assert_eq!(code(&o), 2, "generation 2 is not live: {}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("nothing waits for confirmation"),
        "{}",
        text(&o)
    );
    // Past generation 2's deadline: generation 3 stays, nothing is shown as pending.
    std::thread::sleep(Duration::from_secs(4));
    let st = status();
    assert_eq!(st["generation"], 3, "{st}");
    assert_eq!(st["pending_confirm"], serde_json::Value::Null, "{st}");
    let o = ns.tw(&["status", "twa"]);
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("pending"),
        "{}",
        text(&o)
    );

    // A killed timer: status says nothing reverts by itself and what to do; the first command after
    // the deadline reverts.
    attach(&ssh, &["--confirm", "2s"]);
    let st = status();
    assert_eq!(st["generation"], 4, "{st}");
    let pid = st["pending_confirm"]["timer_pid"]
        .as_u64()
        .unwrap_or_else(|| panic!("no timer pid: {st}"));
    // SAFETY: kill(2) on the timer process this test's tailwall started.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    let start = Instant::now();
    while status()["pending_confirm"]["timer_running"] != false {
        assert!(start.elapsed() < Duration::from_secs(2), "kill not noticed");
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = ns.tw(&["status", "twa"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("is gone") && out.contains("tailwall rollback twa"),
        "{}",
        text(&o)
    );
    std::thread::sleep(Duration::from_secs(3));
    let st = status();
    assert_eq!(st["generation"], 3, "the owed revert was carried out: {st}");
    assert_eq!(st["pending_confirm"], serde_json::Value::Null, "{st}");
    assert!(
        st["repaired"]
            .to_string()
            .contains("reverted to generation 3"),
        "{st}"
    );
}

/// A renamed device: the filter follows it, and so does `status` (found by a tester: `status` kept
/// naming the old device and `status NEW` said "not filtered", exit 7). An unknown name is exit 2.
#[test]
fn status_follows_a_renamed_device() {
    if !root() {
        return;
    }
    let ns = Ns::new();
    let r = ns.rules("ssh.rules", DROP_SSH);
    let o = ns.tw(&["compile", &r, "--attach", "twa", "--mode", "generic"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    ip(&["-n", &ns.name, "link", "set", "twa", "name", "twr"]);
    for name in ["twa", "twr"] {
        let o = ns.tw(&["status", name, "-o", "json"]);
        assert_eq!(code(&o), 0, "status {name}: {}", text(&o));
        let st = &json(&o)["interfaces"][0];
        assert_eq!(
            (&st["iface"], &st["device"], &st["attached"]),
            (&"twa".into(), &"twr".into(), &true.into()),
            "{st}"
        );
        let o = ns.tw(&["status", name]);
        assert!(
            String::from_utf8_lossy(&o.stdout).starts_with("twa (now twr): generation 1"),
            "{}",
            text(&o)
        );
    }
    // Applying by the new name is refused (the link is kept under the old one) and leaves nothing.
    let o = ns.tw(&["compile", &r, "--attach", "twr", "--mode", "generic"]);
    assert_ne!(code(&o), 0, "{}", text(&o));
    let key = ns.netns_key();
    assert!(!Path::new(&format!("/run/tailwall/{key}/twr")).exists());
    let st = json(&ns.tw(&["status", "-o", "json"]));
    assert_eq!(st["interfaces"].as_array().map(Vec::len), Some(1), "{st}");
    // An interface that does not exist is a usage error (a typo in a readiness probe), not "not
    // filtered"; one that exists and is not filtered is exit 7.
    let o = ns.tw(&["status", "nosuch"]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    let o = ns.tw(&["status", "twb"]);
    assert_eq!(code(&o), 7, "{}", text(&o));
    // The other commands follow the device too (`stats twr` said "no tailwall classifier is
    // attached to twr" while it was filtered).
    let o = ns.tw(&["stats", "twr", "-o", "json"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert_eq!(json(&o)["generation"], 1, "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&ns.tw(&["show", "twr"]).stdout),
        DROP_SSH
    );
    let o = ns.tw(&["detach", "twr"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let o = ns.tw(&["status", "twa"]);
    assert_eq!(code(&o), 2, "nothing kept, no such device: {}", text(&o));
    assert!(!Path::new(&format!("/sys/fs/bpf/tailwall/{key}/twa")).exists());
}

#[test]
fn systemd_units_verify() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("systemd units: skipped: no systemd-analyze");
        return;
    }
    let dir = std::env::temp_dir().join(format!("tw-units-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist/systemd");
    for (unit, name) in [
        ("tailwall.service", "tailwall.service"),
        ("tailwall@.service", "tailwall@eth0.service"),
    ] {
        let text = std::fs::read_to_string(src.join(unit)).expect("unit");
        assert!(text.contains("ExecStart=/usr/bin/tailwall apply --config /etc/tailwall"));
        let p = dir.join(name);
        std::fs::write(&p, text.replace("/usr/bin/tailwall", BIN)).expect("write");
        let o = Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(&p)
            .output()
            .expect("systemd-analyze");
        let err = String::from_utf8_lossy(&o.stderr);
        let problems: Vec<&str> = err
            .lines()
            .filter(|l| l.contains(name) || l.contains("tailwall"))
            .collect();
        assert!(
            o.status.success() && problems.is_empty(),
            "{unit}: {}",
            text_of(&o)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn text_of(o: &Output) -> String {
    text(o)
}

/// The record directory deleted while attached (a tmpfiles clean-up, an operator): found by a
/// tester, every command failed with "…/gen-1.json: entity not found: entity not found", no hint.
/// Now `status` reports the live generation with its record lost (mode from the kernel), `stats`
/// says what to do, and the next apply swaps atomically and records it again.
#[test]
fn a_deleted_record_is_reported_and_repaired_by_the_next_apply() {
    if !root() {
        return;
    }
    let ns = Ns::new();
    let ssh = ns.rules("ssh.rules", DROP_SSH);
    let o = ns.tw(&["compile", &ssh, "--attach", "twa", "--mode", "generic"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    std::fs::remove_dir_all(format!("/run/tailwall/{}/twa", ns.netns_key())).expect("rm -rf");
    let o = ns.tw(&["status", "twa", "-o", "json"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let st = &json(&o)["interfaces"][0];
    assert_eq!(
        (&st["attached"], &st["generation"], &st["record_lost"]),
        (&true.into(), &1.into(), &true.into()),
        "{st}"
    );
    assert_eq!(st["mode"], "generic", "the kernel's mode: {st}");
    let o = ns.tw(&["status"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        code(&o) == 0 && out.contains("record of generation 1 is lost"),
        "{}",
        text(&o)
    );
    let o = ns.tw(&["stats", "twa"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(code(&o), 1, "{}", text(&o));
    assert!(
        err.contains("apply the ruleset again") && !err.contains("entity not found"),
        "{}",
        text(&o)
    );
    // The default mode (native) is not the kernel's: refused as for any live link.
    let o = ns.tw(&["compile", &ssh, "--attach", "twa"]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("attached in generic mode"),
        "{}",
        text(&o)
    );
    let o = ns.tw(&["compile", &ssh, "--attach", "twa", "--mode", "generic"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("swapped atomically, generation 2"),
        "{}",
        text(&o)
    );
    let st = json(&ns.tw(&["status", "twa", "-o", "json"]));
    let st = &st["interfaces"][0];
    assert_eq!(
        (&st["generation"], &st["record_lost"], &st["source"]),
        (&2.into(), &false.into(), &ssh.as_str().into()),
        "{st}"
    );
    assert_eq!(code(&ns.tw(&["stats", "twa"])), 0);
}

/// Re-applying the same rules from another file changes nothing live, and the record follows the
/// latest apply (found by a tester: `status`/`show` kept naming the first file and its text).
#[test]
fn reapplying_the_same_rules_from_another_file_updates_the_record() {
    if !root() {
        return;
    }
    let ns = Ns::new();
    let ssh = ns.rules("ssh.rules", DROP_SSH);
    let copy_text = format!("# the same rules\n{DROP_SSH}");
    let copy = ns.rules("copy.rules", &copy_text);
    let o = ns.tw(&["compile", &ssh, "--attach", "twa", "--mode", "generic"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let o = ns.tw(&["compile", &copy, "--attach", "twa", "--mode", "generic"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("unchanged") && out.contains(&format!("applied from {ssh}")),
        "{}",
        text(&o)
    );
    let st = json(&ns.tw(&["status", "twa", "-o", "json"]));
    assert_eq!(
        (
            &st["interfaces"][0]["generation"],
            &st["interfaces"][0]["source"]
        ),
        (&1.into(), &copy.as_str().into()),
        "{st}"
    );
    assert_eq!(
        String::from_utf8_lossy(&ns.tw(&["show", "twa"]).stdout),
        copy_text
    );
}

/// `bpf(2)` command (include/uapi/linux/bpf.h).
const BPF_MAP_CREATE: u32 = 0;

/// `tailwall --netns NS ARGS…` under a seccomp filter that makes every `bpf(cmd, …)` fail with
/// `errno`, as the kernel itself answers when an allocation fails (`ENOMEM`: a memory cgroup limit;
/// checked by hand with a cgroup v1 `memory.limit_in_bytes` of 100 MiB and a 400 MB array map): the
/// failure path of an apply, deterministically. Every other syscall (and every other bpf command) is
/// untouched. (`BPF_PROG_LOAD` cannot be failed this way to stand for a verifier rejection: aya's
/// feature probes use the same command, and failing them fails the load before any program of ours.)
fn tw_with_failing_bpf(ns: &Ns, args: &[&str], cmd: u32, errno: i32) -> Output {
    use std::os::unix::process::CommandExt as _;
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    const RET_ALLOW: u32 = 0x7fff_0000;
    let ret_errno = 0x0005_0000 | errno as u32;
    let f = |code: u16, jt: u8, jf: u8, k: u32| libc::sock_filter { code, jt, jf, k };
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;
    // seccomp_data: nr at 0, arch at 4, args[0] at 16 (low half first on little endian).
    let prog = [
        f(LD_W_ABS, 0, 0, 4),
        f(JEQ_K, 0, 5, AUDIT_ARCH_X86_64),
        f(LD_W_ABS, 0, 0, 0),
        f(JEQ_K, 0, 3, libc::SYS_bpf as u32),
        f(LD_W_ABS, 0, 0, 16),
        f(JEQ_K, 0, 1, cmd),
        f(RET_K, 0, 0, ret_errno),
        f(RET_K, 0, 0, RET_ALLOW),
    ];
    let mut c = Command::new(BIN);
    c.arg("--netns").arg(&ns.name).args(args);
    // SAFETY: between fork and exec only prctl(2) on memory owned by the moved-in `prog`.
    unsafe {
        c.pre_exec(move || {
            let fprog = libc::sock_fprog {
                len: prog.len() as u16,
                filter: prog.as_ptr() as *mut libc::sock_filter,
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER,
                    &fprog as *const libc::sock_fprog,
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    c.output().expect("run tailwall under seccomp")
}

/// A map the kernel cannot allocate while applying: a clear message naming the map with a hint, exit
/// 1, and nothing live changes (the old generation keeps enforcing, no new
/// generation's pins or record are left; a failed first attach leaves nothing at all).
#[test]
fn a_failed_map_allocation_changes_nothing_live() {
    if !root() || std::env::consts::ARCH != "x86_64" {
        return;
    }
    let ns = Ns::new();
    let ssh = ns.rules("ssh.rules", DROP_SSH);
    let dns = ns.rules("dns.rules", DROP_DNS);
    let o = ns.tw(&["compile", &ssh, "--attach", "twa", "--mode", "generic"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let before = json(&ns.tw(&["status", "twa", "-o", "json"]))["interfaces"][0].clone();
    let key = ns.netns_key();
    for (cmd, errno, exit, says) in [(BPF_MAP_CREATE, libc::ENOMEM, 1, "cannot create map tw_")] {
        let apply = ["compile", &dns, "--attach", "twa", "--mode", "generic"];
        let o = tw_with_failing_bpf(&ns, &apply, cmd, errno);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(code(&o), exit, "bpf cmd {cmd}: {}", text(&o));
        assert!(err.contains(says), "bpf cmd {cmd}: {}", text(&o));
        assert_eq!(
            err.matches("(os error").count(),
            1,
            "said once: {}",
            text(&o)
        );
        let st = json(&ns.tw(&["status", "twa", "-o", "json"]))["interfaces"][0].clone();
        for k in ["generation", "digest", "prog_id", "link_id"] {
            assert_eq!(st[k], before[k], "bpf cmd {cmd}: {k}: {st}");
        }
        assert_eq!(
            String::from_utf8_lossy(&ns.tw(&["show", "twa"]).stdout),
            DROP_SSH
        );
        for dir in [
            format!("/sys/fs/bpf/tailwall/{key}/twa/gen-2"),
            format!("/run/tailwall/{key}/twa/gen-2.json"),
        ] {
            assert!(
                !Path::new(&dir).exists(),
                "bpf cmd {cmd}: {dir} left behind"
            );
        }
    }
    let o = tw_with_failing_bpf(
        &ns,
        &["compile", &dns, "--attach", "twb", "--mode", "generic"],
        BPF_MAP_CREATE,
        libc::ENOMEM,
    );
    assert_eq!(code(&o), 1, "{}", text(&o));
    for dir in [
        format!("/sys/fs/bpf/tailwall/{key}/twb"),
        format!("/run/tailwall/{key}/twb"),
    ] {
        assert!(
            !Path::new(&dir).exists(),
            "{dir} left by a failed first attach"
        );
    }
}
