//! The differential test against `iptables-legacy-restore` / `ip6tables-legacy-restore` 1.8.9: generated
//! restore files ([`crate::restore_gen`]) are given to iptables in a throwaway namespace and to tailwall's
//! iptables front end ([`tailwall_compiler::lower::migrate`], which types and validates every rule of
//! every table exactly where iptables-restore would refuse the file; `check` and `compile` add only
//! what tailwall cannot *enforce*), and the two must agree.
//!
//! Per file ([`Differ::run_file`]):
//! 1. `restore --test` and tailwall both read the file. Both accept, or both refuse *at the same line*
//!    (iptables stops at the first bad line and says which; tailwall's first error is its smallest
//!    located line). On a refusal (agreed or not) the refused line is removed from the file and both run
//!    again, so one file tests every line in it with one restore call per refused line.
//! 2. The accepted file is restored for real (the kernel's `checkentry` functions run at `COMMIT`). When
//!    the kernel refuses, a bisection over the rule lines finds the first rule it refuses; tailwall
//!    accepted that rule, so that is a difference; the rule is removed and the restore is retried.
//! 3. `save -t TABLE` prints every rule; tailwall's printer ([`save_rule`], as `migrate` reports it) must
//!    print the same line, chain by chain, in order.
//!
//! Every disagreement is a [`Difference`], classified by [`classify`] into a [`KNOWN`] kind (a documented
//! fault or deliberate difference) or left unexplained. Nothing is thrown away: all differences are
//! returned, with the line, its corpus origin and its mutations.
//!
//! [`save_rule`]: tailwall_compiler::syntax::iptables::rule::save_rule
use crate::netns::Netns;
use crate::restore_gen::{Family, GenFile, Line, Mutation};
use std::collections::BTreeMap;
use std::fmt;
use tailwall_compiler::diag::SourceFile;
use tailwall_compiler::lower;

/// What one side did with a whole file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Accepted; for tailwall, the canonical rules by chain (`-A CHAIN …`, with their 1-based line).
    Accepted(BTreeMap<String, Vec<(usize, String)>>),
    /// Refused at this 1-based line (`None`: no line given), with the message.
    Refused {
        line: Option<usize>,
        message: String,
    },
}

/// How the two sides disagreed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Disagreement {
    /// iptables refuses the line, tailwall accepts the file up to and past it.
    OnlyIptablesRefuses,
    /// tailwall refuses the line, iptables accepts it.
    OnlyTailwallRefuses,
    /// tailwall refuses with an error that has no line.
    Unlocated,
    /// iptables' kernel side refuses the rule at `COMMIT`; tailwall accepts it.
    KernelRefuses,
    /// Both accept; iptables-save and tailwall's printer print the rule differently.
    Printed,
}

/// One disagreement, on one line of a generated file.
#[derive(Clone, Debug)]
pub struct Difference {
    pub what: Disagreement,
    pub family: Family,
    pub table: String,
    /// The line as generated (lossy UTF-8).
    pub line: String,
    pub origin: Option<String>,
    pub mutations: Vec<Mutation>,
    /// What iptables said or printed.
    pub iptables: String,
    /// What tailwall said or printed.
    pub tailwall: String,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} [{:?} {}] {:?}\n    from {} by {:?}\n    iptables: {}\n    tailwall: {}",
            self.what,
            self.family,
            self.table,
            self.line,
            self.origin.as_deref().unwrap_or("-"),
            self.mutations,
            self.iptables.trim(),
            self.tailwall.trim()
        )
    }
}

/// A known kind of difference: the fault it stands for, who fixes it, and the predicate that recognises
/// its members. The list [`KNOWN`] is by kind, never by line.
pub struct Kind {
    /// Short name, printed in the run's summary.
    pub name: &'static str,
    /// `frontend` (issue 7 item 1, being fixed), or `deliberate` (docs/conformance.md says why).
    pub owner: &'static str,
    /// What is different and why.
    pub fault: &'static str,
    pub matches: fn(&Difference) -> bool,
}

/// Words of the line, split on the blanks iptables-restore splits on (space, tab).
fn words(d: &Difference) -> Vec<&str> {
    d.line
        .split([' ', '\t'])
        .filter(|w| !w.is_empty())
        .collect()
}

/// Either side's message mentions `s`.
fn says(d: &Difference, s: &str) -> bool {
    d.iptables.contains(s) || d.tailwall.contains(s)
}

/// A value word that libxtables' `strtoul` (base 0) reads differently from a plain decimal reader: a
/// leading `0` (octal) or `0x`, a `+`, leading blanks, or nothing at all (`""`).
fn strtoul_spelling(w: &str) -> bool {
    let w = w.trim_matches(['"', '\'']);
    let parts = w.split(['.', '/', ':', ',', '-']);
    w.is_empty()
        || w.starts_with(['\x0b', '\x0c', '\r', '+'])
        || parts.into_iter().any(|p| {
            let b = p.as_bytes();
            (b.len() > 1 && b[0] == b'0' && (b[1].is_ascii_digit() || b[1] == b'x' || b[1] == b'X'))
                || p.starts_with(['+', '\x0b', '\x0c'])
        })
}

/// The documented kinds; see docs/conformance.md ("Differential test"). Checked in order.
pub const KNOWN: &[Kind] = &[
    Kind {
        name: "CR at a line end",
        owner: "deliberate",
        fault: "a CR as a line's last byte ends the line for tailwall (CRLF files are read leniently); \
                iptables-restore keeps it in the last word",
        matches: |d| d.line.ends_with('\r'),
    },
    Kind {
        name: "kernel-state",
        owner: "deliberate",
        fault: "iptables' kernel side refuses a rule because of what this machine's kernel has or lacks \
                (modules, objects); tailwall cannot see the kernel",
        matches: |d| d.what == Disagreement::KernelRefuses && needs_kernel(d),
    },
    Kind {
        name: "verbatim-module",
        owner: "deliberate",
        fault: "modules tailwall keeps as tokens (srh, rateest, devgroup, udplite; HMARK, RATEEST, SET, ULOG) \
                are neither validated nor printed canonically",
        matches: |d| {
            let w = words(d);
            // Quotes are removed by the tokenizer (`-j "HMARK"`); `-msrh` is `-m srh` glued.
            let unq = |s: &&str| s.trim_matches('"').to_string();
            let glued = w.iter().filter_map(|x| x.strip_prefix("-m")).map(|m| m.trim_matches('"').to_string());
            after(&w, &["-m", "--match"]).iter().map(unq).chain(glued).any(|m| ["srh", "rateest", "devgroup", "udplite"].contains(&m.as_str()))
                || after(&w, &["-j", "--jump", "--jum", "--ju", "--j"])
                    .iter()
                    .map(unq)
                    .any(|t| ["HMARK", "RATEEST", "SET", "ULOG"].contains(&t.as_str()))
        },
    },
    Kind {
        name: "long comment",
        owner: "deliberate",
        fault: "iptables 1.8.9 cuts a `--comment` longer than 255 bytes to 255 without a word; tailwall refuses \
                it (E0309) rather than store something other than what was written",
        matches: |d| d.what == Disagreement::OnlyTailwallRefuses && d.tailwall.contains("iptables allows at most 255"),
    },
    Kind {
        name: "rate credits overflow (kernel HZ)",
        owner: "deliberate",
        fault: "the kernel refuses a limit/hashlimit rate whose average times burst overflows its credits \
                (`user2credits` in xt_limit.c/xt_hashlimit.c scales by the kernel's CONFIG_HZ, which a \
                compiler cannot know); tailwall does not enforce rate limits and accepts the rule",
        matches: |d| {
            d.what == Disagreement::KernelRefuses
                && after(&words(d), &["-m", "--match"]).iter().any(|m| ["limit", "hashlimit"].contains(m))
        },
    },
    Kind {
        name: "loop in an unreachable chain",
        owner: "deliberate",
        fault: "the kernel checks jump/goto loops only among chains a built-in chain reaches (`mark_source_chains`); \
                tailwall refuses a loop anywhere (E0313), since every walk over the chain graph relies on it having none",
        matches: |d| d.what == Disagreement::OnlyTailwallRefuses && d.tailwall.contains("chain loop"),
    },
    Kind {
        name: "non-utf8 (case 11)",
        owner: "frontend",
        fault: "a byte that is not UTF-8 makes tailwall refuse the whole file",
        matches: |d| d.tailwall.contains("not UTF-8"),
    },
    Kind {
        name: "iptables 1.8.11 rules",
        owner: "deliberate",
        fault: "tailwall follows iptables 1.8.11 (whose test suite is the corpus) where 1.8.9 differs: inverted \
                ranges (min > max) and `--ctproto 0` are refused, the ICMPv6 names `mld-listener-*` exist, `--queue-balance` ends at 65534 (1.8.9's `:` is 0:65535, which its kernel refuses), a negated \
                full range keeps its `!` when printed, `--icmp-type 255/255` is not printed as `any`",
        matches: |d| {
            (d.what == Disagreement::OnlyTailwallRefuses && (says(d, "min > max") || says(d, "never matches")))
                || (d.what == Disagreement::OnlyIptablesRefuses && d.iptables.contains("Unknown ICMPv6 type"))
                || (d.what == Disagreement::KernelRefuses
                    && words(d).windows(2).any(|p| p[0].len() > 10 && "--queue-balance".starts_with(p[0]) && p[1] == ":"))
                || (d.what == Disagreement::Printed
                    && (d.tailwall.contains("65534")
                        || full_range_negated(&d.tailwall)
                        || d.iptables.contains("--icmp-type any")))
        },
    },
    Kind {
        name: "service names (case 09)",
        owner: "frontend",
        fault: "port options do not resolve service names as getservbyname does",
        matches: |d| {
            d.mutations.contains(&Mutation::Names)
                && (d.tailwall.contains("service")
                    || d.iptables.contains("does not resolve")
                    || d.iptables.contains("invalid port/service")
                    || says(d, "Port"))
        },
    },
    Kind {
        name: "strtoul numbers (case 01)",
        owner: "frontend",
        fault: "numbers and addresses are not read as iptables 1.8.9 reads them, option by option: strtoul \
                base 0 (octal, hex, `+`, leading blanks, empty = 0, overflow some options allow); no \
                abbreviated NAT addresses (the getaddrinfo ports of udp, dccp and conntrack are fixed)",
        matches: |d| {
            words(d).iter().skip(2).any(|w| strtoul_spelling(w))
                || d.mutations.contains(&Mutation::Address)
                || (d.what == Disagreement::OnlyTailwallRefuses && d.tailwall.contains("(a number"))
        },
    },
    Kind {
        name: "option abbreviations (case 06)",
        owner: "frontend",
        fault: "getopt_long's unambiguous prefixes of long options are refused",
        matches: |d| {
            d.what == Disagreement::OnlyTailwallRefuses
                && (d.tailwall.contains("unknown option `--") || d.tailwall.contains("ambiguous"))
        },
    },
    Kind {
        name: "unterminated quote",
        owner: "deliberate",
        fault: "iptables-restore takes the rest of the line (newline included) as the value of an unterminated \
                quote; tailwall refuses it (E0109) rather than guess",
        matches: |d| d.tailwall.contains("unterminated quote"),
    },
    Kind {
        name: "host names",
        owner: "deliberate",
        fault: "host names are not resolved (docs/conformance.md)",
        matches: |d| d.tailwall.contains("not a numeric") || d.tailwall.contains("host names"),
    },
];

/// `! --opt 0:MAX` (a full range) in a printed rule.
fn full_range_negated(rule: &str) -> bool {
    let w: Vec<&str> = rule.split(' ').collect();
    w.windows(3).any(|p| {
        p[0] == "!" && p[1].starts_with("--") && {
            let (lo, hi) = p[2].split_once(':').unwrap_or(("", ""));
            lo == "0" && ["255", "65535", "4294967295"].contains(&hi)
        }
    })
}

/// The rule needs something of the kernel ([`crate::restore_gen::needs_kernel_objects`]).
fn needs_kernel(d: &Difference) -> bool {
    crate::restore_gen::needs_kernel_objects(&d.line)
}

/// The words after any spelling in `opts`.
fn after<'a>(w: &[&'a str], opts: &[&str]) -> Vec<&'a str> {
    w.windows(2)
        .filter(|p| opts.contains(&p[0]))
        .map(|p| p[1])
        .collect()
}

/// The first kind that explains `d`.
pub fn classify(d: &Difference) -> Option<&'static Kind> {
    KNOWN.iter().find(|k| (k.matches)(d))
}

/// Counts of one run.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub files: usize,
    /// Rule lines generated.
    pub rules: usize,
    /// Rule lines both sides refused at the same line.
    pub refused_agreed: usize,
    /// Of those, refused by tailwall while reading and by iptables' kernel side at `COMMIT`.
    pub refused_by_kernel: usize,
    /// Rules both accepted and printed the same.
    pub printed_agreed: usize,
    /// restore / save processes run.
    pub calls: usize,
    pub differences: Vec<Difference>,
}

/// Runs generated files through iptables (in one namespace) and tailwall.
pub struct Differ {
    ns: Netns,
    pub stats: Stats,
}

/// The line iptables-restore names in its error: `Error occurred at line: N`, `…: line N failed`, or
/// `… line N: …` (chain and policy errors).
fn iptables_line(stderr: &str) -> Option<usize> {
    stderr.match_indices("line").find_map(|(i, _)| {
        let rest = stderr[i + 4..].trim_start_matches(':').trim_start();
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    })
}

/// tailwall's verdict on a whole file (`table`'s rules when accepted).
pub fn tailwall(bytes: &[u8], table: &str) -> Verdict {
    // A byte that is not UTF-8 makes today's reader refuse the whole file (`check`: "not UTF-8 text");
    // the lines before it are still judged, on the lossy text, so that one such byte does not hide them.
    let (text, bad_line) = match String::from_utf8(bytes.to_vec()) {
        Ok(t) => (t, None),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let line = bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1;
            (
                String::from_utf8_lossy(bytes).into_owned(),
                Some((line, at)),
            )
        }
    };
    if let Some((line, at)) = bad_line {
        let lossy = tailwall_text(text, table);
        return match lossy {
            Verdict::Refused { line: Some(l), .. } if l < line => lossy,
            _ => Verdict::Refused {
                line: Some(line),
                message: format!("not UTF-8 text (invalid byte at offset {at})"),
            },
        };
    }
    tailwall_text(text, table)
}

fn tailwall_text(text: String, table: &str) -> Verdict {
    let src = SourceFile::new("gen.rules", text);
    match lower::migrate(&src) {
        Ok(m) => {
            let mut by: BTreeMap<String, Vec<(usize, String)>> = BTreeMap::new();
            for r in m.rules.iter().filter(|r| r.table == table) {
                by.entry(r.chain.clone())
                    .or_default()
                    .push((r.line, r.text.clone()));
            }
            Verdict::Accepted(by)
        }
        Err(diags) => {
            let errors: Vec<_> = diags.iter().filter(|d| d.is_error()).collect();
            if errors.iter().any(|d| d.span.is_none()) || errors.is_empty() {
                let d = errors.iter().find(|d| d.span.is_none()).or(errors.first());
                return Verdict::Refused {
                    line: None,
                    message: d
                        .map(|d| format!("{} {}", d.code, d.message))
                        .unwrap_or_default(),
                };
            }
            let first = errors
                .iter()
                .min_by_key(|d| d.span.map(|s| s.start).unwrap_or(u32::MAX))
                .expect("non-empty");
            let line = first.span.map(|s| src.line_col(s.start as usize).0);
            Verdict::Refused {
                line,
                message: format!("{} {}", first.code, first.message),
            }
        }
    }
}

/// A regression case's result in the form of its `.expected` file (`tests/fixtures/restore_diff/`):
/// `refuses line N`, or `accepts` and then the rules of `table` one per line, as printed.
pub fn expected_text(v: &Verdict) -> String {
    match v {
        Verdict::Refused { line, .. } => {
            format!(
                "refuses line {}\n",
                line.map_or("?".into(), |l| l.to_string())
            )
        }
        Verdict::Accepted(by_chain) => {
            let mut rules: Vec<&(usize, String)> = by_chain.values().flatten().collect();
            rules.sort();
            let mut out = String::from("accepts\n");
            for (_, r) in rules {
                out.push_str(r);
                out.push('\n');
            }
            out
        }
    }
}

/// The `*table` a regression case restores (its first `*` line; `filter` when none).
pub fn table_of(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .find_map(|l| l.strip_prefix('*').map(str::to_string))
        .unwrap_or_else(|| "filter".into())
}

fn bytes_of(lines: &[Line]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in lines {
        out.extend_from_slice(&l.bytes);
        out.push(b'\n');
    }
    out
}

impl Differ {
    pub fn new() -> anyhow::Result<Differ> {
        Ok(Differ {
            ns: Netns::new()?,
            stats: Stats::default(),
        })
    }

    fn restore(&mut self, family: Family, bytes: &[u8], test: bool) -> anyhow::Result<Verdict> {
        self.stats.calls += 1;
        let args: &[&str] = if test { &["-w", "--test"] } else { &["-w"] };
        let out = self.ns.output_stdin(family.restore(), args, bytes)?;
        if out.status.success() {
            return Ok(Verdict::Accepted(BTreeMap::new()));
        }
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        // The error, not the warnings before it.
        let message = stderr
            .lines()
            .find(|l| !l.starts_with("Warning") && !l.starts_with("warn:") && !l.trim().is_empty())
            .unwrap_or_default()
            .to_string();
        Ok(Verdict::Refused {
            line: iptables_line(&stderr),
            message,
        })
    }

    fn save(
        &mut self,
        family: Family,
        table: &str,
    ) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
        self.stats.calls += 1;
        let out = self.ns.output(family.save(), ["-t", table])?;
        anyhow::ensure!(
            out.status.success(),
            "{} failed: {}",
            family.save(),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut by: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for l in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some(rest) = l.strip_prefix("-A ") {
                let chain = rest.split(' ').next().unwrap_or_default();
                by.entry(chain.to_string()).or_default().push(l.to_string());
            }
        }
        Ok(by)
    }

    fn differ(
        &mut self,
        f: &GenFile,
        line: &Line,
        what: Disagreement,
        iptables: String,
        tailwall: String,
    ) {
        self.stats.differences.push(Difference {
            what,
            family: f.family,
            table: f.table.clone(),
            line: String::from_utf8_lossy(&line.bytes).into_owned(),
            origin: line.origin.clone(),
            mutations: line.mutations.clone(),
            iptables,
            tailwall,
        });
    }

    /// What iptables does with a whole file, in a regression case's `.expected` form (a real restore, then
    /// `save -t TABLE`; rules in the order iptables-save prints them).
    pub fn iptables_expected(&mut self, family: Family, bytes: &[u8]) -> anyhow::Result<String> {
        let table = table_of(bytes);
        match self.restore(family, bytes, false)? {
            Verdict::Refused { line, message } => {
                anyhow::ensure!(line.is_some(), "no line in {message}");
                Ok(expected_text(&Verdict::Refused { line, message }))
            }
            Verdict::Accepted(_) => {
                let mut out = String::from("accepts\n");
                for rules in self.save(family, &table)?.values() {
                    for r in rules {
                        out.push_str(r);
                        out.push('\n');
                    }
                }
                Ok(out)
            }
        }
    }

    /// Does a real restore of `lines` (closed with `COMMIT`) fail?
    fn kernel_refuses(&mut self, family: Family, lines: &[Line]) -> anyhow::Result<bool> {
        let mut bytes = bytes_of(lines);
        bytes.extend_from_slice(b"COMMIT\n");
        Ok(matches!(
            self.restore(family, &bytes, false)?,
            Verdict::Refused { .. }
        ))
    }

    /// Run one generated file through both sides; differences go to [`Differ::stats`].
    pub fn run_file(&mut self, file: &GenFile) -> anyhow::Result<()> {
        self.stats.files += 1;
        self.stats.rules += file.rules();
        let mut lines = file.lines.clone();
        // 1. Parse-time agreement, removing each refused line.
        let mut accepted = None;
        for _ in 0..=file.lines.len() {
            let bytes = bytes_of(&lines);
            let ipt = self.restore(file.family, &bytes, true)?;
            let tw = tailwall(&bytes, &file.table);
            let at = match (&ipt, &tw) {
                (Verdict::Accepted(_), Verdict::Accepted(rules)) => {
                    accepted = Some(rules.clone());
                    break;
                }
                (
                    _,
                    Verdict::Refused {
                        line: None,
                        message,
                    },
                ) => {
                    let l = match &ipt {
                        Verdict::Refused { line: Some(l), .. } => *l,
                        _ => lines.len(),
                    };
                    let shown = lines[l.clamp(1, lines.len()) - 1].clone();
                    self.differ(
                        file,
                        &shown,
                        Disagreement::Unlocated,
                        format!("{ipt:?}"),
                        message.clone(),
                    );
                    return Ok(());
                }
                (
                    Verdict::Refused { line: Some(a), .. },
                    Verdict::Refused { line: Some(b), .. },
                ) if a == b => {
                    if lines.get(a - 1).is_some_and(|l| l.is_rule) {
                        self.stats.refused_agreed += 1;
                    }
                    *a
                }
                (
                    Verdict::Refused {
                        line: Some(a),
                        message,
                    },
                    _,
                ) if matches!(
                    tw,
                    Verdict::Accepted(_) | Verdict::Refused { line: Some(_), .. }
                ) && !matches!(tw, Verdict::Refused { line: Some(b), .. } if b < *a) =>
                {
                    let line = lines[a - 1].clone();
                    let theirs = match &tw {
                        Verdict::Refused {
                            line: Some(b),
                            message,
                        } => format!("accepts it (refuses line {b}: {message})"),
                        _ => "accepts".into(),
                    };
                    self.differ(
                        file,
                        &line,
                        Disagreement::OnlyIptablesRefuses,
                        message.clone(),
                        theirs,
                    );
                    *a
                }
                (
                    _,
                    Verdict::Refused {
                        line: Some(b),
                        message,
                    },
                ) => {
                    // iptables --test accepts the line; its kernel side may still refuse it at COMMIT.
                    let b = *b;
                    // Judged alone (the declarations before it, the line, COMMIT), so that an earlier rule
                    // the kernel refuses does not decide for it.
                    let mut alone: Vec<Line> = lines[..b - 1]
                        .iter()
                        .filter(|l| !l.is_rule)
                        .cloned()
                        .collect();
                    alone.push(lines[b - 1].clone());
                    if self.kernel_refuses(file.family, &alone)? {
                        if lines[b - 1].is_rule {
                            self.stats.refused_agreed += 1;
                            self.stats.refused_by_kernel += 1;
                        }
                    } else {
                        let line = lines[b - 1].clone();
                        let theirs = match &ipt {
                            Verdict::Refused {
                                line: Some(a),
                                message,
                            } => format!("accepts it (refuses line {a}: {message})"),
                            _ => "accepts".into(),
                        };
                        self.differ(
                            file,
                            &line,
                            Disagreement::OnlyTailwallRefuses,
                            theirs,
                            message.clone(),
                        );
                    }
                    b
                }
                (Verdict::Refused { message, .. }, _) => {
                    anyhow::bail!("iptables refused without a line: {message}");
                }
            };
            let l = &lines[at - 1];
            if l.bytes.starts_with(b"*") || l.bytes == b"COMMIT" {
                return Ok(());
            }
            lines.remove(at - 1);
        }
        let Some(mut ours) = accepted else {
            return Ok(());
        };
        // 2. The real restore: the kernel's checks.
        for _ in 0..=file.lines.len() {
            let bytes = bytes_of(&lines);
            match self.restore(file.family, &bytes, false)? {
                Verdict::Accepted(_) => break,
                Verdict::Refused { message, .. } => {
                    let rules: Vec<usize> =
                        (0..lines.len()).filter(|&i| lines[i].is_rule).collect();
                    // Smallest k such that the file with the first k rules is refused.
                    let (mut lo, mut hi) = (1, rules.len());
                    if rules.is_empty() {
                        anyhow::bail!("restore refuses a file without rules: {message}");
                    }
                    while lo < hi {
                        let mid = (lo + hi) / 2;
                        let keep: Vec<Line> = lines
                            .iter()
                            .enumerate()
                            .filter(|(i, l)| !l.is_rule || rules[..mid].contains(i))
                            .map(|(_, l)| l.clone())
                            .collect();
                        match self.restore(file.family, &bytes_of(&keep), false)? {
                            Verdict::Accepted(_) => lo = mid + 1,
                            Verdict::Refused { .. } => hi = mid,
                        }
                    }
                    let culprit = lines.remove(rules[lo - 1]);
                    self.differ(
                        file,
                        &culprit,
                        Disagreement::KernelRefuses,
                        message,
                        "accepts".into(),
                    );
                    ours = match tailwall(&bytes_of(&lines), &file.table) {
                        Verdict::Accepted(r) => r,
                        Verdict::Refused { .. } => return Ok(()),
                    };
                }
            }
        }
        // 3. What iptables-save prints.
        let theirs = self.save(file.family, &file.table)?;
        let chains: std::collections::BTreeSet<&String> =
            theirs.keys().chain(ours.keys()).collect();
        for chain in chains {
            let t = theirs.get(chain).cloned().unwrap_or_default();
            let o = ours.get(chain).cloned().unwrap_or_default();
            if t.len() != o.len() {
                let line = o
                    .first()
                    .and_then(|(n, _)| lines.get(n - 1).cloned())
                    .unwrap_or_else(|| lines[0].clone());
                self.differ(
                    file,
                    &line,
                    Disagreement::Printed,
                    format!("{} rules in {chain}: {t:?}", t.len()),
                    format!("{} rules in {chain}: {o:?}", o.len()),
                );
                continue;
            }
            for (their, (n, our)) in t.iter().zip(&o) {
                if their == our {
                    self.stats.printed_agreed += 1;
                } else {
                    let line = lines[n - 1].clone();
                    self.differ(
                        file,
                        &line,
                        Disagreement::Printed,
                        their.clone(),
                        our.clone(),
                    );
                }
            }
        }
        Ok(())
    }
}
