//! `iptables -L -v -x -n --line-numbers`: a table's chains with their counters, rendered byte for byte as
//! iptables-legacy 1.8.9 prints them (`print_header`, `print_firewall` and `print_rule_details` of
//! `iptables/iptables.c` and `xshared.c`, each match's and target's `print` function of
//! `extensions/libxt_*.c`), and the same listing as data for `-o json`.
//!
//! Input: the typed rules of an iptables-save source ([`crate::syntax::iptables`]; every rule line, also
//! the ones the IR leaves out) or, for a YAML source, the IR rendered the way iptables lists the
//! equivalent rule ([`list_ir`]); counters come from the caller — per rule line, or keyed by
//! [`RuleId`] plus the built-in chains' policy counters ([`Counts`]) — so this module knows nothing of
//! the datapath.
//!
//! Guarantees: chains in iptables' order (the table's built-in chains in hook order, then the user
//! chains sorted by name, as libiptc keeps them); user chains carry `(N references)`, the number of
//! `-j`/`-g` rules naming them; the column layout is `print_header`'s. A module this file has no
//! printer for is not guessed at: its rule's text says `[no listing for -m NAME]` and
//! [`ListedRule::exact`] is false, and [`Listing::inexact`] counts such rules.
//!
//! Version notes (iptables-legacy 1.8.9, the version the tests compare with): under `-n` the `prot`
//! column is the protocol number (`6`, not `tcp`; 1.8.11 prints names); IPv6 rules show `opt` as `  `.
//!
//! Thrown away: nothing of the rules; the listing does not resolve names (`-n`).
use crate::diag::SourceFile;
use crate::frontend::Format;
use crate::ir::{Action, Field, Hook, Rule, RuleId, Ruleset, Test};
use crate::syntax::iptables::rule::{Target, TypedRule};
use crate::syntax::iptables::{Ast, ChainDecl, Family, Policy, RuleLine, Table, TableKind};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

mod print;

/// The `schema_version` of the JSON form.
pub const SCHEMA_VERSION: u32 = 1;

/// A packet and byte count (bytes as netfilter counts them: the IP datagram's length).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counter {
    /// Packets counted.
    pub packets: u64,
    /// Bytes counted (IP datagram length, link-layer header excluded).
    pub bytes: u64,
}

impl Counter {
    /// Add `o` to both counts, wrapping on overflow as the kernel's `u64` counters do.
    pub fn add(&mut self, o: Counter) {
        self.packets = self.packets.wrapping_add(o.packets);
        self.bytes = self.bytes.wrapping_add(o.bytes);
    }
}

/// Counters keyed by IR rule, plus the policy counters of the built-in chains (by chain name).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Per IR rule; a rule without an entry counts zero.
    pub rules: BTreeMap<RuleId, Counter>,
    /// Per built-in chain name (`INPUT`, …): the packets its policy decided.
    pub policies: BTreeMap<String, Counter>,
}

impl Counts {
    /// Add `k` to the counter of the IR rule at `position` (1-based) of `chain` in `rs`; false when `rs`
    /// has no such rule. Several datapath positions counting for one rule (copies of a chain) sum.
    pub fn add_at(&mut self, rs: &Ruleset, chain: &str, position: u32, k: Counter) -> bool {
        let Some(r) = rs
            .chain_by_name(chain)
            .and_then(|c| c.rules.iter().find(|r| r.position == position))
        else {
            return false;
        };
        self.rules.entry(r.id).or_default().add(k);
        true
    }
}

/// One rule as `iptables -L -v -x -n --line-numbers` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ListedRule {
    /// 1-based position in its chain (`num`).
    pub position: u32,
    /// The `pkts` column (exact, `-x`).
    pub packets: u64,
    /// The `bytes` column (exact, `-x`).
    pub bytes: u64,
    /// The `target` column: ACCEPT/DROP/RETURN, a chain, a target module, or empty.
    pub target: String,
    /// The `prot` column (`!` included when negated).
    pub prot: String,
    /// The `opt` column (`--`, `-f`, `!f`).
    pub opt: String,
    /// The `in` column (`*` for any, `!` included when negated).
    #[serde(rename = "in")]
    pub in_iface: String,
    /// The `out` column (`*` for any, `!` included when negated).
    #[serde(rename = "out")]
    pub out_iface: String,
    /// The `source` column (`0.0.0.0/0` / `::/0` for any, `!` included when negated).
    pub source: String,
    /// The `destination` column, as `source`.
    pub destination: String,
    /// What follows the columns: `[goto] `, each match's and the target's `print` text.
    pub extra: String,
    /// The rule in iptables' own spelling (`-A CHAIN …`, iptables-save's canonical form).
    pub iptables: String,
    /// The IR rule it counts for, when the datapath enforces it.
    pub rule: Option<RuleId>,
    /// 1-based line in the source file, when there is one.
    pub line: Option<usize>,
    /// Every module of the rule has a printer here (else `extra` names the one missing).
    pub exact: bool,
}

/// One chain: header and rules.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ListedChain {
    /// The chain's name.
    pub name: String,
    /// `ACCEPT`/`DROP` for a built-in chain, `None` for a user chain.
    pub policy: Option<String>,
    /// The policy counter (built-in chains only).
    pub policy_counters: Option<Counter>,
    /// `-j`/`-g` rules naming this user chain (`None` for a built-in chain).
    pub references: Option<u32>,
    /// The chain's rules in order.
    pub rules: Vec<ListedRule>,
}

/// A whole table's listing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Listing {
    /// [`SCHEMA_VERSION`], for readers of the JSON form.
    pub schema_version: u32,
    /// `ipv4` (iptables) or `ipv6` (ip6tables).
    pub family: &'static str,
    /// The table listed (`filter`).
    pub table: &'static str,
    /// Built-in chains in hook order, then user chains by name.
    pub chains: Vec<ListedChain>,
}

impl Listing {
    /// Rules whose text is not iptables' (a module without a printer here).
    pub fn inexact(&self) -> usize {
        self.chains
            .iter()
            .flat_map(|c| &c.rules)
            .filter(|r| !r.exact)
            .count()
    }

    /// The text `iptables -L -v -x -n --line-numbers` prints (ip6tables for IPv6), newline-terminated.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for (i, c) in self.chains.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str(&chain_text(c));
        }
        out
    }
}

/// The header line, the column line and the rule lines of one chain.
pub fn chain_text(c: &ListedChain) -> String {
    let mut out = format!("Chain {}", c.name);
    match (&c.policy, c.references) {
        (Some(p), _) => {
            let k = c.policy_counters.unwrap_or_default();
            let _ = writeln!(
                out,
                " (policy {p} {} packets, {} bytes)",
                k.packets, k.bytes
            );
        }
        (None, r) => {
            let _ = writeln!(out, " ({} references)", r.unwrap_or(0));
        }
    }
    let _ = writeln!(
        out,
        "{:<4} {:>8} {:>10} {:<9}  prot opt {:<6} {:<6}  {:<19}  {:<19} ",
        "num", "pkts", "bytes", "target", "in", "out", "source", "destination"
    );
    for r in &c.rules {
        out.push_str(&rule_text(r));
        out.push('\n');
    }
    out
}

/// One rule line (without the newline), as `print_firewall` prints it.
pub fn rule_text(r: &ListedRule) -> String {
    let (pinv, prot) = match r.prot.strip_prefix('!') {
        Some(p) => ('!', p),
        None => (' ', r.prot.as_str()),
    };
    let (sinv, src) = split_inv(&r.source);
    let (dinv, dst) = split_inv(&r.destination);
    format!(
        "{:<4} {:>8} {:>8} {:<9} {pinv}{:<4} {}  {:<6} {:<6} {sinv}{:<19} {dinv}{:<19} {}",
        r.position,
        r.packets,
        r.bytes,
        r.target,
        prot,
        r.opt,
        r.in_iface,
        r.out_iface,
        src,
        dst,
        r.extra
    )
}

fn split_inv(s: &str) -> (char, &str) {
    match s.strip_prefix('!') {
        Some(rest) => ('!', rest),
        None => (' ', s),
    }
}

/// The chains of `table` in iptables' listing order: built-in chains in hook order, then user chains
/// sorted by name (libiptc keeps them sorted; `strcmp` order).
fn ordered_chains(table: &Table) -> Vec<(String, Option<&ChainDecl>)> {
    let mut out: Vec<(String, Option<&ChainDecl>)> = table
        .kind
        .builtin_chains()
        .iter()
        .map(|b| (b.to_string(), table.chain(b)))
        .collect();
    let mut users: Vec<&ChainDecl> = table.chains.iter().filter(|c| !c.builtin).collect();
    users.sort_by(|a, b| a.name.text.as_bytes().cmp(b.name.text.as_bytes()));
    out.extend(users.into_iter().map(|c| (c.name.text.clone(), Some(c))));
    out
}

fn policy_name(p: Policy) -> &'static str {
    match p {
        Policy::Drop => "DROP",
        // A built-in chain without a policy line keeps ACCEPT, as the kernel creates it.
        Policy::Accept | Policy::None => "ACCEPT",
    }
}

/// The user chain a rule jumps or goes to.
fn jump_of(r: &TypedRule) -> Option<&str> {
    match r.target.as_ref().map(|t| &t.0) {
        Some(Target::Jump(c) | Target::Goto(c)) => Some(c),
        _ => None,
    }
}

/// List `table` (typed rules of an iptables-save source). `counter` gives each rule line's counters
/// (and the IR rule it counts for, if any); `policy` each built-in chain's policy counter. `line_of`
/// maps a byte offset of the source to its 1-based line.
pub fn list_table(
    family: Family,
    table: &Table,
    counter: &dyn Fn(&RuleLine) -> (Counter, Option<RuleId>),
    policy: &dyn Fn(&str) -> Counter,
    line_of: &dyn Fn(u32) -> usize,
) -> Listing {
    let mut refs: HashMap<&str, u32> = HashMap::new();
    for l in &table.rules {
        if let Some(c) = jump_of(&l.rule) {
            *refs.entry(c).or_default() += 1;
        }
    }
    let chains = ordered_chains(table)
        .into_iter()
        .map(|(name, decl)| {
            let builtin = table.kind.is_builtin(&name);
            let rules = table
                .rules_of(&name)
                .enumerate()
                .map(|(i, l)| {
                    let (k, rule) = counter(l);
                    let mut lr = print::rule(family, &name, &l.rule);
                    lr.position = i as u32 + 1;
                    lr.packets = k.packets;
                    lr.bytes = k.bytes;
                    lr.rule = rule;
                    lr.line = Some(line_of(l.span.start));
                    lr
                })
                .collect();
            ListedChain {
                policy: builtin
                    .then(|| policy_name(decl.map_or(Policy::Accept, |d| d.policy)).into()),
                policy_counters: builtin.then(|| policy(&name)),
                references: (!builtin).then(|| refs.get(name.as_str()).copied().unwrap_or(0)),
                name,
                rules,
            }
        })
        .collect();
    Listing {
        schema_version: SCHEMA_VERSION,
        family: family_name(family),
        table: table.kind.name(),
        chains,
    }
}

fn family_name(f: Family) -> &'static str {
    match f {
        Family::V4 => "ipv4",
        Family::V6 => "ipv6",
    }
}

/// The filter table of an iptables-save source, counters keyed by the IR rules `rs` lowered from it
/// (a rule line counts for the IR rule with its span); rule lines the IR does not hold show zero and
/// `rule: None`.
pub fn list_iptables(
    ast: &Ast,
    rs: &Ruleset,
    counts: &Counts,
    line_of: &dyn Fn(u32) -> usize,
) -> Option<Listing> {
    let table = ast.table(TableKind::Filter)?;
    let by_span: HashMap<u32, RuleId> = rs.rules().map(|r| (r.span.start, r.id)).collect();
    let counter = |l: &RuleLine| {
        let id = by_span.get(&l.span.start).copied();
        let k = id
            .and_then(|id| counts.rules.get(&id).copied())
            .unwrap_or_default();
        (k, id)
    };
    let policy = |c: &str| counts.policies.get(c).copied().unwrap_or_default();
    Some(list_table(ast.family, table, &counter, &policy, line_of))
}

/// The listing of a rules file in either language (`format`), with `counts` keyed by the IR rules the
/// file lowers to (the same lowering `compile` does, so the rule ids agree with the artifact's): the
/// filter table of an iptables-save source from its typed rules, a YAML source from the IR. `Err`
/// carries the front end's diagnostics when the file does not lower.
///
/// # Errors
/// The front end's diagnostics (errors and any warnings) when the file does not lower.
pub fn list_source(
    src: &SourceFile,
    format: Format,
    counts: &Counts,
) -> Result<Listing, Vec<crate::diag::Diagnostic>> {
    let line_of = |o: u32| src.line_col(o as usize).0;
    match format {
        Format::Yaml => Ok(list_ir(&crate::yaml::lower(src)?.ruleset, counts)),
        Format::IptablesSave => {
            let rs = crate::lower::iptables(src)?.ruleset;
            let (ast, _) = crate::syntax::iptables::parse(src);
            Ok(list_iptables(&ast, &rs, counts, &line_of).unwrap_or_else(|| list_ir(&rs, counts)))
        }
    }
}

/// The IR a rules file lowers to, as [`list_source`] lowers it (to key [`Counts`] with
/// [`Counts::add_at`]).
///
/// # Errors
/// The front end's diagnostics when the file does not lower.
pub fn lower_source(
    src: &SourceFile,
    format: Format,
) -> Result<Ruleset, Vec<crate::diag::Diagnostic>> {
    Ok(match format {
        Format::Yaml => crate::yaml::lower(src)?.ruleset,
        Format::IptablesSave => crate::lower::iptables(src)?.ruleset,
    })
}

/// The counters written in an iptables-save dump (`[packets:bytes]` of rules and chain lines): what
/// `iptables-restore -c` loads, so the listing of a dump can be compared with iptables' own.
pub fn dump_counters(table: &Table) -> (HashMap<u32, Counter>, HashMap<String, Counter>) {
    let rules = table
        .rules
        .iter()
        .map(|l| {
            let k = l.counters.map_or(Counter::default(), |c| Counter {
                packets: c.packets,
                bytes: c.bytes,
            });
            (l.span.start, k)
        })
        .collect();
    let policies = table
        .chains
        .iter()
        .filter(|c| c.builtin)
        .map(|c| {
            let k = c.counters.map_or(Counter::default(), |c| Counter {
                packets: c.packets,
                bytes: c.bytes,
            });
            (c.name.text.clone(), k)
        })
        .collect();
    (rules, policies)
}

/// List `table` with the counters written in the dump itself ([`dump_counters`]).
pub fn list_with_dump_counters(
    family: Family,
    table: &Table,
    line_of: &dyn Fn(u32) -> usize,
) -> Listing {
    let (rules, policies) = dump_counters(table);
    let counter = |l: &RuleLine| (rules.get(&l.span.start).copied().unwrap_or_default(), None);
    let policy = |c: &str| policies.get(c).copied().unwrap_or_default();
    list_table(family, table, &counter, &policy, line_of)
}

/// The IR (a YAML source) listed as iptables lists the equivalent rules: `-s`/`-d` with one prefix in
/// the columns, ports as `tcp dpt:22` (one value or range) or `multiport dports 80,443` (a list),
/// several addresses or protocols joined with `,` (iptables would expand them into one rule each),
/// `/* comment */`.
pub fn list_ir(rs: &Ruleset, counts: &Counts) -> Listing {
    let mut refs: HashMap<u32, u32> = HashMap::new();
    for r in rs.rules() {
        if let Some(t) = r.action.target() {
            *refs.entry(t.0).or_default() += 1;
        }
    }
    let listed = |c: &crate::ir::Chain| ListedChain {
        name: c.name.clone(),
        policy: c.policy.map(|p| p.target().to_string()),
        policy_counters: c
            .hook
            .map(|_| counts.policies.get(&c.name).copied().unwrap_or_default()),
        references: c
            .hook
            .is_none()
            .then(|| refs.get(&c.id.0).copied().unwrap_or(0)),
        rules: c
            .rules
            .iter()
            .map(|r| {
                let k = counts.rules.get(&r.id).copied().unwrap_or_default();
                let mut lr = ir_rule(rs, &c.name, r);
                lr.packets = k.packets;
                lr.bytes = k.bytes;
                lr
            })
            .collect(),
    };
    // iptables always has the three built-in chains; one the IR lacks is empty with policy ACCEPT.
    let mut chains: Vec<ListedChain> = Hook::ALL
        .into_iter()
        .map(|h| match rs.hook_chain(h) {
            Some(c) => listed(c),
            None => ListedChain {
                name: h.chain_name().to_string(),
                policy: Some("ACCEPT".into()),
                policy_counters: Some(
                    counts
                        .policies
                        .get(h.chain_name())
                        .copied()
                        .unwrap_or_default(),
                ),
                references: None,
                rules: Vec::new(),
            },
        })
        .collect();
    let mut users: Vec<&crate::ir::Chain> = rs.chains.iter().filter(|c| c.hook.is_none()).collect();
    users.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    chains.extend(users.into_iter().map(listed));
    Listing {
        schema_version: SCHEMA_VERSION,
        family: family_name(match rs.family {
            crate::ir::Family::V4 => Family::V4,
            crate::ir::Family::V6 => Family::V6,
        }),
        table: "filter",
        chains,
    }
}

/// The `(type, lowest code, highest code)` one icmp/icmp6 match option stores for an `icmp_type`
/// match of one test: the IPv4 full range is `any` (type 255, codes 0-255); `None` when no single
/// option says it (several tests, a range across types).
fn icmp_parts(m: &crate::ir::Match, family: crate::ir::Family) -> Option<(u32, u32, u32)> {
    let (lo, hi) = m.single_test()?.bounds(m.field.bits())?;
    let (lo, hi) = (lo as u32, hi as u32);
    if (lo, hi) == (0, 0xffff) && family == crate::ir::Family::V4 {
        return Some((255, 0, 255));
    }
    (lo >> 8 == hi >> 8).then_some((lo >> 8, lo & 0xff, hi & 0xff))
}

/// An IPv4 address match of one range test: iptables spells it `-m iprange --src-range/--dst-range
/// LO-HI` (the match and its ends).
fn iprange_of(
    r: &Rule,
    f: Field,
) -> Option<(&crate::ir::Match, std::net::Ipv4Addr, std::net::Ipv4Addr)> {
    let m = r.get(f)?;
    match m.tests[..] {
        [Test::Range { lo, hi }] if matches!(f, Field::SrcIp | Field::DstIp) => {
            Some((m, lo.into(), hi.into()))
        }
        _ => None,
    }
}

/// One IR rule as iptables lists the equivalent rule.
fn ir_rule(rs: &Ruleset, chain: &str, r: &Rule) -> ListedRule {
    let neg = |m: &crate::ir::Match| if m.negated { "!" } else { "" };
    let addr = |f: Field| match r.get(f) {
        None => "0.0.0.0/0".to_string(),
        // `-m iprange`: listed among the matches.
        Some(_) if iprange_of(r, f).is_some() => "0.0.0.0/0".to_string(),
        Some(m) => {
            let v: Vec<String> = m
                .tests
                .iter()
                .map(|t| match *t {
                    Test::Prefix { addr, len } => {
                        let a = crate::ir::DisplayAddr(addr, f).to_string();
                        if len == f.bits() {
                            a.to_string()
                        } else {
                            format!("{a}/{len}")
                        }
                    }
                    Test::Exact(v) => std::net::Ipv4Addr::from(v).to_string(),
                    Test::Range { lo, hi } => format!(
                        "{}-{}",
                        std::net::Ipv4Addr::from(lo),
                        std::net::Ipv4Addr::from(hi)
                    ),
                    Test::Iface { .. } => String::new(),
                })
                .collect();
            format!("{}{}", neg(m), v.join(","))
        }
    };
    let iface = |f: Field| match r.get(f) {
        None => "*".to_string(),
        Some(m) => {
            let v: Vec<String> = m
                .tests
                .iter()
                .map(|t| match t {
                    Test::Iface { name, wildcard } => {
                        format!("{name}{}", if *wildcard { "+" } else { "" })
                    }
                    _ => String::new(),
                })
                .collect();
            format!("{}{}", neg(m), v.join(","))
        }
    };
    let num = |t: &Test| match *t {
        Test::Exact(v) => v.to_string(),
        Test::Range { lo, hi } if lo == hi => lo.to_string(),
        Test::Range { lo, hi } => format!("{lo}:{hi}"),
        Test::Prefix { addr, .. } => addr.to_string(),
        Test::Iface { .. } => String::new(),
    };
    let prot = match r.get(Field::Proto) {
        None => "0".to_string(),
        Some(m) => {
            let v: Vec<String> = m.tests.iter().map(num).collect();
            format!("{}{}", neg(m), v.join(","))
        }
    };
    let mut extra = String::new();
    if matches!(r.action, Action::Goto(_)) {
        extra.push_str("[goto] ");
    }
    // libxt_iprange `print`: `source IP range [! ]LO-HI`, then the destination.
    for (f, label) in [
        (Field::SrcIp, "source IP range"),
        (Field::DstIp, "destination IP range"),
    ] {
        if let Some((m, lo, hi)) = iprange_of(r, f) {
            let _ = write!(
                extra,
                " {label}{} {lo}-{hi}",
                if m.negated { " !" } else { "" }
            );
        }
    }
    let proto_name = match r.get(Field::Proto).and_then(|m| m.single_test()) {
        Some(Test::Exact(17)) => "udp",
        _ => "tcp",
    };
    let ports: Vec<(&str, &str, &crate::ir::Match)> = [
        (Field::SrcPort, "spt", "sports"),
        (Field::DstPort, "dpt", "dports"),
    ]
    .into_iter()
    .filter_map(|(f, one, many)| r.get(f).map(|m| (one, many, m)))
    .collect();
    let single = ports.iter().all(|(_, _, m)| m.tests.len() == 1);
    if !ports.is_empty() && single {
        extra.push(' ');
        extra.push_str(proto_name);
        for (one, _, m) in &ports {
            let t = &m.tests[0];
            let full = matches!(*t, Test::Range { lo: 0, hi: 65535 });
            if full && !m.negated {
                continue;
            }
            let (lo, hi) = t.bounds(m.field.bits()).unwrap_or((0, 0));
            if lo == hi {
                let _ = write!(extra, " {one}:{}{lo}", neg(m));
            } else {
                let _ = write!(extra, " {one}s:{}{lo}:{hi}", neg(m));
            }
        }
    } else {
        for (_, many, m) in &ports {
            let v: Vec<String> = m.tests.iter().map(num).collect();
            let _ = write!(
                extra,
                " multiport {many} {}{}",
                if m.negated { " !" } else { "" },
                v.join(",")
            );
        }
    }
    // libxt_icmp / libip6t_icmp6 `print`: `icmptype T`, `icmp !type T`, then ` code C` / ` codes A-B`.
    let icmp = r
        .get(Field::IcmpType)
        .and_then(|m| icmp_parts(m, rs.family).map(|p| (m, p)));
    if let Some((m, (t, a, b))) = icmp {
        let name = match rs.family {
            crate::ir::Family::V4 => "icmp",
            crate::ir::Family::V6 => "ipv6-icmp",
        };
        let _ = write!(
            extra,
            " {name}{}type {t}",
            if m.negated { " !" } else { "" }
        );
        if a == b {
            let _ = write!(extra, " code {a}");
        } else if (a, b) != (0, 255) {
            let _ = write!(extra, " codes {a}-{b}");
        }
    }
    if let Some(c) = &r.comment {
        let _ = write!(extra, " /* {c} */");
    }
    // libipt_REJECT / libip6t_REJECT `print`: the target's info after the matches'.
    if let Action::Reject(k) = r.action {
        let _ = write!(extra, " reject-with {k}");
    }
    // A field this rendering does not know is named, never left out silently.
    let mut exact = true;
    for m in &r.matches {
        match m.field {
            Field::IcmpType if icmp.is_some() => {}
            Field::SrcIp
            | Field::DstIp
            | Field::Proto
            | Field::SrcPort
            | Field::DstPort
            | Field::InIface
            | Field::OutIface => {}
            #[allow(unreachable_patterns)]
            other => {
                exact = false;
                let _ = write!(extra, " [no listing for {}]", other.info().name);
            }
        }
    }
    let target = match r.action {
        Action::Accept => "ACCEPT".to_string(),
        Action::Drop => "DROP".to_string(),
        Action::Reject(_) => "REJECT".to_string(),
        Action::Return => "RETURN".to_string(),
        Action::Jump(c) | Action::Goto(c) => rs.chain(c).map_or(String::new(), |c| c.name.clone()),
        Action::Log(id) => match rs.log(id).map(|l| &l.kind) {
            Some(crate::ir::LogKind::Nflog { .. }) => "NFLOG".to_string(),
            _ => "LOG".to_string(),
        },
    };
    // libxt_LOG / libxt_NFLOG `print` (numeric, as `-L -n`).
    if let Action::Log(id) = r.action {
        if let Some(spec) = rs.log(id) {
            extra.push_str(&log_print(spec));
        }
    }
    ListedRule {
        position: r.position,
        packets: 0,
        bytes: 0,
        target,
        prot,
        opt: "--".into(),
        in_iface: iface(Field::InIface),
        out_iface: iface(Field::OutIface),
        source: addr(Field::SrcIp),
        destination: addr(Field::DstIp),
        extra,
        iptables: ir_save(rs, chain, r),
        rule: Some(r.id),
        line: None,
        exact,
    }
}

/// An IR rule in iptables-save's spelling (lists joined with `,`, as `iptables -A` reads them).
fn ir_save(rs: &Ruleset, chain: &str, r: &Rule) -> String {
    let mut out = format!("-A {chain}");
    let list = |m: &crate::ir::Match, addr: bool| -> String {
        let v: Vec<String> = m
            .tests
            .iter()
            .map(|t| match *t {
                Test::Prefix { addr: a, len } if addr => {
                    format!("{}/{len}", crate::ir::DisplayAddr(a, m.field))
                }
                Test::Exact(v) if addr => format!("{}/32", std::net::Ipv4Addr::from(v)),
                Test::Exact(v) => v.to_string(),
                Test::Range { lo, hi } if lo == hi => lo.to_string(),
                Test::Range { lo, hi } => format!("{lo}:{hi}"),
                Test::Prefix { addr: a, .. } => a.to_string(),
                Test::Iface { ref name, wildcard } => {
                    format!("{name}{}", if wildcard { "+" } else { "" })
                }
            })
            .collect();
        v.join(",")
    };
    let opt = |out: &mut String, f: Field, flag: &str, addr: bool| {
        if let Some(m) = r.get(f) {
            let _ = write!(
                out,
                "{} {flag} {}",
                if m.negated { " !" } else { "" },
                list(m, addr)
            );
        }
    };
    for f in [Field::SrcIp, Field::DstIp] {
        if iprange_of(r, f).is_none() {
            opt(
                &mut out,
                f,
                if f == Field::SrcIp { "-s" } else { "-d" },
                true,
            );
        }
    }
    opt(&mut out, Field::InIface, "-i", false);
    opt(&mut out, Field::OutIface, "-o", false);
    if let Some(m) = r.get(Field::Proto) {
        let v: Vec<String> = m
            .tests
            .iter()
            .map(|t| match *t {
                Test::Exact(n) => {
                    crate::syntax::iptables::values::proto_save_name(n.min(255) as u8)
                }
                _ => String::new(),
            })
            .collect();
        let _ = write!(
            out,
            "{} -p {}",
            if m.negated { " !" } else { "" },
            v.join(",")
        );
    }
    let ranges: Vec<_> = [(Field::SrcIp, "--src-range"), (Field::DstIp, "--dst-range")]
        .into_iter()
        .filter_map(|(f, flag)| iprange_of(r, f).map(|x| (x, flag)))
        .collect();
    if !ranges.is_empty() {
        out.push_str(" -m iprange");
        for ((m, lo, hi), flag) in ranges {
            let _ = write!(
                out,
                "{} {flag} {lo}-{hi}",
                if m.negated { " !" } else { "" }
            );
        }
    }
    let ports: Vec<&crate::ir::Match> = [Field::SrcPort, Field::DstPort]
        .into_iter()
        .filter_map(|f| r.get(f))
        .collect();
    if !ports.is_empty() {
        let proto = match r.get(Field::Proto).and_then(|m| m.single_test()) {
            Some(Test::Exact(17)) => "udp",
            _ => "tcp",
        };
        if ports.iter().all(|m| m.tests.len() == 1) {
            let _ = write!(out, " -m {proto}");
            for (f, flag) in [(Field::SrcPort, "--sport"), (Field::DstPort, "--dport")] {
                if let Some(m) = r.get(f) {
                    if matches!(m.tests[0], Test::Range { lo: 0, hi: 65535 }) && !m.negated {
                        continue;
                    }
                    let _ = write!(
                        out,
                        "{} {flag} {}",
                        if m.negated { " !" } else { "" },
                        list(m, false)
                    );
                }
            }
        } else {
            for (f, flag) in [(Field::SrcPort, "--sports"), (Field::DstPort, "--dports")] {
                if let Some(m) = r.get(f) {
                    let _ = write!(
                        out,
                        " -m multiport{} {flag} {}",
                        if m.negated { " !" } else { "" },
                        list(m, false)
                    );
                }
            }
        }
    }
    let icmp = r
        .get(Field::IcmpType)
        .and_then(|m| icmp_parts(m, rs.family).map(|p| (m, p)));
    if let Some((m, (t, a, b))) = icmp {
        let (module, opt) = match rs.family {
            crate::ir::Family::V4 => ("icmp", "--icmp-type"),
            crate::ir::Family::V6 => ("icmp6", "--icmpv6-type"),
        };
        let value = match (t, a, b) {
            (255, 0, 255) if rs.family == crate::ir::Family::V4 => "any".to_string(),
            (t, 0, 255) => t.to_string(),
            (t, a, b) if a == b => format!("{t}/{a}"),
            (t, a, b) => format!("{t}/{a}:{b}"),
        };
        let _ = write!(
            out,
            " -m {module}{} {opt} {value}",
            if m.negated { " !" } else { "" }
        );
    }
    for m in &r.matches {
        match m.field {
            Field::IcmpType if icmp.is_some() => {}
            Field::SrcIp
            | Field::DstIp
            | Field::Proto
            | Field::SrcPort
            | Field::DstPort
            | Field::InIface
            | Field::OutIface => {}
            #[allow(unreachable_patterns)]
            other => {
                let _ = write!(out, " [no iptables spelling for {}]", other.info().name);
            }
        }
    }
    if let Some(c) = &r.comment {
        let mut s = String::new();
        crate::syntax::iptables::ext::save_string(&mut s, c);
        let _ = write!(out, " -m comment --comment{s}");
    }
    match r.action {
        Action::Accept => out.push_str(" -j ACCEPT"),
        Action::Drop => out.push_str(" -j DROP"),
        Action::Reject(k) => {
            let _ = write!(out, " -j REJECT --reject-with {k}");
        }
        Action::Return => out.push_str(" -j RETURN"),
        Action::Jump(c) => {
            let _ = write!(out, " -j {}", rs.chain(c).map_or("", |c| c.name.as_str()));
        }
        Action::Goto(c) => {
            let _ = write!(out, " -g {}", rs.chain(c).map_or("", |c| c.name.as_str()));
        }
        Action::Log(id) => {
            if let Some(spec) = rs.log(id) {
                out.push_str(&log_save(spec));
            }
        }
    }
    out
}

/// A log target in iptables-save's spelling (libxt_LOG / libxt_NFLOG `save`): ` -j LOG --log-prefix
/// "x: " --log-level 6 --log-tcp-sequence`, ` -j NFLOG --nflog-prefix x --nflog-group 2`; defaults
/// (level 4, group 0, an empty prefix) left out.
pub fn log_save(spec: &crate::ir::LogSpec) -> String {
    use crate::ir::{LogKind, LOG_IPOPT, LOG_MACDECODE, LOG_TCPOPT, LOG_TCPSEQ, LOG_UID};
    let mut out = String::new();
    match spec.kind {
        LogKind::Log { level, flags } => {
            out.push_str(" -j LOG");
            if !spec.prefix.is_empty() {
                out.push_str(" --log-prefix");
                crate::syntax::iptables::ext::save_string(&mut out, &spec.prefix);
            }
            if level != 4 {
                let _ = write!(out, " --log-level {level}");
            }
            for (bit, name) in [
                (LOG_TCPSEQ, "tcp-sequence"),
                (LOG_TCPOPT, "tcp-options"),
                (LOG_IPOPT, "ip-options"),
                (LOG_UID, "uid"),
                (LOG_MACDECODE, "macdecode"),
            ] {
                if flags & bit != 0 {
                    let _ = write!(out, " --log-{name}");
                }
            }
        }
        LogKind::Nflog {
            group,
            range,
            threshold,
        } => {
            out.push_str(" -j NFLOG");
            if !spec.prefix.is_empty() {
                out.push_str(" --nflog-prefix");
                crate::syntax::iptables::ext::save_string(&mut out, &spec.prefix);
            }
            if group != 0 {
                let _ = write!(out, " --nflog-group {group}");
            }
            if range != 0 {
                let _ = write!(out, " --nflog-range {range}");
            }
            if threshold != 0 {
                let _ = write!(out, " --nflog-threshold {threshold}");
            }
        }
    }
    out
}

/// A log target as `iptables -L -n` prints it after the matches (libxt_LOG `print`: ` LOG flags F
/// level L prefix "P"`; libxt_NFLOG: ` nflog-prefix P nflog-group G …`).
fn log_print(spec: &crate::ir::LogSpec) -> String {
    use crate::ir::LogKind;
    let mut out = String::new();
    match spec.kind {
        LogKind::Log { level, flags } => {
            let _ = write!(out, " LOG flags {flags} level {level}");
            if !spec.prefix.is_empty() {
                let _ = write!(out, " prefix \"{}\"", spec.prefix);
            }
        }
        LogKind::Nflog {
            group,
            range,
            threshold,
        } => {
            if !spec.prefix.is_empty() {
                out.push_str(" nflog-prefix");
                crate::syntax::iptables::ext::save_string(&mut out, &spec.prefix);
            }
            if group != 0 {
                let _ = write!(out, " nflog-group {group}");
            }
            if range != 0 {
                let _ = write!(out, " nflog-range {range}");
            }
            if threshold != 0 {
                let _ = write!(out, " nflog-threshold {threshold}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::iptables as syn;

    fn fixture(name: &str) -> String {
        let p = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/listing")
            .join(name);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    /// `columns.iptables-L` is what iptables-legacy 1.8.9 printed for `columns.rules` loaded with
    /// `iptables-legacy-restore -c` (the root tier `tests/tests/listing.rs` re-measures it live).
    #[test]
    fn listing_equals_recorded_iptables_output() {
        let src = SourceFile::new("columns.rules", fixture("columns.rules"));
        let (ast, diags) = syn::parse(&src);
        assert!(diags.iter().all(|d| !d.is_error()), "{diags:?}");
        let table = ast.table(TableKind::Filter).unwrap();
        let l = list_with_dump_counters(ast.family, table, &|o| src.line_col(o as usize).0);
        assert_eq!(l.to_text(), fixture("columns.iptables-L"));
        assert_eq!(l.inexact(), 0);
        let web = l.chains.iter().find(|c| c.name == "web").unwrap();
        assert_eq!(web.references, Some(2));
        assert_eq!(
            l.chains[0].rules[1].iptables,
            "-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT"
        );
        assert_eq!(l.chains[0].rules[1].line, Some(7));
    }

    #[test]
    fn counters_follow_rule_ids_and_policies() {
        let src = SourceFile::new(
            "t.rules",
            "*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\n-A INPUT -j LOG\nCOMMIT\n",
        );
        let (ast, _) = syn::parse(&src);
        let rs = Ruleset {
            chains: vec![crate::ir::Chain {
                id: crate::ir::ChainId(0),
                name: "INPUT".into(),
                hook: Some(Hook::Input),
                policy: Some(crate::ir::Verdict::Drop),
                rules: vec![Rule {
                    id: RuleId(0),
                    chain: crate::ir::ChainId(0),
                    position: 1,
                    matches: vec![],
                    action: Action::Accept,
                    comment: None,
                    counters: None,
                    span: ast.tables[0].rules[0].span,
                }],
                span: Default::default(),
            }],
            ..Ruleset::default()
        };
        let mut counts = Counts::default();
        counts.rules.insert(
            RuleId(0),
            Counter {
                packets: 3,
                bytes: 180,
            },
        );
        counts.policies.insert(
            "INPUT".into(),
            Counter {
                packets: 1,
                bytes: 60,
            },
        );
        let l = list_iptables(&ast, &rs, &counts, &|o| src.line_col(o as usize).0).unwrap();
        let text = l.to_text();
        assert!(
            text.starts_with("Chain INPUT (policy DROP 1 packets, 60 bytes)\n"),
            "{text}"
        );
        assert_eq!(l.chains[0].rules[0].packets, 3);
        assert_eq!(l.chains[0].rules[0].rule, Some(RuleId(0)));
        // The LOG rule is not in the IR: listed, zero, no rule id.
        assert_eq!(l.chains[0].rules[1].rule, None);
        assert_eq!(l.chains[0].rules[1].extra, " LOG flags 0 level 4");
    }

    #[test]
    fn ir_rules_are_listed_as_iptables_lists_them() {
        let src = SourceFile::new(
            "t.rules",
            "*filter\n:INPUT DROP [0:0]\n:web - [0:0]\n-A INPUT -s 10.0.0.0/8 -p tcp -m multiport --dports 80,443 -j web\n\
             -A INPUT ! -i eth0 -p udp --dport 53 -m comment --comment dns -j ACCEPT\n\
             -A INPUT -p icmp -m icmp --icmp-type 8 -j ACCEPT\n-A INPUT -p icmp -m icmp ! --icmp-type 3/3 -j DROP\n\
             -A INPUT -p icmp -m icmp --icmp-type 3/1:3 -j DROP\n-A INPUT -p icmp --icmp-type any -j ACCEPT\n\
             -A INPUT -p udp -m iprange ! --src-range 10.0.0.1-10.0.0.9 --dst-range 192.0.2.1-192.0.2.5 -j ACCEPT\n\
             -A web -j RETURN\nCOMMIT\n",
        );
        let rs = crate::lower::iptables(&src).unwrap().ruleset;
        let l = list_ir(&rs, &Counts::default());
        let (ast, _) = syn::parse(&src);
        let typed =
            list_with_dump_counters(ast.family, ast.table(TableKind::Filter).unwrap(), &|o| {
                src.line_col(o as usize).0
            });
        // The same rules from the IR list exactly as from the typed source.
        assert_eq!(l.to_text(), typed.to_text());
        assert_eq!(
            l.chains[0].rules[1].iptables,
            "-A INPUT ! -i eth0 -p udp -m udp --dport 53 -m comment --comment dns -j ACCEPT"
        );
        assert_eq!(
            l.chains[0].rules[3].iptables,
            "-A INPUT -p icmp -m icmp ! --icmp-type 3/3 -j DROP"
        );
        // `iptables -L -n` of iptables-legacy 1.8.9 (checked with the binary).
        let extra: Vec<&str> = l.chains[0].rules[2..]
            .iter()
            .map(|r| r.extra.trim())
            .collect();
        assert_eq!(
            extra,
            [
                "icmptype 8",
                "icmp !type 3 code 3",
                "icmptype 3 codes 1-3",
                "icmptype 255",
                "source IP range ! 10.0.0.1-10.0.0.9 destination IP range 192.0.2.1-192.0.2.5"
            ]
        );
        assert_eq!(
            l.chains[0].rules[6].iptables,
            "-A INPUT -p udp -m iprange ! --src-range 10.0.0.1-10.0.0.9 --dst-range 192.0.2.1-192.0.2.5 -j ACCEPT"
        );
    }
}
