//! The reference interpreter on hand-built rulesets: every control-flow case (jump, goto, return,
//! falling off user and built-in chains, nesting), hotdrops inside user chains, lists, interfaces; and
//! `ir::verify` / `Ruleset::dump` on the same shapes.
use tailwall_compiler::diag::Span;
use tailwall_compiler::interp::{run, run_with, Decided, Meta, Outcome};
use tailwall_compiler::ir::{
    verify, Action, Chain, ChainId, Field, Hook, Match, NamedSet, Rule, RuleId, Ruleset, SetKind,
    Test, Verdict, MAX_CALL_DEPTH,
};
use tailwall_compiler::packet::{build_frame, decode, l4_header, Decoded};

/// A chain to build: name, hook (built-in chains get policy DROP), rules as (matches, action).
type ChainSpec = (&'static str, Option<Hook>, Vec<(Vec<Match>, Action)>);

/// Ids, positions and rule ids are filled in; the ruleset is NOT verified (see [`ok`]).
fn build(chains: Vec<ChainSpec>) -> Ruleset {
    let mut next = 0;
    let chains = chains
        .into_iter()
        .enumerate()
        .map(|(ci, (name, hook, rules))| Chain {
            id: ChainId(ci as u32),
            name: name.into(),
            hook,
            policy: hook.map(|_| Verdict::Drop),
            rules: rules
                .into_iter()
                .enumerate()
                .map(|(i, (matches, action))| {
                    next += 1;
                    Rule {
                        id: RuleId(next - 1),
                        chain: ChainId(ci as u32),
                        position: i as u32 + 1,
                        matches,
                        action,
                        comment: None,
                        counters: None,
                        span: Span::new(100 * ci + i, 100 * ci + i + 1),
                    }
                })
                .collect(),
            span: Span::default(),
        })
        .collect();
    Ruleset {
        family: Default::default(),
        chains,
        sets: Vec::new(),
        logs: Vec::new(),
    }
}

fn ok(chains: Vec<ChainSpec>) -> Ruleset {
    let rs = build(chains);
    verify(&rs).unwrap();
    rs
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
fn tcp() -> Match {
    Match::single(Field::Proto, Test::Exact(6), false, Span::default())
}
fn dport(p: u32) -> Match {
    Match::single(Field::DstPort, Test::Exact(p), false, Span::default())
}
fn dports(ps: &[u32]) -> Match {
    list(
        Field::DstPort,
        ps.iter().map(|&p| Test::Exact(p)).collect(),
        false,
    )
}
fn iface(field: Field, name: &str, negated: bool) -> Match {
    let (name, wildcard) = match name.strip_suffix('+') {
        Some(n) => (n.to_string(), true),
        None => (name.to_string(), false),
    };
    Match::single(
        field,
        Test::Iface { name, wildcard },
        negated,
        Span::default(),
    )
}

fn frame(dport: u16) -> Decoded {
    decode(&build_frame(
        [2, 0, 0, 0, 0, 1],
        [2, 0, 0, 0, 0, 2],
        [10, 0, 0, 2].into(),
        [10, 0, 0, 1].into(),
        6,
        0,
        &l4_header(6, 40000, dport, b""),
    ))
}
fn truncated() -> Decoded {
    decode(&build_frame(
        [2, 0, 0, 0, 0, 1],
        [2, 0, 0, 0, 0, 2],
        [10, 0, 0, 2].into(),
        [10, 0, 0, 1].into(),
        6,
        0,
        &[0; 6],
    ))
}

fn rule(verdict: Verdict, chain: u32, rule: u32, position: u32) -> Outcome {
    Outcome {
        verdict,
        decided: Decided::Rule {
            chain: ChainId(chain),
            rule: RuleId(rule),
            position,
        },
    }
}
fn policy(chain: u32) -> Outcome {
    Outcome {
        verdict: Verdict::Drop,
        decided: Decided::Policy {
            chain: ChainId(chain),
        },
    }
}

const ACCEPT: Action = Action::Accept;
const DROP: Action = Action::Drop;
fn jump(c: u32) -> Action {
    Action::Jump(ChainId(c))
}
fn goto(c: u32) -> Action {
    Action::Goto(ChainId(c))
}

#[test]
fn jump_then_return_resumes_after_the_jump() {
    let rs = ok(vec![
        (
            "INPUT",
            Some(Hook::Input),
            vec![(vec![], jump(1)), (vec![tcp(), dport(80)], ACCEPT)],
        ),
        (
            "web",
            None,
            vec![
                (vec![tcp(), dport(22)], DROP),
                (vec![tcp(), dport(80)], Action::Return),
                (vec![], ACCEPT),
            ],
        ),
    ]);
    // Return at web#2, then INPUT#2 accepts: the decision is INPUT's.
    assert_eq!(
        run(&rs, Hook::Input, &frame(80)),
        rule(Verdict::Accept, 0, 1, 2)
    );
    // Decided inside the user chain: reported with the user chain's id and position.
    assert_eq!(
        run(&rs, Hook::Input, &frame(22)),
        rule(Verdict::Drop, 1, 2, 1)
    );
    assert_eq!(
        run(&rs, Hook::Input, &frame(1)),
        rule(Verdict::Accept, 1, 4, 3)
    );
}

#[test]
fn jump_then_fall_off_user_chain_resumes() {
    let rs = ok(vec![
        (
            "INPUT",
            Some(Hook::Input),
            vec![(vec![], jump(1)), (vec![tcp()], ACCEPT)],
        ),
        ("empty_end", None, vec![(vec![tcp(), dport(22)], DROP)]),
    ]);
    assert_eq!(
        run(&rs, Hook::Input, &frame(80)),
        rule(Verdict::Accept, 0, 1, 2)
    );
    assert_eq!(
        run(&rs, Hook::Input, &frame(22)),
        rule(Verdict::Drop, 1, 2, 1)
    );
}

#[test]
fn goto_then_fall_off_returns_to_the_jumping_chain() {
    // INPUT -j a; a -g b; b falls off: back after INPUT's jump (a's remaining rules are skipped).
    let rs = ok(vec![
        (
            "INPUT",
            Some(Hook::Input),
            vec![(vec![], jump(1)), (vec![tcp(), dport(80)], ACCEPT)],
        ),
        ("a", None, vec![(vec![], goto(2)), (vec![], DROP)]),
        ("b", None, vec![(vec![tcp(), dport(22)], DROP)]),
    ]);
    assert_eq!(
        run(&rs, Hook::Input, &frame(80)),
        rule(Verdict::Accept, 0, 1, 2)
    );
    assert_eq!(
        run(&rs, Hook::Input, &frame(22)),
        rule(Verdict::Drop, 2, 4, 1)
    );
    assert_eq!(run(&rs, Hook::Input, &frame(9)), policy(0));
}

#[test]
fn goto_from_builtin_then_fall_off_is_policy() {
    let rs = ok(vec![
        (
            "INPUT",
            Some(Hook::Input),
            vec![(vec![], goto(1)), (vec![], ACCEPT)],
        ),
        ("b", None, vec![(vec![tcp(), dport(22)], DROP)]),
    ]);
    // INPUT#2 is never reached: goto pushed no return point.
    assert_eq!(run(&rs, Hook::Input, &frame(80)), policy(0));
    assert_eq!(
        run(&rs, Hook::Input, &frame(22)),
        rule(Verdict::Drop, 1, 2, 1)
    );
}

#[test]
fn return_from_builtin_is_policy() {
    let rs = ok(vec![(
        "INPUT",
        Some(Hook::Input),
        vec![(vec![tcp(), dport(22)], Action::Return), (vec![], ACCEPT)],
    )]);
    assert_eq!(run(&rs, Hook::Input, &frame(22)), policy(0));
    assert_eq!(
        run(&rs, Hook::Input, &frame(23)),
        rule(Verdict::Accept, 0, 1, 2)
    );
}

#[test]
fn return_in_goto_chain_pops_the_last_jump() {
    // INPUT -j a; a -g b; b -j RETURN: back after INPUT's jump.
    let rs = ok(vec![
        (
            "INPUT",
            Some(Hook::Input),
            vec![(vec![], jump(1)), (vec![], ACCEPT)],
        ),
        ("a", None, vec![(vec![], goto(2))]),
        ("b", None, vec![(vec![], Action::Return), (vec![], DROP)]),
    ]);
    assert_eq!(
        run(&rs, Hook::Input, &frame(1)),
        rule(Verdict::Accept, 0, 1, 2)
    );
}

#[test]
fn nested_jumps_unwind_one_level_at_a_time() {
    // INPUT -j a; a -j b; b -j c; c decides 22, returns otherwise; b drops 23 after c; a accepts 24.
    let rs = ok(vec![
        (
            "INPUT",
            Some(Hook::Input),
            vec![(vec![], jump(1)), (vec![tcp(), dport(25)], ACCEPT)],
        ),
        (
            "a",
            None,
            vec![(vec![], jump(2)), (vec![tcp(), dport(24)], ACCEPT)],
        ),
        (
            "b",
            None,
            vec![(vec![], jump(3)), (vec![tcp(), dport(23)], DROP)],
        ),
        ("c", None, vec![(vec![tcp(), dport(22)], ACCEPT)]),
    ]);
    assert_eq!(
        run(&rs, Hook::Input, &frame(22)),
        rule(Verdict::Accept, 3, 6, 1)
    );
    assert_eq!(
        run(&rs, Hook::Input, &frame(23)),
        rule(Verdict::Drop, 2, 5, 2)
    );
    assert_eq!(
        run(&rs, Hook::Input, &frame(24)),
        rule(Verdict::Accept, 1, 3, 2)
    );
    assert_eq!(
        run(&rs, Hook::Input, &frame(25)),
        rule(Verdict::Accept, 0, 1, 2)
    );
    assert_eq!(run(&rs, Hook::Input, &frame(26)), policy(0));
}

#[test]
fn same_chain_jumped_twice_returns_to_each_caller() {
    let rs = ok(vec![
        (
            "INPUT",
            Some(Hook::Input),
            vec![
                (vec![], jump(1)),
                (vec![tcp(), dport(80)], jump(1)),
                (vec![], ACCEPT),
            ],
        ),
        ("log", None, vec![(vec![tcp(), dport(1)], DROP)]),
    ]);
    assert_eq!(
        run(&rs, Hook::Input, &frame(80)),
        rule(Verdict::Accept, 0, 2, 3)
    );
    assert_eq!(
        run(&rs, Hook::Input, &frame(1)),
        rule(Verdict::Drop, 1, 3, 1)
    );
}

#[test]
fn hotdrop_inside_user_chain_names_the_user_chain() {
    let rs = ok(vec![
        (
            "INPUT",
            Some(Hook::Input),
            vec![(vec![tcp()], jump(1)), (vec![], ACCEPT)],
        ),
        (
            "ports",
            None,
            vec![(vec![tcp(), dports(&[22, 80])], ACCEPT)],
        ),
    ]);
    assert_eq!(
        run(&rs, Hook::Input, &truncated()),
        Outcome {
            verdict: Verdict::Drop,
            decided: Decided::Hotdrop {
                chain: ChainId(1),
                rule: RuleId(2),
                position: 1
            }
        }
    );
}

#[test]
fn dst_port_list_is_any_of_and_negation_is_none_of() {
    let rs = ok(vec![(
        "INPUT",
        Some(Hook::Input),
        vec![
            (
                vec![
                    tcp(),
                    list(
                        Field::DstPort,
                        vec![Test::Exact(80), Test::Range { lo: 8000, hi: 8080 }],
                        false,
                    ),
                ],
                ACCEPT,
            ),
            (
                vec![
                    tcp(),
                    list(Field::DstPort, vec![Test::Exact(22), Test::Exact(23)], true),
                ],
                DROP,
            ),
        ],
    )]);
    for (p, want) in [
        (80, rule(Verdict::Accept, 0, 0, 1)),
        (8000, rule(Verdict::Accept, 0, 0, 1)),
        (8080, rule(Verdict::Accept, 0, 0, 1)),
        (8081, rule(Verdict::Drop, 0, 1, 2)),
        (22, policy(0)),
        (23, policy(0)),
        (24, rule(Verdict::Drop, 0, 1, 2)),
    ] {
        assert_eq!(run(&rs, Hook::Input, &frame(p)), want, "port {p}");
    }
}

#[test]
fn in_iface_wildcard_and_negation() {
    let rs = ok(vec![(
        "INPUT",
        Some(Hook::Input),
        vec![
            (vec![iface(Field::InIface, "eth+", false)], ACCEPT),
            (vec![iface(Field::InIface, "lo", true)], DROP),
            (vec![iface(Field::InIface, "+", false)], ACCEPT),
        ],
    )]);
    let on = |i: Option<&str>| {
        run_with(
            &rs,
            Hook::Input,
            &Meta {
                in_iface: i.map(str::to_string),
                out_iface: None,
            },
            &frame(1),
        )
    };
    assert_eq!(on(Some("eth0")), rule(Verdict::Accept, 0, 0, 1));
    assert_eq!(on(Some("eth")), rule(Verdict::Accept, 0, 0, 1));
    assert_eq!(on(Some("wlan0")), rule(Verdict::Drop, 0, 1, 2));
    assert_eq!(on(Some("lo")), rule(Verdict::Accept, 0, 2, 3));
    // Unknown interface: `-i eth+` does not match, `! -i lo` does.
    assert_eq!(on(None), rule(Verdict::Drop, 0, 1, 2));
    assert_eq!(on(None), run(&rs, Hook::Input, &frame(1)));
}

#[test]
fn out_iface_exists_at_forward_not_at_input() {
    let rs = ok(vec![
        (
            "INPUT",
            Some(Hook::Input),
            vec![(vec![iface(Field::InIface, "eth0", false)], ACCEPT)],
        ),
        (
            "FORWARD",
            Some(Hook::Forward),
            vec![(
                vec![
                    iface(Field::InIface, "eth0", false),
                    iface(Field::OutIface, "wg+", false),
                ],
                ACCEPT,
            )],
        ),
        (
            "OUTPUT",
            Some(Hook::Output),
            vec![(vec![iface(Field::OutIface, "eth0", true)], ACCEPT)],
        ),
    ]);
    let meta = Meta {
        in_iface: Some("eth0".into()),
        out_iface: Some("wg1".into()),
    };
    assert_eq!(
        run_with(&rs, Hook::Forward, &meta, &frame(1)),
        rule(Verdict::Accept, 1, 1, 1)
    );
    assert_eq!(
        run_with(&rs, Hook::Input, &meta, &frame(1)),
        rule(Verdict::Accept, 0, 0, 1)
    );
    // OUTPUT has no input interface: in_iface of the metadata is ignored there; wg1 != eth0.
    assert_eq!(
        run_with(&rs, Hook::Output, &meta, &frame(1)),
        rule(Verdict::Accept, 2, 2, 1)
    );
    let only_in = Meta {
        in_iface: Some("eth0".into()),
        out_iface: None,
    };
    assert_eq!(run_with(&rs, Hook::Forward, &only_in, &frame(1)), policy(1));
}

#[test]
fn hook_without_chain_accepts() {
    let rs = ok(vec![("INPUT", Some(Hook::Input), vec![])]);
    assert_eq!(run(&rs, Hook::Input, &frame(1)), policy(0));
    let o = run(&rs, Hook::Forward, &frame(1));
    assert_eq!(o.verdict, Verdict::Accept);
}

#[test]
fn verify_rejects_bad_control_flow() {
    let code = |rs: &Ruleset| verify(rs).map_err(|e| e.invariant);
    // A cycle a -> b -> a.
    let cyc = build(vec![
        ("INPUT", Some(Hook::Input), vec![(vec![], jump(1))]),
        ("a", None, vec![(vec![], jump(2))]),
        ("b", None, vec![(vec![], goto(1))]),
    ]);
    assert_eq!(code(&cyc), Err(7));
    // Jump to a built-in chain, to a missing chain, to itself.
    let builtin = build(vec![
        ("INPUT", Some(Hook::Input), vec![]),
        ("FORWARD", Some(Hook::Forward), vec![(vec![], jump(0))]),
    ]);
    assert_eq!(code(&builtin), Err(7));
    let missing = build(vec![("INPUT", Some(Hook::Input), vec![(vec![], jump(5))])]);
    assert_eq!(code(&missing), Err(7));
    let selfloop = build(vec![
        ("INPUT", Some(Hook::Input), vec![]),
        ("a", None, vec![(vec![], jump(1))]),
    ]);
    assert_eq!(code(&selfloop), Err(7));
    // A chain of MAX_CALL_DEPTH jumps is fine, one more is not.
    let deep = |n: usize| {
        let mut cs: Vec<ChainSpec> = vec![("INPUT", Some(Hook::Input), vec![(vec![], jump(1))])];
        let names: Vec<&'static str> = (1..=n)
            .map(|i| &*Box::leak(format!("c{i}").into_boxed_str()))
            .collect();
        for i in 1..=n {
            let rules = if i < n {
                vec![(vec![], jump(i as u32 + 1))]
            } else {
                vec![]
            };
            cs.push((names[i - 1], None, rules));
        }
        build(cs)
    };
    assert_eq!(code(&deep(MAX_CALL_DEPTH)), Ok(()));
    assert_eq!(code(&deep(MAX_CALL_DEPTH + 1)), Err(7));
    let r = ok(vec![]);
    assert_eq!(code(&r), Ok(()));
}

#[test]
fn verify_rejects_bad_matches() {
    let code = |m: Vec<Match>| {
        verify(&build(vec![(
            "INPUT",
            Some(Hook::Input),
            vec![(m, ACCEPT)],
        )]))
        .map_err(|e| e.invariant)
    };
    assert_eq!(code(vec![list(Field::SrcIp, vec![], false)]), Err(4));
    assert_eq!(code(vec![iface(Field::SrcIp, "eth0", false)]), Err(3));
    assert_eq!(
        code(vec![Match::single(
            Field::InIface,
            Test::Exact(1),
            false,
            Span::default()
        )]),
        Err(3)
    );
    assert_eq!(
        code(vec![iface(Field::InIface, "abcdefghijklmnop", false)]),
        Err(3)
    );
    assert_eq!(code(vec![iface(Field::InIface, "", false)]), Err(3));
    assert_eq!(code(vec![iface(Field::InIface, "+", false)]), Ok(()));
    // INPUT has no output interface.
    assert_eq!(code(vec![iface(Field::OutIface, "eth0", false)]), Err(9));
    // A port list needs proto tcp/udp; {tcp, udp} is accepted.
    assert_eq!(code(vec![dports(&[1, 2])]), Err(5));
    assert_eq!(
        code(vec![
            list(Field::Proto, vec![Test::Exact(6), Test::Exact(17)], false),
            dports(&[1, 2])
        ]),
        Ok(())
    );
    assert_eq!(
        code(vec![
            list(Field::Proto, vec![Test::Exact(6), Test::Exact(1)], false),
            dports(&[1, 2])
        ]),
        Err(5)
    );
}

#[test]
fn verify_checks_named_sets() {
    let admins = NamedSet {
        name: "admins".into(),
        field_kind: SetKind::Addr,
        elements: vec![
            Test::Prefix {
                addr: 0x0a00_0000,
                len: 8,
            },
            Test::Exact(0xc0a8_0101),
        ],
        span: Span::default(),
    };
    let with = |set: &str, field: Field, tests: Vec<Test>| {
        let mut rs = build(vec![(
            "INPUT",
            Some(Hook::Input),
            vec![(
                vec![Match {
                    field,
                    tests,
                    negated: true,
                    set: Some(set.into()),
                    span: Span::default(),
                }],
                ACCEPT,
            )],
        )]);
        rs.sets.push(admins.clone());
        rs
    };
    let good = with("admins", Field::SrcIp, admins.elements.clone());
    assert_eq!(verify(&good), Ok(()));
    assert_eq!(
        good.dump(),
        "set admins addr {10.0.0.0/8, 3232235777}\n\
         chain c0 INPUT hook=input policy=drop\n  r0 #1 src_ip ! @admins -> accept\n"
    );
    for bad in [
        with("nope", Field::SrcIp, admins.elements.clone()),
        with("admins", Field::SrcIp, admins.elements[..1].to_vec()),
        with("admins", Field::Proto, vec![Test::Exact(6)]),
    ] {
        assert_eq!(verify(&bad).map_err(|e| e.invariant), Err(8));
    }
}

#[test]
fn dump_spells_lists_ifaces_and_actions() {
    let rs = ok(vec![
        (
            "INPUT",
            Some(Hook::Input),
            vec![
                (
                    vec![
                        tcp(),
                        list(
                            Field::DstPort,
                            vec![
                                Test::Exact(80),
                                Test::Exact(443),
                                Test::Range { lo: 8000, hi: 8080 },
                            ],
                            false,
                        ),
                        iface(Field::InIface, "eth+", false),
                    ],
                    jump(1),
                ),
                (vec![iface(Field::InIface, "lo", true)], goto(1)),
                (vec![], Action::Return),
            ],
        ),
        ("web", None, vec![(vec![], ACCEPT)]),
    ]);
    assert_eq!(
        rs.dump(),
        "chain c0 INPUT hook=input policy=drop\n\
         \x20 r0 #1 proto 6 dst_port {80, 443, 8000-8080} in_iface eth+ -> jump web\n\
         \x20 r1 #2 in_iface ! lo -> goto web\n\
         \x20 r2 #3 -> return\n\
         chain c1 web\n\
         \x20 r3 #1 -> accept\n"
    );
    assert_eq!(rs.reachable(Hook::Input), vec![ChainId(0), ChainId(1)]);
    assert!(rs.reachable(Hook::Output).is_empty());
}
