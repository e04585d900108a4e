//! `tailwall_compiler::listing` against real iptables-legacy 1.8.9, byte for byte (root; otherwise
//! "skipped: not root", a failure with `TAILWALL_REQUIRE_KERNEL=1`).
//!
//! Each file (the corpus dumps of `../shared/corpus`, `examples/rulesets/*.rules`, and
//! `tests/fixtures/listing/*.rules`) is loaded with its `[packets:bytes]` counters by
//! `iptables-legacy-restore -c` (`ip6tables-legacy-restore` for an ip6tables dump) into a throwaway
//! namespace `twl-…`; a line the kernel refuses (an ipset or module the namespace lacks) is blanked and
//! the file reloaded. Then, per table, `iptables-legacy -t TABLE -L -v -x -n --line-numbers` is compared
//! line by line with the listing tailwall renders from the same (reduced) file and its counters.
//!
//! Asserts: chain headers identical, and every rule tailwall claims to list exactly
//! ([`listing::ListedRule::exact`]) identical, unless the front end typed the rule differently from
//! iptables (tailwall's iptables-save spelling of it is not in `iptables-legacy-save`'s output: a
//! front-end difference, counted); prints per file how many rules render identically. Set
//! `TAILWALL_LISTING_SHOW=1` to print every differing line.
use std::path::{Path, PathBuf};
use tailwall_compiler::diag::SourceFile;
use tailwall_compiler::listing::{self, Listing};
use tailwall_compiler::syntax::iptables::{self as syn, Family};
use tailwall_tests::netns::{require_root_or_skip, Netns};

/// What one file gave.
#[derive(Default)]
struct Figures {
    rules: usize,
    identical: usize,
    claimed_exact_but_different: Vec<String>,
    header_mismatches: Vec<String>,
    refused_by_kernel: usize,
    /// Differing rules the front end typed differently from iptables (its spelling is not in
    /// iptables-save's output).
    front_end: usize,
    differences: Vec<String>,
}

fn files() -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for dir in [
        root.join("../../shared/corpus/dumps"),
        root.join("../../shared/corpus/iptables-testsuite/shell-dumps"),
        root.join("../examples/rulesets"),
        root.join("fixtures/listing"),
    ] {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            eprintln!("listing: {} absent", dir.display());
            continue;
        };
        let mut v: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                !p.extension()
                    .is_some_and(|e| e == "yaml" || e == "yml" || e == "md" || e == "iptables-L")
            })
            .collect();
        v.sort();
        out.extend(v);
    }
    out
}

/// iptables' own unit tests (`extensions/*.t` of the corpus) as restore files: every `OK` line as a rule
/// of the first chain of its `:CHAINS` line, in its `*table`, with made-up counters. `libip6t_*` files
/// are IPv6, the others IPv4.
fn t_files() -> Vec<(PathBuf, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/corpus/iptables-testsuite/extensions");
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "t"))
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for p in paths {
        let Ok(text) = std::fs::read_to_string(&p) else {
            continue;
        };
        let mut tables: Vec<(String, Vec<String>)> = vec![("filter".into(), Vec::new())];
        let mut chain = "INPUT".to_string();
        let mut n = 0u64;
        for line in text.lines() {
            if let Some(t) = line.strip_prefix('*') {
                tables.push((t.trim().to_string(), Vec::new()));
            } else if let Some(c) = line.strip_prefix(':') {
                chain = c.split(',').next().unwrap_or("INPUT").trim().to_string();
            } else if line.starts_with('-') || line.starts_with('!') {
                let f: Vec<&str> = line.split(';').collect();
                if f.len() >= 3 && f[2] == "OK" && f.get(3) != Some(&"NFT") {
                    n += 1;
                    let rules = &mut tables.last_mut().expect("a table").1;
                    rules.push(format!("[{n}:{}] -A {chain} {}", n * 61, f[0]));
                }
            }
        }
        let mut restore = String::new();
        for (t, rules) in tables.iter().filter(|(_, r)| !r.is_empty()) {
            restore.push_str(&format!("*{t}\n"));
            for r in rules {
                restore.push_str(r);
                restore.push('\n');
            }
            restore.push_str("COMMIT\n");
        }
        if !restore.is_empty() {
            out.push((p, restore));
        }
    }
    out
}

/// Load `text` into `ns`, blanking the lines tailwall or the kernel refuses; the text that loaded.
fn load(ns: &Netns, family: Family, text: &str) -> anyhow::Result<(String, usize)> {
    let restore = match family {
        Family::V4 => "iptables-legacy-restore",
        Family::V6 => "ip6tables-legacy-restore",
    };
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut refused = 0;
    loop {
        let body = lines.join("\n") + "\n";
        // Lines tailwall's front end refuses (the differences docs/conformance.md lists) first.
        let src = SourceFile::new("t", body.clone());
        let (_, diags) = syn::parse_family(&src, family);
        let bad: Vec<usize> = diags
            .iter()
            .filter(|d| d.is_error())
            .filter_map(|d| d.span.map(|s| src.line_col(s.start as usize).0))
            .filter(|&l| {
                l >= 1
                    && l <= lines.len()
                    && !lines[l - 1].trim().is_empty()
                    && lines[l - 1].trim() != "COMMIT"
            })
            .collect();
        if !bad.is_empty() {
            for l in bad {
                lines[l - 1] = String::new();
                refused += 1;
            }
            continue;
        }
        let out = ns.output_stdin(restore, ["-c"], body.as_bytes())?;
        if out.status.success() {
            return Ok((body, refused));
        }
        let err = String::from_utf8_lossy(&out.stderr);
        let line = err
            .lines()
            .find_map(|l| {
                l.strip_prefix("Error occurred at line: ").or_else(|| {
                    l.split_once(": line ")
                        .and_then(|(_, r)| r.strip_suffix(" failed"))
                })
            })
            .and_then(|n| n.trim().parse::<usize>().ok());
        match line {
            Some(n)
                if n >= 1
                    && n <= lines.len()
                    && !lines[n - 1].trim().is_empty()
                    && lines[n - 1].trim() != "COMMIT" =>
            {
                lines[n - 1] = String::new();
                refused += 1;
            }
            // The kernel refused the table at its COMMIT: find the rules it refuses one by one.
            Some(n) if n >= 1 && n <= lines.len() && lines[n - 1].trim() == "COMMIT" => {
                let start = lines[..n - 1]
                    .iter()
                    .rposition(|l| l.starts_with('*'))
                    .ok_or_else(|| anyhow::anyhow!("COMMIT without a table: {err}"))?;
                let decls: Vec<String> = lines[start + 1..n - 1]
                    .iter()
                    .filter(|l| l.starts_with(':'))
                    .cloned()
                    .collect();
                let mut blanked = 0;
                for i in start + 1..n - 1 {
                    if lines[i].starts_with(':') || lines[i].trim().is_empty() {
                        continue;
                    }
                    let mut one = format!("{}\n", lines[start]);
                    decls.iter().for_each(|d| one.push_str(&format!("{d}\n")));
                    one.push_str(&format!("{}\nCOMMIT\n", lines[i]));
                    if !ns
                        .output_stdin(restore, ["-c"], one.as_bytes())?
                        .status
                        .success()
                    {
                        lines[i] = String::new();
                        blanked += 1;
                    }
                }
                anyhow::ensure!(
                    blanked > 0,
                    "{restore} refused a COMMIT, but no rule alone: {err}"
                );
                refused += blanked;
            }
            _ => anyhow::bail!("{restore} failed without a line: {err}"),
        }
    }
}

fn list_cmd(family: Family) -> &'static str {
    match family {
        Family::V4 => "iptables-legacy",
        Family::V6 => "ip6tables-legacy",
    }
}

fn compare(ns: &Netns, path: &Path, text: &str) -> anyhow::Result<Figures> {
    let family = if path.to_string_lossy().contains("libip6t_") {
        Family::V6
    } else {
        syn::rule::detect_family(text)
    };
    let (loaded, refused) = load(ns, family, text)?;
    let src = SourceFile::new(path.display().to_string(), loaded.clone());
    let (ast, diags) = syn::parse_family(&src, family);
    let errors: Vec<_> = diags.iter().filter(|d| d.is_error()).collect();
    anyhow::ensure!(
        errors.is_empty(),
        "tailwall refuses what the kernel loaded: {errors:?}"
    );
    let mut f = Figures {
        refused_by_kernel: refused,
        ..Figures::default()
    };
    let line_of = |o: u32| src.line_col(o as usize).0;
    for table in &ast.tables {
        let ours: Listing = listing::list_with_dump_counters(family, table, &line_of);
        let expected = ns.exec(
            list_cmd(family),
            [
                "-t",
                table.kind.name(),
                "-L",
                "-v",
                "-x",
                "-n",
                "--line-numbers",
            ],
        )?;
        let got = ours.to_text();
        // Per output line, the rule it lists (headers and blank lines: None).
        let listed: Vec<Option<&listing::ListedRule>> = ours
            .chains
            .iter()
            .flat_map(|c| {
                std::iter::once(None)
                    .chain(std::iter::once(None))
                    .chain(c.rules.iter().map(Some))
                    .chain(std::iter::once(None))
            })
            .collect();
        // What the kernel holds, in iptables' own spelling: a rule whose tailwall spelling is not
        // there was typed differently by the front end (docs/conformance.md lists those), which the
        // listing then faithfully shows.
        let saved = ns.exec(
            match family {
                Family::V4 => "iptables-legacy-save",
                Family::V6 => "ip6tables-legacy-save",
            },
            ["-t", table.kind.name()],
        )?;
        let saved: std::collections::HashSet<&str> = saved.lines().collect();
        let (el, gl): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), got.lines().collect());
        if el.len() != gl.len() {
            f.header_mismatches.push(format!(
                "{}: table {}: {} lines from iptables, {} from tailwall\n--- iptables\n{expected}--- tailwall\n{got}",
                path.display(),
                table.kind.name(),
                el.len(),
                gl.len()
            ));
            f.rules += table.rules.len();
            continue;
        }
        for (i, (e, g)) in el.iter().zip(&gl).enumerate() {
            let is_rule = !e.starts_with("Chain ") && !e.starts_with("num ") && !e.is_empty();
            if is_rule {
                f.rules += 1;
                if e == g {
                    f.identical += 1;
                } else {
                    let d = format!(
                        "{} ({}):\n  iptables: {e:?}\n  tailwall: {g:?}",
                        path.display(),
                        table.kind.name()
                    );
                    match listed.get(i).copied().flatten() {
                        Some(r) if !saved.contains(r.iptables.as_str()) => {
                            f.front_end += 1;
                        }
                        Some(r) if !r.exact => {}
                        _ => f.claimed_exact_but_different.push(d.clone()),
                    }
                    f.differences.push(d);
                }
            } else if e != g {
                f.header_mismatches.push(format!(
                    "{} ({}):\n  iptables: {e:?}\n  tailwall: {g:?}",
                    path.display(),
                    table.kind.name()
                ));
            }
        }
    }
    Ok(f)
}

#[test]
fn listing_matches_iptables_legacy_byte_for_byte() {
    if !require_root_or_skip("listing") {
        return;
    }
    let show = std::env::var("TAILWALL_LISTING_SHOW").is_ok_and(|v| v == "1");
    let mut failures = Vec::new();
    let (mut total, mut same) = (0, 0);
    println!("| file | rules | identical | typed differently by the front end | lines refused (kernel or tailwall) |");
    println!("|---|---|---|---|---|");
    let mut inputs: Vec<(PathBuf, String)> = files()
        .into_iter()
        .filter_map(|p| std::fs::read_to_string(&p).ok().map(|t| (p, t)))
        .collect();
    inputs.extend(t_files());
    for (path, text) in inputs {
        let ns = Netns::with_prefix("twl").expect("netns");
        match compare(&ns, &path, &text) {
            Ok(f) => {
                println!(
                    "| {} | {} | {} | {} | {} |",
                    path.file_name().unwrap_or_default().to_string_lossy(),
                    f.rules,
                    f.identical,
                    f.front_end,
                    f.refused_by_kernel
                );
                total += f.rules;
                same += f.identical;
                if show {
                    for d in &f.differences {
                        println!("{d}");
                    }
                }
                failures.extend(f.header_mismatches);
                failures.extend(f.claimed_exact_but_different);
            }
            Err(e) => failures.push(format!("{}: {e:#}", path.display())),
        }
    }
    println!("| **total** | {total} | {same} | | |");
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
