//! Lowering: iptables-save AST → IR.
//!
//! Every rule is first typed and validated by the extension registry ([`rule::type_rule`]: errors are what
//! iptables-restore or the kernel would reject), then lowered here.
//!
//! What this stage guarantees: the returned [`Ruleset`] holds the `filter` table's built-in chains
//! INPUT/FORWARD/OUTPUT and its user chains, in order of declaration (INPUT first when it is not declared),
//! each with all its rules in order, and passes [`crate::ir::verify`]. Every option of a rule is either
//! compiled into a [`Match`], the action or the comment, or reported: in INPUT and in every chain INPUT
//! can reach by `-j`/`-g`, as an error (`E02xx`, the rule cannot be represented); in a chain INPUT cannot
//! reach (FORWARD, OUTPUT, their user chains), the whole chain is left out with one `N0003` note naming the
//! first such rule, and so is every chain that jumps to a chain left out. Nothing is dropped silently. All
//! errors of the file are reported at once; `Err` carries every diagnostic (at least one error).
//!
//! What it throws away: rules of the other tables (typed and validated, then summarised by one `N0001`
//! note per chain), option order and spelling, `-m tcp`/`-m udp`/`-m multiport` module names (kept only as
//! the constraints they impose: `proto` exact, multiport lists as one match with several tests, and a
//! `dst_port` 0-65535 match for a tcp/udp match without port options, because it still fails on packets
//! without ports), host bits of addresses (masked like iptables does, with warning `W0001`), `-p all`
//! (no constraint), `-i +` (any interface: no constraint). Several `-m comment --comment` of one rule
//! are joined with `"; "`.
//!
//! Deliberate differences from iptables-restore: a field matched twice in one rule (e.g. `--dport` and
//! `-m multiport --dports`) is an error (iptables ANDs them; the IR has one match per field); a built-in
//! chain used without a chain line is accepted, as iptables-restore does, with warning `W0003` for INPUT
//! (policy assumed ACCEPT); jump chains nested deeper than [`ir::MAX_CALL_DEPTH`] are rejected (`E0313`).
//!
//! Codes: `E02xx` "not supported yet", `E03xx` semantic errors, `W0xxx` warnings, `N0xxx` notes; the
//! parser's `E01xx` pass through. docs/diagnostics.md lists them all.
use crate::diag::{Diagnostic, SourceFile, Span};
use crate::ir::{
    self, Action, Chain, ChainId, Field, Hook, Match, Rule, RuleId, Ruleset, Test, Verdict,
};
use crate::syntax::iptables::ext::{Family, Given, Inst, Val};
use crate::syntax::iptables::rule::{
    detect_family, type_rule, IpNet, Module, Neg, Place, Target, TypedRule,
};
use crate::syntax::iptables::{self as syn, OptKind, Policy, RuleLine, TableKind, Value};
use std::collections::{HashMap, HashSet};

mod migrate;
pub use migrate::{migrate, Migration, RuleReport, RuleStatus, TableReport};

/// The feature list every "not supported yet" diagnostic repeats.
pub const SUPPORTED: &str = "supported in this version: -s, -d, -i, -o, -p, -m tcp/udp --sport/--dport, -m multiport --sports/--dports, -m comment, -j ACCEPT/DROP/RETURN, -j/-g user chains";

/// iptables' comment match stores at most 255 bytes (XT_MAX_COMMENT_LEN 256 with the NUL).
pub const MAX_COMMENT_LEN: usize = 255;

/// A successfully lowered file.
#[derive(Clone, Debug)]
pub struct Lowered {
    pub ruleset: Ruleset,
    /// Warnings and notes (no errors).
    pub diagnostics: Vec<Diagnostic>,
}

/// Parse and lower an iptables-save / iptables-restore file. Err carries ALL diagnostics (>= 1 error).
pub fn iptables(src: &SourceFile) -> Result<Lowered, Vec<Diagnostic>> {
    let (ast, mut diags) = syn::parse(src);
    let ruleset = lower_ast(&ast, detect_family(&src.text), &mut diags);
    finish(ruleset, diags)
}

/// The common end of every front end: diagnostics in source order (stable: same-position ones keep the
/// order they were found in; unlocated ones go last), `Err` if any is an error, else the ruleset after
/// [`ir::verify`] — a violated invariant is a bug in the front end, reported as `E0999`.
pub(crate) fn finish(
    ruleset: Ruleset,
    mut diags: Vec<Diagnostic>,
) -> Result<Lowered, Vec<Diagnostic>> {
    diags.sort_by_key(|d| d.span.map(|s| s.start).unwrap_or(u32::MAX));
    if diags.iter().any(Diagnostic::is_error) {
        return Err(diags);
    }
    if let Err(e) = ir::verify(&ruleset) {
        debug_assert!(false, "{e}");
        return Err(vec![Diagnostic::error(
            "E0999",
            format!("internal compiler error: {e}"),
        )]);
    }
    Ok(Lowered {
        ruleset,
        diagnostics: diags,
    })
}

/// A chain of the filter table before numbering.
struct Plan<'a> {
    name: String,
    hook: Option<Hook>,
    policy: Option<Verdict>,
    span: Span,
    rules: Vec<&'a RuleLine>,
}

/// The filter table's chains in IR order, with the INPUT policy warnings.
fn plan_chains<'a>(ast: &'a syn::Ast, warnings: &mut Vec<Diagnostic>) -> Vec<Plan<'a>> {
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

/// The place of a rule for the registry's checks.
fn place<'a>(t: &'a syn::Table, chain: &'a str, family: Family) -> Place<'a> {
    Place {
        family,
        table: t.kind.name(),
        chain,
        builtin: t.kind.is_builtin(chain),
    }
}

/// Lower a parsed file; problems are appended to `diags`.
pub fn lower_ast(ast: &syn::Ast, family: Family, diags: &mut Vec<Diagnostic>) -> Ruleset {
    let had_errors = diags.iter().any(Diagnostic::is_error);
    let mut warnings = Vec::new();
    let plans = plan_chains(ast, &mut warnings);
    if family == Family::V6 {
        let at = ast.tables.first().map(|t| t.span).unwrap_or_default();
        diags.push(
            Diagnostic::error(
                "E0208",
                "ip6tables-save input is not supported by the compiler yet",
            )
            .at(at)
            .help(
                "the datapath is IPv4 only; `tailwall migrate` reports what each IPv6 rule needs",
            ),
        );
    }
    let v6 = family == Family::V6;
    // Validate every rule of every table (iptables-restore would reject the file otherwise).
    let mut typed: HashMap<*const RuleLine, TypedRule> = HashMap::new();
    for t in &ast.tables {
        for line in &t.rules {
            match type_rule(&line.tokens, place(t, &line.chain.text, family)) {
                Ok(r) => {
                    typed.insert(line as *const RuleLine, r);
                }
                Err(ds) => diags.extend(ds),
            }
        }
    }
    let filter = ast.table(TableKind::Filter);
    check_targets(&plans, &typed, diags);
    let ids: HashMap<&str, usize> = plans
        .iter()
        .enumerate()
        .map(|(i, p)| (p.name.as_str(), i))
        .collect();
    // Lower each rule; per chain, the first problem.
    let mut lowered: Vec<Vec<Rule>> = Vec::new();
    let mut problems: Vec<Vec<Diagnostic>> = Vec::new();
    for (ci, p) in plans.iter().enumerate() {
        let mut rules = Vec::new();
        let mut errs = Vec::new();
        for line in &p.rules {
            let Some(r) = typed.get(&(*line as *const RuleLine)) else {
                continue;
            };
            match lower_typed(r, line, &ids) {
                Ok((matches, action, comment)) => rules.push(Rule {
                    id: RuleId(0),
                    chain: ChainId(ci as u32),
                    position: rules.len() as u32 + 1,
                    matches,
                    action,
                    comment,
                    counters: line.counters.map(|c| (c.packets, c.bytes)),
                    span: line.span,
                }),
                Err(e) => errs.extend(e),
            }
        }
        lowered.push(rules);
        problems.push(errs);
    }
    // Chains INPUT reaches must lower completely; the others are left out when they (or a chain they
    // reach) cannot.
    let edges: Vec<Vec<usize>> = lowered
        .iter()
        .map(|rs| {
            rs.iter()
                .filter_map(|r| r.action.target())
                .map(|c| c.0 as usize)
                .collect()
        })
        .collect();
    let reach = |start: usize| -> Vec<bool> {
        let mut seen = vec![false; plans.len()];
        let mut stack = vec![start];
        while let Some(c) = stack.pop() {
            if !std::mem::replace(&mut seen[c], true) {
                stack.extend(edges[c].iter().copied());
            }
        }
        seen
    };
    let from_input = reach(ids["INPUT"]);
    let mut keep = vec![true; plans.len()];
    for (ci, errs) in problems.iter().enumerate() {
        if errs.is_empty() || v6 {
            continue;
        }
        if from_input[ci] {
            diags.extend(errs.iter().cloned());
        } else {
            keep[ci] = false;
            let first = &errs[0];
            let mut d = Diagnostic::note(
                "N0003",
                format!(
                    "chain `{}` is left out (not enforced by this version): {}",
                    plans[ci].name, first.message
                ),
            );
            if let Some(s) = first.span {
                d = d.at(s);
            }
            warnings.push(d);
        }
    }
    // A chain reaching a chain left out is left out too.
    loop {
        let mut changed = false;
        for ci in 0..plans.len() {
            if keep[ci] && !from_input[ci] && edges[ci].iter().any(|&t| !keep[t]) {
                keep[ci] = false;
                changed = true;
                warnings.push(
                    Diagnostic::note(
                        "N0003",
                        format!(
                            "chain `{}` is left out: it jumps to a chain that is left out",
                            plans[ci].name
                        ),
                    )
                    .at(plans[ci].span),
                );
            }
        }
        if !changed {
            break;
        }
    }
    check_loops(&plans, &edges, &keep, &lowered, diags);
    note_ignored(ast, &mut warnings);
    if !had_errors && !diags.iter().any(Diagnostic::is_error) {
        diags.extend(warnings);
    } else {
        // Host-bit warnings and notes are noise next to errors, except the rule-level ones.
        diags.extend(warnings.into_iter().filter(|w| w.code == "W0001"));
    }
    host_bit_warnings(filter, &plans, &keep, diags);
    renumber(plans, lowered, keep)
}

/// `W0001` for addresses with host bits, in the chains that are kept.
fn host_bit_warnings(
    filter: Option<&syn::Table>,
    plans: &[Plan],
    keep: &[bool],
    diags: &mut Vec<Diagnostic>,
) {
    if filter.is_none() || diags.iter().any(Diagnostic::is_error) {
        return;
    }
    for (p, _) in plans.iter().zip(keep).filter(|(_, k)| **k) {
        for line in &p.rules {
            for opt in &line.options {
                let (OptKind::Source | OptKind::Destination, Value::Addr(a)) =
                    (opt.kind, &opt.value)
                else {
                    continue;
                };
                if a.has_host_bits() {
                    let net = std::net::Ipv4Addr::from(a.network());
                    let at = opt.args.first().map(|t| t.span).unwrap_or(opt.span);
                    diags.push(
                        Diagnostic::warning(
                            "W0001",
                            format!(
                                "`{}` has host bits set; iptables uses {net}/{}",
                                opt.args[0].text, a.len
                            ),
                        )
                        .at(at)
                        .label("host bits masked")
                        .help(format!("write `{net}/{}`", a.len)),
                    );
                }
            }
        }
    }
}

/// Loops (iptables: ELOOP) and nesting deeper than [`ir::MAX_CALL_DEPTH`], among the kept chains.
fn check_loops(
    plans: &[Plan],
    edges: &[Vec<usize>],
    keep: &[bool],
    lowered: &[Vec<Rule>],
    diags: &mut Vec<Diagnostic>,
) {
    // Longest path by DFS with colours; memoised depth.
    fn depth(
        c: usize,
        edges: &[Vec<usize>],
        keep: &[bool],
        state: &mut [u8],
        memo: &mut [usize],
    ) -> Result<usize, (usize, usize)> {
        if state[c] == 2 {
            return Ok(memo[c]);
        }
        state[c] = 1;
        let mut best = 0;
        for &t in &edges[c] {
            if !keep[t] {
                continue;
            }
            if state[t] == 1 {
                return Err((c, t));
            }
            best = best.max(1 + depth(t, edges, keep, state, memo)?);
        }
        state[c] = 2;
        memo[c] = best;
        Ok(best)
    }
    let mut state = vec![0u8; plans.len()];
    let mut memo = vec![0usize; plans.len()];
    for c in 0..plans.len() {
        if !keep[c] {
            continue;
        }
        match depth(c, edges, keep, &mut state, &mut memo) {
            Err((from, to)) => {
                let span = lowered[from]
                    .iter()
                    .find(|r| r.action.target() == Some(ChainId(to as u32)))
                    .map(|r| r.span)
                    .unwrap_or(plans[from].span);
                diags.push(
                    Diagnostic::error(
                        "E0313",
                        format!("chain loop: `{}` jumps back to `{}`", plans[from].name, plans[to].name),
                    )
                    .at(span)
                    .help("iptables rejects loops between chains (\"Too many levels of symbolic links\")"),
                );
                return;
            }
            Ok(d) if d > ir::MAX_CALL_DEPTH => {
                diags.push(
                    Diagnostic::error(
                        "E0313",
                        format!(
                            "chains nest {d} jumps deep from `{}`; at most {} are supported",
                            plans[c].name,
                            ir::MAX_CALL_DEPTH
                        ),
                    )
                    .at(plans[c].span),
                );
                return;
            }
            Ok(_) => {}
        }
    }
}

/// Number the kept chains and rules (`c0..`, `r0..` in order).
fn renumber(plans: Vec<Plan>, lowered: Vec<Vec<Rule>>, keep: Vec<bool>) -> Ruleset {
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
        chains,
        sets: Vec::new(),
    }
}

/// One `N0001` note per (table, chain) outside `filter` that has rules.
fn note_ignored(ast: &syn::Ast, diags: &mut Vec<Diagnostic>) {
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
                    format!("{n} {rules} in {table}/{name} not enforced: this version enforces filter/INPUT"),
                )
                .at(at),
            );
        }
    }
}

fn unsupported(code: &'static str, what: String, at: Span) -> Diagnostic {
    Diagnostic::error(code, format!("{what} is not supported yet"))
        .at(at)
        .help(SUPPORTED)
}

/// A value the registry guarantees could not be lowered: a compiler bug, reported, never a panic.
fn internal(at: Span) -> Diagnostic {
    Diagnostic::error("E0999", "internal compiler error: unexpected option value").at(at)
}

fn ports_match(field: Field, g: &Given) -> Option<Match> {
    let tests = match &g.val {
        Val::Range(a, b) => vec![Test::Range {
            lo: *a as u32,
            hi: *b as u32,
        }],
        Val::Ranges(rs) => rs
            .iter()
            .map(|&(a, b)| Test::Range {
                lo: a as u32,
                hi: b as u32,
            })
            .collect(),
        _ => return None,
    };
    Some(Match {
        field,
        tests,
        negated: g.neg,
        set: None,
        span: g.span,
    })
}

fn iface_match(field: Field, i: &Neg<String>) -> Option<Match> {
    let (name, wildcard) = match i.value.strip_suffix('+') {
        Some(n) => (n.to_string(), true),
        None => (i.value.clone(), false),
    };
    if name.is_empty() && wildcard && !i.negated {
        return None; // `-i +`: any interface.
    }
    Some(Match::single(
        field,
        Test::Iface { name, wildcard },
        i.negated,
        i.span,
    ))
}

/// The matches, action and comment of one typed rule, or the reasons it cannot be represented.
fn lower_typed(
    r: &TypedRule,
    line: &RuleLine,
    ids: &HashMap<&str, usize>,
) -> Result<(Vec<Match>, Action, Option<String>), Vec<Diagnostic>> {
    let mut errs = Vec::new();
    let mut matches: Vec<Match> = Vec::new();
    let mut comments: Vec<String> = Vec::new();
    let push = |m: Match, errs: &mut Vec<Diagnostic>, matches: &mut Vec<Match>| {
        if matches.iter().any(|x| x.field == m.field) {
            errs.push(
                Diagnostic::error("E0306", format!("{} is matched twice in one rule", m.field))
                    .at(m.span)
                    .label(format!("{} is already matched earlier in this rule", m.field))
                    .help("the IR has one match per field; split the rule or merge the values into one list"),
            );
            return;
        }
        matches.push(m);
    };
    for (field, a) in [(Field::SrcIp, &r.src), (Field::DstIp, &r.dst)] {
        let Some(a) = a else { continue };
        match a.value {
            IpNet::V4 { addr, mask } => match a.value.prefix_len() {
                Some(0) if !a.negated => {}
                Some(len) => push(
                    Match::single(
                        field,
                        Test::Prefix {
                            addr: u32::from(addr) & mask,
                            len,
                        },
                        a.negated,
                        a.span,
                    ),
                    &mut errs,
                    &mut matches,
                ),
                None => errs.push(
                    Diagnostic::error(
                        "E0207",
                        format!(
                            "non-contiguous netmask `{}` is not supported yet",
                            std::net::Ipv4Addr::from(mask)
                        ),
                    )
                    .at(a.span)
                    .help("use a contiguous mask such as /255.255.255.0 (a prefix length)"),
                ),
            },
            IpNet::V6 { .. } => errs.push(unsupported("E0208", "an IPv6 address".into(), a.span)),
        }
    }
    for (field, i) in [
        (Field::InIface, &r.in_iface),
        (Field::OutIface, &r.out_iface),
    ] {
        let Some(i) = i else { continue };
        if let Some(m) = iface_match(field, i) {
            push(m, &mut errs, &mut matches);
        }
    }
    if let Some(p) = &r.proto {
        if p.value != 0 {
            push(
                Match::single(Field::Proto, Test::Exact(p.value as u32), p.negated, p.span),
                &mut errs,
                &mut matches,
            );
        }
    }
    if let Some(f) = &r.fragment {
        errs.push(unsupported("E0201", "option `-f`".into(), f.span));
    }
    let mut transport: Option<&Inst> = None;
    for m in &r.matches {
        let inst = match m {
            Module::Typed(i) => i,
            Module::Generic { name, span, .. } => {
                errs.push(unsupported(
                    "E0202",
                    format!("match module `-m {name}`"),
                    *span,
                ));
                continue;
            }
        };
        match inst.name() {
            "tcp" | "udp" => {
                transport = Some(inst);
                for g in &inst.given {
                    let field = match g.name {
                        "sport" => Field::SrcPort,
                        "dport" => Field::DstPort,
                        other => {
                            errs.push(unsupported(
                                "E0201",
                                format!("tcp option `--{other}`"),
                                g.span,
                            ));
                            continue;
                        }
                    };
                    match ports_match(field, g) {
                        Some(m) => push(m, &mut errs, &mut matches),
                        None => errs.push(internal(g.span)),
                    }
                }
            }
            "multiport" => {
                if !matches!(r.proto.as_ref().map(|p| p.value), Some(6 | 17)) {
                    errs.push(unsupported(
                        "E0202",
                        "`-m multiport` with a protocol other than tcp or udp".into(),
                        inst.span,
                    ));
                    continue;
                }
                transport = Some(inst);
                for g in &inst.given {
                    let field = match g.name {
                        "sports" => Field::SrcPort,
                        "dports" => Field::DstPort,
                        _ => {
                            errs.push(unsupported(
                                "E0202",
                                "`-m multiport --ports` (source or destination)".into(),
                                g.span,
                            ));
                            continue;
                        }
                    };
                    match ports_match(field, g) {
                        Some(m) => push(m, &mut errs, &mut matches),
                        None => errs.push(internal(g.span)),
                    }
                }
            }
            "comment" => {
                for g in &inst.given {
                    if let Val::Text(t) = &g.val {
                        comments.push(t.clone());
                    }
                }
            }
            name => errs.push(unsupported(
                "E0202",
                format!("match module `-m {name}`"),
                inst.span,
            )),
        }
    }
    let action = match &r.target {
        None => {
            errs.push(
                Diagnostic::error("E0204", "a rule without `-j` is not supported yet")
                    .at(line.span)
                    .label("no target")
                    .help("add `-j ACCEPT` or `-j DROP`"),
            );
            None
        }
        Some((t, span)) => match t {
            Target::Verdict(v) if v == "ACCEPT" => Some(Action::Accept),
            Target::Verdict(v) if v == "DROP" => Some(Action::Drop),
            Target::Verdict(v) if v == "RETURN" => Some(Action::Return),
            Target::Jump(c) | Target::Goto(c) => match ids.get(c.as_str()) {
                Some(&i) if matches!(t, Target::Jump(_)) => Some(Action::Jump(ChainId(i as u32))),
                Some(&i) => Some(Action::Goto(ChainId(i as u32))),
                None => None, // reported (E0312) with the table's targets
            },
            Target::Verdict(v) => {
                errs.push(unsupported("E0203", format!("target `-j {v}`"), *span));
                None
            }
            Target::Ext(i) => {
                errs.push(unsupported(
                    "E0203",
                    format!("target `-j {}`", i.name()),
                    *span,
                ));
                None
            }
            Target::Generic { name, .. } => {
                errs.push(unsupported("E0203", format!("target `-j {name}`"), *span));
                None
            }
        },
    };
    if !errs.is_empty() {
        return Err(errs);
    }
    // A tcp/udp match without port options still fails on packets without ports (non-first fragments)
    // and drops truncated headers: keep it as a full-range port test.
    if let Some(inst) = transport {
        if !matches.iter().any(|m| m.field.info().transport) {
            matches.push(Match::single(
                Field::DstPort,
                Test::Range { lo: 0, hi: 65535 },
                false,
                inst.span,
            ));
        }
    }
    matches.sort_by_key(|m| m.field);
    let comment = (!comments.is_empty()).then(|| comments.join("; "));
    match action {
        Some(a) => Ok((matches, a, comment)),
        None => Err(Vec::new()),
    }
}

/// Jump/goto targets are user chains of the table; built-in chains have no `-i` (OUTPUT) or `-o` (INPUT).
fn check_targets(
    plans: &[Plan],
    typed: &HashMap<*const RuleLine, TypedRule>,
    diags: &mut Vec<Diagnostic>,
) {
    let user: HashSet<&str> = plans
        .iter()
        .filter(|p| p.hook.is_none() && !TableKind::Filter.is_builtin(&p.name))
        .map(|p| p.name.as_str())
        .collect();
    for p in plans {
        for line in &p.rules {
            let Some(r) = typed.get(&(*line as *const RuleLine)) else {
                continue;
            };
            if let Some((Target::Jump(c) | Target::Goto(c), span)) = &r.target {
                if !user.contains(c.as_str()) {
                    let d = if TableKind::Filter.is_builtin(c) {
                        Diagnostic::error("E0312", format!("cannot jump to built-in chain `{c}`"))
                            .at(*span)
                            .help("only user-defined chains can be the target of -j/-g")
                    } else {
                        Diagnostic::error("E0312", format!("chain `{c}` does not exist"))
                            .at(*span)
                            .label("no such target or user-defined chain")
                            .help(format!(
                                "declare it with `:{c} - [0:0]`, or check the target's spelling"
                            ))
                    };
                    diags.push(d);
                }
            }
            let Some(h) = p.hook else { continue };
            for (field, i, flag) in [
                (Field::InIface, &r.in_iface, "-i"),
                (Field::OutIface, &r.out_iface, "-o"),
            ] {
                if let Some(i) = i {
                    if !h.has_iface(field) {
                        diags.push(
                            Diagnostic::error(
                                "E0314",
                                format!("`{flag}` cannot be used in chain {}", h.chain_name()),
                            )
                            .at(i.span)
                            .help("iptables: INPUT has no output interface and OUTPUT no input interface"),
                        );
                    }
                }
            }
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    fn lower(text: &str) -> Result<Lowered, Vec<Diagnostic>> {
        iptables(&SourceFile::new("t.rules", text))
    }
    fn rule(line: &str) -> Result<Lowered, Vec<Diagnostic>> {
        lower(&format!("*filter\n:INPUT DROP [0:0]\n{line}\nCOMMIT\n"))
    }
    fn dump(line: &str) -> String {
        rule(line)
            .unwrap_or_else(|d| panic!("{d:?}"))
            .ruleset
            .dump()
    }
    fn err_codes(line: &str) -> Vec<&'static str> {
        rule(line)
            .unwrap_err()
            .iter()
            .filter(|d| d.is_error())
            .map(|d| d.code)
            .collect()
    }

    #[test]
    fn lower_compiles_basic_options() {
        assert_eq!(
            dump("-A INPUT -s 10.0.0.0/8 ! -d 1.2.3.4 -p tcp -m tcp --sport 1024: --dport 22 -j ACCEPT"),
            "chain c0 INPUT hook=input policy=drop\n  r0 #1 src_ip 10.0.0.0/8 dst_ip ! 1.2.3.4/32 proto 6 src_port 1024-65535 dst_port 22 -> accept\n"
        );
    }

    #[test]
    fn lower_bare_tcp_module_keeps_transport_constraint() {
        assert!(dump("-A INPUT -p tcp -m tcp -j DROP").contains("proto 6 dst_port 0-65535 -> drop"));
        assert!(dump("-A INPUT -p tcp -j DROP").contains("proto 6 -> drop"));
        assert!(
            dump("-A INPUT -p udp --dport 53 -j ACCEPT").contains("proto 17 dst_port 53 -> accept")
        );
    }

    #[test]
    fn lower_proto_all_is_unconstrained() {
        assert!(dump("-A INPUT -p all -j DROP").contains("r0 #1 -> drop"));
        assert!(dump("-A INPUT -p 0 -j DROP").contains("r0 #1 -> drop"));
    }

    #[test]
    fn lower_reports_semantic_errors() {
        assert_eq!(
            err_codes("-A INPUT -p udp -m tcp --dport 1 -j DROP"),
            ["E0307"]
        );
        assert_eq!(err_codes("-A INPUT -m tcp -j DROP"), ["E0307"]);
        assert_eq!(err_codes("-A INPUT ! -p tcp -m tcp -j DROP"), ["E0307"]);
        assert_eq!(err_codes("-A INPUT --dport 22 -j DROP"), ["E0308"]);
        assert_eq!(
            err_codes("-A INPUT -s 1.1.1.1 -s 2.2.2.2 -j DROP"),
            ["E0306"]
        );
        assert_eq!(err_codes("-A INPUT -j DROP -j ACCEPT"), ["E0311"]);
        assert_eq!(err_codes("-A INPUT ! -p all -j DROP"), ["E0310"]);
        assert_eq!(err_codes("-A INPUT -p tcp --dport 2:1 -j DROP"), ["E0305"]);
        assert_eq!(err_codes("-A INPUT -p tcp --dport ssh -j DROP"), ["E0304"]);
        assert_eq!(err_codes("-A INPUT -s example.com -j DROP"), ["E0301"]);
    }

    #[test]
    fn lower_reports_unsupported_features() {
        assert_eq!(
            err_codes("-A INPUT -m state --state NEW -j ACCEPT"),
            ["E0202"]
        );
        assert_eq!(
            err_codes("-A INPUT -j REJECT --reject-with tcp-reset -p tcp"),
            ["E0203"]
        );
        assert_eq!(err_codes("-A INPUT -s 1.2.3.4"), ["E0204"]);
        assert_eq!(err_codes("-A INPUT -p tcp --syn -j DROP"), ["E0201"]);
        assert_eq!(err_codes("-A INPUT -f -j DROP"), ["E0201"]);
        assert_eq!(
            err_codes("-A INPUT -p sctp -m multiport --dports 1,2 -j DROP"),
            ["E0202"]
        );
        assert_eq!(
            err_codes("-A INPUT -p tcp --dport 1 -m multiport --dports 1,2 -j DROP"),
            ["E0306"]
        );
    }

    #[test]
    fn lower_interfaces_lists_and_chains() {
        let l = lower(
            "*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:web - [0:0]\n\
             -A INPUT -i eth+ -p tcp -m multiport --dports 80,443,8000:8080 -j web\n\
             -A INPUT ! -i lo -g web\n-A FORWARD -i a -o b -j ACCEPT\n-A web -s 10.0.0.0/8 -j RETURN\n\
             -A web -j ACCEPT\nCOMMIT\n",
        )
        .unwrap_or_else(|d| panic!("{d:?}"));
        assert_eq!(
            l.ruleset.dump(),
            "chain c0 INPUT hook=input policy=drop\n  r0 #1 proto 6 dst_port {80, 443, 8000-8080} in_iface eth+ -> jump web\n  \
             r1 #2 in_iface ! lo -> goto web\nchain c1 FORWARD hook=forward policy=accept\n  r2 #1 in_iface a out_iface b -> accept\n\
             chain c2 web\n  r3 #1 src_ip 10.0.0.0/8 -> return\n  r4 #2 -> accept\n"
        );
    }

    #[test]
    fn lower_leaves_out_unreachable_chains_it_cannot_represent() {
        let l = lower(
            "*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:fw - [0:0]\n-A INPUT -j ACCEPT\n\
             -A FORWARD -j fw\n-A fw -m state --state NEW -j ACCEPT\nCOMMIT\n",
        )
        .unwrap();
        assert_eq!(l.ruleset.chains.len(), 1);
        let codes: Vec<_> = l.diagnostics.iter().map(|d| d.code).collect();
        assert_eq!(codes, ["N0003", "N0003"]);
        // Reached from INPUT: an error.
        let e = lower("*filter\n:INPUT DROP [0:0]\n:fw - [0:0]\n-A INPUT -j fw\n-A fw -m state --state NEW -j ACCEPT\nCOMMIT\n")
            .unwrap_err();
        assert_eq!(e[0].code, "E0202");
    }

    #[test]
    fn lower_rejects_bad_targets_loops_and_misplaced_interfaces() {
        assert_eq!(err_codes("-A INPUT -j nowhere"), ["E0312"]);
        assert_eq!(err_codes("-A INPUT -j FORWARD"), ["E0312"]);
        assert_eq!(err_codes("-A INPUT -o eth0 -j DROP"), ["E0314"]);
        let e =
            lower("*filter\n:a - [0:0]\n:b - [0:0]\n-A a -j b\n-A b -j a\nCOMMIT\n").unwrap_err();
        assert_eq!(e.iter().map(|d| d.code).collect::<Vec<_>>(), ["E0313"]);
    }

    #[test]
    fn lower_masks_host_bits_with_warning() {
        let l = rule("-A INPUT -s 10.1.2.3/8 -j DROP").unwrap();
        assert!(l.ruleset.dump().contains("src_ip 10.0.0.0/8"));
        assert_eq!(l.diagnostics[0].code, "W0001");
    }

    #[test]
    fn lower_defaults_missing_input_to_accept() {
        let l = lower("*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j ACCEPT\nCOMMIT\n").unwrap();
        assert_eq!(
            l.ruleset.dump(),
            "chain c0 INPUT hook=input policy=accept\n"
        );
        let codes: Vec<_> = l.diagnostics.iter().map(|d| d.code).collect();
        assert_eq!(codes, ["N0001", "W0002"]);
    }
}
