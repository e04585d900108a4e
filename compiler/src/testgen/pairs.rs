//! Pairs of rulesets for the analysis tiers: semantics-preserving rewrites (must be equivalent) and
//! single mutations (may or may not change behaviour), shared by the userspace analysis test
//! (`compiler/tests/analysis.rs`, checked against a brute-force oracle) and the kernel tier
//! (`tests/tests/analysis_kernel.rs`, counterexamples replayed through the datapath).
//!
//! Every returned ruleset is renumbered (rule ids, positions) and passes [`ir::verify`].
use crate::analysis;
use crate::ir::{self, Action, Field, Hook, Lookup, Ruleset, Test, Verdict};

/// Renumber rule ids (`r0..` in chain order), chains and 1-based positions after an edit; panics
/// (a generator bug) when the result does not verify.
pub fn renumber(rs: &mut Ruleset) {
    let mut next = 0;
    for c in &mut rs.chains {
        for (i, r) in c.rules.iter_mut().enumerate() {
            r.id = ir::RuleId(next);
            next += 1;
            r.chain = c.id;
            r.position = i as u32 + 1;
        }
    }
    ir::verify(rs).unwrap_or_else(|e| panic!("{e}\n{}", rs.dump()));
}

fn terminal(a: Action) -> bool {
    matches!(a, Action::Accept | Action::Drop)
}

fn disjoint(x: &ir::Rule, y: &ir::Rule) -> bool {
    let space = analysis::Space::new(Hook::Input, &[]);
    x.matches.iter().any(|m| {
        y.get(m.field).is_some_and(|n| {
            m.field.info().lookup != Lookup::Iface
                && !space.match_set(m).intersects(&space.match_set(n))
        })
    })
}

/// Semantics-preserving rewrites of `rs` (each a different ruleset, renumbered), each with a label
/// (`swap c 2`, `split c 1`, `multiport`, `shadowed copy`, `inline`); `k` varies which rules are picked.
pub fn rewrites(rs: &Ruleset, k: usize) -> Vec<(String, Ruleset)> {
    let mut out = Vec::new();
    for (ci, c) in rs.chains.iter().enumerate() {
        let n = c.rules.len();
        for j in 0..n {
            let i = (j + k) % n;
            let r = &c.rules[i];
            // Reorder two adjacent disjoint terminal rules.
            if i + 1 < n
                && terminal(r.action)
                && terminal(c.rules[i + 1].action)
                && disjoint(r, &c.rules[i + 1])
            {
                let mut x = rs.clone();
                x.chains[ci].rules.swap(i, i + 1);
                out.push((format!("swap {} {}", c.name, i + 1), x));
            }
            // Split a prefix in two.
            if let Some(m) = r.get(Field::SrcIp).or(r.get(Field::DstIp)) {
                if let (Some(&Test::Prefix { addr, len }), false) = (m.single_test(), m.negated) {
                    if len < 32 && r.action != Action::Return {
                        let mut x = rs.clone();
                        let f = m.field;
                        let mut lo = r.clone();
                        let mut hi = r.clone();
                        let set = |rule: &mut ir::Rule, a| {
                            rule.matches
                                .iter_mut()
                                .find(|m| m.field == f)
                                .unwrap()
                                .tests = vec![Test::Prefix {
                                addr: a,
                                len: len + 1,
                            }];
                        };
                        set(&mut lo, addr);
                        set(&mut hi, addr | 1 << (31 - len));
                        x.chains[ci].rules.splice(i..=i, [lo, hi]);
                        out.push((format!("split {} {}", c.name, i + 1), x));
                    }
                }
            }
            // A port list as one rule per port (terminal rules only).
            if let Some(m) = r.get(Field::DstPort) {
                if m.tests.len() > 1 && !m.negated && terminal(r.action) {
                    let mut x = rs.clone();
                    let parts: Vec<ir::Rule> = m
                        .tests
                        .iter()
                        .map(|t| {
                            let mut p = r.clone();
                            p.matches
                                .iter_mut()
                                .find(|m| m.field == Field::DstPort)
                                .unwrap()
                                .tests = vec![t.clone()];
                            p
                        })
                        .collect();
                    x.chains[ci].rules.splice(i..=i, parts);
                    out.push((format!("multiport {} {}", c.name, i + 1), x));
                }
            }
            // A shadowed copy of a terminal rule right after it.
            if terminal(r.action) {
                let mut x = rs.clone();
                let mut dup = r.clone();
                dup.action = if r.action == Action::Accept {
                    Action::Drop
                } else {
                    Action::Accept
                };
                x.chains[ci].rules.insert(i + 1, dup);
                // Only shadowed when it cannot hotdrop where the original would not: same matches, so yes.
                out.push((format!("shadowed copy {} {}", c.name, i + 1), x));
            }
            // Inline a jump to a chain of terminal rules, when no field is tested by both.
            if let Action::Jump(t) = r.action {
                let tc = &rs.chains[t.0 as usize];
                let ok = !r.needs_l4()
                    && tc.rules.iter().all(|q| {
                        terminal(q.action) && q.matches.iter().all(|m| r.get(m.field).is_none())
                    });
                if ok {
                    let mut x = rs.clone();
                    let inlined: Vec<ir::Rule> = tc
                        .rules
                        .iter()
                        .map(|q| {
                            let mut q = q.clone();
                            q.matches.extend(r.matches.iter().cloned());
                            q.matches.sort_by_key(|m| m.field);
                            q
                        })
                        .collect();
                    x.chains[ci].rules.splice(i..=i, inlined);
                    out.push((format!("inline {} {}", c.name, i + 1), x));
                }
            }
        }
    }
    for (_, x) in &mut out {
        renumber(x);
    }
    out
}

/// Single mutations of `rs`: one port, one prefix length, one negation, one action, a moved rule (at
/// most three rules picked, varied by `k`), each with a label (`port of r3`, `action of r0`, …).
pub fn mutations(rs: &Ruleset, k: usize) -> Vec<(String, Ruleset)> {
    let mut out = Vec::new();
    let rules: Vec<(usize, usize)> = rs
        .chains
        .iter()
        .enumerate()
        .flat_map(|(ci, c)| (0..c.rules.len()).map(move |i| (ci, i)))
        .collect();
    if rules.is_empty() {
        let mut x = rs.clone();
        if let Some(c) = x.chains.first_mut() {
            c.policy = c.policy.map(|p| {
                if p == Verdict::Accept {
                    Verdict::Drop
                } else {
                    Verdict::Accept
                }
            });
            out.push(("policy".into(), x));
        }
        return out;
    }
    for step in 0..rules.len().min(3) {
        let (ci, i) = rules[(k + step * 7) % rules.len()];
        let r = &rs.chains[ci].rules[i];
        let mut x = rs.clone();
        let xr = &mut x.chains[ci].rules[i];
        let mut what = None;
        for m in xr.matches.iter_mut() {
            match (m.field, m.tests.first().cloned()) {
                (Field::SrcPort | Field::DstPort, Some(Test::Exact(p))) if what.is_none() => {
                    m.tests[0] = Test::Exact((p + 1) % 65536);
                    what = Some("port");
                }
                (Field::SrcPort | Field::DstPort, Some(Test::Range { lo, hi }))
                    if what.is_none() && lo < hi =>
                {
                    m.tests[0] = Test::Range { lo: lo + 1, hi };
                    what = Some("port");
                }
                (Field::SrcIp | Field::DstIp, Some(Test::Prefix { addr, len }))
                    if what.is_none() && len > 0 =>
                {
                    let nl = if k.is_multiple_of(2) && len < 32 {
                        len + 1
                    } else {
                        len - 1
                    };
                    let mask = if nl == 0 { 0 } else { u32::MAX << (32 - nl) };
                    m.tests[0] = Test::Prefix {
                        addr: addr & u128::from(mask),
                        len: nl,
                    };
                    what = Some("prefix length");
                }
                _ => {}
            }
        }
        if let Some(w) = what {
            out.push((format!("{w} of {}", r.id), x.clone()));
        }
        let mut x = rs.clone();
        let xr = &mut x.chains[ci].rules[i];
        let l4 = xr.needs_l4();
        if let Some(m) = xr
            .matches
            .iter_mut()
            .rev()
            .find(|m| !(l4 && m.field == Field::Proto))
        {
            m.negated = !m.negated;
            out.push((format!("negation of {} {}", r.id, m.field), x));
        }
        let mut x = rs.clone();
        let xr = &mut x.chains[ci].rules[i];
        xr.action = match xr.action {
            Action::Accept => Action::Drop,
            Action::Drop | Action::Reject(_) => Action::Accept,
            Action::Return => Action::Accept,
            Action::Jump(_) | Action::Goto(_) | Action::Log(_) => Action::Drop,
        };
        out.push((format!("action of {}", r.id), x));
        let n = rs.chains[ci].rules.len();
        if n > 1 {
            let mut x = rs.clone();
            let moved = x.chains[ci].rules.remove(i);
            x.chains[ci].rules.insert((i + 1 + k) % n, moved);
            out.push((format!("move {}", r.id), x));
        }
    }
    for (_, x) in &mut out {
        renumber(x);
    }
    out
}
