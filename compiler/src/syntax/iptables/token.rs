//! Splitting a rule line into arguments exactly as `iptables-restore` does (`add_param_to_argv` in
//! iptables' `xshared.c`):
//!
//! - arguments are separated by spaces and tabs (a CR only as the line's last byte, see below);
//! - a double quote opens a quoted part; inside it a backslash takes the next character literally and a
//!   double quote closes it; the closing quote also ends the argument (so `"a"b` is two arguments and
//!   `""` is one empty argument);
//! - outside quotes a backslash is an ordinary character, and so is a single quote;
//! - an unterminated quote is an error;
//! - a byte that is not UTF-8 (read as a [`crate::diag::raw_byte`] character) is kept inside quotes and is an
//!   error (`E0118`) outside them;
//! - an argument of 1024 bytes or more is an error ("Parameter too long!");
//! - an argument that is `-t`, starts with `-t` (`-tnat`) or is a prefix of `--table`, quoted or not, is
//!   an error: the table comes from the `*table` line. (iptables 1.8.9 refuses these through getopt, so
//!   `-mtcp` is fine there; the same word as the value of another option, `--comment -t`, is accepted by
//!   iptables and refused here.)
//!
//! Every [`Token`] keeps its unquoted text and the span of its spelling in the source (quotes included).
use crate::diag::{Diagnostic, Span};

/// iptables-restore's argument buffer is 1024 bytes including the terminating NUL.
pub const MAX_PARAM_LEN: usize = 1023;

/// One argument of a rule line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// The argument as iptables sees it: quotes removed, escapes resolved.
    pub text: String,
    /// Where the argument is spelled in the source, quotes included.
    pub span: Span,
    /// Some part of the argument was quoted (a quoted `!` or `-x` is a value, never an operator or flag).
    pub quoted: bool,
}

impl Token {
    /// An unquoted argument with this exact text.
    pub fn is(&self, text: &str) -> bool {
        !self.quoted && self.text == text
    }
}

/// Split `line` (which starts at byte `base` of the source) into arguments.
///
/// # Errors
/// The first located problem: `E0109` unterminated quote, `E0113` a `-t`/`--table` flag (the table is
/// the `*table` line's), `E0114` an argument longer than iptables-restore's buffer, `E0118` bytes that
/// are not UTF-8 outside a quoted argument.
pub fn tokenize(line: &str, base: usize) -> Result<Vec<Token>, Diagnostic> {
    let mut tokens = Vec::new();
    let mut buf = String::new();
    let mut start: Option<usize> = None;
    let mut quote_open: Option<usize> = None;
    let mut quoted = false;
    let mut escaped = false;

    fn finish(
        tokens: &mut Vec<Token>,
        buf: &mut String,
        start: &mut Option<usize>,
        quoted: &mut bool,
        end: usize,
        base: usize,
    ) -> Result<(), Diagnostic> {
        if let Some(s) = start.take() {
            let span = Span::new(base + s, base + end);
            if buf.len() > MAX_PARAM_LEN {
                return Err(Diagnostic::error("E0114", "argument too long")
                    .at(span)
                    .label(format!("{} bytes", buf.len()))
                    .help(format!(
                        "iptables-restore accepts arguments of at most {MAX_PARAM_LEN} bytes"
                    )));
            }
            let text = std::mem::take(buf);
            let table_flag = text.starts_with("-t")
                || (text.starts_with("--t") && "--table".starts_with(text.as_str()));
            if table_flag {
                return Err(Diagnostic::error("E0113", format!("`{text}` cannot be used in a restore file"))
                    .at(span)
                    .help("the table is given by the `*table` line; iptables-restore rejects -t in rule lines"));
            }
            tokens.push(Token {
                text,
                span,
                quoted: *quoted,
            });
            *quoted = false;
        }
        Ok(())
    }

    for (i, c) in line.char_indices() {
        if quote_open.is_some() {
            if escaped {
                buf.push(c);
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                quote_open = None;
                finish(&mut tokens, &mut buf, &mut start, &mut quoted, i + 1, base)?;
            } else {
                buf.push(c);
            }
            continue;
        }
        match c {
            '"' => {
                start.get_or_insert(i);
                quote_open = Some(i);
                quoted = true;
            }
            // iptables-restore splits on space and tab only; a CR ends a word only as the last byte of the
            // line (a CRLF file, read leniently), elsewhere it is part of the word as in iptables.
            ' ' | '\t' | '\n' => finish(&mut tokens, &mut buf, &mut start, &mut quoted, i, base)?,
            '\r' if i + 1 == line.len() => {
                finish(&mut tokens, &mut buf, &mut start, &mut quoted, i, base)?
            }
            _ => {
                if let Some(b) = crate::diag::raw_byte(c) {
                    return Err(Diagnostic::error("E0118", format!("byte 0x{b:02x} is not UTF-8 text"))
                        .at(Span::new(base + i, base + i + c.len_utf8()))
                        .label("not UTF-8")
                        .help("bytes that are not UTF-8 are kept only inside a double-quoted argument (e.g. a `--comment`) or a `#` line"));
                }
                start.get_or_insert(i);
                buf.push(c);
            }
        }
    }
    if let Some(q) = quote_open {
        return Err(Diagnostic::error("E0109", "unterminated quote")
            .at(Span::new(base + q, base + line.len()))
            .label("this quote is never closed")
            .help("close the quote with `\"`; inside quotes write `\\\"` for a literal quote"));
    }
    finish(
        &mut tokens,
        &mut buf,
        &mut start,
        &mut quoted,
        line.len(),
        base,
    )?;
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(line: &str) -> Vec<String> {
        tokenize(line, 0)
            .unwrap()
            .into_iter()
            .map(|t| t.text)
            .collect()
    }

    #[test]
    fn tokenize_splits_on_spaces_and_tabs() {
        assert_eq!(
            texts("-A  INPUT\t-j ACCEPT "),
            ["-A", "INPUT", "-j", "ACCEPT"]
        );
    }

    #[test]
    fn tokenize_spans_point_at_source() {
        let toks = tokenize("-A INPUT -m comment --comment \"a b\"", 10).unwrap();
        assert_eq!(toks[5].text, "a b");
        assert_eq!(toks[5].span, Span::new(10 + 30, 10 + 35));
        assert!(toks[5].quoted);
        assert_eq!(toks[1].span, Span::new(13, 18));
    }

    #[test]
    fn tokenize_quote_escapes_only_inside_quotes() {
        assert_eq!(texts(r#""a\"b\\c""#), [r#"a"b\c"#]);
        assert_eq!(texts(r"a\b"), [r"a\b"]);
        assert_eq!(texts("'a b'"), ["'a", "b'"]);
    }

    #[test]
    fn tokenize_closing_quote_ends_token() {
        assert_eq!(texts(r#""a"b"#), ["a", "b"]);
        assert_eq!(texts(r#"x"y z"w"#), ["xy z", "w"]);
        assert_eq!(texts(r#""" x"#), ["", "x"]);
    }

    #[test]
    fn tokenize_unterminated_quote_is_error() {
        let e = tokenize(r#"--comment "abc"#, 0).unwrap_err();
        assert_eq!(e.code, "E0109");
        assert_eq!(e.span, Some(Span::new(10, 14)));
    }

    #[test]
    fn tokenize_rejects_table_flag() {
        assert_eq!(tokenize("-t nat", 0).unwrap_err().code, "E0113");
        assert_eq!(tokenize("--tab nat", 0).unwrap_err().code, "E0113");
        assert_eq!(tokenize("-tnat", 0).unwrap_err().code, "E0113");
        assert!(tokenize("--tcp-flags SYN SYN", 0).is_ok());
        // Found by the differential test: iptables 1.8.9 reads `-mtcp` as `-m tcp`, `-xt` is no table.
        assert!(tokenize("-mtcp -p tcp", 0).is_ok());
        assert!(tokenize("--comment -xt", 0).is_ok());
        // A quoted `-t` is still refused (iptables 1.8.9 refuses it only in an option's place).
        assert_eq!(tokenize("--comment \"-t\"", 0).unwrap_err().code, "E0113");
        assert!(tokenize("--comment \"--x\"", 0).is_ok());
    }

    #[test]
    fn tokenize_carriage_return_is_a_blank_only_at_the_line_end() {
        // Found by the differential test: iptables-restore splits on space and tab only.
        assert_eq!(texts("-j ACCEPT\r"), ["-j", "ACCEPT"]);
        assert_eq!(
            texts("--quota \r5 -j\rDROP"),
            ["--quota", "\r5", "-j\rDROP"]
        );
    }

    #[test]
    fn tokenize_rejects_overlong_argument() {
        let long = "x".repeat(MAX_PARAM_LEN + 1);
        assert_eq!(tokenize(&long, 0).unwrap_err().code, "E0114");
        assert!(tokenize(&long[1..], 0).is_ok());
    }

    /// libxtables' `xtables_save_string`, the quoting iptables-save applies to free text.
    fn save_string(s: &str) -> String {
        if !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return s.to_string();
        }
        let mut o = String::from("\"");
        for c in s.chars() {
            if matches!(c, '"' | '\\' | '\'') {
                o.push('\\');
            }
            o.push(c);
        }
        o.push('"');
        o
    }

    fn looks_like_table_flag(s: &str) -> bool {
        s.starts_with("-t") || (s.starts_with("--t") && "--table".starts_with(s))
    }

    proptest::proptest! {
        #[test]
        fn tokenize_reads_back_saved_strings(words in proptest::collection::vec("[ -~\t\u{e9}]{0,12}", 1..6)) {
            proptest::prop_assume!(!words.iter().any(|w| looks_like_table_flag(w)));
            let saved: Vec<String> = words.iter().map(|w| save_string(w)).collect();
            let line = saved.join(" ");
            let toks = tokenize(&line, 7).unwrap();
            let texts: Vec<&str> = toks.iter().map(|t| t.text.as_str()).collect();
            proptest::prop_assert_eq!(&texts, &words);
            for (t, s) in toks.iter().zip(&saved) {
                proptest::prop_assert_eq!(&line[t.span.start as usize - 7..t.span.end as usize - 7], s.as_str());
            }
        }

        #[test]
        fn tokenize_never_panics(line in "\\PC{0,40}") {
            if let Err(d) = tokenize(&line, 0) {
                let span = d.span.expect("located");
                proptest::prop_assert!(span.end as usize <= line.len());
            }
        }
    }
}
