//! Lowering: iptables-save AST → IR.
//!
//! What this stage guarantees: the returned [`Ruleset`] has exactly one chain, `c0 INPUT` (hook input,
//! with a policy), holding every `-A INPUT` rule of the `filter` table in order, and passes
//! [`crate::ir::verify`]. Every option of an INPUT rule is either compiled into a [`Match`], the action or
//! the comment, or reported as an error: nothing is dropped silently. All errors of the file are reported
//! at once; `Err` carries every diagnostic (at least one error).
//!
//! What it throws away: rules of other chains and tables (parsed and grammar-checked, then summarised by
//! one `N0001` note per chain), option order and spelling, `-m tcp`/`-m udp` module names (kept only as
//! the constraints they impose: `proto` exact, and a `dst_port` 0-65535 match when the module has no port
//! option, because the tcp/udp match still fails on packets without ports), host bits of addresses
//! (masked like iptables does, with warning `W0001`), `-p all`/`-p 0` (no constraint). Several
//! `-m comment --comment` of one rule are joined with `"; "`.
//!
//! Deliberate differences from iptables-restore: a repeated match option is an error (iptables would AND
//! two instances of the same match; the IR has one match per field); a built-in chain used without a chain
//! line is accepted, as iptables-restore does, with warning `W0003` (policy assumed ACCEPT).
//!
//! Codes: `E02xx` "not supported yet", `E03xx` semantic errors, `W0xxx` warnings, `N0xxx` notes; the
//! parser's `E01xx` pass through. docs/diagnostics.md lists them all.
use crate::diag::{Diagnostic, SourceFile, Span};
use crate::ir::{
    self, Action, Chain, ChainId, Field, Hook, Match, Rule, RuleId, Ruleset, Test, Verdict,
};
use crate::syntax::iptables::{
    self as syn, Opt, OptKind, Policy, Proto, RuleLine, TableKind, Value, ValueError,
};
use std::collections::HashMap;

mod migrate;
pub use migrate::{migrate, Migration, RuleReport, RuleStatus, TableReport};

/// The feature list every "not supported yet" diagnostic repeats.
pub const SUPPORTED: &str =
    "supported in this version: -s, -d, -p, -m tcp/udp --sport/--dport, -m comment --comment, -j ACCEPT/DROP";

/// iptables' comment match stores at most 255 bytes (XT_MAX_COMMENT_LEN 256 with the NUL).
pub const MAX_COMMENT_LEN: usize = 255;

/// A successfully lowered file.
#[derive(Clone, Debug)]
pub struct Lowered {
    pub ruleset: Ruleset,
    /// Warnings and notes (no errors).
    pub diagnostics: Vec<Diagnostic>,
}

/// Parse and lower an iptables-save / iptables-restore file. Err carries ALL diagnostics (>= 1 error).
pub fn iptables(src: &SourceFile) -> Result<Lowered, Vec<Diagnostic>> {
    let (ast, mut diags) = syn::parse(src);
    let ruleset = lower_ast(&ast, &mut diags);
    // Stable: same-position diagnostics keep the order they were found in; unlocated ones go last.
    diags.sort_by_key(|d| d.span.map(|s| s.start).unwrap_or(u32::MAX));
    if diags.iter().any(Diagnostic::is_error) {
        return Err(diags);
    }
    if let Err(e) = ir::verify(&ruleset) {
        // A bug in this module, not a user error; report it as a located-free internal error.
        debug_assert!(false, "{e}");
        return Err(vec![Diagnostic::error(
            "E0999",
            format!("internal compiler error: {e}"),
        )]);
    }
    Ok(Lowered {
        ruleset,
        diagnostics: diags,
    })
}

/// Lower a parsed file; problems are appended to `diags`.
pub fn lower_ast(ast: &syn::Ast, diags: &mut Vec<Diagnostic>) -> Ruleset {
    let filter = ast.table(TableKind::Filter);
    let decl = filter.and_then(|t| t.chain("INPUT"));
    let first_rule = filter.and_then(|t| t.rules_of("INPUT").next());
    // The policy warnings below are noise when the file is rejected anyway (e.g. the `:INPUT` line itself
    // had an error), so they are kept only for files without errors so far.
    let had_errors = diags.iter().any(Diagnostic::is_error);
    let mut policy_warnings = Vec::new();
    let policy = match (filter, decl) {
        (_, Some(d)) => {
            match d.policy {
                Policy::Accept => Verdict::Accept,
                Policy::Drop => Verdict::Drop,
                Policy::None => {
                    policy_warnings.push(
                    Diagnostic::warning("W0003", "INPUT policy `-` keeps the kernel's current policy; assuming ACCEPT")
                        .at(d.policy_token.span)
                        .help("write the policy explicitly: `:INPUT ACCEPT [0:0]` or `:INPUT DROP [0:0]`"),
                );
                    Verdict::Accept
                }
            }
        }
        (Some(_), None) if first_rule.is_some() => {
            let r = first_rule.expect("checked");
            policy_warnings.push(
                Diagnostic::warning("W0003", "no `:INPUT` chain line; assuming policy ACCEPT")
                    .at(r.chain.span)
                    .help("iptables-restore keeps the kernel's current policy; declare it: `:INPUT DROP [0:0]`"),
            );
            Verdict::Accept
        }
        (Some(t), None) => {
            policy_warnings.push(
                Diagnostic::warning("W0002", "table `filter` has no INPUT chain; INPUT accepts everything")
                    .at(t.span)
                    .help("add `:INPUT ACCEPT [0:0]` (or DROP) and `-A INPUT …` rules to filter incoming traffic"),
            );
            Verdict::Accept
        }
        (None, _) => {
            policy_warnings.push(
                Diagnostic::warning("W0002", "no `*filter` table; INPUT accepts everything")
                    .help("tailwall enforces the filter table's INPUT chain; add a `*filter` … `COMMIT` block"),
            );
            Verdict::Accept
        }
    };
    if !had_errors {
        diags.extend(policy_warnings);
    }
    let span = decl
        .map(|d| d.span)
        .or(filter.map(|t| t.span))
        .unwrap_or_default();
    let mut chain = Chain {
        id: ChainId(0),
        name: "INPUT".into(),
        hook: Some(Hook::Input),
        policy: Some(policy),
        rules: Vec::new(),
        span,
    };
    if let Some(t) = filter {
        for (i, line) in t.rules_of("INPUT").enumerate() {
            if let Some(rule) = lower_rule(line, i as u32, diags) {
                chain.rules.push(rule);
            }
        }
    }
    note_ignored(ast, diags);
    Ruleset {
        chains: vec![chain],
        sets: Vec::new(),
    }
}

/// One `N0001` note per (table, chain) other than filter/INPUT that has rules.
fn note_ignored(ast: &syn::Ast, diags: &mut Vec<Diagnostic>) {
    for t in &ast.tables {
        // (chain, where to point, rule count), in order of first appearance; linear in the table's size.
        let mut order: Vec<(&str, Span, usize)> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        for c in &t.chains {
            index.insert(&c.name.text, order.len());
            order.push((&c.name.text, c.span, 0));
        }
        for r in &t.rules {
            let i = *index.entry(&r.chain.text).or_insert_with(|| {
                order.push((&r.chain.text, r.span, 0));
                order.len() - 1
            });
            order[i].2 += 1;
        }
        for (name, at, n) in order {
            if n == 0 || (t.kind == TableKind::Filter && name == "INPUT") {
                continue;
            }
            let table = t.kind.name();
            let rules = if n == 1 { "rule" } else { "rules" };
            diags.push(
                Diagnostic::note(
                    "N0001",
                    format!("{n} {rules} in {table}/{name} not enforced: this version enforces filter/INPUT"),
                )
                .at(at),
            );
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Module {
    Tcp,
    Udp,
    Comment,
}

impl Module {
    fn proto(self) -> Option<u8> {
        match self {
            Module::Tcp => Some(syn::values::PROTO_TCP),
            Module::Udp => Some(syn::values::PROTO_UDP),
            Module::Comment => None,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Module::Tcp => "tcp",
            Module::Udp => "udp",
            Module::Comment => "comment",
        }
    }
}

fn value_span(opt: &Opt) -> Span {
    opt.args.first().map(|a| a.span).unwrap_or(opt.span)
}

fn value_error(e: &ValueError, opt: &Opt) -> Diagnostic {
    let at = value_span(opt);
    let d = |code| Diagnostic::error(code, format!("{e} in `{}`", opt.name())).at(at);
    match e {
        ValueError::Hostname(_) => d("E0301")
            .label("host name")
            .help("tailwall does not resolve host names (iptables-save prints addresses); write the address, e.g. `-s 192.0.2.10`"),
        ValueError::BadAddress(a) if a.contains(':') => d("E0301")
            .label("IPv6 address")
            .help("IPv6 rules belong in ip6tables-save files; IPv6 is not supported yet"),
        ValueError::BadAddress(_) => d("E0301").help("write a dotted-quad IPv4 address, optionally with /LEN or /MASK, e.g. 10.0.0.0/8"),
        ValueError::AddressList(_) => d("E0206").help("write one rule per address"),
        ValueError::BadMask(_) => d("E0302").help("a prefix length is 0-32; a mask is dotted, e.g. /255.255.255.0"),
        ValueError::NonContiguousMask(_) => {
            d("E0207").help("use a contiguous mask such as /255.255.255.0 (a prefix length)")
        }
        ValueError::BadProto(_) => d("E0303").help(
            "use a protocol number 0-255, `all`, or a name from /etc/protocols such as tcp, udp, icmp, esp, ah, gre, sctp",
        ),
        ValueError::ServiceName(_) => d("E0304")
            .label("service name")
            .help("tailwall does not read /etc/services; write the port number, e.g. `--dport 22`"),
        ValueError::BadPort(_) => d("E0304").help("a port spec is N, A:B, :B or A: with ports 0-65535"),
        ValueError::PortOutOfRange(_) => d("E0304").help("ports are 0-65535"),
        ValueError::PortRangeReversed(_) => d("E0305").help("write the smaller port first, e.g. 1000:2000"),
    }
}

fn unsupported(code: &'static str, what: String, opt: &Opt) -> Diagnostic {
    Diagnostic::error(code, format!("{what} is not supported yet"))
        .at(opt.span)
        .help(SUPPORTED)
}

/// Lower one `-A INPUT` rule; `None` if it has errors (all pushed to `diags`).
fn lower_rule(line: &RuleLine, index: u32, diags: &mut Vec<Diagnostic>) -> Option<Rule> {
    let mut errs: Vec<Diagnostic> = Vec::new();
    let mut matches: Vec<Match> = Vec::new();
    let mut first_of: Vec<(Field, Span, String)> = Vec::new();
    let mut proto: Option<(Proto, bool, &Opt)> = None;
    let mut proto_seen: Option<&Opt> = None;
    // Explicit `-m tcp|udp|comment`, and tcp/udp loaded implicitly by a port option after `-p tcp|udp`.
    let mut modules: Vec<(Module, &Opt)> = Vec::new();
    let mut implicit: Option<(Module, &Opt)> = None;
    let mut action: Option<Action> = None;
    let mut target: Option<&Opt> = None;
    // An unsupported match module or target is loaded: its options were reported with it.
    let mut foreign = false;
    let mut comments: Vec<String> = Vec::new();

    let mut add = |field: Field,
                   test: Test,
                   opt: &Opt,
                   errs: &mut Vec<Diagnostic>,
                   matches: &mut Vec<Match>| {
        if let Some((_, _, flag)) = first_of.iter().find(|(f, _, _)| *f == field) {
            errs.push(
                Diagnostic::error("E0306", format!("multiple {} flags not allowed", opt.name()))
                    .at(opt.span)
                    .label(format!("{field} is already matched by an earlier `{flag}`"))
                    .help("iptables accepts each option once per rule; split the rule or use a prefix/range"),
            );
            return;
        }
        first_of.push((field, opt.span, opt.name().to_string()));
        matches.push(Match {
            field,
            tests: vec![test],
            negated: opt.negated.is_some(),
            set: None,
            span: opt.span,
        });
    };
    let no_negation = |opt: &Opt, errs: &mut Vec<Diagnostic>| {
        if let Some(n) = opt.negated {
            errs.push(
                Diagnostic::error(
                    "E0310",
                    format!("`!` cannot be applied to `{}`", opt.name()),
                )
                .at(n)
                .label("remove this `!`"),
            );
        }
    };

    for opt in &line.options {
        match opt.kind {
            OptKind::Source | OptKind::Destination => {
                let field = if opt.kind == OptKind::Source {
                    Field::SrcIp
                } else {
                    Field::DstIp
                };
                match &opt.value {
                    Value::Addr(a) => {
                        if a.has_host_bits() {
                            let net = std::net::Ipv4Addr::from(a.network());
                            diags.push(
                                Diagnostic::warning(
                                    "W0001",
                                    format!(
                                        "`{}` has host bits set; iptables uses {net}/{}",
                                        opt.args[0].text, a.len
                                    ),
                                )
                                .at(value_span(opt))
                                .label("host bits masked")
                                .help(format!("write `{net}/{}`", a.len)),
                            );
                        }
                        add(
                            field,
                            Test::Prefix {
                                addr: a.network(),
                                len: a.len,
                            },
                            opt,
                            &mut errs,
                            &mut matches,
                        );
                    }
                    Value::Bad(e) => errs.push(value_error(e, opt)),
                    _ => {}
                }
            }
            OptKind::Protocol => {
                if let Some(first) = proto_seen {
                    errs.push(
                        Diagnostic::error(
                            "E0306",
                            format!("multiple {} flags not allowed", opt.name()),
                        )
                        .at(opt.span)
                        .label(format!("`{}` already given", first.flag.text)),
                    );
                    continue;
                }
                proto_seen = Some(opt);
                match &opt.value {
                    Value::Proto(Proto::All) if opt.negated.is_some() => errs.push(
                        Diagnostic::error(
                            "E0310",
                            format!("`! {} {}` never matches", opt.name(), opt.args[0].text),
                        )
                        .at(opt.span)
                        .help("iptables rejects this rule: \"rule would never match protocol\""),
                    ),
                    Value::Proto(p) => {
                        proto = Some((*p, opt.negated.is_some(), opt));
                        if let Proto::Number(n) = p {
                            add(
                                Field::Proto,
                                Test::Exact(*n as u32),
                                opt,
                                &mut errs,
                                &mut matches,
                            );
                        }
                    }
                    Value::Bad(e) => errs.push(value_error(e, opt)),
                    _ => {}
                }
            }
            OptKind::Match => {
                no_negation(opt, &mut errs);
                let name = opt.args.first().map(|a| a.text.as_str()).unwrap_or("");
                match name {
                    "tcp" => modules.push((Module::Tcp, opt)),
                    "udp" => modules.push((Module::Udp, opt)),
                    "comment" => modules.push((Module::Comment, opt)),
                    _ => {
                        foreign = true;
                        errs.push(unsupported(
                            "E0202",
                            format!("match module `-m {name}`"),
                            opt,
                        ));
                    }
                }
            }
            OptKind::Jump => {
                no_negation(opt, &mut errs);
                if let Some(first) = target {
                    errs.push(
                        Diagnostic::error(
                            "E0311",
                            format!("multiple {} flags not allowed", opt.name()),
                        )
                        .at(opt.span)
                        .label(format!(
                            "target already given by `{} {}`",
                            first.flag.text, first.args[0].text
                        )),
                    );
                    continue;
                }
                target = Some(opt);
                match opt.args[0].text.as_str() {
                    "ACCEPT" => action = Some(Action::Accept),
                    "DROP" => action = Some(Action::Drop),
                    t => {
                        foreign = true;
                        errs.push(unsupported("E0203", format!("target `-j {t}`"), opt));
                    }
                }
            }
            OptKind::Goto => {
                no_negation(opt, &mut errs);
                if let Some(first) = target {
                    errs.push(
                        Diagnostic::error(
                            "E0311",
                            format!("multiple {} flags not allowed", opt.name()),
                        )
                        .at(opt.span)
                        .label(format!("target already given by `{}`", first.flag.text)),
                    );
                    continue;
                }
                target = Some(opt);
                foreign = true;
                errs.push(unsupported(
                    "E0203",
                    format!("`{} {}`", opt.name(), opt.args[0].text),
                    opt,
                ));
            }
            OptKind::InInterface
            | OptKind::OutInterface
            | OptKind::Fragment
            | OptKind::SetCounters => {
                errs.push(unsupported(
                    "E0201",
                    format!("option `{}`", opt.name()),
                    opt,
                ));
            }
            OptKind::SourcePort | OptKind::DestinationPort => {
                let owner = modules
                    .iter()
                    .find(|(m, _)| m.proto().is_some())
                    .copied()
                    .or(implicit);
                let owner = owner.or_else(|| match proto {
                    Some((Proto::Number(n @ (6 | 17)), false, p)) => {
                        implicit = Some((if n == 6 { Module::Tcp } else { Module::Udp }, p));
                        implicit
                    }
                    _ => None,
                });
                if owner.is_none() {
                    if !foreign {
                        errs.push(
                            Diagnostic::error(
                                "E0308",
                                format!(
                                    "option `{}` needs `-p tcp` or `-p udp` before it",
                                    opt.name()
                                ),
                            )
                            .at(opt.flag.span)
                            .label("unknown option without a tcp/udp match")
                            .help(format!("write `-p tcp -m tcp {} …` (or udp)", opt.name())),
                        );
                    }
                    continue;
                }
                let field = if opt.kind == OptKind::SourcePort {
                    Field::SrcPort
                } else {
                    Field::DstPort
                };
                match &opt.value {
                    Value::Ports(p) => add(
                        field,
                        Test::Range {
                            lo: p.lo as u32,
                            hi: p.hi as u32,
                        },
                        opt,
                        &mut errs,
                        &mut matches,
                    ),
                    Value::Bad(e) => errs.push(value_error(e, opt)),
                    _ => {}
                }
            }
            OptKind::Comment => {
                if !modules.iter().any(|(m, _)| *m == Module::Comment) {
                    if !foreign {
                        errs.push(
                            Diagnostic::error(
                                "E0308",
                                "option `--comment` needs `-m comment` before it",
                            )
                            .at(opt.flag.span)
                            .help("write `-m comment --comment TEXT`"),
                        );
                    }
                    continue;
                }
                no_negation(opt, &mut errs);
                let text = &opt.args[0].text;
                if text.len() > MAX_COMMENT_LEN {
                    errs.push(
                        Diagnostic::error("E0309", format!("comment is {} bytes long; iptables allows at most {MAX_COMMENT_LEN}", text.len()))
                            .at(value_span(opt))
                            .help("shorten the comment"),
                    );
                } else {
                    comments.push(text.clone());
                }
            }
            OptKind::TcpFlags | OptKind::Syn | OptKind::TcpOption => {
                let tcp = modules.iter().any(|(m, _)| *m == Module::Tcp)
                    || matches!(proto, Some((Proto::Number(6), false, _)));
                if tcp {
                    errs.push(unsupported(
                        "E0201",
                        format!("tcp option `{}`", opt.name()),
                        opt,
                    ));
                } else if !foreign {
                    errs.push(
                        Diagnostic::error(
                            "E0308",
                            format!("option `{}` needs `-p tcp` before it", opt.name()),
                        )
                        .at(opt.flag.span)
                        .label("unknown option without a tcp match"),
                    );
                }
            }
            OptKind::Other => {
                if !foreign {
                    errs.push(unsupported(
                        "E0201",
                        format!("option `{}`", opt.name()),
                        opt,
                    ));
                }
            }
        }
    }

    if target.is_none() {
        errs.push(
            Diagnostic::error("E0204", "a rule without `-j` is not supported yet")
                .at(line.span)
                .label("no target")
                .help("add `-j ACCEPT` or `-j DROP`"),
        );
    }
    // The kernel's tcp/udp match requires the rule to match exactly that protocol, not negated.
    for &(m, opt) in &modules {
        let Some(want) = m.proto() else { continue };
        let name = m.name();
        let problem = match proto {
            Some((Proto::Number(n), false, _)) if n == want => None,
            Some((_, true, _)) => Some(format!("`-m {name}` requires `-p {name}` without `!`")),
            Some((_, false, p)) => Some(format!(
                "`-m {name}` conflicts with `{} {}`",
                p.flag.text, p.args[0].text
            )),
            None => Some(format!("`-m {name}` requires `-p {name}`")),
        };
        if let Some(msg) = problem {
            errs.push(Diagnostic::error("E0307", msg).at(opt.span).help(format!(
                "the kernel rejects a {name} match unless the rule matches protocol {name}: write `-p {name} -m {name}`"
            )));
        }
    }
    if !errs.is_empty() {
        diags.extend(errs);
        return None;
    }
    // A tcp/udp match without port options still fails on packets without ports (non-first fragments)
    // and drops truncated headers: keep it as a full-range port test.
    let l4 = modules
        .iter()
        .find(|(m, _)| m.proto().is_some())
        .copied()
        .or(implicit);
    if let Some((_, opt)) = l4 {
        if !matches.iter().any(|m| m.field.info().transport) {
            matches.push(Match {
                field: Field::DstPort,
                tests: vec![Test::Range { lo: 0, hi: 65535 }],
                negated: false,
                set: None,
                span: opt.span,
            });
        }
    }
    matches.sort_by_key(|m| m.field);
    let Some(action) = action else {
        // Unreachable: every target other than ACCEPT/DROP was reported above. Never drop a rule silently.
        diags.push(
            Diagnostic::error("E0999", "internal compiler error: rule without an action")
                .at(line.span),
        );
        return None;
    };
    Some(Rule {
        id: RuleId(index),
        chain: ChainId(0),
        position: index + 1,
        matches,
        action,
        comment: if comments.is_empty() {
            None
        } else {
            Some(comments.join("; "))
        },
        counters: line.counters.map(|c| (c.packets, c.bytes)),
        span: line.span,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lower(text: &str) -> Result<Lowered, Vec<Diagnostic>> {
        iptables(&SourceFile::new("t.rules", text))
    }
    fn rule(line: &str) -> Result<Lowered, Vec<Diagnostic>> {
        lower(&format!("*filter\n:INPUT DROP [0:0]\n{line}\nCOMMIT\n"))
    }
    fn dump(line: &str) -> String {
        rule(line)
            .unwrap_or_else(|d| panic!("{d:?}"))
            .ruleset
            .dump()
    }
    fn err_codes(line: &str) -> Vec<&'static str> {
        rule(line)
            .unwrap_err()
            .iter()
            .filter(|d| d.is_error())
            .map(|d| d.code)
            .collect()
    }

    #[test]
    fn lower_compiles_basic_options() {
        assert_eq!(
            dump("-A INPUT -s 10.0.0.0/8 ! -d 1.2.3.4 -p tcp -m tcp --sport 1024: --dport 22 -j ACCEPT"),
            "chain c0 INPUT hook=input policy=drop\n  r0 #1 src_ip 10.0.0.0/8 dst_ip ! 1.2.3.4/32 proto 6 src_port 1024-65535 dst_port 22 -> accept\n"
        );
    }

    #[test]
    fn lower_bare_tcp_module_keeps_transport_constraint() {
        assert!(dump("-A INPUT -p tcp -m tcp -j DROP").contains("proto 6 dst_port 0-65535 -> drop"));
        assert!(dump("-A INPUT -p tcp -j DROP").contains("proto 6 -> drop"));
        assert!(
            dump("-A INPUT -p udp --dport 53 -j ACCEPT").contains("proto 17 dst_port 53 -> accept")
        );
    }

    #[test]
    fn lower_proto_all_is_unconstrained() {
        assert!(dump("-A INPUT -p all -j DROP").contains("r0 #1 -> drop"));
        assert!(dump("-A INPUT -p 0 -j DROP").contains("r0 #1 -> drop"));
    }

    #[test]
    fn lower_reports_semantic_errors() {
        assert_eq!(
            err_codes("-A INPUT -p udp -m tcp --dport 1 -j DROP"),
            ["E0307"]
        );
        assert_eq!(err_codes("-A INPUT -m tcp -j DROP"), ["E0307"]);
        assert_eq!(err_codes("-A INPUT ! -p tcp -m tcp -j DROP"), ["E0307"]);
        assert_eq!(err_codes("-A INPUT --dport 22 -j DROP"), ["E0308"]);
        assert_eq!(
            err_codes("-A INPUT -s 1.1.1.1 -s 2.2.2.2 -j DROP"),
            ["E0306"]
        );
        assert_eq!(err_codes("-A INPUT -j DROP -j ACCEPT"), ["E0311"]);
        assert_eq!(err_codes("-A INPUT ! -p all -j DROP"), ["E0310"]);
        assert_eq!(err_codes("-A INPUT -p tcp --dport 2:1 -j DROP"), ["E0305"]);
        assert_eq!(err_codes("-A INPUT -p tcp --dport ssh -j DROP"), ["E0304"]);
        assert_eq!(err_codes("-A INPUT -s example.com -j DROP"), ["E0301"]);
    }

    #[test]
    fn lower_reports_unsupported_features() {
        assert_eq!(err_codes("-A INPUT -i lo -j ACCEPT"), ["E0201"]);
        assert_eq!(
            err_codes("-A INPUT -m state --state NEW -j ACCEPT"),
            ["E0202"]
        );
        assert_eq!(
            err_codes("-A INPUT -j REJECT --reject-with tcp-reset"),
            ["E0203"]
        );
        assert_eq!(err_codes("-A INPUT -s 1.2.3.4"), ["E0204"]);
        assert_eq!(err_codes("-A INPUT -p tcp --syn -j DROP"), ["E0201"]);
        assert_eq!(
            err_codes("-A INPUT -p tcp -m multiport --dports 1,2 -j DROP"),
            ["E0202"]
        );
    }

    #[test]
    fn lower_masks_host_bits_with_warning() {
        let l = rule("-A INPUT -s 10.1.2.3/8 -j DROP").unwrap();
        assert!(l.ruleset.dump().contains("src_ip 10.0.0.0/8"));
        assert_eq!(l.diagnostics[0].code, "W0001");
    }

    #[test]
    fn lower_defaults_missing_input_to_accept() {
        let l = lower("*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j ACCEPT\nCOMMIT\n").unwrap();
        assert_eq!(
            l.ruleset.dump(),
            "chain c0 INPUT hook=input policy=accept\n"
        );
        let codes: Vec<_> = l.diagnostics.iter().map(|d| d.code).collect();
        assert_eq!(codes, ["N0001", "W0002"]);
    }
}
