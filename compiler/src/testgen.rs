//! Random rulesets and frames shared by every test tier (`interp ≡ sim` proptests, the kernel tier,
//! the oracle tier against real iptables). Behind the `testgen` feature.
//!
//! Guarantees:
//! - [`arb_ruleset`] yields rulesets that pass [`crate::ir::verify`]: one `INPUT` chain (`c0`), rules
//!   `r0..`, positions `1..`, matches sorted by field, masked prefixes, transport fields only with a
//!   non-negated `proto` 6 or 17. Addresses come from a small pool of overlapping prefixes (and random
//!   sub-prefixes of it) so that rules interact;
//! - [`arb_ruleset_with`] adds, on request ([`RulesetOpts`]), port lists (printable as
//!   `-m multiport`), address and protocol lists (datapath only: not one iptables rule), and user chains
//!   `web`, `ssh`, `lan` with jump/goto/return (a chain jumps only to chains declared after it: no
//!   loop; interp only: the datapath rejects them), all three built-in chains (`hooks`) and `-i`/`-o`
//!   matches from [`IFACES`] (`ifaces`). Also verified;
//! - [`arb_frame`] yields Ethernet frames biased toward the rules' boundaries (prefix edges, range ends
//!   ±1, exact values). With [`FrameOpts::oracle_safe`] every frame is well-formed IPv4 that the kernel
//!   delivers to INPUT unchanged: no martian addresses (0/8, 127/8, 224/4, 240/4, 255.255.255.255), no
//!   fragments, no IP options. Without it, also non-first fragments, IP options, non-IPv4 and malformed
//!   frames;
//! - [`sample_rulesets`] / [`sample_frames`] are deterministic in their seed (proptest's ChaCha RNG);
//! - [`iptables_restore_text`] prints a ruleset as `iptables-save` does, loadable by
//!   `iptables-legacy-restore` / `iptables-nft-restore`.
//!
//! Thrown away: spans (all default) and counters (none) of generated rules.
use crate::diag::Span;
use crate::ir::{
    Action, Chain, ChainId, Field, Hook, LogId, LogKind, LogSpec, Match, RejectWith, Rule, RuleId,
    Ruleset, Test, Verdict, LOG_IPOPT, LOG_TCPOPT, LOG_TCPSEQ,
};
use crate::packet::{
    build_frame, ipv4_checksum, l4_header, ETH_HLEN, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP,
};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use std::fmt::Write as _;
use std::net::Ipv4Addr;

pub mod pairs;

/// Overlapping prefixes the rules draw from (nested chains under 10/8, 172.16/12 and 192.168/16).
const POOL: [([u8; 4], u8); 16] = [
    ([10, 0, 0, 0], 8),
    ([10, 1, 0, 0], 16),
    ([10, 1, 2, 0], 24),
    ([10, 1, 2, 128], 25),
    ([10, 1, 2, 3], 32),
    ([10, 1, 2, 200], 32),
    ([10, 2, 0, 0], 15),
    ([172, 16, 0, 0], 12),
    ([172, 16, 5, 0], 24),
    ([172, 31, 255, 255], 32),
    ([192, 168, 0, 0], 16),
    ([192, 168, 1, 0], 24),
    ([192, 168, 1, 1], 32),
    ([100, 64, 0, 0], 10),
    ([8, 8, 8, 0], 24),
    ([0, 0, 0, 0], 0),
];

/// Ports that rules and frames favour.
const PORTS: [u16; 10] = [0, 1, 22, 53, 80, 443, 1023, 1024, 8080, 65535];

fn prefix_mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - len as u32)
    }
}

fn arb_prefix() -> impl Strategy<Value = Test> {
    let pool = |i: usize| (u32::from_be_bytes(POOL[i].0), POOL[i].1);
    prop_oneof![
        4 => (0..POOL.len()).prop_map(move |i| {
            let (addr, len) = pool(i);
            Test::Prefix { addr: addr.into(), len }
        }),
        1 => (0..POOL.len(), any::<u32>(), 1u8..=32).prop_map(move |(i, bits, extra)| {
            let (base, len) = pool(i);
            let len = (len + extra).min(32);
            Test::Prefix { addr: ((base | (bits & !prefix_mask(POOL[i].1))) & prefix_mask(len)).into(), len }
        }),
    ]
}

fn arb_addr_match(field: Field) -> impl Strategy<Value = Option<Match>> {
    prop_oneof![
        3 => Just(None),
        3 => (arb_prefix(), prop::bool::weighted(0.25))
            .prop_map(move |(test, negated)| Some(Match::single(field, test, negated, Span::default()))),
    ]
}

fn arb_port() -> impl Strategy<Value = u16> {
    prop_oneof![2 => prop::sample::select(PORTS.to_vec()), 1 => any::<u16>()]
}

fn arb_port_test() -> impl Strategy<Value = Test> {
    prop_oneof![
        // A single port, in both IR spellings.
        2 => arb_port().prop_map(|p| Test::Range { lo: p as u32, hi: p as u32 }),
        1 => arb_port().prop_map(|p| Test::Exact(p as u32)),
        2 => (arb_port(), arb_port()).prop_map(|(a, b)| Test::Range { lo: a.min(b) as u32, hi: a.max(b) as u32 }),
        // Open ranges `:hi` and `lo:`.
        1 => arb_port().prop_map(|p| Test::Range { lo: 0, hi: p as u32 }),
        1 => arb_port().prop_map(|p| Test::Range { lo: p as u32, hi: 65535 }),
    ]
}

fn arb_port_match(field: Field) -> impl Strategy<Value = Option<Match>> {
    prop_oneof![
        2 => Just(None),
        3 => (arb_port_test(), prop::bool::weighted(0.25))
            .prop_map(move |(test, negated)| Some(Match::single(field, test, negated, Span::default()))),
    ]
}

/// `(proto, negated)`, or no protocol match.
fn arb_proto() -> impl Strategy<Value = Option<(u8, bool)>> {
    prop_oneof![
        2 => Just(None),
        3 => Just(Some((IPPROTO_TCP, false))),
        2 => Just(Some((IPPROTO_UDP, false))),
        1 => Just(Some((IPPROTO_ICMP, false))),
        1 => prop::sample::select(vec![2u8, 47, 50, 132]).prop_map(|p| Some((p, false))),
        1 => prop::sample::select(vec![IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP]).prop_map(|p| Some((p, true))),
    ]
}

fn arb_comment() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        4 => Just(None),
        1 => "[a-z][a-z0-9_-]{0,8}( [a-z0-9.]{1,6}){0,2}".prop_map(Some),
    ]
}

/// One rule's matches, action and comment (ids and positions are filled by [`arb_ruleset`]).
fn arb_rule_body() -> impl Strategy<Value = (Vec<Match>, Action, Option<String>)> {
    let ports = prop_oneof![
        4 => (arb_port_match(Field::SrcPort), arb_port_match(Field::DstPort)),
        // A bare `-m tcp`/`-m udp`: the module with no port option still needs the transport header.
        1 => Just((None, Some(Match::single(
            Field::DstPort,
            Test::Range { lo: 0, hi: 65535 },
            false,
            Span::default(),
        )))),
    ];
    (
        arb_addr_match(Field::SrcIp),
        arb_addr_match(Field::DstIp),
        arb_proto(),
        ports,
        prop_oneof![Just(Action::Accept), Just(Action::Drop)],
        arb_comment(),
    )
        .prop_map(|(src, dst, proto, (sport, dport), action, comment)| {
            let mut matches: Vec<Match> = [src, dst].into_iter().flatten().collect();
            if let Some((p, negated)) = proto {
                matches.push(Match::single(
                    Field::Proto,
                    Test::Exact(p as u32),
                    negated,
                    Span::default(),
                ));
                if !negated && (p == IPPROTO_TCP || p == IPPROTO_UDP) {
                    matches.extend([sport, dport].into_iter().flatten());
                }
            }
            (matches, action, comment)
        })
}

/// Rulesets of up to `max_rules` INPUT rules (policy ACCEPT or DROP) that pass `ir::verify`.
pub fn arb_ruleset(max_rules: usize) -> impl Strategy<Value = Ruleset> {
    (
        prop_oneof![Just(Verdict::Accept), Just(Verdict::Drop)],
        prop::collection::vec(arb_rule_body(), 0..=max_rules),
    )
        .prop_map(|(policy, bodies)| {
            let rules = bodies
                .into_iter()
                .enumerate()
                .map(|(i, (matches, action, comment))| Rule {
                    id: RuleId(i as u32),
                    chain: ChainId(0),
                    position: i as u32 + 1,
                    matches,
                    action,
                    comment,
                    counters: None,
                    span: Span::default(),
                })
                .collect();
            Ruleset {
                family: Default::default(),
                chains: vec![Chain {
                    id: ChainId(0),
                    name: Hook::Input.chain_name().to_string(),
                    hook: Some(Hook::Input),
                    policy: Some(policy),
                    rules,
                    span: Span::default(),
                }],
                sets: Vec::new(),
                logs: Vec::new(),
            }
        })
}

/// What [`arb_ruleset_with`] generates beyond [`arb_ruleset`]'s INPUT-only rulesets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RulesetOpts {
    /// Rules per chain, at most.
    pub max_rules: usize,
    /// Port matches with several tests (2 to 5 ports or ranges): printable as `-m multiport`.
    pub port_lists: bool,
    /// Address matches with several prefixes and `proto {tcp, udp}` matches: the datapath compiles
    /// them, but one iptables rule cannot express them ([`iptables_restore_text`] refuses them).
    pub addr_lists: bool,
    /// Up to three user chains (`web`, `ssh`, `lan`, ids `c1..`) and actions jump, goto and return;
    /// a chain only jumps to chains declared after it, so there is no loop. The datapath rejects them.
    pub user_chains: bool,
    /// All three built-in chains (`c0` INPUT, `c1` FORWARD, `c2` OUTPUT, each with rules and a policy);
    /// user chains (ids from `c3`) are reachable from any of them. Without it: INPUT only.
    pub hooks: bool,
    /// `-i`/`-o` matches (exact names, `+` wildcards, `!`) drawn from [`IFACES`]: a built-in chain tests
    /// only the interfaces its hook has (`-i` in INPUT, `-o` in OUTPUT, both in FORWARD), a user chain
    /// either.
    pub ifaces: bool,
    /// The header matches beyond addresses, protocol and ports, in the forms iptables can express
    /// (printable by [`iptables_restore_text`]): `-m length --length` (value or range, `!`), `--tcp-flags`,
    /// `-m ttl`, `-f`, `-m icmp --icmp-type`, `-m iprange --src-range/--dst-range`.
    pub header_matches: bool,
    /// `-j REJECT` with every `--reject-with` of the family (`tcp-reset` on rules matching `-p tcp`)
    /// in the INPUT and FORWARD chains, which the datapath compiles (it refuses REJECT reached
    /// from OUTPUT, `docs/decisions/0015-reject.md`).
    pub reject: bool,
    /// With [`RulesetOpts::header_matches`]: `-m conntrack --ctstate` matches too (`ct_state`, one to
    /// three states, `!`). Off for the oracles against real iptables, whose conntrack sees the
    /// injected frames' checksums and earlier frames (`docs/decisions/0016`); on for the engines that
    /// judge a frame without entries (`interp`, `sim`, test-runs).
    pub ct_state: bool,
}

impl RulesetOpts {
    /// INPUT-only rulesets with single-test matches, as [`arb_ruleset`].
    pub fn new(max_rules: usize) -> RulesetOpts {
        RulesetOpts {
            max_rules,
            port_lists: false,
            addr_lists: false,
            user_chains: false,
            hooks: false,
            ifaces: false,
            header_matches: false,
            reject: false,
            ct_state: false,
        }
    }
}

/// Interface tests rules draw from, as `(name, wildcard)`: the oracle's victim interfaces are `eth0` and
/// `wan1` (plus `lo`), so every test here matches one of them, several, or none (`eth1`, `wan10`).
pub const IFACES: [(&str, bool); 9] = [
    ("eth0", false),
    ("wan1", false),
    ("eth1", false),
    ("lo", false),
    ("eth", true),
    ("wan", true),
    ("", true),
    ("wan1", true),
    ("wan10", true),
];

fn arb_iface_match(field: Field, on: bool) -> BoxedStrategy<Option<Match>> {
    if !on {
        return Just(None).boxed();
    }
    prop_oneof![
        3 => Just(None),
        2 => (0..IFACES.len(), prop::bool::weighted(0.3)).prop_map(move |(i, negated)| {
            let (name, wildcard) = IFACES[i];
            Some(Match::single(
                field,
                Test::Iface { name: name.to_string(), wildcard },
                negated,
                Span::default(),
            ))
        }),
    ]
    .boxed()
}

const USER_CHAINS: [&str; 3] = ["web", "ssh", "lan"];

fn with_lists(m: Option<Match>, extra: Vec<Test>) -> Option<Match> {
    m.map(|mut m| {
        m.tests.extend(extra);
        m
    })
}

/// Packet lengths rules favour: the smallest headers, common sizes, the veth MTU.
const LENGTHS: [u32; 8] = [20, 28, 40, 41, 60, 100, 576, 1500];

fn arb_length_test() -> impl Strategy<Value = Test> {
    let len = || prop_oneof![2 => prop::sample::select(LENGTHS.to_vec()), 1 => 0u32..=1600];
    prop_oneof![
        1 => len().prop_map(|v| Test::Range { lo: v, hi: v }),
        2 => (len(), len()).prop_map(|(a, b)| Test::Range { lo: a.min(b), hi: a.max(b) }),
    ]
}

/// The header matches of [`RulesetOpts::header_matches`] for one rule (sorted by the caller).
fn arb_header_matches(on: bool, ct_on: bool) -> BoxedStrategy<Vec<Match>> {
    if !on {
        return Just(Vec::new()).boxed();
    }
    let length = prop_oneof![
        3 => Just(None),
        1 => (arb_length_test(), prop::bool::weighted(0.25))
            .prop_map(|(t, neg)| Some(Match::single(Field::Length, t, neg, Span::default()))),
    ];
    // `--tcp-flags MASK COMP` as the flag bytes it admits (kept by the caller for `-p tcp` rules only):
    // `--syn`, SYN,ACK, RST, NONE of ALL, and random masks of the six nameable flags.
    let flags = prop_oneof![
        2 => Just(None),
        1 => (
            prop_oneof![
                2 => Just((0x17u32, 0x02u32)),
                1 => Just((0x12, 0x12)),
                1 => Just((0x04, 0x04)),
                1 => Just((0x3f, 0x00)),
                2 => (0u32..64, any::<u32>()).prop_map(|(mask, c)| (mask, c & mask)),
            ],
            prop::bool::weighted(0.25),
        )
            .prop_map(|((mask, comp), neg)| {
                let tests = (0u32..=255).filter(|b| b & mask == comp).map(Test::Exact).collect();
                Some(Match { field: Field::TcpFlags, tests, negated: neg, set: None, span: Span::default() })
            }),
    ];
    // `--ttl-eq N` (also `!`), `--ttl-lt N`, `--ttl-gt N` in the IR's spelling (see `ttl_option`).
    let ttl_value = || prop_oneof![2 => prop::sample::select(vec![0u32, 1, 63, 64, 65, 128, 254, 255]), 1 => 0u32..=255];
    let ttl = prop_oneof![
        3 => Just(None),
        1 => (ttl_value(), prop::bool::ANY).prop_map(|(n, neg)| Some((Test::Range { lo: n, hi: n }, neg))),
        1 => ttl_value().prop_map(|n| Some(match n {
            0 => (Test::Range { lo: 0, hi: 255 }, true),
            n => (Test::Range { lo: 0, hi: n - 1 }, false),
        })),
        1 => ttl_value().prop_map(|n| Some(match n {
            255 => (Test::Range { lo: 0, hi: 255 }, true),
            n => (Test::Range { lo: n + 1, hi: 255 }, false),
        })),
    ]
    .prop_map(|t| t.map(|(t, neg)| Match::single(Field::Ttl, t, neg, Span::default())));
    // `-f` / `! -f`.
    let frag = prop_oneof![
        6 => Just(None),
        1 => prop::bool::ANY.prop_map(|neg| Some(Match::single(Field::Fragment, Test::Exact(1), neg, Span::default()))),
    ];
    // `--icmp-type any`, `T` (every code), `T/C`, with `!` (kept by the caller for `-p icmp` rules only).
    let icmp_type =
        || prop_oneof![3 => prop::sample::select(vec![0u32, 3, 8, 11, 5]), 1 => 0u32..=254];
    let icmp_code = || prop_oneof![3 => prop::sample::select(vec![0u32, 1, 3]), 1 => 0u32..=255];
    let icmp = prop_oneof![
        3 => Just(None),
        1 => (
            prop_oneof![
                1 => Just(Test::Range { lo: 0, hi: 0xffff }),
                3 => icmp_type().prop_map(|t| Test::Range { lo: t << 8, hi: t << 8 | 0xff }),
                3 => (icmp_type(), icmp_code()).prop_map(|(t, c)| Test::Range { lo: t << 8 | c, hi: t << 8 | c }),
            ],
            prop::bool::weighted(0.25),
        )
            .prop_map(|(t, neg)| Some(Match::single(Field::IcmpType, t, neg, Span::default()))),
    ];
    // `-m iprange --src-range/--dst-range LO-HI` (`!`): kept by the caller when the rule has no `-s`/`-d`
    // on that field. Wide ranges and narrow ones (a few hundred addresses around one).
    let iprange = prop_oneof![
        3 => Just(None),
        1 => (
            prop::bool::ANY,
            prop_oneof![
                1 => (any::<u32>(), any::<u32>()).prop_map(|(a, b)| (a.min(b), a.max(b))),
                1 => (any::<u32>(), 0u32..300).prop_map(|(a, w)| (a, a.saturating_add(w))),
            ],
            prop::bool::weighted(0.25),
        )
            .prop_map(|(src, (lo, hi), neg)| {
                let field = if src { Field::SrcIp } else { Field::DstIp };
                Some(Match::single(field, Test::Range { lo, hi }, neg, Span::default()))
            }),
    ];
    // `-m conntrack --ctstate S1,S2` (`!`): one to three of the five states.
    let ct: BoxedStrategy<Option<Match>> = if !ct_on {
        Just(None).boxed()
    } else {
        prop_oneof![
        4 => Just(None),
        1 => (
            prop::sample::subsequence(vec![0u32, 1, 2, 3, 4], 1..=3),
            prop::bool::weighted(0.25),
        )
            .prop_map(|(vs, neg)| Some(Match {
                field: Field::CtState,
                tests: vs.into_iter().map(Test::Exact).collect(),
                negated: neg,
                set: None,
                span: Span::default(),
            })),
        ]
        .boxed()
    };
    (length, flags, ttl, frag, icmp, iprange, ct)
        .prop_map(|(l, f, t, g, i, r, c)| {
            l.into_iter()
                .chain(f)
                .chain(t)
                .chain(g)
                .chain(i)
                .chain(r)
                .chain(c)
                .collect()
        })
        .boxed()
}

/// The `--icmp-type` value of an IPv4 icmp match: `any` (every type and code), `T` (every code of
/// type `T`), `T/C`, `T/C1:C2`. `None` for any other set (not one iptables option).
fn icmp_option(m: &Match) -> Option<String> {
    let (lo, hi) = m.single_test()?.bounds(m.field.bits())?;
    let (t, a, b) = (lo >> 8, lo & 0xff, hi & 0xff);
    Some(match (lo, hi) {
        (0, 0xffff) => "any".into(),
        _ if hi >> 8 != t => return None,
        _ if (a, b) == (0, 0xff) => format!("{t}"),
        _ if a == b => format!("{t}/{a}"),
        _ => format!("{t}/{a}:{b}"),
    })
}

/// The `-m ttl` option of a ttl match: `--ttl-eq N` (`!` kept), `--ttl-lt N` (`0:N-1`, or `! 0:255`
/// for `< 0`), `--ttl-gt N` (`N+1:255`). `None` for any other set (not one iptables option).
fn ttl_option(m: &Match) -> Option<String> {
    let (lo, hi) = m.single_test()?.bounds(m.field.bits())?;
    Some(match (lo, hi, m.negated) {
        (lo, hi, neg) if lo == hi => format!("{}--ttl-eq {lo}", if neg { "! " } else { "" }),
        (0, 255, true) => "--ttl-lt 0".into(),
        (0, hi, false) => format!("--ttl-lt {}", hi + 1),
        (lo, 255, false) => format!("--ttl-gt {}", lo - 1),
        _ => return None,
    })
}

/// `--tcp-flags MASK COMP` of a set of flag bytes, if the set is exactly `{b : b & MASK == COMP}` for
/// a mask of the six flags iptables can name.
fn tcp_flags_of(m: &Match) -> Option<(u32, u32)> {
    let vals: Vec<u32> = m.bounds().map(|(v, _)| v as u32).collect();
    let first = *vals.first()?;
    let mask = (0..6)
        .map(|b| 1u32 << b)
        .filter(|bit| vals.iter().all(|v| v & bit == first & bit))
        .sum::<u32>();
    let comp = first & mask;
    let want: Vec<u32> = (0u32..=255).filter(|b| b & mask == comp).collect();
    let mut got = vals.clone();
    got.sort_unstable();
    (got == want).then_some((mask, comp))
}

/// iptables' spelling of a flag set (`print_tcpf`: FIN first, `NONE` for none).
fn tcp_flag_names(bits: u32) -> String {
    const NAMES: [&str; 6] = ["FIN", "SYN", "RST", "PSH", "ACK", "URG"];
    if bits == 0 {
        return "NONE".into();
    }
    (0..6)
        .filter(|b| bits & (1 << b) != 0)
        .map(|b| NAMES[b])
        .collect::<Vec<_>>()
        .join(",")
}

/// One rule's matches and comment under `o` (lists added to single-test matches).
fn arb_rule_body_with(o: RulesetOpts) -> impl Strategy<Value = (Vec<Match>, Option<String>)> {
    let port_extra = move || -> BoxedStrategy<Vec<Test>> {
        if o.port_lists {
            prop_oneof![2 => Just(vec![]), 1 => prop::collection::vec(arb_port_test(), 1..=4)]
                .boxed()
        } else {
            Just(vec![]).boxed()
        }
    };
    let addr_extra = move || -> BoxedStrategy<Vec<Test>> {
        if o.addr_lists {
            prop_oneof![2 => Just(vec![]), 1 => prop::collection::vec(arb_prefix(), 1..=2)].boxed()
        } else {
            Just(vec![]).boxed()
        }
    };
    let both_protos = if o.addr_lists {
        prop::bool::weighted(0.15).boxed()
    } else {
        Just(false).boxed()
    };
    (
        arb_rule_body(),
        addr_extra(),
        addr_extra(),
        port_extra(),
        port_extra(),
        both_protos,
        arb_iface_match(Field::InIface, o.ifaces),
        arb_iface_match(Field::OutIface, o.ifaces),
        arb_header_matches(o.header_matches, o.ct_state),
    )
        .prop_map(
            |((matches, _, comment), sa, da, sp, dp, both, iif, oif, header)| {
                let mut out = Vec::with_capacity(matches.len() + 2 + header.len());
                for m in matches {
                    let extra = match m.field {
                        Field::SrcIp => sa.clone(),
                        Field::DstIp => da.clone(),
                        // The bare `-m tcp` (full range, not negated) stays as it is.
                        Field::SrcPort => sp.clone(),
                        Field::DstPort
                            if m.tests != [Test::Range { lo: 0, hi: 65535 }] || m.negated =>
                        {
                            dp.clone()
                        }
                        Field::Proto
                            if both
                                && !m.negated
                                && matches!(m.tests[..], [Test::Exact(6 | 17)]) =>
                        {
                            vec![Test::Exact(if m.tests[0] == Test::Exact(6) {
                                17
                            } else {
                                6
                            })]
                        }
                        _ => vec![],
                    };
                    out.extend(with_lists(Some(m), extra));
                }
                out.extend(iif.into_iter().chain(oif));
                let only = |p: u32| {
                    out.iter().any(|m| {
                        m.field == Field::Proto && !m.negated && m.tests == [Test::Exact(p)]
                    })
                };
                let (tcp_only, icmp_only) = (only(6), only(1));
                let addrs: Vec<Field> = out.iter().map(|m| m.field).collect();
                out.extend(header.into_iter().filter(|m| match m.field {
                    Field::TcpFlags => tcp_only,
                    Field::IcmpType => icmp_only,
                    // `-m iprange` where the rule has no `-s`/`-d` of that field.
                    Field::SrcIp | Field::DstIp => !addrs.contains(&m.field),
                    _ => true,
                }));
                out.sort_by_key(|m| m.field);
                (out, comment)
            },
        )
}

/// The action of a rule of chain `ci` among `nb` built-in chains followed by `nuser` user chains, from
/// a random kind and target pick: a built-in chain may jump to any user chain, a user chain only to
/// those declared after it (no loop).
fn pick_action(
    ci: usize,
    nb: usize,
    nuser: usize,
    kind: u8,
    target: prop::sample::Index,
) -> Action {
    let first = (ci + 1).max(nb);
    let later = (nb + nuser).saturating_sub(first);
    let t = || ChainId((first + target.index(later.max(1))) as u32);
    match kind % 10 {
        6 | 7 if later > 0 => Action::Jump(t()),
        8 if later > 0 => Action::Goto(t()),
        9 if nuser > 0 => Action::Return,
        k if k % 2 == 0 => Action::Accept,
        _ => Action::Drop,
    }
}

/// A REJECT of an IPv4 rule with `matches`, its kind from `kind`: any ICMP kind, or `tcp-reset`
/// when the rule matches `-p tcp` exactly ([`to_ipv6`] maps the kinds to IPv6's).
fn pick_reject(matches: &[Match], kind: u8) -> Action {
    let tcp = matches
        .iter()
        .any(|m| m.field == Field::Proto && !m.negated && m.tests == [Test::Exact(6)]);
    let kinds: Vec<RejectWith> = RejectWith::ALL
        .into_iter()
        .filter(|k| match k.family() {
            None => tcp,
            Some(f) => f == crate::ir::Family::V4,
        })
        .collect();
    Action::Reject(kinds[kind as usize % kinds.len()])
}

/// The IPv6 reply standing for an IPv4 one in [`to_ipv6`]'s twin: the same meaning where ICMPv6
/// has one (net/host unreachable -> no route / address unreachable, the prohibited kinds ->
/// administratively prohibited), `tcp-reset` itself.
pub fn reject_to_v6(k: RejectWith) -> RejectWith {
    match k {
        RejectWith::IcmpNetUnreachable => RejectWith::Icmp6NoRoute,
        RejectWith::IcmpHostUnreachable => RejectWith::Icmp6AddrUnreachable,
        RejectWith::IcmpProtoUnreachable => RejectWith::Icmp6PolicyFail,
        RejectWith::IcmpPortUnreachable => RejectWith::Icmp6PortUnreachable,
        RejectWith::IcmpNetProhibited => RejectWith::Icmp6RejectRoute,
        RejectWith::IcmpHostProhibited | RejectWith::IcmpAdminProhibited => {
            RejectWith::Icmp6AdmProhibited
        }
        other => other,
    }
}

/// Rulesets under `o` that pass `ir::verify`: the built-in chains (`c0` INPUT, with
/// [`RulesetOpts::hooks`] also `c1` FORWARD and `c2` OUTPUT; policies ACCEPT or DROP), then the user
/// chains, rule ids in that order.
pub fn arb_ruleset_with(o: RulesetOpts) -> BoxedStrategy<Ruleset> {
    let nuser = if o.user_chains {
        0..=USER_CHAINS.len()
    } else {
        0..=0
    };
    let builtins: Vec<Hook> = if o.hooks {
        Hook::ALL.to_vec()
    } else {
        vec![Hook::Input]
    };
    let nb = builtins.len();
    let policy = || prop_oneof![Just(Verdict::Accept), Just(Verdict::Drop)];
    let extra_policies = if o.hooks {
        prop::collection::vec(policy(), nb - 1).boxed()
    } else {
        Just(Vec::new()).boxed()
    };
    (policy(), nuser, extra_policies)
        .prop_flat_map(move |(policy, n, extra)| {
            let rule = (
                arb_rule_body_with(o),
                any::<u8>(),
                any::<prop::sample::Index>(),
            );
            let chain = prop::collection::vec(rule, 0..=o.max_rules);
            let mut policies = vec![policy];
            policies.extend(extra);
            (
                Just(policies),
                Just(n),
                prop::collection::vec(chain, n + nb),
            )
        })
        .prop_map(move |(policies, n, chains)| {
            let mut next = 0u32;
            let chains = chains
                .into_iter()
                .enumerate()
                .map(|(ci, rules)| {
                    let hook = builtins.get(ci).copied();
                    let rules = rules
                        .into_iter()
                        .enumerate()
                        .map(|(i, ((mut matches, comment), kind, target))| {
                            next += 1;
                            // A built-in chain tests only the interfaces its hook has (E0314).
                            if let Some(h) = hook {
                                matches.retain(|m| {
                                    !matches!(m.field, Field::InIface | Field::OutIface)
                                        || h.has_iface(m.field)
                                });
                            }
                            let mut action = pick_action(ci, nb, n, kind, target);
                            if o.reject
                                && matches!(hook, Some(Hook::Input | Hook::Forward))
                                && kind >= 180
                            {
                                action = pick_reject(&matches, kind);
                            }
                            Rule {
                                id: RuleId(next - 1),
                                chain: ChainId(ci as u32),
                                position: i as u32 + 1,
                                matches,
                                action,
                                comment,
                                counters: None,
                                span: Span::default(),
                            }
                        })
                        .collect();
                    Chain {
                        id: ChainId(ci as u32),
                        name: match hook {
                            Some(h) => h.chain_name().to_string(),
                            None => USER_CHAINS[ci - nb].to_string(),
                        },
                        hook,
                        policy: hook.map(|_| policies[ci]),
                        rules,
                        span: Span::default(),
                    }
                })
                .collect();
            Ruleset {
                family: Default::default(),
                chains,
                sets: Vec::new(),
                logs: Vec::new(),
            }
        })
        .boxed()
}

/// [`arb_ruleset_with`] where about a quarter of the rules are LOG or NFLOG rules (their action
/// replaced; a replaced jump simply no longer reaches its chain): prefixes, levels and flags drawn
/// from what iptables accepts, so [`iptables_restore_text`] prints them. For the `Log` action's
/// proptests (interp ≡ sim with log events) and the oracle.
pub fn arb_ruleset_logged(o: RulesetOpts) -> BoxedStrategy<Ruleset> {
    arb_ruleset_with(o)
        .prop_flat_map(|rs| {
            let n = rs.rules().count();
            (Just(rs), prop::collection::vec(any::<u16>(), n))
        })
        .prop_map(|(mut rs, picks)| {
            let mut k = 0;
            for c in &mut rs.chains {
                for r in &mut c.rules {
                    let p = picks[k];
                    k += 1;
                    if p % 4 != 0 {
                        continue;
                    }
                    let spec = if p & 0x100 != 0 {
                        LogSpec {
                            kind: LogKind::Nflog {
                                group: p >> 12,
                                range: 0,
                                threshold: 0,
                            },
                            prefix: format!("nf{}", r.id.0),
                        }
                    } else {
                        LogSpec {
                            kind: LogKind::Log {
                                level: ((p >> 4) % 8) as u8,
                                flags: ((p >> 9) as u8) & (LOG_TCPSEQ | LOG_TCPOPT | LOG_IPOPT),
                            },
                            prefix: if p & 0x8 != 0 {
                                format!("{}-{} ", c.name, r.position)
                            } else {
                                String::new()
                            },
                        }
                    };
                    rs.logs.push(spec);
                    r.action = Action::Log(LogId(rs.logs.len() as u32 - 1));
                }
            }
            rs
        })
        .boxed()
}

/// How [`arb_frame`] builds frames.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameOpts {
    /// Only frames the kernel delivers to INPUT unchanged (see the module docs).
    pub oracle_safe: bool,
    /// Destination MAC of every frame (default `02:00:00:00:00:01`; the oracle uses its veth's, so
    /// the kernel accepts the frame as PACKET_HOST).
    pub dst_mac: [u8; 6],
    /// Source MAC of every frame (default `02:00:00:00:00:02`).
    pub src_mac: [u8; 6],
}

impl Default for FrameOpts {
    fn default() -> FrameOpts {
        FrameOpts {
            oracle_safe: false,
            dst_mac: [2, 0, 0, 0, 0, 1],
            src_mac: [2, 0, 0, 0, 0, 2],
        }
    }
}

/// Is the address one the kernel drops as martian before INPUT (as source or destination)?
pub fn is_martian(a: u32) -> bool {
    let first = a >> 24;
    first == 0 || first == 127 || first >= 224
}

/// Boundary values of the rules: addresses, ports and protocols worth testing.
struct Boundaries {
    addrs: Vec<u32>,
    ports: Vec<u16>,
    protos: Vec<u8>,
    /// Values of the other header fields worth testing, written by [`crate::packet::write_value`].
    header: Vec<(Field, Vec<u32>)>,
}

fn boundaries(rs: &Ruleset) -> Boundaries {
    let mut b = Boundaries {
        addrs: vec![0x0a01_0203, 0xc0a8_0101, 0x0808_0808, 0xcb00_7107],
        ports: PORTS.to_vec(),
        protos: vec![IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, 47],
        header: Vec::new(),
    };
    let header = |b: &mut Boundaries, f: Field, vs: &[u32]| {
        let max = f.max_value();
        let vs = vs.iter().copied().filter(|&v| u128::from(v) <= max);
        match b.header.iter_mut().find(|(g, _)| *g == f) {
            Some((_, old)) => old.extend(vs),
            None => b.header.push((f, vs.collect())),
        }
    };
    for r in rs.rules() {
        for (m, (lo, hi)) in r
            .matches
            .iter()
            .flat_map(|m| m.bounds().map(move |(lo, hi)| (m, (lo as u32, hi as u32))))
        {
            match m.field {
                // Generated IPv6 rulesets embed these IPv4 boundaries (`to_ipv6`).
                Field::SrcIp | Field::DstIp => b.addrs.extend([
                    lo,
                    hi,
                    lo.wrapping_sub(1),
                    hi.wrapping_add(1),
                    lo + (hi - lo) / 2,
                    lo.wrapping_add(1),
                ]),
                Field::Proto => b.protos.extend([lo as u8, hi as u8]),
                Field::SrcPort | Field::DstPort => {
                    for p in [lo as i64 - 1, lo as i64, hi as i64, hi as i64 + 1] {
                        if (0..=65535).contains(&p) {
                            b.ports.push(p as u16);
                        }
                    }
                }
                // Interfaces are not in the frame.
                Field::InIface | Field::OutIface => {}
                // Fragments are a frame shape (`Shape::Fragment`), not a written value.
                Field::Fragment => {}
                Field::Length | Field::TcpFlags | Field::Ttl | Field::IcmpType => header(
                    &mut b,
                    m.field,
                    &[lo.saturating_sub(1), lo, hi, hi.saturating_add(1)],
                ),
                Field::SrcIp6 | Field::DstIp6 => {}
                // The state without an entry follows from the TCP flags and the ICMP type
                // (`CtState::without_entry`): SYN, SYN-ACK, ACK, RST, FIN-ACK, PSH-ACK; echo, echo
                // reply, port unreachable.
                Field::CtState => {
                    header(
                        &mut b,
                        Field::TcpFlags,
                        &[0x02, 0x12, 0x10, 0x04, 0x11, 0x18, 0x03],
                    );
                    header(&mut b, Field::IcmpType, &[0x0800, 0x0000, 0x0303]);
                }
            }
        }
    }
    for (_, vs) in &mut b.header {
        vs.sort_unstable();
        vs.dedup();
    }
    b.addrs.sort_unstable();
    b.addrs.dedup();
    b.ports.sort_unstable();
    b.ports.dedup();
    b.protos.sort_unstable();
    b.protos.dedup();
    b
}

/// How a frame departs from a plain first-fragment IPv4 packet.
#[derive(Clone, Copy, Debug)]
enum Shape {
    Plain,
    /// Transport header cut to this many bytes (TCP/UDP only).
    Truncated(usize),
    /// Non-first fragment at this offset (8-byte units, ≥ 1).
    Fragment(u16),
    /// IP options of this many 32-bit words.
    Options(u8),
    NotIpv4(u16),
    /// VLAN tags (TPID, TCI) inserted before the EtherType, outermost first (1..=3: the third is
    /// beyond `MAX_VLAN_TAGS`).
    Vlan([(u16, u16); 3], usize),
    ShortEthernet(usize),
    Malformed(u8),
}

/// One VLAN tag: 802.1Q or 802.1ad TPID and a TCI (VLAN id, with the priority bits sometimes set).
fn arb_vlan_tag() -> impl Strategy<Value = (u16, u16)> {
    (prop::sample::select(vec![0x8100u16, 0x88a8]), any::<u16>())
}

fn arb_shape(oracle_safe: bool) -> BoxedStrategy<Shape> {
    let safe = prop_oneof![
        8 => Just(Shape::Plain),
        2 => (0usize..20).prop_map(Shape::Truncated),
    ];
    if oracle_safe {
        return safe.boxed();
    }
    prop_oneof![
        10 => safe,
        // Offset 1 is special for TCP (x_tables' tcp match hotdrops it).
        2 => prop_oneof![1 => Just(1u16), 3 => 1u16..0x1fff].prop_map(Shape::Fragment),
        2 => (1u8..=10).prop_map(Shape::Options),
        1 => prop::sample::select(vec![0x0806u16, 0x86dd, 0x8100, 0x88cc]).prop_map(Shape::NotIpv4),
        2 => (
            [arb_vlan_tag(), arb_vlan_tag(), arb_vlan_tag()],
            prop_oneof![4 => 1usize..=2, 1 => Just(3usize)],
        )
            .prop_map(|(tags, n)| Shape::Vlan(tags, n)),
        1 => (0usize..ETH_HLEN).prop_map(Shape::ShortEthernet),
        2 => (0u8..5).prop_map(Shape::Malformed),
    ]
    .boxed()
}

fn pick<T: Clone + std::fmt::Debug + 'static>(
    pool: Vec<T>,
    random: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<T> {
    prop_oneof![3 => prop::sample::select(pool), 1 => random].boxed()
}

fn set_ip_checksum(f: &mut [u8]) {
    let ihl = (f[ETH_HLEN] & 0x0f) as usize * 4;
    f[ETH_HLEN + 10..ETH_HLEN + 12].fill(0);
    let end = (ETH_HLEN + ihl).min(f.len());
    let c = ipv4_checksum(&f[ETH_HLEN..end]);
    f[ETH_HLEN + 10..ETH_HLEN + 12].copy_from_slice(&c.to_be_bytes());
}

/// Frames for `rs`, biased toward the boundaries of its rules (of every chain).
pub fn arb_frame(rs: &Ruleset, opts: FrameOpts) -> impl Strategy<Value = Vec<u8>> {
    let b = boundaries(rs);
    let addr = || pick(b.addrs.clone(), any::<u32>());
    let port = || pick(b.ports.clone(), any::<u16>());
    let proto = prop_oneof![
        4 => Just(IPPROTO_TCP),
        3 => Just(IPPROTO_UDP),
        3 => prop::sample::select(b.protos.clone()),
        1 => any::<u8>(),
    ];
    // One optional value per other header field the rules test, from its boundaries.
    let header: Vec<BoxedStrategy<Option<(Field, u32)>>> = b
        .header
        .iter()
        .map(|(f, vs)| {
            let f = *f;
            prop_oneof![
                1 => Just(None),
                3 => prop::sample::select(vs.clone()).prop_map(move |v| Some((f, v))),
            ]
            .boxed()
        })
        .collect();
    (
        addr(),
        addr(),
        proto,
        port(),
        port(),
        arb_shape(opts.oracle_safe),
        prop::bool::weighted(0.2),
        prop::collection::vec(any::<u8>(), 0..12),
        header,
    )
        .prop_map(
            move |(src, dst, proto, sport, dport, shape, pad, data, header)| {
                let fix = |a: u32| {
                    if opts.oracle_safe && is_martian(a) {
                        (a & 0x00ff_ffff) | 0x0b00_0000
                    } else {
                        a
                    }
                };
                let (src, dst) = (Ipv4Addr::from(fix(src)), Ipv4Addr::from(fix(dst)));
                let has_ports = proto == IPPROTO_TCP || proto == IPPROTO_UDP;
                let mut payload = if has_ports {
                    l4_header(proto, sport, dport, &data)
                } else {
                    data
                };
                let mut frag = 0;
                match shape {
                    Shape::Truncated(n) if has_ports => {
                        let need = if proto == IPPROTO_TCP { 20 } else { 8 };
                        payload.truncate(n % need);
                    }
                    Shape::Fragment(off) => frag = off,
                    _ => {}
                }
                let mut f =
                    build_frame(opts.dst_mac, opts.src_mac, src, dst, proto, frag, &payload);
                for (field, v) in header.into_iter().flatten() {
                    // Oracle frames stay within the veth MTU (1500).
                    if !(opts.oracle_safe && field == Field::Length && v > 1500) {
                        crate::packet::write_value(&mut f, field, v);
                    }
                }
                match shape {
                    Shape::Options(words) => {
                        let at = ETH_HLEN + 20;
                        let n = words as usize * 4;
                        let mut opt = vec![1u8; n];
                        opt[n - 1] = 0;
                        f.splice(at..at, opt);
                        f[ETH_HLEN] = 0x40 | (5 + words);
                        let tot = u16::from_be_bytes([f[ETH_HLEN + 2], f[ETH_HLEN + 3]]) + n as u16;
                        f[ETH_HLEN + 2..ETH_HLEN + 4].copy_from_slice(&tot.to_be_bytes());
                        set_ip_checksum(&mut f);
                    }
                    Shape::NotIpv4(et) => f[12..14].copy_from_slice(&et.to_be_bytes()),
                    Shape::Vlan(tags, n) => {
                        let bytes: Vec<u8> = tags[..n]
                            .iter()
                            .flat_map(|(tpid, tci)| {
                                [tpid.to_be_bytes(), tci.to_be_bytes()].concat()
                            })
                            .collect();
                        f.splice(12..12, bytes);
                    }
                    Shape::ShortEthernet(n) => f.truncate(n),
                    Shape::Malformed(kind) => {
                        match kind {
                            0 => f[ETH_HLEN] = 0x65, // version 6 under EtherType IPv4
                            1 => f[ETH_HLEN] = 0x44, // IHL 4
                            2 => f[ETH_HLEN + 2..ETH_HLEN + 4]
                                .copy_from_slice(&4000u16.to_be_bytes()), // too long
                            3 => {
                                f[ETH_HLEN + 2..ETH_HLEN + 4].copy_from_slice(&12u16.to_be_bytes())
                            } // < IHL
                            _ => f.truncate(ETH_HLEN + 19), // short header
                        }
                        if f.len() >= ETH_HLEN + 20 {
                            set_ip_checksum(&mut f);
                        }
                    }
                    _ => {}
                }
                // Ethernet padding, except where it would complete a header cut short on purpose.
                let cut = matches!(shape, Shape::ShortEthernet(_) | Shape::Malformed(4));
                if pad && !cut && f.len() < 60 && f.len() >= ETH_HLEN {
                    f.resize(60, 0);
                }
                f
            },
        )
}

fn runner(seed: u64) -> TestRunner {
    let mut s = [0u8; 32];
    s[..8].copy_from_slice(&seed.to_le_bytes());
    s[8..16].copy_from_slice(b"tailwall");
    TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &s),
    )
}

/// `count` rulesets under `o`, the same for the same seed.
pub fn sample_rulesets_with(seed: u64, count: usize, o: RulesetOpts) -> Vec<Ruleset> {
    let mut r = runner(seed);
    let s = arb_ruleset_with(o);
    (0..count)
        .filter_map(|_| s.new_tree(&mut r).ok().map(|t| t.current()))
        .collect()
}

/// `count` rulesets of [`arb_ruleset_logged`]`(o)` (LOG and NFLOG rules among them), the same for the
/// same seed.
pub fn sample_rulesets_logged(seed: u64, count: usize, o: RulesetOpts) -> Vec<Ruleset> {
    let mut r = runner(seed);
    let s = arb_ruleset_logged(o);
    (0..count)
        .filter_map(|_| s.new_tree(&mut r).ok().map(|t| t.current()))
        .collect()
}

/// `count` rulesets of up to `max_rules` rules, the same for the same seed.
pub fn sample_rulesets(seed: u64, count: usize, max_rules: usize) -> Vec<Ruleset> {
    let mut r = runner(seed);
    let s = arb_ruleset(max_rules);
    (0..count)
        .filter_map(|_| s.new_tree(&mut r).ok().map(|t| t.current()))
        .collect()
}

/// `count` frames for `rs`, the same for the same seed.
pub fn sample_frames(rs: &Ruleset, seed: u64, count: usize, opts: &FrameOpts) -> Vec<Vec<u8>> {
    let mut r = runner(seed);
    let s = arb_frame(rs, opts.clone());
    (0..count)
        .filter_map(|_| s.new_tree(&mut r).ok().map(|t| t.current()))
        .collect()
}

/// `count` IPv6 frames for [`to_ipv6`]`(rs4)` ([`arb_frame_v6`]), the same for the same seed.
pub fn sample_frames_v6(rs4: &Ruleset, seed: u64, count: usize, opts: &FrameOpts) -> Vec<Vec<u8>> {
    let mut r = runner(seed);
    let s = arb_frame_v6(rs4, opts.clone());
    (0..count)
        .filter_map(|_| s.new_tree(&mut r).ok().map(|t| t.current()))
        .collect()
}

/// libxtables' `xtables_save_string`: bare when made only of `[A-Za-z0-9_-]`, else double-quoted with
/// `"`, `\` and `'` escaped by a backslash.
fn save_string(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        return s.to_string();
    }
    let mut o = String::from("\"");
    for c in s.chars() {
        if matches!(c, '"' | '\\' | '\'') {
            o.push('\\');
        }
        o.push(c);
    }
    o.push('"');
    o
}

/// iptables-save's protocol spelling: its own table, then `/etc/protocols` names (as on Debian).
fn proto_name(p: u32) -> String {
    match p {
        1 => "icmp".into(),
        2 => "igmp".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        47 => "gre".into(),
        50 => "esp".into(),
        51 => "ah".into(),
        132 => "sctp".into(),
        136 => "udplite".into(),
        p => p.to_string(),
    }
}

fn bang(m: &Match) -> &'static str {
    if m.negated {
        "! "
    } else {
        ""
    }
}

/// Ports of a multiport match: `80,443,1000:2000`.
fn port_list(m: &Match) -> String {
    m.bounds()
        .map(|(lo, hi)| {
            if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}:{hi}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The ruleset as `iptables-save` (an IPv6 one: `ip6tables-save`, addresses, protocols, ports,
/// chains; no `ttl`, `icmp_type` or `fragment` match) prints it (filter table): the built-in chains INPUT, FORWARD, OUTPUT
/// (a missing one with policy ACCEPT, as the kernel has it), then the user chains sorted by name, then
/// every chain's rules in that order. A port match with one test prints as `-m tcp|udp --sport/--dport`,
/// with several as `-m multiport --sports/--dports a,b,lo:hi` (one `-m multiport` per field); jumps as
/// `-j NAME`, gotos as `-g NAME`, returns as `-j RETURN`.
///
/// Precondition (what iptables can express in one rule): address and protocol matches have one test,
/// a multiport list has at most 15 ports (a range counts as two) — [`arb_ruleset`] and
/// [`arb_ruleset_with`] only generate such rulesets. Panics otherwise: a test helper, never user input.
///
/// One deliberate difference: a negated full port range (`! --sport 0:65535`, a test no port passes)
/// is printed, where iptables-save drops it (its tcp/udp printer ignores the `!` of a full range) even
/// though the kernel keeps and honours it. Checked: 100 sampled rulesets load with
/// `iptables-legacy-restore` and `iptables-legacy-save` prints them back identically but for that case.
pub fn iptables_restore_text(rs: &Ruleset) -> String {
    // ip6tables-save's header, which is how a reader tells an IPv6 dump without IPv6 addresses.
    let mut o = String::from(match rs.family {
        crate::ir::Family::V6 => "# Generated by ip6tables-save v1.8.9\n*filter\n",
        _ => "*filter\n",
    });
    let mut order: Vec<&Chain> = Vec::new();
    for h in Hook::ALL {
        let policy = rs
            .hook_chain(h)
            .and_then(|c| c.policy)
            .unwrap_or(Verdict::Accept)
            .target();
        let _ = writeln!(o, ":{} {policy} [0:0]", h.chain_name());
        order.extend(rs.hook_chain(h));
    }
    let mut users: Vec<&Chain> = rs.chains.iter().filter(|c| c.hook.is_none()).collect();
    users.sort_by(|a, b| a.name.cmp(&b.name));
    for c in &users {
        let _ = writeln!(o, ":{} - [0:0]", c.name);
    }
    order.extend(users);
    for c in order {
        for r in &c.rules {
            print_rule(&mut o, rs, &c.name, r);
        }
    }
    o.push_str("COMMIT\n");
    o
}

fn print_rule(o: &mut String, rs: &Ruleset, chain: &str, r: &Rule) {
    // ip6tables spells these differently (`-m hl`, `-m icmp6`, `-m frag`): not printed for IPv6.
    assert!(
        rs.family == crate::ir::Family::V4
            || !r
                .matches
                .iter()
                .any(|m| matches!(m.field, Field::Ttl | Field::IcmpType | Field::Fragment)),
        "iptables_restore_text: an IPv6 header match"
    );
    let single = |m: &Match| -> (u32, u32) {
        assert!(
            m.tests.len() == 1,
            "iptables_restore_text: {} with {} tests cannot be one iptables rule",
            m.field,
            m.tests.len()
        );
        let (lo, hi) = m.tests[0].bounds(m.field.bits()).expect("numeric test");
        (lo as u32, hi as u32)
    };
    let _ = write!(o, "-A {chain}");
    let mut modules = String::new();
    for (field, flag, range_flag) in [
        (Field::SrcIp, "-s", "--src-range"),
        (Field::DstIp, "-d", "--dst-range"),
        (Field::SrcIp6, "-s", "--src-range"),
        (Field::DstIp6, "-d", "--dst-range"),
    ] {
        let Some(m) = r.get(field) else { continue };
        single(m);
        // An address of the field's family (IPv6 for `src_ip6`/`dst_ip6`).
        let addr_of = |a: u128| crate::ir::DisplayAddr(a, field).to_string();
        match m.tests[0] {
            Test::Prefix { addr: 0, len: 0 } if !m.negated => {}
            Test::Prefix { addr, len } => {
                let _ = write!(o, " {}{flag} {}/{len}", bang(m), addr_of(addr));
            }
            Test::Exact(a) => {
                let _ = write!(
                    o,
                    " {}{flag} {}/{}",
                    bang(m),
                    addr_of(a.into()),
                    field.bits()
                );
            }
            Test::Range { lo, hi } => {
                let _ = write!(
                    modules,
                    " -m iprange {}{range_flag} {}-{}",
                    bang(m),
                    addr_of(lo.into()),
                    addr_of(hi.into())
                );
            }
            Test::Iface { .. } => unreachable!("verified: no iface test on an address"),
        }
    }
    for (field, flag) in [(Field::InIface, "-i"), (Field::OutIface, "-o")] {
        let Some(m) = r.get(field) else { continue };
        let [Test::Iface { name, wildcard }] = m.tests.as_slice() else {
            panic!("iptables_restore_text: {field} needs exactly one interface test");
        };
        let _ = write!(
            o,
            " {}{flag} {name}{}",
            bang(m),
            if *wildcard { "+" } else { "" }
        );
    }
    let proto = r.get(Field::Proto);
    if let Some(m) = proto {
        let _ = write!(o, " {}-p {}", bang(m), proto_name(single(m).0));
    }
    if let Some(m) = r.get(Field::Fragment) {
        assert_eq!(
            m.tests,
            [Test::Exact(1)],
            "iptables_restore_text: -f is fragment 1"
        );
        let _ = write!(o, " {}-f", bang(m));
    }
    o.push_str(&modules);
    // Header matches before the transport match: the IR's order (`lower` refuses the other, E0209).
    if let Some(m) = r.get(Field::Length) {
        let (lo, hi) = single(m);
        let v = if lo == hi {
            lo.to_string()
        } else {
            format!("{lo}:{hi}")
        };
        let _ = write!(o, " -m length {}--length {v}", bang(m));
    }
    if let Some(m) = r.get(Field::Ttl) {
        let opt = ttl_option(m).expect("iptables_restore_text: ttl is not one -m ttl option");
        let _ = write!(o, " -m ttl {opt}");
    }
    if let Some(m) = r.get(Field::CtState) {
        // Before the transport match, the IR's order (`lower` refuses some of the other, E0209).
        let names: Vec<&str> = m
            .tests
            .iter()
            .map(|t| match t {
                Test::Exact(v) => crate::packet::CtState::from_value((*v).into())
                    .expect("iptables_restore_text: a ct_state value")
                    .name(),
                _ => panic!("iptables_restore_text: ct_state tests are exact states"),
            })
            .collect();
        let _ = write!(o, " -m conntrack {}--ctstate {}", bang(m), names.join(","));
    }
    if let Some(m) = r.get(Field::IcmpType) {
        let opt = icmp_option(m).expect("iptables_restore_text: icmp_type is not one --icmp-type");
        let _ = write!(o, " -m icmp {}--icmp-type {opt}", bang(m));
    } else if r.needs_l4() {
        let module = match proto.map(|m| single(m).0) {
            Some(17) => "udp",
            _ => "tcp",
        };
        let ports = [(Field::SrcPort, "--sport"), (Field::DstPort, "--dport")];
        let singles: Vec<(&Match, &str)> = ports
            .iter()
            .filter_map(|&(f, flag)| r.get(f).map(|m| (m, flag)))
            .filter(|(m, _)| m.tests.len() == 1)
            .collect();
        let lists: Vec<(&Match, &str)> = ports
            .iter()
            .filter_map(|&(f, flag)| r.get(f).map(|m| (m, flag)))
            .filter(|(m, _)| m.tests.len() > 1)
            .collect();
        let flags = r.get(Field::TcpFlags);
        if !singles.is_empty() || flags.is_some() {
            let _ = write!(o, " -m {module}");
            if let Some(m) = flags {
                let (mask, comp) = tcp_flags_of(m)
                    .expect("iptables_restore_text: tcp_flags is not one --tcp-flags MASK COMP");
                let _ = write!(
                    o,
                    " {}--tcp-flags {} {}",
                    bang(m),
                    tcp_flag_names(mask),
                    tcp_flag_names(comp)
                );
            }
            for (m, flag) in singles {
                let (lo, hi) = single(m);
                if (lo, hi) == (0, 65535) && !m.negated {
                    continue;
                }
                let value = if lo == hi {
                    lo.to_string()
                } else {
                    format!("{lo}:{hi}")
                };
                let _ = write!(o, " {}{flag} {value}", bang(m));
            }
        }
        for (m, flag) in lists {
            let n: usize = m
                .bounds()
                .map(|(lo, hi)| if lo == hi { 1 } else { 2 })
                .sum();
            assert!(
                n <= 15,
                "iptables_restore_text: multiport takes 15 ports, not {n}"
            );
            let _ = write!(o, " -m multiport {}{flag}s {}", bang(m), port_list(m));
        }
    }
    if let Some(c) = &r.comment {
        let _ = write!(o, " -m comment --comment {}", save_string(c));
    }
    let name = |c: ChainId| {
        rs.chain(c)
            .map_or_else(|| c.to_string(), |c| c.name.clone())
    };
    let _ = match r.action {
        Action::Accept | Action::Drop => writeln!(
            o,
            " -j {}",
            r.action.verdict().map_or("DROP", Verdict::target)
        ),
        Action::Reject(k) => writeln!(o, " -j REJECT --reject-with {k}"),
        Action::Jump(c) => writeln!(o, " -j {}", name(c)),
        Action::Goto(c) => writeln!(o, " -g {}", name(c)),
        Action::Return => writeln!(o, " -j RETURN"),
        Action::Log(l) => writeln!(
            o,
            "{}",
            rs.log(l)
                .map_or_else(|| " -j LOG".to_string(), crate::listing::log_save)
        ),
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{decode, Decoded, Ports};

    #[test]
    fn ipv6_twins_verify_and_ipv6_frames_have_every_shape() {
        let o = RulesetOpts {
            user_chains: true,
            header_matches: true,
            port_lists: true,
            addr_lists: true,
            ..RulesetOpts::new(8)
        };
        let mut seen = [0usize; 6];
        for (i, rs) in sample_rulesets_with(11, 20, o).iter().enumerate() {
            let six = to_ipv6(rs);
            crate::ir::verify(&six).unwrap_or_else(|e| panic!("{e:?}\n{}", six.dump()));
            assert_eq!(six.family, crate::ir::Family::V6);
            let mut r = runner(i as u64);
            let s = arb_frame_v6(rs, FrameOpts::default());
            for _ in 0..100 {
                let f = s.new_tree(&mut r).unwrap().current();
                let k = match decode(&f) {
                    Decoded::Ipv6(p) if p.frag_offset != 0 => 1,
                    Decoded::Ipv6(p) if p.ports == Ports::Truncated => 2,
                    Decoded::Ipv6(p) if p.proto == 58 => 3,
                    Decoded::Ipv6(_) => 0,
                    Decoded::MalformedIpv6(_) => 4,
                    Decoded::ExtHeaderBound => 5,
                    _ => continue,
                };
                seen[k] += 1;
            }
        }
        assert!(seen.iter().all(|&n| n > 0), "{seen:?}");
        assert!(seen[0] > 4 * seen[4], "{seen:?}");
    }

    #[test]
    fn ruleset_samples_verify_and_are_deterministic() {
        let a = sample_rulesets(7, 30, 12);
        assert_eq!(a.len(), 30);
        assert_eq!(a, sample_rulesets(7, 30, 12));
        assert_ne!(a, sample_rulesets(8, 30, 12));
        for rs in &a {
            crate::ir::verify(rs).unwrap();
        }
        assert!(a.iter().any(|rs| rs.rules().any(|r| r.needs_l4())));
        assert!(a
            .iter()
            .any(|rs| rs.rules().any(|r| r.matches.iter().any(|m| m.negated))));
    }

    #[test]
    fn ruleset_with_lists_and_user_chains_verify() {
        let o = RulesetOpts {
            port_lists: true,
            addr_lists: true,
            user_chains: true,
            header_matches: true,
            ..RulesetOpts::new(8)
        };
        let a = sample_rulesets_with(5, 60, o);
        assert_eq!(a, sample_rulesets_with(5, 60, o));
        for rs in &a {
            crate::ir::verify(rs).unwrap();
        }
        let actions: Vec<Action> = a
            .iter()
            .flat_map(|rs| rs.rules().map(|r| r.action))
            .collect();
        assert!(actions.iter().any(|x| matches!(x, Action::Jump(_))));
        assert!(actions.iter().any(|x| matches!(x, Action::Goto(_))));
        assert!(actions.contains(&Action::Return));
        let lists = |f: Field| {
            a.iter().any(|rs| {
                rs.rules()
                    .any(|r| r.get(f).is_some_and(|m| m.tests.len() > 1))
            })
        };
        assert!(lists(Field::DstPort) && lists(Field::SrcIp) && lists(Field::Proto));
        // Every header match is generated, negated or not.
        for f in [
            Field::Length,
            Field::TcpFlags,
            Field::Ttl,
            Field::Fragment,
            Field::IcmpType,
        ] {
            for neg in [false, true] {
                assert!(
                    a.iter().any(|rs| rs
                        .rules()
                        .any(|r| r.get(f).is_some_and(|m| m.negated == neg))),
                    "{f} negated={neg} never generated"
                );
            }
        }
        // `-m iprange`, negated or not.
        for neg in [false, true] {
            assert!(a.iter().any(|rs| rs.rules().any(|r| {
                r.get(Field::SrcIp).is_some_and(|m| {
                    m.negated == neg && matches!(m.tests[..], [Test::Range { .. }])
                })
            })));
        }
        // Without the options: INPUT only, single tests.
        for rs in sample_rulesets_with(5, 30, RulesetOpts::new(8)) {
            assert_eq!(rs.chains.len(), 1);
            assert!(rs
                .rules()
                .all(|r| r.action.verdict().is_some()
                    && r.matches.iter().all(|m| m.tests.len() == 1)));
        }
    }

    #[test]
    fn rulesets_with_hooks_and_ifaces_verify_and_print() {
        let o = RulesetOpts {
            user_chains: true,
            port_lists: true,
            hooks: true,
            ifaces: true,
            ..RulesetOpts::new(6)
        };
        let a = sample_rulesets_with(9, 60, o);
        assert_eq!(a, sample_rulesets_with(9, 60, o));
        let (mut iif, mut oif, mut user_jumps_from) = (0, 0, [false; 3]);
        for rs in &a {
            crate::ir::verify(rs).unwrap();
            for h in Hook::ALL {
                let c = rs.hook_chain(h).expect("every built-in chain");
                for r in &c.rules {
                    for m in &r.matches {
                        if matches!(m.field, Field::InIface | Field::OutIface) {
                            assert!(h.has_iface(m.field), "{h:?} tests {}", m.field);
                        }
                    }
                    if matches!(r.action, Action::Jump(_) | Action::Goto(_)) {
                        user_jumps_from[h as usize] = true;
                    }
                }
            }
            iif += rs
                .rules()
                .filter(|r| r.get(Field::InIface).is_some())
                .count();
            oif += rs
                .rules()
                .filter(|r| r.get(Field::OutIface).is_some())
                .count();
            let text = iptables_restore_text(rs);
            assert!(text.contains(":FORWARD ") && text.contains(":OUTPUT "));
        }
        assert!(iif > 0 && oif > 0 && user_jumps_from.iter().all(|&b| b));
    }

    #[test]
    fn restore_text_spells_multiport_and_user_chains() {
        let sp = Span::default;
        let rule = |i: u32, chain: u32, pos: u32, matches, action| Rule {
            id: RuleId(i),
            chain: ChainId(chain),
            position: pos,
            matches,
            action,
            comment: None,
            counters: None,
            span: sp(),
        };
        let tcp = Match::single(Field::Proto, Test::Exact(6), false, sp());
        let ports = Match {
            field: Field::DstPort,
            tests: vec![
                Test::Exact(80),
                Test::Exact(443),
                Test::Range { lo: 1000, hi: 2000 },
            ],
            negated: false,
            set: None,
            span: sp(),
        };
        let sports = Match {
            field: Field::SrcPort,
            tests: vec![Test::Exact(1), Test::Range { lo: 5, hi: 6 }],
            negated: true,
            set: None,
            span: sp(),
        };
        let rs = Ruleset {
            family: Default::default(),
            chains: vec![
                Chain {
                    id: ChainId(0),
                    name: "INPUT".into(),
                    hook: Some(Hook::Input),
                    policy: Some(Verdict::Drop),
                    rules: vec![
                        rule(
                            0,
                            0,
                            1,
                            vec![tcp.clone(), ports.clone()],
                            Action::Jump(ChainId(1)),
                        ),
                        rule(1, 0, 2, vec![], Action::Goto(ChainId(2))),
                    ],
                    span: sp(),
                },
                Chain {
                    id: ChainId(1),
                    name: "web".into(),
                    hook: None,
                    policy: None,
                    rules: vec![
                        rule(
                            2,
                            1,
                            1,
                            vec![
                                tcp.clone(),
                                sports,
                                Match::single(Field::DstPort, Test::Exact(80), false, sp()),
                            ],
                            Action::Return,
                        ),
                        rule(3, 1, 2, vec![], Action::Accept),
                    ],
                    span: sp(),
                },
                Chain {
                    id: ChainId(2),
                    name: "admin".into(),
                    hook: None,
                    policy: None,
                    rules: vec![],
                    span: sp(),
                },
            ],
            sets: vec![],
            logs: Vec::new(),
        };
        crate::ir::verify(&rs).unwrap();
        assert_eq!(
            iptables_restore_text(&rs),
            "*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
             :admin - [0:0]\n:web - [0:0]\n\
             -A INPUT -p tcp -m multiport --dports 80,443,1000:2000 -j web\n\
             -A INPUT -g admin\n\
             -A web -p tcp -m tcp --dport 80 -m multiport ! --sports 1,5:6 -j RETURN\n\
             -A web -j ACCEPT\nCOMMIT\n"
        );
    }

    #[test]
    fn frames_oracle_safe_are_plain_ipv4_without_martians() {
        let rs = &sample_rulesets(1, 1, 10)[0];
        let opts = FrameOpts {
            oracle_safe: true,
            ..FrameOpts::default()
        };
        let frames = sample_frames(rs, 3, 400, &opts);
        assert_eq!(frames, sample_frames(rs, 3, 400, &opts));
        let mut truncated = 0;
        for f in &frames {
            let Decoded::Ipv4(p) = decode(f) else {
                panic!("not plain ipv4: {f:?}")
            };
            assert!(
                !is_martian(p.src as u32) && !is_martian(p.dst as u32),
                "{p}"
            );
            assert_eq!(p.frag_offset, 0);
            assert_eq!(f[ETH_HLEN] & 0x0f, 5);
            truncated += (p.ports == Ports::Truncated) as usize;
        }
        assert!(truncated > 0);
    }

    #[test]
    fn frames_unsafe_cover_every_decoding() {
        let rs = &sample_rulesets(2, 1, 10)[0];
        let frames = sample_frames(rs, 4, 600, &FrameOpts::default());
        let d: Vec<Decoded> = frames.iter().map(|f| decode(f)).collect();
        assert!(d.iter().any(|d| matches!(d, Decoded::NotIpv4)));
        assert!(d.iter().any(|d| matches!(d, Decoded::Malformed(_))));
        assert!(d.iter().any(|d| matches!(d, Decoded::Bound(_))));
        assert!(frames.iter().zip(&d).any(|(f, d)| {
            matches!(d, Decoded::Ipv4(_))
                && crate::packet::is_vlan_tpid(u16::from_be_bytes([f[12], f[13]]))
        }));
        assert!(d
            .iter()
            .any(|d| matches!(d, Decoded::Ipv4(p) if p.frag_offset != 0)));
        assert!(d
            .iter()
            .any(|d| matches!(d, Decoded::Ipv4(p) if matches!(p.ports, Ports::Present { .. }))));
    }

    #[test]
    fn comment_save_string_quotes_like_xtables() {
        assert_eq!(save_string("ssh"), "ssh");
        assert_eq!(save_string("a-b_c9"), "a-b_c9");
        assert_eq!(save_string("known scanner"), "\"known scanner\"");
        assert_eq!(save_string("it's \"x\""), "\"it\\'s \\\"x\\\"\"");
        assert_eq!(save_string(""), "\"\"");
    }

    #[test]
    fn restore_text_spells_rules_like_iptables_save() {
        let sp = Span::default;
        let m = |field, test, negated| Match::single(field, test, negated, sp());
        let rule = |i: u32, matches, action, comment: Option<&str>| Rule {
            id: RuleId(i),
            chain: ChainId(0),
            position: i + 1,
            matches,
            action,
            comment: comment.map(str::to_string),
            counters: None,
            span: sp(),
        };
        let rs = Ruleset {
            family: Default::default(),
            chains: vec![Chain {
                id: ChainId(0),
                name: "INPUT".into(),
                hook: Some(Hook::Input),
                policy: Some(Verdict::Drop),
                rules: vec![
                    rule(
                        0,
                        vec![
                            m(
                                Field::SrcIp,
                                Test::Prefix {
                                    addr: 0x0a00_0000,
                                    len: 8,
                                },
                                false,
                            ),
                            m(
                                Field::DstIp,
                                Test::Prefix {
                                    addr: 0x0102_0304,
                                    len: 32,
                                },
                                true,
                            ),
                            m(Field::Proto, Test::Exact(6), false),
                            m(Field::SrcPort, Test::Range { lo: 1, hi: 1023 }, true),
                            m(Field::DstPort, Test::Exact(80), false),
                        ],
                        Action::Accept,
                        Some("web in"),
                    ),
                    rule(
                        1,
                        vec![
                            m(Field::Proto, Test::Exact(17), false),
                            m(Field::DstPort, Test::Range { lo: 0, hi: 65535 }, false),
                        ],
                        Action::Drop,
                        None,
                    ),
                    rule(
                        2,
                        vec![m(Field::Proto, Test::Exact(1), true)],
                        Action::Drop,
                        Some("x"),
                    ),
                ],
                span: sp(),
            }],
            sets: vec![],
            logs: Vec::new(),
        };
        crate::ir::verify(&rs).unwrap();
        assert_eq!(
            iptables_restore_text(&rs),
            "*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
             -A INPUT -s 10.0.0.0/8 ! -d 1.2.3.4/32 -p tcp -m tcp ! --sport 1:1023 --dport 80 \
             -m comment --comment \"web in\" -j ACCEPT\n\
             -A INPUT -p udp -m udp -j DROP\n\
             -A INPUT ! -p icmp -m comment --comment x -j DROP\nCOMMIT\n"
        );
    }
}

/// The /96 prefix [`to_ipv6`] and [`arb_frame_v6`] put the generated IPv4 addresses under
/// (`2001:db8::/96`, the documentation prefix): an IPv4 prefix `/l` becomes `/96+l` there.
pub const V6_BASE: u128 = 0x2001_0db8_u128 << 96;

/// `a` (an IPv4 address, zero-extended) under [`V6_BASE`].
fn v6_of(a: u128) -> u128 {
    V6_BASE | (a & 0xffff_ffff)
}

/// ICMP is protocol 1 in IPv4 and 58 in IPv6: [`to_ipv6`] and [`arb_frame_v6`] swap the two.
fn swap_icmp(p: u32) -> u32 {
    match p {
        1 => 58,
        58 => 1,
        p => p,
    }
}

fn test_to_v6(t: &Test, addr: bool) -> Test {
    match *t {
        Test::Prefix { addr: a, len } if addr => Test::Prefix {
            addr: v6_of(a),
            len: len + 96,
        },
        Test::Exact(v) if !addr => Test::Exact(swap_icmp(v)),
        ref t => t.clone(),
    }
}

/// The IPv6 (ip6tables) twin of a generated IPv4 ruleset: family IPv6, `src_ip`/`dst_ip` become
/// `src_ip6`/`dst_ip6` with every prefix moved under [`V6_BASE`], exact protocols 1 and 58 swapped
/// (so `-p icmp -m icmp` becomes `-p ipv6-icmp -m icmp6`), sets likewise. Passes
/// [`crate::ir::verify`] when `rs` does (prefix tests only on addresses: what the generators make).
pub fn to_ipv6(rs: &Ruleset) -> Ruleset {
    let mut out = rs.clone();
    out.family = crate::ir::Family::V6;
    for c in &mut out.chains {
        for r in &mut c.rules {
            for m in &mut r.matches {
                let addr = matches!(m.field, Field::SrcIp | Field::DstIp);
                let proto = m.field == Field::Proto;
                if addr || proto {
                    m.tests = m.tests.iter().map(|t| test_to_v6(t, addr)).collect();
                }
                m.field = match m.field {
                    Field::SrcIp => Field::SrcIp6,
                    Field::DstIp => Field::DstIp6,
                    f => f,
                };
            }
            // ip6tables rulesets have no conntrack state yet (the front ends refuse it).
            r.matches.retain(|m| m.field != Field::CtState);
            r.matches.sort_by_key(|m| m.field);
            if let Action::Reject(k) = r.action {
                r.action = Action::Reject(reject_to_v6(k));
            }
        }
    }
    for s in &mut out.sets {
        let addr = s.field_kind == crate::ir::SetKind::Addr;
        s.elements = s.elements.iter().map(|t| test_to_v6(t, addr)).collect();
    }
    out
}

/// How [`arb_frame_v6`] departs from a well-formed IPv6 packet.
#[derive(Clone, Copy, Debug)]
enum Shape6 {
    Plain,
    /// Version nibble 4 under EtherType IPv6.
    Version,
    /// Payload length beyond the frame.
    LongPayload,
    /// Cut inside the fixed header.
    Short(usize),
    /// A destination options header whose 2 first bytes lie past the payload.
    ExtCut,
}

/// IPv6 frames for [`to_ipv6`]`(rs4)`: each an [`arb_frame`] of `rs4` (so biased to the same
/// boundaries, VLAN tags kept) rebuilt as IPv6 — addresses under [`V6_BASE`], ICMP as ICMPv6, the
/// TTL as hop limit, the IPv4 payload as the upper-layer bytes — behind 0..=9 extension headers
/// (hop-by-hop, destination options, routing, AH: one more than `MAX_EXT_HEADERS` sometimes), a
/// fragment header for an IPv4 fragment (its offset, mostly last in the chain) or sometimes an offset-0
/// one; sometimes malformed (version, payload length, cut header, extension header cut short).
/// Frames [`arb_frame`] makes that are not IPv4 packets are left as they are.
pub fn arb_frame_v6(rs4: &Ruleset, opts: FrameOpts) -> impl Strategy<Value = Vec<u8>> {
    use crate::packet::{NEXTHDR_AUTH, NEXTHDR_DEST, NEXTHDR_HOP, NEXTHDR_ROUTING};
    let ext = prop::sample::select(vec![
        NEXTHDR_HOP,
        NEXTHDR_DEST,
        NEXTHDR_ROUTING,
        NEXTHDR_AUTH,
    ]);
    let exts = prop_oneof![
        6 => Just(Vec::new()),
        4 => prop::collection::vec(ext.clone(), 1..=3),
        1 => prop::collection::vec(ext, 7..=9),
    ];
    let shape = if opts.oracle_safe {
        Just(Shape6::Plain).boxed()
    } else {
        prop_oneof![
            40 => Just(Shape6::Plain),
            1 => Just(Shape6::Version),
            1 => Just(Shape6::LongPayload),
            1 => (0usize..40).prop_map(Shape6::Short),
            1 => Just(Shape6::ExtCut),
        ]
        .boxed()
    };
    (
        arb_frame(rs4, opts),
        exts,
        any::<prop::sample::Index>(),
        prop::bool::weighted(0.15),
        shape,
    )
        .prop_map(|(f, exts, at, first_frag, shape)| frame_to_v6(&f, &exts, at, first_frag, shape))
}

/// [`arb_frame_v6`]'s rebuilding of one IPv4 frame.
fn frame_to_v6(
    f: &[u8],
    exts: &[u8],
    at: prop::sample::Index,
    first_frag: bool,
    shape: Shape6,
) -> Vec<u8> {
    use crate::packet::{
        build_frame_v6, decode, ipv6_ext_header, network_header, Decoded, ETHERTYPE_IPV6,
        IPV6_HLEN, NEXTHDR_DEST, NEXTHDR_FRAGMENT,
    };
    let (Decoded::Ipv4(p), Ok((_, l3))) = (decode(f), network_header(f)) else {
        return f.to_vec();
    };
    let ihl = (f[l3] & 0x0f) as usize * 4;
    let tot = p.ip_len as usize;
    let l4 = &f[l3 + ihl..l3 + tot];
    let padding = f.len() - (l3 + tot);
    let proto = swap_icmp(p.proto.into()) as u8;
    // The chain: `exts`, with a fragment header inserted for a fragment (or an offset-0 one).
    let mut kinds: Vec<(u8, u16)> = exts.iter().map(|&k| (k, 0)).collect();
    if p.frag_offset != 0 || first_frag {
        // Usually last (a later fragment followed by another extension header is malformed).
        let n = kinds.len();
        let i = at.index(4 * (n + 1));
        kinds.insert(
            if i <= n { i } else { n },
            (NEXTHDR_FRAGMENT, p.frag_offset),
        );
    }
    let mut payload = Vec::new();
    for (i, &(k, off)) in kinds.iter().enumerate() {
        let next = kinds.get(i + 1).map_or(proto, |e| e.0);
        payload.extend(ipv6_ext_header(k, next, off, off == 0));
    }
    payload.extend_from_slice(l4);
    let first = kinds.first().map_or(proto, |e| e.0);
    let mut v6 = build_frame_v6(
        [0; 6],
        [0; 6],
        std::net::Ipv6Addr::from(v6_of(p.src)),
        std::net::Ipv6Addr::from(v6_of(p.dst)),
        first,
        &payload,
    );
    // The original's Ethernet header and VLAN tags; its padding.
    v6.splice(..ETH_HLEN, f[..l3].iter().copied());
    v6[l3 - 2..l3].copy_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
    v6[l3 + 7] = p.ttl;
    v6.resize(v6.len() + padding, 0);
    match shape {
        Shape6::Plain => {}
        Shape6::Version => v6[l3] = 0x40,
        Shape6::LongPayload => {
            let len = (v6.len() - l3 - IPV6_HLEN + 1) as u16;
            v6[l3 + 4..l3 + 6].copy_from_slice(&len.to_be_bytes());
        }
        Shape6::Short(n) => v6.truncate(l3 + n),
        Shape6::ExtCut => {
            v6.truncate(l3 + IPV6_HLEN + 1);
            v6[l3 + 4..l3 + 6].copy_from_slice(&1u16.to_be_bytes());
            v6[l3 + 6] = NEXTHDR_DEST;
            v6.resize(v6.len() + padding, 0);
        }
    }
    v6
}
