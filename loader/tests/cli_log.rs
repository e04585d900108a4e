//! `tailwall log`, end to end against the kernel's own LOG target (root; skipped otherwise unless
//! `TAILWALL_REQUIRE_KERNEL=1`): a ruleset with LOG rules attached to `twa` in a namespace AND loaded
//! into iptables-legacy there (`net.netfilter.nf_log_all_netns=1` for the test's duration, restored
//! after), traffic from the peer namespace, then every line the kernel printed (dmesg) must be a line
//! `tailwall log twa` prints for the same packet — field by field, no exception on these probes —
//! and the per-rule counters of `stats` equal iptables-legacy's.
//!
//! The rules accept everything the peer sends, so every packet XDP logs also reaches iptables.
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_tailwall");

fn rules(tag: &str) -> String {
    format!(
        "*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p tcp -m tcp --dport 22 -j LOG --log-prefix \"{tag}-ssh: \" --log-tcp-sequence --log-tcp-options --log-ip-options
-A INPUT -p udp -j LOG --log-prefix \"{tag}-udp: \" --log-level 6
-A INPUT -p icmp -j NFLOG --nflog-prefix {tag}-nflog
-A INPUT -p icmp -j LOG --log-prefix \"{tag}-icmp: \"
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
COMMIT
"
    )
}

fn root() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    assert!(
        std::env::var("TAILWALL_REQUIRE_KERNEL").as_deref() != Ok("1"),
        "not root, but TAILWALL_REQUIRE_KERNEL=1"
    );
    eprintln!("cli log: skipped: not root");
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
        // One pair per test; the tests of this file run in parallel in one process.
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let pid = std::process::id();
        let k = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let (a, b) = (format!("twl-log-{pid}-{k}a"), format!("twl-log-{pid}-{k}b"));
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

/// Sets `net.netfilter.nf_log_all_netns` (the kernel logs only the initial namespace's packets
/// otherwise) and restores it; holds a lock so the tests of this file that read the kernel log do
/// not switch it off under each other (cargo runs them in parallel).
struct LogAllNetns(
    String,
    #[allow(dead_code)] std::sync::MutexGuard<'static, ()>,
);

static SYSCTL: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl LogAllNetns {
    fn on() -> LogAllNetns {
        let guard = SYSCTL.lock().unwrap_or_else(|e| e.into_inner());
        let old = ok("sysctl", &["-n", "net.netfilter.nf_log_all_netns"]);
        ok("sysctl", &["-qw", "net.netfilter.nf_log_all_netns=1"]);
        LogAllNetns(old.trim().to_string(), guard)
    }
}

impl Drop for LogAllNetns {
    fn drop(&mut self) {
        let _ = run(
            "sysctl",
            &["-qw", &format!("net.netfilter.nf_log_all_netns={}", self.0)],
        );
    }
}

#[test]
fn log_lines_equal_the_kernels_log_target_and_counters_equal_iptables() {
    if !root() {
        return;
    }
    let p = Pair::new();
    let tag = format!("twl{}", std::process::id() % 100000);
    let path = p.dir.join("log.rules");
    std::fs::write(&path, rules(&tag)).expect("write rules");
    let o = p.tw(&[
        "compile",
        &path.display().to_string(),
        "--attach",
        "twa",
        "--mode",
        "generic",
    ]);
    assert!(o.status.success(), "attach: {o:?}");
    let o = Command::new("ip")
        .args(["netns", "exec", &p.a, "iptables-legacy-restore"])
        .stdin(std::fs::File::open(&path).expect("rules"))
        .output()
        .expect("restore");
    assert!(o.status.success(), "iptables-legacy-restore: {o:?}");
    let _log_all = LogAllNetns::on();
    assert!(p.tw(&["stats", "twa", "--zero"]).status.success());
    ok("ip", &["netns", "exec", &p.a, "iptables-legacy", "-Z"]);
    // Empty the ring buffer of anything logged before (neighbour discovery is not IP: nothing).
    let _ = p.tw(&["log", "twa"]);

    ok(
        "ip",
        &[
            "netns", "exec", &p.b, "ping", "-c", "2", "-i", "0.2", "-W", "1", "10.9.0.1",
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

    let o = p.tw(&["log", "twa"]);
    assert!(o.status.success(), "log: {o:?}");
    let ours_text = String::from_utf8_lossy(&o.stdout).into_owned();
    let mut ours: Vec<String> = ours_text.lines().map(str::to_string).collect();
    let dmesg = ok("dmesg", &[]);
    // `[  123.456789] PREFIX…`: the kernel's line after the timestamp.
    let mut theirs: Vec<String> = dmesg
        .lines()
        .filter_map(|l| l.split_once("] ").map(|(_, x)| x.to_string()))
        .filter(|l| l.starts_with(&format!("{tag}-")) && !l.starts_with(&format!("{tag}-nflog")))
        .collect();
    // The kernel's lines end with a space; dmesg keeps it.
    let nflog: Vec<String> = ours
        .iter()
        .filter(|l| l.starts_with(&format!("{tag}-nflog")))
        .cloned()
        .collect();
    assert_eq!(
        nflog.len(),
        2,
        "one NFLOG line per echo request: {ours_text}"
    );
    ours.retain(|l| !l.starts_with(&format!("{tag}-nflog")));
    ours.sort();
    theirs.sort();
    // 2 echo requests (LOG), 1 udp, 1 SYN to 22 (80 is not logged).
    assert_eq!(theirs.len(), 4, "dmesg:\n{}", theirs.join("\n"));
    assert_eq!(ours, theirs, "tailwall log:\n{ours_text}");
    eprintln!("{ours_text}");

    // The NFLOG line has LOG's fields after its prefix (no nfnetlink_log socket, docs/cli.md).
    let icmp_log = theirs.iter().find(|l| l.contains("-icmp: ")).unwrap();
    let fields = |l: &str| l.split_once("IN=").map(|(_, r)| r.to_string()).unwrap();
    assert!(
        nflog.iter().any(|l| fields(l) == fields(icmp_log)),
        "{nflog:?} vs {icmp_log}"
    );

    let o = p.tw(&["stats", "twa"]);
    assert!(o.status.success(), "stats: {o:?}");
    let stats = String::from_utf8_lossy(&o.stdout).into_owned();
    let listing = ok(
        "ip",
        &[
            "netns",
            "exec",
            &p.a,
            "iptables-legacy",
            "-L",
            "INPUT",
            "-v",
            "-x",
            "-n",
            "--line-numbers",
        ],
    );
    assert_eq!(
        chain_block(&stats, "INPUT"),
        chain_block(&listing, "INPUT"),
        "stats:\n{stats}\niptables:\n{listing}"
    );
    eprintln!("{}", chain_block(&stats, "INPUT"));

    let o = p.tw(&["log", "twa", "-o", "json"]);
    assert!(o.status.success());
    assert!(
        o.stdout.is_empty(),
        "the ring buffer was drained by the first read"
    );

    // The monitor: on while it runs, the policy's decisions and the LOG records of 2 echo requests,
    // a pcap of the frames; ended by SIGINT (it switches the datapath's monitor off). Other frames
    // on the link (ARP, IPv6 neighbour discovery) are streamed too, as not_ip / other_family.
    let pcap = p.dir.join("mon.pcap");
    let mon = Command::new(BIN)
        .args([
            "--netns",
            &p.a,
            "monitor",
            "twa",
            "-o",
            "json",
            "--pcap-out",
        ])
        .arg(&pcap)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("monitor");
    std::thread::sleep(std::time::Duration::from_millis(500));
    ok(
        "ip",
        &[
            "netns", "exec", &p.b, "ping", "-c", "2", "-i", "0.2", "-W", "1", "10.9.0.1",
        ],
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    // SAFETY: signalling the child this test spawned.
    unsafe { libc::kill(mon.id() as i32, libc::SIGINT) };
    let out = mon.wait_with_output().expect("monitor ends on SIGINT");
    assert!(out.status.success(), "{out:?}");
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let decisions: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["kind"] == "decision" && e["reason"] == "policy")
        .collect();
    assert_eq!(decisions.len(), 2, "{events:?}");
    for d in &decisions {
        assert_eq!(d["verdict"], "accept");
        assert_eq!(d["chain"], "INPUT");
        assert_eq!(d["hook"], "INPUT");
    }
    assert_eq!(events.iter().filter(|e| e["kind"] == "log").count(), 4);
    // pcap: a 24-byte header, then one record (16-byte header + the frame) per event.
    let bytes = std::fs::read(&pcap).expect("pcap");
    assert_eq!(&bytes[..4], &0xa1b2_c3d4u32.to_le_bytes());
    let mut at = 24;
    let mut records = 0;
    while at + 16 <= bytes.len() {
        let caplen = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        at += 16 + caplen;
        records += 1;
    }
    assert_eq!((at, records), (bytes.len(), events.len()));
    // After the monitor: the LOG records of the next packet are still there for `log`.
    ok(
        "ip",
        &[
            "netns", "exec", &p.b, "ping", "-c", "1", "-W", "1", "10.9.0.1",
        ],
    );
    let o = p.tw(&["log", "twa", "-o", "json"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).lines().count(),
        2,
        "{o:?}"
    );
}

fn rules6(tag: &str) -> String {
    format!(
        "# Generated by ip6tables-save v1.8.9
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p tcp -m tcp --dport 22 -j LOG --log-prefix \"{tag}-ssh6: \" --log-tcp-sequence --log-tcp-options
-A INPUT -p udp -j LOG --log-prefix \"{tag}-udp6: \"
-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 128 -j LOG --log-prefix \"{tag}-echo6: \" --log-level 6
COMMIT
"
    )
}

/// The IPv6 twin: an ip6tables ruleset attached alone and loaded into ip6tables-legacy; echo
/// requests, a UDP datagram and a TCP SYN over IPv6 print the same lines (ip6tables' format: `LEN=
/// TC= HOPLIMIT= FLOWLBL=`, addresses with every zero) in both.
#[test]
fn log_lines_equal_ip6tables_legacy_for_ipv6() {
    if !root() {
        return;
    }
    let p = Pair::new();
    ok(
        "ip",
        &[
            "-n",
            &p.a,
            "addr",
            "add",
            "fd09::1/64",
            "dev",
            "twa",
            "nodad",
        ],
    );
    ok(
        "ip",
        &[
            "-n",
            &p.b,
            "addr",
            "add",
            "fd09::2/64",
            "dev",
            "twb",
            "nodad",
        ],
    );
    let tag = format!("tw6l{}", std::process::id() % 100000);
    let path = p.dir.join("log6.rules");
    std::fs::write(&path, rules6(&tag)).expect("write rules");
    let o = p.tw(&[
        "compile",
        &path.display().to_string(),
        "--attach",
        "twa",
        "--mode",
        "generic",
    ]);
    assert!(o.status.success(), "attach: {o:?}");
    let o = Command::new("ip")
        .args(["netns", "exec", &p.a, "ip6tables-legacy-restore"])
        .stdin(std::fs::File::open(&path).expect("rules"))
        .output()
        .expect("restore");
    assert!(o.status.success(), "ip6tables-legacy-restore: {o:?}");
    let _log_all = LogAllNetns::on();
    let _ = p.tw(&["log", "twa"]);
    ok(
        "ip",
        &[
            "netns", "exec", &p.b, "ping", "-6", "-c", "2", "-i", "0.2", "-W", "1", "fd09::1",
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
            "echo hello > /dev/udp/fd09::1/53",
        ],
    );
    let _ = run(
        "ip",
        &[
            "netns",
            "exec",
            &p.b,
            "bash",
            "-c",
            "exec 3<>/dev/tcp/fd09::1/22",
        ],
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    let o = p.tw(&["log", "twa"]);
    assert!(o.status.success(), "log: {o:?}");
    let ours_text = String::from_utf8_lossy(&o.stdout).into_owned();
    let mut ours: Vec<String> = ours_text.lines().map(str::to_string).collect();
    let mut theirs: Vec<String> = ok("dmesg", &[])
        .lines()
        .filter_map(|l| l.split_once("] ").map(|(_, x)| x.to_string()))
        .filter(|l| l.starts_with(&format!("{tag}-")))
        .collect();
    ours.sort();
    theirs.sort();
    assert_eq!(theirs.len(), 4, "dmesg:\n{}", theirs.join("\n"));
    assert_eq!(ours, theirs, "tailwall log:\n{ours_text}");
    eprintln!("{ours_text}");
}

/// `replay` shows the log events of each frame: `--engine sim` from its model, `--engine kernel`
/// from the records the test-run wrote to the ring buffer; both the same.
#[test]
fn replay_shows_the_same_log_events_in_sim_and_kernel() {
    if !root() {
        return;
    }
    use tailwall_compiler::packet::{build_frame, l4_header};
    let dir = std::env::temp_dir().join(format!("twl-replay-log-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = dir.join("r.rules");
    std::fs::write(
        &rules,
        "*filter\n:INPUT DROP [0:0]\n:logdrop - [0:0]\n\
-A INPUT -p tcp -m tcp --dport 22 -j LOG --log-prefix \"ssh: \"\n\
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n\
-A INPUT -p udp -j NFLOG --nflog-group 3\n\
-A INPUT -j logdrop\n\
-A logdrop -j LOG --log-prefix \"drop: \"\n\
-A logdrop -j DROP\n\
COMMIT\n",
    )
    .unwrap();
    let frame = |proto: u8, dport: u16| {
        build_frame(
            [2, 0, 0, 0, 0, 1],
            [2, 0, 0, 0, 0, 2],
            "10.0.0.2".parse().unwrap(),
            "10.0.0.1".parse().unwrap(),
            proto,
            0,
            &l4_header(proto, 40000, dport, b""),
        )
    };
    let pcap = dir.join("f.pcap");
    {
        use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
        let header = PcapHeader {
            datalink: pcap_file::DataLink::ETHERNET,
            ..Default::default()
        };
        let mut w = PcapWriter::with_header(std::fs::File::create(&pcap).unwrap(), header).unwrap();
        for (i, f) in [frame(6, 22), frame(17, 53), frame(6, 80)]
            .iter()
            .enumerate()
        {
            w.write_packet(&PcapPacket::new(
                std::time::Duration::from_millis(i as u64),
                f.len() as u32,
                f,
            ))
            .unwrap();
        }
    }
    let logs = |engine: &str| -> Vec<serde_json::Value> {
        let o = Command::new(BIN)
            .args([
                "replay",
                rules.to_str().unwrap(),
                "--pcap",
                pcap.to_str().unwrap(),
            ])
            .args(["--engine", engine, "-o", "json"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{engine}: {o:?}");
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| v.get("index").is_some())
            .map(|v| v["logs"].clone())
            .collect()
    };
    let (sim, kernel) = (logs("sim"), logs("kernel"));
    assert_eq!(sim, kernel);
    let n: Vec<usize> = sim
        .iter()
        .map(|l| l.as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(n, [1, 2, 1], "{sim:?}");
    assert_eq!(sim[1][1]["chain"], "logdrop");
    let _ = std::fs::remove_dir_all(&dir);
}
