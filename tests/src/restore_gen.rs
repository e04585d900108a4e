//! Generated iptables-restore files for the differential test against `iptables-legacy-restore`
//! (`tests/tests/restore_diff.rs`, `scripts/restore-diff.sh`).
//!
//! Seeds are the rules of the shared corpus (`../shared/corpus`): every rule line of iptables' own
//! `extensions/*.t` files (with the table and chains of its section; `libip6t_*` as IPv6, `libxt_*` as
//! IPv4 or IPv6) and every `-A` line of the real dumps (`dumps/`, `iptables-testsuite/shell-dumps/`, with
//! the user chains of their table). Each generated rule is a seed with zero, one or two *mutations* (see
//! [`Mutation`]): number bases and leading zeros, abbreviated addresses and masks, getopt_long option
//! prefixes and aliases, negation placements, quoting and escapes, whitespace, protocol/service/ICMP
//! names, several targets, duplicated options, unusual bytes. Whole files are mutated too: chain names
//! that collide with built-ins or are too long, chains declared twice, after their first use, or with
//! `-N`.
//!
//! Guarantees: [`Generator::file`] is a pure function of the seed pool and the generator's seed (the RNG is
//! SplitMix64, written out here so the sequence never changes with a dependency's version); every file
//! is one `*table` … `COMMIT` of one address family, for the table and family of its seeds; every
//! line records which rule it came from and which mutations made it ([`Line`]), so a difference can be
//! classified by kind.
//!
//! Thrown away: seed lines whose result depends on kernel objects that the throwaway namespace does not
//! have (`-m set`/`-j SET` sets, `-m nfacct` objects, `-j CT --helper/--timeout`), and the `.t` files'
//! `@`/`%` commands; see [`needs_kernel_objects`].
use std::collections::BTreeMap;
use std::path::Path;

/// IPv4 (`iptables-legacy-restore`) or IPv6 (`ip6tables-legacy-restore`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    /// The restore program of this family.
    pub fn restore(self) -> &'static str {
        match self {
            Family::V4 => "iptables-legacy-restore",
            Family::V6 => "ip6tables-legacy-restore",
        }
    }
    /// The save program of this family.
    pub fn save(self) -> &'static str {
        match self {
            Family::V4 => "iptables-legacy-save",
            Family::V6 => "ip6tables-legacy-save",
        }
    }
}

/// One corpus rule: `-A {chain} {rule}` in `*{table}` of `family`.
#[derive(Clone, Debug)]
pub struct Seed {
    pub family: Family,
    pub table: String,
    pub chain: String,
    /// The rule after `-A CHAIN ` (counters removed).
    pub rule: String,
    /// User chains of the seed's table that must be declared (dump seeds).
    pub chains: Vec<String>,
    /// `file:line` in the corpus.
    pub origin: String,
}

/// The built-in chains of a table (iptables' `xt_table` hooks).
pub fn builtin_chains(table: &str) -> &'static [&'static str] {
    match table {
        "nat" => &["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"],
        "mangle" => &["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"],
        "raw" => &["PREROUTING", "OUTPUT"],
        _ => &["INPUT", "FORWARD", "OUTPUT"],
    }
}

/// Rules whose acceptance depends on kernel objects or modules a fresh namespace on this machine does not
/// have: ipsets, nfacct objects, conntrack helpers and timeout policies, SELinux contexts (`-j SECMARK`),
/// LED triggers, cgroup paths,
/// rate estimators (`-m rateest` needs a `-j RATEEST` estimator), and the `xt_ipvs` module.
pub fn needs_kernel_objects(rule: &str) -> bool {
    rule.contains("--match-set")
        || rule.contains("SECMARK")
        || rule.contains("-j LED")
        || (rule.contains("-m cgroup") && rule.contains("--path"))
        || rule.contains("-m rateest")
        || rule.contains("-m ipvs")
        || rule.contains("-j SET")
        || rule.contains("--nfacct-name")
        || (rule.contains("-j CT") && (rule.contains("--helper") || rule.contains("--timeout")))
}

/// The seed pool: every usable rule of the corpus under `root` (`../shared/corpus`). Empty when the corpus
/// is absent.
pub fn load_seeds(root: &Path) -> Vec<Seed> {
    let mut seeds = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(root.join("iptables-testsuite/extensions"))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p: &std::path::PathBuf| p.extension().is_some_and(|e| e == "t"));
    files.sort();
    for path in &files {
        let stem = path
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let families: &[Family] = if stem.starts_with("libip6t") {
            &[Family::V6]
        } else if stem.starts_with("libxt") {
            &[Family::V4, Family::V6]
        } else {
            &[Family::V4]
        };
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        let mut chains = vec!["INPUT".to_string()];
        let mut table = "filter".to_string();
        for (n, l) in text.lines().enumerate() {
            let l = l.trim_end();
            if l.is_empty() || l.starts_with('#') || l.starts_with('@') || l.starts_with('%') {
                continue;
            }
            if let Some(c) = l.strip_prefix(':') {
                chains = c.split(',').map(str::to_string).collect();
                continue;
            }
            if let Some(t) = l.strip_prefix('*') {
                table = t.to_string();
                continue;
            }
            let rule = l.split(';').next().unwrap_or_default();
            if rule.is_empty() || needs_kernel_objects(rule) {
                continue;
            }
            for &family in families {
                for chain in &chains {
                    seeds.push(Seed {
                        family,
                        table: table.clone(),
                        chain: chain.clone(),
                        rule: rule.to_string(),
                        chains: Vec::new(),
                        origin: format!("{stem}.t:{}", n + 1),
                    });
                }
            }
        }
    }
    for sub in ["dumps", "iptables-testsuite/shell-dumps"] {
        let mut files: Vec<_> = std::fs::read_dir(root.join(sub))
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        for path in &files {
            let Ok(text) = std::fs::read_to_string(path) else {
                continue;
            };
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let family = if name.contains("ip6tables") || text.contains("ip6tables") {
                Family::V6
            } else {
                Family::V4
            };
            let mut table = "filter".to_string();
            let mut user: Vec<String> = Vec::new();
            let mut pending: Vec<Seed> = Vec::new();
            for (n, l) in text.lines().enumerate() {
                let l = l.trim();
                if let Some(t) = l.strip_prefix('*') {
                    table = t.to_string();
                    user.clear();
                } else if let Some(c) = l.strip_prefix(':') {
                    let mut w = c.split_whitespace();
                    let (Some(ch), Some("-")) = (w.next(), w.next()) else {
                        continue;
                    };
                    user.push(ch.to_string());
                } else if l == "COMMIT" {
                    for mut s in pending.drain(..) {
                        s.chains = user.clone();
                        seeds.push(s);
                    }
                } else {
                    let l = match l.strip_prefix('[') {
                        Some(r) => r.split_once("] ").map(|(_, r)| r).unwrap_or(r),
                        None => l,
                    };
                    let Some(rest) = l.strip_prefix("-A ") else {
                        continue;
                    };
                    let Some((chain, rule)) = rest.split_once(' ') else {
                        continue;
                    };
                    if needs_kernel_objects(rule) {
                        continue;
                    }
                    pending.push(Seed {
                        family,
                        table: table.clone(),
                        chain: chain.to_string(),
                        rule: rule.to_string(),
                        chains: Vec::new(),
                        origin: format!("{name}:{}", n + 1),
                    });
                }
            }
        }
    }
    seeds
}

/// SplitMix64 (Steele, Lea, Flood 2014): a fixed, tiny, seedable sequence.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    /// `true` with probability `num/den`.
    pub fn chance(&mut self, num: usize, den: usize) -> bool {
        self.below(den) < num
    }
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

/// What was done to a seed line (or to the file around it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mutation {
    /// A number rewritten: hex, octal, leading zeros, sign, huge.
    NumberBase,
    /// An address or mask abbreviated or respelled (`10/8`, `/255.255.0.0`, `/024`, IPv6 forms).
    Address,
    /// A long option abbreviated to a getopt_long prefix, or replaced by its alias.
    OptionPrefix,
    /// A `!` moved, doubled, glued or added.
    Negation,
    /// A word quoted, partly quoted, escaped or unterminated.
    Quoting,
    /// Blanks added: at the line end, between words, CR, tabs, leading.
    Whitespace,
    /// A protocol, port or ICMP type given by name (or by another spelling of the number).
    Names,
    /// A second target (`-j`/`-g`), a target changed, a chain that does not exist.
    Targets,
    /// An option repeated.
    Duplicate,
    /// An unusual byte inserted (control, non-ASCII UTF-8, Latin-1).
    Bytes,
    /// A user chain named like a built-in, too long, declared twice, declared after use, or with `-N`.
    Chains,
}

impl Mutation {
    pub const ALL: [Mutation; 11] = [
        Mutation::NumberBase,
        Mutation::Address,
        Mutation::OptionPrefix,
        Mutation::Negation,
        Mutation::Quoting,
        Mutation::Whitespace,
        Mutation::Names,
        Mutation::Targets,
        Mutation::Duplicate,
        Mutation::Bytes,
        Mutation::Chains,
    ];
}

/// One line of a generated file.
#[derive(Clone, Debug)]
pub struct Line {
    pub bytes: Vec<u8>,
    /// The corpus rule it came from (rule lines only).
    pub origin: Option<String>,
    /// Mutations applied to it (empty: the seed as written, or a structural line).
    pub mutations: Vec<Mutation>,
    /// A rule line (`-A`), as opposed to a header, declaration or `COMMIT`.
    pub is_rule: bool,
}

impl Line {
    fn structural(text: impl Into<String>) -> Line {
        Line {
            bytes: text.into().into_bytes(),
            origin: None,
            mutations: Vec::new(),
            is_rule: false,
        }
    }
}

/// A generated restore file: one table of one family.
#[derive(Clone, Debug)]
pub struct GenFile {
    pub family: Family,
    pub table: String,
    pub lines: Vec<Line>,
}

impl GenFile {
    /// The file's bytes (every line ends with `\n`).
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for l in &self.lines {
            out.extend_from_slice(&l.bytes);
            out.push(b'\n');
        }
        out
    }
    /// Number of rule lines.
    pub fn rules(&self) -> usize {
        self.lines.iter().filter(|l| l.is_rule).count()
    }
}

/// Generated files, deterministic in `seed`.
pub struct Generator {
    groups: BTreeMap<(Family, String), Vec<Seed>>,
    keys: Vec<(Family, String)>,
    rng: Rng,
}

/// Extra user chains every file declares, so that `-j`/`-g` mutations have somewhere to go.
const EXTRA_CHAINS: [&str; 2] = ["twc-a", "twc_b"];

impl Generator {
    /// `None` when the pool is empty (corpus absent).
    pub fn new(seeds: Vec<Seed>, seed: u64) -> Option<Generator> {
        let mut groups: BTreeMap<(Family, String), Vec<Seed>> = BTreeMap::new();
        for s in seeds {
            groups
                .entry((s.family, s.table.clone()))
                .or_default()
                .push(s);
        }
        let keys: Vec<_> = groups.keys().cloned().collect();
        if keys.is_empty() {
            return None;
        }
        Some(Generator {
            groups,
            keys,
            rng: Rng::new(seed),
        })
    }

    /// The next file, with `rules` rule lines.
    pub fn file(&mut self, rules: usize) -> GenFile {
        let rng = &mut self.rng;
        // Weight groups by size so the big filter groups dominate, but every table is reached.
        let key = if rng.chance(1, 3) {
            rng.pick(&self.keys).clone()
        } else {
            let total: usize = self.groups.values().map(Vec::len).sum();
            let mut k = rng.below(total);
            let mut chosen = self.keys[0].clone();
            for (key, g) in &self.groups {
                if k < g.len() {
                    chosen = key.clone();
                    break;
                }
                k -= g.len();
            }
            chosen
        };
        let pool = &self.groups[&key];
        let (family, table) = key;
        let picked: Vec<&Seed> = (0..rules).map(|_| rng.pick(pool)).collect();
        let mut user: Vec<String> = EXTRA_CHAINS.iter().map(|s| s.to_string()).collect();
        for s in &picked {
            for c in s.chains.iter().chain(std::iter::once(&s.chain)) {
                if !builtin_chains(&table).contains(&c.as_str()) && !user.contains(c) {
                    user.push(c.clone());
                }
            }
        }
        let mut lines = Vec::new();
        lines.push(Line::structural(match family {
            Family::V4 => "# Generated by iptables-save v1.8.9",
            Family::V6 => "# Generated by ip6tables-save v1.8.9",
        }));
        lines.push(Line::structural(format!("*{table}")));
        for b in builtin_chains(&table) {
            let policy = if rng.chance(1, 4) { "DROP" } else { "ACCEPT" };
            lines.push(Line::structural(format!(":{b} {policy} [0:0]")));
        }
        for c in &user {
            lines.push(Line::structural(format!(":{c} - [0:0]")));
        }
        let decl_end = lines.len();
        for s in picked {
            let mut words = split_words(&s.rule);
            let mut mutations = Vec::new();
            let n = match rng.below(10) {
                0..=1 => 0,
                2..=7 => 1,
                _ => 2,
            };
            for _ in 0..n {
                // Try a few kinds until one applies to this rule.
                for _ in 0..6 {
                    let m = *rng.pick(&Mutation::ALL[..10]);
                    if mutate(rng, m, &mut words, &user, family) {
                        mutations.push(m);
                        break;
                    }
                }
            }
            let mut bytes = format!("-A {} ", s.chain).into_bytes();
            bytes.extend(join_words(&words));
            if mutations.contains(&Mutation::Whitespace) && rng.chance(1, 2) {
                let tail: &[&[u8]] = &[b" ", b"\t", b"  \t ", b"\r", b" \r"];
                let t: &&[u8] = rng.pick(tail);
                bytes.extend_from_slice(t);
            }
            lines.push(Line {
                bytes,
                origin: Some(s.origin.clone()),
                mutations,
                is_rule: true,
            });
        }
        if rng.chance(1, 3) {
            mutate_chains(rng, &mut lines, decl_end, &table);
        }
        lines.push(Line::structural("COMMIT"));
        GenFile {
            family,
            table,
            lines,
        }
    }
}

/// Words of a rule, split on blanks outside double quotes (quotes kept as written).
pub fn split_words(rule: &str) -> Vec<Vec<u8>> {
    let mut words = Vec::new();
    let mut cur = Vec::new();
    let mut quoted = false;
    let mut escaped = false;
    for &b in rule.as_bytes() {
        if escaped {
            cur.push(b);
            escaped = false;
            continue;
        }
        match b {
            b'\\' => {
                cur.push(b);
                escaped = true;
            }
            b'"' => {
                cur.push(b);
                quoted = !quoted;
            }
            b' ' | b'\t' if !quoted => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            _ => cur.push(b),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

fn join_words(words: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, w) in words.iter().enumerate() {
        if i > 0 && !w.is_empty() && !out.ends_with(b"\t") {
            out.push(b' ');
        }
        out.extend_from_slice(w);
    }
    out
}

fn is_option(w: &[u8]) -> bool {
    w.len() >= 2 && w[0] == b'-' && (w[1].is_ascii_alphabetic() || w[1] == b'-')
}

/// Index of the value word following an option word, when there is one.
fn value_indices(words: &[Vec<u8>]) -> Vec<usize> {
    (0..words.len())
        .filter(|&i| !is_option(&words[i]) && words[i] != b"!" && i > 0)
        .collect()
}

/// Options (and their aliases) that iptables spells several ways.
const ALIASES: &[(&str, &[&str])] = &[
    ("-p", &["--protocol", "--proto", "--pro"]),
    ("-s", &["--source", "--src", "--sou"]),
    ("-d", &["--destination", "--dst", "--dest"]),
    ("-i", &["--in-interface", "--in-int", "--in"]),
    ("-o", &["--out-interface", "--out"]),
    ("-j", &["--jump", "--ju"]),
    ("-g", &["--goto", "--go"]),
    ("-m", &["--match", "--mat"]),
    (
        "--dport",
        &["--destination-port", "--dpo", "--destination-p"],
    ),
    ("--sport", &["--source-port", "--spo", "--source-p"]),
    ("--dports", &["--destination-ports", "--dports"]),
    ("--sports", &["--source-ports"]),
    ("--icmp-type", &["--icmp-t", "--icmp"]),
    ("--icmpv6-type", &["--icmpv6-t", "--icmpv6"]),
];

const SERVICES: &[&str] = &[
    "ssh",
    "http",
    "https",
    "domain",
    "smtp",
    "ftp",
    "ftp-data",
    "www",
    "ntp",
    "telnet",
    "bootps",
    "bootpc",
    "imap",
    "pop3",
    "snmp",
    "ldap",
    "nosuchsvc",
    "SSH",
    "http-alt",
    "mysql",
    "tftp",
    "echo",
    "discard",
    "kerberos",
    "syslog",
    "isakmp",
];

const PROTOS: &[&str] = &[
    "tcp",
    "TCP",
    "Tcp",
    "6",
    "06",
    "0x6",
    "udp",
    "17",
    "021",
    "icmp",
    "1",
    "all",
    "ALL",
    "0",
    "esp",
    "ah",
    "sctp",
    "udplite",
    "icmpv6",
    "ipv6-icmp",
    "icmp6",
    "58",
    "255",
    "256",
    "gre",
    "ipencap",
    "mh",
    "ipv6-mh",
    "dccp",
    "igmp",
    "-1",
    "tc",
    "ud",
];

const ICMP: &[&str] = &[
    "echo-request",
    "echo-reply",
    "ping",
    "pong",
    "any",
    "destination-unreachable",
    "port-unreachable",
    "host-unreachable",
    "network-unreachable",
    "host-prohibited",
    "net-prohibited",
    "admin-prohibited",
    "redirect",
    "time-exceeded",
    "ttl-exceeded",
    "ttl-zero-during-transit",
    "parameter-problem",
    "source-quench",
    "timestamp-request",
    "timestamp-reply",
    "address-mask-request",
    "router-advertisement",
    "router-solicitation",
    "echo-req",
    "echo",
    "dest",
    "8",
    "8/0",
    "3/3",
    "0x8",
    "010",
    "255",
    "256",
    "3/256",
    "Echo-Request",
    "fragmentation-needed",
    "source-route-failed",
    "communication-prohibited",
];

const ICMP6: &[&str] = &[
    "echo-request",
    "echo-reply",
    "neighbour-solicitation",
    "neighbor-solicitation",
    "neighbour-advertisement",
    "neighbor-advertisement",
    "router-solicitation",
    "router-advertisement",
    "redirect",
    "packet-too-big",
    "destination-unreachable",
    "no-route",
    "communication-prohibited",
    "address-unreachable",
    "port-unreachable",
    "time-exceeded",
    "ttl-zero-during-transit",
    "parameter-problem",
    "bad-header",
    "unknown-header-type",
    "unknown-option",
    "ping",
    "pong",
    "echo-req",
    "neigh",
    "128",
    "1/4",
    "0x80",
    "0200",
    "255",
    "256",
    "any",
];

const ODD_BYTES: &[&[u8]] = &[
    b"\t",
    b"\x0b",
    b"\x0c",
    b"\x7f",
    b"\x01",
    "é".as_bytes(),
    "\u{a0}".as_bytes(),
    b"\xfc",
    b"\xff",
    b"#",
    b"\\",
    b"'",
    b"\"",
    "ü".as_bytes(),
    b"$",
    b";",
];

/// Apply mutation `m` to `words`; `false` when it does not apply to this rule.
fn mutate(
    rng: &mut Rng,
    m: Mutation,
    words: &mut Vec<Vec<u8>>,
    chains: &[String],
    family: Family,
) -> bool {
    match m {
        Mutation::NumberBase => {
            let cands: Vec<usize> = value_indices(words)
                .into_iter()
                .filter(|&i| words[i].iter().any(u8::is_ascii_digit))
                .collect();
            if cands.is_empty() {
                return false;
            }
            let i = *rng.pick(&cands);
            let w = &words[i];
            // Digit runs of the word.
            let mut runs = Vec::new();
            let mut s = None;
            for (k, b) in w.iter().enumerate() {
                match (b.is_ascii_digit(), s) {
                    (true, None) => s = Some(k),
                    (false, Some(st)) => {
                        runs.push((st, k));
                        s = None;
                    }
                    _ => {}
                }
            }
            if let Some(st) = s {
                runs.push((st, w.len()));
            }
            let (a, b) = *rng.pick(&runs);
            let text = std::str::from_utf8(&w[a..b]).unwrap_or("0");
            let v: u64 = text.parse().unwrap_or(0);
            let new = match rng.below(9) {
                0 => format!("0x{v:x}"),
                1 => format!("0X{v:X}"),
                2 => format!("0{v:o}"),
                3 => format!("0{v}"),
                4 => format!("00{v}"),
                5 => format!("+{v}"),
                6 => format!("{}", v.saturating_add(1 << 32)),
                7 => format!("{}", v.saturating_sub(1)),
                _ => format!("{}", v.saturating_add(1)),
            };
            let mut nw = w[..a].to_vec();
            nw.extend_from_slice(new.as_bytes());
            nw.extend_from_slice(&w[b..]);
            words[i] = nw;
            true
        }
        Mutation::Address => {
            let cands: Vec<usize> = (1..words.len())
                .filter(|&i| {
                    matches!(
                        words[i - 1].as_slice(),
                        b"-s"
                            | b"-d"
                            | b"--source"
                            | b"--destination"
                            | b"--src"
                            | b"--dst"
                            | b"--to-destination"
                            | b"--to-source"
                            | b"--src-range"
                            | b"--dst-range"
                            | b"--to"
                    )
                })
                .collect();
            if cands.is_empty() {
                return false;
            }
            let i = *rng.pick(&cands);
            let w = String::from_utf8_lossy(&words[i]).into_owned();
            let (addr, mask) = match w.split_once('/') {
                Some((a, m)) => (a.to_string(), Some(m.to_string())),
                None => (w.clone(), None),
            };
            let new = if addr.contains(':') || family == Family::V6 {
                match rng.below(6) {
                    0 => addr.to_uppercase(),
                    1 => format!(
                        "{addr}/{}",
                        rng.pick(&["0", "64", "064", "128", "129", "0x40", "ffff:ffff::"])
                    ),
                    2 => addr.replace("::", ":0:0:"),
                    3 => format!("[{addr}]"),
                    4 => "::ffff:10.1.2.3".into(),
                    _ => format!("{addr}/{}", mask.clone().unwrap_or_else(|| "48".into())),
                }
            } else {
                let parts: Vec<&str> = addr.split('.').collect();
                let abbrev = if parts.len() == 4 {
                    let keep = 1 + rng.below(3);
                    parts[..keep].join(".")
                } else {
                    addr.clone()
                };
                match rng.below(10) {
                    0 => abbrev,
                    1 => format!("{abbrev}/{}", mask.clone().unwrap_or_else(|| "8".into())),
                    2 => format!("{addr}/255.255.255.0"),
                    3 => format!("{addr}/255.0.255.0"),
                    4 => format!(
                        "{addr}/{}",
                        rng.pick(&["0", "32", "33", "024", "0x18", "08", " 8", "-1"])
                    ),
                    5 => format!("{addr}/0.0.0.0"),
                    6 => addr
                        .split('.')
                        .map(|p| format!("0{p}"))
                        .collect::<Vec<_>>()
                        .join("."),
                    7 => format!("{addr}."),
                    8 => format!(
                        "{addr}/{}",
                        rng.pick(&["255.255.255.255", "255.255.0.0", "255.255.255.128"])
                    ),
                    _ => rng
                        .pick(&[
                            "0x0a000001",
                            "167772161",
                            "10.0.0.256",
                            "localhost",
                            "1.2.3.4.5",
                        ])
                        .to_string(),
                }
            };
            words[i] = new.into_bytes();
            true
        }
        Mutation::OptionPrefix => {
            let cands: Vec<usize> = (0..words.len()).filter(|&i| is_option(&words[i])).collect();
            if cands.is_empty() {
                return false;
            }
            let i = *rng.pick(&cands);
            let w = String::from_utf8_lossy(&words[i]).into_owned();
            if let Some((_, alts)) = ALIASES
                .iter()
                .find(|(o, alts)| *o == w || alts.contains(&w.as_str()))
            {
                if rng.chance(2, 3) {
                    words[i] = rng.pick(alts).as_bytes().to_vec();
                    return true;
                }
            }
            if w.starts_with("--") && w.len() > 3 {
                let keep = 3 + rng.below(w.len() - 3);
                words[i] = w.as_bytes()[..keep].to_vec();
            } else if w.len() == 2 {
                // A short option as a long one, or glued to its value.
                if i + 1 < words.len() && rng.chance(1, 2) {
                    let v = words.remove(i + 1);
                    words[i].extend(v);
                } else {
                    words[i] = format!("-{w}").into_bytes();
                }
            } else {
                return false;
            }
            true
        }
        Mutation::Negation => {
            let opts: Vec<usize> = (0..words.len()).filter(|&i| is_option(&words[i])).collect();
            let bangs: Vec<usize> = (0..words.len()).filter(|&i| words[i] == b"!").collect();
            if opts.is_empty() {
                return false;
            }
            match rng.below(6) {
                0 if !bangs.is_empty() => {
                    // `! --opt v` -> `--opt ! v` (intrapositioned)
                    let b = *rng.pick(&bangs);
                    words.remove(b);
                    if b < words.len() {
                        words.insert(b + 1, b"!".to_vec());
                    }
                }
                1 if !bangs.is_empty() => {
                    let b = *rng.pick(&bangs);
                    words.insert(b, b"!".to_vec());
                }
                2 if !bangs.is_empty() => {
                    let b = *rng.pick(&bangs);
                    if b + 1 < words.len() {
                        let next = words.remove(b + 1);
                        words[b].extend(next);
                    } else {
                        return false;
                    }
                }
                3 => words.push(b"!".to_vec()),
                _ => {
                    let o = *rng.pick(&opts);
                    words.insert(o, b"!".to_vec());
                }
            }
            true
        }
        Mutation::Quoting => {
            let cands = value_indices(words);
            if cands.is_empty() {
                return false;
            }
            let i = *rng.pick(&cands);
            let w = words[i].clone();
            let mut nw = Vec::new();
            match rng.below(8) {
                0 => {
                    nw.push(b'"');
                    nw.extend(&w);
                    nw.push(b'"');
                }
                1 => {
                    nw.push(b'\'');
                    nw.extend(&w);
                    nw.push(b'\'');
                }
                2 => {
                    let k = rng.below(w.len() + 1);
                    nw.extend(&w[..k]);
                    nw.extend(b"\"\"");
                    nw.extend(&w[k..]);
                }
                3 => {
                    nw.push(b'"');
                    nw.extend(&w);
                }
                4 => {
                    nw.extend(b"\\");
                    nw.extend(&w);
                }
                5 => {
                    nw.push(b'"');
                    nw.extend(&w);
                    nw.extend(b" x\"");
                }
                6 => {
                    nw.push(b'"');
                    nw.extend(&w);
                    nw.extend(b"\\\"\"");
                }
                _ => nw.extend(b"\"\""),
            }
            words[i] = nw;
            true
        }
        Mutation::Whitespace => {
            if words.is_empty() {
                return false;
            }
            let i = rng.below(words.len());
            let sep: &[&[u8]] = &[b"\t", b" ", b"\x0b", b"\x0c", b"\r"];
            let s = rng.pick(sep);
            let mut nw = s.to_vec();
            nw.extend(&words[i]);
            words[i] = nw;
            true
        }
        Mutation::Names => {
            let mut cands = Vec::new();
            for i in 1..words.len() {
                let prev = words[i - 1].as_slice();
                let table: &[&str] = match prev {
                    b"-p" | b"--protocol" => PROTOS,
                    b"--dport"
                    | b"--sport"
                    | b"--destination-port"
                    | b"--source-port"
                    | b"--dports"
                    | b"--sports"
                    | b"--ports"
                    | b"--to-ports" => SERVICES,
                    b"--icmp-type" => ICMP,
                    b"--icmpv6-type" => ICMP6,
                    _ => continue,
                };
                cands.push((i, table));
            }
            if cands.is_empty() {
                return false;
            }
            let (i, table) = *rng.pick(&cands);
            let mut name = rng.pick(table).to_string();
            if std::ptr::eq(table, SERVICES) && rng.chance(1, 3) {
                // In a range or list.
                name = match rng.below(3) {
                    0 => format!("{name}:{}", rng.pick(SERVICES)),
                    1 => format!("{name},{}", rng.pick(SERVICES)),
                    _ => format!("1:{name}"),
                };
            }
            words[i] = name.into_bytes();
            true
        }
        Mutation::Targets => {
            let j = words.iter().position(|w| w == b"-j" || w == b"-g");
            let targets: &[&str] = &[
                "ACCEPT", "DROP", "RETURN", "accept", "LOG", "QUEUE", "nosuch", "INPUT", "twc-a",
                "twc_b",
            ];
            match rng.below(4) {
                0 => {
                    let flag: &str = if rng.chance(1, 2) { "-j" } else { "-g" };
                    words.push(flag.as_bytes().to_vec());
                    words.push(rng.pick(targets).as_bytes().to_vec());
                }
                1 if j.is_some() => {
                    let j = j.unwrap_or_default();
                    if j + 1 < words.len() {
                        let t = if rng.chance(1, 2) {
                            rng.pick(targets).to_string()
                        } else {
                            rng.pick(chains).clone()
                        };
                        words[j + 1] = t.into_bytes();
                    } else {
                        words.push(b"DROP".to_vec());
                    }
                }
                2 if j.is_some() => {
                    let j = j.unwrap_or_default();
                    words[j] = if words[j] == b"-j" {
                        b"-g".to_vec()
                    } else {
                        b"-j".to_vec()
                    };
                }
                _ => {
                    let flag: &str = if rng.chance(1, 2) { "-j" } else { "-g" };
                    words.insert(0, rng.pick(chains).clone().into_bytes());
                    words.insert(0, flag.as_bytes().to_vec());
                }
            }
            true
        }
        Mutation::Duplicate => {
            let opts: Vec<usize> = (0..words.len()).filter(|&i| is_option(&words[i])).collect();
            if opts.is_empty() {
                return false;
            }
            let o = *rng.pick(&opts);
            let end = if o + 1 < words.len() && !is_option(&words[o + 1]) {
                o + 2
            } else {
                o + 1
            };
            let dup: Vec<Vec<u8>> = words[o..end].to_vec();
            let at = rng.below(words.len() + 1);
            for (k, w) in dup.into_iter().enumerate() {
                words.insert(at + k, w);
            }
            true
        }
        Mutation::Bytes => {
            // Prefer the comment text; otherwise any value word.
            let comment = (1..words.len()).find(|&i| words[i - 1] == b"--comment");
            let i = match comment {
                Some(i) if rng.chance(2, 3) => i,
                _ => {
                    let c = value_indices(words);
                    if c.is_empty() {
                        return false;
                    }
                    *rng.pick(&c)
                }
            };
            let b = rng.pick(ODD_BYTES);
            let w = &mut words[i];
            let at = if w.first() == Some(&b'"') {
                1
            } else {
                rng.below(w.len() + 1)
            };
            let mut nw = w[..at].to_vec();
            nw.extend_from_slice(b);
            nw.extend_from_slice(&w[at..]);
            *w = nw;
            true
        }
        Mutation::Chains => false,
    }
}

/// File-level chain mutations: a chain declared after its first use, twice, with `-N`, named like a
/// built-in in another case, or with an unusual/too long name, and rules in it.
fn mutate_chains(rng: &mut Rng, lines: &mut Vec<Line>, decl_end: usize, table: &str) {
    let first_rule = decl_end;
    let mark = |l: &mut Line| l.mutations.push(Mutation::Chains);
    match rng.below(6) {
        0 => {
            // Move the declaration of `twc-a` (always declared) after the first rule jumping to it.
            if let Some(d) = lines.iter().position(|l| l.bytes == b":twc-a - [0:0]") {
                let decl = lines.remove(d);
                let jump = Line {
                    bytes: b"-A INPUT -j twc-a".to_vec(),
                    origin: None,
                    mutations: vec![Mutation::Chains],
                    is_rule: true,
                };
                let at = (first_rule - 1).min(lines.len());
                lines.insert(at, jump);
                lines.insert((at + 2).min(lines.len()), decl);
                if !builtin_chains(table).contains(&"INPUT") {
                    let b = builtin_chains(table)[0];
                    lines[at].bytes = format!("-A {b} -j twc-a").into_bytes();
                }
            }
        }
        1 => {
            let d = Line {
                bytes: b":twc_b - [0:0]".to_vec(),
                origin: None,
                mutations: vec![Mutation::Chains],
                is_rule: false,
            };
            lines.insert(decl_end, d);
        }
        2 => {
            let name = rng.pick(&[
                "input", "Forward", "filter", "ACCEPT", "RETURN", "tcp", "LOG", "-x", "!x", "a b",
                "ü", "a:b", "[x", "-", "twc-a",
            ]);
            let policy = rng.pick(&["-", "ACCEPT", "DROP"]);
            lines.insert(
                decl_end,
                Line {
                    bytes: format!(":{name} {policy} [0:0]").into_bytes(),
                    origin: None,
                    mutations: vec![Mutation::Chains],
                    is_rule: false,
                },
            );
            let b = builtin_chains(table)[0];
            let mut r = Line {
                bytes: format!("-A {b} -j {name}").into_bytes(),
                origin: None,
                mutations: vec![Mutation::Chains],
                is_rule: true,
            };
            if rng.chance(1, 2) {
                r.bytes = format!("-A {name} -j RETURN").into_bytes();
            }
            lines.insert(decl_end + 1, r);
        }
        3 => {
            let len = 27 + rng.below(4);
            let name: String = (0..len).map(|k| (b'a' + (k % 26) as u8) as char).collect();
            lines.insert(
                decl_end,
                Line {
                    bytes: format!(":{name} - [0:0]").into_bytes(),
                    origin: None,
                    mutations: vec![Mutation::Chains],
                    is_rule: false,
                },
            );
            let b = builtin_chains(table)[0];
            lines.insert(
                decl_end + 1,
                Line {
                    bytes: format!("-A {b} -g {name}").into_bytes(),
                    origin: None,
                    mutations: vec![Mutation::Chains],
                    is_rule: true,
                },
            );
        }
        4 => {
            lines.insert(
                decl_end,
                Line {
                    bytes: b"-N twc-n".to_vec(),
                    origin: None,
                    mutations: vec![Mutation::Chains],
                    is_rule: false,
                },
            );
            lines.insert(
                decl_end + 1,
                Line {
                    bytes: b"-A twc-n -j RETURN".to_vec(),
                    origin: None,
                    mutations: vec![Mutation::Chains],
                    is_rule: true,
                },
            );
        }
        _ => {
            // A rule appended to a chain that is not declared.
            let k = first_rule + rng.below(lines.len() - first_rule + 1);
            let mut l = Line {
                bytes: b"-A twc-undeclared -j ACCEPT".to_vec(),
                origin: None,
                mutations: Vec::new(),
                is_rule: true,
            };
            mark(&mut l);
            lines.insert(k.min(lines.len()), l);
        }
    }
}
