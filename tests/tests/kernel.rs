//! Kernel tier: the eBPF datapath in the running kernel.
//!
//! - every program passes the verifier in every configuration (no stage, each single field, all five,
//!   one chunk, ~10k rules / 20 chunks);
//! - BPF_PROG_TEST_RUN verdicts and deciding rules equal `interp` on generated rulesets × frames, and the
//!   rule/reason counters count what ran;
//! - attach on a veth pair in fresh namespaces, counters against real traffic from the peer, a swap
//!   under the same link, detach.
//!
//! Needs root; without it every test prints "skipped: not root" and passes, unless
//! `TAILWALL_REQUIRE_KERNEL=1` (CI), which makes it fail. Run with `--test-threads=1`.
use std::net::Ipv4Addr;

use tailwall_abi as abi;
use tailwall_compiler::{
    artifact::{self, Artifact},
    diag::Span,
    interp,
    ir::{Action, Field, Hook, Match, Ruleset, Test, Verdict},
    packet::{
        self, build_frame, build_frame_v6, ipv6_ext_header, l4_header, IPPROTO_ICMP, IPPROTO_TCP,
        IPPROTO_UDP, NEXTHDR_FRAGMENT,
    },
};
use tailwall_loader::{Generation, TestRun};
use tailwall_tests::netns::require_root_or_skip;

use abi::{XDP_DROP, XDP_PASS};
use tailwall_compiler::outcome::Outcome;
const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];
const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 2];

fn root() -> bool {
    require_root_or_skip("kernel")
}

// ---------------------------------------------------------------------------------------------------
// Rulesets and frames.

fn m(field: Field, test: Test, negated: bool) -> Match {
    Match::single(field, test, negated, Span::default())
}
fn pfx(s: &str) -> Test {
    let (a, l) = s.split_once('/').unwrap_or((s, "32"));
    Test::Prefix {
        addr: u32::from(a.parse::<Ipv4Addr>().unwrap()).into(),
        len: l.parse().unwrap(),
    }
}
fn src(s: &str) -> Match {
    m(Field::SrcIp, pfx(s), false)
}
fn dst(s: &str) -> Match {
    m(Field::DstIp, pfx(s), false)
}
fn proto(p: u8) -> Match {
    m(Field::Proto, Test::Exact(p as u32), false)
}
fn sport(lo: u32, hi: u32) -> Match {
    m(
        Field::SrcPort,
        if lo == hi {
            Test::Exact(lo)
        } else {
            Test::Range { lo, hi }
        },
        false,
    )
}
fn dport(lo: u32, hi: u32) -> Match {
    m(
        Field::DstPort,
        if lo == hi {
            Test::Exact(lo)
        } else {
            Test::Range { lo, hi }
        },
        false,
    )
}
fn not(mut x: Match) -> Match {
    x.negated = true;
    x
}

/// An INPUT chain of `rules` (matches, action) with `policy`.
fn ruleset(rules: Vec<(Vec<Match>, Action)>, policy: Verdict) -> Ruleset {
    Ruleset::with_chain(Hook::Input, policy, rules)
}

fn build(rs: &Ruleset) -> Artifact {
    artifact::build(rs, Hook::Input).expect("artifact builds")
}

fn tcp(s: Ipv4Addr, d: Ipv4Addr, sp: u16, dp: u16) -> Vec<u8> {
    build_frame(
        MAC_A,
        MAC_B,
        s,
        d,
        IPPROTO_TCP,
        0,
        &l4_header(IPPROTO_TCP, sp, dp, b"hello"),
    )
}
fn udp(s: Ipv4Addr, d: Ipv4Addr, sp: u16, dp: u16) -> Vec<u8> {
    build_frame(
        MAC_A,
        MAC_B,
        s,
        d,
        IPPROTO_UDP,
        0,
        &l4_header(IPPROTO_UDP, sp, dp, b"hi"),
    )
}
fn icmp(s: Ipv4Addr, d: Ipv4Addr) -> Vec<u8> {
    build_frame(
        MAC_A,
        MAC_B,
        s,
        d,
        IPPROTO_ICMP,
        0,
        &[8, 0, 0, 0, 0, 1, 0, 1],
    )
}
fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

/// Frames every parsing decision of `packet::decode` exercises: options, padding, fragments, truncation,
/// non-IPv4 and malformed headers.
fn edge_frames() -> Vec<(String, Vec<u8>)> {
    let (a, b) = (ip("10.1.2.3"), ip("192.168.1.5"));
    let mut out = Vec::new();
    out.push(("tcp".into(), tcp(a, b, 1234, 80)));
    let mut opts = tcp(a, b, 1234, 22);
    opts.splice(34..34, [1, 1, 1, 0]);
    opts[14] = 0x46;
    let tot = u16::from_be_bytes([opts[16], opts[17]]) + 4;
    opts[16..18].copy_from_slice(&tot.to_be_bytes());
    out.push(("tcp with ip options".into(), opts));
    let mut padded = build_frame(
        MAC_A,
        MAC_B,
        a,
        b,
        IPPROTO_TCP,
        0,
        &[0, 80, 0, 22, 0, 0, 0, 0, 0, 0],
    );
    padded.resize(64, 0xee);
    out.push(("truncated tcp, ethernet padding".into(), padded));
    out.push((
        "truncated udp".into(),
        build_frame(MAC_A, MAC_B, a, b, IPPROTO_UDP, 0, &[0, 53, 0]),
    ));
    out.push((
        "later tcp fragment".into(),
        build_frame(MAC_A, MAC_B, a, b, IPPROTO_TCP, 3, &[0; 24]),
    ));
    out.push((
        "later udp fragment".into(),
        build_frame(
            MAC_A,
            MAC_B,
            a,
            b,
            IPPROTO_UDP,
            1,
            &[0, 53, 0, 53, 0, 8, 0, 0],
        ),
    ));
    out.push((
        "gre".into(),
        build_frame(MAC_A, MAC_B, a, b, 47, 0, &[0; 8]),
    ));
    let mut arp = tcp(a, b, 1, 2);
    arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    out.push(("arp".into(), arp));
    let mut vlan = tcp(a, b, 1, 2);
    vlan[12..14].copy_from_slice(&0x8100u16.to_be_bytes());
    out.push(("vlan tag".into(), vlan));
    out.push((
        "ethernet header only".into(),
        tcp(a, b, 1, 2)[..14].to_vec(),
    ));
    out.push(("short ipv4 header".into(), tcp(a, b, 1, 2)[..30].to_vec()));
    let mut v6 = tcp(a, b, 1, 2);
    v6[14] = 0x65;
    out.push(("ip version 6 under ipv4 ethertype".into(), v6));
    let (a6, b6) = (
        "2001:db8::1".parse().expect("v6"),
        "2001:db8::2".parse().expect("v6"),
    );
    out.push((
        "ipv6 tcp (other family)".into(),
        build_frame_v6(
            MAC_A,
            MAC_B,
            a6,
            b6,
            IPPROTO_TCP,
            &l4_header(IPPROTO_TCP, 1, 22, b""),
        ),
    ));
    let mut frag = ipv6_ext_header(NEXTHDR_FRAGMENT, IPPROTO_UDP, 0, true);
    frag.extend(l4_header(IPPROTO_UDP, 1, 53, b""));
    out.push((
        "ipv6 first fragment (other family)".into(),
        build_frame_v6(MAC_A, MAC_B, a6, b6, NEXTHDR_FRAGMENT, &frag),
    ));
    out.push((
        "ipv6 header cut short (other family, not parsed)".into(),
        build_frame_v6(MAC_A, MAC_B, a6, b6, IPPROTO_TCP, &[])[..30].to_vec(),
    ));
    let mut ihl = tcp(a, b, 1, 2);
    ihl[14] = 0x44;
    out.push(("ihl 4".into(), ihl));
    let mut ihl_long = tcp(a, b, 1, 2);
    ihl_long.truncate(14 + 24);
    ihl_long[14] = 0x4f;
    out.push(("ihl longer than frame".into(), ihl_long));
    let mut long = tcp(a, b, 1, 2);
    long[16..18].copy_from_slice(&1000u16.to_be_bytes());
    out.push(("total length beyond frame".into(), long));
    let mut short_tot = tcp(a, b, 1, 2);
    short_tot[16..18].copy_from_slice(&19u16.to_be_bytes());
    out.push(("total length below header".into(), short_tot));
    out
}

/// Deterministic xorshift generator (the test must be reproducible from its seed).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
}

const PREFIXES: [&str; 8] = [
    "10.0.0.0/8",
    "10.1.0.0/16",
    "10.1.2.0/24",
    "10.1.2.3/32",
    "192.168.1.0/24",
    "192.168.1.5/32",
    "0.0.0.0/0",
    "172.16.0.0/12",
];
const ADDRS: [&str; 8] = [
    "10.1.2.3",
    "10.1.2.4",
    "10.1.9.9",
    "10.200.0.1",
    "192.168.1.5",
    "192.168.1.6",
    "172.20.0.1",
    "8.8.8.8",
];
const PORTS: [(u32, u32); 7] = [
    (22, 22),
    (53, 53),
    (80, 80),
    (443, 443),
    (1000, 2000),
    (0, 1023),
    (8080, 65535),
];
const FRAME_PORTS: [u16; 10] = [22, 53, 80, 443, 999, 1000, 1500, 2000, 2001, 40000];

/// A random INPUT ruleset of `n` rules over the pools above (ports only with `-p tcp|udp`, like iptables).
fn random_ruleset(rng: &mut Rng, n: usize) -> Ruleset {
    let mut rules = Vec::new();
    for _ in 0..n {
        let mut ms = Vec::new();
        let maybe_not = |rng: &mut Rng, x: Match| if rng.below(4) == 0 { not(x) } else { x };
        if rng.below(2) == 0 {
            let x = src(rng.pick(&PREFIXES));
            ms.push(maybe_not(rng, x));
        }
        if rng.below(2) == 0 {
            let x = dst(rng.pick(&PREFIXES));
            ms.push(maybe_not(rng, x));
        }
        match rng.below(4) {
            0 | 1 => {
                let p = if rng.below(2) == 0 {
                    IPPROTO_TCP
                } else {
                    IPPROTO_UDP
                };
                ms.push(proto(p));
                if rng.below(3) != 0 {
                    let (lo, hi) = rng.pick(&PORTS);
                    let x = dport(lo, hi);
                    ms.push(maybe_not(rng, x));
                }
                if rng.below(3) == 0 {
                    let (lo, hi) = rng.pick(&PORTS);
                    let x = sport(lo, hi);
                    ms.push(maybe_not(rng, x));
                }
            }
            2 => {
                let x = proto(rng.pick(&[IPPROTO_ICMP, IPPROTO_TCP, 47]));
                ms.push(maybe_not(rng, x));
            }
            _ => {}
        }
        let action = if rng.below(2) == 0 {
            Action::Accept
        } else {
            Action::Drop
        };
        rules.push((ms, action));
    }
    let policy = if rng.below(2) == 0 {
        Verdict::Accept
    } else {
        Verdict::Drop
    };
    ruleset(rules, policy)
}

fn random_frame(rng: &mut Rng) -> Vec<u8> {
    let (s, d) = (ip(rng.pick(&ADDRS)), ip(rng.pick(&ADDRS)));
    let (sp, dp) = (rng.pick(&FRAME_PORTS), rng.pick(&FRAME_PORTS));
    match rng.below(6) {
        0 | 1 => tcp(s, d, sp, dp),
        2 | 3 => udp(s, d, sp, dp),
        4 => icmp(s, d),
        _ => {
            let edges = edge_frames();
            let (_, mut f) = edges[rng.below(edges.len() as u64) as usize].clone();
            if f.len() >= 34 && f[12..14] == [0x08, 0x00] {
                f[26..30].copy_from_slice(&s.octets());
                f[30..34].copy_from_slice(&d.octets());
            }
            f
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Comparing the kernel with interp.

/// The kernel's outcome of one test run, through the one decoder of the decision record.
fn observed(art: &Artifact, tr: &TestRun) -> Outcome {
    Outcome::from_kernel(art, tr.xdp_action, &tr.decision)
        .unwrap_or_else(|e| panic!("kernel decision record: {e}"))
}

/// Run every frame through `gen` and compare with interp and sim; returns the number of frames compared.
fn compare(rs: &Ruleset, art: &Artifact, gen: &Generation, frames: &[Vec<u8>]) -> usize {
    compare_sets(&[rs], art, gen, frames)
}

/// [`compare`] for a generation of one ruleset per family (`interp::run_sets`).
fn compare_sets(sets: &[&Ruleset], art: &Artifact, gen: &Generation, frames: &[Vec<u8>]) -> usize {
    let sim = tailwall_compiler::sim::Sim::new(art).expect("sim accepts the artifact");
    let mut n = 0;
    for f in frames.iter().filter(|f| f.len() >= 14) {
        let tr = gen.test_run(f, 1).expect("test-run");
        let want = interp::run_sets(
            sets,
            Hook::Input,
            &interp::Meta::default(),
            &packet::decode(f),
        );
        let got = observed(art, &tr);
        let modelled = sim.run_frame(f);
        assert_eq!(
            got,
            want,
            "kernel vs interp (sim says {modelled:?}) on {}\nframe {:02x?}\nruleset:\n{}",
            describe(f),
            f,
            sets.iter()
                .map(|rs| rs.dump())
                .collect::<Vec<_>>()
                .join("\n")
        );
        assert_eq!(got, modelled, "kernel vs sim on {}", describe(f));
        n += 1;
    }
    n
}

fn describe(frame: &[u8]) -> String {
    packet::decode(frame).to_string()
}

// ---------------------------------------------------------------------------------------------------
// Verifier.

fn load_reporting(label: &str, rs: &Ruleset) -> (Artifact, Generation) {
    let art = build(rs);
    let gen = Generation::load(&art).unwrap_or_else(|e| panic!("{label}: {e}"));
    let stats = gen.program_stats().expect("program info");
    for s in &stats {
        assert_ne!(
            s.gpl_compatible,
            Some(false),
            "{}: the kernel must see a GPL-compatible license",
            s.name
        );
    }
    let insns: Vec<String> = stats
        .iter()
        .map(|s| {
            format!(
                "{}={}",
                s.name,
                s.verified_insns.map_or("?".into(), |n| n.to_string())
            )
        })
        .collect();
    eprintln!(
        "{label}: {} rules, {} chunks, stages {:?}, load {:?}, verified insns: {}",
        art.globals.nrules,
        art.globals.nchunks,
        art.stages.iter().map(|f| f.name()).collect::<Vec<_>>(),
        gen.load_time(),
        insns.join(" ")
    );
    (art, gen)
}

#[test]
fn verifier_accepts_zero_stages() {
    if !root() {
        return;
    }
    let empty = ruleset(vec![], Verdict::Drop);
    let (art, gen) = load_reporting("no rules", &empty);
    assert_eq!(art.stages.len(), 0);
    compare(
        &empty,
        &art,
        &gen,
        &[tcp(ip("10.0.0.1"), ip("10.0.0.2"), 1, 2)],
    );
    let all = ruleset(
        vec![(vec![], Action::Accept), (vec![], Action::Drop)],
        Verdict::Drop,
    );
    let (art, gen) = load_reporting("unconstrained rules", &all);
    assert_eq!(art.stages.len(), 0);
    assert_eq!(
        compare(
            &all,
            &art,
            &gen,
            &edge_frames()
                .into_iter()
                .map(|(_, f)| f)
                .collect::<Vec<_>>()
        ),
        19
    );
}

#[test]
fn verifier_accepts_each_single_field() {
    if !root() {
        return;
    }
    let cases: Vec<(Field, Match)> = vec![
        (Field::SrcIp, src("10.0.0.0/8")),
        (Field::DstIp, not(dst("192.168.1.0/24"))),
        (Field::Proto, proto(IPPROTO_UDP)),
        (Field::SrcPort, sport(1000, 2000)),
        (Field::DstPort, not(dport(22, 22))),
    ];
    let frames: Vec<Vec<u8>> = edge_frames().into_iter().map(|(_, f)| f).collect();
    for (field, mm) in cases {
        let rs = ruleset(vec![(vec![mm], Action::Drop)], Verdict::Accept);
        let (art, gen) = load_reporting(field.name(), &rs);
        assert_eq!(art.stages, vec![field]);
        compare(&rs, &art, &gen, &frames);
    }
}

#[test]
fn verifier_accepts_all_five_fields() {
    if !root() {
        return;
    }
    let rs = ruleset(
        vec![
            (
                vec![
                    src("10.1.0.0/16"),
                    dst("192.168.1.5"),
                    proto(IPPROTO_TCP),
                    sport(1000, 2000),
                    dport(80, 80),
                ],
                Action::Accept,
            ),
            (
                vec![not(src("10.0.0.0/8")), proto(IPPROTO_UDP), dport(53, 53)],
                Action::Drop,
            ),
            (
                vec![proto(IPPROTO_TCP), not(dport(0, 1023))],
                Action::Accept,
            ),
        ],
        Verdict::Drop,
    );
    let (art, gen) = load_reporting("all five fields", &rs);
    assert_eq!(art.stages.len(), 5);
    let mut frames: Vec<Vec<u8>> = edge_frames().into_iter().map(|(_, f)| f).collect();
    let mut rng = Rng(0x5eed);
    frames.extend((0..200).map(|_| random_frame(&mut rng)));
    compare(&rs, &art, &gen, &frames);
}

#[test]
fn verifier_accepts_ten_thousand_rules() {
    if !root() {
        return;
    }
    for n in [10usize, 512, 10_000] {
        let mut rng = Rng(0x1000 + n as u64);
        let rs = random_ruleset(&mut rng, n);
        let (art, gen) = load_reporting(&format!("{n} random rules"), &rs);
        // The rules plus the three policy positions (INPUT, FORWARD, OUTPUT).
        assert_eq!(
            art.globals.nchunks as usize,
            (n + 3).div_ceil(abi::CHUNK_BITS)
        );
        let frames: Vec<Vec<u8>> = (0..100).map(|_| random_frame(&mut rng)).collect();
        compare(&rs, &art, &gen, &frames);
    }
}

#[test]
fn verifier_accepts_max_chunks() {
    if !root() {
        return;
    }
    // MAX_CHUNKS × 512 positions (the rules and three policy positions): the stage and final loops
    // at their bound.
    let n = (abi::MAX_CHUNKS as usize) * abi::CHUNK_BITS - 3;
    let rules = (0..n)
        .map(|i| {
            let p = if i % 2 == 0 {
                IPPROTO_TCP
            } else {
                IPPROTO_ICMP
            };
            (
                vec![proto(p)],
                if i % 3 == 0 {
                    Action::Drop
                } else {
                    Action::Accept
                },
            )
        })
        .collect();
    let mut rs = ruleset(rules, Verdict::Drop);
    // The deciding rule sits in the last chunk for udp: only the last rule matches it.
    rs.chains[0].rules[n - 1].matches = vec![proto(IPPROTO_UDP)];
    let (art, gen) = load_reporting("max chunks", &rs);
    assert_eq!(art.globals.nchunks, abi::MAX_CHUNKS);
    let frames = vec![
        udp(ip("10.0.0.1"), ip("10.0.0.2"), 1, 2),
        tcp(ip("10.0.0.1"), ip("10.0.0.2"), 1, 2),
        build_frame(MAC_A, MAC_B, ip("10.0.0.1"), ip("10.0.0.2"), 47, 0, &[0; 8]),
    ];
    assert_eq!(compare(&rs, &art, &gen, &frames), 3);
    let tr = gen.test_run(&frames[0], 10_000).expect("run");
    eprintln!(
        "max chunks: last-rule udp frame {} ns/packet",
        tr.duration_ns
    );
}

// ---------------------------------------------------------------------------------------------------
// Test-run against interp, counters.

#[test]
fn testrun_matches_interp_on_generated_rulesets() {
    if !root() {
        return;
    }
    let mut rng = Rng(0x7a11_3a11);
    let mut compared = 0;
    for i in 0..24 {
        let n = 1 + rng.below(if i % 4 == 0 { 700 } else { 40 }) as usize;
        let rs = random_ruleset(&mut rng, n);
        let art = build(&rs);
        let gen = Generation::load(&art).unwrap_or_else(|e| panic!("ruleset {i}: {e}"));
        let mut frames: Vec<Vec<u8>> = edge_frames().into_iter().map(|(_, f)| f).collect();
        frames.extend((0..200).map(|_| random_frame(&mut rng)));
        compared += compare(&rs, &art, &gen, &frames);
    }
    eprintln!("compared {compared} frames");
}

#[test]
fn testrun_matches_interp_on_testgen_samples() {
    if !root() {
        return;
    }
    use tailwall_compiler::testgen::{sample_frames, sample_rulesets, FrameOpts};
    let opts = FrameOpts::default();
    let mut compared = 0;
    for (i, rs) in sample_rulesets(0x6b65_726e, 24, 60).iter().enumerate() {
        let art = build(rs);
        let gen = Generation::load(&art).unwrap_or_else(|e| panic!("ruleset {i}: {e}"));
        let frames = sample_frames(rs, 0x1000 + i as u64, 200, &opts);
        compared += compare(rs, &art, &gen, &frames);
    }
    eprintln!("compared {compared} testgen frames");
    assert!(
        compared >= 24 * 150,
        "most generated frames are at least an ethernet header long"
    );
}

/// User chains in the kernel datapath: jump, goto, RETURN, falling off, nesting, negations and lists
/// (the flattened walk of `tw_final`) decide as `interp` and `sim`.
#[test]
fn testrun_matches_interp_on_user_chains() {
    if !root() {
        return;
    }
    use tailwall_compiler::testgen::{sample_frames, sample_rulesets_with, FrameOpts, RulesetOpts};
    let o = RulesetOpts {
        port_lists: true,
        addr_lists: true,
        user_chains: true,
        ..RulesetOpts::new(8)
    };
    let rulesets = sample_rulesets_with(0x6368_6e73, 24, o);
    let mut compared = 0;
    let mut visits = 0;
    for (i, rs) in rulesets.iter().enumerate() {
        let art = build(rs);
        visits = visits.max(art.globals.nvisits);
        let gen = Generation::load(&art).unwrap_or_else(|e| panic!("ruleset {i}: {e}"));
        let frames = sample_frames(rs, 0x3000 + i as u64, 120, &FrameOpts::default());
        compared += compare(rs, &art, &gen, &frames);
    }
    eprintln!(
        "compared {compared} testgen frames with user chains (walks of up to {visits} visits)"
    );
    assert!(visits > 2, "the sample exercises jumps");
    assert!(compared >= 24 * 100);
}

/// A deep and wide chain structure (the worst case for the walk's verifier cost): 10,000 positions
/// behind 60 jumps that all match, each returning; the verifier accepts it and the walk visits every
/// jump and RETURN before the last chain decides; jump and RETURN positions are counted.
#[test]
fn verifier_accepts_a_long_walk_and_counts_jumps() {
    if !root() {
        return;
    }
    use tailwall_compiler::diag::Span;
    use tailwall_compiler::ir::{Chain, ChainId, Rule, RuleId};
    let mut rs = ruleset(vec![], Verdict::Drop);
    let mut next_id = 0u32;
    let mut rule = |chain: u32, position: u32, matches: Vec<Match>, action: Action| {
        next_id += 1;
        Rule {
            id: RuleId(next_id - 1),
            chain: ChainId(chain),
            position,
            matches,
            action,
            comment: None,
            counters: None,
            span: Span::default(),
        }
    };
    // INPUT: 30 jumps to `pad` (160 rules that do not match udp, then RETURN), then 1 jump to `last`.
    let jumps = 30u32;
    for i in 0..jumps {
        let r = rule(0, i + 1, vec![proto(IPPROTO_UDP)], Action::Jump(ChainId(1)));
        rs.chains[0].rules.push(r);
    }
    let r = rule(0, jumps + 1, vec![], Action::Jump(ChainId(2)));
    rs.chains[0].rules.push(r);
    let mut pad = Vec::new();
    for i in 0..160u32 {
        pad.push(rule(
            1,
            i + 1,
            vec![proto(IPPROTO_TCP), dport(i, i)],
            Action::Drop,
        ));
    }
    pad.push(rule(1, 161, vec![], Action::Return));
    let last = vec![rule(
        2,
        1,
        vec![proto(IPPROTO_UDP), dport(53, 53)],
        Action::Accept,
    )];
    for (id, name, rules) in [(1, "pad", pad), (2, "last", last)] {
        rs.chains.push(Chain {
            id: ChainId(id),
            name: name.into(),
            hook: None,
            policy: None,
            rules,
            span: Span::default(),
        });
    }
    tailwall_compiler::ir::verify(&rs).expect("valid IR");
    let (art, gen) = load_reporting("long walk", &rs);
    assert!(art.globals.nvisits >= 2 * jumps + 2, "{:?}", art.globals);
    let dns = udp(ip("10.0.0.1"), ip("10.0.0.2"), 1000, 53);
    let other = udp(ip("10.0.0.1"), ip("10.0.0.2"), 1000, 54);
    assert_eq!(compare(&rs, &art, &gen, &[dns.clone(), other.clone()]), 2);
    let tr = gen.test_run(&dns, 1000).expect("run");
    eprintln!(
        "long walk: {} visits for the dns frame, {} ns/packet",
        2 * jumps + 2,
        tr.duration_ns
    );
    let counts = art.origin_counters(&gen.rule_counters().expect("counters"));
    let pos = |chain: &str, position: u32| {
        art.rules
            .iter()
            .position(|r| r.chain == chain && r.position == position)
            .expect("rule info")
    };
    // 1 + 1000 dns frames and 1 other frame took every jump; RETURN of `pad` counted once per jump.
    let frames = 1 + 1000 + 1;
    assert_eq!(counts.rules[pos("INPUT", 1)].packets, frames);
    assert_eq!(counts.rules[pos("pad", 161)].packets, frames * jumps as u64);
    assert_eq!(counts.rules[pos("last", 1)].packets, 1 + 1000);
    assert_eq!(
        counts.policies[0].packets, 1,
        "the other frame falls through to the policy"
    );
}

/// Lists (several prefixes, ports, ranges, `proto {tcp, udp}` per match) in the kernel datapath.
#[test]
fn testrun_matches_interp_on_testgen_lists() {
    if !root() {
        return;
    }
    use tailwall_compiler::testgen::{sample_frames, sample_rulesets_with, FrameOpts, RulesetOpts};
    let o = RulesetOpts {
        port_lists: true,
        addr_lists: true,
        ..RulesetOpts::new(40)
    };
    let rulesets = sample_rulesets_with(0x6c69_7374, 16, o);
    assert!(rulesets.iter().any(|rs| rs
        .rules()
        .any(|r| r.matches.iter().any(|m| m.tests.len() > 1))));
    let mut compared = 0;
    for (i, rs) in rulesets.iter().enumerate() {
        let art = build(rs);
        let gen = Generation::load(&art).unwrap_or_else(|e| panic!("ruleset {i}: {e}"));
        let frames = sample_frames(rs, 0x2000 + i as u64, 200, &FrameOpts::default());
        compared += compare(rs, &art, &gen, &frames);
    }
    eprintln!("compared {compared} testgen frames with lists");
    assert!(compared >= 16 * 150);
}

/// The header matches beyond addresses, protocol and ports (`RulesetOpts::header_matches`: length, …)
/// in the kernel datapath, on frames of every shape biased to their boundaries.
#[test]
fn testrun_matches_interp_on_testgen_header_matches() {
    if !root() {
        return;
    }
    use tailwall_compiler::testgen::{sample_frames, sample_rulesets_with, FrameOpts, RulesetOpts};
    let o = RulesetOpts {
        port_lists: true,
        header_matches: true,
        // A test-run namespace has no conntrack entry: the entry program's state is the one
        // `packet::CtState::without_entry` gives each frame (`docs/decisions/0016`).
        ct_state: true,
        ..RulesetOpts::new(40)
    };
    let rulesets = sample_rulesets_with(0x6864_7273, 16, o);
    let mut compared = 0;
    for (i, rs) in rulesets.iter().enumerate() {
        let art = build(rs);
        let gen = Generation::load(&art).unwrap_or_else(|e| panic!("ruleset {i}: {e}"));
        let frames = sample_frames(rs, 0x3000 + i as u64, 200, &FrameOpts::default());
        compared += compare(rs, &art, &gen, &frames);
    }
    eprintln!("compared {compared} testgen frames with header matches");
    assert!(compared >= 16 * 150);
}

/// IPv6 in the kernel datapath: generated rulesets (user chains, lists, header matches) turned into
/// their IPv6 twins, loaded alone and together with an IPv4 ruleset in one generation; IPv6 frames
/// (extension headers up to one past the bound, fragments, ICMPv6, truncated and malformed headers)
/// and IPv4 frames decided as interp and sim decide them.
#[test]
fn testrun_matches_interp_on_ipv6() {
    if !root() {
        return;
    }
    use tailwall_compiler::testgen::{
        sample_frames, sample_frames_v6, sample_rulesets_with, to_ipv6, FrameOpts, RulesetOpts,
    };
    let o = RulesetOpts {
        port_lists: true,
        addr_lists: true,
        user_chains: true,
        header_matches: true,
        ..RulesetOpts::new(30)
    };
    let rulesets = sample_rulesets_with(0x7636_7636, 16, o);
    let (mut alone, mut both) = (0, 0);
    for (i, pair) in rulesets.chunks(2).enumerate() {
        let [rs4, other] = pair else { continue };
        let rs6 = to_ipv6(other);
        let mut frames = sample_frames_v6(other, 0x6000 + i as u64, 200, &FrameOpts::default());
        frames.extend(sample_frames(
            rs4,
            0x7000 + i as u64,
            50,
            &FrameOpts::default(),
        ));
        let art = tailwall_compiler::artifact::build(&rs6, Hook::Input).expect("builds");
        let gen = Generation::load(&art).unwrap_or_else(|e| panic!("ipv6 ruleset {i}: {e}"));
        alone += compare_sets(&[&rs6], &art, &gen, &frames);
        drop(gen);
        let sets = [rs4, &rs6];
        let art = tailwall_compiler::artifact::build_sets(&sets, Hook::Input).expect("builds");
        let gen = Generation::load(&art).unwrap_or_else(|e| panic!("both families {i}: {e}"));
        both += compare_sets(&sets, &art, &gen, &frames);
    }
    eprintln!("compared {alone} frames with an IPv6 ruleset alone, {both} with both families");
    assert!(alone >= 8 * 200 && both >= 8 * 200);
}

#[test]
fn testrun_counts_rules_and_reasons() {
    if !root() {
        return;
    }
    let rs = ruleset(
        vec![
            (vec![proto(IPPROTO_TCP), dport(22, 22)], Action::Accept),
            (vec![src("10.0.0.0/8")], Action::Drop),
        ],
        Verdict::Accept,
    );
    let art = build(&rs);
    let gen = Generation::load(&art).expect("load");
    let ssh = tcp(ip("10.1.2.3"), ip("192.168.1.5"), 40000, 22);
    let web = tcp(ip("10.1.2.3"), ip("192.168.1.5"), 40000, 80);
    let other = udp(ip("8.8.8.8"), ip("192.168.1.5"), 53, 53);
    let truncated = build_frame(
        MAC_A,
        MAC_B,
        ip("10.1.2.3"),
        ip("1.1.1.1"),
        IPPROTO_TCP,
        0,
        &[0, 80, 0, 22],
    );
    let mut arp = ssh.clone();
    arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    let mut bad = ssh.clone();
    bad[14] = 0x43;
    let v6 = build_frame_v6(
        MAC_A,
        MAC_B,
        "2001:db8::1".parse().expect("v6"),
        "2001:db8::2".parse().expect("v6"),
        IPPROTO_TCP,
        &l4_header(IPPROTO_TCP, 40000, 22, b""),
    );

    let tr = gen.test_run(&ssh, 3).expect("run");
    assert_eq!(
        (tr.xdp_action, tr.decision.rule, tr.decision.reason),
        (XDP_PASS, 0, abi::REASON_RULE)
    );
    for f in [&web, &web, &other, &truncated, &arp, &bad, &v6] {
        gen.test_run(f, 1).expect("run");
    }
    let seq_before = gen.test_run(&other, 1).expect("run").decision.seq;
    let seq_after = gen.test_run(&other, 5).expect("run").decision.seq;
    assert_eq!(
        seq_after,
        seq_before + 5,
        "every repetition records a decision"
    );

    let positions = gen.rule_counters().expect("rule counters");
    let ip_len = |f: &[u8]| u16::from_be_bytes([f[16], f[17]]) as u64;
    // Two rules, then the policy positions of INPUT, FORWARD, OUTPUT.
    assert_eq!(positions.len(), 5);
    let by_origin = art.origin_counters(&positions);
    let rules = by_origin.rules;
    assert_eq!(rules.len(), 2);
    assert_eq!((rules[0].packets, rules[0].bytes), (3, 3 * ip_len(&ssh)));
    assert_eq!((rules[1].packets, rules[1].bytes), (2, 2 * ip_len(&web)));
    assert_eq!(
        (by_origin.policies[0].packets, by_origin.policies[0].bytes),
        (7, 7 * ip_len(&other)),
        "INPUT's policy position counts what the policy decided"
    );
    let reasons = gen.reason_counters().expect("reason counters");
    assert_eq!(reasons.len(), abi::REASON_SLOTS as usize);
    assert_eq!(
        reasons[abi::REASON_POLICY as usize].packets,
        1 + 1 + 5,
        "udp from 8.8.8.8 hits the policy"
    );
    assert_eq!(
        reasons[abi::REASON_POLICY as usize].bytes,
        7 * ip_len(&other)
    );
    assert_eq!(
        reasons[abi::REASON_HOTDROP as usize].packets,
        1,
        "truncated tcp reaching rule 1 is hotdropped"
    );
    assert_eq!(reasons[abi::REASON_NOT_IPV4 as usize].packets, 1);
    assert_eq!(
        reasons[abi::REASON_OTHER_FAMILY as usize].packets,
        1,
        "an IPv6 frame passes an IPv4 generation, counted"
    );
    assert_eq!(reasons[abi::REASON_MALFORMED as usize].packets, 1);
    for r in [abi::REASON_TAIL_CALL, abi::REASON_BOUND, abi::REASON_MAP] {
        assert_eq!(
            reasons[r as usize].packets, 0,
            "fail-closed slot {r} stays zero"
        );
    }
}

/// 802.1Q / 802.1ad tagged frames are classified by their inner IPv4 header (up to
/// `abi::MAX_VLAN_TAGS` tags), counted by the rule with the IPv4 total length; one more tag is dropped
/// and counted in `REASON_BOUND`; a frame cut inside a tag is malformed.
#[test]
fn testrun_vlan_tagged_frames_use_the_inner_header() {
    if !root() {
        return;
    }
    let rs = ruleset(
        vec![(vec![proto(IPPROTO_TCP), dport(22, 22)], Action::Drop)],
        Verdict::Accept,
    );
    let art = build(&rs);
    let gen = Generation::load(&art).expect("load");
    let ssh = tcp(ip("10.1.2.3"), ip("192.168.1.5"), 40000, 22);
    let tag = |f: &[u8], tags: &[u16]| {
        let mut t = f.to_vec();
        for (i, tpid) in tags.iter().enumerate() {
            let at = 12 + 4 * i;
            t.splice(at..at, [tpid.to_be_bytes(), [0x20, i as u8 + 1]].concat());
        }
        t
    };
    let (q, ad) = (packet::ETHERTYPE_VLAN, packet::ETHERTYPE_QINQ);
    for tags in [&[q][..], &[ad], &[ad, q], &[q, q]] {
        let f = tag(&ssh, tags);
        let tr = gen.test_run(&f, 1).expect("run");
        assert_eq!(
            (tr.xdp_action, tr.decision.rule, tr.decision.reason),
            (XDP_DROP, 0, abi::REASON_RULE),
            "tags {tags:x?}"
        );
        assert_eq!(
            observed(&art, &tr),
            interp::run(&rs, Hook::Input, &packet::decode(&f))
        );
    }
    let three = tag(&ssh, &[ad, q, q]);
    let tr = gen.test_run(&three, 1).expect("run");
    assert_eq!(
        (tr.xdp_action, tr.decision.reason),
        (XDP_DROP, abi::REASON_BOUND)
    );
    assert_eq!(
        observed(&art, &tr),
        interp::run(&rs, Hook::Input, &packet::decode(&three))
    );
    let cut = &tag(&ssh, &[q])[..16];
    let tr = gen.test_run(cut, 1).expect("run");
    assert_eq!(
        (tr.xdp_action, tr.decision.reason),
        (XDP_DROP, abi::REASON_MALFORMED)
    );
    let rules = gen.rule_counters().expect("rule counters");
    let ip_len = u16::from_be_bytes([ssh[16], ssh[17]]) as u64;
    assert_eq!((rules[0].packets, rules[0].bytes), (4, 4 * ip_len));
    let reasons = gen.reason_counters().expect("reason counters");
    assert_eq!(reasons[abi::REASON_BOUND as usize].packets, 1);
    assert_eq!(
        reasons[abi::REASON_BOUND as usize].bytes,
        three.len() as u64
    );
    assert_eq!(reasons[abi::REASON_MALFORMED as usize].packets, 1);
}

#[test]
fn testrun_self_test_passes_and_leaves_counters_zero() {
    if !root() {
        return;
    }
    let rs = ruleset(
        vec![
            (vec![proto(IPPROTO_TCP), dport(80, 80)], Action::Drop),
            (vec![proto(IPPROTO_UDP)], Action::Accept),
        ],
        Verdict::Drop,
    );
    let art = build(&rs);
    let mut gen = Generation::load(&art).expect("load");
    gen.self_test(&art).expect("self-test agrees with sim");
    assert!(gen
        .rule_counters()
        .expect("counters")
        .iter()
        .all(|c| c.packets == 0 && c.bytes == 0));
    assert!(gen
        .reason_counters()
        .expect("counters")
        .iter()
        .all(|c| c.packets == 0 && c.bytes == 0));
    let tr = gen
        .test_run(&tcp(ip("10.0.0.1"), ip("10.0.0.2"), 1, 80), 1)
        .expect("run");
    assert_eq!((tr.xdp_action, tr.decision.rule), (XDP_DROP, 0));
    assert_eq!(gen.rule_counters().expect("counters")[0].packets, 1);
}

/// BPF_MAP_DELETE_ELEM on a map of a loaded generation (fault injection).
fn delete_elem(map: std::os::fd::BorrowedFd<'_>, key: &[u8]) {
    use std::os::fd::AsRawFd;
    #[repr(C)]
    struct Attr {
        map_fd: u32,
        _pad: u32,
        key: u64,
        value: u64,
        flags: u64,
    }
    let mut attr = Attr {
        map_fd: map.as_raw_fd() as u32,
        _pad: 0,
        key: key.as_ptr() as u64,
        value: 0,
        flags: 0,
    };
    const BPF_MAP_DELETE_ELEM: libc::c_long = 3;
    // SAFETY: a fully initialised bpf_attr whose key pointer outlives the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_MAP_DELETE_ELEM,
            &mut attr as *mut Attr,
            std::mem::size_of::<Attr>() as u32,
        )
    };
    assert_eq!(
        r,
        0,
        "BPF_MAP_DELETE_ELEM: {}",
        std::io::Error::last_os_error()
    );
}

#[test]
fn testrun_fails_closed_on_missing_tail_call_and_lookup() {
    if !root() {
        return;
    }
    let rs = ruleset(
        vec![(vec![src("10.0.0.0/8"), proto(IPPROTO_TCP)], Action::Accept)],
        Verdict::Accept,
    );
    let art = build(&rs);
    let frame = tcp(ip("10.1.2.3"), ip("10.0.0.2"), 1, 2);
    let other = tcp(ip("192.168.1.1"), ip("10.0.0.2"), 1, 2);

    // An empty prog-array slot: the tail call fails, the packet is dropped and counted.
    let gen = Generation::load(&art).expect("load");
    assert_eq!(gen.test_run(&frame, 1).expect("run").xdp_action, XDP_PASS);
    let last = art.globals.nstages;
    delete_elem(
        gen.map_fd(abi::MAP_PROGS).expect("tw_progs"),
        &last.to_le_bytes(),
    );
    let tr = gen.test_run(&frame, 1).expect("run");
    assert_eq!(
        (tr.xdp_action, tr.decision.reason),
        (XDP_DROP, abi::REASON_TAIL_CALL)
    );
    assert_eq!(
        gen.reason_counters().expect("counters")[abi::REASON_TAIL_CALL as usize].packets,
        1
    );

    // A missing lookup entry (no class for the source address): dropped, counted.
    let gen = Generation::load(&art).expect("load");
    let trie = art.map(abi::SRC_IP.table_map).expect("src_ip table");
    for (key, _) in &trie.entries {
        delete_elem(gen.map_fd(abi::SRC_IP.table_map).expect("trie"), key);
    }
    for f in [&frame, &other] {
        let tr = gen.test_run(f, 1).expect("run");
        assert_eq!(
            (tr.xdp_action, tr.decision.reason),
            (XDP_DROP, abi::REASON_MAP)
        );
    }
    assert_eq!(
        gen.reason_counters().expect("counters")[abi::REASON_MAP as usize].packets,
        2
    );
}

#[test]
fn testrun_rejects_frames_shorter_than_ethernet() {
    if !root() {
        return;
    }
    let art = build(&ruleset(vec![], Verdict::Accept));
    let gen = Generation::load(&art).expect("load");
    assert!(matches!(
        gen.test_run(&[0; 10], 1),
        Err(tailwall_loader::LoadError::FrameTooShort(10))
    ));
}

#[test]
fn testrun_measures_time_per_packet() {
    if !root() {
        return;
    }
    for n in [10usize, 1000, 10_000] {
        let mut rng = Rng(0x9000 + n as u64);
        let rs = random_ruleset(&mut rng, n);
        let art = build(&rs);
        let gen = Generation::load(&art).expect("load");
        let frame = tcp(ip("10.1.2.3"), ip("192.168.1.5"), 40000, 1500);
        let tr = gen.test_run(&frame, 100_000).expect("run");
        let pass = gen.test_run_pass(&frame, 100_000).expect("run");
        eprintln!(
            "{n} rules ({} stages, {} chunks): {} ns/packet (decided by {:?}), empty program {} ns/packet",
            art.stages.len(),
            art.globals.nchunks,
            tr.duration_ns,
            observed(&art, &tr).decided,
            pass.duration_ns
        );
        assert!(tr.duration_ns > 0);
    }
}

// ---------------------------------------------------------------------------------------------------
// Attach, swap, detach on a veth pair.

use std::time::{Duration, Instant};
use tailwall_loader::{IfaceError, LoadError, Mode, Stats};
use tailwall_tests::netns::VethPair;

/// Removes the pins and state of the host namespace when dropped, even when a test fails half-way.
struct PinCleanup(Vec<std::path::PathBuf>);
impl Drop for PinCleanup {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

fn host_cleanup(pair: &VethPair) -> PinCleanup {
    let key = pair
        .host
        .run(tailwall_loader::iface::netns_key)
        .expect("setns")
        .expect("netns key");
    PinCleanup(vec![
        std::path::PathBuf::from(format!("/sys/fs/bpf/tailwall/{key}")),
        std::path::PathBuf::from(format!("/run/tailwall/{key}")),
    ])
}

fn stats_of(pair: &VethPair) -> Result<Stats, IfaceError> {
    let iface = pair.host_if.clone();
    pair.host
        .run(move || tailwall_loader::stats(&iface))
        .expect("setns")
}

/// Poll the host's counters until `done` holds (XDP on veth runs in NAPI, after `send` returns).
fn wait_stats(pair: &VethPair, what: &str, done: impl Fn(&Stats) -> bool) -> Stats {
    let start = Instant::now();
    loop {
        let s = stats_of(pair).expect("stats");
        if done(&s) {
            return s;
        }
        if start.elapsed() > Duration::from_secs(5) {
            panic!("{what}: counters never got there: {s:#?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn rule_packets(s: &Stats, position: u32) -> (u64, u64) {
    let r = s
        .rules
        .iter()
        .find(|r| r.rule.position == position)
        .expect("rule in stats");
    (r.packets, r.bytes)
}

fn reason_packets(s: &Stats, slot: u32) -> u64 {
    s.reasons[slot as usize].packets
}

/// A UDP socket bound to the host's address inside the host namespace, and the frame that reaches it.
struct Probe {
    sock: std::net::UdpSocket,
    frame: Vec<u8>,
}

const PROBE_PORT: u16 = 7777;

impl Probe {
    fn new(pair: &VethPair) -> Probe {
        let host = pair.host_ip;
        let sock = pair
            .host
            .run(move || std::net::UdpSocket::bind((host, PROBE_PORT)))
            .expect("setns")
            .expect("bind probe socket");
        sock.set_read_timeout(Some(Duration::from_secs(1)))
            .expect("timeout");
        let frame = build_frame(
            pair.host_mac,
            pair.peer_mac,
            pair.peer_ip,
            host,
            IPPROTO_UDP,
            0,
            &l4_header(IPPROTO_UDP, 40000, PROBE_PORT, b"probe"),
        );
        Probe { sock, frame }
    }

    /// Send the probe from the peer; did the host's stack deliver it (i.e. did XDP pass it)?
    fn delivered(&self, sender: &tailwall_tests::netns::FrameSender) -> bool {
        sender.send(&self.frame).expect("send probe");
        let mut buf = [0u8; 64];
        let got = matches!(self.sock.recv(&mut buf), Ok(5));
        // Drain anything late so the next probe starts clean.
        self.sock.set_nonblocking(true).expect("nonblocking");
        while self.sock.recv(&mut buf).is_ok() {}
        self.sock.set_nonblocking(false).expect("blocking");
        got
    }
}

fn attach_in(
    pair: &VethPair,
    art: &Artifact,
    mode: Mode,
) -> Result<tailwall_loader::AttachOutcome, IfaceError> {
    let iface = pair.host_if.clone();
    let art = art.clone();
    pair.host
        .run(move || tailwall_loader::attach(&iface, &art, mode, false))
        .expect("setns")
}

fn attach_counts_swaps_and_detaches(mode: Mode) {
    let pair = VethPair::new().expect("veth pair");
    let _cleanup = host_cleanup(&pair);
    pair.wait_carrier(Duration::from_secs(5)).expect("carrier");
    let (peer, host) = (pair.peer_ip, pair.host_ip);
    let frame_tcp22 = build_frame(
        pair.host_mac,
        pair.peer_mac,
        peer,
        host,
        IPPROTO_TCP,
        0,
        &l4_header(IPPROTO_TCP, 40000, 22, b"x"),
    );
    let frame_udp = build_frame(
        pair.host_mac,
        pair.peer_mac,
        peer,
        host,
        IPPROTO_UDP,
        0,
        &l4_header(IPPROTO_UDP, 5353, 9, b"y"),
    );
    let frame_gre = build_frame(pair.host_mac, pair.peer_mac, peer, host, 47, 0, &[0; 12]);
    let len = |f: &[u8]| (f.len() - 14) as u64;

    // Generation 1: ssh accepted, udp to port 9 from the peer's subnet dropped, the rest (the probe to
    // port 7777) accepted by the policy.
    let rs1 = ruleset(
        vec![
            (vec![proto(IPPROTO_TCP), dport(22, 22)], Action::Accept),
            (
                vec![src("192.0.2.0/24"), proto(IPPROTO_UDP), dport(9, 9)],
                Action::Drop,
            ),
        ],
        Verdict::Accept,
    );
    let art1 = build(&rs1);
    let first = attach_in(&pair, &art1, mode).expect("first attach");
    assert!(!first.swapped && !first.unchanged);
    assert_eq!(first.generation, 1);

    let sender = pair.sender().expect("sender");
    let probe = Probe::new(&pair);
    for _ in 0..5 {
        sender.send(&frame_tcp22).expect("send");
    }
    for _ in 0..3 {
        sender.send(&frame_udp).expect("send");
    }
    for _ in 0..2 {
        sender.send(&frame_gre).expect("send");
    }
    let s = wait_stats(&pair, "generation 1", |s| {
        rule_packets(s, 1).0 >= 5
            && rule_packets(s, 2).0 >= 3
            && reason_packets(s, abi::REASON_POLICY) >= 2
    });
    assert_eq!(rule_packets(&s, 1), (5, 5 * len(&frame_tcp22)));
    assert_eq!(rule_packets(&s, 2), (3, 3 * len(&frame_udp)));
    assert_eq!(
        reason_packets(&s, abi::REASON_POLICY),
        2,
        "only the gre frames reach the policy"
    );
    assert!(
        probe.delivered(&sender),
        "the probe hits the ACCEPT policy and reaches the socket"
    );
    let s = wait_stats(&pair, "probe", |s| {
        reason_packets(s, abi::REASON_POLICY) >= 3
    });
    assert_eq!(reason_packets(&s, abi::REASON_POLICY), 3);

    // The same ruleset again: nothing changes.
    let again = attach_in(&pair, &art1, mode).expect("re-apply");
    assert!(again.unchanged);
    assert_eq!((again.generation, again.link_id), (1, first.link_id));

    // A failed swap (an artifact the loader refuses) leaves generation 1 in place.
    let mut broken = art1.clone();
    broken.abi_version = 999;
    broken.digest = "broken".into();
    assert!(matches!(
        attach_in(&pair, &broken, mode),
        Err(IfaceError::Load(LoadError::AbiVersion { found: 999, .. }))
    ));
    assert_eq!(stats_of(&pair).expect("stats").generation, 1);
    let other = if mode == Mode::Native {
        Mode::Generic
    } else {
        Mode::Native
    };
    let art_other = build(&ruleset(vec![], Verdict::Drop));
    assert!(matches!(
        attach_in(&pair, &art_other, other),
        Err(IfaceError::ModeChange { .. })
    ));
    assert_eq!(stats_of(&pair).expect("stats").generation, 1);

    // Generation 2 under the same link: the probe and ssh now dropped, the port-9 rule kept (its
    // counter follows it by identity).
    let rs2 = ruleset(
        vec![
            (
                vec![
                    proto(IPPROTO_UDP),
                    dport(PROBE_PORT as u32, PROBE_PORT as u32),
                ],
                Action::Drop,
            ),
            (
                vec![src("192.0.2.0/24"), proto(IPPROTO_UDP), dport(9, 9)],
                Action::Drop,
            ),
            (vec![proto(IPPROTO_TCP), dport(22, 22)], Action::Drop),
        ],
        Verdict::Accept,
    );
    let art2 = build(&rs2);
    let second = attach_in(&pair, &art2, mode).expect("swap");
    assert!(second.swapped && !second.unchanged);
    assert_eq!(second.generation, 2);
    assert_eq!(
        second.link_id, first.link_id,
        "the swap updates the existing link"
    );
    let key = pair
        .host
        .run(tailwall_loader::iface::netns_key)
        .expect("setns")
        .expect("key");
    let dir = format!("/sys/fs/bpf/tailwall/{key}/{}", pair.host_if);
    let mut gens: Vec<String> = std::fs::read_dir(&dir)
        .expect("pin dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("gen-"))
        .collect();
    gens.sort();
    assert_eq!(
        gens,
        vec!["gen-1".to_string(), "gen-2".to_string()],
        "generation 1 stays pinned for rollback (keep 2)"
    );

    let s = stats_of(&pair).expect("stats");
    assert_eq!(
        rule_packets(&s, 2),
        (3, 3 * len(&frame_udp)),
        "the kept rule's counter carried over"
    );
    assert_eq!(rule_packets(&s, 3), (0, 0));
    assert_eq!(
        reason_packets(&s, abi::REASON_POLICY),
        3,
        "reason counters carried over"
    );
    assert!(
        !probe.delivered(&sender),
        "the probe is dropped by generation 2"
    );
    for _ in 0..4 {
        sender.send(&frame_tcp22).expect("send");
    }
    let s = wait_stats(&pair, "generation 2", |s| {
        rule_packets(s, 3).0 >= 4 && rule_packets(s, 1).0 >= 1
    });
    assert_eq!(rule_packets(&s, 3), (4, 4 * len(&frame_tcp22)));
    assert_eq!(
        rule_packets(&s, 1),
        (1, len(&probe.frame)),
        "the dropped probe was counted by rule 1"
    );

    // Detach: the link and every pin go, traffic flows unfiltered again.
    let iface = pair.host_if.clone();
    pair.host
        .run(move || tailwall_loader::detach(&iface))
        .expect("setns")
        .expect("detach");
    assert!(!std::path::Path::new(&dir).exists(), "pins removed");
    assert!(matches!(
        stats_of(&pair),
        Err(IfaceError::NotAttached { .. })
    ));
    assert!(probe.delivered(&sender), "no filter after detach");
    let iface = pair.host_if.clone();
    assert!(matches!(
        pair.host
            .run(move || tailwall_loader::detach(&iface))
            .expect("setns"),
        Err(IfaceError::NotAttached { .. })
    ));
}

#[test]
fn attach_native_counts_swaps_and_detaches_on_veth() {
    if !root() {
        return;
    }
    attach_counts_swaps_and_detaches(Mode::Native);
}

#[test]
fn attach_generic_counts_swaps_and_detaches_on_veth() {
    if !root() {
        return;
    }
    attach_counts_swaps_and_detaches(Mode::Generic);
}

#[test]
fn attach_reports_busy_while_locked() {
    if !root() {
        return;
    }
    let pair = VethPair::new().expect("veth pair");
    let _cleanup = host_cleanup(&pair);
    let art = build(&ruleset(vec![], Verdict::Accept));
    let iface = pair.host_if.clone();
    let result = pair
        .host
        .run(move || {
            let key = tailwall_loader::iface::netns_key().expect("key");
            let dir = format!("/run/tailwall/{key}");
            std::fs::create_dir_all(&dir).expect("state dir");
            let f = std::fs::File::create(format!("{dir}/{iface}.lock")).expect("lock file");
            use std::os::fd::AsRawFd;
            // SAFETY: flock on an fd owned by `f`.
            assert_eq!(unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) }, 0);
            let busy = tailwall_loader::attach(&iface, &art, Mode::Generic, false);
            drop(f);
            let after = tailwall_loader::attach(&iface, &art, Mode::Generic, false);
            let detached = tailwall_loader::detach(&iface);
            (busy, after, detached)
        })
        .expect("setns");
    assert!(
        matches!(result.0, Err(IfaceError::Busy { .. })),
        "{:?}",
        result.0
    );
    assert!(result.1.is_ok(), "{:?}", result.1);
    assert!(result.2.is_ok(), "{:?}", result.2);
}

#[test]
fn attach_rejects_unknown_interface() {
    if !root() {
        return;
    }
    let art = build(&ruleset(vec![], Verdict::Accept));
    let ns = tailwall_tests::netns::Netns::new().expect("netns");
    let r = ns
        .run(move || tailwall_loader::attach("twt-nope0", &art, Mode::Generic, false))
        .expect("setns");
    assert!(
        matches!(r, Err(IfaceError::UnknownInterface { .. })),
        "{r:?}"
    );
}

#[test]
fn testrun_live_frames_reach_the_stack() {
    if !root() {
        return;
    }
    let pair = VethPair::new().expect("veth pair");
    let probe = Probe::new(&pair);
    let (frame, ifindex) = (probe.frame.clone(), pair.host_ifindex);
    let accept = build(&ruleset(vec![], Verdict::Accept));
    let drop_probe = build(&ruleset(
        vec![(
            vec![
                proto(IPPROTO_UDP),
                dport(PROBE_PORT as u32, PROBE_PORT as u32),
            ],
            Action::Drop,
        )],
        Verdict::Accept,
    ));
    let recv_n = |n: usize| {
        let mut buf = [0u8; 64];
        (0..n)
            .filter(|_| matches!(probe.sock.recv(&mut buf), Ok(5)))
            .count()
    };
    let run = |art: Artifact, pass: bool| {
        let frame = frame.clone();
        pair.host
            .run(move || {
                let gen = Generation::load(&art).expect("load");
                let fd = if pass { gen.pass_fd() } else { gen.entry_fd() }.expect("fd");
                let ns =
                    tailwall_loader::test_run_live(fd, &frame, 3, ifindex).expect("live test-run");
                (ns, gen.rule_counters().expect("counters"))
            })
            .expect("setns")
    };
    let (_, _) = run(accept.clone(), true);
    assert_eq!(recv_n(3), 3, "tw_pass hands all 3 live frames to the stack");
    let (_, counters) = run(accept, false);
    // No rule: the policy positions of INPUT, FORWARD and OUTPUT; INPUT's decided.
    assert_eq!(counters.len(), 3);
    assert_eq!(
        counters[0].packets, 3,
        "INPUT's policy position counts the frames"
    );
    assert_eq!(recv_n(3), 3, "the classifier accepts by policy");
    let (_, counters) = run(drop_probe, false);
    assert_eq!(counters[0].packets, 3, "each live frame ran the classifier");
    assert_eq!(recv_n(1), 0, "dropped frames never reach the socket");
}

// ---------------------------------------------------------------------------------------------------
// The hook decision: bpf_fib_lookup at XDP ingress.

/// Offset of the IPv4 TTL byte in an untagged frame.
const ETH_TTL: usize = 14 + 8;

/// A routing namespace `twh-…`: `lan0` (veth, 10.77.0.1/24, the ingress), `wan0` (veth, 10.78.0.1/24,
/// route 203.0.113.0/24), blackhole 198.51.100.0/24, forwarding on. Returns it with the ifindexes of
/// `lan0` and `wan0`.
fn fib_netns() -> (tailwall_tests::netns::Netns, u32, u32) {
    let ns = tailwall_tests::netns::Netns::with_prefix("twh-").expect("netns");
    for cmd in [
        "link add lan0 type veth peer name lan1",
        "link add wan0 type veth peer name wan1",
        "addr add 10.77.0.1/24 dev lan0",
        "addr add 10.78.0.1/24 dev wan0",
        "link set lan0 up",
        "link set lan1 up",
        "link set wan0 up",
        "link set wan1 up",
        "route add 203.0.113.0/24 dev wan0",
        "route add blackhole 198.51.100.0/24",
    ] {
        ns.exec("ip", cmd.split_whitespace()).expect(cmd);
    }
    ns.sysctl("net.ipv4.conf.all.forwarding", "1").unwrap();
    ns.sysctl("net.ipv4.conf.lan0.forwarding", "1").unwrap();
    let (lan, wan) = (ns.ifindex("lan0").unwrap(), ns.ifindex("wan0").unwrap());
    (ns, lan, wan)
}

/// `tw_entry` asks the FIB of the namespace the frame arrives in ([`fib_netns`]): a local destination
/// (and broadcast, multicast) is INPUT, a routed one FORWARD with the route's device as the egress
/// interface; no route, a blackhole, and forwarding switched off are INPUT (the kernel drops the
/// non-local ones in routing before any filter hook).
#[test]
fn fib_decides_input_or_forward_like_the_kernel_routes() {
    if !root() {
        return;
    }
    let (ns, lan, wan) = fib_netns();
    let rs = ruleset(vec![], Verdict::Accept);
    let art = build(&rs);
    let from = ip("10.77.0.9");
    let hook_of = |dst: &str| {
        let f = tcp(from, ip(dst), 40000, 80);
        ns.run(|| {
            let gen = Generation::load(&art).expect("load");
            let tr = gen.test_run_fib(&f, lan, 1).expect("run");
            assert_eq!(tr.xdp_action, XDP_PASS, "{dst}");
            (tr.pkt.hook, tr.pkt.in_ifindex, tr.pkt.out_ifindex)
        })
        .expect("in netns")
    };
    let (i, f) = (abi::HOOK_INPUT, abi::HOOK_FORWARD);
    assert_eq!(
        hook_of("10.77.0.1"),
        (i, lan, 0),
        "local address, ingress device"
    );
    assert_eq!(
        hook_of("10.78.0.1"),
        (i, lan, 0),
        "local address of another device"
    );
    assert_eq!(hook_of("10.77.0.255"), (i, lan, 0), "subnet broadcast");
    assert_eq!(hook_of("255.255.255.255"), (i, lan, 0), "limited broadcast");
    assert_eq!(hook_of("224.0.0.1"), (i, lan, 0), "multicast");
    assert_eq!(hook_of("203.0.113.7"), (f, lan, wan), "routed out of wan0");
    assert_eq!(
        hook_of("10.78.0.20"),
        (f, lan, wan),
        "connected subnet of wan0"
    );
    assert_eq!(
        hook_of("10.77.0.20"),
        (f, lan, lan),
        "hairpin: back out of lan0"
    );
    assert_eq!(
        hook_of("198.51.100.1"),
        (i, lan, 0),
        "blackhole: dropped by routing"
    );
    assert_eq!(
        hook_of("192.0.2.1"),
        (i, lan, 0),
        "no route: dropped by routing"
    );
    ns.sysctl("net.ipv4.conf.lan0.forwarding", "0").unwrap();
    assert_eq!(
        hook_of("203.0.113.7"),
        (i, lan, 0),
        "forwarding off on lan0"
    );
    assert_eq!(hook_of("10.77.0.1"), (i, lan, 0), "forwarding off, local");

    // FORWARD sees the TTL after the router's decrement (`Ipv4Packet::at_hook`), INPUT the header's.
    ns.sysctl("net.ipv4.conf.lan0.forwarding", "1").unwrap();
    for (dst, want) in [("203.0.113.7", (f, 63)), ("10.77.0.1", (i, 64))] {
        let fr = tcp(from, ip(dst), 40000, 80);
        assert_eq!(fr[ETH_TTL], 64);
        let got = ns
            .run(|| {
                let gen = Generation::load(&art).expect("load");
                let tr = gen.test_run_fib(&fr, lan, 1).expect("run");
                (tr.pkt.hook, tr.pkt.ttl)
            })
            .expect("in netns");
        assert_eq!(got, want, "{dst}");
        let packet::Decoded::Ipv4(p) = packet::decode(&fr) else {
            panic!()
        };
        let at = if want.0 == f {
            Hook::Forward
        } else {
            Hook::Input
        };
        assert_eq!(p.at_hook(at).ttl as u32, want.1, "interp's view, {dst}");
    }

    // The lookup's cost: tw_entry (FIB) against tw_entry_in (hook fixed), same frame, same ingress,
    // no field stage (the empty ruleset). Printed, not asserted (a shared machine's timing).
    ns.sysctl("net.ipv4.conf.lan0.forwarding", "1").unwrap();
    for dst in ["10.77.0.1", "203.0.113.7"] {
        let f = tcp(from, ip(dst), 40000, 80);
        let (fib, fixed) = ns
            .run(|| {
                let gen = Generation::load(&art).expect("load");
                let n = 200_000;
                let fib = gen.test_run_fib(&f, lan, n).expect("run").duration_ns;
                let fixed = gen.test_run_fixed_on(&f, lan, n).expect("run").duration_ns;
                (fib, fixed)
            })
            .expect("in netns");
        eprintln!(
            "fib lookup cost, dst {dst}: tw_entry {fib} ns/packet, tw_entry_in {fixed} ns/packet"
        );
    }
}

/// `tw_entry` asks the FIB with `AF_INET6` for an IPv6 packet (`hook::decide6`): local addresses,
/// multicast, blackhole and unrouted destinations are INPUT, routed ones FORWARD with the route's
/// device, and with `net.ipv6.conf.all.forwarding` off everything is INPUT; FORWARD sees the hop
/// limit minus one, as `IpPacket::at_hook` does.
#[test]
fn fib6_decides_input_or_forward_like_the_kernel_routes() {
    if !root() {
        return;
    }
    let ns = tailwall_tests::netns::Netns::with_prefix("twh6-").expect("netns");
    for cmd in [
        "link add lan0 type veth peer name lan1",
        "link add wan0 type veth peer name wan1",
        "-6 addr add 2001:db8:77::1/64 dev lan0 nodad",
        "-6 addr add 2001:db8:78::1/64 dev wan0 nodad",
        "link set lan0 up",
        "link set lan1 up",
        "link set wan0 up",
        "link set wan1 up",
        "-6 route add 2001:db8:113::/48 dev wan0",
        "-6 route add blackhole 2001:db8:100::/48",
    ] {
        ns.exec("ip", cmd.split_whitespace()).expect(cmd);
    }
    ns.sysctl("net.ipv6.conf.all.forwarding", "1").unwrap();
    let (lan, wan) = (ns.ifindex("lan0").unwrap(), ns.ifindex("wan0").unwrap());
    let mut rs = ruleset(vec![], Verdict::Accept);
    rs.family = tailwall_compiler::ir::Family::V6;
    let art = build(&rs);
    let from: std::net::Ipv6Addr = "2001:db8:77::9".parse().unwrap();
    let frame = |dst: &str| {
        packet::build_frame_v6(
            [2, 0, 0, 0, 0, 1],
            [2, 0, 0, 0, 0, 2],
            from,
            dst.parse().unwrap(),
            packet::IPPROTO_TCP,
            &packet::l4_header(packet::IPPROTO_TCP, 40000, 80, b""),
        )
    };
    let run = |dst: &str| {
        let f = frame(dst);
        ns.run(|| {
            let gen = Generation::load(&art).expect("load");
            let tr = gen.test_run_fib(&f, lan, 1).expect("run");
            assert_eq!(tr.xdp_action, XDP_PASS, "{dst}");
            (
                tr.pkt.hook,
                tr.pkt.in_ifindex,
                tr.pkt.out_ifindex,
                tr.pkt.ttl,
            )
        })
        .expect("in netns")
    };
    let hook_of = |dst: &str| {
        let (h, i, o, _) = run(dst);
        (h, i, o)
    };
    let (i, f) = (abi::HOOK_INPUT, abi::HOOK_FORWARD);
    assert_eq!(hook_of("2001:db8:77::1"), (i, lan, 0), "local address");
    assert_eq!(
        hook_of("2001:db8:78::1"),
        (i, lan, 0),
        "local address of another device"
    );
    assert_eq!(hook_of("ff02::1"), (i, lan, 0), "multicast");
    assert_eq!(
        hook_of("2001:db8:113::7"),
        (f, lan, wan),
        "routed out of wan0"
    );
    assert_eq!(
        hook_of("2001:db8:78::20"),
        (f, lan, wan),
        "connected subnet of wan0"
    );
    assert_eq!(
        hook_of("2001:db8:100::1"),
        (i, lan, 0),
        "blackhole: dropped by routing"
    );
    assert_eq!(
        hook_of("2001:db8:999::1"),
        (i, lan, 0),
        "no route: dropped by routing"
    );
    assert_eq!(run("2001:db8:113::7").3, 63, "FORWARD: hop limit - 1");
    assert_eq!(run("2001:db8:77::1").3, 64, "INPUT: the header's hop limit");
    ns.sysctl("net.ipv6.conf.all.forwarding", "0").unwrap();
    assert_eq!(hook_of("2001:db8:113::7"), (i, lan, 0), "forwarding off");
}

// ---------------------------------------------------------------------------------------------------
// Interfaces (`-i`/`-o`): the ifindex → class tables (docs/decisions/0010).

/// `-i` with exact names, `+` prefixes and `!`, in INPUT and a user chain: frames test-run as if
/// received on each device of a namespace (`lo`, two veth pairs) get the verdict and deciding rule
/// `interp` gives on the device's name, and `sim` with the generation's device list agrees; a
/// device created after the generation was built misses the table and is dropped, counted in
/// `REASON_NO_IFACE`, until a new generation is built, which classifies it by its name.
#[test]
fn testrun_classifies_interfaces_by_name_through_the_ifindex_table() {
    use tailwall_compiler::{interp::Meta, sim::Sim};
    if !root() {
        return;
    }
    let ns = tailwall_tests::netns::Netns::with_prefix("twi").expect("netns");
    for cmd in [
        "link add eth7 type veth peer name wan3",
        "link add docker0 type veth peer name vethab12",
        "link set eth7 up",
        "link set wan3 up",
        "link set docker0 up",
        "link set vethab12 up",
    ] {
        ns.exec("ip", cmd.split_whitespace()).expect(cmd);
    }
    let text =
        "*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:web - [0:0]\n\
        -A INPUT -i lo -j ACCEPT\n\
        -A INPUT -i eth+ -p tcp -m tcp --dport 22 -j ACCEPT\n\
        -A INPUT ! -i wan3 -p udp -j web\n\
        -A web -i docker0 -j DROP\n\
        -A web -o eth7 -j DROP\n\
        -A web -j ACCEPT\n\
        COMMIT\n";
    let src = tailwall_compiler::diag::SourceFile::new("ifaces.rules", text.to_string());
    let rs = tailwall_compiler::frontend::load(&src)
        .unwrap_or_else(|d| panic!("{d:?}"))
        .ruleset;
    let art = artifact::build(&rs, Hook::Input).expect("interfaces compile");
    assert!(art.stages.contains(&Field::InIface) && art.stages.contains(&Field::OutIface));
    let (a, b) = (ip("192.0.2.1"), ip("192.0.2.2"));
    let frames = [
        tcp(a, b, 40000, 22),
        tcp(a, b, 40000, 80),
        udp(a, b, 5353, 53),
        icmp(a, b),
    ];
    let names = ["lo", "eth7", "wan3", "docker0", "vethab12"];
    let index: Vec<u32> = names.iter().map(|n| ns.ifindex(n).unwrap()).collect();
    let mut verdicts = Vec::new();
    let mut expected = Vec::new();
    ns.run(|| {
        let gen = Generation::load(&art).expect("load");
        let sim = Sim::new(&art).unwrap().with_devices(gen.devices().to_vec());
        for (name, &ifindex) in names.iter().zip(&index) {
            let meta = Meta {
                in_iface: Some(name.to_string()),
                out_iface: None,
            };
            for f in &frames {
                let tr = gen.test_run_fixed_on(f, ifindex, 1).expect("run");
                assert_eq!(tr.pkt.in_ifindex, ifindex);
                let got = observed(&art, &tr);
                let d = packet::decode(f);
                let want = interp::run_with(&rs, Hook::Input, &meta, &d);
                assert_eq!(got, want, "{name}: {}", describe(f));
                expected.push(((*name, describe(f)), got));
                assert_eq!(
                    sim.run_with(abi::REGION_INPUT_V4, &meta, &d),
                    want,
                    "sim {name}: {}",
                    describe(f)
                );
                verdicts.push(want.verdict);
            }
        }
        // A device created after the build: dropped and counted, never guessed.
        ns.exec(
            "ip",
            [
                "link", "add", "eth9", "type", "veth", "peer", "name", "eth10",
            ],
        )
        .expect("eth9");
        // SAFETY: a valid NUL-terminated name.
        let eth9 = unsafe { libc::if_nametoindex(c"eth9".as_ptr()) };
        assert!(eth9 > 0);
        let f = &frames[0];
        let tr = gen.test_run_fixed_on(f, eth9, 1).expect("run");
        let no_iface = Outcome {
            verdict: Verdict::Drop,
            decided: interp::Decided::FailClosed {
                reason: abi::REASON_NO_IFACE,
            },
        };
        assert_eq!(observed(&art, &tr), no_iface);
        let meta = Meta {
            in_iface: Some("eth9".into()),
            out_iface: None,
        };
        assert_eq!(
            sim.run_with(abi::REGION_INPUT_V4, &meta, &packet::decode(f)),
            no_iface
        );
        let reasons = gen.reason_counters().expect("reasons");
        assert_eq!(reasons[abi::REASON_NO_IFACE as usize].packets, 1);
        // The next generation knows it: `eth+`, port 22 accepted.
        let gen2 = Generation::load(&art).expect("reload");
        assert!(gen2.devices().iter().any(|(_, n)| n == "eth9"));
        let tr = gen2.test_run_fixed_on(f, eth9, 1).expect("run");
        assert_eq!(
            observed(&art, &tr),
            interp::run_with(&rs, Hook::Input, &meta, &packet::decode(f))
        );
        assert_eq!(tr.xdp_action, XDP_PASS);
    })
    .expect("in netns");
    // Not a constant answer: both verdicts occur.
    assert!(verdicts.contains(&Verdict::Accept) && verdicts.contains(&Verdict::Drop));
    // The rule each device's frames meet, written out (interp could share a mistake with the
    // tables): `-i lo` accepts everything; `-i eth+` takes eth7's ssh, not wan3's; `! -i wan3` sends
    // udp from every device but wan3 to `web`, where `-i docker0` drops and `-o eth7` never matches
    // at INPUT (no output device there), so vethab12's udp is accepted by `web`'s last rule.
    let rule = |chain: &str, index: usize| rule_of(&rs, chain, index);
    let policy = interp::Decided::Policy {
        chain: rs.chains[0].id,
    };
    let udp53 = describe(&frames[2]);
    let ssh = describe(&frames[0]);
    for ((name, frame), decided) in [
        (("lo", ssh.clone()), (Verdict::Accept, rule("INPUT", 1))),
        (("lo", udp53.clone()), (Verdict::Accept, rule("INPUT", 1))),
        (("eth7", ssh.clone()), (Verdict::Accept, rule("INPUT", 2))),
        (("wan3", ssh), (Verdict::Drop, policy)),
        (("wan3", udp53.clone()), (Verdict::Drop, policy)),
        (("docker0", udp53.clone()), (Verdict::Drop, rule("web", 1))),
        (
            ("vethab12", udp53.clone()),
            (Verdict::Accept, rule("web", 3)),
        ),
        (("eth7", udp53), (Verdict::Accept, rule("web", 3))),
    ] {
        let got = expected
            .iter()
            .find(|(k, _)| k.0 == name && k.1 == frame)
            .map(|(_, o)| *o)
            .unwrap_or_else(|| panic!("{name} {frame} not run"));
        assert_eq!(
            got,
            Outcome {
                verdict: decided.0,
                decided: decided.1
            },
            "{name}: {frame}"
        );
    }
}

/// `-i` in an ip6tables ruleset: the IPv6 path of `tw_entry` writes the receiving device too, so a
/// frame test-run on `eth4` meets `-i eth+` and one on `wan4` does not; `interp` and `sim` agree.
#[test]
fn testrun_classifies_interfaces_of_ipv6_frames() {
    use tailwall_compiler::{interp::Meta, sim::Sim};
    if !root() {
        return;
    }
    let ns = tailwall_tests::netns::Netns::with_prefix("tw6").expect("netns");
    ns.exec(
        "ip",
        [
            "link", "add", "eth4", "type", "veth", "peer", "name", "wan4",
        ],
    )
    .expect("veth");
    let text =
        "# Generated by ip6tables-save v1.8.9\n*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n\
        :OUTPUT ACCEPT [0:0]\n-A INPUT -i eth+ -p tcp -m tcp --dport 22 -j ACCEPT\n\
        -A INPUT ! -i eth4 -p udp -j ACCEPT\nCOMMIT\n";
    let src = tailwall_compiler::diag::SourceFile::new("ifaces6.rules", text.to_string());
    let rs = tailwall_compiler::frontend::load(&src)
        .unwrap_or_else(|d| panic!("{d:?}"))
        .ruleset;
    assert_eq!(rs.family, tailwall_compiler::ir::Family::V6);
    let art = artifact::build(&rs, Hook::Input).expect("interfaces compile");
    let (a6, b6): (std::net::Ipv6Addr, std::net::Ipv6Addr) = (
        "2001:db8::1".parse().unwrap(),
        "2001:db8::2".parse().unwrap(),
    );
    let ssh = build_frame_v6(
        MAC_A,
        MAC_B,
        a6,
        b6,
        IPPROTO_TCP,
        &l4_header(IPPROTO_TCP, 40000, 22, b""),
    );
    let dns = build_frame_v6(
        MAC_A,
        MAC_B,
        a6,
        b6,
        IPPROTO_UDP,
        &l4_header(IPPROTO_UDP, 5353, 53, b""),
    );
    let names = ["eth4", "wan4"];
    let index: Vec<u32> = names.iter().map(|n| ns.ifindex(n).unwrap()).collect();
    let verdicts = ns
        .run(|| {
            let gen = Generation::load(&art).expect("load");
            let sim = Sim::new(&art).unwrap().with_devices(gen.devices().to_vec());
            let mut out = Vec::new();
            for (name, &ifindex) in names.iter().zip(&index) {
                let meta = Meta {
                    in_iface: Some(name.to_string()),
                    out_iface: None,
                };
                for f in [&ssh, &dns] {
                    let tr = gen.test_run_fixed_on(f, ifindex, 1).expect("run");
                    assert_eq!(tr.pkt.in_ifindex, ifindex);
                    let got = observed(&art, &tr);
                    let d = packet::decode(f);
                    let want = interp::run_with(&rs, Hook::Input, &meta, &d);
                    assert_eq!(got, want, "{name}: {}", describe(f));
                    let region = tailwall_compiler::flatten::region_slot(Hook::Input, rs.family);
                    assert_eq!(sim.run_with(region, &meta, &d), want, "sim {name}");
                    out.push(got.verdict);
                }
            }
            out
        })
        .expect("in netns");
    // eth4: ssh by `-i eth+`, udp not (`! -i eth4`); wan4: ssh not, udp by `! -i eth4`.
    assert_eq!(
        verdicts,
        vec![
            Verdict::Accept,
            Verdict::Drop,
            Verdict::Drop,
            Verdict::Accept
        ]
    );
}

/// `-o` at OUTPUT: a test-run skb of the tc egress chain leaves by the namespace's `lo`, so
/// `-o lo` matches it and `-o eth+` does not, and the input interface is absent at OUTPUT (`-i`
/// in a user chain reached from OUTPUT never matches; `! -i` always does); `sim` with the
/// generation's devices and `interp` agree on every frame.
#[test]
fn testrun_egress_classifies_the_output_interface() {
    use tailwall_compiler::{interp::Meta, sim::Sim};
    if !root() {
        return;
    }
    let ns = tailwall_tests::netns::Netns::with_prefix("two").expect("netns");
    ns.exec(
        "ip",
        [
            "link", "add", "eth5", "type", "veth", "peer", "name", "eth6",
        ],
    )
    .expect("veth");
    let text =
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT DROP [0:0]\n:out - [0:0]\n\
        -A OUTPUT -o eth+ -j ACCEPT\n\
        -A OUTPUT -p udp -j out\n\
        -A OUTPUT -o lo -p tcp -m tcp --dport 22 -j ACCEPT\n\
        -A out -i lo -j DROP\n\
        -A out ! -i eth5 -o lo -j ACCEPT\n\
        COMMIT\n";
    let src = tailwall_compiler::diag::SourceFile::new("egress-ifaces.rules", text.to_string());
    let rs = tailwall_compiler::frontend::load(&src)
        .unwrap_or_else(|d| panic!("{d:?}"))
        .ruleset;
    let art = artifact::build(&rs, Hook::Input).expect("interfaces compile");
    let (a, b) = (ip("192.0.2.1"), ip("192.0.2.2"));
    let frames = [
        tcp(a, b, 40000, 22),
        tcp(a, b, 40000, 80),
        udp(a, b, 5353, 53),
    ];
    let lo = ns.ifindex("lo").expect("lo");
    let region =
        tailwall_compiler::flatten::region_slot(Hook::Output, tailwall_compiler::ir::Family::V4);
    let outcomes = ns
        .run(|| {
            let gen = Generation::load(&art).expect("load");
            let sim = Sim::new(&art).unwrap().with_devices(gen.devices().to_vec());
            let meta = Meta {
                in_iface: None,
                out_iface: Some("lo".into()),
            };
            frames
                .iter()
                .map(|f| {
                    let tr = gen.test_run_egress(f, 1).expect("run");
                    assert_eq!((tr.pkt.in_ifindex, tr.pkt.out_ifindex), (0, lo));
                    let got = observed(&art, &tr);
                    let d = packet::decode(f);
                    assert_eq!(
                        got,
                        interp::run_with(&rs, Hook::Output, &meta, &d),
                        "{}",
                        describe(f)
                    );
                    assert_eq!(got, sim.run_with(region, &meta, &d), "sim: {}", describe(f));
                    (got.verdict, got.decided)
                })
                .collect::<Vec<_>>()
        })
        .expect("in netns");
    let output = rs
        .chains
        .iter()
        .find(|c| c.hook == Some(Hook::Output))
        .unwrap();
    assert_eq!(
        outcomes,
        vec![
            (Verdict::Accept, rule_of(&rs, "OUTPUT", 3)),
            (Verdict::Drop, interp::Decided::Policy { chain: output.id }),
            (Verdict::Accept, rule_of(&rs, "out", 2)),
        ]
    );
}

/// The decision "rule `index` (1-based) of chain `chain` decided".
fn rule_of(rs: &Ruleset, chain: &str, index: usize) -> interp::Decided {
    let c = rs.chains.iter().find(|c| c.name == chain).unwrap();
    let r = &c.rules[index - 1];
    interp::Decided::Rule {
        chain: c.id,
        rule: r.id,
        position: r.position,
    }
}

// Every hook's region: the entry judges a packet by the region of its hook (`hook * 2 + family`).

/// The filter table of `examples/rulesets/small-office.rules` (a gateway of 192.168.10.0/24: INPUT DROP
/// with the LAN's services and the privileged ports refused, FORWARD ACCEPT, OUTPUT ACCEPT), lowered.
fn small_office() -> Ruleset {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/rulesets/small-office.rules"
    );
    let text = std::fs::read_to_string(path).expect("small-office.rules");
    tailwall_compiler::lower::iptables(&tailwall_compiler::diag::SourceFile::new(
        "small-office.rules",
        text,
    ))
    .expect("small-office.rules lowers")
    .ruleset
}

/// Who decided, as (chain name, 1-based position or 0 for the policy, verdict).
fn decider(rs: &Ruleset, o: &Outcome) -> (String, u32, Verdict) {
    let name = |c| rs.chain(c).map_or("?".to_string(), |c| c.name.clone());
    match o.decided {
        tailwall_compiler::outcome::Decided::Rule {
            chain, position, ..
        } => (name(chain), position, o.verdict),
        tailwall_compiler::outcome::Decided::Policy { chain } => (name(chain), 0, o.verdict),
        _ => panic!("not decided by a rule or policy: {o:?}"),
    }
}

/// Issue 8 item 4 on the gateway of `small-office.rules`: a connection from the LAN to a web server
/// outside, which iptables lets through (FORWARD's ACCEPT policy), is judged by FORWARD's rules in the
/// kernel (`tw_entry_fwd`: accepted by FORWARD's policy, as `sim` and `interp` at FORWARD) — and the same
/// frame judged at INPUT (`tw_entry_in`) is dropped by INPUT's rule 7 (`--dport :1023 -j DROP`), as the
/// datapath did to every forwarded frame before the hook was wired to the regions. Every frame at every
/// hook (OUTPUT: `tw_egress`) equals `sim` and `interp` at that hook.
#[test]
fn testrun_judges_forwarded_frames_by_forward_small_office() {
    if !root() {
        return;
    }
    let rs = small_office();
    let art = build(&rs);
    let sim = tailwall_compiler::sim::Sim::new(&art).expect("sim");
    let gen = Generation::load(&art).expect("load");
    let (lan, web) = (ip("192.168.10.23"), ip("93.184.216.34"));
    let accept_fwd = ("FORWARD".to_string(), 0, Verdict::Accept);
    // (frame, its decider at INPUT, at FORWARD)
    let cases = [
        // The forwarded connection: SYN to https outside; INPUT refuses the privileged port.
        (
            tcp(lan, web, 40000, 443),
            ("INPUT".to_string(), 7, Verdict::Drop),
            accept_fwd.clone(),
        ),
        // Its reply, back to the LAN host's ephemeral port: INPUT's rule 8 would accept it too.
        (
            tcp(web, lan, 443, 40000),
            ("INPUT".to_string(), 8, Verdict::Accept),
            accept_fwd.clone(),
        ),
        // ssh to a host outside; mail from outside to a LAN host; a LAN host's DNS query outside.
        (
            tcp(lan, web, 40001, 22),
            ("INPUT".to_string(), 5, Verdict::Accept),
            accept_fwd.clone(),
        ),
        (
            tcp(web, lan, 40002, 25),
            ("INPUT".to_string(), 7, Verdict::Drop),
            accept_fwd.clone(),
        ),
        (
            udp(lan, ip("8.8.8.8"), 40003, 53),
            ("INPUT".to_string(), 2, Verdict::Accept),
            accept_fwd.clone(),
        ),
        // GRE from outside: INPUT's "only icmp beyond this point" drops it.
        (
            build_frame(MAC_A, MAC_B, web, lan, 47, 0, &[0; 8]),
            ("INPUT".to_string(), 10, Verdict::Drop),
            accept_fwd.clone(),
        ),
    ];
    for (f, at_input, at_forward) in &cases {
        let d = packet::decode(f);
        for hook in Hook::ALL {
            let tr = gen.test_run_at(f, hook, 1).expect("test-run");
            let got = observed(&art, &tr);
            assert_eq!(got, sim.run_at(hook, &d), "kernel vs sim at {hook:?}: {d}");
            assert_eq!(
                got,
                interp::run(&rs, hook, &d),
                "kernel vs interp at {hook:?}: {d}"
            );
            let h = match hook {
                Hook::Input => abi::HOOK_INPUT,
                Hook::Forward => abi::HOOK_FORWARD,
                Hook::Output => abi::HOOK_OUTPUT,
            };
            assert_eq!((tr.pkt.hook, tr.pkt.region), (h, h * 2), "{hook:?}: {d}");
            let want = match hook {
                Hook::Input => at_input,
                Hook::Forward => at_forward,
                Hook::Output => &("OUTPUT".to_string(), 0, Verdict::Accept),
            };
            assert_eq!(&decider(&rs, &got), want, "{hook:?}: {d}");
            let xdp = if want.2 == Verdict::Accept {
                XDP_PASS
            } else {
                XDP_DROP
            };
            assert_eq!(tr.xdp_action, xdp, "{hook:?}: {d}");
        }
    }
}

/// The same gateway with the hook decided by the FIB (`tw_entry`, [`Generation::test_run_fib`]) in a
/// namespace addressed as the office: `lan0` 192.168.10.1/24, `wan0` 203.0.113.1/24 with the default
/// route. What is routed through is judged by FORWARD (accepted), what is addressed to the gateway by
/// INPUT (its services accepted, the rest dropped) — each decision equal to `sim` at the FIB's hook.
#[test]
fn fib_judges_small_office_traffic_at_the_routed_hook() {
    if !root() {
        return;
    }
    let ns = tailwall_tests::netns::Netns::with_prefix("twh-").expect("netns");
    for cmd in [
        "link add lan0 type veth peer name lan1",
        "link add wan0 type veth peer name wan1",
        "addr add 192.168.10.1/24 dev lan0",
        "addr add 203.0.113.1/24 dev wan0",
        "link set lan0 up",
        "link set lan1 up",
        "link set wan0 up",
        "link set wan1 up",
        "route add default via 203.0.113.254 dev wan0",
    ] {
        ns.exec("ip", cmd.split_whitespace()).expect(cmd);
    }
    ns.sysctl("net.ipv4.conf.all.forwarding", "1").unwrap();
    ns.sysctl("net.ipv4.conf.lan0.forwarding", "1").unwrap();
    ns.sysctl("net.ipv4.conf.wan0.forwarding", "1").unwrap();
    let (lan_if, wan_if) = (ns.ifindex("lan0").unwrap(), ns.ifindex("wan0").unwrap());
    let rs = small_office();
    let art = build(&rs);
    let sim = tailwall_compiler::sim::Sim::new(&art).expect("sim");
    let (host, gw, web) = (ip("192.168.10.23"), ip("192.168.10.1"), ip("93.184.216.34"));
    let (i, f) = (abi::HOOK_INPUT, abi::HOOK_FORWARD);
    // (frame, ingress, hook, out interface, decider)
    let cases = [
        (
            tcp(host, web, 40000, 443),
            lan_if,
            f,
            wan_if,
            ("FORWARD", 0, Verdict::Accept),
        ),
        (
            tcp(web, host, 443, 40000),
            wan_if,
            f,
            lan_if,
            ("FORWARD", 0, Verdict::Accept),
        ),
        (
            tcp(host, gw, 40000, 22),
            lan_if,
            i,
            0,
            ("INPUT", 5, Verdict::Accept),
        ),
        (
            tcp(host, gw, 40000, 80),
            lan_if,
            i,
            0,
            ("INPUT", 7, Verdict::Drop),
        ),
        (
            tcp(web, gw, 40000, 22),
            wan_if,
            i,
            0,
            ("INPUT", 1, Verdict::Drop),
        ),
    ];
    let got: Vec<_> = ns
        .run(move || {
            let gen = Generation::load(&art).expect("load");
            cases
                .iter()
                .map(|(fr, ingress, ..)| {
                    let tr = gen.test_run_fib(fr, *ingress, 1).expect("run");
                    (
                        tr.pkt.hook,
                        tr.pkt.out_ifindex,
                        observed(&art, &tr),
                        tr.xdp_action,
                    )
                })
                .collect::<Vec<_>>()
                .into_iter()
                .zip(cases.clone())
                .collect()
        })
        .expect("in netns");
    for ((hook, out, o, xdp), (fr, _, want_hook, want_out, want)) in got {
        let d = packet::decode(&fr);
        assert_eq!((hook, out), (want_hook, want_out), "{d}");
        let at = if hook == f {
            Hook::Forward
        } else {
            Hook::Input
        };
        assert_eq!(o, sim.run_at(at, &d), "kernel vs sim at {at:?}: {d}");
        let (c, p, v) = decider(&rs, &o);
        assert_eq!((c.as_str(), p, v), want, "{d}");
        assert_eq!(xdp == XDP_PASS, v == Verdict::Accept, "{d}");
    }
}

/// Generated filter tables with INPUT, FORWARD and OUTPUT chains (user chains reachable from each,
/// header matches: `ttl` at FORWARD reads the decremented TTL): every frame run through the program of
/// every hook (`tw_entry_in`, `tw_entry_fwd`, `tw_egress`) decides as `sim` and `interp` at that hook,
/// and the hooks' decisions differ on many frames (so judging every frame by one region cannot pass).
#[test]
fn testrun_matches_interp_at_every_hook() {
    if !root() {
        return;
    }
    use tailwall_compiler::testgen::{sample_frames, sample_rulesets_with, FrameOpts, RulesetOpts};
    let o = RulesetOpts {
        port_lists: true,
        user_chains: true,
        hooks: true,
        header_matches: true,
        ..RulesetOpts::new(16)
    };
    let (mut compared, mut differ, mut unrunnable) = (0, 0, 0);
    for (i, rs) in sample_rulesets_with(0x686f_6f6b, 16, o).iter().enumerate() {
        let art = build(rs);
        let sim = tailwall_compiler::sim::Sim::new(&art).expect("sim");
        let gen = Generation::load(&art).unwrap_or_else(|e| panic!("ruleset {i}: {e}"));
        for f in sample_frames(rs, 0x4800 + i as u64, 120, &FrameOpts::default())
            .iter()
            .filter(|f| f.len() >= 14)
        {
            let d = packet::decode(f);
            let mut at = Vec::new();
            for hook in Hook::ALL {
                let tr = match gen.test_run_at(f, hook, 1) {
                    Ok(tr) => tr,
                    // An skb test run (tw_egress) refuses an IPv4 frame shorter than its fixed
                    // header: the kernel never sends one.
                    Err(_) if hook == Hook::Output => {
                        unrunnable += 1;
                        continue;
                    }
                    Err(e) => panic!("test-run at {hook:?} of {d}: {e}"),
                };
                let got = observed(&art, &tr);
                let want = interp::run(rs, hook, &d);
                assert_eq!(
                    got,
                    want,
                    "kernel vs interp at {hook:?} on {d}\nframe {f:02x?}\nruleset:\n{}",
                    rs.dump()
                );
                assert_eq!(
                    got,
                    sim.run_at(hook, &d),
                    "kernel vs sim at {hook:?} on {d}"
                );
                compared += 1;
                at.push(got);
            }
            differ += (at[0] != at[1]) as usize;
        }
    }
    eprintln!(
        "compared {compared} (frame, hook) pairs; INPUT and FORWARD decide {differ} frames differently; {unrunnable} frames not test-runnable as an skb"
    );
    assert!(compared >= 16 * 100 * 3, "most frames ran at every hook");
    assert!(
        differ > compared / 30,
        "the hooks' rules differ on many frames"
    );
}
