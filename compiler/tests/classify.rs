//! Classifier laws on generated rulesets, and snapshots of artifact dumps.
use proptest::prelude::*;
use std::net::Ipv4Addr;
use tailwall_compiler::artifact::build;
use tailwall_compiler::classify::{classify, FieldClasses, Table};
use tailwall_compiler::diag::Span;
use tailwall_compiler::flatten::{Origin, Position};
use tailwall_compiler::ir::{
    Action, Chain, ChainId, Field, Hook, Match, Rule, RuleId, Ruleset, Test, Verdict,
};
use tailwall_compiler::packet::FieldValue;
use tailwall_compiler::testgen::{arb_ruleset, arb_ruleset_with, RulesetOpts};

/// Brute force: does `rule` admit `v` on `f`?
fn admits(rule: &Rule, f: Field, v: FieldValue) -> bool {
    match (rule.get(f), v) {
        (None, _) => true,
        (Some(m), FieldValue::Value(x)) => m.admits(x),
        (Some(_), FieldValue::Absent) => false,
        (Some(_), FieldValue::Truncated) => true,
    }
}

/// Brute force: bit `p` of the class of `v` is set iff `p` is not a policy position and every conjunct
/// rule of `p` admits `v`.
fn check_value(
    positions: &[Position],
    fc: &FieldClasses,
    v: FieldValue,
) -> Result<(), TestCaseError> {
    let class = fc.class_of(v) as usize;
    prop_assert!(class < fc.classes.len());
    let vec = &fc.classes[class];
    prop_assert_eq!(vec.len(), positions.len());
    for (i, p) in positions.iter().enumerate() {
        let want = !matches!(p.origin, Origin::Policy { .. })
            && p.conjuncts.iter().all(|r| admits(r, fc.field, v));
        prop_assert_eq!(vec[i], want, "{} rule {} value {:?}", fc.field, i, v);
    }
    Ok(())
}

/// Addresses at and around every entry's edges, plus a spread of others.
fn probe_addrs(fc: &FieldClasses) -> Vec<u32> {
    let mut out: Vec<u32> = (0..=255u32)
        .map(|i| i.wrapping_mul(0x0101_0101) ^ 0x5a5a_0000)
        .collect();
    if let Table::Lpm(es) = &fc.table {
        for e in es {
            // The generated rulesets are IPv4: 32-bit addresses, zero-extended.
            let addr = e.addr as u32;
            let hi = addr | u32::MAX.checked_shr(e.len as u32).unwrap_or(0);
            out.extend([
                addr,
                hi,
                addr.wrapping_sub(1),
                hi.wrapping_add(1),
                addr / 2 + hi / 2,
            ]);
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Every value maps to exactly one class, whose vector is the brute-force set of admitting
    /// positions (cases with lists: several prefixes, ports, ranges or protocols per match; and with
    /// user chains: a position admits what all its conjunct rules admit).
    #[test]
    fn classes_equal_brute_force_per_value(rs in prop_oneof![
        arb_ruleset(10).boxed(),
        arb_ruleset_with(RulesetOpts { port_lists: true, addr_lists: true, ..RulesetOpts::new(10) }),
        // User chains: positions with several conjuncts (intersections per field).
        arb_ruleset_with(RulesetOpts { port_lists: true, user_chains: true, ..RulesetOpts::new(6) }),
        // Interfaces (`-i`/`-o`, `+` prefixes, negation) through user chains.
        arb_ruleset_with(RulesetOpts { ifaces: true, user_chains: true, ..RulesetOpts::new(8) }),
    ]) {
        let c = classify(&rs, Hook::Input);
        for fc in &c.fields {
            // Classes are distinct (shared) and each is used by the table.
            let mut seen = fc.classes.clone();
            seen.sort();
            seen.dedup();
            prop_assert_eq!(seen.len(), fc.classes.len());
            match &fc.table {
                Table::Array(t) => {
                    let mut used = vec![false; fc.classes.len()];
                    for &k in t {
                        used[k as usize] = true;
                    }
                    prop_assert!(used.iter().all(|&u| u));
                    for v in 0..=fc.field.max_value() {
                        check_value(&c.flat.positions, fc, FieldValue::Value(v))?;
                    }
                    if fc.field.info().transport {
                        prop_assert_eq!(t.len(), tailwall_abi::PORT_TABLE_ENTRIES as usize);
                        check_value(&c.flat.positions, fc, FieldValue::Absent)?;
                        check_value(&c.flat.positions, fc, FieldValue::Truncated)?;
                    } else {
                        prop_assert_eq!(t.len(), 256);
                    }
                }
                Table::Iface(t) => {
                    // Every key's name, one character longer, and names no rule mentions: each
                    // name's class is the brute-force set of positions whose conjuncts admit it.
                    let mut names: Vec<String> = ["", "lo", "eth0", "eth", "wan1", "zz9"]
                        .iter()
                        .map(|s| s.to_string())
                        .collect();
                    for k in &t.keys {
                        names.push(k.name.clone());
                        names.push(format!("{}x", k.name));
                        names.push(format!("{}0", k.name));
                    }
                    let mut used = vec![false; fc.classes.len()];
                    for k in &t.keys {
                        used[k.class as usize] = true;
                    }
                    prop_assert!(used.iter().all(|&u| u));
                    for n in names {
                        let class = t.class_of_name(&n).expect("the root key holds every name");
                        for (i, p) in c.flat.positions.iter().enumerate() {
                            let policy = matches!(p.origin, tailwall_compiler::flatten::Origin::Policy { .. });
                            let want = !policy && p.conjuncts.iter().filter_map(|r| r.get(fc.field)).all(|m| m.contains_iface(&n) != m.negated);
                            prop_assert_eq!(fc.classes[class as usize][i], want, "name {:?} position {}", n, i);
                        }
                    }
                }
                Table::Lpm(es) => {
                    prop_assert!(es.iter().any(|e| e.len == 0 && e.addr == 0));
                    for w in es.windows(2) {
                        prop_assert!((w[0].len, w[0].addr) < (w[1].len, w[1].addr));
                    }
                    for a in probe_addrs(fc) {
                        check_value(&c.flat.positions, fc, FieldValue::Value(a.into()))?;
                    }
                }
            }
        }
        // Only constrained fields have a table.
        for f in Field::ALL {
            let used = c.flat.positions.iter().flat_map(|p| &p.conjuncts).any(|r| r.get(f).is_some());
            prop_assert_eq!(used, c.field(f).is_some());
        }
    }
}

fn pfx(s: &str) -> Test {
    let (a, l) = s.split_once('/').unwrap();
    Test::Prefix {
        addr: u32::from(a.parse::<Ipv4Addr>().unwrap()).into(),
        len: l.parse().unwrap(),
    }
}

fn m(field: Field, test: Test, negated: bool) -> Match {
    Match::single(field, test, negated, Span::default())
}

fn input(policy: Verdict, rules: Vec<(Vec<Match>, Action, Option<&str>)>) -> Ruleset {
    let comments: Vec<_> = rules.iter().map(|r| r.2.map(str::to_string)).collect();
    let mut rs = Ruleset::with_chain(
        Hook::Input,
        policy,
        rules.into_iter().map(|(m, a, _)| (m, a)),
    );
    for (rule, comment) in rs.chains[0].rules.iter_mut().zip(comments) {
        rule.comment = comment;
    }
    tailwall_compiler::ir::verify(&rs).unwrap();
    rs
}

const TCP: Test = Test::Exact(6);

#[test]
fn dump_ssh_web_host() {
    let rs = input(
        Verdict::Drop,
        vec![
            (
                vec![m(Field::SrcIp, pfx("192.0.2.66/32"), false)],
                Action::Drop,
                Some("known scanner"),
            ),
            (
                vec![m(Field::Proto, Test::Exact(1), false)],
                Action::Accept,
                None,
            ),
            (
                vec![
                    m(Field::SrcIp, pfx("10.99.0.0/24"), false),
                    m(Field::Proto, TCP, false),
                    m(Field::DstPort, Test::Range { lo: 22, hi: 22 }, false),
                ],
                Action::Accept,
                Some("ssh"),
            ),
            (
                vec![
                    m(Field::Proto, TCP, false),
                    m(Field::DstPort, Test::Range { lo: 8000, hi: 8099 }, false),
                ],
                Action::Accept,
                None,
            ),
            (
                vec![
                    m(Field::SrcIp, pfx("10.99.0.0/24"), true),
                    m(Field::Proto, Test::Exact(17), false),
                    m(Field::DstPort, Test::Exact(53), false),
                ],
                Action::Drop,
                None,
            ),
        ],
    );
    insta::assert_snapshot!(build(&rs, Hook::Input).unwrap().dump());
}

#[test]
fn dump_negated_ports_and_nested_prefixes() {
    let rs = input(
        Verdict::Accept,
        vec![
            (
                vec![
                    m(Field::DstIp, pfx("10.0.0.0/8"), false),
                    m(Field::Proto, Test::Exact(17), false),
                    m(Field::SrcPort, Test::Range { lo: 0, hi: 1023 }, true),
                ],
                Action::Drop,
                None,
            ),
            (
                vec![m(Field::DstIp, pfx("10.1.0.0/16"), true)],
                Action::Accept,
                None,
            ),
            (
                vec![
                    m(Field::DstIp, pfx("10.1.2.0/24"), false),
                    m(Field::Proto, TCP, false),
                ],
                Action::Drop,
                None,
            ),
            (
                vec![
                    m(Field::Proto, TCP, false),
                    m(Field::DstPort, Test::Range { lo: 0, hi: 65535 }, false),
                ],
                Action::Drop,
                Some("bare -m tcp"),
            ),
        ],
    );
    insta::assert_snapshot!(build(&rs, Hook::Input).unwrap().dump());
}

#[test]
fn dump_rule_without_matches_and_no_stage() {
    let rs = input(Verdict::Drop, vec![(vec![], Action::Accept, None)]);
    let a = build(&rs, Hook::Input).unwrap();
    assert!(a.stages.is_empty());
    insta::assert_snapshot!(a.dump());
}

/// Every bundled example: its artifact dump, and `interp ≡ sim` on frames aimed at its boundaries.
#[test]
fn dump_examples_rulesets() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/rulesets");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rules"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty());
    for p in paths {
        let name = p.file_stem().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&p).unwrap();
        let src = tailwall_compiler::diag::SourceFile::new(name.clone(), text);
        let lowered =
            tailwall_compiler::lower::iptables(&src).unwrap_or_else(|d| panic!("{name}: {d:?}"));
        let a = build(&lowered.ruleset, Hook::Input).unwrap();
        let sim = tailwall_compiler::sim::Sim::new(&a).unwrap();
        let frames = tailwall_compiler::testgen::sample_frames(
            &lowered.ruleset,
            1,
            500,
            &tailwall_compiler::testgen::FrameOpts::default(),
        );
        for f in &frames {
            let d = tailwall_compiler::packet::decode(f);
            assert_eq!(
                tailwall_compiler::interp::run(&lowered.ruleset, Hook::Input, &d),
                sim.run(&d),
                "{name}: {f:02x?}"
            );
        }
        insta::assert_snapshot!(format!("example_{name}"), a.dump());
    }
}

fn list(field: Field, tests: Vec<Test>, negated: bool) -> Match {
    Match {
        field,
        tests,
        negated,
        set: None,
        span: Span::default(),
    }
}

/// Lists compile exactly: overlapping, nested and adjacent tests of one rule, negated or not.
#[test]
fn dump_lists_of_prefixes_and_ports() {
    let rs = input(
        Verdict::Drop,
        vec![
            (
                vec![list(
                    Field::SrcIp,
                    vec![pfx("10.0.0.0/8"), pfx("10.1.0.0/16"), pfx("192.168.1.0/24")],
                    false,
                )],
                Action::Drop,
                None,
            ),
            (
                vec![
                    list(
                        Field::SrcIp,
                        vec![pfx("10.1.2.0/24"), pfx("192.168.0.0/16")],
                        true,
                    ),
                    m(Field::Proto, TCP, false),
                    list(
                        Field::DstPort,
                        vec![
                            Test::Exact(80),
                            Test::Range { lo: 79, hi: 81 },
                            Test::Range { lo: 82, hi: 90 },
                            Test::Exact(443),
                        ],
                        false,
                    ),
                ],
                Action::Accept,
                Some("web"),
            ),
            (
                vec![
                    list(Field::Proto, vec![Test::Exact(6), Test::Exact(17)], false),
                    list(
                        Field::DstPort,
                        vec![Test::Exact(53), Test::Range { lo: 0, hi: 10 }],
                        true,
                    ),
                ],
                Action::Accept,
                None,
            ),
        ],
    );
    let c = classify(&rs, Hook::Input);
    let sip = c.field(Field::SrcIp).unwrap();
    let at = |a: &str| {
        let v = FieldValue::Value(u32::from(a.parse::<Ipv4Addr>().unwrap()).into());
        sip.classes[sip.class_of(v) as usize]
            .iter_ones()
            .collect::<Vec<_>>()
    };
    assert_eq!(at("10.1.2.3"), vec![0, 2]);
    assert_eq!(at("10.1.3.3"), vec![0, 1, 2]);
    assert_eq!(at("192.168.1.1"), vec![0, 2]);
    assert_eq!(at("192.168.2.1"), vec![2]);
    assert_eq!(at("8.8.8.8"), vec![1, 2]);
    let dp = c.field(Field::DstPort).unwrap();
    let at = |p: u32| {
        dp.classes[dp.class_of(FieldValue::Value(p.into())) as usize]
            .iter_ones()
            .collect::<Vec<_>>()
    };
    assert_eq!(at(78), vec![0, 2]);
    assert_eq!(at(79), vec![0, 1, 2]);
    assert_eq!(at(90), vec![0, 1, 2]);
    assert_eq!(at(91), vec![0, 2]);
    assert_eq!(at(443), vec![0, 1, 2]);
    assert_eq!(at(53), vec![0]);
    assert_eq!(at(10), vec![0]);
    assert_eq!(at(11), vec![0, 2]);
    insta::assert_snapshot!(build(&rs, Hook::Input).unwrap().dump());
}

/// Jumps compile; what the datapath cannot compile (an interface match in a reachable user chain) is
/// a located error naming the rule, all of them at once; other chains are notes.
#[test]
fn artifact_compiles_jumps_and_interfaces() {
    use tailwall_compiler::artifact::{ignored, IgnoredWhy};
    let mut rs = input(
        Verdict::Drop,
        vec![
            (vec![m(Field::Proto, TCP, false)], Action::Accept, None),
            (vec![], Action::Drop, None),
        ],
    );
    rs.chains[0].rules[1].action = Action::Jump(ChainId(2));
    let chain = |id: u32, name: &str, hook: Option<Hook>, first: u32| Chain {
        id: ChainId(id),
        name: name.into(),
        hook,
        policy: hook.map(|_| Verdict::Accept),
        rules: vec![Rule {
            id: RuleId(first),
            chain: ChainId(id),
            position: 1,
            matches: vec![],
            action: Action::Drop,
            comment: None,
            counters: None,
            span: Span::default(),
        }],
        span: Span::new(id as usize, id as usize + 1),
    };
    rs.chains.push(chain(1, "FORWARD", Some(Hook::Forward), 2));
    rs.chains.push(chain(2, "web", None, 3));
    rs.chains.push(chain(3, "unused", None, 4));
    tailwall_compiler::ir::verify(&rs).unwrap();
    let a = build(&rs, Hook::Input).unwrap();
    // INPUT: r0, the jump r1, web's r3 copied after it, the policy; FORWARD: r2, policy; OUTPUT.
    assert_eq!(a.globals.nrules, 4 + 2 + 1);
    // Every built-in chain is compiled: only the user chain no hook reaches is left out.
    let ig = ignored(&rs);
    let got: Vec<(&str, IgnoredWhy)> = ig.iter().map(|i| (i.name.as_str(), i.why)).collect();
    assert_eq!(got, vec![("unused", IgnoredWhy::Unreachable)]);
    assert_eq!(ig[0].diagnostic().code, "N0501");

    // Interface matches in INPUT and in the reachable `web` compile: an `in_iface` stage whose
    // name partition has the root key and `eth+`, ifindex 0 (no device) in its image.
    let eth = Match::single(
        Field::InIface,
        Test::Iface {
            name: "eth".into(),
            wildcard: true,
        },
        false,
        Span::default(),
    );
    rs.chains[0].rules[0].matches.push(eth.clone());
    rs.chains[2].rules[0].matches.push(eth);
    let a = build(&rs, Hook::Input).unwrap();
    assert!(a.stages.contains(&Field::InIface));
    let keys: Vec<(&str, bool)> = a.ifaces[0]
        .table
        .keys
        .iter()
        .map(|k| (k.name.as_str(), k.wildcard))
        .collect();
    assert_eq!(keys, vec![("", true), ("eth", true)]);
    assert_eq!(
        a.map(tailwall_abi::IN_IFACE.table_map)
            .unwrap()
            .entries
            .len(),
        1
    );
    // Every hook's region is compiled whatever hook the caller describes.
    let f = build(&rs, Hook::Forward).unwrap();
    for hook in Hook::ALL {
        assert!(
            f.region(hook, tailwall_compiler::ir::Family::V4).is_some(),
            "{hook:?}"
        );
    }
    assert_eq!(f.positions, a.positions);
}

/// One generation of an IPv4 and an IPv6 ruleset: the IPv6 prefixes in their 128-bit LPM tables,
/// the IPv4 positions set in every IPv6 address class (and the other way round), two regions per
/// hook.
#[test]
fn dump_ipv4_and_ipv6_in_one_generation() {
    use tailwall_compiler::diag::SourceFile;
    let load = |name: &str, text: &str| {
        tailwall_compiler::frontend::load(&SourceFile::new(name, text.to_string()))
            .expect("loads")
            .ruleset
    };
    let v4 = load(
        "rules.v4",
        "*filter\n:INPUT DROP [0:0]\n-A INPUT -s 10.0.0.0/8 -p tcp --dport 22 -j ACCEPT\nCOMMIT\n",
    );
    let v6 = load(
        "rules.v6",
        "*filter\n:INPUT DROP [0:0]\n-A INPUT -s 2001:db8::/32 -p tcp --dport 22 -j ACCEPT\n-A INPUT -d fe80::1/128 -p ipv6-icmp -m icmp6 --icmpv6-type 135 -j ACCEPT\nCOMMIT\n",
    );
    let a = tailwall_compiler::artifact::build_sets(&[&v4, &v6], Hook::Input).unwrap();
    insta::assert_snapshot!(a.dump());
}
