//! Located diagnostics: every user-facing problem is a [`Diagnostic`] with a span into a [`SourceFile`].
//!
//! Rendering follows the compiler convention that editors and `grep` understand:
//!
//! ```text
//! rules.txt:4:10: error[E0202]: match module `-m limit` is not supported yet
//!   |
//! 4 | -A INPUT -m limit --limit 5/min -j ACCEPT
//!   |          ^^^^^^^^
//!   = help: supported in this version: -s, -d, -p, -m tcp/udp --sport/--dport, -m comment, -j ACCEPT/DROP
//! ```
//! (See docs/decisions/0003-diagnostics-renderer.md for why this is rendered here and not by miette.)
use serde::Serialize;
use std::fmt::Write as _;

/// Half-open byte range `[start, end)` into one source file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, PartialOrd, Ord, Serialize)]
pub struct Span {
    /// First byte.
    pub start: u32,
    /// One past the last byte (`start <= end`).
    pub end: u32,
}

impl Span {
    /// The span `[start, end)`; an `end` before `start` gives the empty span at `start`. Offsets are
    /// truncated to `u32` (source files are far below 4 GiB).
    pub fn new(start: usize, end: usize) -> Span {
        Span {
            start: start as u32,
            end: end.max(start) as u32,
        }
    }
    /// Smallest span covering both.
    pub fn join(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

/// Bytes of a file that are not UTF-8 are kept as the private-use characters `U+F700 + byte`
/// (U+F700..=U+F7FF), so any file reads losslessly and [`SourceFile::encode`] gives the bytes back.
pub const RAW_BYTE_BASE: u32 = 0xF700;

/// The byte a character stands for, when it is one of the [`RAW_BYTE_BASE`] characters.
pub fn raw_byte(c: char) -> Option<u8> {
    let v = c as u32;
    (RAW_BYTE_BASE..RAW_BYTE_BASE + 256)
        .contains(&v)
        .then(|| (v - RAW_BYTE_BASE) as u8)
}

/// A named source text with a line index.
#[derive(Clone, Debug)]
pub struct SourceFile {
    /// The name diagnostics print before `:line:col` (usually the path as given).
    pub name: String,
    /// The whole text; spans index its bytes.
    pub text: String,
    line_starts: Vec<usize>,
}

impl SourceFile {
    /// A source file of already-decoded text (see [`SourceFile::from_bytes`] for raw bytes).
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> SourceFile {
        let text = text.into();
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        SourceFile {
            name: name.into(),
            text,
            line_starts,
        }
    }

    /// A file's bytes, losslessly: valid UTF-8 as is, every byte of an invalid sequence as the character
    /// `U+F700 + byte` ([`raw_byte`]). The front ends accept such characters only where iptables keeps
    /// bytes verbatim (comments, quoted strings) and refuse them, located, anywhere else.
    pub fn from_bytes(name: impl Into<String>, bytes: &[u8]) -> SourceFile {
        let mut text = String::with_capacity(bytes.len());
        let mut rest = bytes;
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    text.push_str(s);
                    break;
                }
                Err(e) => {
                    let (ok, bad) = rest.split_at(e.valid_up_to());
                    text.push_str(std::str::from_utf8(ok).unwrap_or_default());
                    let n = e.error_len().unwrap_or(bad.len());
                    for &b in &bad[..n] {
                        text.push(
                            char::from_u32(RAW_BYTE_BASE + u32::from(b)).unwrap_or('\u{fffd}'),
                        );
                    }
                    rest = &bad[n..];
                }
            }
        }
        SourceFile::new(name, text)
    }

    /// The bytes `text` stands for: the inverse of [`SourceFile::from_bytes`] (for printing back).
    pub fn encode(text: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(text.len());
        for c in text.chars() {
            match raw_byte(c) {
                Some(b) => out.push(b),
                None => {
                    let mut buf = [0; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        out
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset) - 1;
        let start = self.line_starts[line];
        let col = self
            .text
            .get(start..offset)
            .map(|s| s.chars().count())
            .unwrap_or(offset - start);
        (line + 1, col + 1)
    }

    /// Text of a 1-based line, without its line terminator.
    pub fn line_text(&self, line: usize) -> &str {
        let start = self.line_starts[line - 1];
        let end = self
            .line_starts
            .get(line)
            .copied()
            .unwrap_or(self.text.len());
        self.text[start..end].trim_end_matches(['\n', '\r'])
    }

    /// The text under `span`; empty if the span is out of range or splits a character.
    pub fn slice(&self, span: Span) -> &str {
        self.text
            .get(span.start as usize..span.end as usize)
            .unwrap_or("")
    }
}

/// How serious a [`Diagnostic`] is; ordered `Error < Warning < Note` (most serious first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The input is refused: nothing is compiled or loaded from it (codes `E0xxx`).
    Error,
    /// Accepted, but probably not what the author meant (codes `W0xxx`).
    Warning,
    /// Information about how the input was read (codes `N0xxx`).
    Note,
}

impl Severity {
    /// `error`, `warning` or `note`, as rendered before `[code]`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        }
    }
}

/// One problem found in the input. `code` is stable (`E0xxx` errors, `W0xxx` warnings, `N0xxx` notes) and
/// documented in docs/diagnostics.md.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Error, warning or note.
    pub severity: Severity,
    /// The stable code (`E0202`), documented in docs/diagnostics.md.
    pub code: &'static str,
    /// One sentence saying what is wrong.
    pub message: String,
    /// Where in the source file; `None` for a problem of the whole file.
    pub span: Option<Span>,
    /// Short text under the caret.
    pub label: Option<String>,
    /// How to fix it, rendered as `= help: …`.
    pub help: Option<String>,
}

impl Diagnostic {
    /// An error with no location yet (chain [`Diagnostic::at`], `label`, `help`).
    pub fn error(code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            span: None,
            label: None,
            help: None,
        }
    }
    /// A warning with no location yet.
    pub fn warning(code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, message)
        }
    }
    /// A note with no location yet.
    pub fn note(code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Note,
            ..Diagnostic::error(code, message)
        }
    }
    /// Locate the diagnostic at `span`.
    pub fn at(mut self, span: Span) -> Diagnostic {
        self.span = Some(span);
        self
    }
    /// Set the text shown under the caret.
    pub fn label(mut self, label: impl Into<String>) -> Diagnostic {
        self.label = Some(label.into());
        self
    }
    /// Set the `= help:` line.
    pub fn help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }
    /// The severity is [`Severity::Error`].
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `file:line:col: severity[code]: message`, then the source line, a caret underline and `help`.
    pub fn render(&self, src: &SourceFile) -> String {
        let mut out = String::new();
        let Some(span) = self.span else {
            let _ = writeln!(
                out,
                "{}: {}[{}]: {}",
                src.name,
                self.severity.as_str(),
                self.code,
                self.message
            );
            if let Some(help) = &self.help {
                let _ = writeln!(out, "  = help: {help}");
            }
            return out;
        };
        let (line, col) = src.line_col(span.start as usize);
        let _ = writeln!(
            out,
            "{}:{}:{}: {}[{}]: {}",
            src.name,
            line,
            col,
            self.severity.as_str(),
            self.code,
            self.message
        );
        let text = src.line_text(line);
        let gutter = line.to_string().len();
        let pad = " ".repeat(gutter);
        let _ = writeln!(out, "{pad} |");
        let _ = writeln!(out, "{line} | {text}");
        // Underline to the end of the span or of the line, whichever comes first (at least one caret).
        let (end_line, end_col) = src.line_col(span.end as usize);
        let line_chars = text.chars().count();
        let end_col = if end_line == line {
            end_col
        } else {
            line_chars + 1
        };
        let width = end_col.saturating_sub(col).max(1);
        let mut underline = format!("{pad} | {}{}", " ".repeat(col - 1), "^".repeat(width));
        if let Some(label) = &self.label {
            let _ = write!(underline, " {label}");
        }
        let _ = writeln!(out, "{underline}");
        if let Some(help) = &self.help {
            let _ = writeln!(out, "{pad} = help: {help}");
        }
        out
    }
}

/// Render all diagnostics, in order, separated by blank lines.
pub fn render_all(diags: &[Diagnostic], src: &SourceFile) -> String {
    diags
        .iter()
        .map(|d| d.render(src))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_that_are_not_utf8_read_and_encode_losslessly() {
        let bytes = b"a \"B\xfcro\" \xc3\xa9 \xff\xfe\n";
        let src = SourceFile::from_bytes("f", bytes);
        assert_eq!(SourceFile::encode(&src.text), bytes);
        assert!(src.text.contains('\u{e9}'));
        assert_eq!(
            src.text.chars().filter(|&c| raw_byte(c).is_some()).count(),
            3
        );
    }

    #[test]
    fn render_points_at_line_and_column() {
        let src = SourceFile::new(
            "r.rules",
            "*filter\n-A INPUT -m state --state NEW -j ACCEPT\nCOMMIT\n",
        );
        let d = Diagnostic::error("E0102", "match module `-m state` is not supported yet")
            .at(Span::new(17, 25))
            .label("here")
            .help("remove the rule or wait for conntrack support");
        let r = d.render(&src);
        assert!(r.starts_with("r.rules:2:10: error[E0102]:"), "{r}");
        assert!(r.contains("  |          ^^^^^^^^ here"), "{r}");
    }

    #[test]
    fn line_col_handles_crlf_and_end() {
        let src = SourceFile::new("x", "ab\r\ncd");
        assert_eq!(src.line_col(4), (2, 1));
        assert_eq!(src.line_text(1), "ab");
        assert_eq!(src.line_col(6), (2, 3));
    }
}
