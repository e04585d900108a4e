//! The YAML rule language end to end: every example ruleset's `.yaml` twin lowers to the IR of its
//! `.rules` form, IR dumps of good fixtures and rendered diagnostics of bad ones are snapshotted, the
//! printer round-trips generated rulesets, and mangled input never panics.
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use tailwall_compiler::diag::{render_all, SourceFile, Span};
use tailwall_compiler::ir::{self, Field, Ruleset, Test};
use tailwall_compiler::lower;
use tailwall_compiler::yaml::{self, Annotations};

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Files of a directory with an extension, sorted by name.
fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
}

fn load(path: &Path) -> SourceFile {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let name = path
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    SourceFile::new(name, text)
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .expect("stem")
        .to_string_lossy()
        .into_owned()
}

fn lower_yaml(src: &SourceFile) -> Ruleset {
    match yaml::lower(src) {
        Ok(l) => {
            ir::verify(&l.ruleset).expect("lowered IR verifies");
            l.ruleset
        }
        Err(d) => panic!("{} does not lower:\n{}", src.name, render_all(&d, src)),
    }
}

/// The ruleset with everything the comparison ignores cleared: spans, counters, and the IR's second
/// spelling of a single value (a port or address `Exact(v)` means `Range {v, v}` / a `/32` prefix, a
/// protocol `Range {v, v}` means `Exact(v)`).
fn normalized(rs: &Ruleset) -> Ruleset {
    let mut rs = rs.clone();
    let norm = |field: Field, t: &mut Test| match (field, t.clone()) {
        (Field::SrcPort | Field::DstPort, Test::Exact(v)) => *t = Test::Range { lo: v, hi: v },
        (Field::SrcIp | Field::DstIp, Test::Exact(v)) => {
            *t = Test::Prefix {
                addr: v.into(),
                len: 32,
            }
        }
        (Field::Proto, Test::Range { lo, hi }) if lo == hi => *t = Test::Exact(lo),
        _ => {}
    };
    for s in &mut rs.sets {
        s.span = Span::default();
        let field = match s.field_kind {
            ir::SetKind::Addr => Field::SrcIp,
            ir::SetKind::Port => Field::DstPort,
            ir::SetKind::Proto => Field::Proto,
        };
        s.elements.iter_mut().for_each(|t| norm(field, t));
    }
    for c in &mut rs.chains {
        c.span = Span::default();
        for r in &mut c.rules {
            r.span = Span::default();
            r.counters = None;
            for m in &mut r.matches {
                m.span = Span::default();
                let f = m.field;
                m.tests.iter_mut().for_each(|t| norm(f, t));
            }
        }
    }
    rs
}

#[test]
fn examples_yaml_twin_lowers_to_identical_ir() {
    let dir = manifest().join("../examples/rulesets");
    let rules = files(&dir, "rules");
    assert!(!rules.is_empty());
    for path in rules {
        let name = stem(&path);
        let ipt = load(&path);
        let ipt = match lower::iptables(&ipt) {
            Ok(l) => l.ruleset,
            Err(d) => panic!("{name}.rules does not lower:\n{}", render_all(&d, &ipt)),
        };
        let twin = dir.join(format!("{name}.yaml"));
        assert!(
            twin.exists(),
            "{name}.rules has no YAML twin {}",
            twin.display()
        );
        let y = lower_yaml(&load(&twin));
        assert_eq!(ipt.dump(), y.dump(), "{name}: dumps differ");
        assert_eq!(
            normalized(&ipt),
            normalized(&y),
            "{name}: IR differs beyond spans and counters"
        );
        insta::assert_snapshot!(format!("example_{name}"), y.dump());
    }
}

#[test]
fn fixtures_good_lower_and_snapshot() {
    for path in files(&manifest().join("tests/fixtures/yaml/good"), "yaml") {
        let src = load(&path);
        let l =
            yaml::lower(&src).unwrap_or_else(|d| panic!("{}:\n{}", src.name, render_all(&d, &src)));
        ir::verify(&l.ruleset).expect("verifies");
        let mut out = l.ruleset.dump();
        if !l.diagnostics.is_empty() {
            out.push_str("---\n");
            out.push_str(&render_all(&l.diagnostics, &src));
        }
        insta::assert_snapshot!(format!("good_{}", stem(&path)), out);
        // What the printer makes of it reads back the same.
        let printed = yaml::print(&l.ruleset, &Annotations::default());
        let again = lower_yaml(&SourceFile::new("printed.yaml", printed.clone()));
        assert_eq!(
            normalized(&again),
            normalized(&l.ruleset),
            "{}: printed:\n{printed}",
            src.name
        );
    }
}

#[test]
fn fixtures_bad_report_located_errors() {
    let docs = std::fs::read_to_string(manifest().join("../docs/yaml.md")).expect("docs/yaml.md");
    let diag_docs = std::fs::read_to_string(manifest().join("../docs/diagnostics.md"))
        .expect("docs/diagnostics.md");
    for path in files(&manifest().join("tests/fixtures/yaml/bad"), "yaml") {
        let src = load(&path);
        let diags = match yaml::lower(&src) {
            Ok(l) => panic!("{} lowered but must not:\n{}", src.name, l.ruleset.dump()),
            Err(d) => d,
        };
        for d in &diags {
            let span = d
                .span
                .unwrap_or_else(|| panic!("{}: unlocated {d:?}", src.name));
            assert!(
                span.end as usize <= src.text.len(),
                "{}: span past the end",
                src.name
            );
            assert!(
                docs.contains(&format!("## {}", d.code)),
                "{} not documented in docs/yaml.md",
                d.code
            );
            assert!(
                diag_docs.contains(&format!("### {}", d.code)),
                "{} not in docs/diagnostics.md",
                d.code
            );
        }
        insta::assert_snapshot!(format!("bad_{}", stem(&path)), render_all(&diags, &src));
    }
}

#[test]
fn examples_print_reads_back() {
    let dir = manifest().join("../examples/rulesets");
    for path in files(&dir, "yaml") {
        let rs = lower_yaml(&load(&path));
        let printed = yaml::print(&rs, &Annotations::default());
        let again = lower_yaml(&SourceFile::new("printed.yaml", printed));
        assert_eq!(normalized(&again), normalized(&rs), "{}", path.display());
    }
}

#[test]
fn print_annotations_and_counters_are_comments() {
    let src = SourceFile::new(
        "a.rules",
        "*filter\n:INPUT DROP [0:0]\n[3:180] -A INPUT -s 10.0.0.0/8 -m comment --comment \"say \\\"hi\\\"\" -j ACCEPT\n-A INPUT -p tcp --dport 22 -j DROP\nCOMMIT\n",
    );
    let rs = lower::iptables(&src).expect("lowers").ruleset;
    let mut notes = Annotations::default();
    notes.header.push("migrated from a.rules".into());
    notes
        .before_rule
        .insert(ir::RuleId(1), vec!["line 4: exact".into()]);
    notes.chain_end.insert(
        ir::ChainId(0),
        vec!["unsupported (line 9): -j LOG\n  -A INPUT -j LOG".into()],
    );
    let printed = yaml::print(&rs, &notes);
    insta::assert_snapshot!("print_annotations", printed);
    let again = lower_yaml(&SourceFile::new("printed.yaml", printed));
    assert_eq!(normalized(&again), normalized(&rs));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// print then lower gives the ruleset back (spans, counters and single-value spellings aside).
    #[test]
    fn print_round_trips(rs in tailwall_compiler::testgen::arb_ruleset(12)) {
        let printed = yaml::print(&rs, &Annotations::default());
        let src = SourceFile::new("printed.yaml", printed.clone());
        let again = match yaml::lower(&src) {
            Ok(l) => l.ruleset,
            Err(d) => panic!("printed ruleset does not read back:\n{printed}\n{}", render_all(&d, &src)),
        };
        prop_assert_eq!(normalized(&again), normalized(&rs), "printed:\n{}", printed);
    }

    /// Mangled YAML (bytes replaced, cut short, lines swapped) never panics, and every diagnostic
    /// points inside the text.
    #[test]
    fn lower_never_panics_on_mangled_input(
        which in 0usize..4,
        edits in prop::collection::vec((any::<prop::sample::Index>(), prop::sample::select(
            vec!["", " ", "\n", ":", "-", "[", "]", "{", "}", "\"", "'", "#", "@", "!", "&a", "*a", "~", "65536", "/33", "not", "jump: x", "\t", "é", "\u{0}"])), 1..6),
    ) {
        let dir = manifest().join("../examples/rulesets");
        let mut inputs = files(&dir, "yaml");
        inputs.extend(files(&manifest().join("tests/fixtures/yaml/good"), "yaml"));
        let mut text = std::fs::read_to_string(&inputs[which % inputs.len()]).expect("read");
        for (at, ins) in edits {
            let mut i = at.index(text.len() + 1);
            while !text.is_char_boundary(i) {
                i -= 1;
            }
            let end = (i + 3).min(text.len());
            let end = (end..=text.len()).find(|&e| text.is_char_boundary(e)).unwrap_or(text.len());
            text.replace_range(i..end, ins);
        }
        let src = SourceFile::new("mangled.yaml", text.clone());
        if let Err(diags) = yaml::lower(&src) {
            prop_assert!(diags.iter().any(|d| d.is_error()));
            for d in &diags {
                if let Some(s) = d.span {
                    prop_assert!(s.start <= s.end && s.end as usize <= text.len(), "{:?} in {:?}", d, text);
                }
                let _ = d.render(&src);
            }
        }
    }
}

/// Rulesets using everything the IR has: all hooks and user chains in any order, jumps/gotos (forward
/// between user chains, so no loops), returns, sets of every kind, lists, ranges, negations,
/// interfaces where the hook has them, comments of arbitrary text.
fn arb_full_ruleset() -> impl Strategy<Value = Ruleset> {
    use tailwall_compiler::ir::{
        Action, Chain, ChainId, Hook, Match, NamedSet, Rule, RuleId, SetKind, Verdict,
    };

    fn addr_test() -> impl Strategy<Value = Test> {
        prop_oneof![
            (any::<u32>(), 0u8..=32).prop_map(|(a, len)| Test::Prefix {
                addr: (a & u32::MAX.checked_shl(32 - len as u32).unwrap_or(0)).into(),
                len
            }),
            (any::<u32>(), any::<u32>()).prop_map(|(a, b)| Test::Range {
                lo: a.min(b),
                hi: a.max(b)
            }),
        ]
    }
    fn port_test() -> impl Strategy<Value = Test> {
        (any::<u16>(), any::<u16>()).prop_map(|(a, b)| Test::Range {
            lo: a.min(b) as u32,
            hi: a.max(b) as u32,
        })
    }
    fn proto_test() -> impl Strategy<Value = Test> {
        prop_oneof![
            (1u32..=255).prop_map(Test::Exact),
            (1u32..=255, 1u32..=255).prop_map(|(a, b)| Test::Range {
                lo: a.min(b),
                hi: a.max(b)
            }),
        ]
    }
    fn iface_test() -> impl Strategy<Value = Test> {
        prop_oneof![
            "[a-z][a-z0-9.:_-]{0,14}".prop_map(|name| Test::Iface {
                name,
                wildcard: false
            }),
            "[a-z0-9.:_-]{0,14}".prop_map(|name| Test::Iface {
                name,
                wildcard: true
            }),
        ]
    }
    let set_name = "[a-z_][a-z0-9_.-]{0,8}";
    let sets = prop::collection::btree_map(
        set_name,
        prop_oneof![
            prop::collection::vec(addr_test(), 1..4).prop_map(|e| (SetKind::Addr, e)),
            prop::collection::vec(port_test(), 1..4).prop_map(|e| (SetKind::Port, e)),
            prop::collection::vec(proto_test(), 1..4).prop_map(|e| (SetKind::Proto, e)),
        ],
        0..4,
    );
    let user_names =
        prop::collection::btree_set("[A-Za-z_][A-Za-z0-9_-]{0,10}", 0..4).prop_map(|s| {
            s.into_iter()
                .filter(|n| {
                    !matches!(
                        n.to_ascii_lowercase().as_str(),
                        "input" | "forward" | "output"
                    ) && ![
                        "ACCEPT",
                        "DROP",
                        "RETURN",
                        "QUEUE",
                        "NFQUEUE",
                        "PREROUTING",
                        "POSTROUTING",
                    ]
                    .contains(&n.as_str())
                })
                .collect::<Vec<_>>()
        });
    // One generated rule: raw choices, turned into a Rule once the chain layout is known.
    #[derive(Clone, Debug)]
    struct RawRule {
        src: Option<(Vec<Test>, bool, usize)>,
        dst: Option<(Vec<Test>, bool, usize)>,
        proto: Option<(Vec<Test>, bool, usize)>,
        ports: Option<(Vec<Test>, bool, usize)>,
        sport: bool,
        l4: u8,
        in_if: Option<(Vec<Test>, bool)>,
        out_if: Option<(Vec<Test>, bool)>,
        action: u8,
        target: usize,
        comment: Option<String>,
    }
    let opt_list = |s: BoxedStrategy<Test>| {
        prop::option::weighted(
            0.4,
            (prop::collection::vec(s, 1..4), any::<bool>(), 0usize..8),
        )
    };
    let raw_rule = (
        (
            opt_list(addr_test().boxed()),
            opt_list(addr_test().boxed()),
            opt_list(proto_test().boxed()),
            opt_list(port_test().boxed()),
            any::<bool>(),
            0u8..3,
        ),
        (
            prop::option::weighted(
                0.3,
                (prop::collection::vec(iface_test(), 1..3), any::<bool>()),
            ),
            prop::option::weighted(
                0.3,
                (prop::collection::vec(iface_test(), 1..3), any::<bool>()),
            ),
            0u8..5,
            any::<usize>(),
            prop::option::weighted(
                0.3,
                "\\PC{0,30}|[\"'\\\\#:@!\n\t\u{0}\u{85}\u{2028}\u{feff} ]{1,8}",
            ),
        ),
    )
        .prop_map(
            |((src, dst, proto, ports, sport, l4), (in_if, out_if, action, target, comment))| {
                RawRule {
                    src,
                    dst,
                    proto,
                    ports,
                    sport,
                    l4,
                    in_if,
                    out_if,
                    action,
                    target,
                    comment,
                }
            },
        );
    let hooks = prop::collection::vec(
        prop::option::of(prop_oneof![Just(Verdict::Accept), Just(Verdict::Drop)]),
        3,
    );
    (
        sets,
        user_names,
        hooks,
        prop::collection::vec(prop::collection::vec(raw_rule, 0..5), 7),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(sets, users, hooks, bodies, rot)| {
            let sets: Vec<NamedSet> = sets
                .into_iter()
                .map(|(name, (field_kind, elements))| NamedSet {
                    name,
                    field_kind,
                    elements,
                    span: Span::default(),
                })
                .collect();
            // Layout: the present hooks and the user chains, rotated so user chains may come first.
            let mut layout: Vec<(Option<Hook>, Option<Verdict>, String)> = Hook::ALL
                .iter()
                .zip(&hooks)
                .filter_map(|(h, p)| p.map(|p| (Some(*h), Some(p), h.chain_name().to_string())))
                .collect();
            layout.extend(users.iter().map(|n| (None, None, n.clone())));
            if !layout.is_empty() {
                let k = rot.index(layout.len());
                layout.rotate_left(k);
            }
            let user_id = |u: usize| -> ChainId {
                ChainId(
                    layout
                        .iter()
                        .position(|(h, _, n)| h.is_none() && *n == users[u])
                        .expect("user chain") as u32,
                )
            };
            // Hooks that reach each user chain: built-ins jump anywhere, user chain i only to j > i.
            let mut next = 0u32;
            let mut chains = Vec::new();
            for (ci, ((hook, policy, name), body)) in layout.iter().zip(&bodies).enumerate() {
                let my_user = users.iter().position(|u| hook.is_none() && u == name);
                let mut rules = Vec::new();
                for (ri, raw) in body.iter().enumerate() {
                    let pick_set = |kind: SetKind, i: usize| {
                        let of_kind: Vec<&NamedSet> =
                            sets.iter().filter(|s| s.field_kind == kind).collect();
                        (i.is_multiple_of(2) && !of_kind.is_empty())
                            .then(|| of_kind[i / 2 % of_kind.len()])
                    };
                    let mk =
                        |field: Field,
                         kind: SetKind,
                         (tests, negated, i): &(Vec<Test>, bool, usize)| {
                            match pick_set(kind, *i) {
                                Some(s) => Match {
                                    field,
                                    tests: s.elements.clone(),
                                    negated: *negated,
                                    set: Some(s.name.clone()),
                                    span: Span::default(),
                                },
                                None => Match {
                                    field,
                                    tests: tests.clone(),
                                    negated: *negated,
                                    set: None,
                                    span: Span::default(),
                                },
                            }
                        };
                    let mut matches = Vec::new();
                    if let Some(s) = &raw.src {
                        matches.push(mk(Field::SrcIp, SetKind::Addr, s));
                    }
                    if let Some(d) = &raw.dst {
                        matches.push(mk(Field::DstIp, SetKind::Addr, d));
                    }
                    match (&raw.ports, raw.l4) {
                        (Some(p), l4) => {
                            let tcp_udp = match l4 {
                                0 => vec![Test::Exact(6)],
                                1 => vec![Test::Exact(17)],
                                _ => vec![Test::Exact(6), Test::Exact(17)],
                            };
                            matches.push(Match {
                                field: Field::Proto,
                                tests: tcp_udp,
                                negated: false,
                                set: None,
                                span: Span::default(),
                            });
                            let field = if raw.sport {
                                Field::SrcPort
                            } else {
                                Field::DstPort
                            };
                            matches.push(mk(field, SetKind::Port, p));
                        }
                        (None, _) => {
                            if let Some(p) = &raw.proto {
                                matches.push(mk(Field::Proto, SetKind::Proto, p));
                            }
                        }
                    }
                    // Interfaces: only in the hook chains that have them (user chains may be reached from
                    // anywhere).
                    if let (Some((t, n)), Some(Hook::Input | Hook::Forward)) = (&raw.in_if, hook) {
                        matches.push(Match {
                            field: Field::InIface,
                            tests: t.clone(),
                            negated: *n,
                            set: None,
                            span: Span::default(),
                        });
                    }
                    if let (Some((t, n)), Some(Hook::Output | Hook::Forward)) = (&raw.out_if, hook)
                    {
                        matches.push(Match {
                            field: Field::OutIface,
                            tests: t.clone(),
                            negated: *n,
                            set: None,
                            span: Span::default(),
                        });
                    }
                    matches.sort_by_key(|m| m.field);
                    let targets: Vec<usize> = match my_user {
                        None => (0..users.len()).collect(),
                        Some(u) => (u + 1..users.len()).collect(),
                    };
                    let action = match raw.action {
                        0 => Action::Accept,
                        1 => Action::Drop,
                        2 => Action::Return,
                        a if !targets.is_empty() => {
                            let t = user_id(targets[raw.target % targets.len()]);
                            if a == 3 {
                                Action::Jump(t)
                            } else {
                                Action::Goto(t)
                            }
                        }
                        _ => Action::Drop,
                    };
                    rules.push(Rule {
                        id: RuleId(next),
                        chain: ChainId(ci as u32),
                        position: ri as u32 + 1,
                        matches,
                        action,
                        comment: raw.comment.clone(),
                        counters: None,
                        span: Span::default(),
                    });
                    next += 1;
                }
                chains.push(Chain {
                    id: ChainId(ci as u32),
                    name: name.clone(),
                    hook: *hook,
                    policy: *policy,
                    rules,
                    span: Span::default(),
                });
            }
            Ruleset {
                family: Default::default(),
                chains,
                sets,
                logs: Vec::new(),
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Print then lower gives back any IR ruleset: every chain kind, action, set, list and interface.
    #[test]
    fn print_round_trips_full_ir(rs in arb_full_ruleset()) {
        ir::verify(&rs).expect("the generator makes valid rulesets");
        let printed = yaml::print(&rs, &Annotations::default());
        let src = SourceFile::new("printed.yaml", printed.clone());
        let again = match yaml::lower(&src) {
            Ok(l) => l.ruleset,
            Err(d) => panic!("printed ruleset does not read back:\n{printed}\n{}", render_all(&d, &src)),
        };
        prop_assert_eq!(normalized(&again), normalized(&rs), "printed:\n{}", printed);
    }
}

#[test]
fn lower_refuses_deep_nesting_and_alias_bombs() {
    let deep = format!("chains: {}{}", "[".repeat(100_000), "]".repeat(100_000));
    let bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\nchains: *g\n";
    for text in [deep.as_str(), bomb] {
        let src = SourceFile::new("evil.yaml", text);
        let diags = yaml::lower(&src).expect_err("refused");
        assert_eq!(diags[0].code, "E0401", "{}", render_all(&diags, &src));
        assert!(diags[0].span.is_some());
    }
}

#[test]
fn docs_yaml_examples_lower() {
    let docs = std::fs::read_to_string(manifest().join("../docs/yaml.md")).expect("docs/yaml.md");
    let mut checked = 0;
    for (i, block) in docs.split("```yaml\n").skip(1).enumerate() {
        let block = block.split("```").next().unwrap_or("");
        // Complete documents only; fragments (a rule, a `sets:` excerpt, `[...]` placeholders) are not.
        if !block.contains("chains:") || block.contains("[...]") {
            continue;
        }
        let src = SourceFile::new(format!("docs-block-{i}.yaml"), block);
        if let Err(d) = yaml::lower(&src) {
            panic!(
                "docs/yaml.md example {i} does not lower:\n{block}\n{}",
                render_all(&d, &src)
            );
        }
        checked += 1;
    }
    assert!(checked >= 2, "only {checked} complete examples found");
}

/// Spans and counters cleared, nothing else: the two front ends must agree on every test's spelling.
fn without_spans(rs: &Ruleset) -> Ruleset {
    let mut rs = rs.clone();
    rs.sets.iter_mut().for_each(|s| s.span = Span::default());
    for c in &mut rs.chains {
        c.span = Span::default();
        for r in &mut c.rules {
            r.span = Span::default();
            r.counters = None;
            r.matches.iter_mut().for_each(|m| m.span = Span::default());
        }
    }
    rs
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// What the iptables front end builds from a dump (user chains, jumps, gotos, returns, multiport
    /// lists), printed as YAML, lowers to exactly the same IR: same chains, ids, tests and their spelling.
    #[test]
    fn iptables_ir_prints_as_identical_yaml(rs in tailwall_compiler::testgen::arb_ruleset_with(
        tailwall_compiler::testgen::RulesetOpts { port_lists: true, user_chains: true, ..tailwall_compiler::testgen::RulesetOpts::new(8) },
    )) {
        let text = tailwall_compiler::testgen::iptables_restore_text(&rs);
        let ipt = SourceFile::new("gen.rules", text.clone());
        let a = match lower::iptables(&ipt) {
            Ok(l) => l.ruleset,
            Err(d) => panic!("generated dump does not lower:\n{text}\n{}", render_all(&d, &ipt)),
        };
        let printed = yaml::print(&a, &Annotations::default());
        let src = SourceFile::new("printed.yaml", printed.clone());
        let b = match yaml::lower(&src) {
            Ok(l) => l.ruleset,
            Err(d) => panic!("printed YAML does not lower:\n{printed}\n{}", render_all(&d, &src)),
        };
        prop_assert_eq!(without_spans(&a), without_spans(&b), "dump:\n{}\nyaml:\n{}", text, printed);
    }
}

/// `migrate`'s whole path on a generated dump: the filter table it keeps, printed as YAML, lowers to
/// the IR the iptables front end builds from the same dump (issue 7 item 3: "iptables-save → migrate →
/// YAML lowers to the identical IR, including IPv6 rulesets").
fn migrate_round_trip(rs: &Ruleset) -> Result<(), TestCaseError> {
    let text = tailwall_compiler::testgen::iptables_restore_text(rs);
    let ipt = SourceFile::new("gen.rules", text.clone());
    let direct = match lower::iptables(&ipt) {
        Ok(l) => l.ruleset,
        Err(d) => panic!(
            "generated dump does not lower:\n{text}\n{}",
            render_all(&d, &ipt)
        ),
    };
    let m = match lower::migrate(&ipt) {
        Ok(m) => m,
        Err(d) => panic!(
            "generated dump does not migrate:\n{text}\n{}",
            render_all(&d, &ipt)
        ),
    };
    // Every generated rule is kept (exact, or approximated only for a chain no hook reaches).
    prop_assert!(
        m.rules.iter().all(|r| !matches!(
            r.status,
            tailwall_compiler::lower::RuleStatus::Unsupported(_)
        )),
        "a generated rule is left out:\n{text}"
    );
    let printed = yaml::print(&m.ruleset, &Annotations::default());
    let src = SourceFile::new("migrated.yaml", printed.clone());
    let back = match yaml::lower(&src) {
        Ok(l) => l.ruleset,
        Err(d) => panic!(
            "migrated YAML does not lower:\n{printed}\n{}",
            render_all(&d, &src)
        ),
    };
    prop_assert_eq!(back.family, rs.family, "yaml:\n{}", printed);
    prop_assert_eq!(
        without_spans(&back),
        without_spans(&direct),
        "dump:\n{}\nyaml:\n{}",
        text,
        printed
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// IPv4 dumps with every hook, user chains, interfaces and port lists survive `migrate` unchanged.
    #[test]
    fn migrate_round_trips_ipv4(rs in tailwall_compiler::testgen::arb_ruleset_with(
        tailwall_compiler::testgen::RulesetOpts {
            port_lists: true, user_chains: true, hooks: true, ifaces: true, header_matches: true, ct_state: true,
            ..tailwall_compiler::testgen::RulesetOpts::new(6)
        },
    )) {
        migrate_round_trip(&rs)?;
    }

    /// The same for `ip6tables-save` dumps (the IPv6 twins of generated rulesets: `src_ip6`/`dst_ip6`,
    /// `ipv6-icmp`); the YAML keeps `family: ipv6`.
    #[test]
    fn migrate_round_trips_ipv6(rs in tailwall_compiler::testgen::arb_ruleset_with(
        tailwall_compiler::testgen::RulesetOpts {
            port_lists: true, user_chains: true, hooks: true, ifaces: true,
            ..tailwall_compiler::testgen::RulesetOpts::new(6)
        },
    )) {
        migrate_round_trip(&tailwall_compiler::testgen::to_ipv6(&rs))?;
    }
}
