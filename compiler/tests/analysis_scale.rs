//! Scale of the analysis engine: `diff` of two mixed rulesets with user chains, translation validation
//! of a flat INPUT chain, and the shadow lint, at growing sizes. In CI (debug build) a 2,000-rule run
//! with generous bounds; the measured table of docs/decisions/0007 comes from
//! `cargo test --release -p tailwall-compiler --test analysis_scale -- --ignored --nocapture`.
use std::fmt::Write as _;
use std::time::Instant;
use tailwall_compiler::analysis;
use tailwall_compiler::diag::SourceFile;
use tailwall_compiler::ir::{Hook, Ruleset};

/// A deterministic LCG (no dependency, same text on every machine).
struct Rng(u64);
impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }
}

/// An iptables-save ruleset of about `n` rules: INPUT with generic rules, a blocklist and one jump per
/// service chain; service chains with host/port rules, port lists, negations, RETURNs. `mutate` changes
/// three rules (a port, an action, a prefix) as a pull request would.
pub fn mixed(n: usize, seed: u64, mutate: bool) -> String {
    let mut r = Rng(seed);
    let mut o =
        String::from("*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n");
    let chains = (n / 50).max(1);
    for c in 0..chains {
        let _ = writeln!(o, ":svc{c} - [0:0]");
    }
    let mut input = vec![
        "-A INPUT -i lo -j ACCEPT".to_string(),
        "-A INPUT -p icmp -j ACCEPT".to_string(),
    ];
    let per_chain = n.saturating_sub(n / 10) / chains;
    for c in 0..chains {
        for _ in 0..(n / 10 / chains).max(1) {
            input.push(format!(
                "-A INPUT -s {}.{}.{}.0/24 -j DROP",
                100 + r.next(100),
                r.next(256),
                r.next(256)
            ));
        }
        input.push(format!(
            "-A INPUT -d 10.{}.{}.0/24 -j svc{c}",
            c / 256,
            c % 256
        ));
    }
    input.push("-A INPUT -p tcp --dport 22 -j ACCEPT".into());
    let mut users = Vec::new();
    for c in 0..chains {
        for i in 0..per_chain {
            let host = format!(
                "172.{}.{}.{}",
                16 + r.next(16),
                r.next(256),
                1 + r.next(254)
            );
            let line = match r.next(8) {
                0 => format!(
                    "-A svc{c} -s {host}/32 -p tcp --dport {} -j ACCEPT",
                    1 + r.next(9000)
                ),
                1 => format!(
                    "-A svc{c} -p udp -m multiport --dports {},{},{} -j ACCEPT",
                    1 + r.next(2000),
                    2001 + r.next(2000),
                    4001 + r.next(2000)
                ),
                2 => format!(
                    "-A svc{c} ! -s 192.168.0.0/16 -p tcp --dport {} -j DROP",
                    1 + r.next(1024)
                ),
                3 => format!("-A svc{c} -s {}.0.0.0/8 -j RETURN", 1 + r.next(99)),
                4 => format!(
                    "-A svc{c} -i eth{} -p tcp --dport {}:{} -j ACCEPT",
                    r.next(4),
                    1000 + i,
                    1100 + i
                ),
                5 => format!("-A svc{c} -s {host}/32 -j DROP"),
                6 => format!(
                    "-A svc{c} -p tcp --sport {} -d 10.{}.{}.{} -j ACCEPT",
                    1 + r.next(60000),
                    c / 256,
                    c % 256,
                    r.next(256)
                ),
                _ => format!(
                    "-A svc{c} -s {host}/30 -p udp --dport {} -j DROP",
                    1 + r.next(60000)
                ),
            };
            users.push(line);
        }
    }
    if mutate {
        let k = users.len() / 3;
        users[k] = users[k].replace("ACCEPT", "DROP");
        let k = users.len() / 2;
        users[k] = format!("-A svc{} -p tcp --dport 8080 -j ACCEPT", chains / 2);
        let k = input.len() / 2;
        input[k] = input[k].replace("/24", "/23");
    }
    for l in input.iter().chain(&users) {
        o.push_str(l);
        o.push('\n');
    }
    o.push_str("COMMIT\n");
    o
}

/// A flat INPUT chain the datapath compiles (no jumps, no interfaces).
pub fn flat(n: usize, seed: u64) -> String {
    let mut r = Rng(seed);
    let mut o = String::from("*filter\n:INPUT DROP [0:0]\n");
    for i in 0..n {
        let line = match r.next(5) {
            0 => format!(
                "-A INPUT -s 10.{}.{}.0/24 -j DROP",
                r.next(256),
                r.next(256)
            ),
            1 => format!(
                "-A INPUT -d 192.0.{}.{} -p tcp --dport {} -j ACCEPT",
                r.next(256),
                r.next(256),
                1 + r.next(9000)
            ),
            2 => format!(
                "-A INPUT -p udp -m multiport --dports {},{} -j ACCEPT",
                1 + r.next(30000),
                30001 + r.next(30000)
            ),
            3 => format!(
                "-A INPUT ! -s 172.16.0.0/12 -p tcp --dport {}:{} -j DROP",
                i % 60000,
                i % 60000 + 10
            ),
            _ => format!(
                "-A INPUT -s 198.{}.{}.{}/32 -j ACCEPT",
                r.next(256),
                r.next(256),
                r.next(256)
            ),
        };
        o.push_str(&line);
        o.push('\n');
    }
    o.push_str("COMMIT\n");
    o
}

pub fn load(name: &str, text: String) -> Ruleset {
    tailwall_compiler::lower::iptables(&SourceFile::new(name, text))
        .unwrap_or_else(|d| panic!("{d:?}"))
        .ruleset
}

/// Seconds of: diff old/new, diff old/old, validation of the flat ruleset, check's passes on old,
/// validation of old (the mixed ruleset: user chains, `-i` rules inside them); and old's rule count.
fn measure(n: usize) -> (f64, f64, f64, f64, f64, usize) {
    let old = load("old.rules", mixed(n, 7, false));
    let new = load("new.rules", mixed(n, 7, true));
    let rules = old.rules().count();
    let t = Instant::now();
    let d = analysis::diff(&old, &new, Hook::Input, 10, &mut |_| {}).unwrap();
    let diff_s = t.elapsed().as_secs_f64();
    assert!(!d.comparison.equivalent());
    for c in d.counterexamples() {
        assert_eq!(analysis::replay(&old, Hook::Input, &c.witness), c.old);
        assert_eq!(analysis::replay(&new, Hook::Input, &c.witness), c.new);
    }
    let t = Instant::now();
    let same = analysis::diff(&old, &old, Hook::Input, 10, &mut |_| {}).unwrap();
    let same_s = t.elapsed().as_secs_f64();
    assert!(same.comparison.equivalent());
    let f = load("flat.rules", flat(n, 3));
    let art = tailwall_compiler::artifact::build(&f, Hook::Input).unwrap();
    let t = Instant::now();
    analysis::validate(&f, &art).unwrap();
    let validate_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let _ = tailwall_compiler::passes::run_all(&old);
    let check_s = t.elapsed().as_secs_f64();
    let art = tailwall_compiler::artifact::build(&old, Hook::Input).unwrap();
    let t = Instant::now();
    analysis::validate(&old, &art).unwrap();
    let mixed_s = t.elapsed().as_secs_f64();
    (diff_s, same_s, validate_s, check_s, mixed_s, rules)
}

#[test]
fn diff_and_validation_at_2000_rules_in_ci() {
    let (diff_s, same_s, validate_s, _, mixed_s, rules) = measure(2000);
    eprintln!("analysis_scale: {rules} rules: diff {diff_s:.2}s, self-diff {same_s:.2}s, validation {validate_s:.2}s, of the mixed ruleset {mixed_s:.2}s (debug build)");
    assert!(diff_s < 30.0 && same_s < 30.0 && validate_s < 30.0 && mixed_s < 30.0);
}

#[test]
#[ignore = "measurement: run with --release -- --ignored --nocapture"]
fn measure_100_to_20000_rules() {
    let sizes: Vec<usize> = std::env::var("ANALYSIS_SIZES")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.parse().ok()).collect())
        .unwrap_or(vec![100, 1000, 10_000, 20_000]);
    for n in sizes {
        let (diff_s, same_s, validate_s, check_s, mixed_s, rules) = measure(n);
        eprintln!("| {n} | {rules} | {diff_s:.3} | {same_s:.3} | {validate_s:.3} | {mixed_s:.3} | {check_s:.3} |");
    }
}

#[test]
#[ignore = "measurement"]
fn phases() {
    use tailwall_compiler::analysis::{compare, Program, Space};
    let n: usize = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let f = load("flat.rules", flat(n, 3));
    let art = tailwall_compiler::artifact::build(&f, Hook::Input).unwrap();
    let t = Instant::now();
    let space = Space::new(Hook::Input, &[&f]);
    let a = Program::from_ruleset(&space, &f).unwrap();
    eprintln!("from_ruleset {:?}", t.elapsed());
    let t = Instant::now();
    let b = Program::from_artifact(&space, &art, tailwall_compiler::ir::Family::V4).unwrap();
    eprintln!("from_artifact {:?}", t.elapsed());
    let t = Instant::now();
    let c = compare(&space, &a, &b, 1, &mut |_| {});
    eprintln!("compare {:?} nodes {}", t.elapsed(), c.nodes);
    let old = load("old.rules", mixed(n, 7, false));
    let new = load("new.rules", mixed(n, 7, true));
    let space = Space::new(Hook::Input, &[&old, &new]);
    let t = Instant::now();
    let a = Program::from_ruleset(&space, &old).unwrap();
    let b = Program::from_ruleset(&space, &new).unwrap();
    eprintln!(
        "mixed from_ruleset x2 {:?} entries {} {}",
        t.elapsed(),
        a.entries.len(),
        b.entries.len()
    );
    let t = Instant::now();
    let c = compare(&space, &a, &b, 10, &mut |_| {});
    eprintln!(
        "mixed compare {:?} nodes {} regions {}",
        t.elapsed(),
        c.nodes,
        c.regions
    );
}

/// Translation validation of the mixed ruleset (user chains, `-i` rules inside them), per hook, with
/// the search's node count: `N=20000 cargo test --release ... -- --ignored validate_mixed --nocapture`.
#[test]
#[ignore = "measurement"]
fn validate_mixed() {
    let n: usize = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    let rs = load("old.rules", mixed(n, 7, false));
    let art = tailwall_compiler::artifact::build(&rs, Hook::Input).unwrap();
    let t = Instant::now();
    let v = analysis::validate(&rs, &art).unwrap();
    eprintln!(
        "validate mixed {n}: {:?}, {} nodes, entries {:?}",
        t.elapsed(),
        v.nodes,
        v.entries
    );
    use tailwall_compiler::analysis::{compare, Program, Space};
    for hook in Hook::ALL {
        let t = Instant::now();
        let space = Space::new(hook, &[&rs]);
        let t_space = t.elapsed();
        let ir = Program::from_ruleset(&space, &rs).unwrap();
        let t_ir = t.elapsed();
        let tables = Program::from_artifact(&space, &art, rs.family).unwrap();
        let t_art = t.elapsed();
        let c = compare(&space, &ir, &tables, 1, &mut |_| {});
        eprintln!(
            "  {}: space {t_space:?}, +ir {:?}, +tables {:?}, +search {:?} ({} nodes)",
            hook.chain_name(),
            t_ir - t_space,
            t_art - t_ir,
            t.elapsed() - t_art,
            c.nodes
        );
    }
}

#[test]
#[ignore = "measurement"]
fn shadow_only() {
    let n: usize = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let rs = load("old.rules", mixed(n, 7, false));
    let t = Instant::now();
    let d = tailwall_compiler::passes::run_all(&rs);
    eprintln!("shadow {n}: {:?}, {} diagnostics", t.elapsed(), d.len());
}

/// Write `mixed(N, 7, false)` (and the mutated `mixed(N, 7, true)` next to it, `.new`) for the CLI
/// figures of docs/decisions/0007: `N=20000 OUT=/tmp/mixed20k.rules cargo test --release -p
/// tailwall-compiler --test analysis_scale -- --ignored write_mixed`.
#[test]
#[ignore = "measurement"]
fn write_mixed() {
    let n: usize = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let out = std::env::var("OUT").unwrap_or_else(|_| format!("/tmp/mixed{n}.rules"));
    std::fs::write(&out, mixed(n, 7, false)).unwrap();
    std::fs::write(format!("{out}.new"), mixed(n, 7, true)).unwrap();
}
