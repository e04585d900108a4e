use super::*;
use crate::diag::{SourceFile, Span};
use crate::interp::{self, Decided, Meta};
use crate::ir::Family;
use crate::ir::{ChainId, Hook, Verdict};
use crate::lower;
use crate::packet::{Decoded, IpPacket, Ports};
use proptest::prelude::*;

fn ruleset(rules: &[&str]) -> Ruleset {
    let text = format!(
        "*filter\n:INPUT DROP [0:0]\n{}\nCOMMIT\n",
        rules
            .iter()
            .map(|r| format!("-A INPUT {r}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    lower::iptables(&SourceFile::new("t.rules", text))
        .unwrap_or_else(|d| panic!("{d:?}"))
        .ruleset
}

/// (position, why) of each finding, positions 1-based.
fn findings(rules: &[&str]) -> Vec<(u32, Why)> {
    let rs = ruleset(rules);
    analyze(&rs)
        .into_iter()
        .map(|f| (rs.rule(f.rule).unwrap().position, f.why))
        .collect()
}

fn covered(by: u32) -> Why {
    Why::CoveredBy(RuleId(by - 1))
}

#[test]
fn set_subtract_splits_and_trims() {
    let a = Set::from_intervals(vec![(0, 10), (20, 30)]);
    assert_eq!(a.subtract(&Set::range(5, 25)), Set(vec![(0, 4), (26, 30)]));
    assert_eq!(a.subtract(&Set::range(0, 30)), Set::default());
    assert_eq!(a.subtract(&Set::range(11, 19)), a);
    assert_eq!(
        Set::range(0, 100).subtract(&Set::from_intervals(vec![(10, 20), (30, 40)])),
        Set(vec![(0, 9), (21, 29), (41, 100)])
    );
    assert_eq!(
        Set::range(0, u32::MAX.into()).subtract(&Set::range(0, u32::MAX.into())),
        Set::default()
    );
}

#[test]
fn set_from_intervals_merges_adjacent() {
    assert_eq!(
        Set::from_intervals(vec![(5, 9), (0, 4), (20, 21), (3, 6)]),
        Set(vec![(0, 9), (20, 21)])
    );
    assert!(Set::range(0, 4).intersects(&Set::range(4, 8)));
    assert!(!Set::range(0, 3).intersects(&Set::range(4, 8)));
    assert_eq!(
        Set::range(0, 10).intersect(&Set::from_intervals(vec![(2, 3), (9, 12)])),
        Set(vec![(2, 3), (9, 10)])
    );
}

#[test]
fn rule_identical_earlier_rule_is_redundant() {
    assert_eq!(
        findings(&["-s 10.0.0.0/8 -j DROP", "-s 10.0.0.0/8 -j DROP"]),
        [(2, covered(1))]
    );
}

#[test]
fn rule_broader_earlier_rule_shadows_narrower() {
    assert_eq!(
        findings(&[
            "-s 10.0.0.0/8 -j DROP",
            "-s 10.1.2.0/24 -p tcp --dport 22 -j ACCEPT"
        ]),
        [(2, covered(1))]
    );
    // The other way round nothing is shadowed.
    assert_eq!(
        findings(&[
            "-s 10.1.2.0/24 -p tcp --dport 22 -j ACCEPT",
            "-s 10.0.0.0/8 -j DROP"
        ]),
        []
    );
}

#[test]
fn rule_partial_overlap_is_not_shadowed() {
    assert_eq!(
        findings(&[
            "-s 10.0.0.0/8 -p tcp --dport 20:30 -j DROP",
            "-s 10.0.0.0/8 -p tcp --dport 25:35 -j ACCEPT",
            "-d 10.0.0.0/8 -s 10.0.0.0/8 -j ACCEPT",
        ]),
        []
    );
}

#[test]
fn dst_port_full_range_does_not_cover_rule_without_ports() {
    // `-p tcp` also matches non-first fragments (no ports); `-p tcp -m tcp` does not.
    assert_eq!(findings(&["-p tcp -m tcp -j DROP", "-p tcp -j ACCEPT"]), []);
    assert_eq!(
        findings(&["-p tcp -m tcp --dport 0:65535 -j DROP", "-p tcp -j ACCEPT"]),
        []
    );
    // Negated ports never match packets without ports either.
    assert_eq!(
        findings(&["-p tcp ! --dport 22 -j DROP", "-p tcp --sport 1 -j ACCEPT"]),
        []
    );
    // The other way round: a rule without ports covers one with ports.
    assert_eq!(
        findings(&["-p tcp -j DROP", "-p tcp -m tcp --dport 22 -j ACCEPT"]),
        [(2, covered(1))]
    );
    assert_eq!(
        findings(&[
            "-p tcp -m tcp -j DROP",
            "-p tcp -m tcp --sport 22 -j ACCEPT"
        ]),
        [(2, covered(1))]
    );
}

#[test]
fn src_ip_negation_is_complement() {
    assert_eq!(
        findings(&["! -s 10.0.0.0/8 -j DROP", "-s 192.168.0.0/16 -j ACCEPT"]),
        [(2, covered(1))]
    );
    assert_eq!(
        findings(&["! -s 10.0.0.0/8 -j DROP", "-s 10.1.0.0/16 -j ACCEPT"]),
        []
    );
    // ! /8 covers ! /16 inside it (the complement of the smaller set is larger): no; the reverse yes.
    assert_eq!(
        findings(&["! -s 10.0.0.0/8 -j DROP", "! -s 10.1.0.0/16 -j ACCEPT"]),
        []
    );
    assert_eq!(
        findings(&["! -s 10.1.0.0/16 -j DROP", "! -s 10.0.0.0/8 -j ACCEPT"]),
        [(2, covered(1))]
    );
}

#[test]
fn proto_negation_covers_other_protocols() {
    assert_eq!(
        findings(&["! -p udp -j DROP", "-p tcp --dport 22 -j ACCEPT"]),
        [(2, covered(1))]
    );
    assert_eq!(findings(&["! -p udp -j DROP", "-p udp -j ACCEPT"]), []);
}

#[test]
fn dst_port_negation_covers_disjoint_ports() {
    assert_eq!(
        findings(&["-p tcp ! --dport 22 -j DROP", "-p tcp --dport 80 -j ACCEPT"]),
        [(2, covered(1))]
    );
    assert_eq!(
        findings(&[
            "-p tcp ! --dport 20:30 -j DROP",
            "-p tcp --dport 25 -j ACCEPT"
        ]),
        []
    );
    // Same port on another protocol is not covered.
    assert_eq!(
        findings(&["-p tcp --dport 53 -j DROP", "-p udp --dport 53 -j ACCEPT"]),
        []
    );
}

#[test]
fn src_ip_union_of_earlier_rules_is_redundant() {
    assert_eq!(
        findings(&[
            "-s 10.0.0.0/9 -j DROP",
            "-s 10.128.0.0/9 -j DROP",
            "-s 10.0.0.0/8 -j DROP"
        ]),
        [(3, Why::CoveredByUnion(vec![RuleId(0), RuleId(1)]))]
    );
    // A gap of one address is found.
    assert_eq!(
        findings(&[
            "-s 10.0.0.0/9 -j DROP",
            "-s 10.128.0.0/10 -j DROP",
            "-s 10.192.0.0/11 -j DROP",
            "-s 10.224.0.0/12 -j DROP",
            "-s 10.240.0.0/13 -j DROP",
            "-s 10.248.0.0/14 -j DROP",
            "-s 10.252.0.0/15 -j DROP",
            "-s 10.254.0.0/16 -j DROP",
            "-s 10.255.0.0/17 -j DROP",
            "-s 10.255.128.0/18 -j DROP",
            "-s 10.255.192.0/19 -j DROP",
            "-s 10.255.224.0/20 -j DROP",
            "-s 10.255.240.0/21 -j DROP",
            "-s 10.255.248.0/22 -j DROP",
            "-s 10.255.252.0/23 -j DROP",
            "-s 10.255.254.0/24 -j DROP",
            "-s 10.255.255.0/25 -j DROP",
            "-s 10.255.255.128/26 -j DROP",
            "-s 10.255.255.192/27 -j DROP",
            "-s 10.255.255.224/28 -j DROP",
            "-s 10.255.255.240/29 -j DROP",
            "-s 10.255.255.248/30 -j DROP",
            "-s 10.255.255.252/31 -j DROP",
            "-s 10.255.255.254/32 -j DROP",
            "-s 10.0.0.0/8 -j ACCEPT"
        ]),
        []
    );
}

#[test]
fn dst_port_union_over_two_fields_covers() {
    // Union across two dimensions: tcp and udp halves, each with port halves.
    let f = findings(&[
        "-p tcp --dport 0:1000 -j DROP",
        "-p tcp --dport 1001:65535 -j ACCEPT",
        "-p tcp --dport 22 -s 10.0.0.0/8 -j ACCEPT",
        "-p tcp -m tcp -j DROP",
        "-p tcp -j DROP",
    ]);
    assert_eq!(
        f,
        [
            (3, covered(1)),
            (4, Why::CoveredByUnion(vec![RuleId(0), RuleId(1)]))
        ]
    );
}

#[test]
fn rule_empty_match_never_matches() {
    assert_eq!(
        findings(&["! -s 0.0.0.0/0 -j DROP", "-j ACCEPT"]),
        [(1, Why::Empty(Field::SrcIp))]
    );
    assert_eq!(
        findings(&["-p tcp ! --dport 0:65535 -j DROP"]),
        [(1, Why::Empty(Field::DstPort))]
    );
}

#[test]
fn check_locates_warning_at_shadowed_rule_with_note() {
    let text = "*filter\n:INPUT DROP [0:0]\n-A INPUT -s 10.0.0.0/8 -j DROP\n-A INPUT -s 10.1.0.0/16 -j ACCEPT\nCOMMIT\n";
    let src = SourceFile::new("t.rules", text);
    let rs = lower::iptables(&src).unwrap().ruleset;
    let d = check(&rs);
    assert_eq!(d.len(), 2);
    assert_eq!(d[0].code, "W0101");
    assert_eq!(src.line_col(d[0].span.unwrap().start as usize).0, 4);
    assert_eq!(
        d[0].message,
        "rule #2 in INPUT can never match: rule #1 (action `drop`) before it already matches all its packets"
    );
    assert_eq!(d[1].code, "N0101");
    assert_eq!(src.line_col(d[1].span.unwrap().start as usize).0, 3);
}

// ---- property: a flagged rule never decides a packet ------------------------------------------------

const ADDRS: [(u32, u8); 8] = [
    (0x0a00_0000, 8),
    (0x0a01_0000, 16),
    (0x0a01_0200, 24),
    (0x0a01_0203, 32),
    (0x0a80_0000, 9),
    (0x0a00_0000, 9),
    (0xc0a8_0000, 16),
    (0, 0),
];
const PORTS: [(u32, u32); 6] = [
    (22, 22),
    (0, 1023),
    (1024, 65535),
    (80, 80),
    (0, 65535),
    (20, 30),
];

const IFACES: [(&str, bool); 6] = [
    ("eth0", false),
    ("eth", true),
    ("eth1", false),
    ("lo", false),
    ("", true),
    ("eth0", true),
];

fn arb_test(field: Field) -> BoxedStrategy<Test> {
    match field {
        Field::SrcIp | Field::DstIp => prop::sample::select(ADDRS.to_vec())
            .prop_map(|(addr, len)| Test::Prefix {
                addr: addr.into(),
                len,
            })
            .boxed(),
        Field::Proto => prop::sample::select(vec![6u32, 17, 1])
            .prop_map(Test::Exact)
            .boxed(),
        Field::SrcPort | Field::DstPort => prop::sample::select(PORTS.to_vec())
            .prop_map(|(lo, hi)| Test::Range { lo, hi })
            .boxed(),
        Field::InIface | Field::OutIface => prop::sample::select(IFACES.to_vec())
            .prop_map(|(name, wildcard)| Test::Iface {
                name: name.to_string(),
                wildcard,
            })
            .boxed(),
        // Plain numeric header fields: the port ranges, clipped to the field's width.
        Field::Length
        | Field::TcpFlags
        | Field::Ttl
        | Field::Fragment
        | Field::IcmpType
        | Field::CtState => {
            let max = field.max_value() as u32;
            prop::sample::select(PORTS.to_vec())
                .prop_map(move |(lo, hi)| Test::Range {
                    lo: lo.min(max),
                    hi: hi.min(max),
                })
                .boxed()
        }
        // IPv4 rulesets only: the IPv6 addresses are never generated here.
        Field::SrcIp6 | Field::DstIp6 => unreachable!("IPv4 rulesets"),
    }
}

fn arb_match(field: Field) -> impl Strategy<Value = Match> {
    (
        prop::collection::vec(arb_test(field), 1..3),
        prop::bool::weighted(0.25),
    )
        .prop_map(move |(mut tests, negated)| {
            tests.sort();
            tests.dedup();
            Match {
                field,
                tests,
                negated,
                set: None,
                span: Span::default(),
            }
        })
}

fn l4_proto(p: &Match) -> bool {
    p.field == Field::Proto
        && !p.negated
        && p.tests.iter().all(|t| matches!(t, Test::Exact(6 | 17)))
}

/// Matches sorted by field, transport matches only with a non-negated proto 6/17.
fn arb_body() -> impl Strategy<Value = (Vec<Match>, Action)> {
    (
        prop::option::weighted(0.5, arb_match(Field::SrcIp)),
        prop::option::weighted(0.3, arb_match(Field::DstIp)),
        prop::option::weighted(0.6, arb_match(Field::Proto)),
        prop::option::weighted(0.4, arb_match(Field::SrcPort)),
        prop::option::weighted(0.6, arb_match(Field::DstPort)),
        prop::option::weighted(0.3, arb_match(Field::InIface)),
        0u8..7,
    )
        .prop_map(|(s, d, p, sp, dp, ifc, action)| {
            let mut m: Vec<Match> = [s, d].into_iter().flatten().collect();
            if let Some(p) = p {
                let l4 = l4_proto(&p);
                m.push(p);
                if l4 {
                    m.extend([sp, dp].into_iter().flatten());
                }
            }
            m.extend(ifc);
            m.sort_by_key(|x| x.field);
            let action = match action {
                0 | 1 => Action::Accept,
                2 | 3 => Action::Drop,
                4 => Action::Return,
                5 => Action::Jump(ChainId(1)),
                _ => Action::Goto(ChainId(1)),
            };
            (m, action)
        })
}

/// One chain's rules, many of them narrowed copies of earlier ones (so that covers are common); ids
/// and positions local to the chain.
fn arb_chain_rules(chain: ChainId) -> impl Strategy<Value = Vec<Rule>> {
    prop::collection::vec((arb_body(), any::<prop::sample::Index>(), 0u8..4), 1..12).prop_map(
        move |specs| {
            let mut rules: Vec<Rule> = Vec::new();
            for (i, ((fresh, mut action), pick, how)) in specs.into_iter().enumerate() {
                if chain != ChainId(0) && action.target().is_some() {
                    action = Action::Accept; // no jump from the user chain to itself
                }
                let matches = if how == 0 || rules.is_empty() {
                    fresh
                } else if how == 1 {
                    // A copy without its port tests (broader: it also matches packets without
                    // ports), or with `dst_port 0-65535` instead (`-p tcp -m tcp`).
                    let base = &rules[pick.index(rules.len())];
                    let mut m: Vec<Match> = base
                        .matches
                        .iter()
                        .filter(|x| !x.field.info().transport)
                        .cloned()
                        .collect();
                    if pick.index(2) == 0 && m.iter().any(l4_proto) {
                        m.push(Match::single(
                            Field::DstPort,
                            Test::Range { lo: 0, hi: 65535 },
                            false,
                            Span::default(),
                        ));
                    }
                    m.sort_by_key(|x| x.field);
                    m
                } else {
                    // Copy an earlier rule and, field by field, take the fresh rule's match when it
                    // lies inside the earlier one (or the earlier has none).
                    let base = &rules[pick.index(rules.len())];
                    let mut m = base.matches.clone();
                    for f in fresh {
                        let inside = match base.get(f.field) {
                            None => true,
                            Some(b) => match_set(&f).is_subset(&match_set(b)),
                        };
                        let l4_ok = !f.field.info().transport || base.matches.iter().any(l4_proto);
                        if inside && l4_ok && f.field != Field::Proto {
                            m.retain(|x| x.field != f.field);
                            m.push(f);
                        }
                    }
                    m.sort_by_key(|x| x.field);
                    m
                };
                rules.push(Rule {
                    id: RuleId(i as u32),
                    chain,
                    position: i as u32 + 1,
                    matches,
                    action,
                    comment: None,
                    counters: None,
                    span: Span::default(),
                });
            }
            rules
        },
    )
}

/// INPUT (which may jump or go to `web`) and the user chain `web`; rule ids numbered across both.
fn arb_rules() -> impl Strategy<Value = Ruleset> {
    (arb_chain_rules(ChainId(0)), arb_chain_rules(ChainId(1))).prop_map(|(input, mut web)| {
        for (k, r) in web.iter_mut().enumerate() {
            r.id = RuleId((input.len() + k) as u32);
        }
        let chain = |id, name: &str, hook, policy, rules| Chain {
            id: ChainId(id),
            name: name.into(),
            hook,
            policy,
            rules,
            span: Span::default(),
        };
        Ruleset {
            family: Default::default(),
            chains: vec![
                chain(0, "INPUT", Some(Hook::Input), Some(Verdict::Drop), input),
                chain(1, "web", None, None, web),
            ],
            sets: Vec::new(),
            logs: Vec::new(),
        }
    })
}

/// Values near every interval end of the ruleset's sets, plus random ones.
fn boundary_values(rs: &Ruleset, field: Field) -> Vec<u32> {
    let max = field.max_value();
    let mut v = vec![0, max as u32];
    for r in rs.rules() {
        if let Some(m) = r.get(field) {
            for &(lo, hi) in &match_set(m).0 {
                for x in [lo.wrapping_sub(1), lo, hi, hi + 1] {
                    if x <= max {
                        v.push(x as u32);
                    }
                }
            }
        }
    }
    v
}

fn arb_packets(rs: &Ruleset) -> impl Strategy<Value = Vec<(Option<String>, IpPacket)>> {
    let pick = |field| {
        let b = boundary_values(rs, field);
        let max = field.max_value() as u32;
        prop_oneof![prop::sample::select(b), (0..=max)]
    };
    let pkt = (
        pick(Field::SrcIp),
        pick(Field::DstIp),
        prop_oneof![prop::sample::select(vec![6u32, 17, 1]), 0u32..=255],
        pick(Field::SrcPort),
        pick(Field::DstPort),
        0u8..6,
        prop::option::weighted(
            0.8,
            prop::sample::select(vec!["eth0", "eth1", "eth", "eth0x", "lo", "wlan0"]),
        ),
    )
        .prop_map(|(src, dst, proto, sp, dp, shape, ifc)| {
            (
                ifc.map(String::from),
                IpPacket {
                    family: Family::V4,
                    src: src.into(),
                    dst: dst.into(),
                    proto: proto as u8,
                    ip_len: 60,
                    tcp_flags: 0x02,
                    ttl: 64,
                    icmp: if proto == 1 && shape != 4 {
                        crate::packet::Icmp::Present { kind: 8, code: 0 }
                    } else {
                        crate::packet::Icmp::Absent
                    },
                    frag_offset: if shape == 4 { 100 } else { 0 },
                    ct_state: crate::packet::CtState::ALL[(src as usize) % 5],
                    ports: match shape {
                        4 => Ports::Absent,
                        5 => Ports::Truncated,
                        _ => Ports::Present {
                            src: sp as u16,
                            dst: dp as u16,
                        },
                    },
                },
            )
        });
    prop::collection::vec(pkt, 64)
}

fn decider(d: Decided) -> Option<(RuleId, bool)> {
    match d {
        Decided::Rule { rule, .. } => Some((rule, false)),
        Decided::Hotdrop { rule, .. } => Some((rule, true)),
        _ => None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn rule_flagged_never_decides_a_packet(
        (rs, pkts) in arb_rules().prop_flat_map(|rs| { let p = arb_packets(&rs); (Just(rs), p) })
    ) {
        crate::ir::verify(&rs).unwrap();
        let found = analyze(&rs);
        for (in_iface, p) in pkts {
            let meta = Meta { in_iface, out_iface: None };
            let o = interp::run_with(&rs, Hook::Input, &meta, &Decoded::Ipv4(p));
            if let Some((rule, hotdrop)) = decider(o.decided) {
                for f in found.iter().filter(|f| f.rule == rule) {
                    // An empty port set still hotdrops truncated headers; it never *matches*.
                    let allowed = hotdrop && matches!(f.why, Why::Empty(fl) if fl.info().transport);
                    prop_assert!(allowed, "{:?} decided {p} but was flagged {:?}\n{}", o.decided, f.why, rs.dump());
                }
            }
        }
    }
}

/// The generator does produce every kind of finding (so the property above is not vacuous).
#[test]
fn rule_generator_yields_every_kind_of_finding() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    );
    let (mut single, mut union, mut empty) = (0, 0, 0);
    for _ in 0..400 {
        let rs = arb_rules().new_tree(&mut runner).unwrap().current();
        for f in analyze(&rs) {
            match f.why {
                Why::CoveredBy(_) => single += 1,
                Why::CoveredByUnion(_) => union += 1,
                Why::Empty(_) => empty += 1,
            }
        }
    }
    assert!(
        single > 50 && union > 0 && empty > 0,
        "{single} {union} {empty}"
    );
}

// ---- interfaces and lists, built directly in the IR --------------------------------------------------

fn chain_of(bodies: Vec<(Vec<Match>, Action)>) -> Ruleset {
    let rs = Ruleset::with_chain(Hook::Input, Verdict::Drop, bodies);
    crate::ir::verify(&rs).unwrap();
    rs
}

/// `-i` (negated with a leading `!`), `eth+` wildcards, several names separated by commas.
fn iface(spec: &str) -> Match {
    let (negated, names) = match spec.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, spec),
    };
    Match {
        field: Field::InIface,
        tests: names
            .split(',')
            .map(|n| match n.strip_suffix('+') {
                Some(p) => Test::Iface {
                    name: p.into(),
                    wildcard: true,
                },
                None => Test::Iface {
                    name: n.into(),
                    wildcard: false,
                },
            })
            .collect(),
        negated,
        set: None,
        span: Span::default(),
    }
}

fn iface_findings(specs: &[&str]) -> Vec<(u32, Why)> {
    let rs = chain_of(
        specs
            .iter()
            .map(|s| {
                let m = if s.is_empty() { vec![] } else { vec![iface(s)] };
                (m, Action::Drop)
            })
            .collect(),
    );
    analyze(&rs)
        .into_iter()
        .map(|f| (rs.rule(f.rule).unwrap().position, f.why))
        .collect()
}

#[test]
fn in_iface_wildcard_covers_names_it_starts() {
    assert_eq!(iface_findings(&["eth+", "eth0"]), [(2, covered(1))]);
    assert_eq!(iface_findings(&["eth+", "eth0+"]), [(2, covered(1))]);
    assert_eq!(iface_findings(&["eth+", "eth"]), [(2, covered(1))]);
    assert_eq!(iface_findings(&["eth0", "eth+"]), []);
    assert_eq!(iface_findings(&["eth0+", "eth+"]), []);
    assert_eq!(iface_findings(&["eth0", "eth1", "eth+"]), []);
    assert_eq!(iface_findings(&["eth0", "eth0x"]), []);
}

#[test]
fn in_iface_negation_and_unknown_interface() {
    // `! -i lo` holds for every other name and for packets without a known interface.
    assert_eq!(iface_findings(&["!lo", "eth0"]), [(2, covered(1))]);
    assert_eq!(iface_findings(&["!lo", "lo"]), []);
    assert_eq!(iface_findings(&["!eth0", "!eth+"]), [(2, covered(1))]);
    assert_eq!(iface_findings(&["!eth+", "!eth0"]), []);
    // `-i +` matches every known interface, not packets without one.
    assert_eq!(iface_findings(&["+", ""]), []);
    assert_eq!(
        iface_findings(&["+", "!+", ""]),
        [(3, Why::CoveredByUnion(vec![RuleId(0), RuleId(1)]))]
    );
    assert_eq!(iface_findings(&["eth+", "!eth+", "lo"]), [(3, covered(2))]);
}

#[test]
fn dst_port_list_covers_each_element() {
    let tcp = || Match::single(Field::Proto, Test::Exact(6), false, Span::default());
    let ports = |list: &[(u32, u32)], negated: bool| Match {
        field: Field::DstPort,
        tests: list
            .iter()
            .map(|&(lo, hi)| Test::Range { lo, hi })
            .collect(),
        negated,
        set: None,
        span: Span::default(),
    };
    let rs = chain_of(vec![
        (
            vec![tcp(), ports(&[(80, 80), (443, 443), (8000, 8080)], false)],
            Action::Drop,
        ),
        (
            vec![tcp(), ports(&[(443, 443), (8001, 8002)], false)],
            Action::Accept,
        ),
        (
            vec![tcp(), ports(&[(443, 443), (9000, 9000)], false)],
            Action::Accept,
        ),
        (
            vec![tcp(), ports(&[(22, 22), (80, 80)], true)],
            Action::Accept,
        ),
        (vec![tcp(), ports(&[(1, 10)], false)], Action::Accept),
    ]);
    let got: Vec<_> = analyze(&rs)
        .into_iter()
        .map(|f| (rs.rule(f.rule).unwrap().position, f.why))
        .collect();
    assert_eq!(got, [(2, covered(1)), (5, covered(4))]);
}

#[test]
fn rule_after_jump_is_not_covered_by_it() {
    let mut rs = chain_of(vec![(vec![], Action::Drop)]);
    rs.chains.push(Chain {
        id: ChainId(1),
        name: "web".into(),
        hook: None,
        policy: None,
        rules: vec![],
        span: Span::default(),
    });
    let rule = |i: u32, action| Rule {
        id: RuleId(i),
        chain: ChainId(0),
        position: i + 1,
        matches: vec![],
        action,
        comment: None,
        counters: None,
        span: Span::default(),
    };
    let src = |a: u32, len: u8| {
        vec![Match::single(
            Field::SrcIp,
            Test::Prefix {
                addr: a.into(),
                len,
            },
            false,
            Span::default(),
        )]
    };
    rs.chains[0].rules = vec![
        rule(0, Action::Jump(ChainId(1))),
        Rule {
            matches: src(0xc0a8_0000, 16),
            ..rule(1, Action::Drop)
        },
        Rule {
            matches: src(0x0a00_0000, 8),
            ..rule(2, Action::Goto(ChainId(1)))
        },
        Rule {
            matches: src(0x0a01_0000, 16),
            ..rule(3, Action::Drop)
        },
    ];
    crate::ir::verify(&rs).unwrap();
    assert_eq!(
        analyze(&rs),
        [Finding {
            rule: RuleId(3),
            why: covered(3)
        }]
    );
    let d = check(&rs);
    assert_eq!(
        d[0].message,
        "rule #4 in INPUT can never match: rule #3 (action `goto web`) before it already matches all its packets"
    );
}

fn arb_small_set() -> impl Strategy<Value = Set> {
    prop::collection::vec((0u128..64, 0u128..8), 0..5).prop_map(|v| {
        Set::from_intervals(
            v.into_iter()
                .map(|(lo, len)| (lo, (lo + len).min(63)))
                .collect(),
        )
    })
}

fn members(s: &Set) -> Vec<u128> {
    (0..64).filter(|&v| s.contains(v)).collect()
}

proptest! {
    /// The interval operations agree with the same operations on explicit member lists.
    #[test]
    fn set_operations_match_brute_force(a in arb_small_set(), b in arb_small_set()) {
        let (ma, mb) = (members(&a), members(&b));
        let both: Vec<u128> = ma.iter().copied().filter(|v| mb.contains(v)).collect();
        let minus: Vec<u128> = ma.iter().copied().filter(|v| !mb.contains(v)).collect();
        prop_assert_eq!(members(&a.intersect(&b)), both.clone());
        prop_assert_eq!(a.intersects(&b), !both.is_empty());
        prop_assert_eq!(members(&a.subtract(&b)), minus.clone());
        prop_assert_eq!(a.is_subset(&b), minus.is_empty());
        // Normal form: merged, so equal member lists mean equal sets.
        prop_assert_eq!(a.subtract(&b).intersect(&b), Set::default());
    }
}

/// Every code the shadow pass emits has a section in docs/diagnostics.md.
#[test]
fn shadow_codes_documented() {
    let src = include_str!("../shadow.rs");
    let docs = include_str!("../../../../docs/diagnostics.md");
    for code in ["W0101", "W0102", "W0103", "N0101"] {
        assert!(
            src.contains(&format!("\"{code}\"")),
            "{code} no longer emitted"
        );
        assert!(
            docs.contains(&format!("### {code}:")),
            "{code} is not documented"
        );
    }
}
