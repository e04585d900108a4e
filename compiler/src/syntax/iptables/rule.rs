//! Typed rules: a rule line's arguments resolved against iptables' own options and the extension registry
//! ([`super::ext`]), validated as iptables-restore and the kernel's `checkentry` validate them, and printed
//! back in iptables-save's canonical form ([`save_rule`], in [`super::save`]). [`super::parse`] types every rule
//! line with it, so lowering receives typed rules.
//!
//! What [`type_rule`] guarantees: every argument belongs to exactly one option (iptables' own, or one of a
//! loaded module: `-m NAME`, or the protocol's module loaded implicitly by `-p tcp --dport 22`); every value
//! is validated; a module's protocol, table and hook restrictions hold; at most one target. What it throws
//! away: option order within a module, spelling (aliases, `--opt=value`, glued `-ptcp`), host bits of
//! addresses, `-c` counters (kept in [`TypedRule::set_counters`]).
//!
//! Options are found as getopt_long finds them: a long option may be abbreviated to any unambiguous prefix
//! of the options loaded so far (iptables' own, then the modules' newest first: `--dport` after `-m
//! multiport` is `--dports`, `--proto` is `--protocol`), an unknown one first loads the `-p` protocol's
//! match; numbers are read with base 0 ([`values::strtoul`]).
//!
//! Deliberate differences from iptables: host and user names are not resolved (only `root`; service names
//! come from the embedded [`values::SERVICES_DB`], so results do not depend on the machine); address lists
//! (`-s a,b`, which iptables expands into several rules) are rejected.
use super::ext::{self, Arity, Given, Inst, RuleCtx};
use super::token::Token;
use super::values;
use crate::diag::{Diagnostic, Span};

pub use super::save::save_rule;
pub use super::values::{
    fmt_addr, fmt_ip, parse_addr_any, parse_ip, proto_save_name, Family, IpNet,
};

/// A value with its `!` and the span of the whole option.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Neg<T> {
    /// The typed value.
    pub value: T,
    /// Preceded by `!`.
    pub negated: bool,
    /// From the `!` (or the option) to the value.
    pub span: Span,
}

/// A loaded match: typed, or one of the modules kept verbatim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Module {
    /// A module of the registry ([`ext::MATCHES`]), options typed and checked.
    Typed(Inst),
    /// A module of [`ext::GENERIC_MATCHES`]: accepted, options kept as written.
    Generic {
        /// The module's name after `-m`.
        name: String,
        /// The tokens after `-m NAME` up to the next module, target or built-in option.
        args: Vec<Token>,
        /// `-m NAME` and its arguments.
        span: Span,
    },
}

impl Module {
    /// The module's name as given to `-m`.
    pub fn name(&self) -> &str {
        match self {
            Module::Typed(i) => i.name(),
            Module::Generic { name, .. } => name,
        }
    }
    /// Where the module was loaded (`-m NAME`, or the implicit option).
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
    /// A typed target module of [`ext::TARGETS`] (`-j LOG …`).
    Ext(Inst),
    /// A target of [`ext::GENERIC_TARGETS`], options kept as written.
    Generic {
        /// The target's name after `-j`.
        name: String,
        /// The tokens after `-j NAME`.
        args: Vec<Token>,
    },
}

/// One rule's options, typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypedRule {
    /// The family the rule was typed for (decides address syntax and family-only modules).
    pub family: Family,
    /// `-s ADDR[/MASK]` (`--source`).
    pub src: Option<Neg<IpNet>>,
    /// `-d ADDR[/MASK]` (`--destination`).
    pub dst: Option<Neg<IpNet>>,
    /// `-i NAME` (`--in-interface`), as written (a trailing `+` is a prefix wildcard).
    pub in_iface: Option<Neg<String>>,
    /// `-o NAME` (`--out-interface`), as written.
    pub out_iface: Option<Neg<String>>,
    /// `-p PROTO` as an IP protocol number (/etc/protocols); 0 = all.
    pub proto: Option<Neg<u8>>,
    /// `-f` (`--fragment`, IPv4 only): matches second and later fragments (`IPT_F_FRAG`).
    pub fragment: Option<Neg<()>>,
    /// The `-m` modules (and implicitly loaded protocol matches), in order.
    pub matches: Vec<Module>,
    /// The `-j`/`-g` target and its span; `None` for a rule that only counts.
    pub target: Option<(Target, Span)>,
    /// `-c PACKETS BYTES` (`--set-counters`).
    pub set_counters: Option<(u64, u64)>,
}

/// Where the rule sits.
#[derive(Clone, Copy, Debug)]
pub struct Place<'a> {
    /// IPv4 (iptables) or IPv6 (ip6tables).
    pub family: Family,
    /// The table's name (`filter`, …).
    pub table: &'a str,
    /// The chain's name.
    pub chain: &'a str,
    /// The chain is a built-in chain of the table (module hook restrictions apply).
    pub builtin: bool,
}

/// The verdicts `-j` accepts without a module (iptables' standard target; QUEUE is NF_QUEUE 0).
pub const STANDARD_TARGETS: [&str; 4] = ["ACCEPT", "DROP", "RETURN", "QUEUE"];

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

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
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
    /// `-v`: accepted with `-A`/`-I`, changes nothing.
    Verbose,
    /// `-4` / `-6`: accepted by the tool of that family, refused by the other.
    Only(Family),
    /// A command or an option iptables refuses in a rule (`-n`, `-x`, `--line-numbers`, `-L`, …).
    NotInRule,
}

/// iptables' own long options (`original_opts` in iptables 1.8.9's `iptables.c`/`ip6tables.c`), the table
/// getopt_long matches abbreviations against before any module is loaded.
const BASE_LONG: [(&str, Builtin); 37] = [
    ("append", Builtin::NotInRule),
    ("delete", Builtin::NotInRule),
    ("check", Builtin::NotInRule),
    ("insert", Builtin::NotInRule),
    ("replace", Builtin::NotInRule),
    ("list", Builtin::NotInRule),
    ("list-rules", Builtin::NotInRule),
    ("flush", Builtin::NotInRule),
    ("zero", Builtin::NotInRule),
    ("new-chain", Builtin::NotInRule),
    ("delete-chain", Builtin::NotInRule),
    ("rename-chain", Builtin::NotInRule),
    ("policy", Builtin::NotInRule),
    ("source", Builtin::Src),
    ("destination", Builtin::Dst),
    ("src", Builtin::Src),
    ("dst", Builtin::Dst),
    ("protocol", Builtin::Proto),
    ("in-interface", Builtin::In),
    ("jump", Builtin::Jump),
    ("table", Builtin::NotInRule),
    ("match", Builtin::Match),
    ("numeric", Builtin::NotInRule),
    ("out-interface", Builtin::Out),
    ("verbose", Builtin::Verbose),
    ("wait", Builtin::NotInRule),
    ("wait-interval", Builtin::NotInRule),
    ("exact", Builtin::NotInRule),
    ("fragments", Builtin::Frag),
    ("version", Builtin::NotInRule),
    ("help", Builtin::NotInRule),
    ("line-numbers", Builtin::NotInRule),
    ("modprobe", Builtin::NotInRule),
    ("set-counters", Builtin::Counters),
    ("goto", Builtin::Goto),
    ("ipv4", Builtin::Only(Family::V4)),
    ("ipv6", Builtin::Only(Family::V6)),
];

/// iptables' short options (its getopt optstring).
fn builtin_short(flag: &str) -> Option<Builtin> {
    Some(match flag {
        "-s" => Builtin::Src,
        "-d" => Builtin::Dst,
        "-p" => Builtin::Proto,
        "-i" => Builtin::In,
        "-o" => Builtin::Out,
        "-f" => Builtin::Frag,
        "-m" => Builtin::Match,
        "-j" => Builtin::Jump,
        "-g" => Builtin::Goto,
        "-c" => Builtin::Counters,
        "-v" => Builtin::Verbose,
        "-4" => Builtin::Only(Family::V4),
        "-6" => Builtin::Only(Family::V6),
        "-A" | "-C" | "-D" | "-R" | "-I" | "-L" | "-S" | "-M" | "-F" | "-Z" | "-N" | "-X"
        | "-E" | "-P" | "-V" | "-h" | "-b" | "-w" | "-W" | "-n" | "-x" => Builtin::NotInRule,
        _ => return None,
    })
}

/// An option iptables itself defines, spelled in full (a sign that a preceding option lacks its value).
fn builtin(flag: &str) -> Option<Builtin> {
    match flag.strip_prefix("--") {
        Some(long) => BASE_LONG.iter().find(|(n, _)| *n == long).map(|&(_, b)| b),
        None => builtin_short(flag),
    }
}

fn is_flag(t: &Token) -> bool {
    t.text.len() >= 2 && t.text.starts_with('-')
}

/// A flag iptables itself defines (a sign that a preceding option lacks its value).
fn is_builtin_flag(t: &Token) -> bool {
    is_flag(t)
        && (builtin(&t.text).is_some_and(|b| b != Builtin::NotInRule)
            || split_glued(&t.text).is_some())
}

/// A value glued to a built-in short option, as iptables 1.8.9's `do_parse` reads it: `-mtcp`, `-gCHAIN` and
/// `-c1,2` give getopt's `optarg` (`-m tcp`), but `-i -o -s -d -p -j` take `argv[optind - 1]`, the whole
/// word, as their value: `-ieth0` is the interface `-ieth0` (saved as `-i -ieth0`), `-ptcp` the unknown
/// protocol `-ptcp`, `-jACCEPT` the unknown target `-jACCEPT`.
fn split_glued(s: &str) -> Option<(&str, &str)> {
    if s.starts_with("--") || s.len() <= 2 {
        return None;
    }
    if !s.is_char_boundary(2) {
        return None;
    }
    let (f, v) = s.split_at(2);
    match builtin_short(f)? {
        Builtin::Frag | Builtin::Verbose | Builtin::Only(_) | Builtin::NotInRule => None,
        Builtin::Match | Builtin::Goto | Builtin::Counters => Some((f, v)),
        _ => Some((f, s)),
    }
}

/// What a flag names once getopt_long has matched it (exactly, or as an unambiguous prefix).
enum Resolved {
    Base(Builtin),
    /// A loaded module's option: index into the matches (`usize::MAX`: the target) and its definition.
    Module(usize, &'static ext::OptDef),
    /// Several options start with the abbreviation (their full names).
    Ambiguous(Vec<String>),
    Unknown,
}

fn err(code: &'static str, msg: impl Into<String>, at: Span) -> Diagnostic {
    Diagnostic::error(code, msg).at(at)
}

struct Builder<'a> {
    place: Place<'a>,
    rule: TypedRule,
    errs: Vec<Diagnostic>,
    seen: Vec<(Builtin, Span)>,
    /// The loaded modules in load order (index into `rule.matches`, `usize::MAX` for the target): getopt
    /// tries the newest module's options first.
    loaded: Vec<usize>,
}

impl Builder<'_> {
    fn once(&mut self, b: Builtin, flag: &str, span: Span) -> bool {
        // `-j` and `-g` are one option to iptables (OPT_JUMP): a rule has one target.
        let slot = |x: Builtin| if x == Builtin::Goto { Builtin::Jump } else { x };
        if self.seen.iter().any(|(x, _)| slot(*x) == slot(b)) {
            let code = if matches!(b, Builtin::Jump | Builtin::Goto) {
                "E0311"
            } else {
                "E0306"
            };
            let shown = if code == "E0311" { "-j" } else { flag };
            let d = err(code, format!("multiple {shown} flags not allowed"), span);
            self.errs.push(if code == "E0311" {
                d.label("a target (`-j` or `-g`) is already given earlier in this rule")
                    .help("a rule has one target: keep either `-j TARGET` or `-g CHAIN`")
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

    /// getopt_long's lookup of `flag` in iptables' options plus the loaded modules' options (newest module
    /// first): an exact name wins, else a prefix of exactly one option (aliases of one option count once).
    fn resolve(&self, flag: &str) -> Resolved {
        let Some(name) = flag.strip_prefix("--") else {
            return builtin_short(flag).map_or(Resolved::Unknown, Resolved::Base);
        };
        if name.is_empty() {
            return Resolved::Unknown;
        }
        let mods: Vec<(usize, &'static ext::OptDef)> = self
            .loaded
            .iter()
            .rev()
            .filter_map(|&i| self.inst(i).map(|inst| (i, inst)))
            .flat_map(|(i, inst)| inst.ext.opts.iter().map(move |d| (i, d)))
            .collect();
        if let Some(&(_, b)) = BASE_LONG.iter().find(|(n, _)| *n == name) {
            return Resolved::Base(b);
        }
        if let Some(&(i, d)) = mods
            .iter()
            .find(|(_, d)| d.name == name || d.aliases.contains(&name))
        {
            return Resolved::Module(i, d);
        }
        let mut base: Vec<(Builtin, &str)> = Vec::new();
        for &(n, b) in &BASE_LONG {
            if n.starts_with(name) && !base.iter().any(|(x, _)| *x == b) {
                base.push((b, n));
            }
        }
        let mut hits: Vec<(usize, &'static ext::OptDef, &str)> = Vec::new();
        for &(i, d) in &mods {
            for n in std::iter::once(&d.name).chain(d.aliases.iter()) {
                if n.starts_with(name) && !hits.iter().any(|(j, e, _)| *j == i && e.name == d.name)
                {
                    hits.push((i, d, n));
                }
            }
        }
        match (base.as_slice(), hits.as_slice()) {
            ([], []) => Resolved::Unknown,
            ([(b, _)], []) => Resolved::Base(*b),
            ([], [(i, d, _)]) => Resolved::Module(*i, d),
            _ => Resolved::Ambiguous(
                base.iter()
                    .map(|(_, n)| format!("--{n}"))
                    .chain(hits.iter().map(|(_, _, n)| format!("--{n}")))
                    .collect(),
            ),
        }
    }

    fn inst(&self, idx: usize) -> Option<&Inst> {
        if idx == usize::MAX {
            match &self.rule.target {
                Some((Target::Ext(t), _)) => Some(t),
                _ => None,
            }
        } else {
            match self.rule.matches.get(idx) {
                Some(Module::Typed(i)) => Some(i),
                _ => None,
            }
        }
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
                match values::parse_addr_any(v, f) {
                    Ok(n) => {
                        let nv = Neg { value: n, negated: neg.is_some(), span };
                        if b == Builtin::Src {
                            self.rule.src = Some(nv);
                        } else {
                            self.rule.dst = Some(nv);
                        }
                    }
                    Err(e) => {
                        let code = if matches!(e, values::AddrError::BadMask(_)) { "E0302" } else { "E0301" };
                        let d = err(code, format!("{e} in `{}`", flag.text), value.span);
                        let d = match e {
                            values::AddrError::Hostname(_) => d.label("host name").help("tailwall does not resolve host names (iptables-save prints addresses); write the address, e.g. `-s 192.0.2.10`"),
                            values::AddrError::BadMask(_) if f == Family::V4 => d.help("a prefix length is 0-32 (decimal, 0x hex or 0-prefixed octal); a mask is dotted, e.g. /255.255.255.0"),
                            values::AddrError::BadMask(_) => d.help("a prefix length is 0-128; a mask is an IPv6 address"),
                            _ if f == Family::V4 && v.contains(':') => d.label("IPv6 address").help("IPv6 rules belong in ip6tables-save files (`# Generated by ip6tables-save` first line)"),
                            _ if f == Family::V4 => d.help("an IPv4 address is up to four dot-separated numbers 0-255 (decimal, 0x hex or 0-prefixed octal, as iptables reads them), optionally with /LEN or /MASK"),
                            _ => d.help("write an IPv6 address, optionally with /LEN, e.g. 2001:db8::/32"),
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
                    "use a protocol number 0-255 (decimal, 0x hex or 0-prefixed octal), `all`, or a name from /etc/protocols such as tcp, udp, icmp, esp, ah, gre, sctp",
                )),
            },
            Builtin::In | Builtin::Out => {
                // xtables_parse_interface (iptables 1.8.9) refuses an empty name.
                if v.is_empty() {
                    self.errs.push(
                        err("E0320", format!("empty interface name in `{}`", flag.text), value.span)
                            .help("iptables-restore refuses it: \"Empty interface is likely to be undesired\"; write `+` for any interface"),
                    );
                    return;
                }
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
                    self.loaded.push(self.rule.matches.len() - 1);
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
                    self.loaded.push(usize::MAX);
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
            Builtin::Counters
            | Builtin::Frag
            | Builtin::Verbose
            | Builtin::Only(_)
            | Builtin::NotInRule => {}
        }
    }
}

/// Type one rule: `tokens` are the arguments after `-A CHAIN`.
///
/// # Errors
/// Every problem of the rule, located: unknown or misplaced options and modules, bad values (`E03xx`),
/// failed module checks (required, exclusive, protocol/table/hook restrictions).
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
        loaded: Vec::new(),
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
        // Resolve `--name=value` and `-ptcp`. For `-s -d -p -i -o -j` (and their long names) iptables 1.8.9
        // takes the whole word as the value (`argv[optind-1]`): `--protocol=tcp` is the protocol
        // `--protocol=tcp`.
        let (flag_text, inline): (String, Option<Token>) =
            if let Some((n, v)) = tok.text.strip_prefix("--").and_then(|r| r.split_once('=')) {
                let whole = matches!(
                    builtin(&format!("--{n}")),
                    Some(
                        Builtin::Src
                            | Builtin::Dst
                            | Builtin::Proto
                            | Builtin::In
                            | Builtin::Out
                            | Builtin::Jump
                    )
                );
                (
                    format!("--{n}"),
                    Some(Token {
                        text: if whole {
                            tok.text.clone()
                        } else {
                            v.to_string()
                        },
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
                // A module option's value is the next word whatever it is, `!` included (getopt;
                // `--comment !` is the comment "!"): its parser then judges it. iptables' own options
                // keep the located E0115, which says how to negate.
                if strict && *i < tokens.len() && tokens[*i].is("!") {
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
        // getopt_long: an exact name or an unambiguous prefix; an unknown option first loads the match of
        // `-p PROTO` (iptables' `load_proto`) and is looked up again.
        let mut resolved = b.resolve(&flag_text);
        if matches!(resolved, Resolved::Unknown | Resolved::Ambiguous(_)) {
            if let Some(Neg {
                value: p,
                negated: false,
                span: pspan,
            }) = b.rule.proto.clone()
            {
                if let Some(e) = ext::implicit_match(p, place.family) {
                    if !b.rule.matches.iter().any(|m| m.name() == e.name) {
                        b.rule.matches.push(Module::Typed(Inst {
                            ext: e,
                            given: Vec::new(),
                            span: pspan,
                            implicit: true,
                        }));
                        b.loaded.push(b.rule.matches.len() - 1);
                        let again = b.resolve(&flag_text);
                        if matches!(again, Resolved::Unknown) {
                            b.rule.matches.pop();
                            b.loaded.pop();
                        } else {
                            resolved = again;
                        }
                    }
                }
            }
        }
        if let Resolved::Ambiguous(names) = &resolved {
            b.errs.push(
                err("E0308", format!("option `{flag_text}` is ambiguous"), tok.span)
                    .label(format!("could be {}", names.join(", ")))
                    .help("write more of the option's name (getopt_long accepts only an unambiguous prefix)"),
            );
            while i < tokens.len() && !is_flag(&tokens[i]) && !tokens[i].is("!") {
                i += 1;
            }
            continue;
        }
        if let Resolved::Base(bi) = resolved {
            match bi {
                Builtin::NotInRule => {
                    b.errs.push(
                        err("E0308", format!("`{}` cannot be used in a rule", tok.text), tok.span)
                            .label("a command or listing option")
                            .help("iptables-restore refuses it with `-A`/`-I` (\"Illegal option\" or \"Can't use … with -A\")"),
                    );
                    while i < tokens.len() && !is_flag(&tokens[i]) && !tokens[i].is("!") {
                        i += 1;
                    }
                    continue;
                }
                Builtin::Only(want) if want != place.family => {
                    let tool = if place.family == Family::V4 {
                        "iptables"
                    } else {
                        "ip6tables"
                    };
                    b.errs.push(
                        err("E0308", format!("`{}` is refused by {tool}", tok.text), tok.span)
                            .help(format!("{tool} is the tool of the other address family (\"This is an {} tool\")", if place.family == Family::V4 { "IPv4" } else { "IPv6" })),
                    );
                    continue;
                }
                Builtin::Verbose | Builtin::Only(_) => {
                    if let Some(n) = neg {
                        b.no_neg(Some(n), &tok.text);
                    }
                    continue;
                }
                _ => {}
            }
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
            let canonical = match bi {
                Builtin::Src => "-s",
                Builtin::Dst => "-d",
                Builtin::Proto => "-p",
                Builtin::In => "-i",
                Builtin::Out => "-o",
                Builtin::Frag => "-f",
                Builtin::Match => "-m",
                Builtin::Jump => "-j",
                Builtin::Goto => "-g",
                _ => "-c",
            };
            let flag_text = if flag_text.starts_with("--") {
                flag_text.clone()
            } else {
                canonical.to_string()
            };
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
        let owner = match resolved {
            Resolved::Module(idx, def) => Some((idx, def)),
            _ => None,
        };
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
        let rule_proto = b
            .rule
            .proto
            .as_ref()
            .filter(|p| !p.negated)
            .map_or(0, |p| p.value);
        let parsed = match def.parse_in_rule {
            Some(f) => f(&args, place.family, rule_proto),
            None => (def.parse)(&args, place.family),
        };
        match parsed {
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
                    "E0304" => d.help(format!(
                        "a port spec is N, A:B, :B or A: with ports 0-65535 (decimal, 0x hex or 0-prefixed octal) or service names from {}",
                        values::SERVICES_DB
                    )),
                    "E0305" => d.help("write the smaller value first, e.g. 1000:2000"),
                    "E0309" => d.help("shorten the comment"),
                    _ => d,
                };
                if args.first() == Some(&"!") {
                    d = d.help(format!(
                        "iptables reads a `!` after an option as its value; to negate, write `! {flag_text} VALUE`"
                    ));
                }
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
    // iptables 1.8.9 (`do_parse` in xshared.c) refuses DROP in the nat table, in both families.
    if let Some((Target::Verdict(v), at)) = &b.rule.target {
        if v == "DROP" && place.table == "nat" {
            b.errs.push(
                err(
                    "E0323",
                    "the \"nat\" table is not intended for filtering: DROP is not allowed there"
                        .to_string(),
                    *at,
                )
                .help("drop the packet in the filter table (or raw/mangle) instead"),
            );
        }
    }
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
        // iptables 1.8.9 (`argv[optind-1]`): `-ilo` is the interface `-ilo`; `--protocol=tcp` and `-jACCEPT`
        // are refused (protocol `--protocol=tcp`, target `-jACCEPT`); `--match=comment` is `-m comment`.
        assert_eq!(
            c4("-ilo -mcomment --comment=x").unwrap(),
            "-A INPUT -i -ilo -m comment --comment x"
        );
        assert!(c4("--protocol=tcp").is_err());
        // (a jump to a chain named `-jACCEPT`, which the file must declare: lowering checks that)
        assert_eq!(c4("-jACCEPT").unwrap(), "-A INPUT -j -jACCEPT");
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
