//! `tailwall stats`, end to end (root; skipped otherwise unless `TAILWALL_REQUIRE_KERNEL=1`): a ruleset
//! attached to `twa` in a namespace `twl-stats-…` AND loaded into iptables-legacy there, traffic from
//! the peer `twb` in a second namespace (ping, a UDP datagram, TCP SYNs), then `stats` is compared with
//! `iptables-legacy -L -v -x -n --line-numbers` chain by chain — INPUT (XDP), FORWARD, and OUTPUT (the
//! namespace's own replies: echo replies, the port-unreachable, the RSTs, judged at tcx egress), each
//! with its policy counter —, and its whole text is an insta snapshot.
//!
//! The rules accept everything the peer sends, so every packet XDP counts also reaches iptables.
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_tailwall");

const RULES: &str = "*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -s 10.9.0.0/24 -p tcp -m tcp --dport 22 -m comment --comment \"ssh from the lab\" -j ACCEPT
-A INPUT -p udp -m udp --dport 53 -j ACCEPT
-A INPUT -p icmp -j ACCEPT
-A INPUT ! -s 10.9.0.2/32 -p tcp -m multiport --dports 80,443 -j DROP
-A OUTPUT -p icmp -j ACCEPT
COMMIT
";

fn root() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    assert!(
        std::env::var("TAILWALL_REQUIRE_KERNEL").as_deref() != Ok("1"),
        "not root, but TAILWALL_REQUIRE_KERNEL=1"
    );
    eprintln!("cli stats: skipped: not root");
    false
}

fn run(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd).args(args).output().expect("spawn")
}

fn ok(cmd: &str, args: &[&str]) -> String {
    let o = run(cmd, args);
    assert!(o.status.success(), "{cmd} {args:?}: {o:?}");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Two namespaces: `a` holds `twa` (10.9.0.1, filtered), `b` holds `twb` (10.9.0.2).
struct Pair {
    a: String,
    b: String,
    dir: std::path::PathBuf,
}

impl Pair {
    fn new() -> Pair {
        let pid = std::process::id();
        let (a, b) = (format!("twl-stats-{pid}-a"), format!("twl-stats-{pid}-b"));
        for n in [&a, &b] {
            ok("ip", &["netns", "add", n]);
            ok("ip", &["-n", n, "link", "set", "lo", "up"]);
        }
        ok(
            "ip",
            &[
                "-n", &a, "link", "add", "twa", "type", "veth", "peer", "name", "twb", "netns", &b,
            ],
        );
        ok(
            "ip",
            &["-n", &a, "addr", "add", "10.9.0.1/24", "dev", "twa"],
        );
        ok(
            "ip",
            &["-n", &b, "addr", "add", "10.9.0.2/24", "dev", "twb"],
        );
        ok("ip", &["-n", &a, "link", "set", "twa", "up"]);
        ok("ip", &["-n", &b, "link", "set", "twb", "up"]);
        let dir = std::env::temp_dir().join(&a);
        std::fs::create_dir_all(&dir).expect("temp dir");
        Pair { a, b, dir }
    }
    fn tw(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .arg("--netns")
            .arg(&self.a)
            .args(args)
            .output()
            .expect("run tailwall")
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        let _ = self.tw(&["detach", "--all"]);
        for n in [&self.a, &self.b] {
            let _ = run("ip", &["netns", "del", n]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The block of `chain` in a listing (its header to the blank line after it).
fn chain_block<'a>(listing: &'a str, chain: &str) -> &'a str {
    let start = listing
        .find(&format!("Chain {chain} "))
        .unwrap_or_else(|| panic!("no chain {chain} in:\n{listing}"));
    let rest = &listing[start..];
    &rest[..rest.find("\n\n").map_or(rest.len(), |e| e + 1)]
}

#[test]
fn stats_lists_the_live_counters_as_iptables_does() {
    if !root() {
        return;
    }
    let p = Pair::new();
    let rules = p.dir.join("lab.rules");
    std::fs::write(&rules, RULES).expect("write rules");
    let o = p.tw(&[
        "compile",
        &rules.display().to_string(),
        "--attach",
        "twa",
        "--mode",
        "generic",
    ]);
    assert!(o.status.success(), "attach: {o:?}");
    let o = Command::new("ip")
        .args(["netns", "exec", &p.a, "iptables-legacy-restore"])
        .stdin(std::fs::File::open(&rules).expect("rules"))
        .output()
        .expect("restore");
    assert!(o.status.success(), "iptables-legacy-restore: {o:?}");
    // Start from zero on both sides (neighbour discovery may already have run).
    let o = p.tw(&["stats", "twa", "--zero"]);
    assert!(o.status.success(), "stats --zero: {o:?}");
    ok("ip", &["netns", "exec", &p.a, "iptables-legacy", "-Z"]);

    // Traffic from the peer: 3 pings (84-byte datagrams), one UDP datagram to 53, TCP SYNs to 22
    // and 80 (refused by the host's stack with a RST, which is OUTPUT).
    ok(
        "ip",
        &[
            "netns", "exec", &p.b, "ping", "-c", "3", "-i", "0.2", "-W", "1", "10.9.0.1",
        ],
    );
    ok(
        "ip",
        &[
            "netns",
            "exec",
            &p.b,
            "bash",
            "-c",
            "echo hello > /dev/udp/10.9.0.1/53",
        ],
    );
    for port in ["22", "80"] {
        let _ = run(
            "ip",
            &[
                "netns",
                "exec",
                &p.b,
                "bash",
                "-c",
                &format!("exec 3<>/dev/tcp/10.9.0.1/{port}"),
            ],
        );
    }
    std::thread::sleep(std::time::Duration::from_millis(300));

    let o = p.tw(&["stats", "twa"]);
    assert!(o.status.success(), "stats: {o:?}");
    let ours = String::from_utf8_lossy(&o.stdout).into_owned();
    let theirs = ok(
        "ip",
        &[
            "netns",
            "exec",
            &p.a,
            "iptables-legacy",
            "-L",
            "-v",
            "-x",
            "-n",
            "--line-numbers",
        ],
    );
    for chain in ["INPUT", "FORWARD", "OUTPUT"] {
        assert_eq!(
            chain_block(&ours, chain),
            chain_block(&theirs, chain),
            "{chain}: stats:\n{ours}\niptables:\n{theirs}"
        );
    }
    insta::assert_snapshot!("stats_text", ours);

    let o = p.tw(&["stats", "twa", "-o", "json"]);
    assert!(o.status.success(), "stats -o json: {o:?}");
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(j["schema_version"], 1);
    assert_eq!(j["chains"][0]["name"], "INPUT");
    let icmp = &j["chains"][0]["rules"][2];
    assert_eq!(icmp["iptables"], "-A INPUT -p icmp -j ACCEPT");
    assert_eq!(icmp["packets"], 3);
    assert_eq!(icmp["bytes"], 252);
    assert_eq!(icmp["exact"], true);
    assert!(
        icmp["rule"].is_string() || icmp["rule"].is_number(),
        "{icmp}"
    );
}
