//! Connection tracking (`ct_state`, `docs/decisions/0014`) in the running kernel: the conntrack kfuncs
//! load, test-runs (no conntrack entry) give the state `packet::CtState::without_entry` gives, and
//! live traffic through a host filtered by tailwall gives the per-rule counters iptables-legacy gives
//! in a twin namespace.
//!
//! Needs root; without it every test prints "skipped: not root" and passes, unless
//! `TAILWALL_REQUIRE_KERNEL=1`. Run with `--test-threads=1`.
use std::net::Ipv4Addr;

use tailwall_compiler::{
    artifact::{self, Artifact},
    interp,
    ir::Hook,
    outcome::Outcome,
    packet::{self, build_frame, l4_header, CtState, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP},
    sim::Sim,
};
use tailwall_loader::Generation;
use tailwall_tests::netns::require_root_or_skip;

const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];
const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 2];

/// The host firewall of the brief: replies and ssh in, everything else dropped.
const HOST: &str = "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n\
     -A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n\
     -A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\nCOMMIT\n";

fn compile(text: &str) -> (tailwall_compiler::ir::Ruleset, Artifact) {
    let src = tailwall_compiler::diag::SourceFile::new("ct.rules", text.to_string());
    let rs = tailwall_compiler::frontend::load(&src)
        .unwrap_or_else(|d| panic!("{d:?}"))
        .ruleset;
    let art = artifact::build(&rs, Hook::Input).expect("build");
    (rs, art)
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn tcp(flags: u8, sport: u16, dport: u16) -> Vec<u8> {
    let mut l4 = l4_header(IPPROTO_TCP, sport, dport, &[]);
    l4[13] = flags;
    build_frame(
        MAC_A,
        MAC_B,
        ip("10.0.0.1"),
        ip("10.0.0.2"),
        IPPROTO_TCP,
        0,
        &l4,
    )
}

/// Frames whose state without an entry covers every arm of `CtState::without_entry` for IPv4.
fn frames() -> Vec<(&'static str, Vec<u8>)> {
    let (a, b) = (ip("10.0.0.1"), ip("10.0.0.2"));
    let udp = build_frame(
        MAC_A,
        MAC_B,
        a,
        b,
        IPPROTO_UDP,
        0,
        &l4_header(IPPROTO_UDP, 5353, 53, &[]),
    );
    let mut bad_udp_len = udp.clone();
    bad_udp_len[14 + 20 + 5] = 200;
    let quoted = {
        let inner = build_frame(
            MAC_B,
            MAC_A,
            b,
            a,
            IPPROTO_UDP,
            0,
            &l4_header(IPPROTO_UDP, 53, 5353, &[]),
        );
        let mut p = vec![3, 3, 0, 0, 0, 0, 0, 0];
        p.extend_from_slice(&inner[14..14 + 28]);
        p
    };
    vec![
        ("syn", tcp(0x02, 40000, 22)),
        ("syn-ack", tcp(0x12, 40000, 22)),
        ("ack", tcp(0x10, 40000, 80)),
        ("rst", tcp(0x04, 40000, 80)),
        ("fin", tcp(0x01, 40000, 80)),
        ("syn-fin", tcp(0x03, 40000, 80)),
        ("psh-ack", tcp(0x18, 40000, 80)),
        ("udp", udp),
        ("udp bad length", bad_udp_len),
        (
            "echo",
            build_frame(
                MAC_A,
                MAC_B,
                a,
                b,
                IPPROTO_ICMP,
                0,
                &[8, 0, 0, 0, 0, 1, 0, 1],
            ),
        ),
        (
            "echo reply",
            build_frame(
                MAC_A,
                MAC_B,
                a,
                b,
                IPPROTO_ICMP,
                0,
                &[0, 0, 0, 0, 0, 1, 0, 1],
            ),
        ),
        (
            "port unreachable, no flow",
            build_frame(MAC_A, MAC_B, a, b, IPPROTO_ICMP, 0, &quoted),
        ),
        ("gre", build_frame(MAC_A, MAC_B, a, b, 47, 0, &[0; 8])),
        (
            "truncated tcp",
            build_frame(MAC_A, MAC_B, a, b, IPPROTO_TCP, 0, &[0, 80, 0, 22]),
        ),
    ]
}

/// Every `ct_state` value as its own rule: the deciding rule names the state the datapath computed.
const BY_STATE: &str = "*filter\n:INPUT ACCEPT [0:0]\n\
     -A INPUT -m conntrack --ctstate INVALID -j DROP\n\
     -A INPUT -m conntrack --ctstate NEW -j ACCEPT\n\
     -A INPUT -m conntrack --ctstate ESTABLISHED -j ACCEPT\n\
     -A INPUT -m conntrack --ctstate RELATED -j ACCEPT\n\
     -A INPUT -m conntrack --ctstate UNTRACKED -j DROP\nCOMMIT\n";

#[test]
fn ct_state_testrun_equals_sim_and_interp_without_entries() {
    if !require_root_or_skip("conntrack") {
        return;
    }
    // A fresh namespace: no conntrack entry exists there, every lookup misses.
    let ns = tailwall_tests::netns::Netns::new().expect("netns");
    ns.run(|| {
        let (rs, art) = compile(BY_STATE);
        let g = Generation::load_nameless(&art).unwrap_or_else(|e| panic!("{e}"));
        let sim = Sim::new(&art).expect("sim");
        let mut seen = std::collections::BTreeSet::new();
        for (name, f) in frames() {
            let tr = g.test_run(&f, 1).expect("test run");
            let k = Outcome::from_kernel(&art, tr.xdp_action, &tr.decision).expect("decision");
            let s = sim.run(&packet::decode(&f));
            let i = interp::run(&rs, Hook::Input, &packet::decode(&f));
            assert_eq!(k, s, "{name}: kernel vs sim");
            assert_eq!(k, i, "{name}: kernel vs interp");
            if let packet::Decoded::Ipv4(p) = packet::decode(&f) {
                seen.insert(p.ct_state);
            }
        }
        assert!(seen.contains(&CtState::New) && seen.contains(&CtState::Invalid));
    })
    .expect("setns");
}

/// Per-rule (packets, bytes) of INPUT in rule order, and INPUT's policy counter.
type Counters = (Vec<(u64, u64)>, (u64, u64));

/// Which filter judges the host of a [`VethPair`] in [`scripted_flows`].
#[derive(Clone, Copy, Debug)]
enum Filter {
    IptablesLegacy,
    Tailwall,
}

/// The brief's scripted flows against [`HOST`] on a fresh veth pair, filtered by `filter`; returns
/// INPUT's counters once every packet is counted:
/// 1. the peer opens a TCP connection to the host's port 22, sends a line, closes (SYN `NEW` by rule
///    2, the rest `ESTABLISHED` by rule 1);
/// 2. the host opens a TCP connection to the peer's port 5000 (its SYN-ACK and the rest
///    `ESTABLISHED`, rule 1);
/// 3. a SYN to the host's port 80 (`NEW`, no rule: the policy);
/// 4. a stray SYN-ACK and a stray RST (`INVALID`: the policy);
/// 5. a UDP datagram from the host to a closed port of the peer: the peer's ICMP port unreachable
///    (`RELATED`, rule 1).
fn scripted_flows(filter: Filter) -> Counters {
    use std::io::{Read as _, Write as _};
    use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
    use std::time::Duration;
    use tailwall_tests::netns::VethPair;

    let pair = VethPair::new().expect("veth pair");
    pair.wait_carrier(Duration::from_secs(5)).expect("carrier");
    let (host_ip, peer_ip) = (pair.host_ip, pair.peer_ip);
    match filter {
        Filter::IptablesLegacy => {
            pair.host
                .exec_stdin("iptables-legacy-restore", [] as [&str; 0], HOST)
                .expect("iptables-legacy-restore");
        }
        Filter::Tailwall => {
            let (_, art) = compile(HOST);
            let iface = pair.host_if.clone();
            pair.host
                .run(move || {
                    tailwall_loader::iface::attach(
                        &iface,
                        &art,
                        tailwall_loader::Mode::Generic,
                        false,
                    )
                })
                .expect("setns")
                .unwrap_or_else(|e| panic!("attach: {e}"));
        }
    }
    // Resolve neighbours first (ARP is not IP: no filter sees it).
    pair.peer
        .exec("ping", ["-c", "1", "-W", "1", &host_ip.to_string()])
        .ok();
    let timeout = Duration::from_secs(3);

    // 1. peer -> host:22.
    let ssh = pair
        .host
        .run(move || TcpListener::bind(SocketAddr::from((host_ip, 22))))
        .expect("setns")
        .expect("listen 22");
    let server = std::thread::spawn(move || {
        let (mut s, _) = ssh.accept().expect("accept");
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).expect("read");
        buf.len()
    });
    let mut c = pair
        .peer
        .run(move || TcpStream::connect_timeout(&SocketAddr::from((host_ip, 22)), timeout))
        .expect("setns")
        .expect("connect to 22 through the filter");
    c.write_all(b"hello\n").expect("write");
    drop(c);
    assert_eq!(server.join().expect("server"), 6);

    // 2. host -> peer:5000.
    let svc = pair
        .peer
        .run(move || TcpListener::bind(SocketAddr::from((peer_ip, 5000))))
        .expect("setns")
        .expect("listen 5000");
    let peer_side = std::thread::spawn(move || {
        let (mut s, _) = svc.accept().expect("accept");
        s.write_all(b"welcome\n").expect("write");
    });
    let mut c = match pair
        .host
        .run(move || TcpStream::connect_timeout(&SocketAddr::from((peer_ip, 5000)), timeout))
        .expect("setns")
    {
        Ok(c) => c,
        Err(e) => panic!(
            "{filter:?}: the host's own connection gets its SYN-ACK: {e}\n{}\n{}\n{}",
            pair.host
                .exec("iptables-legacy-save", ["-c"])
                .unwrap_or_default(),
            pair.host
                .exec("cat", ["/proc/net/nf_conntrack"])
                .unwrap_or_default(),
            {
                let iface = pair.host_if.clone();
                pair.host
                    .run(move || {
                        tailwall_loader::iface::stats(&iface).map(|s| {
                            format!(
                                "{:?} {:?} {:?}",
                                s.rules.iter().map(|r| r.packets).collect::<Vec<_>>(),
                                s.reasons
                                    .iter()
                                    .filter(|r| r.packets > 0)
                                    .collect::<Vec<_>>(),
                                s.policies
                            )
                        })
                    })
                    .ok()
                    .and_then(|r| r.ok())
                    .unwrap_or_default()
            }
        ),
    };
    c.set_read_timeout(Some(timeout)).expect("timeout");
    let mut buf = Vec::new();
    c.read_to_end(&mut buf).expect("the reply reaches the host");
    assert_eq!(buf, b"welcome\n");
    peer_side.join().expect("peer");
    drop(c);

    // 3. and 4.: crafted frames from the peer.
    let tx = pair.sender().expect("sender");
    let frame = |flags: u8, dport: u16| {
        let mut l4 = l4_header(IPPROTO_TCP, 40000, dport, &[]);
        l4[13] = flags;
        build_frame(
            pair.host_mac,
            pair.peer_mac,
            peer_ip,
            host_ip,
            IPPROTO_TCP,
            0,
            &l4,
        )
    };
    for f in [frame(0x02, 80), frame(0x12, 81), frame(0x04, 82)] {
        tx.send(&f).expect("send");
    }

    // 5. host -> peer:7000 (closed): the peer's kernel answers port unreachable.
    let u = pair
        .host
        .run(move || UdpSocket::bind(SocketAddr::from((host_ip, 0))))
        .expect("setns")
        .expect("udp");
    u.connect(SocketAddr::from((peer_ip, 7000)))
        .expect("connect");
    u.send(b"ping").expect("send");
    u.set_read_timeout(Some(timeout)).expect("timeout");
    let mut b = [0u8; 16];
    let refused =
        matches!(u.recv(&mut b), Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused);
    assert!(
        refused,
        "the port unreachable (RELATED) reaches the host's socket"
    );

    std::thread::sleep(Duration::from_millis(300));
    match filter {
        Filter::IptablesLegacy => {
            let save = pair
                .host
                .exec("iptables-legacy-save", ["-c"])
                .expect("iptables-save");
            let (policy, rules) =
                tailwall_tests::oracle::chain_counters(&save, "INPUT").expect("counters");
            (rules, policy.expect("policy"))
        }
        Filter::Tailwall => {
            let iface = pair.host_if.clone();
            let st = pair
                .host
                .run(move || tailwall_loader::iface::stats(&iface))
                .expect("setns")
                .unwrap_or_else(|e| panic!("stats: {e}"));
            let rules = st
                .rules
                .iter()
                .filter(|r| r.rule.chain == "INPUT")
                .map(|r| (r.packets, r.bytes))
                .collect();
            let p = &st.policies["INPUT"];
            let reasons: Vec<_> = st.reasons.iter().filter(|r| r.packets > 0).collect();
            println!("tailwall reasons: {reasons:?}");
            let iface = pair.host_if.clone();
            pair.host
                .run(move || tailwall_loader::iface::detach(&iface))
                .expect("setns")
                .expect("detach");
            (rules, (p.packets, p.bytes))
        }
    }
}

#[test]
fn ct_live_host_firewall_counts_as_iptables_legacy() {
    if !require_root_or_skip("conntrack") {
        return;
    }
    let ipt = scripted_flows(Filter::IptablesLegacy);
    let tw = scripted_flows(Filter::Tailwall);
    println!("iptables-legacy INPUT: {ipt:?}\ntailwall INPUT:        {tw:?}");
    // Every rule and the policy saw traffic: the flows exercise each state.
    assert!(ipt.0.iter().all(|r| r.0 > 0) && (ipt.1).0 >= 3, "{ipt:?}");
    assert_eq!(
        tw, ipt,
        "per-rule and policy counters, tailwall vs iptables-legacy"
    );
}

/// Cost of the state: the same one-rule INPUT with and without a `ct_state` match, BPF_PROG_TEST_RUN
/// of `tw_entry_in` 200,000 times on a SYN (no entry: one lookup) and the verifier's instruction
/// count of the entry programs (`--nocapture` prints them; the figures of `docs/decisions/0016`).
/// Fails when a generation with `ct_state` does not tell the SYN `NEW`.
#[test]
fn ct_state_cost_of_the_lookup() {
    if !require_root_or_skip("conntrack") {
        return;
    }
    let ns = tailwall_tests::netns::Netns::new().expect("netns");
    ns.run(|| {
        let with = "*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp -m conntrack --ctstate NEW -m tcp --dport 22 -j ACCEPT\nCOMMIT\n";
        let without = "*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\nCOMMIT\n";
        let syn = tcp(0x02, 40000, 22);
        for (name, text) in [("without ct_state", without), ("with ct_state", with)] {
            let (_, art) = compile(text);
            let g = Generation::load_nameless(&art).unwrap_or_else(|e| panic!("{e}"));
            let tr = g.test_run(&syn, 200_000).expect("test run");
            assert_eq!(tr.xdp_action, tailwall_abi::XDP_PASS, "{name}: the SYN is accepted");
            let insns: Vec<String> = g
                .program_stats()
                .expect("stats")
                .into_iter()
                .filter(|s| s.name.starts_with("tw_entry") || s.name == "tw_egress")
                .map(|s| format!("{} {:?}", s.name, s.verified_insns))
                .collect();
            println!("{name}: {} ns per SYN; verified {insns:?}", tr.duration_ns);
        }
    })
    .expect("setns");
}
