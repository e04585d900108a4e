//! The printer: IR → YAML rule language text.
//!
//! Guarantees: [`super::lower()`] of the printed text gives back the same ruleset, except for spans
//! (the text is new), counters (printed as comments, which the reader skips) and spellings the IR
//! has twice for one meaning (a port or address as `Exact(v)` comes back as a one-value range or a
//! `/32` prefix, a one-value protocol range as `Exact`). Sets print under `sets:` and matches that came from a set print as `"@name"`;
//! comments (rule `comment`) are always double-quoted with YAML escapes, so any text survives.
//!
//! An IPv6 ruleset starts with `family: ipv6`. When a user chain is named `input`, `forward` or `output`
//! (legal in iptables, whose names are case-sensitive), the built-in chains print in capitals (`INPUT`,
//! `FORWARD`, `OUTPUT`), which frees the lower-case names for the user chains.
use super::Annotations;
use crate::ir::{Action, Chain, Family, Field, Hook, Match, Ruleset, Test};
use crate::syntax::iptables::values::{parse_proto, proto_name, Proto};
use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Print a ruleset in the YAML rule language, with the annotation comment lines.
pub fn print(rs: &Ruleset, notes: &Annotations) -> String {
    let mut out = String::new();
    for line in &notes.header {
        comment_lines(&mut out, "", line);
    }
    if rs.family != Family::V4 {
        let _ = writeln!(out, "family: {}", rs.family.as_str());
    }
    if !rs.sets.is_empty() {
        out.push_str("sets:\n");
        for s in &rs.sets {
            let field = s.field_kind.field(rs.family);
            let _ = writeln!(
                out,
                "  {}:\n    {}: {}",
                key(&s.name),
                s.field_kind.as_str(),
                list(field, &s.elements)
            );
        }
    }
    if rs.chains.is_empty() {
        out.push_str("chains: {}\n");
        return out;
    }
    out.push_str("chains:\n");
    let upper = rs
        .chains
        .iter()
        .any(|c| c.hook.is_none() && Hook::ALL.iter().any(|h| h.as_str() == c.name));
    for c in &rs.chains {
        chain(&mut out, rs, c, notes, upper);
    }
    out
}

fn chain(out: &mut String, rs: &Ruleset, c: &Chain, notes: &Annotations, upper: bool) {
    let name = match c.hook {
        Some(h) if upper => h.chain_name().to_string(),
        Some(h) => h.as_str().to_string(),
        None => key(&c.name),
    };
    let _ = writeln!(out, "  {name}:");
    if let Some(p) = c.policy {
        let _ = writeln!(out, "    policy: {}", p.as_str());
    }
    let end_unsupported = notes.unsupported_chain_end.get(&c.id);
    if c.rules.is_empty() && end_unsupported.is_none_or(Vec::is_empty) {
        out.push_str("    rules: []\n");
    } else {
        out.push_str("    rules:\n");
    }
    for r in &c.rules {
        for line in notes.before_rule.get(&r.id).into_iter().flatten() {
            comment_lines(out, "      ", line);
        }
        for u in notes
            .unsupported_before_rule
            .get(&r.id)
            .into_iter()
            .flatten()
        {
            unsupported_entry(out, u);
        }
        if let Some((p, b)) = r.counters {
            let _ = writeln!(out, "      # counters: {p} packets, {b} bytes");
        }
        let mut lines: Vec<String> = Vec::new();
        if let Some(cm) = &r.comment {
            lines.push(format!("comment: {}", quoted(cm)));
        }
        for m in &r.matches {
            lines.push(format!("{}: {}", yaml_key(m.field), match_value(m)));
        }
        lines.push(match r.action {
            Action::Accept => "action: accept".to_string(),
            Action::Drop => "action: drop".to_string(),
            Action::Reject(_) => "action: reject".to_string(),
            Action::Return => "action: return".to_string(),
            Action::Jump(t) | Action::Goto(t) => {
                let verb = if matches!(r.action, Action::Jump(_)) {
                    "jump"
                } else {
                    "goto"
                };
                let target = rs
                    .chain(t)
                    .map_or_else(|| t.to_string(), |c| c.name.clone());
                format!("{verb}: {}", key(&target))
            }
            Action::Log(id) => rs.log(id).map_or_else(|| "log: {}".to_string(), log_value),
        });
        if let Action::Reject(k) = r.action {
            lines.push(format!("with: {k}"));
        }
        for (i, l) in lines.iter().enumerate() {
            let _ = writeln!(out, "      {}{l}", if i == 0 { "- " } else { "  " });
        }
    }
    for line in notes.chain_end.get(&c.id).into_iter().flatten() {
        comment_lines(out, "      ", line);
    }
    for u in end_unsupported.into_iter().flatten() {
        unsupported_entry(out, u);
    }
}

/// `log: {…}` / `nflog: {…}` in flow style, defaults left out, the prefix always quoted.
fn log_value(spec: &crate::ir::LogSpec) -> String {
    use crate::ir::{LogKind, LOG_IPOPT, LOG_MACDECODE, LOG_TCPOPT, LOG_TCPSEQ, LOG_UID};
    let mut parts: Vec<String> = Vec::new();
    if !spec.prefix.is_empty() {
        parts.push(format!("prefix: {}", quoted(&spec.prefix)));
    }
    let key = match spec.kind {
        LogKind::Log { level, flags } => {
            if level != 4 {
                parts.push(format!("level: {level}"));
            }
            for (bit, name) in [
                (LOG_TCPSEQ, "tcp_sequence"),
                (LOG_TCPOPT, "tcp_options"),
                (LOG_IPOPT, "ip_options"),
                (LOG_UID, "uid"),
                (LOG_MACDECODE, "macdecode"),
            ] {
                if flags & bit != 0 {
                    parts.push(format!("{name}: true"));
                }
            }
            "log"
        }
        LogKind::Nflog {
            group,
            range,
            threshold,
        } => {
            for (v, name) in [
                (u32::from(group), "group"),
                (range, "range"),
                (u32::from(threshold), "threshold"),
            ] {
                if v != 0 {
                    parts.push(format!("{name}: {v}"));
                }
            }
            "nflog"
        }
    };
    format!("{key}: {{{}}}", parts.join(", "))
}

fn unsupported_entry(out: &mut String, u: &super::Unsupported) {
    let _ = writeln!(out, "      - unsupported: {}", quoted(&u.rule));
    let _ = writeln!(out, "        reason: {}", quoted(&u.reason));
}

fn comment_lines(out: &mut String, indent: &str, text: &str) {
    for l in text.split('\n') {
        let l = l.trim_end_matches('\r');
        if l.is_empty() {
            let _ = writeln!(out, "{indent}#");
        } else {
            let _ = writeln!(out, "{indent}# {l}");
        }
    }
}

fn match_value(m: &Match) -> String {
    let inner = match &m.set {
        Some(s) => quoted(&format!("@{s}")),
        None => list(m.field, &m.tests),
    };
    if m.negated {
        format!("{{not: {inner}}}")
    } else {
        inner
    }
}

/// One value bare, several as a flow list.
/// The YAML key of a field: `src_ip`/`dst_ip` for the addresses of both families (the document's
/// `family` says which), else the field's name.
fn yaml_key(field: Field) -> &'static str {
    field.for_family(Family::V4).name()
}

fn list(field: Field, tests: &[Test]) -> String {
    match tests {
        [t] => value(field, t),
        ts => format!(
            "[{}]",
            ts.iter()
                .map(|t| value(field, t))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn value(field: Field, t: &Test) -> String {
    let ip = |v: u32| Ipv4Addr::from(v).to_string();
    let addr = |a: u128| match field.bits() {
        128 => Ipv6Addr::from(a).to_string(),
        _ => ip(a as u32),
    };
    match (field, t) {
        (_, Test::Prefix { addr: a, len }) if *len == field.bits() => addr(*a),
        (_, Test::Prefix { addr: a, len }) => format!("{}/{len}", addr(*a)),
        (Field::SrcIp | Field::DstIp, Test::Exact(v)) => ip(*v),
        (Field::SrcIp | Field::DstIp, Test::Range { lo, hi }) => format!("{}-{}", ip(*lo), ip(*hi)),
        (Field::Proto, Test::Exact(n)) => u8::try_from(*n)
            .ok()
            .and_then(proto_name)
            .filter(|name| matches!(parse_proto(name), Ok(Proto::Number(p)) if u32::from(p) == *n))
            .map_or_else(|| n.to_string(), str::to_string),
        (Field::CtState, Test::Exact(v)) => match crate::packet::CtState::from_value((*v).into()) {
            Some(s) => s.name().to_ascii_lowercase(),
            None => v.to_string(),
        },
        (Field::IcmpType, Test::Exact(v)) => icmp_value(*v, *v),
        (Field::IcmpType, Test::Range { lo, hi }) => icmp_value(*lo, *hi),
        (_, Test::Exact(v)) => v.to_string(),
        (_, Test::Range { lo, hi }) if lo == hi => lo.to_string(),
        (_, Test::Range { lo, hi }) => format!("{lo}-{hi}"),
        (_, Test::Iface { name, wildcard }) => {
            let text = format!("{name}{}", if *wildcard { "+" } else { "" });
            key(&text)
        }
    }
}

/// An `icmp_type` range (`type << 8 | code`) as `ast::parse_icmp_value` reads it back: `any`, `T`,
/// `T/C`, `T1-T2` (every code), `T1/C1-T2/C2`. The one spelling of an icmp type range: `diff`'s region
/// descriptions use it too.
pub(crate) fn icmp_value(lo: u32, hi: u32) -> String {
    let (tl, cl, th, ch) = (lo >> 8, lo & 0xff, hi >> 8, hi & 0xff);
    match (cl, ch) {
        _ if (lo, hi) == (0, 0xffff) => "any".into(),
        _ if lo == hi => format!("{tl}/{cl}"),
        (0, 0xff) if tl == th => tl.to_string(),
        (0, 0xff) => format!("{tl}-{th}"),
        _ => format!("{tl}/{cl}-{th}/{ch}"),
    }
}

/// A name as a plain scalar when that reads back as the same text, else double-quoted.
fn key(s: &str) -> String {
    let mut chars = s.chars();
    let plain = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/' | '+'))
        && !matches!(
            s,
            "null" | "Null" | "NULL" | "true" | "True" | "TRUE" | "false" | "False" | "FALSE"
        );
    if plain {
        s.to_string()
    } else {
        quoted(s)
    }
}

/// A YAML double-quoted scalar; everything outside printable ASCII and the safe Unicode ranges escaped.
pub fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            ' '..='~' => out.push(c),
            '\u{a0}'..='\u{d7ff}' if !matches!(c, '\u{2028}' | '\u{2029}') => out.push(c),
            '\u{e000}'..='\u{fffd}' if c != '\u{feff}' => out.push(c),
            '\u{10000}'.. => out.push(c),
            c if (c as u32) <= 0xff => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}
