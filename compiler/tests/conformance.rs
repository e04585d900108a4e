//! Conformance over iptables' own test suite (`extensions/*.t` in the shared corpus; skipped with a message
//! when absent).
//!
//! Each `.t` line `rule;expected;OK|FAIL[;NFT|LEGACY[;alt]]` is run in every chain of the preceding `:CHAINS`
//! line, in the table of the preceding `*table` line (default filter): the rule is wrapped into a restore file
//! `*table / :CHAIN - / -A CHAIN rule / COMMIT`, parsed, typed ([`rule::type_rule`]) and printed
//! ([`rule::save_rule`]). OK lines must print exactly the expected save form (`=`: the rule itself); FAIL lines
//! must be rejected with a located error in at least one chain. Lines marked NFT are judged with the
//! result the legacy back end gives (the opposite, or the alternative; `NOMATCH` lines are skipped).
//!
//! FAIL lines that iptables rejects because of kernel state (a set, a helper, a `%`/`@` command that is not
//! run) are counted as "other", as are lines iptables-restore itself cannot read (a value glued to `-p`,
//! `-j`, `-s`…: `-ptcp` is the protocol `-ptcp` there). The table is printed; the modules in [`CLAIMED`] must pass completely.
use std::collections::BTreeMap;
use std::path::PathBuf;
use tailwall_compiler::diag::SourceFile;
use tailwall_compiler::syntax::iptables::ext::{self, Family};
use tailwall_compiler::syntax::iptables::rule::{save_rule, type_rule, Place};
use tailwall_compiler::syntax::iptables::{self as syn};

/// Modules whose OK and FAIL lines all pass (docs/conformance.md has the measured table).
const CLAIMED: &[&str] = &[
    "iptables",
    "libxt_standard",
    "libipt_standard",
    "libip6t_standard",
    "libxt_tcp",
    "libxt_udp",
    "libxt_comment",
    "libxt_multiport",
    "libipt_icmp",
    "libxt_state",
    "libxt_conntrack",
    "libxt_limit",
    "libxt_mac",
    "libxt_mark",
    "libxt_MARK",
    "libipt_LOG",
    "libip6t_LOG",
    "libipt_REJECT",
    "libip6t_REJECT",
    "libxt_owner",
    "libxt_addrtype",
    "libxt_length",
    "libxt_pkttype",
    "libxt_physdev",
    "libxt_statistic",
    "libxt_NFLOG",
    "libxt_TCPMSS",
    "libxt_CHECKSUM",
    "libxt_NOTRACK",
    "libxt_TRACE",
    "libipt_SNAT",
    "libipt_DNAT",
    "libipt_MASQUERADE",
    "libxt_REDIRECT",
    "libxt_esp",
    "libipt_ah",
    "libip6t_icmp6",
    "libxt_connmark",
    "libxt_CT",
    "libip6t_DNAT",
    "libip6t_HL",
    "libip6t_MASQUERADE",
    "libip6t_NETMAP",
    "libip6t_SNAT",
    "libip6t_ah",
    "libip6t_conntrack",
    "libip6t_hl",
    "libipt_NETMAP",
    "libipt_TTL",
    "libipt_conntrack",
    "libipt_ttl",
    "libxt_DSCP",
    "libxt_TOS",
    "libxt_dscp",
    "libxt_tos",
    "libip6t_iprange",
    "libipt_iprange",
    "libxt_AUDIT",
    "libxt_CLASSIFY",
    "libxt_CONNMARK",
    "libxt_CONNSECMARK",
    "libxt_NFQUEUE",
    "libxt_SECMARK",
    "libxt_cpu",
    "libxt_ecn",
    "libxt_helper",
    "libxt_iprange",
    "libxt_quota",
    "libxt_sctp",
    "libip6t_connlimit",
    "libipt_connlimit",
    "libxt_TCPOPTSTRIP",
    "libxt_connbytes",
    "libxt_connlimit",
    "libxt_dccp",
    "libxt_tcpmss",
    "libip6t_recent",
    "libipt_recent",
    "libxt_recent",
    "libxt_string",
    "libip6t_eui64",
    "libip6t_frag",
    "libip6t_mh",
    "libip6t_rt",
    "libxt_ipcomp",
    "libip6t_DNPT",
    "libip6t_SNPT",
    "libip6t_TEE",
    "libip6t_TPROXY",
    "libipt_ECN",
    "libipt_TEE",
    "libipt_TPROXY",
    "libipt_realm",
    "libxt_IDLETIMER",
    "libxt_LED",
    "libxt_SYNPROXY",
    "libxt_TEE",
    "libxt_cgroup",
    "libxt_connlabel",
    "libxt_nfacct",
    "libxt_rpfilter",
    "libxt_socket",
    "libip6t_dst",
    "libip6t_hbh",
    "libip6t_ipv6header",
    "libip6t_ipvs",
    "libipt_ipvs",
    "libipt_osf",
    "libxt_bpf",
    "libxt_cluster",
    "libxt_ipvs",
    "libxt_u32",
    "libxt_hashlimit",
    "libip6t_policy",
    "libipt_policy",
    "libxt_policy",
    "libxt_time",
];

#[derive(Default, Debug, Clone, Copy)]
struct Row {
    ok_pass: usize,
    ok_total: usize,
    fail_rej: usize,
    fail_total: usize,
    other: usize,
}

enum Outcome {
    Printed(String),
    Rejected { located: bool, kernel_only: bool },
}

fn run(rule: &str, table: &str, chain: &str, family: Family) -> Outcome {
    let builtin = syn::TableKind::from_name(table).is_some_and(|t| t.is_builtin(chain));
    let decl = if builtin {
        format!(":{chain} ACCEPT [0:0]")
    } else {
        format!(":{chain} - [0:0]")
    };
    let text = format!("*{table}\n{decl}\n-A {chain} {rule}\nCOMMIT\n");
    let src = SourceFile::new("t", text);
    let (ast, diags) = syn::parse_family(&src, family);
    // A jump to a chain the one-rule file does not declare is the harness's doing, not the rule's: type
    // the rule alone then.
    let errors: Vec<_> = diags
        .iter()
        .filter(|d| d.is_error() && d.code != "E0312")
        .collect();
    if !errors.is_empty() {
        return Outcome::Rejected {
            located: errors.iter().all(|d| d.span.is_some()),
            kernel_only: errors.iter().any(|d| d.code == "E0113"),
        };
    }
    let place = Place {
        family,
        table,
        chain,
        builtin,
    };
    if let Some(line) = ast.tables.first().and_then(|t| t.rules.first()) {
        return Outcome::Printed(save_rule(chain, &line.rule));
    }
    let toks = match syn::tokenize(rule, 0) {
        Ok(t) => t,
        Err(d) => {
            return Outcome::Rejected {
                located: d.span.is_some(),
                kernel_only: d.code == "E0113",
            }
        }
    };
    match type_rule(&toks, place) {
        Ok(r) => Outcome::Printed(save_rule(chain, &r)),
        Err(d) => Outcome::Rejected {
            located: d.iter().all(|d| d.span.is_some()),
            kernel_only: false,
        },
    }
}

/// A value glued to `-i -o -s -d -p -j` (`-ptcp`) or given as `--protocol=tcp`: iptables-restore 1.8.9 takes
/// the whole word as the value (`argv[optind-1]`: the protocol `-ptcp`), so it cannot read what the `.t` line (an `iptables` command
/// line) means; we read it as iptables-restore does.
fn restore_reads_whole_word(rule: &str) -> bool {
    const WHOLE: [&str; 8] = [
        "protocol",
        "source",
        "src",
        "destination",
        "dst",
        "in-interface",
        "out-interface",
        "jump",
    ];
    rule.split(' ').any(|w| {
        let b = w.as_bytes();
        let glued = b.len() > 2 && b[0] == b'-' && b"iosdpj".contains(&b[1]);
        let assigned = w
            .strip_prefix("--")
            .and_then(|r| r.split_once('='))
            .is_some_and(|(n, _)| WHOLE.contains(&n));
        glued || assigned
    })
}

/// Lines whose failure depends on kernel state tailwall cannot see.
fn kernel_state(file: &str, rule: &str) -> bool {
    (file == "libxt_set" && rule.contains("--match-set"))
        || (file == "libxt_SET" && rule.contains("-set "))
        || (file == "libxt_nfacct" && rule.contains("--nfacct-name"))
        || (file == "libxt_CT" && (rule.contains("--timeout") || rule.contains("--helper")))
}

#[test]
fn conformance_table_over_iptables_testsuite() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/corpus/iptables-testsuite/extensions");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("skipped: {} absent", dir.display());
        return;
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "t"))
        .collect();
    files.sort();
    let mut table: BTreeMap<String, Row> = BTreeMap::new();
    let mut failures: Vec<String> = Vec::new();
    for path in &files {
        let module = path
            .file_stem()
            .expect("stem")
            .to_string_lossy()
            .into_owned();
        let family = if module.starts_with("libip6t") {
            Family::V6
        } else {
            Family::V4
        };
        let text = std::fs::read_to_string(path).expect("read .t");
        let mut chains: Vec<String> = vec!["INPUT".into()];
        let mut tbl = "filter".to_string();
        let row = table.entry(module.clone()).or_default();
        for (lineno, l) in text.lines().enumerate() {
            let l = l.trim_end();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            if let Some(c) = l.strip_prefix(':') {
                chains = c.split(',').map(str::to_string).collect();
                continue;
            }
            if let Some(t) = l.strip_prefix('*') {
                tbl = t.to_string();
                continue;
            }
            if l.starts_with('@') || l.starts_with('%') {
                continue;
            }
            let f: Vec<&str> = l.split(';').collect();
            if f.len() < 3 {
                continue;
            }
            let (rule, mut expected, mut res) = (f[0], f[1].to_string(), f[2]);
            if let Some(&variant) = f.get(3) {
                if variant == "NFT" {
                    match f.get(4) {
                        Some(&"NOMATCH") => continue,
                        Some(alt) => expected = alt.to_string(),
                        None => res = if res == "OK" { "FAIL" } else { "OK" },
                    }
                }
            }
            if expected == "=" {
                expected = rule.to_string();
            }
            let at = format!("{module}.t:{}", lineno + 1);
            if res == "OK" {
                row.ok_total += 1;
                let mut good = true;
                for chain in &chains {
                    match run(rule, &tbl, chain, family) {
                        Outcome::Printed(p) => {
                            let want = format!("-A {chain} {expected}").trim_end().to_string();
                            if p != want {
                                good = false;
                                failures.push(format!("{at}: printed `{p}`, want `{want}`"));
                                break;
                            }
                        }
                        Outcome::Rejected { kernel_only, .. }
                            if kernel_only || restore_reads_whole_word(rule) =>
                        {
                            good = false;
                            row.ok_total -= 1;
                            row.other += 1;
                            break;
                        }
                        Outcome::Rejected { .. } => {
                            good = false;
                            failures.push(format!("{at}: `{rule}` rejected in {tbl}/{chain}"));
                            break;
                        }
                    }
                }
                if good {
                    row.ok_pass += 1;
                }
            } else {
                if kernel_state(&module, rule) {
                    row.other += 1;
                    continue;
                }
                row.fail_total += 1;
                let mut rejected = false;
                for chain in &chains {
                    match run(rule, &tbl, chain, family) {
                        Outcome::Rejected { located, .. } => {
                            assert!(located, "{at}: unlocated error");
                            rejected = true;
                            break;
                        }
                        Outcome::Printed(_) => {}
                    }
                }
                if rejected {
                    row.fail_rej += 1;
                } else {
                    failures.push(format!("{at}: FAIL line `{rule}` accepted"));
                }
            }
        }
    }
    let mut report = String::from(
        "| module | parsed as | OK passed/total | FAIL rejected/total | other | claimed |\n|---|---|---|---|---|---|\n",
    );
    let mut tot = Row::default();
    for (m, r) in &table {
        let name = m.split_once('_').map(|(_, n)| n).unwrap_or(m);
        let typed = [Family::V4, Family::V6].into_iter().any(|f| {
            ext::find_match(name, f).is_some()
                || ext::find_target(name, f).is_some()
                || (name == "icmp6" && ext::find_match("icmp6", Family::V6).is_some())
        });
        let kind = if m == "iptables" || m.ends_with("_standard") {
            "built-in options"
        } else if typed {
            "typed"
        } else {
            "verbatim"
        };
        report.push_str(&format!(
            "| {m} | {kind} | {}/{} | {}/{} | {} | {} |\n",
            r.ok_pass,
            r.ok_total,
            r.fail_rej,
            r.fail_total,
            r.other,
            if CLAIMED.contains(&m.as_str()) {
                "yes"
            } else {
                ""
            }
        ));
        tot.ok_pass += r.ok_pass;
        tot.ok_total += r.ok_total;
        tot.fail_rej += r.fail_rej;
        tot.fail_total += r.fail_total;
        tot.other += r.other;
    }
    report.push_str(&format!(
        "| **total** | | {}/{} | {}/{} | {} | {} modules |\n",
        tot.ok_pass,
        tot.ok_total,
        tot.fail_rej,
        tot.fail_total,
        tot.other,
        CLAIMED.len()
    ));
    println!("{report}");
    let claimed_failures: Vec<&String> = failures
        .iter()
        .filter(|f| CLAIMED.iter().any(|c| f.starts_with(&format!("{c}.t:"))))
        .collect();
    for f in &failures {
        println!("  {f}");
    }
    for c in CLAIMED {
        let r = table
            .get(*c)
            .unwrap_or_else(|| panic!("claimed module {c} has no .t file"));
        assert!(r.ok_total + r.fail_total > 0, "{c}: nothing measured");
    }
    assert!(
        claimed_failures.is_empty(),
        "claimed modules fail:\n{claimed_failures:#?}"
    );
}

/// Every rule of the real dumps in the corpus types, and its canonical form reads back to itself.
#[test]
fn corpus_dumps_type_and_print_idempotently() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    let mut files = Vec::new();
    for sub in ["dumps", "iptables-testsuite/shell-dumps"] {
        let Ok(entries) = std::fs::read_dir(root.join(sub)) else {
            eprintln!("skipped: {} absent", root.join(sub).display());
            return;
        };
        files.extend(entries.map(|e| e.expect("entry").path()));
    }
    files.sort();
    let mut rules = 0;
    let mut problems = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).expect("read dump");
        let src = SourceFile::new(path.display().to_string(), text);
        let (ast, diags) = syn::parse(&src);
        let family = ast.family;
        problems.extend(
            diags
                .iter()
                .filter(|d| d.is_error())
                .map(|d| format!("{}: {}", src.name, d.message)),
        );
        for t in &ast.tables {
            for line in &t.rules {
                rules += 1;
                let chain = line.chain.text.as_str();
                let once = save_rule(chain, &line.rule);
                let again = match run(
                    once.trim_start_matches(&format!("-A {chain} ")),
                    t.kind.name(),
                    chain,
                    family,
                ) {
                    Outcome::Printed(p) => p,
                    Outcome::Rejected { .. } => "<rejected>".into(),
                };
                if once != again {
                    problems.push(format!("{}: `{once}` reprints as `{again}`", src.name));
                }
            }
        }
    }
    println!("{rules} rules typed");
    assert!(problems.is_empty(), "{problems:#?}");
}
