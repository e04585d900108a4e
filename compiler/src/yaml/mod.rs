//! The YAML rule language: a firewall written by hand, lowered to the same IR as iptables-save.
//!
//! ```yaml
//! sets:
//!   admins:
//!     addr: [10.20.30.0/24, 192.0.2.7]
//! chains:
//!   input:
//!     policy: drop
//!     rules:
//!       - comment: "ssh for the admins"
//!         src_ip: "@admins"
//!         proto: tcp
//!         dst_port: 22
//!         action: accept
//!       - in_iface: eth+
//!         jump: web
//!   web:
//!     rules:
//!       - {proto: tcp, dst_port: [80, 443], action: accept}
//! ```
//!
//! Stages: [`node`] (serde-saphyr → located node tree; YAML syntax errors, `E0401`), [`ast`] (node tree →
//! typed AST with spans; unknown keys, wrong types, bad values, `E0402`–`E0409`, `E0413`–`E0415`),
//! [`lower`](mod@lower) (AST → [`Ruleset`]; names, proto requirement, loops, ids, `E0408`–`E0412`, `E0416`,
//! `E0417`), and [`print()`](print::print) (IR → YAML). docs/yaml.md is the reference.
//!
//! Guarantees of [`lower()`](fn@lower): every problem of the file is reported at once (except a YAML
//! syntax error, after which nothing else can be read), located at the exact text; `Ok` carries a
//! ruleset that passes [`crate::ir::verify`] and equals, spans aside, what [`crate::lower::iptables`]
//! builds from the equivalent iptables-save file. No input makes it panic.
//!
//! Thrown away: layout, YAML comments, anchors and aliases (expanded), value spellings.
pub mod ast;
pub mod lower;
pub mod node;
pub mod print;

pub use print::print;

use crate::diag::{Diagnostic, SourceFile, Span};
use crate::ir::{ChainId, RuleId, Ruleset};
use crate::lower::Lowered;
use std::collections::BTreeMap;

/// Comment lines the printer adds (without the `# `; a line may contain `\n` to span several).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Annotations {
    /// At the top of the file.
    pub header: Vec<String>,
    /// Just above a rule (after the previous rule).
    pub before_rule: BTreeMap<RuleId, Vec<String>>,
    /// After a chain's last rule.
    pub chain_end: BTreeMap<ChainId, Vec<String>>,
    /// `unsupported` rule entries (see [`Unsupported`]) just above a rule.
    pub unsupported_before_rule: BTreeMap<RuleId, Vec<Unsupported>>,
    /// `unsupported` rule entries after a chain's last rule.
    pub unsupported_chain_end: BTreeMap<ChainId, Vec<Unsupported>>,
}

/// A rule `tailwall migrate` could not translate, kept at its place in the YAML as an entry
/// `- {unsupported: "<rule as iptables-save prints it>", reason: "<why>, line N"}` that the reader always
/// refuses (`E0418`): leaving it out would let through what the original rule drops (fail closed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsupported {
    /// The original rule line.
    pub rule: String,
    /// Why it cannot be translated, and where it came from.
    pub reason: String,
}

/// Read a YAML file into its AST. The AST is partial when the diagnostics contain errors.
pub fn parse(src: &SourceFile) -> (ast::Document, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let doc = match node::parse(src) {
        Ok(Some(root)) => ast::Reader { diags: &mut diags }.document(&root),
        Ok(None) => {
            diags.push(
                Diagnostic::error("E0404", "the file is empty: no `chains`")
                    .at(Span::new(0, 0))
                    .help("a ruleset declares its chains: `chains: {input: {policy: drop, rules: [...]}}`"),
            );
            ast::Document::default()
        }
        Err(d) => {
            diags.push(d);
            ast::Document::default()
        }
    };
    (doc, diags)
}

/// Parse and lower a YAML ruleset. `Err` carries ALL diagnostics (at least one error).
///
/// # Errors
/// Every diagnostic found (YAML syntax `E0401`, keys and values `E0402`–`E0409`, names, sets, loops and
/// ids `E0410`–`E0418`, and the warnings), at least one of them an error.
pub fn lower(src: &SourceFile) -> Result<Lowered, Vec<Diagnostic>> {
    let (doc, mut diags) = parse(src);
    let syntax_failed = diags
        .iter()
        .any(|d| d.code == "E0401" || d.code == "E0404" && doc.chains.is_empty());
    let ruleset = if syntax_failed {
        Ruleset::default()
    } else {
        lower::lower_document(&doc, &mut diags)
    };
    crate::lower::finish(ruleset, diags)
}
