//! The registry of iptables extension modules (`-m NAME` matches and `-j NAME` targets).
//!
//! Each module lives in its own file (closely related variants share one: IPv4/IPv6 twins, a match and the
//! target of the same name) and declares an [`Ext`]: its options (name, aliases, arity, whether
//! `!` is accepted, a value parser), the protocols, tables and hooks it is restricted to, a final check
//! (required and mutually exclusive options, as the module's `x6_fcheck` and the kernel's `checkentry`
//! do) and a printer reproducing the module's `save` function in iptables-save's canonical form.
//!
//! What a module guarantees once its [`Inst`] is built: every option belongs to the module, appears at
//! most once (unless the module says otherwise), carries a validated, typed [`Val`], and the combination
//! passed the module's check. What it throws away: the spelling (aliases, abbreviations of numbers,
//! service names, `:` vs full ranges) — the printer prints the canonical form.
//!
//! Modules that appear in iptables' test suite but are not typed here are [`GENERIC_MATCHES`] /
//! [`GENERIC_TARGETS`]: their options are kept as tokens and printed back verbatim.
//!
//! Adding a module: a new file with its `Ext`, a `mod` line and one entry in [`MATCHES`] or [`TARGETS`]
//! (and its name out of the generic lists); `compiler/tests/conformance.rs` then measures it.
use crate::diag::Span;
use crate::syntax::iptables::values;

pub(crate) mod addrtype;
mod ah_esp;
mod audit;
mod bpf;
mod cgroup;
mod classify;
mod cluster;
mod comment;
mod connbytes;
mod connlabel;
mod connlimit;
mod connmark_target;
mod connsecmark;
pub(crate) mod conntrack;
mod cpu;
mod dccp;
mod ecn;
mod ecn_target;
mod eui64;
mod exthdr;
mod frag;
mod hashlimit;
mod helper;
mod icmp;
mod idletimer;
mod ipcomp;
mod iprange;
mod ipvs;
mod led;
mod length;
mod limit;
mod log;
mod mac;
mod mark;
mod mh;
mod multiport;
mod nat;
mod netmap;
mod nfacct;
mod nflog;
mod nfqueue;
mod npt;
mod osf;
mod owner;
mod physdev;
mod pkttype;
mod policy;
mod quota;
mod realm;
mod recent;
mod reject;
mod rpfilter;
mod rt;
mod sctp;
mod secmark;
mod set;
pub(crate) mod simple_targets;
mod socket;
mod spi_like;
mod statistic;
mod string;
mod synproxy;
mod tcp;
mod tcpmss;
mod tcpmss_match;
mod tcpoptstrip;
mod tee;
mod time;
mod tos_dscp;
mod tproxy;
mod ttl;
mod u32;
mod udp;

pub use crate::syntax::iptables::values::Family;
pub use limit::fmt_rate as fmt_limit_rate;
pub use mark::xmark as mark_xmark;

/// A typed option value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Val {
    /// An option without a value.
    Flag,
    /// One number (a port, a mark, a count; units are the option's, e.g. limit's period in 1/10000 s).
    Num(u64),
    /// Inclusive range (a single value is `lo == hi`).
    Range(u64, u64),
    /// A list of inclusive ranges (`multiport`).
    Ranges(Vec<(u64, u64)>),
    /// Free text printed with iptables-save's quoting (comments, log prefixes).
    Text(String),
    /// A value already in canonical form, printed as is.
    Word(String),
    /// `value/mask`.
    Masked(u64, u64),
    /// A bit set (flags, states, address types).
    Bits(u32),
    /// Two values (`--tcp-flags MASK COMP`, `--match-set NAME FLAGS`).
    Pair(Box<Val>, Box<Val>),
}

/// How many arguments an option takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arity {
    /// A flag (`--syn`).
    Zero,
    /// One argument (`--dport 22`).
    One,
    /// Two arguments (`--tcp-flags SYN,ACK SYN`).
    Two,
}

/// A failed module check: message and the option to point at.
pub type CheckResult = Result<(), (String, Option<&'static str>)>;

/// A value error: diagnostic code and message.
pub type ValErr = (&'static str, String);

/// A value parser that also sees the rule's `-p` protocol number (0: none).
pub type InRuleParse = fn(&[&str], Family, u8) -> Result<Val, ValErr>;

/// One option of a module.
pub struct OptDef {
    /// Canonical name without dashes.
    pub name: &'static str,
    /// Other spellings getopt_long accepts for the same option (`--dports` for `--destination-ports`),
    /// without dashes.
    pub aliases: &'static [&'static str],
    /// How many arguments follow the option.
    pub arity: Arity,
    /// `!` accepted before it.
    pub invert: bool,
    /// May be given several times.
    pub multi: bool,
    /// Validate and type the option's arguments (`arity` of them) for the rule's family.
    pub parse: fn(&[&str], Family) -> Result<Val, ValErr>,
    /// Used instead of `parse` when the value depends on the rule's `-p` protocol (multiport's service
    /// names): `(args, family, protocol number or 0)`.
    pub parse_in_rule: Option<InRuleParse>,
}

impl OptDef {
    /// An option without aliases, given at most once, parsed by `parse` alone.
    pub const fn new(
        name: &'static str,
        arity: Arity,
        invert: bool,
        parse: fn(&[&str], Family) -> Result<Val, ValErr>,
    ) -> OptDef {
        OptDef {
            name,
            aliases: &[],
            arity,
            invert,
            multi: false,
            parse,
            parse_in_rule: None,
        }
    }
    /// Parse the value knowing the rule's protocol.
    pub const fn in_rule(mut self, f: InRuleParse) -> OptDef {
        self.parse_in_rule = Some(f);
        self
    }
    /// The option with these other spellings (without dashes).
    pub const fn aliases(mut self, aliases: &'static [&'static str]) -> OptDef {
        self.aliases = aliases;
        self
    }
    /// Whether `flag` (as written, with its leading `--`) names this option or one of its aliases.
    pub fn is(&self, flag: &str) -> bool {
        flag.strip_prefix("--")
            .is_some_and(|n| n == self.name || self.aliases.contains(&n))
    }
}

/// What the check of a module sees of the rest of the rule.
pub struct RuleCtx<'a> {
    /// IPv4 (iptables) or IPv6 (ip6tables).
    pub family: Family,
    /// The table the rule is in (`filter`, `nat`, …).
    pub table: &'a str,
    /// The chain when it is a built-in one (hook restrictions apply), else None.
    pub hook: Option<&'a str>,
    /// `-p` value (0 = any) and whether it is negated.
    pub proto: (u8, bool),
    /// The other match modules of the rule.
    pub matches: &'a [Inst],
}

/// A module: match or target.
pub struct Ext {
    /// The module's name as given to `-m` / `-j` (`tcp`, `LOG`).
    pub name: &'static str,
    /// A target (`-j NAME`), not a match (`-m NAME`).
    pub target: bool,
    /// Only for this family (None: both).
    pub family: Option<Family>,
    /// The rule must match one of these protocols, not negated (empty: any).
    pub protos: &'static [u8],
    /// Only in these tables (empty: any).
    pub tables: &'static [&'static str],
    /// Only in these built-in chains (empty: any).
    pub hooks: &'static [&'static str],
    /// The module's options.
    pub opts: &'static [OptDef],
    /// Final check; Err(message, option to point at).
    pub check: fn(&Inst, &RuleCtx) -> CheckResult,
    /// Append the module's options in iptables-save's form (each with a leading space).
    pub save: fn(&Inst, &mut String),
}

/// A given option.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Given {
    /// The option's canonical name ([`OptDef::name`]), whatever alias was written.
    pub name: &'static str,
    /// Preceded by `!`.
    pub neg: bool,
    /// The typed value.
    pub val: Val,
    /// From the `!` (or the option) to its last argument.
    pub span: Span,
}

/// A loaded module with its options.
#[derive(Clone, Debug)]
pub struct Inst {
    /// The module.
    pub ext: &'static Ext,
    /// Its options in the order given.
    pub given: Vec<Given>,
    /// `-m NAME` / `-j NAME` (or the option that loaded it implicitly).
    pub span: Span,
    /// Loaded by `-p PROTO` plus one of its options, not by `-m`.
    pub implicit: bool,
}

impl PartialEq for Inst {
    fn eq(&self, o: &Inst) -> bool {
        self.ext.name == o.ext.name && self.ext.target == o.ext.target && self.given == o.given
    }
}
impl Eq for Inst {}

impl std::fmt::Debug for Ext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ext({})", self.name)
    }
}

impl Inst {
    /// The option with canonical name `name` (no dashes), if given (the first, for a `multi` option).
    pub fn get(&self, name: &str) -> Option<&Given> {
        self.given.iter().find(|g| g.name == name)
    }
    /// Whether the option with canonical name `name` was given.
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
    /// The module's definition of `flag` (written with `--`, canonical name or alias).
    pub fn opt_def(&self, flag: &str) -> Option<&'static OptDef> {
        self.ext.opts.iter().find(|o| o.is(flag))
    }
    /// The module's name.
    pub fn name(&self) -> &'static str {
        self.ext.name
    }
}

/// Every typed match module (`-m NAME`); IPv4/IPv6 twins are separate entries with their `family`.
pub static MATCHES: &[&Ext] = &[
    &tcp::EXT,
    &udp::EXT,
    &icmp::EXT4,
    &icmp::EXT6,
    &comment::EXT,
    &multiport::EXT,
    &conntrack::STATE,
    &conntrack::EXT,
    &limit::EXT,
    &mac::EXT,
    &mark::MATCH,
    &mark::CONNMARK,
    &owner::EXT,
    &addrtype::EXT,
    &length::EXT,
    &pkttype::EXT,
    &physdev::EXT,
    &statistic::EXT,
    &set::EXT,
    &ah_esp::AH,
    &ah_esp::ESP,
    &ah_esp::AH6,
    &tos_dscp::TOS_MATCH,
    &tos_dscp::DSCP_MATCH,
    &ttl::TTL_MATCH,
    &ttl::HL_MATCH,
    &helper::EXT,
    &cpu::EXT,
    &quota::EXT,
    &ecn::EXT,
    &iprange::EXT,
    &sctp::EXT,
    &connbytes::EXT,
    &connlimit::EXT4,
    &connlimit::EXT6,
    &dccp::EXT,
    &tcpmss_match::EXT,
    &recent::EXT4,
    &recent::EXT6,
    &string::EXT,
    &mh::EXT,
    &frag::EXT,
    &rt::EXT,
    &ipcomp::EXT,
    &eui64::EXT,
    &realm::EXT,
    &rpfilter::EXT,
    &socket::EXT,
    &cgroup::EXT,
    &connlabel::EXT,
    &nfacct::EXT,
    &u32::EXT,
    &bpf::EXT,
    &ipvs::EXT,
    &cluster::EXT,
    &exthdr::DST,
    &exthdr::HBH,
    &exthdr::IPV6HEADER,
    &osf::EXT,
    &hashlimit::EXT,
    &policy::EXT,
    &time::EXT,
];

/// Every typed target module (`-j NAME`) other than the built-in verdicts and chain jumps.
pub static TARGETS: &[&Ext] = &[
    &log::EXT,
    &reject::EXT4,
    &reject::EXT6,
    &mark::TARGET,
    &nflog::EXT,
    &tcpmss::EXT,
    &nat::SNAT,
    &nat::DNAT,
    &nat::MASQUERADE,
    &nat::REDIRECT,
    &simple_targets::CHECKSUM,
    &simple_targets::NOTRACK,
    &simple_targets::TRACE,
    &simple_targets::CT,
    &tos_dscp::TOS_TARGET,
    &tos_dscp::DSCP_TARGET,
    &ttl::TTL_TARGET,
    &ttl::HL_TARGET,
    &netmap::EXT,
    &classify::EXT,
    &secmark::EXT,
    &connsecmark::EXT,
    &audit::EXT,
    &connmark_target::EXT,
    &nfqueue::EXT,
    &tcpoptstrip::EXT,
    &npt::DNPT,
    &npt::SNPT,
    &tee::EXT,
    &tproxy::EXT,
    &ecn_target::EXT,
    &idletimer::EXT,
    &led::EXT,
    &synproxy::EXT,
];

/// Match modules iptables ships that are not typed here: accepted, options kept verbatim.
pub static GENERIC_MATCHES: &[&str] = &["devgroup", "rateest", "srh", "udplite"];

/// Targets iptables ships that are not typed here.
pub static GENERIC_TARGETS: &[&str] = &["HMARK", "RATEEST", "SET", "ULOG"];

fn family_ok(e: &Ext, f: Family) -> bool {
    e.family.is_none_or(|x| x == f)
}

/// The typed match module `-m name` of family `f` (`None`: unknown, generic or of the other family).
pub fn find_match(name: &str, f: Family) -> Option<&'static Ext> {
    MATCHES
        .iter()
        .copied()
        .find(|e| e.name == name && family_ok(e, f))
}

/// The typed target module `-j name` of family `f` (`None`: unknown, generic, of the other family, or
/// a chain name).
pub fn find_target(name: &str, f: Family) -> Option<&'static Ext> {
    TARGETS
        .iter()
        .copied()
        .find(|e| e.name == name && family_ok(e, f))
}

/// The match `-p NAME` loads implicitly when one of its options follows.
pub fn implicit_match(proto: u8, f: Family) -> Option<&'static Ext> {
    let name = match (proto, f) {
        (6, _) => "tcp",
        (17, _) => "udp",
        (1, Family::V4) => "icmp",
        (58, Family::V6) => "icmp6",
        (50, _) => "esp",
        (51, _) => "ah",
        (132, _) => "sctp",
        (33, _) => "dccp",
        (108, _) => "ipcomp",
        (135, Family::V6) => "mh",
        _ => return None,
    };
    find_match(name, f)
}

// ---- shared value parsers and printers ----

/// libxtables' `xtables_strtoul` with base 0 (decimal, `0x` hex, leading-0 octal), at most `max`: the one
/// number reader of every module ([`values::strtoul`]).
pub fn uint(s: &str, max: u64) -> Option<u64> {
    values::strtoul(s, max)
}

/// The `E0320` error for `s` not being a number `0..=max`; `what` names the value (`port`, `mark`).
pub fn num_err(what: &str, s: &str, max: u64) -> ValErr {
    (
        "E0320",
        format!("invalid {what} `{s}` (a number 0-{max} is expected)"),
    )
}

/// One number 0..=max.
///
/// # Errors
/// `E0320` ([`num_err`]) when `args[0]` is not a number or exceeds `max`.
pub fn parse_uint(args: &[&str], max: u64, what: &str) -> Result<Val, ValErr> {
    uint(args[0], max)
        .map(Val::Num)
        .ok_or_else(|| num_err(what, args[0], max))
}

/// `a`, `a:b`, `:b`, `a:`, `:` with bounds 0..=max (`sep` is `:` or `-`).
///
/// # Errors
/// `E0320` ([`num_err`]) when a bound is not a number or exceeds `max`.
pub fn parse_range(s: &str, max: u64, sep: char, what: &str) -> Result<(u64, u64), ValErr> {
    let bad = || num_err(what, s, max);
    match s.split_once(sep) {
        None => {
            let v = uint(s, max).ok_or_else(bad)?;
            Ok((v, v))
        }
        Some((a, b)) => {
            let lo = if a.is_empty() {
                0
            } else {
                uint(a, max).ok_or_else(bad)?
            };
            let hi = if b.is_empty() {
                max
            } else {
                uint(b, max).ok_or_else(bad)?
            };
            if lo > hi {
                return Err(("E0305", format!("invalid {what} range `{s}` (min > max)")));
            }
            Ok((lo, hi))
        }
    }
}

fn port_range_of(args: &[&str], proto: &str) -> Result<Val, ValErr> {
    values::parse_port_range(args[0], Some(proto)).map(|(lo, hi)| Val::Range(lo.into(), hi.into()))
}

/// `--sport`/`--dport` of `-m tcp` (`xtables_parse_port` with service names of protocol tcp).
///
/// # Errors
/// `E0304` for a bad port or service, `E0305` for a range with min > max ([`values::parse_port_range`]).
pub fn tcp_ports(args: &[&str], _f: Family) -> Result<Val, ValErr> {
    port_range_of(args, "tcp")
}

/// The xtopt port options of iptables 1.8.9 (`XTTYPE_PORTRC`): decimal numbers, services of any protocol
/// ([`values::parse_port_getaddrinfo`]).
///
/// # Errors
/// `E0304` for a bad port or service, `E0305` for a range with min > max.
pub fn xtopt_port_range(args: &[&str], _f: Family) -> Result<Val, ValErr> {
    values::parse_port_range_getaddrinfo(args[0]).map(|(lo, hi)| Val::Range(lo.into(), hi.into()))
}

/// `--sport`/`--dport` of `-m udp` (libxt_udp: `XTTYPE_PORTRC`, so `022` is 22, not 18 as for tcp).
///
/// # Errors
/// As [`xtopt_port_range`].
pub fn udp_ports(args: &[&str], f: Family) -> Result<Val, ValErr> {
    xtopt_port_range(args, f)
}

/// `--sport`/`--dport` of `-m sctp`.
///
/// # Errors
/// As [`tcp_ports`] (services of protocol sctp).
pub fn sctp_ports(args: &[&str], _f: Family) -> Result<Val, ValErr> {
    port_range_of(args, "sctp")
}

/// `--sport`/`--dport` of `-m dccp` (libxt_dccp: `XTTYPE_PORTRC`, decimal like udp).
///
/// # Errors
/// As [`xtopt_port_range`].
pub fn dccp_ports(args: &[&str], f: Family) -> Result<Val, ValErr> {
    xtopt_port_range(args, f)
}

/// A port number or a service name of any protocol (`xtables_parse_port(s, NULL)`, the targets' ports).
pub fn port_or_service(s: &str) -> Option<u64> {
    values::parse_port(s, None).ok().map(u64::from)
}

/// `a` or `a:b` (a single value when equal).
pub fn fmt_range(out: &mut String, lo: u64, hi: u64) {
    if lo == hi {
        out.push_str(&format!(" {lo}"));
    } else {
        out.push_str(&format!(" {lo}:{hi}"));
    }
}

/// libxtables' `xtables_save_string`: bare when only `[A-Za-z0-9_-]`, else double-quoted with `"`, `\`
/// and `'` escaped.
pub fn save_string(out: &mut String, s: &str) {
    out.push(' ');
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        out.push_str(s);
        return;
    }
    out.push('"');
    for c in s.chars() {
        if matches!(c, '"' | '\\' | '\'') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// ` [!] --name` for a given option.
pub fn opt_head(out: &mut String, g: &Given) {
    if g.neg {
        out.push_str(" !");
    }
    out.push_str(" --");
    out.push_str(g.name);
}

/// Print one value in the default style.
pub fn fmt_val(out: &mut String, v: &Val) {
    match v {
        Val::Flag => {}
        Val::Num(n) => out.push_str(&format!(" {n}")),
        Val::Range(a, b) => fmt_range(out, *a, *b),
        Val::Ranges(rs) => {
            let parts: Vec<String> = rs
                .iter()
                .map(|&(a, b)| {
                    if a == b {
                        a.to_string()
                    } else {
                        format!("{a}:{b}")
                    }
                })
                .collect();
            out.push(' ');
            out.push_str(&parts.join(","));
        }
        Val::Text(t) => save_string(out, t),
        Val::Word(w) => {
            out.push(' ');
            out.push_str(w);
        }
        Val::Masked(v, m) => out.push_str(&format!(" 0x{v:x}/0x{m:x}")),
        Val::Bits(b) => out.push_str(&format!(" 0x{b:x}")),
        Val::Pair(a, b) => {
            fmt_val(out, a);
            fmt_val(out, b);
        }
    }
}

/// Default printer: the given options in the module's declaration order.
pub fn save_in_order(inst: &Inst, out: &mut String) {
    for def in inst.ext.opts {
        for g in inst.given.iter().filter(|g| g.name == def.name) {
            opt_head(out, g);
            fmt_val(out, &g.val);
        }
    }
}

/// No check beyond the per-option ones.
///
/// # Errors
/// Never.
pub fn no_check(_: &Inst, _: &RuleCtx) -> Result<(), (String, Option<&'static str>)> {
    Ok(())
}

/// Fail unless at least one of `names` is given.
///
/// # Errors
/// "`MODULE` needs one of --a, --b" (no option to point at) when none of `names` is given.
pub fn need_one(inst: &Inst, names: &[&str]) -> Result<(), (String, Option<&'static str>)> {
    if names.iter().any(|n| inst.has(n)) {
        Ok(())
    } else {
        let list: Vec<String> = names.iter().map(|n| format!("--{n}")).collect();
        Err((
            format!(
                "`{}` needs {}{}",
                inst.ext.name,
                if names.len() > 1 { "one of " } else { "" },
                list.join(", ")
            ),
            None,
        ))
    }
}

/// Fail when two of `names` are given together.
///
/// # Errors
/// "`--a` and `--b` cannot be combined", pointing at the second, for the first two given.
pub fn exclusive(
    inst: &Inst,
    names: &[&'static str],
) -> Result<(), (String, Option<&'static str>)> {
    let given: Vec<&&str> = names.iter().filter(|n| inst.has(n)).collect();
    if given.len() > 1 {
        return Err((
            format!("`--{}` and `--{}` cannot be combined", given[0], given[1]),
            Some(given[1]),
        ));
    }
    Ok(())
}

/// A comma-separated list of names mapped to bits (case-insensitive).
///
/// # Errors
/// `E0320` naming the first unknown name and listing the known ones.
pub fn parse_bits(s: &str, names: &[(&str, u32)], what: &str) -> Result<u32, ValErr> {
    let mut bits = 0;
    for part in s.split(',') {
        match names.iter().find(|(n, _)| n.eq_ignore_ascii_case(part)) {
            Some(&(_, b)) => bits |= b,
            None => {
                let all: Vec<&str> = names.iter().map(|(n, _)| *n).collect();
                return Err((
                    "E0320",
                    format!("unknown {what} `{part}` (one of {})", all.join(", ")),
                ));
            }
        }
    }
    Ok(bits)
}

/// Names of the set bits, in table order, comma-joined.
pub fn fmt_bits(bits: u32, names: &[(&str, u32)]) -> String {
    let mut v = Vec::new();
    let mut seen = 0;
    for &(n, b) in names {
        if bits & b == b && b != 0 && seen & b == 0 {
            v.push(n);
            seen |= b;
        }
    }
    v.join(",")
}
