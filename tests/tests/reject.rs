//! REJECT in the kernel (issue 10 item 2): BPF_PROG_TEST_RUN of generations whose rules reject with
//! every `--reject-with` of both families. The frame the program leaves (`XDP_TX`) must be, byte for
//! byte, the reply `tailwall_compiler::reject::reply` defines (the kernel's, `docs/decisions/0015-reject.md`);
//! where the kernel sends nothing the packet is dropped and counted `REASON_REJECT_SILENT`; the reply
//! is judged at OUTPUT (an OUTPUT that drops it drops it and counts it there); a reply that cannot
//! be built is a counted drop (`REASON_REJECT_FAIL`). The decision record names the rejecting rule
//! and decodes to the same `Verdict::Reject(kind)` as `interp` and `sim`.
//!
//! Needs root (prints "skipped: not root" otherwise). Run with `--test-threads=1`.
use std::net::{Ipv4Addr, Ipv6Addr};

use tailwall_abi as abi;
use tailwall_compiler::{
    artifact::{self, Artifact},
    diag::SourceFile,
    interp,
    ir::{Hook, RejectWith, Ruleset, Verdict},
    lower,
    outcome::Outcome,
    packet::{
        self, build_frame, build_frame_v6, ipv6_ext_header, l4_header, IPPROTO_ICMP, IPPROTO_TCP,
        IPPROTO_UDP, NEXTHDR_FRAGMENT,
    },
    reject::{self, Reply, ReplyParams},
    sim::Sim,
};
use tailwall_loader::{generation::reply_hop_limits, Generation, TestRun};
use tailwall_tests::netns::require_root_or_skip;

const PEER: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
const HOST: [u8; 6] = [2, 0, 0, 0, 0, 0xb];

fn root() -> bool {
    require_root_or_skip("reject")
}

fn rules(name: &str, text: &str) -> Ruleset {
    lower::iptables(&SourceFile::new(name, text))
        .unwrap_or_else(|d| panic!("{d:?}"))
        .ruleset
}

fn params() -> ReplyParams {
    let (ttl, hl) = reply_hop_limits();
    ReplyParams {
        ttl: ttl as u8,
        hop_limit: hl as u8,
        src: None,
    }
}

fn v4(proto: u8, payload: &[u8]) -> Vec<u8> {
    build_frame(
        HOST,
        PEER,
        Ipv4Addr::new(192, 0, 2, 1),
        Ipv4Addr::new(192, 0, 2, 2),
        proto,
        0,
        payload,
    )
}

fn v6(next: u8, payload: &[u8]) -> Vec<u8> {
    build_frame_v6(
        HOST,
        PEER,
        "2001:db8::1".parse::<Ipv6Addr>().unwrap(),
        "2001:db8::2".parse::<Ipv6Addr>().unwrap(),
        next,
        payload,
    )
}

fn observed(art: &Artifact, tr: &TestRun) -> Outcome {
    Outcome::from_kernel(art, tr.xdp_action, &tr.decision)
        .unwrap_or_else(|e| panic!("kernel decision record: {e}"))
}

/// Run `frame` at INPUT; the kernel's outcome must be interp's and sim's; returns the run.
fn judged(sets: &[&Ruleset], art: &Artifact, gen: &Generation, frame: &[u8]) -> TestRun {
    let tr = gen.test_run(frame, 1).expect("test-run");
    let d = packet::decode(frame);
    let want = interp::run_sets(sets, Hook::Input, &interp::Meta::default(), &d);
    let got = observed(art, &tr);
    assert_eq!(got, want, "kernel vs interp on {d}");
    assert_eq!(
        got,
        Sim::new(art).unwrap().run_frame(frame),
        "kernel vs sim on {d}"
    );
    tr
}

/// Every kind of both families, with the TCP and UDP probes the live test sends too: the reply
/// leaves as `XDP_TX`, byte for byte the model's.
#[test]
fn reject_replies_byte_for_byte_with_every_kind() {
    if !root() {
        return;
    }
    let kinds4 = [
        "icmp-net-unreachable",
        "icmp-host-unreachable",
        "icmp-proto-unreachable",
        "icmp-port-unreachable",
        "icmp-net-prohibited",
        "icmp-host-prohibited",
        "icmp-admin-prohibited",
    ];
    let kinds6 = [
        "icmp6-no-route",
        "icmp6-adm-prohibited",
        "icmp6-addr-unreachable",
        "icmp6-port-unreachable",
        "icmp6-policy-fail",
        "icmp6-reject-route",
    ];
    let mut text4 = String::from("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -p tcp -m tcp --dport 25 -j REJECT --reject-with tcp-reset\n");
    let mut text6 = text4.replace("*filter", "# ip6tables-save\n*filter");
    for (i, k) in kinds4.iter().enumerate() {
        text4.push_str(&format!(
            "-A INPUT -p udp -m udp --dport {} -j REJECT --reject-with {k}\n",
            1000 + i
        ));
    }
    for (i, k) in kinds6.iter().enumerate() {
        text6.push_str(&format!(
            "-A INPUT -p udp -m udp --dport {} -j REJECT --reject-with {k}\n",
            1000 + i
        ));
    }
    text4.push_str("COMMIT\n");
    text6.push_str("COMMIT\n");
    let (rs4, rs6) = (rules("r.v4", &text4), rules("r.v6", &text6));
    assert_eq!(rs6.family, tailwall_compiler::ir::Family::V6);
    let art = artifact::build_sets(&[&rs4, &rs6], Hook::Input).expect("builds");
    let gen = Generation::load(&art).expect("loads");
    let p = params();
    let mut sent = 0;
    let mut probes: Vec<(Vec<u8>, RejectWith)> = Vec::new();
    for (i, k) in kinds4.iter().enumerate() {
        let port = 1000 + i as u16;
        let k = RejectWith::from_name(k, tailwall_compiler::ir::Family::V4).unwrap();
        probes.push((
            v4(IPPROTO_UDP, &l4_header(IPPROTO_UDP, 40000, port, b"probe")),
            k,
        ));
        // A long datagram: the quote is cut at 548 bytes.
        probes.push((
            v4(
                IPPROTO_UDP,
                &l4_header(IPPROTO_UDP, 40000, port, &[0x5a; 900]),
            ),
            k,
        ));
    }
    for (i, k) in kinds6.iter().enumerate() {
        let port = 1000 + i as u16;
        let k = RejectWith::from_name(k, tailwall_compiler::ir::Family::V6).unwrap();
        probes.push((
            v6(IPPROTO_UDP, &l4_header(IPPROTO_UDP, 40000, port, b"probe")),
            k,
        ));
        probes.push((
            v6(
                IPPROTO_UDP,
                &l4_header(IPPROTO_UDP, 40000, port, &[0x5a; 1400]),
            ),
            k,
        ));
        // Behind a hop-by-hop header and an atomic fragment header.
        let mut ext = ipv6_ext_header(NEXTHDR_FRAGMENT, IPPROTO_UDP, 0, false);
        ext.extend(l4_header(IPPROTO_UDP, 40000, port, b"frag"));
        let mut hop = ipv6_ext_header(0, NEXTHDR_FRAGMENT, 0, false);
        hop.extend(ext);
        probes.push((v6(0, &hop), k));
    }
    // TCP SYN (with payload) and an ACK segment, both families.
    let syn = l4_header(IPPROTO_TCP, 40000, 25, b"abc");
    let mut ack = l4_header(IPPROTO_TCP, 40001, 25, b"");
    ack[13] = 0x18;
    ack[8..12].copy_from_slice(&0xdead_beefu32.to_be_bytes());
    for seg in [&syn, &ack] {
        probes.push((v4(IPPROTO_TCP, seg), RejectWith::TcpReset));
        probes.push((v6(IPPROTO_TCP, seg), RejectWith::TcpReset));
    }
    // An 802.1Q-tagged probe keeps its tag.
    let mut tagged = v4(IPPROTO_UDP, &l4_header(IPPROTO_UDP, 40000, 1003, b"vlan"));
    tagged.splice(12..12, [0x81, 0x00, 0x00, 0x0a]);
    probes.push((tagged, RejectWith::IcmpPortUnreachable));
    // Ethernet padding after a short datagram is not quoted.
    let mut padded = v4(IPPROTO_UDP, &l4_header(IPPROTO_UDP, 40000, 1003, b""));
    padded.resize(60, 0);
    probes.push((padded, RejectWith::IcmpPortUnreachable));
    for (f, k) in &probes {
        let tr = judged(&[&rs4, &rs6], &art, &gen, f);
        assert_eq!(observed(&art, &tr).verdict, Verdict::Reject(*k));
        let Reply::Frame(want) = reject::reply(f, *k, &p) else {
            panic!("the model sends a reply to {}", packet::decode(f));
        };
        assert_eq!(tr.xdp_action, abi::XDP_TX, "{k} to {}", packet::decode(f));
        assert_eq!(tr.out, want, "{k} reply to {}", packet::decode(f));
        // The reply passed OUTPUT's (empty) chain: its policy decided.
        assert_eq!(tr.reply_decision.reason, abi::REASON_POLICY);
        sent += 1;
    }
    let reasons = gen.reason_counters().expect("reasons");
    assert_eq!(reasons[abi::REASON_REPLY_SENT as usize].packets, sent);
    assert_eq!(reasons[abi::REASON_REJECT_SILENT as usize].packets, 0);
    assert_eq!(reasons[abi::REASON_REJECT_FAIL as usize].packets, 0);
    eprintln!("reject: {sent} replies byte for byte equal to the model");
}

/// No reply where the kernel sends none: dropped, counted on the rule and in
/// `REASON_REJECT_SILENT`.
#[test]
fn reject_is_silent_where_the_kernel_is() {
    if !root() {
        return;
    }
    let rs = rules(
        "s.v4",
        "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp -j REJECT --reject-with tcp-reset\n-A INPUT -j REJECT\nCOMMIT\n",
    );
    let art = artifact::build(&rs, Hook::Input).expect("builds");
    let gen = Generation::load(&art).expect("loads");
    let mut rst = l4_header(IPPROTO_TCP, 1, 25, b"");
    rst[13] = 0x04;
    let mut bcast = v4(IPPROTO_UDP, &l4_header(IPPROTO_UDP, 1, 2, b""));
    bcast[..6].copy_from_slice(&[0xff; 6]);
    let silent = [
        v4(IPPROTO_TCP, &rst),
        v4(IPPROTO_ICMP, &[3, 3, 0, 0, 0, 0, 0, 0]),
        v4(IPPROTO_ICMP, &[11, 0, 0, 0, 0, 0, 0, 0]),
        build_frame(
            HOST,
            PEER,
            Ipv4Addr::new(192, 0, 2, 1),
            Ipv4Addr::new(192, 0, 2, 2),
            IPPROTO_UDP,
            5,
            &[0; 16],
        ),
        bcast,
        build_frame(
            HOST,
            PEER,
            Ipv4Addr::new(192, 0, 2, 1),
            Ipv4Addr::new(224, 0, 0, 5),
            IPPROTO_UDP,
            0,
            &l4_header(IPPROTO_UDP, 1, 2, b""),
        ),
        build_frame(
            HOST,
            PEER,
            Ipv4Addr::new(0, 0, 0, 0),
            Ipv4Addr::new(192, 0, 2, 2),
            IPPROTO_UDP,
            0,
            &l4_header(IPPROTO_UDP, 68, 67, b""),
        ),
    ];
    for f in &silent {
        assert!(
            matches!(
                reject::reply(f, RejectWith::IcmpPortUnreachable, &params()),
                Reply::Silent(_)
            ) || matches!(
                reject::reply(f, RejectWith::TcpReset, &params()),
                Reply::Silent(_)
            )
        );
        let tr = judged(&[&rs], &art, &gen, f);
        assert_eq!(tr.xdp_action, abi::XDP_DROP, "{}", packet::decode(f));
        assert!(matches!(observed(&art, &tr).verdict, Verdict::Reject(_)));
    }
    let reasons = gen.reason_counters().expect("reasons");
    assert_eq!(
        reasons[abi::REASON_REJECT_SILENT as usize].packets,
        silent.len() as u64
    );
    assert_eq!(reasons[abi::REASON_REPLY_SENT as usize].packets, 0);
    let counted: u64 = art
        .origin_counters(&gen.rule_counters().unwrap())
        .rules
        .iter()
        .map(|c| c.packets)
        .sum();
    assert_eq!(
        counted,
        silent.len() as u64,
        "each rejected packet is counted on its rule"
    );
}

/// The reply traverses OUTPUT: an OUTPUT rule that drops ICMP drops the reply (counted on that
/// rule, `tw_decision[DECISION_REPLY]` names it), one that accepts it lets it leave; a RST is judged
/// by OUTPUT's TCP rules.
#[test]
fn reject_reply_meets_output() {
    if !root() {
        return;
    }
    let rs = rules(
        "o.v4",
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -p udp -j REJECT\n-A INPUT -p tcp -j REJECT --reject-with tcp-reset\n-A OUTPUT -p icmp -d 192.0.2.1 -j DROP\n-A OUTPUT -p tcp -j ACCEPT\nCOMMIT\n",
    );
    let art = artifact::build(&rs, Hook::Input).expect("builds");
    let gen = Generation::load(&art).expect("loads");
    let udp = v4(IPPROTO_UDP, &l4_header(IPPROTO_UDP, 1, 2, b"x"));
    let tr = judged(&[&rs], &art, &gen, &udp);
    assert_eq!(tr.xdp_action, abi::XDP_DROP, "OUTPUT drops the ICMP error");
    assert_eq!(tr.reply_decision.reason, abi::REASON_RULE);
    assert_eq!(tr.reply_decision.action, abi::ACTION_DROP);
    let tcp = v4(IPPROTO_TCP, &l4_header(IPPROTO_TCP, 1, 2, b""));
    let tr = judged(&[&rs], &art, &gen, &tcp);
    assert_eq!(tr.xdp_action, abi::XDP_TX, "OUTPUT accepts the RST");
    assert_eq!(tr.reply_decision.action, abi::ACTION_ACCEPT);
    let c = art.origin_counters(&gen.rule_counters().unwrap()).rules;
    // INPUT r0, r1; OUTPUT r2 (drop icmp), r3 (accept tcp).
    assert_eq!(
        c.iter().map(|c| c.packets).collect::<Vec<_>>(),
        [1, 1, 1, 1],
        "each rule counted once: the rejected packets in INPUT, their replies in OUTPUT"
    );
    assert_eq!(c[2].bytes, 20 + 8 + udp.len() as u64 - 14);
    assert_eq!(c[3].bytes, 40);
}

/// A FORWARD ICMP error needs the route back to the sender for its source address: in a namespace
/// without one the reply cannot be built, so the packet is dropped and counted
/// `REASON_REJECT_FAIL` (never passed). A FORWARD RST needs no lookup.
#[test]
fn reject_in_forward_without_a_route_back_fails_closed() {
    if !root() {
        return;
    }
    let rs = rules(
        "f.v4",
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A FORWARD -p udp -j REJECT --reject-with icmp-host-prohibited\n-A FORWARD -p tcp -j REJECT --reject-with tcp-reset\nCOMMIT\n",
    );
    let art = artifact::build(&rs, Hook::Input).expect("builds");
    let ns = tailwall_tests::netns::Netns::new().expect("netns");
    let (udp, tcp) = (
        v4(IPPROTO_UDP, &l4_header(IPPROTO_UDP, 1, 2, b"x")),
        v4(IPPROTO_TCP, &l4_header(IPPROTO_TCP, 1, 2, b"")),
    );
    let (tu, tt, reasons) = ns
        .run(|| {
            let gen = Generation::load(&art).expect("loads");
            (
                gen.test_run_at(&udp, Hook::Forward, 1).expect("run"),
                gen.test_run_at(&tcp, Hook::Forward, 1).expect("run"),
                gen.reason_counters().expect("reasons"),
            )
        })
        .expect("in netns");
    assert_eq!(tu.xdp_action, abi::XDP_DROP);
    assert_eq!(tt.xdp_action, abi::XDP_TX);
    let Reply::Frame(want) = reject::reply(&tcp, RejectWith::TcpReset, &params()) else {
        panic!()
    };
    assert_eq!(tt.out, want);
    assert_eq!(reasons[abi::REASON_REJECT_FAIL as usize].packets, 1);
}

/// The per-packet cost of a rejected packet (its reply built and judged at OUTPUT) beside a dropped
/// one, by BPF_PROG_TEST_RUN (printed; `docs/decisions/0015-reject.md` records the figures).
#[test]
fn reject_cost_per_packet() {
    if !root() {
        return;
    }
    let rs = rules(
        "c.v4",
        "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p udp -m udp --dport 53 -j REJECT\n-A INPUT -p tcp -m tcp --dport 25 -j REJECT --reject-with tcp-reset\n-A INPUT -p udp -m udp --dport 54 -j DROP\nCOMMIT\n",
    );
    let art = artifact::build(&rs, Hook::Input).expect("builds");
    let gen = Generation::load(&art).expect("loads");
    // One run per test-run call: with `repeat` > 1 the kernel runs the program again on the frame
    // the previous run left (the reply), so each packet is sent once and the reported times summed.
    let n = 20_000u32;
    let run = |f: &[u8]| {
        let total: u64 = (0..n)
            .map(|_| gen.test_run(f, 1).expect("run").duration_ns as u64)
            .sum();
        total / n as u64
    };
    let rej = v4(IPPROTO_UDP, &l4_header(IPPROTO_UDP, 1, 53, b"0123456789"));
    let rst = v4(IPPROTO_TCP, &l4_header(IPPROTO_TCP, 1, 25, b""));
    let drop = v4(IPPROTO_UDP, &l4_header(IPPROTO_UDP, 1, 54, b"0123456789"));
    let (a, b, c) = (run(&rej), run(&rst), run(&drop));
    eprintln!("reject cost: icmp-port-unreachable {a} ns, tcp-reset {b} ns, drop {c} ns per packet ({n} runs)");
    assert!(a > 0 && b > 0 && c > 0);
}

// ---------------------------------------------------------------------------------------------------
// Live: the same probes against iptables-legacy and against tailwall, replies compared at the peer.

/// A raw AF_PACKET socket on the peer end that receives every frame arriving there.
struct Capture {
    fd: std::os::fd::OwnedFd,
}

impl Capture {
    fn open(ifindex: u32) -> Capture {
        use std::os::fd::FromRawFd;
        let proto = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: plain socket(2)/bind(2)/setsockopt(2) calls on a fresh fd owned below.
        unsafe {
            let raw = libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                proto as i32,
            );
            assert!(raw >= 0, "socket(AF_PACKET)");
            let fd = std::os::fd::OwnedFd::from_raw_fd(raw);
            let mut sll: libc::sockaddr_ll = std::mem::zeroed();
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_protocol = proto;
            sll.sll_ifindex = ifindex as i32;
            let rc = libc::bind(
                raw,
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            );
            assert_eq!(rc, 0, "bind(AF_PACKET)");
            let tv = libc::timeval {
                tv_sec: 0,
                tv_usec: 300_000,
            };
            libc::setsockopt(
                raw,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as u32,
            );
            Capture { fd }
        }
    }

    /// Every IPv4/IPv6 frame from `src_mac` to `dst_mac` (unicast: not the host's own MLD or
    /// neighbour discovery) received until the socket stays quiet for 300 ms.
    fn frames_from(&self, src_mac: [u8; 6], dst_mac: [u8; 6]) -> Vec<Vec<u8>> {
        use std::os::fd::AsRawFd;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 4096];
        loop {
            // SAFETY: the buffer is valid for its length.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n <= 0 {
                return out;
            }
            let f = &buf[..n as usize];
            let et = u16::from_be_bytes([f[12], f[13]]);
            if f[6..12] == src_mac && f[..6] == dst_mac && (et == 0x0800 || et == 0x86dd) {
                // NDP from the host is not a reply.
                if et == 0x86dd && f.len() > 54 && f[20] == 58 && matches!(f[54], 133..=137) {
                    continue;
                }
                out.push(f.to_vec());
            }
        }
    }
}

/// The fields of a reply the kernel does not make deterministic, zeroed: the IPv4 identification
/// (`ip_select_ident` for ICMP; the RST's is 0 in both) with the header checksum it feeds, and the
/// IPv6 flow label (the kernel's automatic label is a keyed hash of the flow).
fn normalised(f: &[u8]) -> Vec<u8> {
    let mut f = f.to_vec();
    let l3 = 14;
    match u16::from_be_bytes([f[12], f[13]]) {
        0x0800 => {
            f[l3 + 4] = 0;
            f[l3 + 5] = 0;
            f[l3 + 10] = 0;
            f[l3 + 11] = 0;
            if f[l3 + 9] == 6 && f.len() >= l3 + 40 {
                // The kernel's IPv4 RST leaves with CHECKSUM_PARTIAL (`nf_reject_ip_tcphdr_put`):
                // over veth it arrives holding only the pseudo-header's sum, which a NIC would
                // complete. Compared apart: tailwall's must be complete (`checksums_valid`).
                f[l3 + 36] = 0;
                f[l3 + 37] = 0;
            }
        }
        _ => {
            f[l3 + 1] &= 0xf0;
            f[l3 + 2] = 0;
            f[l3 + 3] = 0;
        }
    }
    f
}

/// Whether `f`'s IPv4 header checksum and its TCP / ICMP / ICMPv6 checksum are complete and right.
fn checksums_valid(f: &[u8]) -> bool {
    let l3 = 14;
    let fold = |s: u32| s == 0xffff;
    match u16::from_be_bytes([f[12], f[13]]) {
        0x0800 => {
            let ihl = ((f[l3] & 0xf) as usize) * 4;
            let tot = u16::from_be_bytes([f[l3 + 2], f[l3 + 3]]) as usize;
            let l4 = &f[l3 + ihl..l3 + tot];
            let ok_ip = fold(reject::sum16(&f[l3..l3 + ihl], 0));
            let ok_l4 = match f[l3 + 9] {
                6 => {
                    let mut p = f[l3 + 12..l3 + 20].to_vec();
                    p.extend_from_slice(&[0, 6]);
                    p.extend_from_slice(&(l4.len() as u16).to_be_bytes());
                    fold(reject::sum16(l4, reject::sum16(&p, 0)))
                }
                _ => fold(reject::sum16(l4, 0)),
            };
            ok_ip && ok_l4
        }
        _ => {
            let len = u16::from_be_bytes([f[l3 + 4], f[l3 + 5]]) as usize;
            let mut p = f[l3 + 8..l3 + 40].to_vec();
            p.extend_from_slice(&(len as u32).to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, f[l3 + 6]]);
            fold(reject::sum16(
                &f[l3 + 40..l3 + 40 + len],
                reject::sum16(&p, 0),
            ))
        }
    }
}

/// The ruleset of the live comparison for `family`: one rule per ICMP kind (by UDP port 1000+i),
/// tcp-reset for TCP port 25, policy ACCEPT.
fn live_rules(v6: bool) -> String {
    let kinds: &[&str] = if v6 {
        &[
            "icmp6-no-route",
            "icmp6-adm-prohibited",
            "icmp6-addr-unreachable",
            "icmp6-port-unreachable",
            "icmp6-policy-fail",
            "icmp6-reject-route",
        ]
    } else {
        &[
            "icmp-net-unreachable",
            "icmp-host-unreachable",
            "icmp-proto-unreachable",
            "icmp-port-unreachable",
            "icmp-net-prohibited",
            "icmp-host-prohibited",
            "icmp-admin-prohibited",
        ]
    };
    let mut t = String::new();
    if v6 {
        t.push_str("# Generated by ip6tables-save\n");
    }
    t.push_str("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n");
    t.push_str("-A INPUT -p tcp -m tcp --dport 25 -j REJECT --reject-with tcp-reset\n");
    for (i, k) in kinds.iter().enumerate() {
        t.push_str(&format!(
            "-A INPUT -p udp -m udp --dport {} -j REJECT --reject-with {k}\n",
            1000 + i
        ));
    }
    // The default kind, and a UDP probe to a rejected port with a payload.
    t.push_str("-A INPUT -p udp -m udp --dport 2000 -j REJECT\n");
    t.push_str("COMMIT\n");
    t
}

/// The probes: a TCP SYN and an ACK to port 25, a UDP datagram to each rejected port (a long one
/// for the default kind, quoted up to the kernel's limit), and an ICMP error (no reply).
fn live_probes(pair: &tailwall_tests::netns::VethPair, v6: bool) -> Vec<Vec<u8>> {
    let (hs6, ps6): (Ipv6Addr, Ipv6Addr) = (
        "2001:db8:77::1".parse().unwrap(),
        "2001:db8:77::2".parse().unwrap(),
    );
    let frame = |next: u8, payload: Vec<u8>| {
        if v6 {
            build_frame_v6(pair.host_mac, pair.peer_mac, ps6, hs6, next, &payload)
        } else {
            build_frame(
                pair.host_mac,
                pair.peer_mac,
                pair.peer_ip,
                pair.host_ip,
                next,
                0,
                &payload,
            )
        }
    };
    let with_csum = |mut f: Vec<u8>| {
        // Transport checksums filled, as a real sender's (the kernel verifies them before REJECT).
        let l3 = 14;
        let (hl, pseudo) = if v6 {
            let mut p = f[l3 + 8..l3 + 40].to_vec();
            let len = (f.len() - l3 - 40) as u32;
            p.extend_from_slice(&len.to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, f[l3 + 6]]);
            (40, p)
        } else {
            let mut p = f[l3 + 12..l3 + 20].to_vec();
            let len = (f.len() - l3 - 20) as u16;
            p.extend_from_slice(&[0, f[l3 + 9]]);
            p.extend_from_slice(&len.to_be_bytes());
            (20, p)
        };
        let proto = if v6 { f[l3 + 6] } else { f[l3 + 9] };
        let at = match proto {
            6 => 16,
            17 => 6,
            _ => return f,
        };
        let t = l3 + hl;
        f[t + at] = 0;
        f[t + at + 1] = 0;
        let s = reject::sum16(&f[t..], reject::sum16(&pseudo, 0));
        let ck = !(s as u16);
        f[t + at..t + at + 2].copy_from_slice(&ck.to_be_bytes());
        f
    };
    let nk = if v6 { 6 } else { 7 };
    let mut out = Vec::new();
    out.push(with_csum(frame(
        IPPROTO_TCP,
        l4_header(IPPROTO_TCP, 40000, 25, b""),
    )));
    let mut ack = l4_header(IPPROTO_TCP, 40001, 25, b"data");
    ack[13] = 0x18;
    ack[8..12].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    out.push(with_csum(frame(IPPROTO_TCP, ack)));
    for i in 0..nk {
        out.push(with_csum(frame(
            IPPROTO_UDP,
            l4_header(IPPROTO_UDP, 40000, 1000 + i, b"probe"),
        )));
    }
    out.push(with_csum(frame(
        IPPROTO_UDP,
        l4_header(IPPROTO_UDP, 40000, 2000, &[0x42; 1300]),
    )));
    out
}

/// What the peer saw for each probe (normalised replies), and the INPUT rule counters (packets).
type Seen = (Vec<Vec<Vec<u8>>>, Vec<u64>);

fn live_run(v6: bool, tailwall: bool) -> Seen {
    use tailwall_tests::netns::VethPair;
    let pair = VethPair::new().expect("veth pair");
    pair.wait_carrier(std::time::Duration::from_secs(5))
        .expect("carrier");
    let (h, p) = (&pair.host, &pair.peer);
    h.exec(
        "ip",
        [
            "-6",
            "addr",
            "add",
            "2001:db8:77::1/64",
            "dev",
            &pair.host_if,
            "nodad",
        ],
    )
    .expect("v6 addr");
    p.exec(
        "ip",
        [
            "-6",
            "addr",
            "add",
            "2001:db8:77::2/64",
            "dev",
            &pair.peer_if,
            "nodad",
        ],
    )
    .expect("v6 addr");
    let peer_mac = tailwall_tests::netns::fmt_mac(pair.peer_mac);
    h.exec(
        "ip",
        [
            "neigh",
            "replace",
            &pair.peer_ip.to_string(),
            "lladdr",
            &peer_mac,
            "dev",
            &pair.host_if,
            "nud",
            "permanent",
        ],
    )
    .expect("neigh");
    h.exec(
        "ip",
        [
            "-6",
            "neigh",
            "replace",
            "2001:db8:77::2",
            "lladdr",
            &peer_mac,
            "dev",
            &pair.host_if,
            "nud",
            "permanent",
        ],
    )
    .expect("neigh6");
    // No rate limit on the kernel's ICMP errors: the comparison sends a burst (tailwall has none,
    // docs/decisions/0015-reject.md).
    h.sysctl("net.ipv4.icmp_ratelimit", "0").expect("sysctl");
    h.sysctl("net.ipv4.icmp_msgs_per_sec", "100000")
        .expect("sysctl");
    h.sysctl("net.ipv6.icmp.ratelimit", "0").expect("sysctl");
    let text = live_rules(v6);
    let rs = rules(if v6 { "live.v6" } else { "live.v4" }, &text);
    let mut pins = None;
    if tailwall {
        let key = h
            .run(tailwall_loader::iface::netns_key)
            .expect("setns")
            .expect("key");
        pins = Some(key);
        let art = artifact::build(&rs, Hook::Input).expect("builds");
        let iface = pair.host_if.clone();
        h.run(move || tailwall_loader::attach(&iface, &art, tailwall_loader::Mode::Generic, false))
            .expect("setns")
            .expect("attach");
    } else {
        let tool = if v6 {
            "ip6tables-legacy-restore"
        } else {
            "iptables-legacy-restore"
        };
        h.exec_stdin(tool, ["-w"], &text).expect("restore");
    }
    let peer_ifindex = pair.peer_ifindex;
    let cap = p.run(move || Capture::open(peer_ifindex)).expect("setns");
    let sender = pair.sender().expect("sender");
    let mut replies = Vec::new();
    for f in live_probes(&pair, v6) {
        sender.send(&f).expect("send");
        let got = cap.frames_from(pair.host_mac, pair.peer_mac);
        if tailwall {
            for r in &got {
                assert!(
                    checksums_valid(r),
                    "tailwall reply with a bad checksum: {r:02x?}"
                );
            }
        }
        replies.push(got.iter().map(|r| normalised(r)).collect());
    }
    let counters = if tailwall {
        let iface = pair.host_if.clone();
        let s = h
            .run(move || tailwall_loader::stats(&iface))
            .expect("setns")
            .expect("stats");
        let mut c: Vec<(u32, u64)> = s
            .rules
            .iter()
            .filter(|r| r.rule.chain == "INPUT")
            .map(|r| (r.rule.position, r.packets))
            .collect();
        c.sort();
        let iface = pair.host_if.clone();
        h.run(move || tailwall_loader::detach(&iface))
            .expect("setns")
            .expect("detach");
        c.into_iter().map(|(_, p)| p).collect()
    } else {
        let tool = if v6 {
            "ip6tables-legacy"
        } else {
            "iptables-legacy"
        };
        let out = h
            .exec(tool, ["-w", "-L", "INPUT", "-v", "-x", "-n"])
            .expect("list");
        out.lines()
            .skip(2)
            .filter_map(|l| l.split_whitespace().next()?.parse().ok())
            .collect()
    };
    if let Some(key) = pins {
        let _ = std::fs::remove_dir_all(format!("/sys/fs/bpf/tailwall/{key}"));
        let _ = std::fs::remove_dir_all(format!("/run/tailwall/{key}"));
    }
    (replies, counters)
}

/// The same probes from a peer namespace get, from tailwall (XDP, generic mode), the replies
/// iptables-legacy's REJECT sends — type, code, addresses, TTL / hop limit, TOS, quoted bytes,
/// TCP flags, seq and ack, checksums — byte for byte but for the IPv4 identification of ICMP
/// errors and the IPv6 flow label (normalised, not deterministic in the kernel); and the INPUT rule
/// counters are equal. IPv4 and IPv6, every kind.
#[test]
fn reject_live_replies_equal_iptables_legacy() {
    if !root() {
        return;
    }
    for v6 in [false, true] {
        let (want, want_counters) = live_run(v6, false);
        let (got, got_counters) = live_run(v6, true);
        let fam = if v6 { "IPv6" } else { "IPv4" };
        assert_eq!(want.len(), got.len());
        for (i, (w, g)) in want.iter().zip(&got).enumerate() {
            assert_eq!(
                w.len(),
                1,
                "{fam} probe {i}: iptables-legacy sent {} replies",
                w.len()
            );
            assert_eq!(
                g, w,
                "{fam} probe {i}: tailwall's reply differs from iptables-legacy's"
            );
        }
        assert_eq!(got_counters, want_counters, "{fam} INPUT rule counters");
        eprintln!(
            "reject live {fam}: {} probes, replies equal, counters {want_counters:?}",
            want.len()
        );
    }
}

/// Generated filter tables with REJECT rules of every kind (`RulesetOpts::reject`: INPUT and FORWARD,
/// user chains, lists, header matches) and their IPv6 twins in one generation, × generated frames of
/// every shape (fragments, options, truncated transport headers, ICMP types, extension headers):
/// at INPUT the kernel decides every frame as `interp`; every rejected frame either leaves as
/// exactly the reply `reject::reply` builds (`XDP_TX`) or, where the model says the kernel stays
/// silent, is dropped — the datapath's no-reply decisions are the model's.
#[test]
fn reject_on_generated_rulesets_matches_the_model() {
    if !root() {
        return;
    }
    use tailwall_compiler::testgen::{
        sample_frames, sample_frames_v6, sample_rulesets_with, to_ipv6, FrameOpts, RulesetOpts,
    };
    let o = RulesetOpts {
        reject: true,
        hooks: true,
        user_chains: true,
        header_matches: true,
        port_lists: true,
        ..RulesetOpts::new(10)
    };
    let p = params();
    let (mut rejected, mut replies, mut silent, mut dropped_at_output) = (0, 0, 0, 0);
    for (i, rs) in sample_rulesets_with(0x7265_6a65, 12, o).iter().enumerate() {
        let rs6 = to_ipv6(rs);
        let art = artifact::build_sets(&[rs, &rs6], Hook::Input).expect("builds");
        let gen = Generation::load(&art).unwrap_or_else(|e| panic!("ruleset {i}: {e}"));
        let mut frames = sample_frames(rs, 0x5000 + i as u64, 120, &FrameOpts::default());
        frames.extend(sample_frames_v6(
            rs,
            0x6000 + i as u64,
            120,
            &FrameOpts::default(),
        ));
        for f in frames.iter().filter(|f| f.len() >= 14) {
            let tr = judged(&[rs, &rs6], &art, &gen, f);
            let Verdict::Reject(k) = observed(&art, &tr).verdict else {
                continue;
            };
            rejected += 1;
            match reject::reply(f, k, &p) {
                Reply::Frame(want) => {
                    // The reply meets OUTPUT first, as iptables' reply does.
                    let at_output = interp::run_sets(
                        &[rs, &rs6],
                        Hook::Output,
                        &interp::Meta::default(),
                        &packet::decode(&want),
                    );
                    if at_output.verdict != Verdict::Accept {
                        assert_eq!(tr.xdp_action, abi::XDP_DROP, "OUTPUT drops the reply");
                        assert_ne!(tr.reply_decision.action, abi::ACTION_ACCEPT);
                        dropped_at_output += 1;
                        continue;
                    }
                    assert_eq!(
                        tr.xdp_action,
                        abi::XDP_TX,
                        "{k} to {}: reply decision {:?}\nframe {f:02x?}",
                        packet::decode(f),
                        tr.reply_decision,
                    );
                    assert_eq!(
                        tr.out,
                        want,
                        "{k} reply to {}\nframe {f:02x?}",
                        packet::decode(f)
                    );
                    replies += 1;
                }
                Reply::Silent(why) => {
                    assert_eq!(
                        tr.xdp_action,
                        abi::XDP_DROP,
                        "{k} to {} must be silent ({why:?})",
                        packet::decode(f)
                    );
                    silent += 1;
                }
            }
        }
    }
    eprintln!("reject generated: {rejected} rejected frames, {replies} replies equal to the model, {dropped_at_output} replies dropped by OUTPUT as interp drops them, {silent} silent");
    assert!(
        replies >= 15 && silent >= 3 && dropped_at_output >= 10,
        "{replies} replies, {silent} silent, {dropped_at_output} dropped by OUTPUT"
    );
}
