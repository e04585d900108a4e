//! The filter table's chains in IR order (declared chains, built-in chains used without a chain line,
//! INPUT added when missing), numbering of the kept chains and rules, and the notes for the other tables.
use crate::diag::{Diagnostic, Span};
use crate::ir::{Action, Chain, ChainId, Family, Hook, Rule, RuleId, Ruleset, Verdict};
use crate::syntax::iptables::{self as syn, Policy, RuleLine, TableKind};
use std::collections::HashMap;

/// A chain of the filter table before numbering.
pub(super) struct Plan<'a> {
    pub name: String,
    pub hook: Option<Hook>,
    pub policy: Option<Verdict>,
    pub span: Span,
    pub rules: Vec<&'a RuleLine>,
}

/// The filter table's chains in IR order, with the INPUT policy warnings.
pub(super) fn plan_chains<'a>(ast: &'a syn::Ast, warnings: &mut Vec<Diagnostic>) -> Vec<Plan<'a>> {
    let filter = ast.table(TableKind::Filter);
    let mut plans: Vec<Plan> = Vec::new();
    let policy_of = |p: Policy| match p {
        Policy::Drop => Verdict::Drop,
        _ => Verdict::Accept,
    };
    if let Some(t) = filter {
        for c in &t.chains {
            let hook = Hook::from_chain_name(&c.name.text);
            plans.push(Plan {
                name: c.name.text.clone(),
                hook,
                policy: hook.map(|_| policy_of(c.policy)),
                span: c.span,
                rules: Vec::new(),
            });
            if c.name.text == "INPUT" && c.policy == Policy::None {
                warnings.push(
                    Diagnostic::warning(
                        "W0003",
                        "INPUT policy `-` keeps the kernel's current policy; assuming ACCEPT",
                    )
                    .at(c.policy_token.span)
                    .help(
                        "write the policy explicitly: `:INPUT ACCEPT [0:0]` or `:INPUT DROP [0:0]`",
                    ),
                );
            }
        }
        for r in &t.rules {
            if !plans.iter().any(|p| p.name == r.chain.text) {
                // A built-in chain used without a chain line (the parser rejects undeclared user chains).
                let hook = Hook::from_chain_name(&r.chain.text);
                if r.chain.text == "INPUT" {
                    warnings.push(
                        Diagnostic::warning("W0003", "no `:INPUT` chain line; assuming policy ACCEPT")
                            .at(r.chain.span)
                            .help("iptables-restore keeps the kernel's current policy; declare it: `:INPUT DROP [0:0]`"),
                    );
                }
                plans.push(Plan {
                    name: r.chain.text.clone(),
                    hook,
                    policy: hook.map(|_| Verdict::Accept),
                    span: r.chain.span,
                    rules: Vec::new(),
                });
            }
            if let Some(p) = plans.iter_mut().find(|p| p.name == r.chain.text) {
                p.rules.push(r);
            }
        }
    }
    if !plans.iter().any(|p| p.name == "INPUT") {
        let w = match filter {
            Some(t) => Diagnostic::warning("W0002", "table `filter` has no INPUT chain; INPUT accepts everything")
                .at(t.span)
                .help("add `:INPUT ACCEPT [0:0]` (or DROP) and `-A INPUT …` rules to filter incoming traffic"),
            None => Diagnostic::warning("W0002", "no `*filter` table; INPUT accepts everything")
                .help("tailwall enforces the filter table's INPUT chain; add a `*filter` … `COMMIT` block"),
        };
        warnings.push(w);
        plans.insert(
            0,
            Plan {
                name: "INPUT".into(),
                hook: Some(Hook::Input),
                policy: Some(Verdict::Accept),
                span: filter.map(|t| t.span).unwrap_or_default(),
                rules: Vec::new(),
            },
        );
    }
    plans
}

/// Number the kept chains and rules (`c0..`, `r0..` in order).
pub(super) fn renumber(
    family: Family,
    plans: Vec<Plan>,
    lowered: Vec<Vec<Rule>>,
    keep: Vec<bool>,
    pool: Vec<crate::ir::LogSpec>,
) -> Ruleset {
    // Log targets of the kept rules, renumbered in rule order.
    let mut logs = Vec::new();
    let mut new_id = vec![None; plans.len()];
    let mut n = 0u32;
    for (i, k) in keep.iter().enumerate() {
        if *k {
            new_id[i] = Some(ChainId(n));
            n += 1;
        }
    }
    let mut chains = Vec::new();
    let mut next_rule = 0u32;
    for ((p, rules), id) in plans.into_iter().zip(lowered).zip(new_id.iter()) {
        let Some(id) = *id else { continue };
        let rules = rules
            .into_iter()
            .enumerate()
            .map(|(i, mut r)| {
                r.id = RuleId(next_rule);
                next_rule += 1;
                r.chain = id;
                r.position = i as u32 + 1;
                r.action = match r.action {
                    Action::Jump(c) => Action::Jump(new_id[c.0 as usize].unwrap_or(c)),
                    Action::Goto(c) => Action::Goto(new_id[c.0 as usize].unwrap_or(c)),
                    Action::Log(l) => {
                        logs.push(
                            pool.get(l.0 as usize)
                                .cloned()
                                .unwrap_or_else(|| crate::ir::LogSpec::log("")),
                        );
                        Action::Log(crate::ir::LogId(logs.len() as u32 - 1))
                    }
                    a => a,
                };
                r
            })
            .collect();
        chains.push(Chain {
            id,
            name: p.name,
            hook: p.hook,
            policy: p.policy,
            rules,
            span: p.span,
        });
    }
    Ruleset {
        family,
        chains,
        sets: Vec::new(),
        logs,
    }
}

/// One `N0001` note per (table, chain) outside `filter` that has rules.
pub(super) fn note_ignored(ast: &syn::Ast, diags: &mut Vec<Diagnostic>) {
    for t in &ast.tables {
        if t.kind == TableKind::Filter {
            continue;
        }
        // (chain, where to point, rule count), in order of first appearance; linear in the table's size.
        let mut order: Vec<(&str, Span, usize)> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        for c in &t.chains {
            index.insert(&c.name.text, order.len());
            order.push((&c.name.text, c.span, 0));
        }
        for r in &t.rules {
            let i = *index.entry(&r.chain.text).or_insert_with(|| {
                order.push((&r.chain.text, r.span, 0));
                order.len() - 1
            });
            order[i].2 += 1;
        }
        for (name, at, n) in order {
            if n == 0 {
                continue;
            }
            let table = t.kind.name();
            let rules = if n == 1 { "rule" } else { "rules" };
            diags.push(
                Diagnostic::note(
                    "N0001",
                    format!("{n} {rules} in {table}/{name} not enforced: this version enforces the filter table only"),
                )
                .at(at),
            );
        }
    }
}
