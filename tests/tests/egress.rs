//! Kernel tier for OUTPUT: the tc chain (`tw_egress`, the `tw_c_<field>` stages, `tw_final_tc`) that a
//! generation attaches at tcx egress (`docs/decisions/0012`).
//!
//! - every tc program passes the verifier, next to the XDP chain of the same generation;
//! - BPF_PROG_TEST_RUN of the tc chain (an skb leaving by `lo`, with a socket: locally generated)
//!   decides every generated frame as `sim` in the OUTPUT region and as `interp` at OUTPUT, on
//!   generated filter tables with INPUT, FORWARD and OUTPUT chains, user chains and header matches;
//!   the XDP chain of the same generation still decides by INPUT;
//! - attached by the loader at tcx egress of a veth pair's end (traffic sent by sockets of that
//!   namespace): verdicts and per-rule counters equal to iptables-legacy's OUTPUT on the same traffic,
//!   swaps under continuous traffic with no window (nothing both generations drop arrives, nothing both
//!   accept is lost), rollback and detach leaving no tc program (the kernel's tcx list), packet-socket
//!   frames passing as netfilter lets them, a refused tcx link undoing the XDP flip, and kill -9
//!   between the two flips repaired by the next command.
//!
//! Needs root; without it every test prints "skipped: not root" and passes, unless
//! `TAILWALL_REQUIRE_KERNEL=1` (CI). Run with `--test-threads=1`.
use tailwall_abi as abi;
use tailwall_compiler::{
    artifact::{self, Artifact},
    interp,
    ir::{Family, Hook, Ruleset},
    outcome::Outcome,
    packet,
    sim::Sim,
    testgen::{sample_frames, sample_rulesets_with, FrameOpts, RulesetOpts},
};
use tailwall_loader::{Generation, TestRun};
use tailwall_tests::netns::require_root_or_skip;

fn root() -> bool {
    require_root_or_skip("egress")
}

/// The OUTPUT region of IPv4 (`tw_regions` index `hook * 2 + family`).
const REGION_OUTPUT_V4: u32 = abi::HOOK_OUTPUT * 2;

fn observed(art: &Artifact, tr: &TestRun) -> Outcome {
    Outcome::from_kernel(art, tr.xdp_action, &tr.decision)
        .unwrap_or_else(|e| panic!("kernel decision record (retval {}): {e}", tr.retval))
}

/// Generated filter tables with all three built-in chains whose OUTPUT region the datapath compiles.
fn rulesets(seed: u64, n: usize) -> Vec<Ruleset> {
    let o = RulesetOpts {
        port_lists: true,
        addr_lists: true,
        user_chains: true,
        hooks: true,
        header_matches: true,
        ..RulesetOpts::new(24)
    };
    sample_rulesets_with(seed, n, o)
}

/// An untagged IPv4 (IPv6) frame shorter than Ethernet + 20 (40) bytes.
fn short_ip(f: &[u8]) -> bool {
    match f.get(12..14) {
        Some([0x08, 0x00]) => f.len() < 14 + 20,
        Some([0x86, 0xdd]) => f.len() < 14 + 40,
        _ => false,
    }
}

#[test]
fn egress_verifier_accepts_the_tc_chain() {
    if !root() {
        return;
    }
    let rs = &rulesets(0x6567_7231, 8)[..];
    let mut seen = 0;
    for (i, rs) in rs.iter().enumerate() {
        let art = artifact::build(rs, Hook::Input).expect("build");
        let gen = Generation::load(&art).unwrap_or_else(|e| panic!("ruleset {i}: {e}"));
        let stats = gen.program_stats().expect("program info");
        let want: Vec<&str> = art
            .stages
            .iter()
            .map(|f| f.info().datapath.expect("stage row").tc_prog)
            .chain([abi::PROG_FINAL_TC, abi::PROG_EGRESS])
            .collect();
        assert_eq!(gen.tc_chain(), &want[..want.len() - 1]);
        for name in &want {
            let s = stats
                .iter()
                .find(|s| s.name == *name)
                .unwrap_or_else(|| panic!("ruleset {i}: {name} not loaded"));
            assert!(s.verified_insns.is_some_and(|n| n > 0), "{name}: {s:?}");
            seen += 1;
        }
        if i == 0 {
            eprintln!(
                "tc chain verified insns: {}",
                stats
                    .iter()
                    .filter(|s| want.contains(&s.name))
                    .map(|s| format!("{}={}", s.name, s.verified_insns.unwrap_or(0)))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
    }
    assert!(seen >= 8 * 2);
}

/// The egress chain decides as `sim` in the OUTPUT region and `interp` at OUTPUT; the XDP chain of
/// the same generation as `sim` in the INPUT region.
#[test]
fn egress_testrun_matches_sim_and_interp_at_output() {
    if !root() {
        return;
    }
    let mut compared = 0;
    let mut decided_by_rule = 0;
    let mut skipped = 0;
    let mut unrunnable = 0;
    for (i, rs) in rulesets(0x6567_7232, 24).iter().enumerate() {
        let art = artifact::build(rs, Hook::Input).expect("build");
        if art.region(Hook::Output, Family::V4).is_none() {
            // OUTPUT reaches a rule the datapath does not compile: no OUTPUT region, no egress.
            skipped += 1;
            continue;
        }
        let sim = Sim::new(&art).expect("sim accepts the artifact");
        let gen = Generation::load(&art).unwrap_or_else(|e| panic!("ruleset {i}: {e}"));
        let frames = sample_frames(rs, 0x6500 + i as u64, 150, &FrameOpts::default());
        for f in frames.iter().filter(|f| f.len() >= 14) {
            let d = packet::decode(f);
            let tr = match gen.test_run_egress(f, 1) {
                Ok(tr) => tr,
                // An skb test run refuses (EINVAL) an IPv4/IPv6 frame shorter than the fixed header:
                // the kernel never sends one (it builds the header), so tc never sees one.
                Err(_) if short_ip(f) => {
                    unrunnable += 1;
                    continue;
                }
                Err(e) => panic!("test-run egress of {d} ({} bytes {f:02x?}): {e}", f.len()),
            };
            let got = observed(&art, &tr);
            let modelled = sim.run_in(REGION_OUTPUT_V4, &d);
            let want = interp::run(rs, Hook::Output, &d);
            assert_eq!(
                got,
                modelled,
                "egress kernel vs sim on {d}\nframe {f:02x?}\nruleset:\n{}",
                rs.dump()
            );
            assert_eq!(
                got,
                want,
                "egress kernel vs interp on {d}\nruleset:\n{}",
                rs.dump()
            );
            if tr.pkt.hook == abi::HOOK_OUTPUT {
                assert_eq!(tr.pkt.region, REGION_OUTPUT_V4, "{d}");
                assert_eq!(tr.pkt.in_ifindex, 0, "no input device at OUTPUT");
                assert_eq!(tr.pkt.out_ifindex, 1, "the test-run skb leaves by lo");
            }
            if matches!(
                got.decided,
                tailwall_compiler::outcome::Decided::Rule { .. }
            ) {
                decided_by_rule += 1;
            }
            // The XDP chain of the same generation still judges by INPUT.
            let tr = gen.test_run(f, 1).expect("test-run");
            assert_eq!(observed(&art, &tr), sim.run(&d), "xdp kernel vs sim on {d}");
            compared += 1;
        }
    }
    eprintln!(
        "egress: compared {compared} frames at OUTPUT ({decided_by_rule} decided by a rule), {skipped} rulesets without an OUTPUT region, {unrunnable} frames shorter than an IP header not test-runnable as an skb"
    );
    assert!(compared >= 16 * 100, "most rulesets have an OUTPUT region");
    assert!(
        decided_by_rule > compared / 10,
        "rules decide, not only policies"
    );
}

// ---------------------------------------------------------------------------------------------------
// Attached: a veth pair, traffic sent from the filtered namespace (the host end) to the peer.

use std::{
    os::unix::process::ExitStatusExt as _,
    process::Command,
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    time::{Duration, Instant},
};
use tailwall_loader::{iface, IfaceError, Mode, Stats};
use tailwall_tests::netns::VethPair;

/// A: OUTPUT drops udp/9999 (rule 1), accepts udp/7777 (rule 2), policy ACCEPT (udp/8888).
const GEN_A: &str = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n\
     -A INPUT -p udp -m udp --dport 5555 -j DROP\n\
     -A OUTPUT -p udp -m udp --dport 9999 -j DROP\n\
     -A OUTPUT -p udp -m udp --dport 7777 -j ACCEPT\nCOMMIT\n";
/// B: OUTPUT accepts udp/7777 (rule 1), policy DROP (udp/9999, udp/8888). Both drop 9999 and accept
/// 7777 (by different rules); 8888 is what changes.
const GEN_B: &str = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT DROP [0:0]\n\
     -A INPUT -p udp -m udp --dport 5555 -j DROP\n\
     -A OUTPUT -p udp -m udp --dport 7777 -j ACCEPT\nCOMMIT\n";
/// No OUTPUT chain at all: no OUTPUT region, so no egress link.
const INPUT_ONLY: &str =
    "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p udp -m udp --dport 5555 -j DROP\nCOMMIT\n";
const PORTS: [u16; 3] = [9999, 7777, 8888];

fn compile(text: &str) -> Artifact {
    let src = tailwall_compiler::diag::SourceFile::new("egress.rules", text.to_string());
    let rs = tailwall_compiler::frontend::load(&src)
        .unwrap_or_else(|d| panic!("{d:?}"))
        .ruleset;
    artifact::build(&rs, Hook::Input).expect("build")
}

fn in_host<T: Send>(pair: &VethPair, f: impl FnOnce() -> T + Send) -> T {
    pair.host.run(f).expect("setns")
}

fn attach(pair: &VethPair, text: &str) -> Result<iface::AttachOutcome, IfaceError> {
    let (i, art) = (pair.host_if.clone(), compile(text));
    in_host(pair, move || iface::attach(&i, &art, Mode::Generic, false))
}

fn status(pair: &VethPair) -> Result<iface::Status, IfaceError> {
    let i = pair.host_if.clone();
    in_host(pair, move || iface::status(&i))
}

fn stats(pair: &VethPair) -> Stats {
    let i = pair.host_if.clone();
    in_host(pair, move || iface::stats(&i)).expect("stats")
}

/// The programs the kernel runs at tcx egress of the host end (what `bpftool net` lists).
fn tcx_egress(pair: &VethPair) -> Vec<u32> {
    let idx = pair.host_ifindex;
    in_host(pair, move || tailwall_loader::tcx_egress_programs(idx)).expect("BPF_PROG_QUERY")
}

/// The host end's pin directory (`/sys/fs/bpf/tailwall/<netns>/<iface>`).
fn pin_dir(pair: &VethPair) -> std::path::PathBuf {
    let key = in_host(pair, iface::netns_key).expect("netns key");
    std::path::PathBuf::from(format!("/sys/fs/bpf/tailwall/{key}/{}", pair.host_if))
}

/// Detaches and removes the host namespace's pins and records when dropped, even when a test fails.
struct Cleanup<'a>(&'a VethPair);
impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let i = self.0.host_if.clone();
        let _ = self.0.host.run(move || iface::detach(&i));
        if let Ok(Ok(key)) = self.0.host.run(iface::netns_key) {
            let _ = std::fs::remove_dir_all(format!("/sys/fs/bpf/tailwall/{key}"));
            let _ = std::fs::remove_dir_all(format!("/run/tailwall/{key}"));
        }
    }
}

/// UDP receivers in the peer namespace, one per port of [`PORTS`], and one sender in the host
/// namespace (its datagrams leave by the host end: locally generated, judged at OUTPUT).
struct Traffic {
    rx: Vec<std::net::UdpSocket>,
    tx: std::net::UdpSocket,
    peer: std::net::Ipv4Addr,
    /// Sends that failed with EPERM (netfilter's DROP at OUTPUT reports it to the socket).
    eperm: AtomicU64,
}

impl Traffic {
    fn new(pair: &VethPair) -> Traffic {
        let peer = pair.peer_ip;
        let rx = PORTS
            .iter()
            .map(|&p| {
                let s = pair
                    .peer
                    .run(move || std::net::UdpSocket::bind((peer, p)))
                    .expect("setns")
                    .expect("bind in the peer");
                s.set_nonblocking(true).expect("nonblocking");
                let size: libc::c_int = 16 << 20;
                // SAFETY: setsockopt on a socket we own with a c_int option value.
                unsafe {
                    libc::setsockopt(
                        std::os::fd::AsRawFd::as_raw_fd(&s),
                        libc::SOL_SOCKET,
                        libc::SO_RCVBUFFORCE,
                        (&size as *const libc::c_int).cast(),
                        std::mem::size_of::<libc::c_int>() as u32,
                    );
                }
                s
            })
            .collect();
        let tx = in_host(pair, || std::net::UdpSocket::bind(("0.0.0.0", 0))).expect("bind");
        Traffic {
            rx,
            tx,
            peer,
            eperm: AtomicU64::new(0),
        }
    }

    fn send(&self, port: u16, n: usize) {
        for _ in 0..n {
            match self.tx.send_to(b"egress", (self.peer, port)) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
                    self.eperm.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => panic!("send: {e}"),
            }
        }
    }

    /// Sends that failed with EPERM since the last call.
    fn eperm(&self) -> u64 {
        self.eperm.swap(0, Ordering::Relaxed)
    }

    /// Datagrams received on `PORTS[k]` since the last call (waits until nothing more arrives).
    fn received(&self, k: usize) -> usize {
        let mut got = 0;
        let mut buf = [0u8; 16];
        let mut quiet_since = Instant::now();
        while quiet_since.elapsed() < Duration::from_millis(150) {
            match self.rx[k].recv(&mut buf) {
                Ok(_) => {
                    got += 1;
                    quiet_since = Instant::now();
                }
                Err(_) => std::thread::sleep(Duration::from_millis(2)),
            }
        }
        got
    }

    /// Send `n` datagrams to each port; how many arrived per port.
    fn round(&self, n: [usize; 3]) -> [usize; 3] {
        for (k, &p) in PORTS.iter().enumerate() {
            self.send(p, n[k]);
        }
        [0, 1, 2].map(|k| self.received(k))
    }
}

/// Packets counted for OUTPUT's rule `position`.
fn output_rule(s: &Stats, position: u32) -> u64 {
    s.rules
        .iter()
        .filter(|r| r.rule.chain == "OUTPUT" && r.rule.position == position)
        .map(|r| r.packets)
        .sum()
}

/// Packet counters of OUTPUT's rules in `iptables-legacy-save -c` of the host namespace.
fn iptables_output_counters(pair: &VethPair) -> Vec<u64> {
    let save = pair
        .host
        .exec("iptables-legacy-save", ["-c", "-t", "filter"])
        .expect("iptables-legacy-save");
    save.lines()
        .filter_map(|l| {
            let (counters, rule) = l.strip_prefix('[')?.split_once("] ")?;
            rule.starts_with("-A OUTPUT ")
                .then(|| counters.split(':').next()?.parse().ok())?
        })
        .collect()
}

fn wait_stats(pair: &VethPair, what: &str, done: impl Fn(&Stats) -> bool) -> Stats {
    let start = Instant::now();
    loop {
        let s = stats(pair);
        if done(&s) {
            return s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{what}: counters never got there: {s:#?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `compile --attach` puts OUTPUT at tcx egress: datagrams the filtered namespace sends are dropped
/// or passed exactly as iptables-legacy's OUTPUT does with the same ruleset in the same namespace,
/// with the same per-rule counters; a swap updates the egress link in place (same link id) and
/// changes the verdict; `status` lists both hooks and both links; rollback returns both links to the
/// previous generation; a rollback to a generation without OUTPUT removes the egress link; detach
/// leaves no tc program on the device (the kernel's own tcx list, BPF_PROG_QUERY) and no pin.
#[test]
fn egress_output_rules_judge_traffic_sent_from_the_namespace() {
    if !root() {
        return;
    }
    let pair = VethPair::new().expect("veth pair");
    let _cleanup = Cleanup(&pair);
    pair.wait_carrier(Duration::from_secs(5)).expect("carrier");
    let t = Traffic::new(&pair);
    assert_eq!(t.round([2, 2, 2]), [2, 2, 2], "nothing filters yet");
    t.eperm();

    // iptables-legacy's OUTPUT with ruleset A, in the same namespace, on the same traffic.
    pair.host
        .exec_stdin("iptables-legacy-restore", ["-w"], GEN_A)
        .expect("iptables-legacy-restore");
    let sent = [3, 5, 2];
    let by_iptables = t.round(sent);
    let iptables_counts = iptables_output_counters(&pair);
    pair.host
        .exec_stdin(
            "iptables-legacy-restore",
            ["-w"],
            "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n",
        )
        .expect("flush iptables");
    assert_eq!(
        by_iptables,
        [0, 5, 2],
        "iptables: 9999 dropped, the rest passes"
    );
    assert_eq!(iptables_counts, vec![3, 5]);
    // netfilter's DROP at OUTPUT fails the sender's sendmsg with EPERM; a drop at tcx egress is
    // silent to the socket (docs/conformance.md).
    assert_eq!(t.eperm(), 3, "iptables: EPERM for each dropped datagram");

    // tailwall with the same ruleset: the same verdicts and counters.
    let first = attach(&pair, GEN_A).expect("attach A");
    eprintln!("{first}");
    let egress_link = first.egress_link_id.expect("an egress link");
    assert_eq!(t.round(sent), by_iptables, "tailwall's OUTPUT = iptables'");
    assert_eq!(t.eperm(), 0, "tc egress drops are silent to the socket");
    let s = wait_stats(&pair, "generation 1", |s| output_rule(s, 2) >= 5);
    assert_eq!(
        vec![output_rule(&s, 1), output_rule(&s, 2)],
        iptables_counts,
        "per-rule counters equal iptables'"
    );
    let input: u64 = s
        .rules
        .iter()
        .filter(|r| r.rule.chain == "INPUT")
        .map(|r| r.packets)
        .sum();
    assert_eq!(input, 0, "OUTPUT traffic is not judged by INPUT");
    let st = status(&pair).expect("status");
    assert_eq!(
        st.hooks,
        vec!["xdp (filter INPUT, FORWARD)", "tcx egress (filter OUTPUT)"]
    );
    assert_eq!(st.egress_link_id, Some(egress_link));
    let gen1_prog = st.egress_prog_id.expect("egress program");
    assert_eq!(tcx_egress(&pair), vec![gen1_prog], "the kernel's tcx list");

    // B: the same egress link, now running B's program; 8888 is dropped by OUTPUT's policy.
    let second = attach(&pair, GEN_B).expect("swap to B");
    assert!(second.swapped && second.generation == 2, "{second:?}");
    assert_eq!(second.egress_link_id, Some(egress_link), "updated in place");
    assert_eq!(t.round([2, 3, 4]), [0, 3, 0], "B's OUTPUT");
    // B's rule 1 is A's rule 2 (same text): its 5 packets followed it across the swap.
    let s = wait_stats(&pair, "generation 2", |s| output_rule(s, 1) >= 5 + 3);
    assert_eq!(output_rule(&s, 1), 5 + 3);
    let st = status(&pair).expect("status");
    let gen2_prog = st.egress_prog_id.expect("egress program");
    assert_ne!(gen2_prog, gen1_prog);
    assert_eq!(tcx_egress(&pair), vec![gen2_prog]);

    // Rollback: both links back to generation 1 (the same egress link again).
    let i = pair.host_if.clone();
    let back = in_host(&pair, move || iface::rollback(&i, None)).expect("rollback");
    assert_eq!(back, 1);
    assert_eq!(t.round([2, 2, 2]), [0, 2, 2], "A's OUTPUT again");
    let st = status(&pair).expect("status");
    assert_eq!(
        (st.egress_link_id, st.egress_prog_id),
        (Some(egress_link), Some(gen1_prog))
    );
    assert_eq!(tcx_egress(&pair), vec![gen1_prog]);

    // A generation without OUTPUT: no egress link, OUTPUT accepts everything as iptables would.
    let third = attach(&pair, INPUT_ONLY).expect("apply INPUT only");
    assert_eq!(
        (third.egress_link_id, third.output),
        (None, iface::OutputHook::AcceptsAll)
    );
    assert_eq!(tcx_egress(&pair), Vec::<u32>::new(), "no tc program left");
    assert!(!pin_dir(&pair).join("link-egress").exists());
    assert_eq!(t.round([2, 2, 2]), [2, 2, 2]);
    // Rolling back to A attaches its egress program again (a new link).
    let i = pair.host_if.clone();
    assert_eq!(
        in_host(&pair, move || iface::rollback(&i, None)).expect("rollback"),
        1
    );
    assert_eq!(t.round([2, 2, 2]), [0, 2, 2]);
    assert_eq!(tcx_egress(&pair), vec![gen1_prog]);

    let i = pair.host_if.clone();
    in_host(&pair, move || iface::detach(&i)).expect("detach");
    assert_eq!(t.round([2, 2, 2]), [2, 2, 2], "detached: nothing filters");
    assert_eq!(tcx_egress(&pair), Vec::<u32>::new(), "no tc program left");
    assert!(!pin_dir(&pair).exists(), "no pin left");
    let xdp = pair
        .host
        .exec("ip", ["-d", "link", "show", "dev", &pair.host_if])
        .expect("ip link");
    assert!(!xdp.contains("xdp"), "no XDP program left: {xdp}");
}

/// Frames a packet socket (`AF_PACKET`) sends bypass netfilter, so OUTPUT's rules do not apply to them
/// (iptables would not see them): `tw_egress` passes them untouched and counts them nowhere.
#[test]
fn egress_passes_packet_socket_frames_as_netfilter_does() {
    if !root() {
        return;
    }
    let pair = VethPair::new().expect("veth pair");
    let _cleanup = Cleanup(&pair);
    pair.wait_carrier(Duration::from_secs(5)).expect("carrier");
    let t = Traffic::new(&pair);
    attach(&pair, GEN_A).expect("attach A");
    assert_eq!(
        t.round([2, 0, 0]),
        [0, 0, 0],
        "a UDP socket's 9999 is dropped"
    );
    let idx = pair.host_ifindex;
    let sender = in_host(&pair, move || {
        tailwall_tests::netns::FrameSender::open(idx).expect("AF_PACKET")
    });
    let frame = packet::build_frame(
        pair.peer_mac,
        pair.host_mac,
        pair.host_ip,
        pair.peer_ip,
        packet::IPPROTO_UDP,
        0,
        &packet::l4_header(packet::IPPROTO_UDP, 40000, 9999, b"raw"),
    );
    for _ in 0..3 {
        sender.send(&frame).expect("send");
    }
    assert_eq!(
        t.received(0),
        3,
        "AF_PACKET frames pass, as netfilter lets them"
    );
    let s = stats(&pair);
    assert_eq!(
        output_rule(&s, 1),
        2,
        "only the UDP socket's datagrams are counted"
    );
}

/// Swapping between A and B while the namespace sends without pause: both drop 9999 and both accept
/// 7777, so a window with no egress program (or none of ours) would let a 9999 datagram through, and
/// a window that drops would lose a 7777 one. Measured: every 7777 arrives, no 9999 does, no packet
/// fails closed, and after each swap 8888 gets the new generation's verdict. `TW_EGRESS_SWAPS`
/// overrides the swap count (default 40).
#[test]
fn egress_swaps_under_traffic_have_no_window() {
    if !root() {
        return;
    }
    let swaps: usize = std::env::var("TW_EGRESS_SWAPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let pair = VethPair::new().expect("veth pair");
    let _cleanup = Cleanup(&pair);
    pair.wait_carrier(Duration::from_secs(5)).expect("carrier");
    let t = Traffic::new(&pair);
    let (a, b) = (compile(GEN_A), compile(GEN_B));
    let apply = |art: &Artifact| {
        let (i, art) = (pair.host_if.clone(), art.clone());
        in_host(&pair, move || iface::attach(&i, &art, Mode::Generic, false)).expect("apply")
    };
    let link = apply(&a).egress_link_id.expect("egress link");
    let stop = AtomicBool::new(false);
    let sent = AtomicU64::new(0);
    let (mut passed_7777, mut passed_9999) = (0usize, 0usize);
    std::thread::scope(|sc| {
        sc.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                t.send(7777, 1);
                t.send(9999, 1);
                sent.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        let stopper = scopeguard(&stop);
        for k in 0..swaps {
            let (art, want_8888) = if k % 2 == 0 { (&b, 0) } else { (&a, 1) };
            let o = apply(art);
            assert!(o.swapped, "{o:?}");
            assert_eq!(o.egress_link_id, Some(link), "swap {k}: the same link");
            t.send(8888, 1);
            assert_eq!(
                t.received(2),
                want_8888,
                "swap {k}: 8888 has the new verdict"
            );
            passed_7777 += drain(&t.rx[1]);
            passed_9999 += drain(&t.rx[0]);
        }
        drop(stopper);
    });
    passed_7777 += t.received(1);
    passed_9999 += t.received(0);
    let sent = sent.load(Ordering::Relaxed) as usize;
    eprintln!(
        "egress swaps: {swaps} swaps, {sent} datagrams to each of 7777 and 9999: 7777 received {passed_7777}, 9999 received {passed_9999}"
    );
    assert!(sent > swaps, "traffic ran during the swaps");
    assert_eq!(passed_9999, 0, "no window without the filter");
    assert_eq!(passed_7777, sent, "no window that drops");
    let st = status(&pair).expect("status");
    assert!(
        st.fail_closed
            .iter()
            .filter(|(r, _)| !matches!(r.as_str(), "not_ipv4" | "other_family"))
            .all(|(_, n)| *n == 0),
        "nothing failed closed: {:?}",
        st.fail_closed
    );
}

/// Sets the flag when dropped (also while unwinding from a panic), so the sender thread stops.
fn scopeguard(flag: &AtomicBool) -> impl Drop + '_ {
    struct G<'a>(&'a AtomicBool);
    impl Drop for G<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    G(flag)
}

fn drain(s: &std::net::UdpSocket) -> usize {
    let mut buf = [0u8; 16];
    let mut n = 0;
    while s.recv(&mut buf).is_ok() {
        n += 1;
    }
    n
}

// ---------------------------------------------------------------------------------------------------
// Failures of the egress step: nothing half-installed.

/// Make every later `bpf(BPF_LINK_CREATE, attr, 32)` of the calling process fail with `errno`
/// (seccomp, x86_64): the size tailwall's tcx link creation passes (`LinkCreateTcxAttr`), not aya's
/// XDP link creation (the whole `bpf_attr`). What a kernel without tcx (before 6.6) answers.
/// Irreversible: run it in a child.
fn refuse_tcx_links(errno: i32) {
    const BPF_LINK_CREATE: u32 = 28;
    const TCX_ATTR_SIZE: u32 = 32;
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;
    let f = |code: u16, jt: u8, jf: u8, k: u32| libc::sock_filter { code, jt, jf, k };
    // seccomp_data: nr at 0, arch at 4, args[0] at 16, args[2] at 32 (low halves first).
    let prog = [
        f(LD_W_ABS, 0, 0, 4),
        f(JEQ_K, 0, 7, AUDIT_ARCH_X86_64),
        f(LD_W_ABS, 0, 0, 0),
        f(JEQ_K, 0, 5, libc::SYS_bpf as u32),
        f(LD_W_ABS, 0, 0, 16),
        f(JEQ_K, 0, 3, BPF_LINK_CREATE),
        f(LD_W_ABS, 0, 0, 32),
        f(JEQ_K, 0, 1, TCX_ATTR_SIZE),
        f(RET_K, 0, 0, 0x0005_0000 | errno as u32),
        f(RET_K, 0, 0, 0x7fff_0000),
    ];
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: prctl(2) with a filter that outlives the call.
    let ok = unsafe {
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
            && libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &fprog as *const libc::sock_fprog,
            ) == 0
    };
    assert!(ok, "seccomp: {}", std::io::Error::last_os_error());
}

/// The child of the failure tests: applies `TW_EGRESS_RULES` to `TW_EGRESS_IFACE` in the namespace
/// `TW_EGRESS_NETNS`; with `TW_EGRESS_REFUSE=1` the kernel refuses tcx links first; with
/// `TAILWALL_FAULT_POINT` it dies there. Prints `RESULT <outcome or error>`. Run by the parent only.
#[test]
#[ignore = "helper: run by the egress failure tests"]
fn egress_child() {
    let (Ok(ns), Ok(i), Ok(text)) = (
        std::env::var("TW_EGRESS_NETNS"),
        std::env::var("TW_EGRESS_IFACE"),
        std::env::var("TW_EGRESS_RULES"),
    ) else {
        return;
    };
    let refuse = std::env::var_os("TW_EGRESS_REFUSE").is_some();
    let art = compile(&text);
    let r = tailwall_tests::netns::in_netns(&ns, move || {
        if refuse {
            refuse_tcx_links(libc::EINVAL);
        }
        iface::attach(&i, &art, Mode::Generic, false)
    })
    .expect("setns");
    match r {
        Ok(o) => println!("RESULT ok {o}"),
        Err(e @ IfaceError::Egress { .. }) => println!("RESULT egress-error {e}"),
        Err(e) => println!("RESULT other-error {e:?}"),
    }
}

fn child(pair: &VethPair, rules: &str, refuse: bool, fault: Option<&str>) -> std::process::Output {
    let mut c = Command::new(std::env::current_exe().expect("test binary"));
    c.args(["--ignored", "--exact", "egress_child", "--nocapture"])
        .env("TW_EGRESS_NETNS", pair.host.path())
        .env("TW_EGRESS_IFACE", &pair.host_if)
        .env("TW_EGRESS_RULES", rules);
    if refuse {
        c.env("TW_EGRESS_REFUSE", "1");
    }
    if let Some(p) = fault {
        c.env("TAILWALL_FAULT_POINT", p);
    }
    c.output().expect("child")
}

/// The egress step fails (the kernel refuses the tcx link): on a first attach nothing is left (no XDP
/// program, no tc program, no pin); on a swap from a generation without OUTPUT the XDP flip is undone
/// (the old generation keeps deciding INPUT, no tc program, no new generation pinned). Both report
/// the failure, never success.
#[test]
fn a_refused_egress_link_undoes_the_xdp_flip() {
    if !root() || std::env::consts::ARCH != "x86_64" {
        return;
    }
    let pair = VethPair::new().expect("veth pair");
    let _cleanup = Cleanup(&pair);
    pair.wait_carrier(Duration::from_secs(5)).expect("carrier");
    let t = Traffic::new(&pair);

    // First attach.
    let out = child(&pair, GEN_A, true, None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}");
    assert!(
        out.status.success() && stdout.contains("RESULT egress-error"),
        "child: {out:?}"
    );
    assert!(stdout.contains("nothing of this apply is left"), "{stdout}");
    assert!(
        matches!(status(&pair), Err(IfaceError::NotAttached { .. })),
        "{:?}",
        status(&pair)
    );
    assert_eq!(tcx_egress(&pair), Vec::<u32>::new());
    assert!(!pin_dir(&pair).exists(), "no pin left");
    let xdp = pair
        .host
        .exec("ip", ["-d", "link", "show", "dev", &pair.host_if])
        .expect("ip link");
    assert!(!xdp.contains("xdp"), "no XDP program left: {xdp}");
    assert_eq!(t.round([1, 1, 1]), [1, 1, 1]);

    // A swap from a generation without OUTPUT.
    let one = attach(&pair, INPUT_ONLY).expect("attach INPUT only");
    assert_eq!(one.egress_link_id, None);
    let out = child(&pair, GEN_B, true, None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}");
    assert!(
        out.status.success() && stdout.contains("RESULT egress-error"),
        "child: {out:?}"
    );
    assert!(stdout.contains("the XDP flip was undone"), "{stdout}");
    let st = status(&pair).expect("status");
    assert_eq!(
        (st.generation, st.digest),
        (Some(1), Some(compile(INPUT_ONLY).digest))
    );
    assert_eq!(st.egress_link_id, None);
    assert_eq!(tcx_egress(&pair), Vec::<u32>::new());
    assert!(
        !pin_dir(&pair).join("gen-2").exists(),
        "generation 2 left pinned"
    );
    assert_eq!(
        t.round([1, 1, 1]),
        [1, 1, 1],
        "generation 1: OUTPUT unfiltered"
    );
}

/// kill -9 between the two flips (`after-xdp-flip`): the XDP link runs the new generation, the egress
/// link still the old one. The next command (`status`) makes the egress link follow the XDP link's
/// generation and says so; the first attach's case (no egress link yet) the same.
#[test]
fn kill_9_between_the_two_flips_is_repaired_by_the_next_command() {
    if !root() {
        return;
    }
    let pair = VethPair::new().expect("veth pair");
    let _cleanup = Cleanup(&pair);
    pair.wait_carrier(Duration::from_secs(5)).expect("carrier");
    let t = Traffic::new(&pair);
    for first in [true, false] {
        let i = pair.host_if.clone();
        let _ = in_host(&pair, move || iface::detach(&i));
        if !first {
            attach(&pair, GEN_A).expect("attach A");
            assert_eq!(t.round([1, 1, 1]), [0, 1, 1]);
        }
        let out = child(&pair, GEN_B, false, Some("after-xdp-flip"));
        assert_eq!(out.status.signal(), Some(9), "not killed: {out:?}");
        let st = status(&pair).expect("status");
        assert!(
            st.repaired.iter().any(|r| r.contains("tcx egress link")),
            "first: {first}: {:?}",
            st.repaired
        );
        assert_eq!(st.digest, Some(compile(GEN_B).digest));
        assert_eq!(
            st.hooks,
            vec!["xdp (filter INPUT, FORWARD)", "tcx egress (filter OUTPUT)"]
        );
        assert_eq!(tcx_egress(&pair), vec![st.egress_prog_id.expect("egress")]);
        assert_eq!(t.round([1, 1, 1]), [0, 1, 0], "first: {first}: B's OUTPUT");
    }
}

/// IPv6 at tc egress: one generation of an IPv4 ruleset and the IPv6 twin of another (OUTPUT chains,
/// user chains, lists, header matches); IPv6 frames (extension headers, fragments, ICMPv6, truncated
/// and malformed headers, pulled into the skb's linear part up to `HEADERS_MAX_V6`) and IPv4 frames
/// through `tw_egress` decide as `sim` at OUTPUT in their family's region and as `interp::run_sets`.
#[test]
fn egress_testrun_matches_sim_and_interp_on_ipv6() {
    if !root() {
        return;
    }
    use tailwall_compiler::testgen::{sample_frames_v6, to_ipv6};
    let sets = rulesets(0x6567_7236, 16);
    let (mut compared, mut v6_by_rule, mut unrunnable) = (0, 0, 0);
    for (i, pair) in sets.chunks(2).enumerate() {
        let rs6 = to_ipv6(&pair[1]);
        let both = [&pair[0], &rs6];
        let art = artifact::build_sets(&both, Hook::Input).expect("build");
        if art.region(Hook::Output, Family::V6).is_none() {
            continue;
        }
        let sim = Sim::new(&art).expect("sim accepts the artifact");
        let gen = Generation::load(&art).unwrap_or_else(|e| panic!("pair {i}: {e}"));
        let mut frames = sample_frames_v6(&pair[1], 0x6600 + i as u64, 150, &FrameOpts::default());
        frames.extend(sample_frames(
            &pair[0],
            0x6700 + i as u64,
            30,
            &FrameOpts::default(),
        ));
        for f in frames.iter().filter(|f| f.len() >= 14) {
            let d = packet::decode(f);
            let tr = match gen.test_run_egress(f, 1) {
                Ok(tr) => tr,
                Err(_) if short_ip(f) => {
                    unrunnable += 1;
                    continue;
                }
                Err(e) => panic!("test-run egress of {d} ({} bytes {f:02x?}): {e}", f.len()),
            };
            let got = observed(&art, &tr);
            let want = interp::run_sets(&both, Hook::Output, &interp::Meta::default(), &d);
            assert_eq!(
                got,
                sim.run_in(REGION_OUTPUT_V4, &d),
                "egress kernel vs sim on {d}\nframe {f:02x?}\n{}",
                rs6.dump()
            );
            assert_eq!(got, want, "egress kernel vs interp on {d}\n{}", rs6.dump());
            if matches!(d, packet::Decoded::Ipv6(_)) {
                if tr.pkt.hook == abi::HOOK_OUTPUT {
                    assert_eq!(tr.pkt.region, abi::HOOK_OUTPUT * 2 + 1, "{d}");
                }
                if matches!(
                    got.decided,
                    tailwall_compiler::outcome::Decided::Rule { .. }
                ) {
                    v6_by_rule += 1;
                }
            }
            compared += 1;
        }
    }
    eprintln!(
        "egress ipv6: compared {compared} frames ({v6_by_rule} IPv6 ones decided by a rule), {unrunnable} not test-runnable"
    );
    assert!(compared >= 4 * 150 && v6_by_rule > 0);
}
