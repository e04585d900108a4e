//! The YAML rule language's surface AST, read from the located node tree.
//!
//! Guarantees: every key of the document is known (or reported, `E0402`), every value has the shape
//! and type its key wants (`E0403`), and every scalar value is parsed into what it denotes — addresses
//! and prefixes (`E0405`), ports and ranges (`E0406`), protocols (`E0407`), interface names (`E0409`) —
//! with the span of the text it came from. Problems do not stop the walk: all of them are reported, and
//! an item with a problem is left out of the AST (so the AST of a file with errors is partial and only
//! good for finding more errors).
//!
//! Thrown away: YAML layout and comments, the order of keys inside a rule (a rule's matches are sorted
//! by field here), spelling of numbers and protocol names (kept only as the numbers they denote).
//! Name resolution (chains, sets), the proto requirement of ports, rule ids and loops are checked by
//! [`super::lower`](mod@super::lower).
use super::node::{Node, Value};
use crate::diag::{Diagnostic, Span};
use crate::ir::{Family, Field, Hook, Lookup, SetKind, Test, Verdict, MAX_IFACE_LEN};
use crate::syntax::iptables::values::{parse_proto, Proto};
use crate::syntax::iptables::{rule::STANDARD_TARGETS, MAX_CHAIN_NAME_LEN};
use std::net::{Ipv4Addr, Ipv6Addr};

/// A value with the span of its source text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sp<T> {
    /// What the text denotes.
    pub value: T,
    /// The text in the file.
    pub span: Span,
}

/// A whole file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Document {
    /// `family: ipv4|ipv6` (absent: ipv4).
    pub family: Option<Sp<Family>>,
    /// `sets:`, in order of definition.
    pub sets: Vec<SetDef>,
    /// `chains:`, in order of definition.
    pub chains: Vec<ChainDef>,
}

/// `sets: { NAME: { addr|port|proto: [values] } }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetDef {
    /// The set's name (the mapping key), referenced as `@name`.
    pub name: Sp<String>,
    /// The one key of the set's mapping: `addr`, `port` or `proto`.
    pub kind: SetKind,
    /// An `addr` set: the family of its addresses (`None` for other kinds, or no valid element).
    pub family: Option<Family>,
    /// The valid elements, in order (invalid ones were reported and left out).
    pub elements: Vec<Sp<Test>>,
    /// From the set's name to the end of its value.
    pub span: Span,
}

/// `chains: { NAME: { policy, rules } }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainDef {
    /// The name as written (`input`, `web`).
    pub name: Sp<String>,
    /// `input`, `forward`, `output` are the built-in chains.
    pub hook: Option<Hook>,
    /// `policy: accept|drop` (required on built-in chains, refused on user chains by lowering).
    pub policy: Option<Sp<Verdict>>,
    /// `rules:`, in order.
    pub rules: Vec<RuleDef>,
    /// From the chain's name to the end of its value.
    pub span: Span,
}

/// One item of a chain's `rules:` list: field keys plus `id`, `comment`, `action`/`jump`/`goto`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleDef {
    /// `false` when the rule had a problem (already reported): it keeps its place (and id) but is not
    /// lowered.
    pub complete: bool,
    /// `id: rN`, checked against the rule's place by lowering.
    pub id: Option<Sp<u32>>,
    /// `comment: TEXT` (reports only).
    pub comment: Option<Sp<String>>,
    /// Sorted by field, at most one per field.
    pub matches: Vec<MatchDef>,
    /// `action:`, `jump:` or `goto:` (exactly one is required; a missing one was reported).
    pub action: Option<Sp<ActionDef>>,
    /// `with: KIND` (only beside `action: reject`: the reply, `--reject-with`'s spellings; checked
    /// by lowering against the family and the rule's protocol).
    pub with: Option<Sp<String>>,
    /// The whole list item.
    pub span: Span,
}

/// What a YAML rule does when it matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActionDef {
    /// `action: accept`.
    Accept,
    /// `action: drop`.
    Drop,
    /// `action: return`: leave the chain (in a built-in chain: its policy).
    Return,
    /// `action: reject`: drop and answer the sender (the reply from the rule's `with:`).
    Reject,
    /// `jump: CHAIN` (name resolved by lowering).
    Jump(Sp<String>),
    /// `goto: CHAIN` (name resolved by lowering).
    Goto(Sp<String>),
    /// `log: {prefix: P, level: L, tcp_sequence: true, …}` or `nflog: {group: G, prefix: P, …}`:
    /// report the packet and go on with the next rule (iptables' `-j LOG` / `-j NFLOG`).
    Log(crate::ir::LogSpec),
}

/// One field key of a rule (`dst_port: 22`, `src_ip: {not: 10.0.0.0/8}`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatchDef {
    /// The field the key names.
    pub field: Field,
    /// Written `{not: VALUE}`: the match holds outside every value.
    pub negated: bool,
    /// The value(s) or set reference.
    pub values: Values,
    /// From the key to the end of the value.
    pub span: Span,
}

/// The value of a field key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Values {
    /// `"@name"`.
    Set(Sp<String>),
    /// One value or a list (non-empty).
    Tests(Vec<Sp<Test>>),
}

/// Keys a rule may have besides the field names.
pub const RULE_KEYS: [&str; 8] = [
    "id", "comment", "action", "jump", "goto", "log", "nflog", "with",
];

/// Common misspellings and other tools' names for the rule keys, for "did you mean".
const ALIASES: [(&str, &str); 22] = [
    ("src", "src_ip"),
    ("source", "src_ip"),
    ("saddr", "src_ip"),
    ("s", "src_ip"),
    ("dst", "dst_ip"),
    ("destination", "dst_ip"),
    ("daddr", "dst_ip"),
    ("d", "dst_ip"),
    ("protocol", "proto"),
    ("p", "proto"),
    ("sport", "src_port"),
    ("dport", "dst_port"),
    ("port", "dst_port"),
    ("dports", "dst_port"),
    ("sports", "src_port"),
    ("iif", "in_iface"),
    ("iifname", "in_iface"),
    ("oif", "out_iface"),
    ("oifname", "out_iface"),
    ("target", "action"),
    ("verdict", "action"),
    ("name", "comment"),
];

/// Walks the node tree, collecting diagnostics.
pub(crate) struct Reader<'a> {
    pub diags: &'a mut Vec<Diagnostic>,
}

fn scalar_text(n: &Node) -> Option<&str> {
    n.as_scalar().map(|s| s.text.as_str())
}

impl Reader<'_> {
    fn error(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn wrong_type(&mut self, n: &Node, what: &str, expected: &str) {
        self.error(
            Diagnostic::error(
                "E0403",
                format!("{what} must be {expected}, found {}", n.describe()),
            )
            .at(n.span)
            .label(format!("expected {expected}")),
        );
    }

    /// The entries of a mapping, or `None` after reporting a wrong type.
    fn map<'n>(&mut self, n: &'n Node, what: &str) -> Option<&'n [(Node, Node)]> {
        match &n.value {
            Value::Map(m) => Some(m),
            _ => {
                self.wrong_type(n, what, "a mapping");
                None
            }
        }
    }

    /// A mapping's keys as strings; non-string keys are reported and skipped.
    fn entries<'n>(&mut self, n: &'n Node, what: &str) -> Vec<(Sp<&'n str>, &'n Node)> {
        let Some(m) = self.map(n, what) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, v) in m {
            match k.as_scalar() {
                Some(s) if !s.is_null() => out.push((
                    Sp {
                        value: s.text.as_str(),
                        span: k.span,
                    },
                    v,
                )),
                _ => self.wrong_type(k, &format!("a key of {what}"), "a name"),
            }
        }
        out
    }

    fn unknown_key(&mut self, key: &Sp<&str>, place: &str, known: &[&str]) {
        let suggestion = ALIASES
            .iter()
            .find(|(a, _)| a.eq_ignore_ascii_case(key.value))
            .map(|(_, k)| *k)
            .filter(|k| known.contains(k))
            .or_else(|| {
                known
                    .iter()
                    .copied()
                    .find(|k| k.eq_ignore_ascii_case(key.value))
            })
            .or_else(|| {
                // A typo: the closest key within two edits.
                known
                    .iter()
                    .copied()
                    .map(|k| (edit_distance(k, key.value), k))
                    .filter(|&(d, _)| d <= 2)
                    .min()
                    .map(|(_, k)| k)
            });
        let help = match suggestion {
            Some(k) => format!("did you mean `{k}`?"),
            None => format!("{place} may have: {}", known.join(", ")),
        };
        self.error(
            Diagnostic::error("E0402", format!("unknown key `{}` in {place}", key.value))
                .at(key.span)
                .label("unknown key")
                .help(help),
        );
    }

    fn string(&mut self, n: &Node, what: &str) -> Option<Sp<String>> {
        match n.as_scalar() {
            Some(s) if s.kind() == "string" || (s.kind() != "null" && !s.plain) => Some(Sp {
                value: s.text.clone(),
                span: n.span,
            }),
            // A comment such as `comment: 42` or `comment: yes` is still text a human wrote.
            Some(s) if s.kind() == "number" || s.kind() == "boolean" => Some(Sp {
                value: s.text.clone(),
                span: n.span,
            }),
            _ => {
                self.wrong_type(n, what, "a string");
                None
            }
        }
    }

    /// A bare word from a fixed list (case-sensitive, lower-case).
    fn keyword<T: Copy>(&mut self, n: &Node, what: &str, words: &[(&str, T)]) -> Option<Sp<T>> {
        let list = words
            .iter()
            .map(|(w, _)| format!("`{w}`"))
            .collect::<Vec<_>>()
            .join(", ");
        match scalar_text(n) {
            Some(t) => match words.iter().find(|(w, _)| *w == t) {
                Some(&(_, v)) => Some(Sp {
                    value: v,
                    span: n.span,
                }),
                None => {
                    let help = match words.iter().find(|(w, _)| w.eq_ignore_ascii_case(t)) {
                        Some((w, _)) => format!("write `{w}` (lower case)"),
                        None => format!("one of {list}"),
                    };
                    self.error(
                        Diagnostic::error(
                            "E0403",
                            format!("{what} must be one of {list}, found {}", n.describe()),
                        )
                        .at(n.span)
                        .help(help),
                    );
                    None
                }
            },
            None => {
                self.wrong_type(n, what, &format!("one of {list}"));
                None
            }
        }
    }

    /// The whole document.
    pub fn document(&mut self, root: &Node) -> Document {
        let mut doc = Document::default();
        let mut chains_seen = false;
        for (k, v) in self.entries(root, "the document") {
            match k.value {
                "sets" => {
                    if v.as_scalar().is_some_and(|s| s.is_null()) {
                        continue;
                    }
                    for (name, body) in self.entries(v, "`sets`") {
                        if let Some(s) = self.set(name, body) {
                            doc.sets.push(s);
                        }
                    }
                }
                "chains" => {
                    chains_seen = true;
                    if v.as_scalar().is_some_and(|s| s.is_null()) {
                        continue;
                    }
                    let entries = self.entries(v, "`chains`");
                    // Writing a built-in chain in capitals (`FORWARD`) frees its lower-case name for a user
                    // chain (iptables' chain names are case-sensitive: `forward` is not `FORWARD`).
                    let upper: Vec<Hook> = entries
                        .iter()
                        .filter_map(|(n, _)| Hook::from_chain_name(n.value))
                        .collect();
                    for (name, body) in entries {
                        if let Some(c) = self.chain(name, body, &upper) {
                            doc.chains.push(c);
                        }
                    }
                }
                "family" => {
                    doc.family = self.keyword(
                        v,
                        "the address family",
                        &[("ipv4", Family::V4), ("ipv6", Family::V6)],
                    );
                }
                _ => self.unknown_key(&k, "the document", &["family", "sets", "chains"]),
            }
        }
        if !chains_seen && matches!(root.value, Value::Map(_)) {
            self.error(
                Diagnostic::error("E0404", "the document has no `chains`")
                    .at(Span::new(root.span.start as usize, root.span.start as usize + 1))
                    .help("a ruleset declares its chains: `chains: {input: {policy: drop, rules: [...]}}`"),
            );
        }
        doc
    }

    fn set(&mut self, name: Sp<&str>, body: &Node) -> Option<SetDef> {
        let name_ok = valid_set_name(name.value);
        if !name_ok {
            self.error(
                Diagnostic::error("E0415", format!("bad set name `{}`", name.value))
                    .at(name.span)
                    .help("set names start with a letter or `_` and use letters, digits, `_`, `-`, `.` (at most 32)"),
            );
        }
        let entries = self.entries(body, &format!("set `{}`", name.value));
        if entries.len() != 1 {
            if matches!(body.value, Value::Map(_)) {
                self.error(
                    Diagnostic::error(
                        "E0415",
                        format!(
                            "set `{}` must have exactly one of `addr`, `port`, `proto`",
                            name.value
                        ),
                    )
                    .at(if entries.is_empty() {
                        body.span
                    } else {
                        entries[1].0.span
                    })
                    .help("write `NAME: {addr: [10.0.0.0/8, 192.0.2.1]}`"),
                );
            }
            return None;
        }
        let (kind_key, values) = &entries[0];
        let (kind, field) = match kind_key.value {
            "addr" => (SetKind::Addr, Field::SrcIp),
            "port" => (SetKind::Port, Field::DstPort),
            "proto" => (SetKind::Proto, Field::Proto),
            _ => {
                self.unknown_key(
                    kind_key,
                    &format!("set `{}`", name.value),
                    &["addr", "port", "proto"],
                );
                return None;
            }
        };
        // Elements with problems are reported and left out; the set stays, so references to it resolve.
        let (elements, _, family) =
            self.tests(field, values, &format!("set `{}`", name.value), false)?;
        if !name_ok {
            return None;
        }
        Some(SetDef {
            name: Sp {
                value: name.value.to_string(),
                span: name.span,
            },
            kind,
            family,
            elements,
            span: name.span.join(body.span),
        })
    }

    /// A chain; `upper`: the built-in chains the document writes in capitals (their lower-case names are
    /// then user chains).
    fn chain(&mut self, name: Sp<&str>, body: &Node, upper: &[Hook]) -> Option<ChainDef> {
        let hook = Hook::from_chain_name(name.value).or_else(|| {
            Hook::ALL
                .into_iter()
                .find(|h| h.as_str() == name.value && !upper.contains(h))
        });
        if hook.is_none() {
            if let Some(problem) = bad_chain_name(name.value) {
                self.error(
                    Diagnostic::error("E0414", format!("bad chain name `{}`: {problem}", name.value))
                        .at(name.span)
                        .help("user chains have names of 1-28 bytes without white space, not starting with `-` or `!`, other than ACCEPT, DROP, QUEUE and RETURN (as iptables-restore)"),
                );
                return None;
            }
        }
        let what = format!("chain `{}`", name.value);
        let mut policy = None;
        let mut policy_given = false;
        let mut rules = Vec::new();
        for (k, v) in self.entries(body, &what) {
            match k.value {
                "policy" => {
                    if hook.is_none() {
                        self.error(
                            Diagnostic::error("E0414", format!("user chain `{}` cannot have a policy", name.value))
                                .at(k.span)
                                .help("only `input`, `forward` and `output` have a policy; the end of a user chain returns to the rule after the jump"),
                        );
                    } else {
                        policy_given = true;
                        policy = self.keyword(
                            v,
                            "a policy",
                            &[("accept", Verdict::Accept), ("drop", Verdict::Drop)],
                        );
                    }
                }
                "rules" => match &v.value {
                    Value::Seq(items) => rules.extend(items.iter().map(|item| self.rule(item))),
                    Value::Scalar(s) if s.is_null() => {}
                    _ => self.wrong_type(v, "`rules`", "a list of rules"),
                },
                _ => self.unknown_key(&k, &what, &["policy", "rules"]),
            }
        }
        if hook.is_some() && !policy_given && matches!(body.value, Value::Map(_)) {
            self.error(
                Diagnostic::error("E0404", format!("built-in chain `{}` has no `policy`", name.value))
                    .at(name.span)
                    .help("say what happens to packets no rule decides: `policy: drop` or `policy: accept`"),
            );
        }
        // A chain with problems inside stays (its rules are marked incomplete), so jumps to it resolve.
        Some(ChainDef {
            name: Sp {
                value: name.value.to_string(),
                span: name.span,
            },
            hook,
            policy,
            rules,
            span: name.span.join(body.span),
        })
    }

    fn rule(&mut self, n: &Node) -> RuleDef {
        let mut ok = true;
        let mut rule = RuleDef {
            complete: false,
            id: None,
            comment: None,
            matches: Vec::new(),
            action: None,
            with: None,
            span: n.span,
        };
        if !matches!(n.value, Value::Map(_)) {
            self.wrong_type(
                n,
                "a rule",
                "a mapping (`- {proto: tcp, dst_port: 22, action: accept}`)",
            );
            return rule;
        }
        if self.unsupported_entry(n) {
            // Never lowered: the rule stays refused until the user deletes or replaces it.
            return rule;
        }
        let mut action_key: Option<Span> = None;
        // Addresses of both families are written `src_ip`/`dst_ip` (the values' spelling picks the
        // field); `src_ip6`/`dst_ip6` are the IR's names, not keys.
        let is_key = |f: &Field| f.for_family(Family::V4) == *f;
        let known: Vec<&str> = Field::ALL
            .iter()
            .filter(|f| is_key(f))
            .map(|f| f.name())
            .chain(RULE_KEYS)
            .collect();
        for (k, v) in self.entries(n, "a rule") {
            if let Some(field) = Field::from_name(k.value).filter(is_key) {
                match self.match_def(field, &k, v) {
                    Some(m) => rule.matches.push(m),
                    None => ok = false,
                }
                continue;
            }
            let action = match k.value {
                "id" => {
                    match scalar_text(v)
                        .and_then(|t| t.strip_prefix('r'))
                        .and_then(|d| {
                            (d.bytes().all(|b| b.is_ascii_digit())
                                && (d == "0" || !d.starts_with('0')))
                            .then(|| d.parse::<u32>().ok())
                            .flatten()
                        }) {
                        Some(id) => {
                            rule.id = Some(Sp {
                                value: id,
                                span: v.span,
                            })
                        }
                        None => {
                            self.wrong_type(
                                v,
                                "a rule id",
                                "`r` and the rule's number (`r0`, `r12`)",
                            );
                            ok = false;
                        }
                    }
                    continue;
                }
                "comment" => {
                    rule.comment = self.string(v, "a comment");
                    ok &= rule.comment.is_some();
                    continue;
                }
                "with" => {
                    rule.with = self.string(v, "a reject kind");
                    ok &= rule.with.is_some();
                    continue;
                }
                "action" => self
                    .keyword(
                        v,
                        "an action",
                        &[("accept", 0u8), ("drop", 1), ("return", 2), ("reject", 3)],
                    )
                    .map(|a| Sp {
                        value: match a.value {
                            0 => ActionDef::Accept,
                            1 => ActionDef::Drop,
                            3 => ActionDef::Reject,
                            _ => ActionDef::Return,
                        },
                        span: k.span.join(a.span),
                    }),
                "log" | "nflog" => self.log_def(k.value == "nflog", v).map(|spec| Sp {
                    value: ActionDef::Log(spec),
                    span: k.span.join(v.span),
                }),
                "jump" | "goto" => self.string(v, "a chain name").map(|c| Sp {
                    value: if k.value == "jump" {
                        ActionDef::Jump(c)
                    } else {
                        ActionDef::Goto(c)
                    },
                    span: k.span.join(v.span),
                }),
                _ => {
                    self.unknown_key(&k, "a rule", &known);
                    ok = false;
                    continue;
                }
            };
            if action_key.is_some() {
                self.error(
                    Diagnostic::error(
                        "E0413",
                        format!("a rule has one action; `{}` is a second one", k.value),
                    )
                    .at(k.span)
                    .label("second action")
                    .help("keep one of `action`, `jump`, `goto`, `log`, `nflog`"),
                );
                ok = false;
                continue;
            }
            action_key = Some(k.span);
            match action {
                Some(a) => rule.action = Some(a),
                None => ok = false,
            }
        }
        if action_key.is_none() && matches!(n.value, Value::Map(_)) {
            self.error(
                Diagnostic::error("E0404", "rule has no action")
                    .at(Span::new(n.span.start as usize, n.span.start as usize + 1))
                    .label("no `action`, `jump` or `goto`")
                    .help("add `action: accept`, `action: drop`, `action: reject`, `action: return`, `jump: CHAIN` or `goto: CHAIN`"),
            );
            ok = false;
        }
        rule.matches.sort_by_key(|m| m.field);
        rule.complete = ok;
        rule
    }

    /// The mapping of a `log:` (LOG) or `nflog:` (NFLOG) action, checked as iptables checks the
    /// options (`libxt_LOG.c`, `libxt_NFLOG.c`): `prefix` (at most 29 / 63 bytes, no newline),
    /// `level` (0-7 or a syslog name), the LOG flags `tcp_sequence`, `tcp_options`, `ip_options`,
    /// `uid`, `macdecode` (booleans); NFLOG's `group` (0-65535), `range` (bytes), `threshold`.
    fn log_def(&mut self, nflog: bool, v: &Node) -> Option<crate::ir::LogSpec> {
        use crate::ir::{
            LogKind, LogSpec, LOG_IPOPT, LOG_MACDECODE, LOG_TCPOPT, LOG_TCPSEQ, LOG_UID,
        };
        let what = if nflog {
            "an nflog action"
        } else {
            "a log action"
        };
        let known: &[&str] = if nflog {
            &["prefix", "group", "range", "threshold"]
        } else {
            &[
                "prefix",
                "level",
                "tcp_sequence",
                "tcp_options",
                "ip_options",
                "uid",
                "macdecode",
            ]
        };
        let mut ok = true;
        let (mut prefix, mut level, mut flags, mut group, mut range, mut threshold) =
            (String::new(), 4u8, 0u8, 0u16, 0u32, 0u16);
        let max_prefix = if nflog {
            crate::ir::MAX_NFLOG_PREFIX
        } else {
            crate::ir::MAX_LOG_PREFIX
        };
        let number = |n: &Node, max: u64| -> Option<u64> {
            scalar_text(n)
                .and_then(|t| t.parse::<u64>().ok())
                .filter(|&x| x <= max)
        };
        for (k, val) in self.entries(v, what) {
            match k.value {
                "prefix" => match self.string(val, "a log prefix") {
                    Some(p) if p.value.len() <= max_prefix && !p.value.contains('\n') => {
                        prefix = p.value
                    }
                    Some(p) => {
                        self.error(
                            Diagnostic::error(
                                "E0420",
                                format!(
                                    "log prefix is {} bytes long or holds a newline; at most {max_prefix} bytes on one line",
                                    p.value.len()
                                ),
                            )
                            .at(p.span)
                            .label("too long"),
                        );
                        ok = false;
                    }
                    None => ok = false,
                },
                "level" if !nflog => {
                    let names = [
                        ("emerg", 0u8),
                        ("alert", 1),
                        ("crit", 2),
                        ("err", 3),
                        ("warning", 4),
                        ("notice", 5),
                        ("info", 6),
                        ("debug", 7),
                    ];
                    match number(val, 7) {
                        Some(n) => level = n as u8,
                        None => match self.keyword(val, "a log level (0-7)", &names) {
                            Some(l) => level = l.value,
                            None => ok = false,
                        },
                    }
                }
                "tcp_sequence" | "tcp_options" | "ip_options" | "uid" | "macdecode" if !nflog => {
                    let bit = match k.value {
                        "tcp_sequence" => LOG_TCPSEQ,
                        "tcp_options" => LOG_TCPOPT,
                        "ip_options" => LOG_IPOPT,
                        "uid" => LOG_UID,
                        _ => LOG_MACDECODE,
                    };
                    match self.keyword(val, "a log flag", &[("true", true), ("false", false)]) {
                        Some(b) if b.value => flags |= bit,
                        Some(_) => {}
                        None => ok = false,
                    }
                }
                "group" | "range" | "threshold" if nflog => {
                    let max = if k.value == "range" {
                        u64::from(u32::MAX)
                    } else {
                        65535
                    };
                    match number(val, max) {
                        Some(n) if k.value == "group" => group = n as u16,
                        Some(n) if k.value == "range" => range = n as u32,
                        Some(n) => threshold = n as u16,
                        None => {
                            self.wrong_type(
                                val,
                                &format!("nflog `{}`", k.value),
                                &format!("a number 0-{max}"),
                            );
                            ok = false;
                        }
                    }
                }
                _ => {
                    self.unknown_key(&k, what, known);
                    ok = false;
                }
            }
        }
        let kind = if nflog {
            LogKind::Nflog {
                group,
                range,
                threshold,
            }
        } else {
            LogKind::Log { level, flags }
        };
        ok.then_some(LogSpec { kind, prefix })
    }

    /// A `- {unsupported: "RULE", reason: "WHY"}` entry (what `tailwall migrate` writes for a rule it
    /// cannot translate): always `E0418`, located at the rule text. False when `n` is no such entry.
    fn unsupported_entry(&mut self, n: &Node) -> bool {
        let Value::Map(m) = &n.value else {
            return false;
        };
        let text_of = |key: &str| {
            m.iter().find_map(|(k, v)| {
                k.as_scalar()
                    .filter(|s| s.text == key)
                    .map(|_| (v, scalar_text(v).unwrap_or_default().to_string()))
            })
        };
        let Some((v, rule_text)) = text_of("unsupported") else {
            return false;
        };
        let reason = text_of("reason").map(|(_, r)| r).unwrap_or_default();
        let why = if reason.is_empty() {
            String::new()
        } else {
            format!(": {reason}")
        };
        self.error(
            Diagnostic::error(
                "E0418",
                format!("rule `{rule_text}` is not supported by tailwall{why}"),
            )
            .at(v.span)
            .label("kept by `tailwall migrate` so that it is not silently dropped")
            .help("leaving it out would let through what it drops: delete this entry on purpose, or replace it with rules tailwall supports"),
        );
        true
    }

    fn match_def(&mut self, field: Field, key: &Sp<&str>, v: &Node) -> Option<MatchDef> {
        let span = key.span.join(v.span);
        // `{not: VALUE}`
        let (negated, inner) = match &v.value {
            Value::Map(m) => {
                let entries = self.entries(v, &format!("`{}`", field.name()));
                if entries.len() != 1 || entries[0].0.value != "not" {
                    let at = entries
                        .iter()
                        .find(|(k, _)| k.value != "not")
                        .map(|(k, _)| k.span)
                        .or(entries.get(1).map(|(k, _)| k.span))
                        .unwrap_or(v.span);
                    if m.len() == entries.len() {
                        self.error(
                            Diagnostic::error(
                                "E0402",
                                format!(
                                    "`{}` takes a value, a list, `\"@set\"` or `{{not: …}}`",
                                    field.name()
                                ),
                            )
                            .at(at)
                            .help(format!("negate with `{}: {{not: VALUE}}`", field.name())),
                        );
                    }
                    return None;
                }
                if matches!(&entries[0].1.value, Value::Map(_)) {
                    self.error(
                        Diagnostic::error("E0403", "`not` cannot be nested")
                            .at(entries[0].1.span)
                            .help(format!(
                                "`{}: {{not: {{not: X}}}}` is `{}: X`",
                                field.name(),
                                field.name()
                            )),
                    );
                    return None;
                }
                (true, entries[0].1)
            }
            _ => (false, v),
        };
        // `"@name"`
        if let Some(s) = inner.as_scalar() {
            if let Some(name) = s.text.strip_prefix('@') {
                if field.info().lookup == crate::ir::Lookup::Iface {
                    self.error(
                        Diagnostic::error("E0412", format!("`{}` cannot use a set", field.name()))
                            .at(inner.span)
                            .help("sets hold addresses, ports or protocols; list interfaces instead: `[eth0, eth1]`"),
                    );
                    return None;
                }
                return Some(MatchDef {
                    field,
                    negated,
                    values: Values::Set(Sp {
                        value: name.to_string(),
                        span: inner.span,
                    }),
                    span,
                });
            }
        }
        let (tests, ok, family) = self.tests(field, inner, &format!("`{}`", field.name()), true)?;
        ok.then_some(MatchDef {
            field: family.map_or(field, |f| field.for_family(f)),
            negated,
            values: Values::Tests(tests),
            span,
        })
    }

    /// One value or a non-empty list of values of a field. `(tests, all ok, family)`; `None` for a wrong
    /// shape. Address values are IPv4 or IPv6 by their spelling (a `:` makes IPv6), all of one family
    /// (`family`: the first value's; `None` for other fields).
    fn tests(
        &mut self,
        field: Field,
        n: &Node,
        what: &str,
        in_rule: bool,
    ) -> Option<(Vec<Sp<Test>>, bool, Option<Family>)> {
        let items: Vec<&Node> = match &n.value {
            Value::Seq(items) => {
                if items.is_empty() {
                    self.error(
                        Diagnostic::error("E0403", format!("{what} has an empty list"))
                            .at(n.span)
                            .help(if in_rule {
                                "an empty list matches nothing; remove the key to match any value"
                            } else {
                                "a set needs at least one element"
                            }),
                    );
                    return None;
                }
                items.iter().collect()
            }
            Value::Map(_) => {
                self.wrong_type(n, what, "a value or a list of values");
                return None;
            }
            Value::Scalar(_) => vec![n],
        };
        let mut ok = true;
        let mut out = Vec::new();
        let mut family: Option<Family> = None;
        for item in items {
            let Some(s) = item.as_scalar() else {
                self.wrong_type(item, &format!("an element of {what}"), "a single value");
                ok = false;
                continue;
            };
            if s.is_null() || s.kind() == "boolean" {
                self.wrong_type(item, what, expected(field));
                ok = false;
                continue;
            }
            if s.text.starts_with('@') {
                self.error(
                    Diagnostic::error("E0412", format!("set `{}` cannot be used inside a list", s.text))
                        .at(item.span)
                        .help("a set reference stands alone: `src_ip: \"@admins\"`; put the extra values into the set"),
                );
                ok = false;
                continue;
            }
            let mut f = field;
            if field.family().is_some() {
                let fam = if s.text.contains(':') {
                    Family::V6
                } else {
                    Family::V4
                };
                if family.is_some_and(|first| first != fam) {
                    self.error(
                        Diagnostic::error(
                            "E0405",
                            format!("`{}` is an {} address in a list of {} addresses", s.text, fam.as_str(), family.map_or("", Family::as_str)),
                        )
                        .at(item.span)
                        .help("a ruleset filters one family: IPv4 addresses in an `ipv4` document, IPv6 ones in a `family: ipv6` document"),
                    );
                    ok = false;
                    continue;
                }
                family = Some(fam);
                f = field.for_family(fam);
            }
            match parse_value(f, &s.text) {
                Ok(t) => out.push(Sp {
                    value: t,
                    span: item.span,
                }),
                Err((code, msg, help)) => {
                    self.error(Diagnostic::error(code, msg).at(item.span).help(help));
                    ok = false;
                }
            }
        }
        Some((out, ok, family))
    }
}

/// Levenshtein distance (bytes), for "did you mean"; gives up early on long keys.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len().abs_diff(b.len()) > 2 || b.len() > 64 {
        return usize::MAX;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, &ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// What a field's values look like. Fields with a value syntax of their own (names, flags) have an
/// arm; the others follow from the field table's lookup kind, so a plain numeric field needs no code
/// here.
fn expected(field: Field) -> &'static str {
    match field {
        Field::Proto => "a protocol name or number",
        Field::IcmpType => "`any`, an ICMP type `T`, `T/CODE` or a range `T/C-T/C`",
        Field::CtState => "a connection state: new, established, related, invalid or untracked",
        _ => match field.info().lookup {
            Lookup::Lpm if field.bits() == 128 => "an IPv6 address or prefix",
            Lookup::Lpm => "an address, a prefix or an address range",
            Lookup::PortRange if field.max_value() == 65535 => "a port or a port range",
            Lookup::PortRange => "a number or a range `LO-HI`",
            Lookup::Iface => "an interface name",
            Lookup::Exact => "a number or a range `LO-HI`",
        },
    }
}

type ValueErr = (&'static str, String, String);

/// Parse one scalar value of a field into its test.
///
/// # Errors
/// `(code, message, help)` of the diagnostic to report at the value: `E0405` a bad address or prefix,
/// `E0406` a bad port, number, range, ICMP type or connection state, `E0407` an unknown protocol, `E0409` a bad interface
/// name.
pub fn parse_value(field: Field, text: &str) -> Result<Test, ValueErr> {
    match field {
        Field::Proto => parse_proto_value(text),
        Field::IcmpType => parse_icmp_value(text),
        // A state by name (any case, as iptables reads `--ctstate`): the `Exact` test of its value.
        Field::CtState => crate::packet::CtState::from_name(text.trim())
            .map(|s| Test::Exact(s as u32))
            .ok_or_else(|| {
                (
                    "E0406",
                    format!("unknown connection state `{text}`"),
                    "write new, established, related, invalid or untracked".to_string(),
                )
            }),
        // Flags, not quantities: one value is the `Exact` test iptables' `-f` and `--tcp-flags` lower
        // to (`lower/rule.rs`), so that both front ends build the identical IR.
        Field::Fragment | Field::TcpFlags => parse_number_value(field, text).map(|t| match t {
            Test::Range { lo, hi } if lo == hi => Test::Exact(lo),
            t => t,
        }),
        _ => match field.info().lookup {
            Lookup::Lpm if field.bits() == 128 => parse_addr6(text),
            Lookup::Lpm => parse_addr(text),
            Lookup::PortRange if field.max_value() == 65535 => parse_port_value(text),
            Lookup::PortRange => parse_number_value(field, text),
            Lookup::Iface => parse_iface(text),
            Lookup::Exact => parse_number_value(field, text),
        },
    }
}

/// An `icmp_type` value (the field holds `type << 8 | code`): `any` (every type and code), `T` (every
/// code of type `T`), `T/C`, or a range `A-B` whose ends are `T` or `T/C` (`3/1-3/3`: codes 1-3 of
/// type 3; `3-5`: every code of types 3 to 5). An end `T` means code 0 as the low end, code 255 as
/// the high end. `T/C-N` is refused: it reads as codes C to N but would mean every code up to type N.
fn parse_icmp_value(text: &str) -> Result<Test, ValueErr> {
    let bad = |msg: String| {
        (
            "E0406",
            msg,
            "write `any`, a type 0-255 (`8`), `TYPE/CODE` (`3/1`) or a range `3/1-3/3`".to_string(),
        )
    };
    let num = |s: &str| -> Result<u32, ValueErr> {
        let s = s.trim();
        match s.parse::<u32>() {
            Ok(n) if n <= 255 && s.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
            _ => Err(bad(format!("bad `icmp_type` value `{text}`"))),
        }
    };
    // (low, high) of one end: `T` is every code, `T/C` one.
    let end = |s: &str| -> Result<(u32, u32, bool), ValueErr> {
        match s.split_once('/') {
            Some((t, c)) => {
                let v = num(t)? << 8 | num(c)?;
                Ok((v, v, true))
            }
            None => {
                let t = num(s)?;
                Ok((t << 8, t << 8 | 0xff, false))
            }
        }
    };
    if text.trim() == "any" {
        return Ok(Test::Range { lo: 0, hi: 0xffff });
    }
    match text.split_once('-') {
        None => end(text).map(|(lo, hi, _)| Test::Range { lo, hi }),
        Some((a, b)) => {
            let ((lo, _, a_code), (_, hi, b_code)) = (end(a)?, end(b)?);
            if a_code && !b_code {
                return Err((
                    "E0406",
                    format!("`icmp_type` range `{text}` is ambiguous"),
                    format!(
                        "write both ends as TYPE/CODE: `{}-{}/{}`",
                        a.trim(),
                        a.trim().split('/').next().unwrap_or(""),
                        b.trim()
                    ),
                ));
            }
            if lo > hi {
                return Err(bad(format!("`icmp_type` range `{text}` runs backwards")));
            }
            Ok(Test::Range { lo, hi })
        }
    }
}

/// A value of a plain numeric field: a decimal number or an inclusive range `LO-HI` within the
/// field's width (`length: 0-99`, `length: 1500`).
fn parse_number_value(field: Field, text: &str) -> Result<Test, ValueErr> {
    let max = field.max_value();
    let num = |s: &str| -> Result<u32, ValueErr> {
        let s = s.trim();
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err((
                "E0406",
                format!("bad `{field}` value `{text}`"),
                format!("write a number 0-{max} or a range with `-` (`0-{max}`)"),
            ));
        }
        match s.parse::<u32>() {
            Ok(n) if u128::from(n) <= max => Ok(n),
            _ => Err((
                "E0406",
                format!("`{field}` value {s} is out of range"),
                format!("`{field}` is 0-{max}"),
            )),
        }
    };
    match text.split_once('-') {
        Some((a, b)) => {
            let (lo, hi) = (num(a)?, num(b)?);
            if lo > hi {
                return Err((
                    "E0406",
                    format!("`{field}` range `{text}` runs backwards"),
                    format!("write `{hi}-{lo}`"),
                ));
            }
            Ok(Test::Range { lo, hi })
        }
        None => num(text).map(|v| Test::Range { lo: v, hi: v }),
    }
}

fn ipv4(s: &str) -> Option<u32> {
    // std accepts exactly four decimal octets without leading zeros; inet_aton's `10.1` forms are refused.
    s.parse::<Ipv4Addr>().ok().map(u32::from)
}

fn parse_addr(text: &str) -> Result<Test, ValueErr> {
    let bad = |msg: String, help: &str| Err(("E0405", msg, help.to_string()));
    if let Some((a, b)) = text.split_once('-') {
        let (Some(lo), Some(hi)) = (ipv4(a.trim()), ipv4(b.trim())) else {
            return bad(
                format!("bad address range `{text}`"),
                "write `FIRST-LAST` with two IPv4 addresses, e.g. `10.0.0.1-10.0.0.9`",
            );
        };
        if lo > hi {
            return bad(
                format!("address range `{text}` runs backwards"),
                "write the lower address first",
            );
        }
        return Ok(Test::Range { lo, hi });
    }
    let (addr, len) = match text.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (text, None),
    };
    let Some(addr) = ipv4(addr) else {
        return bad(
            format!("bad address `{text}`"),
            "write an IPv4 address (`192.0.2.1`), a prefix (`10.0.0.0/8`) or a range (`10.0.0.1-10.0.0.9`); host names are not resolved",
        );
    };
    let len = match len {
        None => 32,
        Some(l) if !l.is_empty() && l.len() <= 2 && l.bytes().all(|b| b.is_ascii_digit()) => {
            match l.parse::<u8>() {
                Ok(n) if n <= 32 => n,
                _ => {
                    return bad(
                        format!("prefix length /{l} is more than 32"),
                        "IPv4 prefixes are /0 to /32",
                    )
                }
            }
        }
        Some(l) => {
            return bad(
                format!("bad prefix length `/{l}`"),
                "write the prefix length as a number 0-32 (`/24`), not a netmask",
            )
        }
    };
    let host = u32::MAX.checked_shr(u32::from(len)).unwrap_or(0);
    if len < 32 && addr & host != 0 {
        return Err((
            "E0405",
            format!("`{text}` has host bits set"),
            format!("the network is `{}/{len}`", Ipv4Addr::from(addr & !host)),
        ));
    }
    Ok(Test::Prefix {
        addr: addr.into(),
        len,
    })
}

/// An IPv6 address (`2001:db8::1`, the same as `/128`) or prefix (`2001:db8::/32`), as Rust's
/// `Ipv6Addr` reads it (RFC 4291 text forms, embedded IPv4 included); no ranges, no zone ids.
fn parse_addr6(text: &str) -> Result<Test, ValueErr> {
    let bad = |msg: String, help: &str| Err(("E0405", msg, help.to_string()));
    if text.contains('-') {
        return bad(
            format!("IPv6 address range `{text}` is not supported yet"),
            "write the range as prefixes (`2001:db8::/64`)",
        );
    }
    let (a, len) = match text.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (text, None),
    };
    let Ok(addr) = a.parse::<Ipv6Addr>() else {
        return bad(
            format!("bad IPv6 address `{text}`"),
            "write an IPv6 address (`2001:db8::1`) or a prefix (`2001:db8::/32`); host names are not resolved",
        );
    };
    let len = match len {
        None => 128,
        Some(l) if !l.is_empty() && l.len() <= 3 && l.bytes().all(|b| b.is_ascii_digit()) => {
            match l.parse::<u8>() {
                Ok(n) if n <= 128 => n,
                _ => {
                    return bad(
                        format!("prefix length /{l} is more than 128"),
                        "IPv6 prefixes are /0 to /128",
                    )
                }
            }
        }
        Some(l) => {
            return bad(
                format!("bad prefix length `/{l}`"),
                "write the prefix length as a number 0-128 (`/64`)",
            )
        }
    };
    let addr = u128::from(addr);
    let host = u128::MAX.checked_shr(u32::from(len)).unwrap_or(0);
    if addr & host != 0 {
        return Err((
            "E0405",
            format!("`{text}` has host bits set"),
            format!("the network is `{}/{len}`", Ipv6Addr::from(addr & !host)),
        ));
    }
    Ok(Test::Prefix { addr, len })
}

fn number(s: &str) -> Option<u32> {
    (!s.is_empty() && s.len() <= 6 && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

fn parse_port_value(text: &str) -> Result<Test, ValueErr> {
    let port = |s: &str| -> Result<u32, ValueErr> {
        match number(s.trim()) {
            Some(n) if n <= 65535 => Ok(n),
            Some(_) => Err((
                "E0406",
                format!("port {} is out of range", s.trim()),
                "ports are 0-65535".into(),
            )),
            None => Err((
                "E0406",
                format!("bad port `{text}`"),
                if s.contains(':') {
                    "write a range with `-`: `8000-8099`".into()
                } else {
                    "write a port number (`22`) or a range (`8000-8099`); service names are not resolved".into()
                },
            )),
        }
    };
    match text.split_once('-') {
        Some((a, b)) => {
            let (lo, hi) = (port(a)?, port(b)?);
            if lo > hi {
                return Err((
                    "E0406",
                    format!("port range `{text}` runs backwards"),
                    format!("write `{hi}-{lo}`"),
                ));
            }
            Ok(Test::Range { lo, hi })
        }
        None => port(text).map(|p| Test::Range { lo: p, hi: p }),
    }
}

fn parse_proto_value(text: &str) -> Result<Test, ValueErr> {
    let all = || {
        Err((
            "E0407",
            format!("protocol `{text}` matches every protocol"),
            "remove `proto` to match every protocol".to_string(),
        ))
    };
    if let Some((a, b)) = text.split_once('-') {
        if let (Some(lo), Some(hi)) = (number(a), number(b)) {
            if lo == 0 || hi > 255 || lo > hi {
                return Err((
                    "E0407",
                    format!("bad protocol range `{text}`"),
                    "protocol numbers are 1-255, the lower first".into(),
                ));
            }
            return Ok(Test::Range { lo, hi });
        }
    }
    if number(text).is_some_and(|n| n > 255) {
        return Err((
            "E0407",
            format!("protocol number {text} is out of range"),
            "protocol numbers are 1-255".into(),
        ));
    }
    match parse_proto(text) {
        Ok(Proto::Number(n)) => Ok(Test::Exact(n as u32)),
        Ok(Proto::All) => all(),
        Err(_) => Err((
            "E0407",
            format!("unknown protocol `{text}`"),
            "write a protocol name (`tcp`, `udp`, `icmp`, `gre`, …) or a number 1-255".into(),
        )),
    }
}

fn parse_iface(text: &str) -> Result<Test, ValueErr> {
    let (name, wildcard) = match text.strip_suffix('+') {
        Some(n) => (n, true),
        None => (text, false),
    };
    if text.is_empty() {
        return Err((
            "E0409",
            "empty interface name".into(),
            "write a name (`eth0`), a prefix wildcard (`eth+`) or remove the key".into(),
        ));
    }
    if text.len() > MAX_IFACE_LEN {
        return Err((
            "E0409",
            format!("interface `{text}` is longer than {MAX_IFACE_LEN} bytes"),
            "Linux interface names have at most 15 bytes (iptables counts a trailing `+`)".into(),
        ));
    }
    if name
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '/')
    {
        return Err((
            "E0409",
            format!("bad interface name {text:?}"),
            "interface names have no white space, control characters or `/`".into(),
        ));
    }
    // `+` alone is iptables' "any interface" (it still needs an interface to be known).
    Ok(Test::Iface {
        name: name.to_string(),
        wildcard,
    })
}

/// Set names: a letter or `_`, then letters, digits, `_`, `-`, `.`; at most 32 bytes.
pub fn valid_set_name(s: &str) -> bool {
    let mut b = s.bytes();
    s.len() <= 32
        && b.next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
}

/// Names iptables-restore refuses for a user chain (or that no rule line could name): empty, longer than
/// [`MAX_CHAIN_NAME_LEN`] bytes, white space or control characters, a leading `-` or `!`, a standard
/// target's name. The built-in chains' names in capitals are the built-in chains themselves.
pub fn bad_chain_name(s: &str) -> Option<&'static str> {
    if s.is_empty() {
        Some("empty")
    } else if s.len() > MAX_CHAIN_NAME_LEN {
        Some("longer than 28 bytes")
    } else if s.starts_with(['-', '!']) {
        Some("starts with `-` or `!`")
    } else if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("contains white space")
    } else if STANDARD_TARGETS.contains(&s) {
        Some("a standard target's name")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn src_ip_parses_prefixes_ranges_and_rejects_host_bits() {
        assert_eq!(
            parse_value(Field::SrcIp, "10.0.0.0/8"),
            Ok(Test::Prefix {
                addr: 10 << 24,
                len: 8
            })
        );
        assert_eq!(
            parse_value(Field::SrcIp, "0.0.0.0/0"),
            Ok(Test::Prefix { addr: 0, len: 0 })
        );
        assert_eq!(
            parse_value(Field::SrcIp, "1.2.3.4"),
            Ok(Test::Prefix {
                addr: 0x01020304,
                len: 32
            })
        );
        assert_eq!(
            parse_value(Field::SrcIp, "10.0.0.1-10.0.0.9"),
            Ok(Test::Range {
                lo: 0x0a000001,
                hi: 0x0a000009
            })
        );
        for bad in [
            "10.1.2.3/8",
            "10.0.0.0/33",
            "10.0.0.0/255.0.0.0",
            "example.com",
            "10.1",
            "1.2.3.4/",
            "2-1",
        ] {
            assert_eq!(
                parse_value(Field::SrcIp, bad).unwrap_err().0,
                "E0405",
                "{bad}"
            );
        }
    }

    #[test]
    fn dst_port_parses_numbers_and_ranges() {
        assert_eq!(
            parse_value(Field::DstPort, "22"),
            Ok(Test::Range { lo: 22, hi: 22 })
        );
        assert_eq!(
            parse_value(Field::DstPort, "8000-8099"),
            Ok(Test::Range { lo: 8000, hi: 8099 })
        );
        for bad in [
            "65536",
            "2-1",
            "ssh",
            "8000:8099",
            "",
            "-1",
            "1-",
            "99999999999",
        ] {
            assert_eq!(
                parse_value(Field::DstPort, bad).unwrap_err().0,
                "E0406",
                "{bad}"
            );
        }
    }

    #[test]
    fn length_parses_numbers_and_ranges_within_its_width() {
        assert_eq!(
            parse_value(Field::Length, "1500"),
            Ok(Test::Range { lo: 1500, hi: 1500 })
        );
        assert_eq!(
            parse_value(Field::Length, "0-99"),
            Ok(Test::Range { lo: 0, hi: 99 })
        );
        for bad in ["65536", "99-0", "1:2", "", "-5", "x", "99999999999"] {
            assert_eq!(
                parse_value(Field::Length, bad).unwrap_err().0,
                "E0406",
                "{bad}"
            );
        }
    }

    #[test]
    fn proto_parses_names_numbers_and_refuses_all() {
        assert_eq!(parse_value(Field::Proto, "tcp"), Ok(Test::Exact(6)));
        assert_eq!(parse_value(Field::Proto, "47"), Ok(Test::Exact(47)));
        for bad in ["all", "0", "256", "tcpx"] {
            assert_eq!(
                parse_value(Field::Proto, bad).unwrap_err().0,
                "E0407",
                "{bad}"
            );
        }
    }

    #[test]
    fn in_iface_parses_wildcards() {
        assert_eq!(
            parse_value(Field::InIface, "eth+"),
            Ok(Test::Iface {
                name: "eth".into(),
                wildcard: true
            })
        );
        assert_eq!(
            parse_value(Field::InIface, "+"),
            Ok(Test::Iface {
                name: String::new(),
                wildcard: true
            })
        );
        for bad in [
            "",
            "a-very-long-interface",
            "sixteen-chars-x+",
            "a b",
            "a/b",
        ] {
            assert_eq!(
                parse_value(Field::InIface, bad).unwrap_err().0,
                "E0409",
                "{bad}"
            );
        }
    }
}
