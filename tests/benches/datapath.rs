//! Datapath benchmark (not a timed test): `cargo bench -p tailwall-tests --bench datapath` as root.
//!
//! For 10 / 1k / 10k generated INPUT rules and one worst-case frame, measured in the same run (and
//! again with the rules spread over 1 / 4 / 16 nested user chains, see [`Shape`]):
//! - `compile`: `artifact::build` wall time (median of 5), and the generation's map memory as the kernel
//!   accounts it (`memlock` of every map fd the generation created, from `/proc/self/fdinfo`);
//! - `tailwall`: BPF_PROG_TEST_RUN of the classifier's entry program (tail calls through every field
//!   stage to the final program), `repeat` runs, kernel-measured mean ns per run; and `tw_final`
//!   alone on the context and scratch vector the full run left on the same CPU: the walk's share;
//! - `empty XDP`: the same on `tw_pass` (returns XDP_PASS at once): the test-run floor;
//! - `iptables`: in a fresh namespace, frames injected with test-run's live-frames mode through `tw_pass`
//!   on the victim veth enter the real stack (`ip_rcv` → routing → INPUT) and are dropped at INPUT. The
//!   per-packet time with the ruleset loaded in iptables-legacy minus the time with an empty INPUT chain
//!   (same DROP policy) is iptables' INPUT traversal cost for those rules.
//!
//! The worst-case frame matches only the *last* rule; every other rule matches it on all fields but one,
//! and the mismatching field cycles over src_ip, dst_ip, proto, dst_port. So no field stage empties the
//! candidate vector before the last one (no early exit), the final program scans to the last bit, and
//! iptables walks the whole chain (a quarter of the rules reach the tcp match).
//!
//! With chains, the same rules are spread evenly over `depth + 1` chains, INPUT → C1 → … → Cd: each
//! chain's fillers, then `-s 10.0.0.0/8 -j C<k+1>` (the deepest chain ends with the deciding DROP). The
//! frame takes every jump: iptables still evaluates every rule, tailwall's walk visits `depth + 1`
//! positions, each a forward scan from the previous one.
//!
//! Each time is the median of `ROUNDS` measurements. Environment: `TAILWALL_BENCH_SIZES=10,1000,10000`
//! (flat), `TAILWALL_BENCH_CHAIN_SIZES=1000,10000` and `TAILWALL_BENCH_DEPTHS=1,4,16` (chains; an empty
//! list skips them), `TAILWALL_BENCH_REPEAT=100000` (test-run repeat).
use anyhow::{bail, ensure, Context, Result};
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::time::Instant;
use tailwall_compiler::artifact::{self, Artifact};
use tailwall_compiler::diag::SourceFile;
use tailwall_compiler::interp;
use tailwall_compiler::ir::{Hook, Ruleset};
use tailwall_compiler::lower;
use tailwall_compiler::packet::{build_frame, decode, l4_header, IPPROTO_TCP};
use tailwall_loader::{test_run_live, Generation};
use tailwall_tests::netns::{require_root_or_skip, VethPair};
use tailwall_tests::oracle::{Answer, Counters};

const ROUNDS: usize = 5;
const SRC: Ipv4Addr = Ipv4Addr::new(10, 1, 2, 3);

/// How the benchmark's rules are laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// Every rule in INPUT.
    Flat,
    /// The rules spread over INPUT and `depth` nested user chains the frame jumps through.
    Chains { depth: usize },
}

impl Shape {
    fn depth(self) -> usize {
        match self {
            Shape::Flat => 0,
            Shape::Chains { depth } => depth,
        }
    }
}

/// A filler rule that matches the worst-case frame on every field but one (`i % 4` picks which).
fn filler(o: &mut String, chain: &str, i: usize, host: Ipv4Addr) {
    let (hi, lo) = ((i >> 8) & 0xff, i & 0xff);
    let _ = match i % 4 {
        0 => writeln!(
            o,
            "-A {chain} -s 172.16.{hi}.{lo}/32 -d {host}/32 -p tcp -m tcp --dport 80 -j ACCEPT"
        ),
        1 => writeln!(
            o,
            "-A {chain} -s 10.0.0.0/8 -d 198.18.{hi}.{lo}/32 -p tcp -m tcp --dport 80 -j ACCEPT"
        ),
        2 => writeln!(
            o,
            "-A {chain} -s 10.0.0.0/8 -d {host}/32 -p udp -m udp --dport 80 -j ACCEPT"
        ),
        _ => writeln!(
            o,
            "-A {chain} -s 10.0.0.0/8 -d {host}/32 -p tcp -m tcp --dport {} -j ACCEPT",
            1000 + i % 60000
        ),
    };
}

/// The worst-case ruleset of `n` rules (jumps included) for the frame `SRC:40000 -> host:80/tcp`
/// (see the module docs), and the deciding rule's 1-based position in its chain.
fn ruleset_text(n: usize, shape: Shape, host: Ipv4Addr) -> (String, u32) {
    let depth = shape.depth();
    let chain = |k: usize| {
        if k == 0 {
            "INPUT".to_string()
        } else {
            format!("C{k}")
        }
    };
    let mut o =
        String::from("*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n");
    for k in 1..=depth {
        let _ = writeln!(o, ":{} - [0:0]", chain(k));
    }
    let fillers = n.saturating_sub(depth + 1);
    let mut i = 0;
    let mut last_len = 0;
    for k in 0..=depth {
        // Chain k holds fillers [k * fillers / (depth + 1), (k + 1) * fillers / (depth + 1)).
        let end = (k + 1) * fillers / (depth + 1);
        let here = end - i;
        while i < end {
            filler(&mut o, &chain(k), i, host);
            i += 1;
        }
        if k < depth {
            let _ = writeln!(o, "-A {} -s 10.0.0.0/8 -j {}", chain(k), chain(k + 1));
        }
        last_len = here + 1;
    }
    if n > 0 {
        let _ = writeln!(
            o,
            "-A {} -s 10.0.0.0/8 -d {host}/32 -p tcp -m tcp --dport 80 -j DROP",
            chain(depth)
        );
    }
    o.push_str("COMMIT\n");
    (o, last_len as u32)
}

fn lower_text(text: &str) -> Result<Ruleset> {
    lower::iptables(&SourceFile::new("bench.rules", text))
        .map(|l| l.ruleset)
        .map_err(|d| anyhow::anyhow!("{d:?}"))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Sum of `memlock:` over the BPF map fds this process holds, by fd.
fn map_memlock() -> Result<std::collections::BTreeMap<String, u64>> {
    let mut out = std::collections::BTreeMap::new();
    for e in std::fs::read_dir("/proc/self/fdinfo")? {
        let e = e?;
        let Ok(info) = std::fs::read_to_string(e.path()) else {
            continue;
        };
        if !info.lines().any(|l| l.starts_with("map_type:")) {
            continue;
        }
        let memlock = info
            .lines()
            .find_map(|l| l.strip_prefix("memlock:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        out.insert(e.file_name().to_string_lossy().into_owned(), memlock);
    }
    Ok(out)
}

struct Row {
    rules: usize,
    shape: Shape,
    /// `TW_NVISITS`: the most positions one walk visits in this generation.
    nvisits: u32,
    compile_ms: f64,
    load_ms: f64,
    memlock: u64,
    tailwall_ns: f64,
    final_ns: f64,
    pass_ns: f64,
    live_base_ns: f64,
    live_rules_ns: f64,
    repeat: u32,
    live_repeat: u32,
}

/// Per-packet ns of `repeat` live frames through `tw_pass` on the victim (kernel-measured), median.
fn live_ns(pair: &VethPair, gen: &Generation, frame: &[u8], repeat: u32) -> Result<f64> {
    let fd = gen.pass_fd()?;
    let ifindex = pair.host_ifindex;
    let mut v = Vec::new();
    for _ in 0..ROUNDS {
        let ns = pair
            .host
            .run(|| test_run_live(fd, frame, repeat, ifindex))??;
        v.push(ns as f64);
    }
    Ok(median(v))
}

fn input_packets(pair: &VethPair) -> Result<u64> {
    let c = Counters::parse(&pair.host.exec("iptables-legacy-save", ["-c"])?)?;
    Ok(c.policy_packets + c.rules.iter().map(|r| r.0).sum::<u64>())
}

/// Packets counted by the ruleset's only DROP rule (the deciding one, in whichever chain).
fn deciding_packets(pair: &VethPair) -> Result<u64> {
    let save = pair.host.exec("iptables-legacy-save", ["-c"])?;
    let line = save
        .lines()
        .find(|l| l.starts_with('[') && l.ends_with(" -j DROP"))
        .context("no DROP rule in iptables-legacy-save -c")?;
    let cnt = line.split_once(' ').map_or("", |(c, _)| c);
    cnt.trim_matches(|c| c == '[' || c == ']')
        .split_once(':')
        .and_then(|(p, _)| p.parse().ok())
        .with_context(|| format!("counter of {line:?}"))
}

/// Pins the calling thread to the CPU it runs on until dropped, so that `tw_final` alone runs on
/// the per-CPU context the full run left.
struct Pinned(libc::cpu_set_t);

impl Pinned {
    fn here() -> Result<Pinned> {
        // SAFETY: plain libc calls on a zeroed cpu_set_t of the right size.
        unsafe {
            let mut old: libc::cpu_set_t = std::mem::zeroed();
            let size = std::mem::size_of::<libc::cpu_set_t>();
            ensure!(
                libc::sched_getaffinity(0, size, &mut old) == 0,
                "sched_getaffinity"
            );
            let cpu = libc::sched_getcpu();
            ensure!(cpu >= 0, "sched_getcpu");
            let mut one: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu as usize, &mut one);
            ensure!(
                libc::sched_setaffinity(0, size, &one) == 0,
                "sched_setaffinity"
            );
            Ok(Pinned(old))
        }
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        // SAFETY: restores the mask read in `here`.
        unsafe {
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &self.0);
        }
    }
}

fn measure(n: usize, shape: Shape, repeat: u32) -> Result<Row> {
    let pair = VethPair::new()?;
    for scope in ["all", "default", pair.host_if.as_str()] {
        pair.host
            .sysctl(&format!("net.ipv4.conf.{scope}.rp_filter"), "0")?;
    }
    let (text, expect_pos) = ruleset_text(n, shape, pair.host_ip);
    let frame = build_frame(
        pair.host_mac,
        pair.peer_mac,
        SRC,
        pair.host_ip,
        IPPROTO_TCP,
        0,
        &l4_header(IPPROTO_TCP, 40000, 80, b""),
    );

    // Compile.
    let rs = lower_text(&text)?;
    let mut times = Vec::new();
    let mut art: Option<Artifact> = None;
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let a = artifact::build(&rs, Hook::Input)?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
        art = Some(a);
    }
    let art = art.context("no artifact")?;
    let compile_ms = median(times);

    // Load, and account the maps the generation created.
    let before = map_memlock()?;
    let gen = Generation::load(&art)?;
    let after = map_memlock()?;
    let memlock = after
        .iter()
        .filter(|(fd, _)| !before.contains_key(*fd))
        .map(|(_, m)| m)
        .sum();

    // The frame is the worst case: decided by the last rule of the deepest chain, in every engine.
    let want = Answer::from_outcome(&interp::run(&rs, Hook::Input, &decode(&frame)));
    let got = Answer::from_test_run(&art, &gen.test_run(&frame, 1)?)?;
    ensure!(
        want == got
            && (n == 0
                || want
                    == Answer::Rule {
                        position: expect_pos,
                        verdict: tailwall_compiler::ir::Verdict::Drop
                    }),
        "worst-case frame: interp {want}, kernel {got}, expected rule {expect_pos}"
    );

    let mut tw = Vec::new();
    let mut fin = Vec::new();
    let mut pass = Vec::new();
    {
        let _pin = Pinned::here()?;
        for _ in 0..ROUNDS {
            let full = gen.test_run(&frame, repeat)?;
            let alone = gen.test_run_final(&frame, repeat)?;
            let (a, f) = (alone.decision, full.decision);
            ensure!(
                (a.rule, a.reason, a.action, alone.xdp_action)
                    == (f.rule, f.reason, f.action, full.xdp_action),
                "tw_final alone decided {:?}, the full run {:?}",
                alone.decision,
                full.decision
            );
            tw.push(full.duration_ns as f64);
            fin.push(alone.duration_ns as f64);
            pass.push(gen.test_run_pass(&frame, repeat)?.duration_ns as f64);
        }
    }

    // iptables: empty INPUT (policy DROP), then the ruleset, on the same frames. Aim at ~0.3 s per
    // measurement with the rules loaded (estimated from a short calibration).
    pair.host
        .exec_stdin("iptables-legacy-restore", ["-w"], &text)?;
    let cal = pair
        .host
        .run(|| test_run_live(gen.pass_fd()?, &frame, 200, pair.host_ifindex))??;
    let live_repeat = ((3e8 / (cal.max(1) as f64)) as u32).clamp(2000, repeat);
    pair.host.exec_stdin(
        "iptables-legacy-restore",
        ["-w"],
        &ruleset_text(0, Shape::Flat, pair.host_ip).0,
    )?;
    let c0 = input_packets(&pair)?;
    let live_base_ns = live_ns(&pair, &gen, &frame, live_repeat)?;
    let c1 = input_packets(&pair)?;
    ensure!(
        c1 - c0 == ROUNDS as u64 * live_repeat as u64,
        "live frames did not all reach INPUT: {} of {}",
        c1 - c0,
        ROUNDS as u64 * live_repeat as u64
    );
    pair.host
        .exec_stdin("iptables-legacy-restore", ["-w"], &text)?;
    let live_rules_ns = live_ns(&pair, &gen, &frame, live_repeat)?;
    if n > 0 {
        let last = deciding_packets(&pair)?;
        if last != ROUNDS as u64 * live_repeat as u64 {
            bail!(
                "iptables' deciding counter saw {last} packets, expected {}",
                ROUNDS as u64 * live_repeat as u64
            );
        }
    }

    Ok(Row {
        rules: n,
        shape,
        nvisits: art.globals.nvisits,
        compile_ms,
        load_ms: gen.load_time().as_secs_f64() * 1e3,
        memlock,
        tailwall_ns: median(tw),
        final_ns: median(fin),
        pass_ns: median(pass),
        live_base_ns,
        live_rules_ns,
        repeat,
        live_repeat,
    })
}

/// A comma-separated list of numbers from the environment (`default` when unset; empty: none).
fn env_list(name: &str, default: &str) -> Result<Vec<usize>> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().with_context(|| name.to_string()))
        .collect()
}

fn main() -> Result<()> {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    if !require_root_or_skip("bench datapath") {
        return Ok(());
    }
    let sizes = env_list("TAILWALL_BENCH_SIZES", "10,1000,10000")?;
    let chain_sizes = env_list("TAILWALL_BENCH_CHAIN_SIZES", "1000,10000")?;
    let depths = env_list("TAILWALL_BENCH_DEPTHS", "1,4,16")?;
    let repeat: u32 = std::env::var("TAILWALL_BENCH_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let mut runs: Vec<(usize, Shape)> = sizes.iter().map(|&n| (n, Shape::Flat)).collect();
    for &n in &chain_sizes {
        for &depth in &depths {
            ensure!(n > depth + 1, "{n} rules cannot fill {depth} nested chains");
            runs.push((n, Shape::Chains { depth }));
        }
    }
    let mut rows = Vec::new();
    for (n, shape) in runs {
        eprintln!("bench: {n} rules, {shape:?} ...");
        rows.push(measure(n, shape, repeat).with_context(|| format!("{n} rules, {shape:?}"))?);
    }
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    println!(
        "tailwall datapath benchmark — {} CPUs, Linux {}, median of {ROUNDS}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        kernel.trim()
    );
    println!();
    println!("| rules | compile (artifact::build) | load | map memory (memlock) | tailwall classifier ns/pkt | of which tw_final | empty XDP ns/pkt | iptables-legacy INPUT ns/pkt | (stack+INPUT, 0 rules / N rules) |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for r in rows.iter().filter(|r| r.shape == Shape::Flat) {
        println!(
            "| {} | {:.2} ms | {:.1} ms | {:.1} MiB | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} / {:.0} ns, {} frames |",
            r.rules,
            r.compile_ms,
            r.load_ms,
            r.memlock as f64 / (1024.0 * 1024.0),
            r.tailwall_ns,
            r.final_ns,
            r.pass_ns,
            r.live_rules_ns - r.live_base_ns,
            r.live_base_ns,
            r.live_rules_ns,
            r.live_repeat,
        );
    }
    if rows.iter().any(|r| r.shape != Shape::Flat) {
        println!();
        println!("| rules | nested user chains | walk visits (TW_NVISITS) | compile | load | map memory | tailwall classifier ns/pkt | of which tw_final | empty XDP ns/pkt | iptables-legacy INPUT ns/pkt | (stack+INPUT, 0 rules / N rules) |");
        println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
        for r in rows.iter().filter(|r| r.shape != Shape::Flat) {
            println!(
                "| {} | {} | {} | {:.2} ms | {:.1} ms | {:.1} MiB | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} / {:.0} ns, {} frames |",
                r.rules,
                r.shape.depth(),
                r.nvisits,
                r.compile_ms,
                r.load_ms,
                r.memlock as f64 / (1024.0 * 1024.0),
                r.tailwall_ns,
                r.final_ns,
                r.pass_ns,
                r.live_rules_ns - r.live_base_ns,
                r.live_base_ns,
                r.live_rules_ns,
                r.live_repeat,
            );
        }
    }
    println!();
    println!("test-run repeat: {}; tailwall/empty XDP = BPF_PROG_TEST_RUN mean per run (tw_final: the verdict program alone on the state the full run left); iptables = live-frames (tw_pass on the victim veth) with rules minus with an empty INPUT chain", rows.first().map_or(0, |r| r.repeat));
    Ok(())
}
