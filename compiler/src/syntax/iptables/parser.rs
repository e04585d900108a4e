//! The line grammar of iptables-save / iptables-restore files (nom) and the restore commands applied while
//! reading: builds the [`Ast`] of [`super`], typing every rule line as it is read.
use super::rule::{self, detect_family, Place, Target};
use super::token::tokenize;
use super::{
    Ast, ChainDecl, Comment, Counters, Family, Policy, RuleLine, Table, TableKind, Token,
    MAX_CHAIN_NAME_LEN,
};
use crate::diag::{Diagnostic, SourceFile, Span};
use nom::{
    bytes::complete::take_while1,
    character::complete::{char, u64 as dec_u64},
    combinator::all_consuming,
    sequence::{delimited, preceded, separated_pair},
    IResult, Parser,
};
use std::collections::HashMap;

/// A restore command at the start of a rule line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Append,
    Insert,
    Delete,
    Replace,
    NewChain,
    Policy,
    Flush,
    DeleteChain,
    Zero,
    RenameChain,
}

impl Command {
    pub(super) fn from_flag(s: &str) -> Option<Command> {
        Some(match s {
            "-A" | "--append" => Command::Append,
            "-I" | "--insert" => Command::Insert,
            "-D" | "--delete" => Command::Delete,
            "-R" | "--replace" => Command::Replace,
            "-N" | "--new-chain" => Command::NewChain,
            "-P" | "--policy" => Command::Policy,
            "-F" | "--flush" => Command::Flush,
            "-X" | "--delete-chain" => Command::DeleteChain,
            "-Z" | "--zero" => Command::Zero,
            "-E" | "--rename-chain" => Command::RenameChain,
            _ => return None,
        })
    }
}

/// iptables sees arguments after unquoting, so a quoted `"-s"` is an option too.
fn is_flag(t: &Token) -> bool {
    t.text.len() >= 2 && t.text.starts_with('-')
}

// ---- line grammar (nom) ----

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn word(i: &str) -> IResult<&str, &str> {
    take_while1(|c: char| !is_blank(c)).parse(i)
}

/// `[packets:bytes]`.
fn counters(i: &str) -> IResult<&str, (u64, u64)> {
    delimited(
        char('['),
        separated_pair(dec_u64, char(':'), dec_u64),
        char(']'),
    )
    .parse(i)
}

/// `*name`.
fn table_header(i: &str) -> IResult<&str, &str> {
    all_consuming(preceded(char('*'), word)).parse(i)
}

/// Split on blanks, with the byte offset of each word within `s`.
fn words(s: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        let trimmed = rest.trim_start_matches(is_blank);
        if trimmed.is_empty() {
            return out;
        }
        let off = s.len() - trimmed.len();
        match word(trimmed) {
            Ok((r, w)) => {
                out.push((off, w));
                rest = r;
            }
            Err(_) => return out,
        }
    }
}

fn parse_counters(text: &str, span: Span) -> Result<Counters, Diagnostic> {
    match all_consuming(counters).parse(text) {
        Ok((_, (packets, bytes))) => Ok(Counters {
            packets,
            bytes,
            span,
        }),
        Err(_) => Err(
            Diagnostic::error("E0106", format!("invalid counters `{text}`"))
                .at(span)
                .label("expected [packets:bytes]")
                .help("counters are two unsigned 64-bit decimal numbers, e.g. [0:0]"),
        ),
    }
}

/// A chain name iptables-restore refuses: longer than [`MAX_CHAIN_NAME_LEN`] bytes ("Invalid chain name …
/// (28 chars max)"), or a standard target's name (libiptc: "Chain already exists").
fn bad_chain_name(name: &Token) -> Option<Diagnostic> {
    if name.text.len() > MAX_CHAIN_NAME_LEN {
        return Some(
            Diagnostic::error(
                "E0105",
                format!(
                    "chain name `{}` is {} bytes long; at most {MAX_CHAIN_NAME_LEN} are allowed",
                    name.text,
                    name.text.len()
                ),
            )
            .at(name.span)
            .help("iptables-restore refuses it: \"Invalid chain name (28 chars max)\"; shorten the name"),
        );
    }
    if rule::STANDARD_TARGETS.contains(&name.text.as_str()) {
        return Some(
            Diagnostic::error(
                "E0107",
                format!("`{}` is a standard target, not a chain name", name.text),
            )
            .at(name.span)
            .help("iptables refuses chains named ACCEPT, DROP, QUEUE or RETURN"),
        );
    }
    None
}

struct Parser1<'s> {
    src: &'s SourceFile,
    ast: Ast,
    diags: Vec<Diagnostic>,
    open: Option<Table>,
    /// Inside a table block whose header was rejected: skip to its `COMMIT` without further errors.
    skipping: bool,
    /// Chain name → index in the open table's `chains` (tables can have thousands of chains).
    chain_index: HashMap<String, usize>,
}

impl Parser1<'_> {
    /// Is `chain` declared by a `:chain` or `-N chain` line further down the file?
    fn declared_later(&self, chain: &str) -> bool {
        self.src.text.lines().any(|l| {
            let l = l.trim();
            l.strip_prefix(':')
                .and_then(|r| r.split_whitespace().next())
                .is_some_and(|n| n == chain)
                || l.strip_prefix("-N ").is_some_and(|n| n.trim() == chain)
        })
    }

    fn line(&mut self, start: usize, text: &str) {
        let lead = text.len() - text.trim_start_matches(is_blank).len();
        let body = text.trim_matches(is_blank);
        if body.is_empty() {
            return;
        }
        let start = start + lead;
        let span = Span::new(start, start + body.len());
        if self.skipping && !body.starts_with('*') {
            self.skipping = body != "COMMIT";
            return;
        }
        if !body.starts_with('#') && !body.starts_with('[') && !body.starts_with('-') {
            if let Some((i, c)) = body
                .char_indices()
                .find(|&(_, c)| crate::diag::raw_byte(c).is_some())
            {
                let b = crate::diag::raw_byte(c).unwrap_or(0);
                self.diags.push(
                    Diagnostic::error("E0118", format!("byte 0x{b:02x} is not UTF-8 text"))
                        .at(Span::new(start + i, start + i + c.len_utf8()))
                        .label("not UTF-8")
                        .help("bytes that are not UTF-8 are kept only inside a double-quoted argument (e.g. a `--comment`) or a `#` line"),
                );
                return;
            }
        }
        if let Some(c) = body.strip_prefix('#') {
            self.ast.comments.push(Comment {
                text: c.to_string(),
                span,
            });
        } else if body.starts_with('*') {
            self.table(start, body, span);
        } else if body.starts_with(':') {
            self.chain(start, body, span);
        } else if body == "COMMIT" {
            match self.open.take() {
                Some(mut t) => {
                    t.commit = Some(span);
                    self.ast.tables.push(t);
                }
                None => self.diags.push(
                    Diagnostic::error("E0101", "`COMMIT` outside a table")
                        .at(span)
                        .help("every table starts with a `*table` line, e.g. `*filter`"),
                ),
            }
        } else {
            self.rule(start, body, span);
        }
    }

    fn table(&mut self, start: usize, body: &str, span: Span) {
        self.skipping = true;
        if let Some(t) = self.open.take() {
            self.diags.push(
                Diagnostic::error("E0104", format!("COMMIT expected before `{}`", body))
                    .at(span)
                    .label("new table starts here")
                    .help(format!(
                        "end table `*{}` with a `COMMIT` line",
                        t.kind.name()
                    )),
            );
            self.ast.tables.push(t);
        }
        let name = match table_header(body) {
            Ok((_, n)) => n,
            Err(_) => {
                self.diags.push(
                    Diagnostic::error("E0102", format!("malformed table line `{body}`"))
                        .at(span)
                        .help("a table line is `*` and the table name, e.g. `*filter`"),
                );
                return;
            }
        };
        let name_span = Span::new(start + 1, start + 1 + name.len());
        let Some(kind) = TableKind::from_name(name) else {
            self.diags.push(
                Diagnostic::error("E0102", format!("unknown table `{name}`"))
                    .at(name_span)
                    .label("not a netfilter table")
                    .help("iptables tables are filter, nat, mangle, raw and security"),
            );
            return;
        };
        if let Some(prev) = self.ast.tables.iter().find(|t| t.kind == kind) {
            let (line, _) = self.src.line_col(prev.span.start as usize);
            self.diags.push(
                Diagnostic::error("E0103", format!("table `{name}` appears twice"))
                    .at(name_span)
                    .label(format!("first defined on line {line}"))
                    .help("merge the two blocks into one `*table` … `COMMIT` block"),
            );
            return;
        }
        self.skipping = false;
        self.chain_index.clear();
        self.open = Some(Table {
            kind,
            span,
            chains: Vec::new(),
            rules: Vec::new(),
            commit: None,
        });
    }

    fn no_table(&mut self, span: Span, what: &str) {
        self.diags.push(
            Diagnostic::error("E0101", format!("{what} before any `*table` line"))
                .at(span)
                .help("start the table with a line such as `*filter`"),
        );
    }

    fn chain(&mut self, start: usize, body: &str, span: Span) {
        let ws = words(&body[1..]);
        let tok = |(off, w): (usize, &str)| Token {
            text: w.to_string(),
            span: Span::new(start + 1 + off, start + 1 + off + w.len()),
            quoted: false,
        };
        let (Some(&name), Some(&policy)) = (ws.first(), ws.get(1)) else {
            self.diags.push(
                Diagnostic::error("E0105", "malformed chain line")
                    .at(span)
                    .help(
                        "a chain line is `:NAME POLICY [packets:bytes]`, e.g. `:INPUT DROP [0:0]`",
                    ),
            );
            return;
        };
        let (name, policy_token) = (tok(name), tok(policy));
        let counters = match ws.get(2) {
            None => None,
            Some(&c) => {
                let t = tok(c);
                match parse_counters(&t.text, t.span) {
                    Ok(c) => Some(c),
                    Err(d) => {
                        self.diags.push(d);
                        None
                    }
                }
            }
        };
        if let Some(&extra) = ws.get(3) {
            let t = tok(extra);
            self.diags.push(
                Diagnostic::error(
                    "E0105",
                    format!("unexpected `{}` after the chain's counters", t.text),
                )
                .at(t.span)
                .help("a chain line is `:NAME POLICY [packets:bytes]`"),
            );
        }
        if let Some(d) = bad_chain_name(&name) {
            self.diags.push(d);
            return;
        }
        let Some(table) = self.open.as_mut() else {
            self.no_table(span, "chain line");
            return;
        };
        let builtin = table.kind.is_builtin(&name.text);
        let policy = match policy_token.text.as_str() {
            "ACCEPT" if builtin => Policy::Accept,
            "DROP" if builtin => Policy::Drop,
            "-" => Policy::None,
            p => {
                let d = if builtin {
                    Diagnostic::error(
                        "E0110",
                        format!("invalid policy `{p}` for built-in chain `{}`", name.text),
                    )
                    .at(policy_token.span)
                    .help("a built-in chain's policy is ACCEPT or DROP")
                } else {
                    Diagnostic::error("E0110", format!("user-defined chain `{}` cannot have a policy", name.text))
                        .at(policy_token.span)
                        .label(format!("`{}` is not a built-in chain of table `{}`", name.text, table.kind.name()))
                        .help(format!(
                            "write `-` as the policy of a user-defined chain; the built-in chains of `{}` are {}",
                            table.kind.name(),
                            table.kind.builtin_chains().join(", ")
                        ))
                };
                self.diags.push(d);
                Policy::None
            }
        };
        if let Some(&prev) = self.chain_index.get(&name.text) {
            let (line, _) = self.src.line_col(table.chains[prev].span.start as usize);
            self.diags.push(
                Diagnostic::error("E0107", format!("chain `{}` declared twice", name.text))
                    .at(name.span)
                    .label(format!("first declared on line {line}")),
            );
            return;
        }
        // Declared even when its counters or policy were rejected, so its rules do not cascade into E0108.
        self.chain_index
            .insert(name.text.clone(), table.chains.len());
        table.chains.push(ChainDecl {
            name,
            policy,
            policy_token,
            counters,
            builtin,
            span,
        });
    }

    fn rule(&mut self, start: usize, body: &str, span: Span) {
        let mut rest = body;
        let mut rest_start = start;
        let mut rule_counters = None;
        let mut bad = false;
        if body.starts_with('[') {
            let (off, w) = words(body)[0];
            let cspan = Span::new(start + off, start + off + w.len());
            match parse_counters(w, cspan) {
                Ok(c) => rule_counters = Some(c),
                Err(d) => {
                    self.diags.push(d);
                    bad = true;
                }
            }
            rest = &body[off + w.len()..];
            rest_start = start + off + w.len();
        }
        let tokens = match tokenize(rest, rest_start) {
            Ok(t) => t,
            Err(d) => {
                self.diags.push(d);
                return;
            }
        };
        let Some(cmd_tok) = tokens.first() else {
            self.diags
                .push(Diagnostic::error("E0111", "counters without a rule").at(span));
            return;
        };
        let Some(command) = Command::from_flag(&cmd_tok.text) else {
            self.diags.push(
                Diagnostic::error("E0111", format!("unrecognised line starting with `{}`", cmd_tok.text))
                    .at(cmd_tok.span)
                    .label("expected a rule such as `-A INPUT …`, a chain line `:NAME`, `*table` or `COMMIT`"),
            );
            return;
        };
        if self.open.is_none() {
            self.no_table(span, "rule");
            return;
        }
        match command {
            Command::Append | Command::Insert => {}
            Command::NewChain | Command::Policy | Command::Flush | Command::DeleteChain => {
                if rule_counters.is_some() {
                    self.diags.push(
                        Diagnostic::error("E0111", format!("counters before `{}`", cmd_tok.text))
                            .at(span)
                            .help("counters `[packets:bytes]` belong to rules (`-A`, `-I`)"),
                    );
                    return;
                }
                self.chain_command(command, &tokens, span);
                return;
            }
            Command::Delete | Command::Replace | Command::Zero | Command::RenameChain => {
                self.diags.push(
                    Diagnostic::error(
                        "E0205",
                        format!("restore command `{}` is not supported in restore files", cmd_tok.text),
                    )
                    .at(cmd_tok.span)
                    .help("tailwall reads a restore file as the whole ruleset: `:CHAIN` lines, -N, -P, -F, -X, -A and -I"),
                );
                return;
            }
        }
        let Some(chain) = tokens.get(1).filter(|t| !is_flag(t) && !t.text.is_empty()) else {
            self.diags.push(
                Diagnostic::error("E0111", format!("`{}` requires a chain name", cmd_tok.text))
                    .at(cmd_tok.span)
                    .label("chain name missing"),
            );
            return;
        };
        // `-I CHAIN [N]`: the position is optional (default 1).
        let mut first_opt = 2;
        let mut insert_at: Option<(usize, Span)> = None;
        if command == Command::Insert {
            if let Some(t) = tokens.get(2).filter(|t| {
                !t.quoted && !t.text.is_empty() && t.text.bytes().all(|b| b.is_ascii_digit())
            }) {
                match t.text.parse::<usize>() {
                    Ok(n) if n >= 1 => insert_at = Some((n, t.span)),
                    _ => {
                        self.diags.push(
                            Diagnostic::error(
                                "E0117",
                                format!("invalid rule position `{}`", t.text),
                            )
                            .at(t.span)
                            .help("positions start at 1"),
                        );
                        return;
                    }
                }
                first_opt = 3;
            } else {
                insert_at = Some((1, cmd_tok.span));
            }
        }
        let family = self.ast.family;
        let kind = self.open.as_ref().expect("checked above").kind;
        if !self.chain_index.contains_key(&chain.text) {
            if kind.is_builtin(&chain.text) {
                // iptables-restore accepts rules for a built-in chain without a chain line; the policy is
                // then whatever the kernel has. `lower` warns when that matters.
            } else {
                self.diags.push(
                    Diagnostic::error("E0108", format!("chain `{}` does not exist", chain.text))
                        .at(chain.span)
                        .label(format!(
                            "no `:{}` line before this rule in table `{}`",
                            chain.text,
                            kind.name()
                        ))
                        .help(format!("declare it first: `:{} - [0:0]`", chain.text)),
                );
                return;
            }
        }
        let place = Place {
            family,
            table: kind.name(),
            chain: &chain.text,
            builtin: kind.is_builtin(&chain.text),
        };
        let typed = match rule::type_rule(&tokens[first_opt..], place) {
            Ok(r) => r,
            Err(ds) => {
                self.diags.extend(ds);
                return;
            }
        };
        // Names resolve in file order: the chain a rule jumps to must exist when the rule is read.
        if let Some((Target::Jump(c) | Target::Goto(c), at)) = &typed.target {
            let d = if kind.is_builtin(c) {
                Some(
                    Diagnostic::error("E0312", format!("cannot jump to built-in chain `{c}`"))
                        .at(*at)
                        .help("only user-defined chains can be the target of -j/-g"),
                )
            } else if !self.chain_index.contains_key(c) {
                let later = self.declared_later(c);
                Some(
                    Diagnostic::error("E0312", format!("chain `{c}` does not exist"))
                        .at(*at)
                        .label(if later {
                            "declared only after this rule".to_string()
                        } else {
                            "no such target or user-defined chain".to_string()
                        })
                        .help(if later {
                            format!("iptables-restore reads the file in order and refuses a jump to a chain declared later (\"Couldn't load target `{c}'\"); move `:{c} - [0:0]` above this rule")
                        } else {
                            format!("declare it with `:{c} - [0:0]` before this rule, or check the target's spelling")
                        }),
                )
            } else {
                None
            };
            if let Some(d) = d {
                self.diags.push(d);
                return;
            }
        }
        if bad {
            return;
        }
        let table = self.open.as_mut().expect("checked above");
        let line = RuleLine {
            counters: rule_counters,
            command: cmd_tok.clone(),
            chain: chain.clone(),
            rule: typed,
            tokens: tokens[first_opt..].to_vec(),
            span,
        };
        match insert_at {
            None => table.rules.push(line),
            Some((n, at)) => {
                let of_chain: Vec<usize> = table
                    .rules
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.chain.text == chain.text)
                    .map(|(i, _)| i)
                    .collect();
                if n > of_chain.len() + 1 {
                    self.diags.push(
                        Diagnostic::error(
                            "E0117",
                            format!(
                                "cannot insert at position {n}: chain `{}` has {} rules",
                                chain.text,
                                of_chain.len()
                            ),
                        )
                        .at(at)
                        .help("iptables-restore fails: \"Index of insertion too big\""),
                    );
                    return;
                }
                // Before the chain's n-th rule, or after its last one.
                let idx = match of_chain.get(n - 1) {
                    Some(&i) => i,
                    None => of_chain.last().map(|&i| i + 1).unwrap_or(table.rules.len()),
                };
                table.rules.insert(idx, line);
            }
        }
    }

    /// `-N CHAIN`, `-P CHAIN POLICY`, `-F [CHAIN]`, `-X [CHAIN]`.
    fn chain_command(&mut self, command: Command, tokens: &[Token], span: Span) {
        let cmd = &tokens[0];
        let chain = tokens.get(1).filter(|t| !is_flag(t) && !t.text.is_empty());
        let want = match command {
            Command::Policy => 3,
            Command::NewChain => 2,
            _ => chain.map_or(1, |_| 2),
        };
        if tokens.len() != want
            || (command != Command::Flush && command != Command::DeleteChain && chain.is_none())
        {
            let usage = match command {
                Command::NewChain => "-N CHAIN",
                Command::Policy => "-P CHAIN ACCEPT|DROP",
                Command::Flush => "-F [CHAIN]",
                _ => "-X [CHAIN]",
            };
            self.diags.push(
                Diagnostic::error("E0111", format!("malformed `{}` line", cmd.text))
                    .at(span)
                    .help(format!("write `{usage}`")),
            );
            return;
        }
        let Some(table) = self.open.as_mut() else {
            return;
        };
        let kind = table.kind;
        let undeclared = |c: &Token| {
            Diagnostic::error("E0108", format!("chain `{}` does not exist", c.text))
                .at(c.span)
                .help(format!(
                    "declare it first: `:{} - [0:0]` or `-N {}`",
                    c.text, c.text
                ))
        };
        match command {
            Command::NewChain => {
                let c = chain.expect("checked").clone();
                if let Some(d) = bad_chain_name(&c) {
                    self.diags.push(d);
                    return;
                }
                if kind.is_builtin(&c.text) || self.chain_index.contains_key(&c.text) {
                    self.diags.push(
                        Diagnostic::error("E0107", format!("chain `{}` already exists", c.text))
                            .at(c.span),
                    );
                    return;
                }
                self.chain_index.insert(c.text.clone(), table.chains.len());
                table.chains.push(ChainDecl {
                    policy_token: Token {
                        text: "-".into(),
                        span: cmd.span,
                        quoted: false,
                    },
                    name: c,
                    policy: Policy::None,
                    counters: None,
                    builtin: false,
                    span,
                });
            }
            Command::Policy => {
                let c = chain.expect("checked").clone();
                let p = tokens[2].clone();
                let policy = match p.text.as_str() {
                    "ACCEPT" => Policy::Accept,
                    "DROP" => Policy::Drop,
                    _ => {
                        self.diags.push(
                            Diagnostic::error("E0110", format!("invalid policy `{}`", p.text))
                                .at(p.span)
                                .help("a built-in chain's policy is ACCEPT or DROP"),
                        );
                        return;
                    }
                };
                if !kind.is_builtin(&c.text) {
                    self.diags.push(
                        Diagnostic::error(
                            "E0110",
                            format!("user-defined chain `{}` cannot have a policy", c.text),
                        )
                        .at(c.span)
                        .help(format!(
                            "the built-in chains of `{}` are {}",
                            kind.name(),
                            kind.builtin_chains().join(", ")
                        )),
                    );
                    return;
                }
                match self.chain_index.get(&c.text) {
                    Some(&i) => {
                        table.chains[i].policy = policy;
                        table.chains[i].policy_token = p;
                    }
                    None => {
                        self.chain_index.insert(c.text.clone(), table.chains.len());
                        table.chains.push(ChainDecl {
                            name: c,
                            policy,
                            policy_token: p,
                            counters: None,
                            builtin: true,
                            span,
                        });
                    }
                }
            }
            Command::Flush => match chain {
                None => table.rules.clear(),
                Some(c) => {
                    if !kind.is_builtin(&c.text) && !self.chain_index.contains_key(&c.text) {
                        self.diags.push(undeclared(c));
                        return;
                    }
                    table.rules.retain(|r| r.chain.text != c.text);
                }
            },
            Command::DeleteChain => {
                let targets = |name: &str, rules: &[RuleLine]| {
                    rules.iter().any(|r| {
                        matches!(&r.rule.target, Some((Target::Jump(c) | Target::Goto(c), _)) if c == name)
                    })
                };
                let doomed: Vec<String> = match chain {
                    Some(c) => {
                        if kind.is_builtin(&c.text) {
                            self.diags.push(
                                Diagnostic::error(
                                    "E0117",
                                    format!("cannot delete built-in chain `{}`", c.text),
                                )
                                .at(c.span),
                            );
                            return;
                        }
                        if !self.chain_index.contains_key(&c.text) {
                            self.diags.push(undeclared(c));
                            return;
                        }
                        vec![c.text.clone()]
                    }
                    None => table
                        .chains
                        .iter()
                        .filter(|d| !d.builtin)
                        .map(|d| d.name.text.clone())
                        .collect(),
                };
                for name in &doomed {
                    if table.rules.iter().any(|r| &r.chain.text == name)
                        || targets(name, &table.rules)
                    {
                        self.diags.push(
                            Diagnostic::error("E0117", format!("cannot delete chain `{name}`: it has rules or is the target of a rule"))
                                .at(span)
                                .help(format!("flush it first (`-F {name}`) and remove the rules that jump to it")),
                        );
                        return;
                    }
                }
                table.chains.retain(|d| !doomed.contains(&d.name.text));
                self.chain_index = table
                    .chains
                    .iter()
                    .enumerate()
                    .map(|(i, d)| (d.name.text.clone(), i))
                    .collect();
            }
            _ => {}
        }
    }
}

/// Parse a whole file, its family found by [`detect_family`]. Returns the AST of everything that parsed and
/// the diagnostics (errors `E01xx`, `E03xx`, `E0205`); the file is valid only if no diagnostic is an error.
pub fn parse(src: &SourceFile) -> (Ast, Vec<Diagnostic>) {
    parse_family(src, detect_family(&src.text))
}

/// [`parse`] for a known family (`iptables-restore` vs `ip6tables-restore`).
pub fn parse_family(src: &SourceFile, family: Family) -> (Ast, Vec<Diagnostic>) {
    let mut p = Parser1 {
        src,
        ast: Ast {
            family,
            ..Ast::default()
        },
        diags: Vec::new(),
        open: None,
        skipping: false,
        chain_index: HashMap::new(),
    };
    let text = src.text.as_str();
    let mut pos = 0;
    while pos < text.len() {
        let end = text[pos..]
            .find('\n')
            .map(|i| pos + i)
            .unwrap_or(text.len());
        let line = text[pos..end].strip_suffix('\r').unwrap_or(&text[pos..end]);
        p.line(pos, line);
        pos = end + 1;
    }
    if let Some(t) = p.open.take() {
        let eof = text.trim_end().len();
        p.diags.push(
            Diagnostic::error("E0104", "COMMIT expected at end of file")
                .at(Span::new(eof, eof))
                .help(format!(
                    "end table `*{}` with a `COMMIT` line",
                    t.kind.name()
                )),
        );
        p.ast.tables.push(t);
    }
    (p.ast, p.diags)
}

#[cfg(test)]
mod tests {
    use super::super::save::save_rule;
    use super::*;

    fn parse_ok(text: &str) -> Ast {
        let (ast, d) = parse(&SourceFile::new("t", text));
        assert!(d.is_empty(), "{d:?}");
        ast
    }

    fn codes(text: &str) -> Vec<&'static str> {
        parse(&SourceFile::new("t", text))
            .1
            .iter()
            .map(|d| d.code)
            .collect()
    }

    #[test]
    fn parse_reads_tables_chains_rules_and_counters() {
        let ast = parse_ok(
            "# Generated by iptables-save\r\n*filter\r\n:INPUT DROP [3:120]\r\n:LOG_DROP - [0:0]\r\n\
             [5:300] -A INPUT -s 10.0.0.0/8 -j ACCEPT\r\nCOMMIT\r\n*nat\n:PREROUTING ACCEPT\nCOMMIT\n",
        );
        assert_eq!(ast.tables.len(), 2);
        let f = &ast.tables[0];
        assert_eq!(f.chains[0].policy, Policy::Drop);
        assert_eq!(
            f.chains[0].counters.map(|c| (c.packets, c.bytes)),
            Some((3, 120))
        );
        assert_eq!(f.chains[1].policy, Policy::None);
        assert_eq!(
            f.rules[0].counters.map(|c| (c.packets, c.bytes)),
            Some((5, 300))
        );
        assert!(f.rules[0].rule.src.is_some() && f.rules[0].rule.target.is_some());
        assert_eq!(ast.comments.len(), 1);
        assert!(ast.tables[1].chains[0].counters.is_none());
    }

    fn saved(text: &str) -> String {
        let ast = parse_ok(text);
        let r = &ast.tables[0].rules[0];
        save_rule(&r.chain.text, &r.rule)
    }

    #[test]
    fn parse_types_every_rule() {
        assert_eq!(
            saved("*filter\n:INPUT ACCEPT\n-A INPUT ! -s 1.2.3.4 -p tcp -m state --state NEW,ESTABLISHED -j DROP\nCOMMIT\n"),
            "-A INPUT ! -s 1.2.3.4/32 -p tcp -m state --state NEW,ESTABLISHED -j DROP"
        );
        // Typing errors are the parser's: the line is left out.
        assert_eq!(
            codes("*filter\n-A INPUT -p tcp --dport 70000 -j DROP\nCOMMIT\n"),
            ["E0304"]
        );
    }

    #[test]
    fn parse_resolves_names_in_file_order() {
        assert_eq!(
            codes("*filter\n-A INPUT -j LATER\n:LATER - [0:0]\nCOMMIT\n"),
            ["E0312"]
        );
        assert_eq!(codes("*filter\n-A INPUT -j FORWARD\nCOMMIT\n"), ["E0312"]);
        assert_eq!(codes("*filter\n-A INPUT -j nowhere\nCOMMIT\n"), ["E0312"]);
        assert!(codes("*filter\n:LATER - [0:0]\n-A INPUT -g LATER\nCOMMIT\n").is_empty());
        assert!(codes("*filter\n-N LATER\n-A INPUT -j LATER\nCOMMIT\n").is_empty());
    }

    #[test]
    fn parse_refuses_chain_names_iptables_refuses() {
        let long = "c".repeat(MAX_CHAIN_NAME_LEN + 1);
        assert_eq!(
            codes(&format!("*filter\n:{long} - [0:0]\nCOMMIT\n")),
            ["E0105"]
        );
        assert_eq!(codes(&format!("*filter\n-N {long}\nCOMMIT\n")), ["E0105"]);
        let ok = "c".repeat(MAX_CHAIN_NAME_LEN);
        assert!(codes(&format!("*filter\n:{ok} - [0:0]\nCOMMIT\n")).is_empty());
        assert_eq!(codes("*filter\n:ACCEPT - [0:0]\nCOMMIT\n"), ["E0107"]);
        assert!(codes("*filter\n:forward - [0:0]\n-A FORWARD -j forward\nCOMMIT\n").is_empty());
    }

    #[test]
    fn parse_reports_grammar_errors() {
        assert_eq!(codes("-A INPUT -j ACCEPT\n"), ["E0101"]);
        assert_eq!(codes("*filter\n:INPUT ACCEPT\n"), ["E0104"]);
        assert_eq!(codes("*bogus\n:X -\n-A X -j DROP\nCOMMIT\n"), ["E0102"]);
        assert_eq!(codes("*filter\nCOMMIT\n*filter\nCOMMIT\n"), ["E0103"]);
        assert_eq!(
            codes("*filter\n:INPUT ACCEPT\n:INPUT DROP\nCOMMIT\n"),
            ["E0107"]
        );
        assert_eq!(codes("*filter\n-A FOO -j ACCEPT\nCOMMIT\n"), ["E0108"]);
        assert_eq!(codes("*filter\n:INPUT ACCEPT [1:x]\nCOMMIT\n"), ["E0106"]);
        assert_eq!(codes("*filter\n[1:2 -A INPUT -j DROP\nCOMMIT\n"), ["E0106"]);
        assert_eq!(codes("*filter\n:FOO ACCEPT\nCOMMIT\n"), ["E0110"]);
        assert_eq!(codes("*filter\n-D INPUT -j DROP\nCOMMIT\n"), ["E0205"]);
        assert_eq!(codes("*filter\n-A INPUT -s\nCOMMIT\n"), ["E0112"]);
        assert_eq!(
            codes("*filter\n-A INPUT -s ! 1.2.3.4 -j DROP\nCOMMIT\n"),
            ["E0115"]
        );
        assert_eq!(codes("*filter\n-A INPUT -j DROP !\nCOMMIT\n"), ["E0115"]);
        assert_eq!(codes("*filter\n-A INPUT foo -j DROP\nCOMMIT\n"), ["E0116"]);
        assert_eq!(codes("*filter\nfoo\nCOMMIT\n"), ["E0111"]);
        assert_eq!(
            codes("*filter\n-A INPUT -m comment --comment \"x\nCOMMIT\n"),
            ["E0109"]
        );
    }

    #[test]
    fn parse_values_follow_getopt() {
        // xtables_save_string leaves `-foo` bare: it is the comment, not an option.
        assert_eq!(
            saved("*filter\n-A INPUT -m comment --comment -foo -j ACCEPT\nCOMMIT\n"),
            "-A INPUT -m comment --comment -foo -j ACCEPT"
        );
        // Quoting is removed before iptables parses options: a quoted `-s` or `!` is still one.
        assert_eq!(
            saved("*filter\n-A INPUT \"!\" \"-s\" 1.2.3.4 -j DROP\nCOMMIT\n"),
            "-A INPUT ! -s 1.2.3.4/32 -j DROP"
        );
        // A value that is one of iptables' own options means the value is missing.
        assert_eq!(codes("*filter\n-A INPUT -s -j ACCEPT\nCOMMIT\n"), ["E0112"]);
        // Quoted dash-values are values: `--log-prefix "-x"`.
        assert_eq!(
            saved("*filter\n-A INPUT -j LOG --log-prefix \"-x \" --log-level 4\nCOMMIT\n"),
            "-A INPUT -j LOG --log-prefix \"-x \""
        );
    }

    #[test]
    fn parse_applies_restore_commands() {
        let ast = parse_ok(
            "*filter\n-N web\n-P INPUT DROP\n-A INPUT -j web\n-A web -s 1.1.1.1 -j DROP\n\
             -I web -s 2.2.2.2 -j DROP\n-I web 3 -s 3.3.3.3 -j DROP\n-I web 2 -s 4.4.4.4 -j DROP\n\
             -N old\n-A old -j DROP\n-F old\n-X old\nCOMMIT\n",
        );
        let t = &ast.tables[0];
        let names: Vec<&str> = t.chains.iter().map(|c| c.name.text.as_str()).collect();
        assert_eq!(names, ["web", "INPUT"]);
        assert_eq!(t.chain("INPUT").map(|c| c.policy), Some(Policy::Drop));
        let web: Vec<&str> = t
            .rules_of("web")
            .map(|r| r.tokens[1].text.as_str())
            .collect();
        assert_eq!(web, ["2.2.2.2", "4.4.4.4", "1.1.1.1", "3.3.3.3"]);
        assert_eq!(
            parse_ok("*filter\n-A INPUT -j DROP\n-F\nCOMMIT\n").tables[0]
                .rules
                .len(),
            0
        );
    }

    #[test]
    fn parse_rejects_bad_restore_commands() {
        assert_eq!(codes("*filter\n-R INPUT 1 -j DROP\nCOMMIT\n"), ["E0205"]);
        assert_eq!(codes("*filter\n-Z\nCOMMIT\n"), ["E0205"]);
        assert_eq!(codes("*filter\n-N INPUT\nCOMMIT\n"), ["E0107"]);
        assert_eq!(codes("*filter\n-P web DROP\nCOMMIT\n"), ["E0110"]);
        assert_eq!(codes("*filter\n-P INPUT MAYBE\nCOMMIT\n"), ["E0110"]);
        assert_eq!(codes("*filter\n-F nope\nCOMMIT\n"), ["E0108"]);
        assert_eq!(
            codes("*filter\n-N a\n-A a -j DROP\n-X a\nCOMMIT\n"),
            ["E0117"]
        );
        assert_eq!(
            codes("*filter\n-N a\n-A INPUT -j a\n-X\nCOMMIT\n"),
            ["E0117"]
        );
        assert_eq!(codes("*filter\n-X INPUT\nCOMMIT\n"), ["E0117"]);
        assert_eq!(codes("*filter\n-I INPUT 2 -j DROP\nCOMMIT\n"), ["E0117"]);
        assert_eq!(codes("*filter\n-N\nCOMMIT\n"), ["E0111"]);
    }

    #[test]
    fn parse_accepts_builtin_chain_without_chain_line() {
        let ast = parse_ok("*filter\n-A INPUT -j ACCEPT\nCOMMIT\n");
        assert_eq!(ast.tables[0].rules.len(), 1);
    }

    #[test]
    fn parse_spans_cover_trimmed_line() {
        let src = "*filter\n  -A INPUT -j DROP  \r\nCOMMIT\n";
        let ast = parse_ok(src);
        let r = &ast.tables[0].rules[0];
        assert_eq!(
            &src[r.span.start as usize..r.span.end as usize],
            "-A INPUT -j DROP"
        );
    }
}
