//! `tailwall check RULES`: every static check, all diagnostics at once, no root.
//!
//! Runs, in order: the front end chosen by the file name (`.yaml`/`.yml`: the YAML rule language, else
//! iptables-save; parse + lower, which verifies the IR), the analysis passes
//! (`passes::run_all`: shadowed and redundant rules), and the datapath's compilability of the INPUT
//! chain (`artifact::build`, plus one note per chain the datapath leaves out). Exit 0 when there is no
//! error (warnings and notes allowed), 2 when the file does not parse (iptables-save `E01xx`, invalid
//! YAML), 3 for any other error.
use super::{Failure, Output, SCHEMA_VERSION};
use serde::Serialize;
use std::path::Path;
use tailwall_compiler::artifact;
use tailwall_compiler::diag::{render_all, Diagnostic, Severity, SourceFile};
use tailwall_compiler::frontend;
use tailwall_compiler::ir::{self, Hook, Ruleset};
use tailwall_compiler::passes;

/// Read a rules file, at most `frontend::MAX_INPUT_BYTES` (bytes that are not UTF-8 are kept; the front
/// ends locate them). Exit 2 when it cannot be read or is too large.
pub fn read_source(path: &Path) -> Result<SourceFile, Failure> {
    frontend::read_file(path).map_err(Failure::Usage)
}

/// Everything `check` found in one file.
#[derive(Debug)]
pub struct Report {
    pub diagnostics: Vec<Diagnostic>,
    /// The lowered ruleset, when the front end accepted the file.
    pub ruleset: Option<Ruleset>,
    /// The front end rejected the file as invalid input ([`frontend::is_invalid_input`]: exit 2).
    pub invalid_input: bool,
}

impl Report {
    fn count(&self, s: Severity) -> usize {
        self.diagnostics.iter().filter(|d| d.severity == s).count()
    }
}

/// Run every static check on a source file.
pub fn check_source(src: &SourceFile) -> Report {
    let lowered = match frontend::load(src) {
        Ok(l) => l,
        Err(diagnostics) => {
            let invalid_input = diagnostics.iter().any(frontend::is_invalid_input);
            return Report {
                diagnostics,
                ruleset: None,
                invalid_input,
            };
        }
    };
    let rs = lowered.ruleset;
    let mut diagnostics = lowered.diagnostics;
    if let Err(e) = ir::verify(&rs) {
        diagnostics.push(Diagnostic::error(
            "E0999",
            format!("internal compiler error: {e}"),
        ));
    }
    // Progress on stderr once the analysis has run for a second (large rulesets).
    let (start, total) = (std::time::Instant::now(), rs.rules().count());
    let (mut done, mut last) = (0usize, 0u64);
    diagnostics.extend(passes::run_all_with(&rs, &mut |n| {
        done += n;
        let s = start.elapsed().as_secs();
        if s >= 1 && s > last {
            last = s;
            eprintln!("tailwall: check: {done}/{total} rules analysed, {s} s");
        }
    }));
    match artifact::build(&rs, Hook::Input) {
        Ok(a) => diagnostics.extend(a.walk_warning()),
        Err(e) => diagnostics.extend(e.diagnostics()),
    }
    diagnostics.extend(artifact::ignored(&rs).iter().map(|i| i.diagnostic()));
    Report {
        diagnostics,
        ruleset: Some(rs),
        invalid_input: false,
    }
}

/// The `-o json` document.
#[derive(Debug, Serialize)]
struct JsonReport<'a> {
    schema_version: u32,
    file: &'a str,
    diagnostics: Vec<JsonDiagnostic<'a>>,
    summary: Summary,
}

#[derive(Debug, Serialize)]
struct Summary {
    errors: usize,
    warnings: usize,
    notes: usize,
}

/// One diagnostic in `-o json`.
#[derive(Debug, Serialize)]
pub struct JsonDiagnostic<'a> {
    pub severity: &'static str,
    pub code: &'static str,
    pub message: &'a str,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub end_line: Option<usize>,
    pub end_column: Option<usize>,
    pub label: Option<&'a str>,
    pub help: Option<&'a str>,
}

pub fn json_diagnostic<'a>(d: &'a Diagnostic, src: &SourceFile) -> JsonDiagnostic<'a> {
    let start = d.span.map(|s| src.line_col(s.start as usize));
    let end = d.span.map(|s| src.line_col(s.end as usize));
    JsonDiagnostic {
        severity: d.severity.as_str(),
        code: d.code,
        message: &d.message,
        line: start.map(|p| p.0),
        column: start.map(|p| p.1),
        end_line: end.map(|p| p.0),
        end_column: end.map(|p| p.1),
        label: d.label.as_deref(),
        help: d.help.as_deref(),
    }
}

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

pub fn run(path: &Path, output: Output) -> Result<(), Failure> {
    let src = read_source(path)?;
    let report = check_source(&src);
    let (errors, warnings, notes) = (
        report.count(Severity::Error),
        report.count(Severity::Warning),
        report.count(Severity::Note),
    );
    match output {
        Output::Json => {
            let doc = JsonReport {
                schema_version: SCHEMA_VERSION,
                file: &src.name,
                diagnostics: report
                    .diagnostics
                    .iter()
                    .map(|d| json_diagnostic(d, &src))
                    .collect(),
                summary: Summary {
                    errors,
                    warnings,
                    notes,
                },
            };
            println!(
                "{}",
                serde_json::to_string_pretty(&doc).expect("json values serialize")
            );
        }
        Output::Text => {
            if !report.diagnostics.is_empty() {
                eprint!("{}", render_all(&report.diagnostics, &src));
            }
            let counts = format!(
                "{}, {}, {}",
                plural(errors, "error"),
                plural(warnings, "warning"),
                plural(notes, "note")
            );
            if errors == 0 {
                let (rules, chains) = report
                    .ruleset
                    .as_ref()
                    .map(|rs| (rs.rules().count(), rs.chains.len()))
                    .unwrap_or((0, 0));
                println!(
                    "{}: ok, {} in {} ({counts})",
                    src.name,
                    plural(rules, "rule"),
                    plural(chains, "chain")
                );
            } else {
                eprintln!("tailwall: {}: {counts}", src.name);
            }
        }
    }
    if errors == 0 {
        Ok(())
    } else {
        Err(Failure::Diagnostics {
            invalid: report.invalid_input,
        })
    }
}
