//! Typed rules: a rule line's arguments resolved against iptables' own options and the extension registry
//! ([`super::ext`]), validated as iptables-restore and the kernel's `checkentry` validate them, and printed
//! back in iptables-save's canonical form ([`save_rule`]).
//!
//! What [`type_rule`] guarantees: every argument belongs to exactly one option (iptables' own, or one of a
//! loaded module: `-m NAME`, or the protocol's module loaded implicitly by `-p tcp --dport 22`); every value
//! is validated; a module's protocol, table and hook restrictions hold; at most one target. What it throws
//! away: option order within a module, spelling (aliases, `--opt=value`, glued `-ptcp`), host bits of
//! addresses, `-c` counters (kept in [`TypedRule::set_counters`]).
//!
//! Deliberate differences from iptables: host and user names are not resolved (only `root` and a fixed
//! table of service names, so results do not depend on the machine); getopt's abbreviations of long options
//! are not accepted; address lists (`-s a,b`, which iptables expands into several rules) are rejected.
use super::ext::{self, Arity, Family, Given, Inst, RuleCtx};
use super::token::Token;
use super::values;
use crate::diag::{Diagnostic, Span};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An address with its mask (host bits cleared, as the kernel stores it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IpNet {
    V4 { addr: Ipv4Addr, mask: u32 },
    V6 { addr: Ipv6Addr, mask: u128 },
}

impl IpNet {
    /// Prefix length when the mask is contiguous.
    pub fn prefix_len(&self) -> Option<u8> {
        match *self {
            IpNet::V4 { mask, .. } => {
                let l = mask.leading_ones();
                (mask.checked_shl(l).unwrap_or(0) == 0).then_some(l as u8)
            }
            IpNet::V6 { mask, .. } => {
                let l = mask.leading_ones();
                (mask.checked_shl(l).unwrap_or(0) == 0).then_some(l as u8)
            }
        }
    }
    pub fn is_any(&self) -> bool {
        match *self {
            IpNet::V4 { mask, .. } => mask == 0,
            IpNet::V6 { mask, .. } => mask == 0,
        }
    }
}

/// A value with its `!` and the span of the whole option.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Neg<T> {
    pub value: T,
    pub negated: bool,
    pub span: Span,
}

/// A loaded match: typed, or one of the modules kept verbatim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Module {
    Typed(Inst),
    Generic {
        name: String,
        args: Vec<Token>,
        span: Span,
    },
}

impl Module {
    pub fn name(&self) -> &str {
        match self {
            Module::Typed(i) => i.name(),
            Module::Generic { name, .. } => name,
        }
    }
    pub fn span(&self) -> Span {
        match self {
            Module::Typed(i) => i.span,
            Module::Generic { span, .. } => *span,
        }
    }
}

/// What `-j`/`-g` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// ACCEPT, DROP, RETURN or QUEUE.
    Verdict(String),
    /// `-j CHAIN` (a user chain; its existence is checked per table).
    Jump(String),
    /// `-g CHAIN`.
    Goto(String),
    Ext(Inst),
    Generic {
        name: String,
        args: Vec<Token>,
    },
}

/// One rule's options, typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypedRule {
    pub family: Family,
    pub src: Option<Neg<IpNet>>,
    pub dst: Option<Neg<IpNet>>,
    pub in_iface: Option<Neg<String>>,
    pub out_iface: Option<Neg<String>>,
    /// 0 = all.
    pub proto: Option<Neg<u8>>,
    pub fragment: Option<Neg<()>>,
    pub matches: Vec<Module>,
    pub target: Option<(Target, Span)>,
    pub set_counters: Option<(u64, u64)>,
}

/// Where the rule sits.
#[derive(Clone, Copy, Debug)]
pub struct Place<'a> {
    pub family: Family,
    pub table: &'a str,
    pub chain: &'a str,
    pub builtin: bool,
}

pub const STANDARD_TARGETS: [&str; 4] = ["ACCEPT", "DROP", "RETURN", "QUEUE"];

// ---- addresses ----

pub fn parse_ip(s: &str, f: Family) -> Option<IpAddr> {
    match f {
        Family::V4 => values::parse_dotted(s).map(IpAddr::V4),
        Family::V6 => s.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
    }
}

pub fn fmt_ip(a: IpAddr) -> String {
    a.to_string()
}

/// `ADDR[/LEN|/MASK]` of the family, host bits cleared.
pub fn parse_addr_any(s: &str, f: Family) -> Result<IpNet, String> {
    let (host, mask) = match s.split_once('/') {
        Some((h, m)) => (h, Some(m)),
        None => (s, None),
    };
    match f {
        Family::V4 => {
            match values::parse_addr(s) {
                Ok(a) => {
                    let m = if a.len == 0 {
                        0
                    } else {
                        u32::MAX << (32 - a.len as u32)
                    };
                    Ok(IpNet::V4 {
                        addr: Ipv4Addr::from(u32::from(a.addr) & m),
                        mask: m,
                    })
                }
                Err(e) if !matches!(e, values::ValueError::NonContiguousMask(_)) => {
                    Err(e.to_string())
                }
                Err(_) => {
                    // Non-contiguous dotted masks are valid iptables; keep them.
                    let addr = values::parse_dotted(host)
                        .ok_or_else(|| format!("invalid IPv4 address `{s}`"))?;
                    let m = mask
                        .and_then(values::parse_dotted)
                        .map(u32::from)
                        .ok_or_else(|| format!("invalid prefix length or mask `{s}`"))?;
                    Ok(IpNet::V4 {
                        addr: Ipv4Addr::from(u32::from(addr) & m),
                        mask: m,
                    })
                }
            }
        }
        Family::V6 => {
            let addr: Ipv6Addr = host
                .parse()
                .map_err(|_| format!("invalid IPv6 address `{host}`"))?;
            let m: u128 = match mask {
                None => u128::MAX,
                Some(m)
                    if !m.is_empty() && m.len() <= 3 && m.bytes().all(|b| b.is_ascii_digit()) =>
                {
                    let l: u32 = m
                        .parse()
                        .map_err(|_| format!("invalid prefix length `{m}`"))?;
                    if l > 128 {
                        return Err(format!("invalid prefix length `{m}` (0-128)"));
                    }
                    if l == 0 {
                        0
                    } else {
                        u128::MAX << (128 - l)
                    }
                }
                Some(m) => u128::from(
                    m.parse::<Ipv6Addr>()
                        .map_err(|_| format!("invalid prefix length or mask `{m}`"))?,
                ),
            };
            Ok(IpNet::V6 {
                addr: Ipv6Addr::from(u128::from(addr) & m),
                mask: m,
            })
        }
    }
}

/// `addr/len`, or `addr/mask` for a non-contiguous mask.
pub fn fmt_addr(n: &IpNet) -> String {
    match (n, n.prefix_len()) {
        (IpNet::V4 { addr, .. }, Some(l)) => format!("{addr}/{l}"),
        (IpNet::V4 { addr, mask }, None) => format!("{addr}/{}", Ipv4Addr::from(*mask)),
        (IpNet::V6 { addr, .. }, Some(l)) => format!("{addr}/{l}"),
        (IpNet::V6 { addr, mask }, None) => format!("{addr}/{}", Ipv6Addr::from(*mask)),
    }
}

/// The protocol name iptables-save prints (netbase's /etc/protocols names, as iptables 1.8.11 prints them).
pub fn proto_save_name(n: u8) -> String {
    match n {
        135 => "mobility-header".into(),
        58 => "ipv6-icmp".into(),
        _ => values::proto_name(n)
            .filter(|&s| s != "ip" && s != "hopopt")
            .map(str::to_string)
            .unwrap_or_else(|| n.to_string()),
    }
}

/// ip6tables-save or iptables-save? A `# Generated by ip6tables-save` header, an IPv6 address after
/// `-s`/`-d`, the ip6tables-only `-m icmp6` or an `icmp6-…` reject type means IPv6.
pub fn detect_family(text: &str) -> Family {
    let mut prev = "";
    for w in text.split_whitespace() {
        if w.starts_with("ip6tables") || w.starts_with("icmp6-") || (prev == "-m" && w == "icmp6") {
            return Family::V6;
        }
        if matches!(prev, "-s" | "-d" | "--source" | "--destination") && w.contains(':') {
            return Family::V6;
        }
        prev = w;
    }
    Family::V4
}

// ---- building ----

#[derive(Clone, Copy, PartialEq, Eq)]
enum Builtin {
    Src,
    Dst,
    Proto,
    In,
    Out,
    Frag,
    Match,
    Jump,
    Goto,
    Counters,
}

fn builtin(flag: &str) -> Option<Builtin> {
    Some(match flag {
        "-s" | "--source" | "--src" => Builtin::Src,
        "-d" | "--destination" | "--dst" => Builtin::Dst,
        "-p" | "--protocol" => Builtin::Proto,
        "-i" | "--in-interface" => Builtin::In,
        "-o" | "--out-interface" => Builtin::Out,
        "-f" | "--fragment" => Builtin::Frag,
        "-m" | "--match" => Builtin::Match,
        "-j" | "--jump" => Builtin::Jump,
        "-g" | "--goto" => Builtin::Goto,
        "-c" | "--set-counters" => Builtin::Counters,
        _ => return None,
    })
}

fn is_flag(t: &Token) -> bool {
    t.text.len() >= 2 && t.text.starts_with('-')
}

/// A flag iptables itself defines (a sign that a preceding option lacks its value).
fn is_builtin_flag(t: &Token) -> bool {
    is_flag(t) && (builtin(&t.text).is_some() || split_glued(&t.text).is_some())
}

/// `-ptcp` → (`-p`, `tcp`).
fn split_glued(s: &str) -> Option<(&str, &str)> {
    if s.starts_with("--") || s.len() <= 2 {
        return None;
    }
    if !s.is_char_boundary(2) {
        return None;
    }
    let (f, v) = s.split_at(2);
    match builtin(f)? {
        Builtin::Frag => None,
        _ => Some((f, v)),
    }
}

fn err(code: &'static str, msg: impl Into<String>, at: Span) -> Diagnostic {
    Diagnostic::error(code, msg).at(at)
}

struct Builder<'a> {
    place: Place<'a>,
    rule: TypedRule,
    errs: Vec<Diagnostic>,
    seen: Vec<(Builtin, Span)>,
}

impl Builder<'_> {
    fn once(&mut self, b: Builtin, flag: &str, span: Span) -> bool {
        if self.seen.iter().any(|(x, _)| *x == b) {
            let code = if matches!(b, Builtin::Jump | Builtin::Goto) {
                "E0311"
            } else {
                "E0306"
            };
            let d = err(code, format!("multiple {flag} flags not allowed"), span);
            self.errs.push(if code == "E0311" {
                d.label("a target is already given earlier in this rule")
            } else {
                d.label(format!("`{flag}` is already given earlier in this rule"))
                    .help("iptables accepts each option once per rule; split the rule or use a prefix/range")
            });
            return false;
        }
        self.seen.push((b, span));
        true
    }

    fn no_neg(&mut self, neg: Option<Span>, flag: &str) {
        if let Some(n) = neg {
            self.errs.push(
                err("E0310", format!("`!` cannot be applied to `{flag}`"), n)
                    .label("remove this `!`"),
            );
        }
    }

    fn find_owner(&self, flag: &str) -> Option<(usize, &'static ext::OptDef)> {
        // usize::MAX = the target.
        if let Some((Target::Ext(t), _)) = &self.rule.target {
            if let Some(d) = t.opt_def(flag) {
                return Some((usize::MAX, d));
            }
        }
        for (i, m) in self.rule.matches.iter().enumerate().rev() {
            if let Module::Typed(inst) = m {
                if let Some(d) = inst.opt_def(flag) {
                    return Some((i, d));
                }
            }
        }
        None
    }

    fn inst_mut(&mut self, idx: usize) -> Option<&mut Inst> {
        if idx == usize::MAX {
            match &mut self.rule.target {
                Some((Target::Ext(t), _)) => Some(t),
                _ => None,
            }
        } else {
            match self.rule.matches.get_mut(idx) {
                Some(Module::Typed(i)) => Some(i),
                _ => None,
            }
        }
    }

    fn builtin_value(
        &mut self,
        b: Builtin,
        flag: &Token,
        value: &Token,
        neg: Option<Span>,
        span: Span,
    ) {
        let v = value.text.as_str();
        let f = self.place.family;
        match b {
            Builtin::Src | Builtin::Dst => {
                if v.contains(',') {
                    self.errs.push(
                        err("E0206", format!("address lists (`{v}`) are not supported yet in `{}`", flag.text), value.span)
                            .help("write one rule per address"),
                    );
                    return;
                }
                let looks_name = v.bytes().any(|c| c.is_ascii_alphabetic()) && !v.contains(':') && f == Family::V4;
                match parse_addr_any(v, f) {
                    Ok(n) => {
                        let nv = Neg { value: n, negated: neg.is_some(), span };
                        if b == Builtin::Src {
                            self.rule.src = Some(nv);
                        } else {
                            self.rule.dst = Some(nv);
                        }
                    }
                    Err(m) => {
                        let code = if m.contains("prefix") { "E0302" } else { "E0301" };
                        let d = err(code, format!("{m} in `{}`", flag.text), value.span);
                        let d = if looks_name && m.contains("numeric") {
                            d.label("host name").help("tailwall does not resolve host names (iptables-save prints addresses); write the address, e.g. `-s 192.0.2.10`")
                        } else if code == "E0302" {
                            d.help("a prefix length is 0-32; a mask is dotted, e.g. /255.255.255.0")
                        } else if f == Family::V4 && v.contains(':') {
                            d.label("IPv6 address").help("IPv6 rules belong in ip6tables-save files")
                        } else {
                            d.help("write a dotted-quad IPv4 address, optionally with /LEN or /MASK, e.g. 10.0.0.0/8")
                        };
                        self.errs.push(d);
                    }
                }
            }
            Builtin::Proto => match values::parse_proto(v) {
                Ok(values::Proto::All) if neg.is_some() => self.errs.push(
                    err("E0310", format!("`! {} {v}` never matches", flag.text), span)
                        .help("iptables rejects this rule: \"rule would never match protocol\""),
                ),
                Ok(p) => {
                    let n = match p {
                        values::Proto::All => 0,
                        values::Proto::Number(n) => n,
                    };
                    self.rule.proto = Some(Neg { value: n, negated: neg.is_some(), span });
                }
                Err(e) => self.errs.push(err("E0303", format!("{e} in `{}`", flag.text), value.span).help(
                    "use a protocol number 0-255, `all`, or a name from /etc/protocols such as tcp, udp, icmp, esp, ah, gre, sctp",
                )),
            },
            Builtin::In | Builtin::Out => {
                if v.len() > 15 {
                    self.errs.push(err("E0320", format!("interface name `{v}` is longer than 15 characters"), value.span));
                    return;
                }
                let nv = Neg { value: v.to_string(), negated: neg.is_some(), span };
                if b == Builtin::In {
                    self.rule.in_iface = Some(nv);
                } else {
                    self.rule.out_iface = Some(nv);
                }
            }
            Builtin::Match => {
                self.no_neg(neg, &flag.text);
                if let Some(e) = ext::find_match(v, f) {
                    self.rule.matches.push(Module::Typed(Inst { ext: e, given: Vec::new(), span, implicit: false }));
                } else if ext::GENERIC_MATCHES.contains(&v) {
                    self.rule.matches.push(Module::Generic { name: v.to_string(), args: Vec::new(), span });
                } else {
                    self.errs.push(
                        err("E0321", format!("unknown match module `{v}`"), value.span)
                            .help("iptables-restore would fail: \"Couldn't load match\""),
                    );
                }
            }
            Builtin::Jump | Builtin::Goto => {
                self.no_neg(neg, &flag.text);
                let t = if b == Builtin::Goto {
                    Target::Goto(v.to_string())
                } else if STANDARD_TARGETS.contains(&v) {
                    Target::Verdict(v.to_string())
                } else if let Some(e) = ext::find_target(v, f) {
                    Target::Ext(Inst { ext: e, given: Vec::new(), span, implicit: false })
                } else if ext::GENERIC_TARGETS.contains(&v) {
                    Target::Generic { name: v.to_string(), args: Vec::new() }
                } else if v.is_empty() {
                    self.errs.push(err("E0112", format!("option `{}` requires a value", flag.text), span));
                    return;
                } else {
                    Target::Jump(v.to_string())
                };
                self.rule.target = Some((t, span));
            }
            Builtin::Counters | Builtin::Frag => {}
        }
    }
}

/// Type one rule: `tokens` are the arguments after `-A CHAIN`.
pub fn type_rule(tokens: &[Token], place: Place) -> Result<TypedRule, Vec<Diagnostic>> {
    let mut b = Builder {
        place,
        rule: TypedRule {
            family: place.family,
            src: None,
            dst: None,
            in_iface: None,
            out_iface: None,
            proto: None,
            fragment: None,
            matches: Vec::new(),
            target: None,
            set_counters: None,
        },
        errs: Vec::new(),
        seen: Vec::new(),
    };
    let mut i = 0;
    while i < tokens.len() {
        let mut neg = None;
        if tokens[i].text == "!" {
            neg = Some(tokens[i].span);
            i += 1;
            if i >= tokens.len() || !is_flag(&tokens[i]) {
                b.errs.push(
                    err("E0115", "`!` must be followed by an option", neg.unwrap_or_default())
                        .label("negates nothing")
                        .help("write the `!` directly before the option it negates, e.g. `! -s 10.0.0.0/8`"),
                );
                i += 1;
                continue;
            }
        }
        let tok = &tokens[i];
        i += 1;
        if !is_flag(tok) {
            // A value of a module kept verbatim.
            if let Some(Module::Generic { args, span, .. }) = b.rule.matches.last_mut() {
                if b.seen.last().is_some_and(|(x, _)| *x == Builtin::Match) {
                    *span = span.join(tok.span);
                    args.push(tok.clone());
                    continue;
                }
            }
            if let Some((Target::Generic { args, .. }, span)) = &mut b.rule.target {
                *span = span.join(tok.span);
                args.push(tok.clone());
                continue;
            }
            b.errs.push(
                err(
                    "E0116",
                    format!("unexpected argument `{}`", tok.text),
                    tok.span,
                )
                .label("not an option and not the value of one"),
            );
            continue;
        }
        // Resolve `--name=value` and `-ptcp`.
        let (flag_text, inline): (String, Option<Token>) =
            if let Some((n, v)) = tok.text.strip_prefix("--").and_then(|r| r.split_once('=')) {
                (
                    format!("--{n}"),
                    Some(Token {
                        text: v.to_string(),
                        span: tok.span,
                        quoted: tok.quoted,
                    }),
                )
            } else if let Some((f, v)) = split_glued(&tok.text) {
                (
                    f.to_string(),
                    Some(Token {
                        text: v.to_string(),
                        span: tok.span,
                        quoted: tok.quoted,
                    }),
                )
            } else {
                (tok.text.clone(), None)
            };
        let flag = Token {
            text: flag_text.clone(),
            span: tok.span,
            quoted: tok.quoted,
        };
        let start = neg.unwrap_or(tok.span);
        // Take `n` values (getopt: the next arguments whatever they are, except iptables' own options).
        let take = |n: usize,
                    i: &mut usize,
                    errs: &mut Vec<Diagnostic>,
                    strict: bool|
         -> Option<Vec<Token>> {
            let mut vals = Vec::new();
            let mut inline = inline.clone();
            for _ in 0..n {
                if let Some(v) = inline.take() {
                    vals.push(v);
                    continue;
                }
                if *i < tokens.len() && tokens[*i].is("!") {
                    errs.push(
                        err(
                            "E0115",
                            format!("`!` after `{flag_text}` is not accepted"),
                            tokens[*i].span,
                        )
                        .label("intrapositioned negation")
                        .help(format!(
                            "put the `!` before the option: `! {flag_text} VALUE`"
                        )),
                    );
                    *i += 1;
                }
                match tokens.get(*i) {
                    Some(t) if !(strict && is_builtin_flag(t)) => {
                        vals.push(t.clone());
                        *i += 1;
                    }
                    _ => {
                        errs.push(
                            err(
                                "E0112",
                                format!("option `{flag_text}` requires a value"),
                                tok.span,
                            )
                            .label("value missing"),
                        );
                        return None;
                    }
                }
            }
            Some(vals)
        };
        if let Some(bi) = builtin(&flag_text) {
            let arity = match bi {
                Builtin::Frag => 0,
                Builtin::Counters => {
                    if inline.as_ref().is_some_and(|t| t.text.contains(','))
                        || tokens.get(i).is_some_and(|t| t.text.contains(','))
                    {
                        1
                    } else {
                        2
                    }
                }
                _ => 1,
            };
            let Some(vals) = take(arity, &mut i, &mut b.errs, true) else {
                continue;
            };
            let span = vals
                .last()
                .map(|v| start.join(v.span))
                .unwrap_or(start.join(tok.span));
            if bi != Builtin::Match && !b.once(bi, &flag_text, span) {
                continue;
            }
            match bi {
                Builtin::Frag => {
                    if place.family == Family::V6 {
                        b.errs.push(
                            err("E0308", "`-f` is not an ip6tables option", tok.span)
                                .help("ip6tables matches fragments with `-m frag`"),
                        );
                    } else {
                        b.rule.fragment = Some(Neg {
                            value: (),
                            negated: neg.is_some(),
                            span,
                        });
                    }
                }
                Builtin::Counters => {
                    b.no_neg(neg, &flag_text);
                    let parts: Vec<String> = if vals.len() == 1 {
                        vals[0].text.split(',').map(str::to_string).collect()
                    } else {
                        vals.iter().map(|v| v.text.clone()).collect()
                    };
                    let nums: Vec<Option<u64>> = parts.iter().map(|p| p.parse().ok()).collect();
                    match nums.as_slice() {
                        [Some(p), Some(by)] => b.rule.set_counters = Some((*p, *by)),
                        _ => b.errs.push(
                            err(
                                "E0106",
                                format!("invalid counters `{}` for `{flag_text}`", parts.join(",")),
                                span,
                            )
                            .help("write `-c PACKETS,BYTES` or `-c PACKETS BYTES`"),
                        ),
                    }
                }
                _ => {}
            }
            if !matches!(bi, Builtin::Frag | Builtin::Counters) {
                let v = vals[0].clone();
                b.builtin_value(bi, &flag, &v, neg, span);
            }
            if bi == Builtin::Match {
                // Several `-m` are allowed; the last one is remembered for verbatim modules' values.
                b.seen.retain(|(x, _)| *x != Builtin::Match);
                b.seen.push((Builtin::Match, span));
            }
            continue;
        }
        // A module option.
        let mut owner = b.find_owner(&flag_text);
        if owner.is_none() {
            if let Some(Neg {
                value: p,
                negated: false,
                span: pspan,
            }) = b.rule.proto.clone()
            {
                if let Some(e) = ext::implicit_match(p, place.family) {
                    if e.opts.iter().any(|d| d.is(&flag_text))
                        && !b.rule.matches.iter().any(|m| m.name() == e.name)
                    {
                        b.rule.matches.push(Module::Typed(Inst {
                            ext: e,
                            given: Vec::new(),
                            span: pspan,
                            implicit: true,
                        }));
                        owner = b.find_owner(&flag_text);
                    }
                }
            }
        }
        let Some((idx, def)) = owner else {
            // Options of a module kept verbatim.
            let generic_open = matches!(b.rule.matches.last(), Some(Module::Generic { .. }))
                && b.seen.last().is_some_and(|(x, _)| *x == Builtin::Match);
            if generic_open {
                if let Some(Module::Generic { args, span, .. }) = b.rule.matches.last_mut() {
                    push_verbatim(args, span, neg, tok);
                }
                continue;
            }
            if let Some((Target::Generic { args, .. }, span)) = &mut b.rule.target {
                push_verbatim(args, span, neg, tok);
                continue;
            }
            let owners: Vec<&str> = ext::MATCHES
                .iter()
                .chain(ext::TARGETS.iter())
                .filter(|e| e.opts.iter().any(|d| d.is(&flag_text)))
                .map(|e| e.name)
                .collect();
            let d = match owners.first() {
                None => err("E0308", format!("unknown option `{flag_text}`"), tok.span)
                    .label("no loaded module has this option"),
                Some(&"tcp") if owners.contains(&"udp") => err(
                    "E0308",
                    format!("option `{flag_text}` needs `-p tcp` or `-p udp` before it"),
                    tok.span,
                )
                .label("unknown option without a tcp/udp match")
                .help(format!("write `-p tcp -m tcp {flag_text} …` (or udp)")),
                Some(&"tcp") => err(
                    "E0308",
                    format!("option `{flag_text}` needs `-p tcp` before it"),
                    tok.span,
                )
                .label("unknown option without a tcp match"),
                Some(m) => err(
                    "E0308",
                    format!("option `{flag_text}` needs `-m {m}` before it"),
                    tok.span,
                )
                .help(format!("write `-m {m} {flag_text} …`")),
            };
            b.errs.push(d);
            // Skip its likely values so one mistake gives one error.
            while i < tokens.len() && !is_flag(&tokens[i]) && !tokens[i].is("!") {
                i += 1;
            }
            continue;
        };
        let n = match def.arity {
            Arity::Zero => 0,
            Arity::One => 1,
            Arity::Two => 2,
        };
        if n == 0 && inline.is_some() {
            b.errs.push(err(
                "E0116",
                format!("option `{flag_text}` takes no value"),
                tok.span,
            ));
            continue;
        }
        let Some(vals) = take(n, &mut i, &mut b.errs, false) else {
            continue;
        };
        let span = vals
            .last()
            .map(|v| start.join(v.span))
            .unwrap_or(start.join(tok.span));
        if neg.is_some() && !def.invert {
            b.errs.push(
                err(
                    "E0310",
                    format!("`!` cannot be applied to `{flag_text}`"),
                    neg.unwrap_or_default(),
                )
                .label("remove this `!`"),
            );
            continue;
        }
        let args: Vec<&str> = vals.iter().map(|v| v.text.as_str()).collect();
        match (def.parse)(&args, place.family) {
            Ok(val) => {
                if let Some(inst) = b.inst_mut(idx) {
                    if !def.multi && inst.has(def.name) {
                        let d = err("E0306", format!("multiple {flag_text} flags not allowed"), span)
                            .label(format!("`--{}` is already given", def.name))
                            .help("iptables accepts each option once per rule; split the rule or use a prefix/range");
                        b.errs.push(d);
                        continue;
                    }
                    inst.given.push(Given {
                        name: def.name,
                        neg: neg.is_some(),
                        val,
                        span,
                    });
                }
            }
            Err((code, msg)) => {
                let at = vals.first().map(|v| v.span).unwrap_or(tok.span);
                let mut d = err(code, format!("{msg} in `{flag_text}`"), at);
                d = match code {
                    "E0304" if msg.contains("service name") => d.label("service name").help(
                        "tailwall does not read /etc/services; write the port number, e.g. `--dport 22`",
                    ),
                    "E0304" => d.help("a port spec is N, A:B, :B or A: with ports 0-65535"),
                    "E0305" => d.help("write the smaller value first, e.g. 1000:2000"),
                    "E0309" => d.help("shorten the comment"),
                    _ => d,
                };
                b.errs.push(d);
            }
        }
    }
    finish(b)
}

fn finish(mut b: Builder) -> Result<TypedRule, Vec<Diagnostic>> {
    let place = b.place;
    let proto = b
        .rule
        .proto
        .as_ref()
        .map(|p| (p.value, p.negated))
        .unwrap_or((0, false));
    let typed: Vec<Inst> = b
        .rule
        .matches
        .iter()
        .filter_map(|m| match m {
            Module::Typed(i) => Some(i.clone()),
            _ => None,
        })
        .collect();
    let mut insts: Vec<&Inst> = typed.iter().collect();
    let target_inst = match &b.rule.target {
        Some((Target::Ext(t), _)) => Some(t.clone()),
        _ => None,
    };
    if let Some(t) = &target_inst {
        insts.push(t);
    }
    let ctx = RuleCtx {
        family: place.family,
        table: place.table,
        hook: place.builtin.then_some(place.chain),
        proto,
        matches: &typed,
    };
    // A module's own check only makes sense once every option parsed; its protocol, table and hook
    // restrictions are checked regardless.
    let options_ok = b.errs.is_empty();
    for inst in insts {
        let e = inst.ext;
        let kind = if e.target { "target" } else { "match" };
        if !e.protos.is_empty() && (proto.1 || !e.protos.contains(&proto.0)) {
            let want = proto_save_name(e.protos[0]);
            let msg = match b.rule.proto.as_ref() {
                Some(p) if p.negated => format!("`-m {}` requires `-p {want}` without `!`", e.name),
                Some(p) if p.value != 0 => format!(
                    "`-m {}` conflicts with `-p {}`",
                    e.name,
                    proto_save_name(p.value)
                ),
                _ => format!("`-m {}` requires `-p {want}`", e.name),
            };
            let msg = if e.target {
                msg.replace("-m ", "-j ")
            } else {
                msg
            };
            b.errs.push(err("E0307", msg, inst.span).help(format!(
"the kernel rejects a {} {kind} unless the rule matches protocol {want}: write `-p {want}{}`",
                e.name,
                if e.target { String::new() } else { format!(" -m {}", e.name) }
            )));
            continue;
        }
        if !e.tables.is_empty() && !e.tables.contains(&place.table) {
            b.errs.push(err(
                "E0323",
                format!(
                    "{kind} `{}` is only valid in table {}",
                    e.name,
                    e.tables.join(", ")
                ),
                inst.span,
            ));
            continue;
        }
        if place.builtin && !e.hooks.is_empty() && !e.hooks.contains(&place.chain) {
            b.errs.push(err(
                "E0323",
                format!(
                    "{kind} `{}` is not valid in chain {} (only {})",
                    e.name,
                    place.chain,
                    e.hooks.join(", ")
                ),
                inst.span,
            ));
            continue;
        }
        if !options_ok {
            continue;
        }
        if let Err((msg, opt)) = (e.check)(inst, &ctx) {
            let at = opt
                .and_then(|o| inst.get(o))
                .map(|g| g.span)
                .unwrap_or(inst.span);
            b.errs.push(err("E0322", msg, at));
        }
    }
    if b.errs.is_empty() {
        Ok(b.rule)
    } else {
        b.errs
            .sort_by_key(|d| d.span.map(|s| s.start).unwrap_or(u32::MAX));
        Err(b.errs)
    }
}

// ---- printing ----

/// Print free text the way iptables-save prints module arguments it keeps verbatim.
fn raw_arg(out: &mut String, t: &Token) {
    out.push(' ');
    if t.text.is_empty() || t.text.contains([' ', '\t', '"', '\\']) {
        let mut s = String::new();
        ext::save_string(&mut s, &t.text);
        out.push_str(s.trim_start());
    } else {
        out.push_str(&t.text);
    }
}

/// The rule as iptables-save prints it: `-A CHAIN` then `-s -d -i -o -p -f`, the matches in order, the
/// target.
pub fn save_rule(chain: &str, r: &TypedRule) -> String {
    let mut out = format!("-A {chain}");
    for (flag, a) in [("-s", &r.src), ("-d", &r.dst)] {
        if let Some(a) = a {
            if !a.value.is_any() || a.negated {
                if a.negated {
                    out.push_str(" !");
                }
                out.push_str(&format!(" {flag} {}", fmt_addr(&a.value)));
            }
        }
    }
    for (flag, i) in [("-i", &r.in_iface), ("-o", &r.out_iface)] {
        if let Some(i) = i {
            if i.value != "+" || i.negated {
                if i.negated {
                    out.push_str(" !");
                }
                out.push_str(&format!(" {flag} {}", i.value));
            }
        }
    }
    if let Some(p) = &r.proto {
        if p.value != 0 {
            if p.negated {
                out.push_str(" !");
            }
            out.push_str(&format!(" -p {}", proto_save_name(p.value)));
        }
    }
    if let Some(f) = &r.fragment {
        if f.negated {
            out.push_str(" !");
        }
        out.push_str(" -f");
    }
    for m in &r.matches {
        out.push_str(" -m ");
        out.push_str(m.name());
        match m {
            Module::Typed(i) => (i.ext.save)(i, &mut out),
            Module::Generic { args, .. } => args.iter().for_each(|a| raw_arg(&mut out, a)),
        }
    }
    match r.target.as_ref().map(|t| &t.0) {
        None => {}
        Some(Target::Verdict(v) | Target::Jump(v)) => out.push_str(&format!(" -j {v}")),
        Some(Target::Goto(c)) => out.push_str(&format!(" -g {c}")),
        Some(Target::Ext(i)) => {
            out.push_str(&format!(" -j {}", i.ext.name));
            (i.ext.save)(i, &mut out);
        }
        Some(Target::Generic { name, args }) => {
            out.push_str(&format!(" -j {name}"));
            args.iter().for_each(|a| raw_arg(&mut out, a));
        }
    }
    out
}

/// Keep an option of a verbatim module as written: its `!` (if any) and the token, growing `span`.
fn push_verbatim(args: &mut Vec<Token>, span: &mut Span, neg: Option<Span>, tok: &Token) {
    if let Some(n) = neg {
        args.push(Token {
            text: "!".into(),
            span: n,
            quoted: false,
        });
    }
    args.push(tok.clone());
    *span = span.join(tok.span);
}

#[cfg(test)]
mod tests {
    use super::super::token::tokenize;
    use super::*;

    fn canon(line: &str, table: &str, chain: &str, f: Family) -> Result<String, Vec<&'static str>> {
        let toks = tokenize(line, 0).unwrap();
        let place = Place {
            family: f,
            table,
            chain,
            builtin: true,
        };
        type_rule(&toks, place)
            .map(|r| save_rule(chain, &r))
            .map_err(|e| e.iter().map(|d| d.code).collect())
    }
    fn c4(line: &str) -> Result<String, Vec<&'static str>> {
        canon(line, "filter", "INPUT", Family::V4)
    }

    #[test]
    fn save_normalises_like_iptables_save() {
        assert_eq!(
            c4("-p tcp --dport 22 -s 10.1.2.3/8 -j ACCEPT").unwrap(),
            "-A INPUT -s 10.0.0.0/8 -p tcp -m tcp --dport 22 -j ACCEPT"
        );
        assert_eq!(
            c4("-p tcp --syn").unwrap(),
            "-A INPUT -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN"
        );
        assert_eq!(
            c4("-m state --state ESTABLISHED,RELATED").unwrap(),
            "-A INPUT -m state --state RELATED,ESTABLISHED"
        );
        assert_eq!(
            c4("-m comment --comment \"a b\" -j LOG --log-prefix x").unwrap(),
            "-A INPUT -m comment --comment \"a b\" -j LOG --log-prefix x"
        );
        assert_eq!(
            c4("--protocol=tcp -ilo -jACCEPT").unwrap(),
            "-A INPUT -i lo -p tcp -j ACCEPT"
        );
        assert_eq!(c4("-d 1.2.3.4").unwrap(), "-A INPUT -d 1.2.3.4/32");
        assert_eq!(
            canon(
                "-s ::1 -p ipv6-icmp -m icmp6 --icmpv6-type 1/0",
                "filter",
                "INPUT",
                Family::V6
            )
            .unwrap(),
            "-A INPUT -s ::1/128 -p ipv6-icmp -m icmp6 --icmpv6-type 1/0"
        );
    }

    #[test]
    fn type_rule_rejects_invalid_options() {
        assert_eq!(c4("-p tcp --sport 65536"), Err(vec!["E0304"]));
        assert_eq!(c4("-p tcp --sport 4:3"), Err(vec!["E0305"]));
        assert_eq!(c4("-s 1.2.3.4/33"), Err(vec!["E0302"]));
        assert_eq!(c4("-m state --state FOO"), Err(vec!["E0320"]));
        assert_eq!(c4("--dport 22"), Err(vec!["E0308"]));
        assert_eq!(c4("-m udp -p tcp --dport 1"), Err(vec!["E0307"]));
        assert_eq!(c4("-m state"), Err(vec!["E0322"]));
        assert_eq!(c4("-p tcp --syn --tcp-flags SYN SYN"), Err(vec!["E0322"]));
        assert_eq!(c4("-m owner --uid-owner 0"), Err(vec!["E0323"]));
        assert_eq!(c4("-m bogus"), Err(vec!["E0321"]));
        assert_eq!(c4("-m comment ! --comment x"), Err(vec!["E0310"]));
    }

    /// Words that reach deep into the registry: every option of every module, plus values.
    fn vocabulary() -> Vec<String> {
        let mut v: Vec<String> = [
            "!",
            "-s",
            "-d",
            "-p",
            "-i",
            "-o",
            "-f",
            "-m",
            "-j",
            "-g",
            "-c",
            "tcp",
            "udp",
            "icmp",
            "all",
            "10.0.0.0/8",
            "::1/64",
            "eth+",
            "+",
            "ACCEPT",
            "DROP",
            "RETURN",
            "web",
            "22",
            "1:2",
            "2:1",
            ":",
            "70000",
            "0x10/0xff",
            "1/sec",
            "NEW,RELATED",
            "src,dst",
            "foo",
            "\"a b\"",
            "1,2,3:4",
            "random",
            "nth",
            "0.5",
            "3",
            "LOCAL",
            "SYN,ACK",
            "SYN",
            "any",
            "1.1.1.1:80-90",
            "--protocol=tcp",
            "-ptcp",
            "",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for e in ext::MATCHES.iter().chain(ext::TARGETS.iter()) {
            v.push(e.name.to_string());
            for o in e.opts {
                v.push(format!("--{}", o.name));
            }
        }
        v
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// No panic on any sequence of arguments; errors are located inside the line; what types prints
        /// to a canonical form that types again and prints identically.
        #[test]
        fn type_rule_never_panics_and_printing_is_a_fixed_point(
            words in proptest::collection::vec(
                proptest::prop_oneof![
                    9 => proptest::sample::select(vocabulary()),
                    1 => "\\PC{0,6}",
                ],
                0..12,
            ),
            v6 in proptest::bool::ANY,
        ) {
            let line = words.join(" ");
            let Ok(toks) = tokenize(&line, 0) else { return Ok(()) };
            let f = if v6 { Family::V6 } else { Family::V4 };
            for (table, chain) in [("filter", "INPUT"), ("nat", "POSTROUTING"), ("filter", "user")] {
                let place = Place { family: f, table, chain, builtin: chain != "user" };
                match type_rule(&toks, place) {
                    Ok(r) => {
                        let once = save_rule(chain, &r);
                        let body = once[3 + chain.len()..].trim_start().to_string();
                        let toks2 = tokenize(&body, 0).map_err(|e| proptest::test_runner::TestCaseError::fail(format!("{once}: {e:?}")))?;
                        let r2 = type_rule(&toks2, place).map_err(|e| proptest::test_runner::TestCaseError::fail(format!("`{line}` printed `{once}` which does not type: {e:?}")))?;
                        proptest::prop_assert_eq!(save_rule(chain, &r2), once);
                    }
                    Err(ds) => {
                        for d in ds {
                            let s = d.span.expect("located");
                            proptest::prop_assert!(s.end as usize <= line.len());
                        }
                    }
                }
            }
        }
    }
}
