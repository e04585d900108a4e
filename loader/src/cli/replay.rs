//! `tailwall replay`: every frame of a capture through the compiled classifier of one hook (`--hook`,
//! INPUT by default), in userspace (`sim`) or in the kernel (BPF_PROG_TEST_RUN on the real programs).
//! Offline the hook is given, not routed: a frame replayed at `input` is taken as addressed to this
//! host, at `forward` as routed through it, at `output` as sent by it. With `--v6 RULES6` the IPv6
//! frames are judged by the IPv6 ruleset and the IPv4 ones by RULES (one generation, as
//! `compile --v6`); a lone ruleset passes the other family's frames (`other_family`).
use super::{build_sets_at, load_sets, pcap, Engine, Failure, Output, SCHEMA_VERSION};
use anyhow::Context as _;
use std::path::Path;
use tailwall_compiler::diag::SourceFile;
use tailwall_compiler::interp;
use tailwall_compiler::ir::{DisplayAddr, Field, Hook, Ruleset};
use tailwall_compiler::outcome::{Decided, Outcome};
use tailwall_compiler::packet::decode;
use tailwall_compiler::sim::Sim;

/// One replayed frame's result, as printed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Line {
    pub index: usize,
    pub verdict: &'static str,
    /// The chain that decided, or null for frames that are not filtered (not IPv4, malformed).
    pub chain: Option<String>,
    /// 1-based position of the deciding rule in its chain, or null when the policy (or no rule) decided.
    pub rule: Option<u32>,
    /// rule | policy | hotdrop | not_ipv4 | malformed | fail_closed
    pub reason: &'static str,
    /// The packet's addresses, protocol and ports as the classifier read them; null when it read no
    /// IPv4 header.
    pub packet: Option<Tuple>,
    /// 1-based line of the deciding rule (or hotdrop rule) in the rules file; null otherwise.
    pub line: Option<usize>,
    /// The LOG/NFLOG rules that reported the frame before the decision, in walk order (`sim`: its
    /// model; `kernel`: the records the run wrote to the ring buffer, not with `--repeat`); left out
    /// of the JSON when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<LogLine>,
}

/// One LOG/NFLOG rule that reported a replayed frame.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LogLine {
    /// The LOG rule's own chain.
    pub chain: String,
    /// Its 1-based position there.
    pub rule: u32,
    /// Its 1-based line in the rules file.
    pub line: usize,
    /// The target in the IR dump's spelling (`log level 6 prefix "ssh: "`).
    pub target: String,
}

/// A packet's 5-tuple as the classifier reads it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Tuple {
    /// IP protocol number.
    pub proto: u8,
    pub src: String,
    pub dst: String,
    /// Ports, null when the packet carries none (other protocol, non-first fragment) or its
    /// transport header is truncated.
    pub sport: Option<u16>,
    pub dport: Option<u16>,
}

/// The tuple of a frame, when it decodes as IPv4 or IPv6.
fn tuple(frame: &[u8]) -> Option<Tuple> {
    let d = decode(frame);
    let p = d.packet()?;
    let (sport, dport) = match p.ports {
        tailwall_compiler::packet::Ports::Present { src, dst } => (Some(src), Some(dst)),
        _ => (None, None),
    };
    Some(Tuple {
        proto: p.proto,
        src: DisplayAddr(p.src, Field::SrcIp.for_family(p.family)).to_string(),
        dst: DisplayAddr(p.dst, Field::DstIp.for_family(p.family)).to_string(),
        sport,
        dport,
    })
}

/// The printed line of one frame's outcome (any engine's): the deciding rule is looked up in the
/// ruleset that judged the frame (`interp::judging`: its family's).
fn line_from_outcome(
    index: usize,
    sets: &[(Ruleset, SourceFile)],
    hook: Hook,
    frame: &[u8],
    o: &Outcome,
) -> Line {
    let rulesets: Vec<&Ruleset> = sets.iter().map(|(rs, _)| rs).collect();
    let judging = interp::judging(&rulesets, &decode(frame));
    let (rs, src) = sets
        .iter()
        .find(|(rs, _)| judging.is_some_and(|j| std::ptr::eq(j, rs)))
        .unwrap_or(&sets[0]);
    let hook_chain = || hook.chain_name().to_string();
    let chain = match o.decided {
        // The datapath failed closed inside the hook's chain.
        Decided::FailClosed { .. } => Some(hook_chain()),
        _ => o
            .chain()
            .map(|c| rs.chain(c).map_or_else(hook_chain, |c| c.name.clone())),
    };
    Line {
        index,
        verdict: o.verdict.as_str(),
        chain,
        // A hotdrop names no rule in the printed line: no rule counted the packet.
        rule: match o.decided {
            Decided::Rule { position, .. } => Some(position),
            _ => None,
        },
        reason: o.reason(),
        packet: tuple(frame),
        line: match o.decided {
            Decided::Rule { rule, .. } | Decided::Hotdrop { rule, .. } => {
                rs.rule(rule).map(|r| src.line_col(r.span.start as usize).0)
            }
            _ => None,
        },
        logs: Vec::new(),
    }
}

/// The log events of a frame as printed lines, looked up in the ruleset that judged it.
fn log_lines(
    sets: &[(Ruleset, SourceFile)],
    frame: &[u8],
    logs: &[interp::LogEvent],
) -> Vec<LogLine> {
    let rulesets: Vec<&Ruleset> = sets.iter().map(|(rs, _)| rs).collect();
    let judging = interp::judging(&rulesets, &decode(frame));
    let Some((rs, src)) = sets
        .iter()
        .find(|(rs, _)| judging.is_some_and(|j| std::ptr::eq(j, rs)))
    else {
        return Vec::new();
    };
    logs.iter()
        .filter_map(|e| {
            let r = rs.rule(e.rule)?;
            Some(LogLine {
                chain: rs.chain(e.chain)?.name.clone(),
                rule: e.position,
                line: src.line_col(r.span.start as usize).0,
                target: tailwall_compiler::ir::DisplayAction(r.action, rs).to_string(),
            })
        })
        .collect()
}

/// Drain the generation's ring buffer: the LOG/NFLOG records as log events of their rules.
fn kernel_log_events(
    gen: &tailwall_loader::Generation,
    art: &tailwall_compiler::artifact::Artifact,
) -> Vec<interp::LogEvent> {
    let Some(map) = gen.abi_map(tailwall_abi::MAP_LOG) else {
        return Vec::new();
    };
    let Ok(mut ring) = tailwall_loader::logring::ring(map) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    while let Some(item) = ring.next() {
        let Some(r) = tailwall_loader::logring::decode(&item) else {
            continue;
        };
        if r.kind != tailwall_abi::LOG_KIND_RULE {
            continue;
        }
        let info = art
            .positions
            .get(r.position as usize)
            .and_then(|p| match p.origin {
                tailwall_compiler::artifact::PositionOrigin::Rule(i) => art.rules.get(i as usize),
                _ => None,
            });
        if let Some(ri) = info {
            out.push(interp::LogEvent {
                chain: ri.chain_id,
                rule: ri.id,
                position: ri.position,
            });
        }
    }
    out
}

pub fn run(
    rules: &Path,
    v6: Option<&Path>,
    pcap_path: &Path,
    engine: Engine,
    repeat: Option<u32>,
    hook: Hook,
    output: Output,
) -> Result<(), Failure> {
    if repeat.is_some() && engine != Engine::Kernel {
        return Err(Failure::Usage(
            "--repeat measures the kernel's per-packet time: use it with --engine kernel".into(),
        ));
    }
    if repeat == Some(0) {
        return Err(Failure::Usage("--repeat must be at least 1".into()));
    }
    let sets = load_sets(rules, v6)?;
    // The artifact is the classifier of `hook`'s chain: the datapath refuses (located) what it cannot
    // compile at that hook.
    let art = build_sets_at(&sets, hook)?;
    for (rs, _) in &sets {
        super::diff::prove(rs, &art)?;
    }
    let rulesets: Vec<&Ruleset> = sets.iter().map(|(rs, _)| rs).collect();
    let frames = pcap::read_frames(pcap_path).map_err(|e| Failure::Usage(e.to_string()))?;
    for (i, f) in frames
        .iter()
        .enumerate()
        .filter(|(_, f)| f.truncated_by_capture)
    {
        eprintln!("tailwall: warning: frame {i} was cut short by the capture's snaplen ({} bytes kept); it is replayed as captured", f.data.len());
    }
    let mut lines = Vec::with_capacity(frames.len());
    let mut ns_total: u64 = 0;
    match engine {
        Engine::Sim => {
            let sim = Sim::new(&art).map_err(|e| Failure::Runtime(anyhow::anyhow!("sim: {e}")))?;
            for (i, f) in frames.iter().enumerate() {
                let mut logs = Vec::new();
                let region = tailwall_compiler::flatten::region_slot(
                    hook,
                    tailwall_compiler::ir::Family::V4,
                );
                let o = sim.run_logged(
                    region,
                    &interp::Meta::default(),
                    &decode(&f.data),
                    &mut logs,
                );
                let mut line = line_from_outcome(i, &sets, hook, &f.data, &o);
                line.logs = log_lines(&sets, &f.data, &logs);
                lines.push(line);
            }
        }
        Engine::Kernel => {
            tailwall_loader::iface::paths::require_caps(
                "running frames through the kernel (--engine kernel)",
            )
            .map_err(super::lifecycle::iface_error)?;
            // Frames without interfaces, as `sim` and `interp` judge them here.
            let gen = tailwall_loader::Generation::load_nameless(&art)
                .context("loading the classifier into the kernel")?;
            for (i, f) in frames.iter().enumerate() {
                if f.data.len() < tailwall_compiler::packet::ETH_HLEN {
                    // No driver hands XDP a frame shorter than an Ethernet header, and test-run refuses
                    // one: report what the datapath's parser decides for it (not IPv4, passed).
                    eprintln!("tailwall: warning: frame {i} is {} bytes, shorter than an Ethernet header; not run in the kernel", f.data.len());
                    lines.push(line_from_outcome(
                        i,
                        &sets,
                        hook,
                        &f.data,
                        &interp::run_sets(
                            &rulesets,
                            hook,
                            &interp::Meta::default(),
                            &decode(&f.data),
                        ),
                    ));
                    continue;
                }
                let tr = gen
                    .test_run_at(&f.data, hook, repeat.unwrap_or(1))
                    .with_context(|| format!("test-run of frame {i}"))?;
                ns_total += tr.duration_ns as u64;
                let o = Outcome::from_kernel(&art, tr.xdp_action, &tr.decision)
                    .with_context(|| format!("kernel decision record of frame {i}"))?;
                let mut line = line_from_outcome(i, &sets, hook, &f.data, &o);
                // The LOG/NFLOG records of this run (one run: with --repeat they repeat, and a
                // long run fills the ring buffer).
                let events = kernel_log_events(&gen, &art);
                if repeat.is_none() {
                    line.logs = log_lines(&sets, &f.data, &events);
                }
                lines.push(line);
            }
        }
    }
    let accept = lines.iter().filter(|l| l.verdict == "accept").count();
    let drop = lines.len() - accept;
    let ns_per_packet = match (repeat, lines.len()) {
        (Some(_), n) if n > 0 => Some(ns_total as f64 / n as f64),
        _ => None,
    };
    match output {
        Output::Json => {
            for l in &lines {
                println!("{}", serde_json::to_string(l).expect("json"));
            }
            let summary = serde_json::json!({"summary": {
                "schema_version": SCHEMA_VERSION,
                "packets": lines.len(), "accept": accept, "drop": drop, "ns_per_packet": ns_per_packet,
            }});
            println!("{summary}");
        }
        Output::Text => {
            println!(
                "{:>6}  {:<7} {:<6} {:>5}  {:<10} packet",
                "#", "verdict", "chain", "rule", "reason"
            );
            for (l, f) in lines.iter().zip(&frames) {
                let pkt = decode(&f.data).to_string();
                println!(
                    "{:>6}  {:<7} {:<6} {:>5}  {:<10} {}",
                    l.index,
                    l.verdict,
                    l.chain.as_deref().unwrap_or("-"),
                    l.rule.map(|r| r.to_string()).unwrap_or_else(|| "-".into()),
                    l.reason,
                    pkt
                );
                for g in &l.logs {
                    println!(
                        "{:>6}  log     {:<6} {:>5}  line {:<5} {}",
                        "", g.chain, g.rule, g.line, g.target
                    );
                }
            }
            print!(
                "{} packets: {} accepted, {} dropped",
                lines.len(),
                accept,
                drop
            );
            match ns_per_packet {
                Some(ns) => println!(
                    ", {ns:.1} ns/packet in the kernel (test-run, repeat {})",
                    repeat.unwrap_or(1)
                ),
                None => println!(),
            }
        }
    }
    Ok(())
}
