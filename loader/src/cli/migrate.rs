//! `tailwall migrate DUMP [--to FILE.yaml]`: a whole iptables-save / ip6tables-save dump into the YAML
//! rule language, with a migration report.
//!
//! Guarantees: every rule line of the dump gets exactly one report line (`exact`, `approximated (why)`
//! or `unsupported (why)`, with its line number), whatever its table; the YAML keeps the filter table's
//! rules in order, each rule's counters (printed by `yaml::print`) and approximation as comment lines above it,
//! every unsupported filter rule of a lowered chain as an `unsupported` entry at its place, which `check`
//! and `compile` refuse (`E0418`) until the user deletes or replaces it — fail closed: the YAML never
//! compiles into something that allows what the dump drops; approximated rules the IR leaves out (LOG)
//! and rules of chains tailwall does not lower stay comments; the dump's own `#` lines go to the YAML
//! header. The YAML is read back before it is written: without the entries it must lower to the
//! identical IR, with them it must give exactly one `E0418` per entry (else an internal error, exit 1).
//! Unsupported rules are not errors of `migrate` (exit 0); a dump iptables-restore would reject is (exit 2).
//!
//! Where things go: with `--to`, the YAML is written to that file and the report to stdout; without it,
//! the YAML goes to stdout and the report to stderr.
use super::check::read_source;
use super::{Failure, Output, SCHEMA_VERSION};
use anyhow::Context as _;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use tailwall_compiler::diag::{render_all, Severity, SourceFile};
use tailwall_compiler::ir::{ChainId, Ruleset};
use tailwall_compiler::lower::{self, Migration, RuleStatus};
use tailwall_compiler::yaml::{self, Annotations};

/// Counts of the report.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub rules: usize,
    pub exact: usize,
    pub approximated: usize,
    pub unsupported: usize,
    /// Of the unsupported: rules in tables tailwall does not enforce.
    pub not_enforced: usize,
}

pub fn summary(m: &Migration) -> Summary {
    let mut s = Summary {
        rules: m.rules.len(),
        ..Summary::default()
    };
    let enforced = |t: &str| m.tables.iter().any(|x| x.name == t && x.enforced);
    for r in &m.rules {
        match r.status {
            RuleStatus::Exact => s.exact += 1,
            RuleStatus::Approximated(_) => s.approximated += 1,
            RuleStatus::Unsupported(_) => {
                s.unsupported += 1;
                if !enforced(&r.table) {
                    s.not_enforced += 1;
                }
            }
        }
    }
    s
}

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

/// `57 rules: 40 exact, 5 approximated, 12 unsupported (10 in tables tailwall does not enforce)`.
pub fn summary_line(s: &Summary) -> String {
    format!(
        "{}: {} exact, {} approximated, {} unsupported ({} in tables tailwall does not enforce)",
        plural(s.rules, "rule"),
        s.exact,
        s.approximated,
        s.unsupported,
        s.not_enforced
    )
}

/// The tables tailwall does not enforce, with their rule counts: `nat (12 rules), raw (0 rules)`.
fn not_enforced(m: &Migration) -> String {
    let t: Vec<String> = m
        .tables
        .iter()
        .filter(|t| !t.enforced)
        .map(|t| format!("{} ({})", t.name, plural(t.rules, "rule")))
        .collect();
    if t.is_empty() {
        "none".into()
    } else {
        t.join(", ")
    }
}

/// The report as text, one line per rule of the dump.
pub fn report_text(src: &SourceFile, m: &Migration, yaml_to: Option<&str>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "migration report for {}", src.name);
    let width = m
        .rules
        .iter()
        .map(|r| r.table.len() + r.chain.len() + r.position.to_string().len() + 3)
        .max()
        .unwrap_or(0);
    for r in &m.rules {
        let place = format!("{}/{} #{}", r.table, r.chain, r.position);
        let status = match r.status.reason() {
            Some(why) => format!("{} ({why})", r.status.kind()),
            None => r.status.kind().to_string(),
        };
        let _ = writeln!(out, "  line {:>5}  {place:<width$}  {status}", r.line);
    }
    let _ = writeln!(out, "tables not enforced: {}", not_enforced(m));
    if let Some(to) = yaml_to {
        let _ = writeln!(out, "yaml: {to}");
    }
    let _ = writeln!(out, "summary: {}", summary_line(&summary(m)));
    out
}

#[derive(Serialize)]
struct JsonRule<'a> {
    line: usize,
    table: &'a str,
    chain: &'a str,
    position: u32,
    status: &'static str,
    reason: Option<&'a str>,
    text: &'a str,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    schema_version: u32,
    file: &'a str,
    yaml: Option<&'a str>,
    rules: Vec<JsonRule<'a>>,
    tables: &'a [lower::TableReport],
    summary: Summary,
}

pub fn report_json(src: &SourceFile, m: &Migration, yaml_to: Option<&str>) -> String {
    let doc = JsonReport {
        schema_version: SCHEMA_VERSION,
        file: &src.name,
        yaml: yaml_to,
        rules: m
            .rules
            .iter()
            .map(|r| JsonRule {
                line: r.line,
                table: &r.table,
                chain: &r.chain,
                position: r.position,
                status: r.status.kind(),
                reason: r.status.reason(),
                text: &r.text,
            })
            .collect(),
        tables: &m.tables,
        summary: summary(m),
    };
    serde_json::to_string_pretty(&doc).expect("json values serialize") + "\n"
}

/// The comment lines the YAML carries: header, per-rule notes, unsupported rules at their place.
pub fn annotations(src: &SourceFile, m: &Migration) -> Annotations {
    let mut a = Annotations::default();
    let s = summary(m);
    a.header
        .push(format!("migrated by `tailwall migrate` from {}", src.name));
    a.header.push(summary_line(&s));
    a.header
        .push(format!("tables not enforced: {}", not_enforced(m)));
    let dump_comments: Vec<&str> = src
        .text
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with('#'))
        .collect();
    if !dump_comments.is_empty() {
        a.header.push("comments of the dump:".into());
        a.header.extend(
            dump_comments
                .iter()
                .map(|c| format!("  {}", c.trim_start_matches('#').trim_start())),
        );
    }
    let chain_id =
        |rs: &Ruleset, name: &str| rs.chains.iter().find(|c| c.name == name).map(|c| c.id);
    // Unsupported filter rules wait here until the next kept rule of their chain.
    let mut pending: BTreeMap<ChainId, Vec<String>> = BTreeMap::new();
    let mut orphans: Vec<String> = Vec::new();
    let mut pending_entries: BTreeMap<ChainId, Vec<yaml::Unsupported>> = BTreeMap::new();
    for r in &m.rules {
        let enforced = m.tables.iter().any(|t| t.name == r.table && t.enforced);
        if !enforced {
            continue;
        }
        match (&r.status, r.rule) {
            (RuleStatus::Exact | RuleStatus::Approximated(_), Some(id)) => {
                let mut notes = Vec::new();
                if let Some(c) = chain_id(&m.ruleset, &r.chain) {
                    notes.extend(pending.remove(&c).unwrap_or_default());
                    if let Some(entries) = pending_entries.remove(&c) {
                        a.unsupported_before_rule.insert(id, entries);
                    }
                }
                if let RuleStatus::Approximated(why) = &r.status {
                    notes.push(format!("approximated ({why}), line {}: {}", r.line, r.text));
                }
                if !notes.is_empty() {
                    a.before_rule.insert(id, notes);
                }
            }
            // Unsupported in a lowered chain: an `unsupported` entry at its place, which `check` and
            // `compile` refuse (E0418) until the user deletes or replaces it — never silently dropped.
            (RuleStatus::Unsupported(why), _) if chain_id(&m.ruleset, &r.chain).is_some() => {
                let counters = rule_counters(src, r.span);
                let entry = yaml::Unsupported {
                    rule: r.text.clone(),
                    reason: format!("{why} ({}:{}{counters})", src.name, r.line),
                };
                let c = chain_id(&m.ruleset, &r.chain).expect("checked by the guard");
                pending_entries.entry(c).or_default().push(entry);
            }
            // Approximated by leaving the rule out (e.g. a LOG rule, which decides nothing), or a rule
            // of a chain tailwall does not lower: a comment at its place.
            (status, _) => {
                let why = status.reason().unwrap_or("not lowered");
                let counters = rule_counters(src, r.span);
                let line = format!(
                    "{} ({why}), line {}{counters}: {}",
                    status.kind(),
                    r.line,
                    r.text
                );
                match chain_id(&m.ruleset, &r.chain) {
                    Some(c) => pending.entry(c).or_default().push(line),
                    None => orphans.push(line),
                }
            }
        }
    }
    for (c, lines) in pending {
        a.chain_end.insert(c, lines);
    }
    a.unsupported_chain_end = pending_entries;
    if !orphans.is_empty() {
        a.header
            .push("filter rules of chains tailwall does not lower (unsupported):".into());
        a.header
            .extend(orphans.into_iter().map(|l| format!("  {l}")));
    }
    a
}

/// The rule's `[packets:bytes]` as ` [p:b]` (the report's text has none), or empty.
fn rule_counters(src: &SourceFile, span: tailwall_compiler::diag::Span) -> String {
    src.slice(span)
        .trim_start()
        .strip_prefix('[')
        .and_then(|c| c.split_once(']'))
        .map(|(c, _)| format!(" [{c}]"))
        .unwrap_or_default()
}

/// Refuse an output path that would overwrite the input or go through a symlink the user did not name
/// as the destination (exit 2).
fn check_output_path(input: &Path, to: &Path) -> Result<(), Failure> {
    use std::os::unix::fs::MetadataExt as _;
    let Ok(meta) = std::fs::symlink_metadata(to) else {
        return Ok(());
    };
    if meta.file_type().is_symlink() {
        return Err(Failure::Usage(format!(
            "--to {}: is a symbolic link; name the real file",
            to.display()
        )));
    }
    if let Ok(i) = std::fs::metadata(input) {
        if (i.dev(), i.ino()) == (meta.dev(), meta.ino()) {
            return Err(Failure::Usage(format!(
                "--to {} is the dump being migrated; writing it would destroy the input",
                to.display()
            )));
        }
    }
    Ok(())
}

/// Write `text` to `path` without following a symlink, mode 0644 for a new file.
fn write_output(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?
        .write_all(text.as_bytes())
}

pub fn run(dump: &Path, to: Option<&Path>, output: Output) -> Result<(), Failure> {
    if let Some(to) = to {
        check_output_path(dump, to)?;
    }
    let src = read_source(dump)?;
    let m = match lower::migrate(&src) {
        Ok(m) => m,
        Err(diags) => {
            eprint!("{}", render_all(&diags, &src));
            let errors = diags.iter().filter(|d| d.is_error()).count();
            eprintln!(
                "tailwall: {}: {}; nothing migrated",
                src.name,
                plural(errors, "error")
            );
            // migrate fails only on what iptables-restore would reject too: the dump does not parse.
            return Err(Failure::Diagnostics { invalid: true });
        }
    };
    let warnings: Vec<_> = m
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Warning)
        .cloned()
        .collect();
    if !warnings.is_empty() {
        eprint!("{}", render_all(&warnings, &src));
    }
    let notes = annotations(&src, &m);
    let text = yaml::print(&m.ruleset, &notes);
    let name = to
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "migrated.yaml".into());
    // The `unsupported` entries make the YAML refuse to compile, one E0418 each and nothing else.
    let entries = notes
        .unsupported_before_rule
        .values()
        .map(Vec::len)
        .sum::<usize>()
        + notes
            .unsupported_chain_end
            .values()
            .map(Vec::len)
            .sum::<usize>();
    if entries > 0 {
        let refusals = match yaml::lower(&SourceFile::new(name.clone(), text.clone())) {
            Ok(_) => Vec::new(),
            Err(d) => d.into_iter().filter(|d| d.is_error()).collect(),
        };
        if refusals.len() != entries || refusals.iter().any(|d| d.code != "E0418") {
            return Err(Failure::Runtime(anyhow::anyhow!(
                "internal error: the YAML's {entries} unsupported entries do not read back as {entries} E0418 refusals"
            )));
        }
    }
    // Read the YAML back without those entries: it must be the same ruleset.
    let mut supported = notes.clone();
    supported.unsupported_before_rule.clear();
    supported.unsupported_chain_end.clear();
    let back = yaml::lower(&SourceFile::new(
        name.clone(),
        yaml::print(&m.ruleset, &supported),
    ));
    match back {
        Ok(l) if l.ruleset.dump() == m.ruleset.dump() => {}
        Ok(l) => {
            return Err(Failure::Runtime(anyhow::anyhow!(
                "internal error: the YAML does not read back as the same ruleset\n--- from the dump\n{}--- from the YAML\n{}",
                m.ruleset.dump(),
                l.ruleset.dump()
            )))
        }
        Err(d) => {
            let y = SourceFile::new(name, text);
            return Err(Failure::Runtime(anyhow::anyhow!(
                "internal error: the YAML does not read back:\n{}",
                render_all(&d, &y)
            )));
        }
    }
    let to_name = to.map(|p| p.display().to_string());
    let report = match output {
        Output::Text => report_text(&src, &m, to_name.as_deref()),
        Output::Json => report_json(&src, &m, to_name.as_deref()),
    };
    match to {
        Some(path) => {
            write_output(path, &text)
                .with_context(|| format!("cannot write {}", path.display()))?;
            print!("{report}");
        }
        None => {
            print!("{text}");
            eprint!("{report}");
        }
    }
    Ok(())
}
