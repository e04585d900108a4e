//! `migrate`: read a whole iptables-save / ip6tables-save dump and say, for EVERY rule of EVERY table, whether
//! tailwall reproduces it exactly, approximately (and why) or not at all (and why).
//!
//! What this stage guarantees: [`Migration::rules`] has one [`RuleReport`] per rule line of the file, in file
//! order, whatever its table; [`Migration::ruleset`] holds the filter table's chains with every rule whose
//! status is not [`RuleStatus::Unsupported`]. It fails only on syntax and validation errors (the ones
//! iptables-restore would reject too); features tailwall cannot model are reported per rule, never as errors.
//!
//! What it throws away: everything the IR cannot carry for the rules it keeps (see the reasons in each
//! `Approximated`, listed in docs/conformance.md).
use super::{check_hook_ifaces, graph_of, lower_typed, plan_chains, renumber};
use crate::diag::{Diagnostic, SourceFile, Span};
use crate::ir::{ChainId, Rule, RuleId, Ruleset};
use crate::syntax::iptables::rule::{save_rule, Target, TypedRule};
use crate::syntax::iptables::{self as syn, TableKind};
use serde::Serialize;
use std::collections::HashMap;

/// How faithfully tailwall reproduces one rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "reason", rename_all = "lowercase")]
pub enum RuleStatus {
    /// The IR rule has exactly the rule's semantics.
    Exact,
    /// Kept in the IR, with a difference explained by the text.
    Approximated(String),
    /// Left out of the IR; the text says why.
    Unsupported(String),
}

impl RuleStatus {
    /// `exact`, `approximated` or `unsupported`: the status's name in the JSON report and the summary.
    pub fn kind(&self) -> &'static str {
        match self {
            RuleStatus::Exact => "exact",
            RuleStatus::Approximated(_) => "approximated",
            RuleStatus::Unsupported(_) => "unsupported",
        }
    }
    /// Why the rule is not exact (`None` for [`RuleStatus::Exact`]).
    pub fn reason(&self) -> Option<&str> {
        match self {
            RuleStatus::Exact => None,
            RuleStatus::Approximated(r) | RuleStatus::Unsupported(r) => Some(r),
        }
    }
}

/// One rule line of the dump.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RuleReport {
    /// The rule's table (`filter`, `nat`, …).
    pub table: String,
    /// The rule's chain.
    pub chain: String,
    /// 1-based position in its chain (as `iptables -L --line-numbers`).
    pub position: u32,
    /// 1-based line in the dump.
    pub line: usize,
    /// The whole rule line.
    pub span: Span,
    /// How faithfully the IR rule reproduces it.
    pub status: RuleStatus,
    /// The IR rule it became (None when unsupported).
    pub rule: Option<RuleId>,
    /// The rule in iptables-save's canonical form (`-A CHAIN …`, no counters).
    pub text: String,
}

/// One `*table` of the dump.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TableReport {
    /// The table's name (`filter`, `nat`, …).
    pub name: String,
    /// Rule lines of the table.
    pub rules: usize,
    /// tailwall enforces this table (only `filter`).
    pub enforced: bool,
}

/// The result of [`migrate`].
#[derive(Clone, Debug)]
pub struct Migration {
    /// The filter table: every chain; rules that are `Unsupported` left out.
    pub ruleset: Ruleset,
    /// Every rule of every table, in file order.
    pub rules: Vec<RuleReport>,
    /// Every table of the dump, in file order.
    pub tables: Vec<TableReport>,
    /// Warnings and notes (no errors).
    pub diagnostics: Vec<Diagnostic>,
}

/// Never fails on unsupported features (they are reported per rule); fails only on syntax/validation errors.
///
/// # Errors
/// Every diagnostic (at least one error) when the dump does not parse or is invalid as
/// iptables-restore would find it (`E01xx`, `E03xx`).
pub fn migrate(src: &SourceFile) -> Result<Migration, Vec<Diagnostic>> {
    migrate_impl(src)
}

/// Type every rule, lower the filter table's rules one by one (those that cannot be represented are
/// reported and left out), keep every chain.
fn migrate_impl(src: &SourceFile) -> Result<Migration, Vec<Diagnostic>> {
    let (ast, mut diags) = syn::parse(src);
    let mut errors: Vec<Diagnostic> = diags.iter().filter(|d| d.is_error()).cloned().collect();
    diags.retain(|d| !d.is_error());
    let plans = plan_chains(&ast, &mut diags);
    check_hook_ifaces(&plans, &mut errors);
    let ids: HashMap<&str, usize> = plans
        .iter()
        .enumerate()
        .map(|(i, p)| (p.name.as_str(), i))
        .collect();
    let mut reports = Vec::new();
    let mut tables = Vec::new();
    let mut lowered: Vec<Vec<Rule>> = plans.iter().map(|_| Vec::new()).collect();
    let mut pool = Vec::new();
    let mut placed: Vec<Option<(usize, usize)>> = Vec::new();
    for t in &ast.tables {
        let enforced = t.kind == TableKind::Filter;
        tables.push(TableReport {
            name: t.kind.name().to_string(),
            rules: t.rules.len(),
            enforced,
        });
        let mut positions: HashMap<&str, u32> = HashMap::new();
        for line in &t.rules {
            let pos = positions.entry(line.chain.text.as_str()).or_insert(0);
            *pos += 1;
            let position = *pos;
            let chain = line.chain.text.as_str();
            let r = &line.rule;
            let text = save_rule(chain, r);
            let mut at = None;
            let status = if !enforced {
                RuleStatus::Unsupported(format!("table `{}` is not enforced", t.kind.name()))
            } else {
                match lower_typed(r, line, &ids, &mut pool) {
                    Ok((matches, action, comment)) => {
                        // The connection-tracking differences of this rule, if any.
                        let ct = matches
                            .iter()
                            .filter(|m| m.field == crate::ir::Field::CtState)
                            .find_map(super::rule::ct_note);
                        let status = log_status(r);
                        let ci = ids[chain];
                        at = Some((ci, lowered[ci].len()));
                        lowered[ci].push(Rule {
                            id: RuleId(0),
                            chain: ChainId(ci as u32),
                            position: 0,
                            matches,
                            action,
                            comment,
                            counters: line.counters.map(|c| (c.packets, c.bytes)),
                            span: line.span,
                        });
                        match ct {
                            Some(d) => RuleStatus::Approximated(format!("kept; {}", d.message)),
                            None => status,
                        }
                    }
                    Err(e) => RuleStatus::Unsupported(
                        e.first()
                            .map(|d| d.message.clone())
                            .unwrap_or_else(|| "its target chain does not exist".into()),
                    ),
                }
            };
            placed.push(at);
            reports.push(RuleReport {
                table: t.kind.name().to_string(),
                chain: chain.to_string(),
                position,
                line: src.line_col(line.span.start as usize).0,
                span: line.span,
                status,
                rule: None,
                text,
            });
        }
    }
    if let Err(f) = graph_of(&lowered).check() {
        errors.push(f.diagnostic(|c| plans[c].name.clone()));
    }
    if !errors.is_empty() {
        errors.sort_by_key(|d| d.span.map(|s| s.start).unwrap_or(u32::MAX));
        return Err(errors);
    }
    let keep = vec![true; plans.len()];
    let ruleset = renumber(ast.family, plans, lowered, keep, pool);
    // "exact" means the datapath enforces it: the compiler's own refusals decide (artifact::enforcement).
    let enforced = crate::artifact::enforcement(&ruleset);
    for (rep, at) in reports.iter_mut().zip(placed) {
        rep.rule = at.map(|(c, i)| ruleset.chains[c].rules[i].id);
        if let (RuleStatus::Exact, Some(Err(why))) =
            (&rep.status, rep.rule.and_then(|id| enforced.get(&id)))
        {
            rep.status = RuleStatus::Approximated(format!("kept, but {why}"));
        }
    }
    Ok(Migration {
        ruleset,
        rules: reports,
        tables,
        diagnostics: diags,
    })
}

/// How a lowered rule is enforced: exactly, except a log target whose line cannot be what the kernel
/// prints (`docs/decisions/0014-log-ring-buffer.md`): NFLOG has no nfnetlink_log socket (its records
/// go to `tailwall log`), `--log-uid` has no socket owner at XDP.
fn log_status(r: &TypedRule) -> RuleStatus {
    match r.target.as_ref().map(|t| &t.0) {
        Some(Target::Ext(i)) if i.name() == "NFLOG" => RuleStatus::Approximated(
            "`-j NFLOG`: counted and walked past as iptables does, but the packet goes to `tailwall log`'s ring buffer, not to an nfnetlink_log group".into(),
        ),
        Some(Target::Ext(i)) if i.name() == "LOG" && i.has("log-uid") => RuleStatus::Approximated(
            "`-j LOG --log-uid`: `tailwall log` prints the line without UID=/GID= (no socket owner is known at XDP ingress)".into(),
        ),
        _ => RuleStatus::Exact,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrate_reports_every_rule_of_every_table() {
        let src = SourceFile::new(
            "m",
            "*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j ACCEPT\nCOMMIT\n*filter\n:INPUT DROP [0:0]\n\
             -A INPUT -p tcp --dport 22 -j ACCEPT\n-A INPUT -m limit --limit 5/min -j ACCEPT\nCOMMIT\n",
        );
        let m = migrate(&src).unwrap();
        let kinds: Vec<_> = m
            .rules
            .iter()
            .map(|r| (r.table.as_str(), r.line, r.status.kind()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("nat", 3, "unsupported"),
                ("filter", 7, "exact"),
                ("filter", 8, "unsupported")
            ]
        );
        assert_eq!(m.ruleset.rules().count(), 1);
        assert_eq!(m.tables.len(), 2);
        assert!(!m.tables[0].enforced && m.tables[1].enforced);
    }

    #[test]
    fn migrate_fails_on_validation_errors() {
        let src = SourceFile::new(
            "m",
            "*filter\n-A INPUT -p tcp --dport 70000 -j ACCEPT\nCOMMIT\n",
        );
        let e = migrate(&src).unwrap_err();
        assert_eq!(e[0].code, "E0304");
    }

    /// REJECT lowers with its kind; the datapath enforces it in INPUT and FORWARD, and refuses it
    /// reached from OUTPUT (`artifact::refusals`), which the report says.
    #[test]
    fn migrate_reject_is_exact_except_in_output() {
        let src = SourceFile::new(
            "m",
            "*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 25 -j REJECT --reject-with tcp-reset\n-A FORWARD -j REJECT --reject-with icmp-host-prohibited\n-A OUTPUT -p udp -j REJECT\nCOMMIT\n",
        );
        let m = migrate(&src).unwrap();
        let kinds: Vec<_> = m.rules.iter().map(|r| r.status.kind()).collect();
        assert_eq!(kinds, ["exact", "exact", "approximated"]);
        assert!(m.rules[2].status.reason().unwrap().contains("REJECT"));
        assert_eq!(
            m.rules[0].text,
            "-A INPUT -p tcp -m tcp --dport 25 -j REJECT --reject-with tcp-reset"
        );
    }

    #[test]
    fn migrate_log_is_exact_and_text_is_canonical() {
        let src = SourceFile::new(
            "m",
            "*filter\n:INPUT DROP [0:0]\n[3:4] -A INPUT -j LOG --log-level 4 -p tcp --dport 22\nCOMMIT\n",
        );
        let m = migrate(&src).unwrap();
        assert_eq!(m.rules[0].text, "-A INPUT -p tcp -m tcp --dport 22 -j LOG");
        assert_eq!(m.rules[0].status.kind(), "exact");
        assert_eq!(m.ruleset.rules().count(), 1);
    }

    #[test]
    fn migrate_reads_every_corpus_dump() {
        let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
        for sub in ["dumps", "iptables-testsuite/shell-dumps"] {
            let Ok(entries) = std::fs::read_dir(root.join(sub)) else {
                eprintln!("skipped: corpus absent");
                return;
            };
            for e in entries {
                let path = e.unwrap().path();
                let text = std::fs::read_to_string(&path).unwrap();
                let lines = text.lines().filter(|l| l.contains("-A ")).count();
                let m = migrate(&SourceFile::new(path.display().to_string(), text))
                    .unwrap_or_else(|d| panic!("{}: {d:?}", path.display()));
                assert_eq!(m.rules.len(), lines, "{}", path.display());
            }
        }
    }

    /// The corpus dumps of `../shared/corpus` (name, text), or none when the corpus is absent.
    fn corpus() -> Vec<(String, String)> {
        let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
        let mut out = Vec::new();
        for sub in ["dumps", "iptables-testsuite/shell-dumps"] {
            let Ok(entries) = std::fs::read_dir(root.join(sub)) else {
                continue;
            };
            let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
            paths.sort();
            for p in paths {
                let text = std::fs::read_to_string(&p).unwrap();
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                out.push((name, text));
            }
        }
        out
    }

    /// What `compile` does with a dump, rule by rule (by the rule line's span start): the rules the
    /// artifacts of the hooks it builds hold, the rule lines it locates an error at, and whether it
    /// would exit 0 (lowering and the artifact, every hook's region, succeed).
    fn compile_view(src: &SourceFile) -> (Vec<u32>, Vec<u32>, bool) {
        let (mut compiled, mut refused) = (Vec::new(), Vec::new());
        let l = match crate::frontend::load_as(src, crate::frontend::Format::IptablesSave) {
            Ok(l) => l,
            Err(d) => {
                refused.extend(
                    d.iter()
                        .filter(|d| d.is_error())
                        .filter_map(|d| d.span)
                        .map(|s| s.start),
                );
                return (compiled, refused, false);
            }
        };
        let mut ok = true;
        for hook in crate::ir::Hook::ALL {
            match crate::artifact::build(&l.ruleset, hook) {
                // The rules with a position in the hook's region.
                Ok(a) => {
                    let Some(region) = a.region(hook, l.ruleset.family) else {
                        continue;
                    };
                    compiled.extend(
                        a.positions[region.first as usize..region.end as usize]
                            .iter()
                            .filter_map(|p| match p.origin {
                                crate::artifact::PositionOrigin::Rule(i) => a.rules.get(i as usize),
                                _ => None,
                            })
                            .filter_map(|r| l.ruleset.rule(r.id))
                            .map(|r| r.span.start),
                    )
                }
                Err(e) => {
                    // Every hook's region must compile (fail closed): one refusal fails the build.
                    ok = false;
                    refused.extend(
                        e.diagnostics()
                            .iter()
                            .filter_map(|d| d.span)
                            .map(|s| s.start),
                    );
                }
            }
        }
        (compiled, refused, ok)
    }

    /// Issue 8 item 7: `migrate` never calls a rule exact that `compile` refuses, and when `compile`
    /// builds a dump, the exact rules are exactly the rules its artifacts hold.
    #[test]
    fn migrate_exact_agrees_with_compile_on_every_corpus_rule() {
        let dumps = corpus();
        if dumps.is_empty() {
            eprintln!("skipped: corpus absent");
            return;
        }
        for (name, text) in dumps {
            let src = SourceFile::new(name.clone(), text);
            let m = migrate(&src).unwrap_or_else(|d| panic!("{name}: {d:?}"));
            let exact: Vec<u32> = m
                .rules
                .iter()
                .filter(|r| r.table == "filter" && r.status == RuleStatus::Exact)
                .map(|r| r.span.start)
                .collect();
            let (compiled, refused, ok) = compile_view(&src);
            for r in &m.rules {
                let s = r.span.start;
                assert!(
                    !(exact.contains(&s) && refused.contains(&s)),
                    "{name}:{}: migrate says exact, compile refuses it",
                    r.line
                );
                // A rule kept with a named difference (connection tracking) is enforced too.
                let kept = exact.contains(&s)
                    || matches!(r.status, RuleStatus::Approximated(_)) && r.rule.is_some();
                assert!(
                    !compiled.contains(&s) || kept,
                    "{name}:{}: compile enforces it, migrate says {}",
                    r.line,
                    r.status.kind()
                );
                if ok {
                    assert!(
                        !exact.contains(&s) || compiled.contains(&s),
                        "{name}:{}: migrate says exact, but compile's artifacts do not hold it",
                        r.line
                    );
                }
            }
        }
    }

    /// The corpus figures of docs/conformance.md: per dump, filter rules exact / total and whether
    /// `compile` exits 0 (`cargo test -p tailwall-compiler --lib corpus_figures -- --nocapture`).
    #[test]
    fn corpus_figures() {
        let dumps = corpus();
        if dumps.is_empty() {
            eprintln!("skipped: corpus absent");
            return;
        }
        println!(
            "| dump | filter rules exact / total | all rules (every table) | compile exits 0 |"
        );
        println!("|---|---|---|---|");
        let (mut e, mut t, mut c) = (0, 0, 0);
        for (name, text) in dumps {
            let src = SourceFile::new(name.clone(), text);
            let m = migrate(&src).unwrap_or_else(|d| panic!("{name}: {d:?}"));
            let filter: Vec<_> = m.rules.iter().filter(|r| r.table == "filter").collect();
            let exact = filter
                .iter()
                .filter(|r| r.status == RuleStatus::Exact)
                .count();
            let (_, _, ok) = compile_view(&src);
            println!(
                "| {name} | {exact} / {} | {} | {} |",
                filter.len(),
                m.rules.len(),
                if ok { "yes" } else { "no" }
            );
            e += exact;
            t += filter.len();
            c += usize::from(ok);
            assert!(exact <= filter.len());
        }
        println!("| **total** | {e} / {t} | | {c} |");
    }
}
