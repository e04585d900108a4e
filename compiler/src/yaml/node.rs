//! The YAML document as a tree of located nodes (serde-saphyr underneath).
//!
//! Guarantees: every node carries the byte span of its source text (scalars: the scalar itself, quotes
//! included; sequences and mappings: from their first to their last byte, computed from the children);
//! mapping entries keep their order and their keys' spans; a syntax error (including a duplicate key,
//! nesting deeper than 64 levels or an alias bomb, which serde-saphyr's default budget refuses) is one
//! `E0401` diagnostic at the parser's location.
//!
//! Thrown away: comments, tags, anchors (aliases are expanded, located at the alias), the scalar styles
//! beyond "plain or not". Plain scalars keep their source text verbatim and are NOT typed by YAML 1.1's
//! rules (`yes`, `n`, `0755`, `8000:8099` stay the text written), so the rule language decides what a
//! value means: that is YAML 1.2's core schema as far as this language can tell.
use crate::diag::{Diagnostic, SourceFile, Span};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// A located YAML node.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// The node's content.
    pub value: Value,
    /// Byte range of the node's source text (see the module guarantees).
    pub span: Span,
}

/// A YAML node's content: YAML's three kinds of node.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A scalar (string, number, boolean, null), kept as text.
    Scalar(Scalar),
    /// A sequence (block `- x` or flow `[x, y]`).
    Seq(Vec<Node>),
    /// Entries in document order.
    Map(Vec<(Node, Node)>),
}

/// A scalar's text. `plain`: written without quotes or block indicators, so `~`, `null`, `true` and
/// numbers keep their YAML meaning when [`Scalar::kind`] is asked.
#[derive(Clone, Debug, PartialEq)]
pub struct Scalar {
    /// The scalar's value after YAML unquoting/unescaping (the source text for plain scalars).
    pub text: String,
    /// Written without quotes or block indicators.
    pub plain: bool,
}

impl Scalar {
    /// YAML 1.2 core-schema type of the scalar, for messages and type checks.
    pub fn kind(&self) -> &'static str {
        if !self.plain {
            return "string";
        }
        match self.text.as_str() {
            "" | "~" | "null" | "Null" | "NULL" => "null",
            "true" | "True" | "TRUE" | "false" | "False" | "FALSE" => "boolean",
            t if !t.is_empty()
                && t.trim_start_matches(['-', '+'])
                    .bytes()
                    .all(|b| b.is_ascii_digit()) =>
            {
                "number"
            }
            _ => "string",
        }
    }
    /// A plain `~`, `null` (any YAML case form) or empty scalar.
    pub fn is_null(&self) -> bool {
        self.kind() == "null"
    }
}

impl Node {
    /// `a list`, `a mapping`, `a number`, … (for "expected X, found Y").
    pub fn describe(&self) -> String {
        match &self.value {
            Value::Scalar(s) => match s.kind() {
                "null" => "nothing (null)".to_string(),
                "boolean" => format!("the boolean `{}`", s.text),
                "number" => format!("the number {}", s.text),
                _ => format!("the string {:?}", s.text),
            },
            Value::Seq(_) => "a list".to_string(),
            Value::Map(_) => "a mapping".to_string(),
        }
    }
    /// The node's scalar, if it is one.
    pub fn as_scalar(&self) -> Option<&Scalar> {
        match &self.value {
            Value::Scalar(s) => Some(s),
            _ => None,
        }
    }
}

/// What serde-saphyr hands over, before spans are turned into source byte ranges.
enum Raw {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<RawNode>),
    Map(Vec<(RawNode, RawNode)>),
}

struct RawNode {
    raw: Raw,
    /// Byte offset and length serde-saphyr reports (`None` when it has no byte information).
    at: Option<(u64, u64)>,
}

impl<'de> Deserialize<'de> for RawNode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s: serde_saphyr::Spanned<Raw> = serde_saphyr::Spanned::deserialize(d)?;
        let sp = s.referenced.span();
        let at = sp.byte_offset().zip(sp.byte_len());
        Ok(RawNode { raw: s.value, at })
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }
    fn visit_none<E>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
        d.deserialize_any(RawVisitor)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Raw, E> {
        Ok(Raw::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Raw, E> {
        Ok(Raw::Int(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Raw, E> {
        Ok(Raw::Int(v.into()))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Raw, E> {
        Ok(Raw::Int(v))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Raw, E> {
        Ok(Raw::Str(v.to_string()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Raw, E> {
        Ok(Raw::Float(v))
    }
    fn visit_char<E>(self, v: char) -> Result<Raw, E> {
        Ok(Raw::Str(v.to_string()))
    }
    fn visit_str<E>(self, v: &str) -> Result<Raw, E> {
        Ok(Raw::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Raw, E> {
        Ok(Raw::Str(v))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<Raw, E> {
        Ok(Raw::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Raw, A::Error> {
        let mut v = Vec::new();
        while let Some(n) = a.next_element::<RawNode>()? {
            v.push(n);
        }
        Ok(Raw::Seq(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Raw, A::Error> {
        let mut v = Vec::new();
        while let Some(k) = a.next_key::<RawNode>()? {
            let val = a.next_value::<RawNode>()?;
            v.push((k, val));
        }
        Ok(Raw::Map(v))
    }
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RawVisitor)
    }
}

/// Most YAML nodes (mappings, sequences, scalars) a document may have: 8,000,000, room for 500,000 rules of
/// six matches (a rule is about 15 nodes; `migrate` of 100,000 rules writes ~1.1 million), far more than the
/// datapath takes. serde-saphyr's default (250,000) refused migrated rulesets above ~27,700 rules. The
/// input itself is bounded by `frontend::MAX_INPUT_BYTES`.
pub const MAX_NODES: usize = 8_000_000;

/// Parse a YAML text into a located tree. `Ok(None)`: the document is empty (only comments or blanks).
///
/// # Errors
/// One `E0401` at the parser's location for a YAML syntax error, a duplicate key, or a document beyond
/// serde-saphyr's budget ([`MAX_NODES`], nesting depth, alias expansion).
pub fn parse(src: &SourceFile) -> Result<Option<Node>, Diagnostic> {
    if src
        .text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#') || l.trim() == "---")
    {
        return Ok(None);
    }
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_nodes: MAX_NODES,
            max_events: 2 * MAX_NODES,
        },
    };
    match serde_saphyr::from_str_with_options::<RawNode>(&src.text, options) {
        Ok(raw) => Ok(Some(convert(raw, &src.text))),
        Err(e) => Err(syntax_error(&e, src)),
    }
}

fn syntax_error(e: &serde_saphyr::Error, src: &SourceFile) -> Diagnostic {
    let inner = e.without_snippet();
    let full = inner.to_string();
    // serde-saphyr prefixes "error: line L column C: "; the diagnostic carries the location itself.
    let msg = full.trim_start_matches("error: ");
    let msg = match msg.split_once(": ") {
        Some((head, rest)) if head.starts_with("line ") && head.contains(" column ") => rest,
        _ => msg,
    };
    let mut msg = msg.lines().next().unwrap_or("").trim();
    // Location and tuning advice are serde-saphyr's, not the user's business.
    if let Some(i) = msg.rfind(" at line ") {
        msg = &msg[..i];
    }
    let msg = match msg.split_once(", set DuplicateKeyPolicy") {
        Some((m, _)) => match m.strip_prefix("duplicate mapping key: ") {
            Some(k) => format!("duplicate key `{k}`"),
            None => m.to_string(),
        },
        None => msg.to_string(),
    };
    let msg = if msg.starts_with("multiple YAML documents") {
        "a ruleset is one YAML document; this is a second one".to_string()
    } else {
        msg
    };
    let mut d = Diagnostic::error("E0401", format!("invalid YAML: {msg}"));
    let loc = e.location().or_else(|| inner.location());
    if let Some(loc) = loc {
        let sp = loc.span();
        let start = match sp.byte_offset() {
            Some(b) => b as usize,
            None => offset_of(src, loc.line() as usize, loc.column() as usize),
        };
        let len = sp.byte_len().unwrap_or(1).max(1) as usize;
        let start = start.min(src.text.len());
        d = d.at(Span::new(
            start,
            (start + len).min(src.text.len()).max(start),
        ));
    }
    d.help("see docs/yaml.md for the format; quote values that contain `: `, `#`, `@`, `!` or start with `*`")
}

/// Byte offset of a 1-based line and character column (clamped to the text).
fn offset_of(src: &SourceFile, line: usize, col: usize) -> usize {
    let mut off = 0;
    for (i, l) in src.text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            let chars = l.char_indices().nth(col.saturating_sub(1));
            return off + chars.map(|(b, _)| b).unwrap_or(l.len());
        }
        off += l.len();
    }
    src.text.len()
}

fn convert(n: RawNode, text: &str) -> Node {
    let own = n.at.map(|(s, l)| {
        let s = (s as usize).min(text.len());
        Span::new(s, (s + l as usize).min(text.len()))
    });
    match n.raw {
        Raw::Seq(items) => {
            let items: Vec<Node> = items.into_iter().map(|i| convert(i, text)).collect();
            let span = cover(own, items.iter().map(|i| i.span));
            Node {
                value: Value::Seq(items),
                span,
            }
        }
        Raw::Map(entries) => {
            let entries: Vec<(Node, Node)> = entries
                .into_iter()
                .map(|(k, v)| (convert(k, text), convert(v, text)))
                .collect();
            let span = cover(own, entries.iter().flat_map(|(k, v)| [k.span, v.span]));
            Node {
                value: Value::Map(entries),
                span,
            }
        }
        raw => {
            let span = own.unwrap_or_default();
            let source = text
                .get(span.start as usize..span.end as usize)
                .unwrap_or("");
            let first = source.chars().next();
            let parsed = match raw {
                Raw::Null => String::new(),
                Raw::Bool(b) => b.to_string(),
                Raw::Int(i) => i.to_string(),
                Raw::Float(f) => f.to_string(),
                Raw::Str(s) => s,
                Raw::Seq(_) | Raw::Map(_) => String::new(),
            };
            let scalar = match first {
                _ if own.is_none() => Scalar {
                    text: parsed,
                    plain: true,
                },
                Some('"' | '\'' | '|' | '>') => Scalar {
                    text: parsed,
                    plain: false,
                },
                // An alias (`*a`): the value it stands for.
                Some('*') => Scalar {
                    text: parsed,
                    plain: true,
                },
                // A plain scalar: the text as written (YAML 1.1 typing undone); multi-line ones folded.
                _ => Scalar {
                    text: if source.contains('\n') {
                        parsed
                    } else {
                        source.trim_end().to_string()
                    },
                    plain: true,
                },
            };
            Node {
                value: Value::Scalar(scalar),
                span,
            }
        }
    }
}

/// The smallest span covering a collection's own start and its children.
fn cover(own: Option<Span>, children: impl Iterator<Item = Span>) -> Span {
    let mut span: Option<Span> = own.map(|s| Span {
        start: s.start,
        end: s.start.max(s.end.min(s.start + 1)),
    });
    for c in children {
        span = Some(match span {
            Some(s) => s.join(c),
            None => c,
        });
    }
    span.unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(text: &str) -> Node {
        parse(&SourceFile::new("t.yaml", text)).unwrap().unwrap()
    }

    #[test]
    fn scalar_keeps_plain_text_and_spans() {
        let src = "a: yes\nb: 0755\nc: \"q\"\nn: 8000:8099\n";
        let Value::Map(m) = tree(src).value else {
            panic!()
        };
        let texts: Vec<_> = m
            .iter()
            .map(|(k, v)| {
                let (k, v) = (k.as_scalar().unwrap(), v.as_scalar().unwrap());
                (k.text.clone(), v.text.clone(), v.plain)
            })
            .collect();
        assert_eq!(
            texts,
            [
                ("a".into(), "yes".into(), true),
                ("b".into(), "0755".into(), true),
                ("c".into(), "q".into(), false),
                ("n".into(), "8000:8099".into(), true),
            ]
        );
        assert_eq!(
            &src[m[2].1.span.start as usize..m[2].1.span.end as usize],
            "\"q\""
        );
    }

    #[test]
    fn scalar_second_document_is_refused_without_api_advice() {
        let src = SourceFile::new("t.yaml", "chains: {}\n---\nchains: {}\n");
        let d = parse(&src).unwrap_err();
        assert_eq!(d.code, "E0401");
        assert!(d.message.contains("second"), "{}", d.message);
        assert!(!d.message.contains("from_str"), "{}", d.message);
    }

    #[test]
    fn scalar_syntax_error_is_located() {
        let src = SourceFile::new("t.yaml", "a: 1\na: 2\n");
        let d = parse(&src).unwrap_err();
        assert_eq!(d.code, "E0401");
        assert_eq!(src.line_col(d.span.unwrap().start as usize), (2, 1));
        assert!(d.message.contains("duplicate"), "{}", d.message);
    }
}
