//! `tailwall diff OLD NEW`: do two rulesets give every packet the same verdict? Exit 0 when they do,
//! 1 when they do not (as diff(1)), 2/3 on input errors.
//!
//! The decision procedure is `tailwall_compiler::analysis` (complete, no sampling); each hook is
//! compared separately. Every counterexample printed was replayed through `interp` with both rulesets
//! and gave the outcomes printed (a disagreement is an internal error, never printed as a result).
use super::{load_rules, Failure, Output, SCHEMA_VERSION};
use clap::ValueEnum;
use std::path::Path;
use std::time::Instant;
use tailwall_compiler::analysis::{self, Counterexample};
use tailwall_compiler::diag::SourceFile;
use tailwall_compiler::interp::{Decided, Outcome};
use tailwall_compiler::ir::{Hook, Ruleset};

/// Which hooks to compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum HookArg {
    Input,
    Forward,
    Output,
    All,
}

impl HookArg {
    pub fn hooks(self) -> Vec<Hook> {
        match self {
            HookArg::Input => vec![Hook::Input],
            HookArg::Forward => vec![Hook::Forward],
            HookArg::Output => vec![Hook::Output],
            HookArg::All => Hook::ALL.to_vec(),
        }
    }
}

/// Who decided, as printed: `INPUT #3`, `policy of INPUT`, `hotdrop at web #2`.
#[derive(Debug, serde::Serialize)]
pub struct Decider {
    pub verdict: &'static str,
    /// rule | policy | hotdrop
    pub reason: &'static str,
    pub chain: String,
    /// 1-based position in `chain` (null for the policy).
    pub rule: Option<u32>,
    /// `file:line` of the deciding rule (null for the policy, or a rule without a source line).
    pub source: Option<String>,
}

impl Decider {
    pub fn of(o: &Outcome, rs: &Ruleset, src: &SourceFile) -> Decider {
        let name = |c: tailwall_compiler::ir::ChainId| {
            rs.chain(c)
                .map_or_else(|| "INPUT".to_string(), |c| c.name.clone())
        };
        let at = |id| {
            rs.rule(id)
                .filter(|r| r.span != Default::default())
                .map(|r| format!("{}:{}", src.name, src.line_col(r.span.start as usize).0))
        };
        let (reason, chain, rule, source) = match o.decided {
            Decided::Rule {
                chain,
                rule,
                position,
            } => ("rule", name(chain), Some(position), at(rule)),
            Decided::Hotdrop {
                chain,
                rule,
                position,
            } => ("hotdrop", name(chain), Some(position), at(rule)),
            Decided::Policy { chain } => ("policy", name(chain), None, None),
            Decided::NotIpv4 => ("not_ipv4", String::new(), None, None),
            Decided::OtherFamily => ("other_family", String::new(), None, None),
            Decided::Malformed => ("malformed", String::new(), None, None),
            Decided::FailClosed { .. } => ("fail_closed", String::new(), None, None),
        };
        Decider {
            verdict: o.verdict.as_str(),
            reason,
            chain,
            rule,
            source,
        }
    }
    /// `INPUT #3 (rules.v4:14)`, `policy of INPUT`, `hotdrop at web #2 (truncated header)`.
    pub fn text(&self) -> String {
        let src = self
            .source
            .as_ref()
            .map(|s| format!(" ({s})"))
            .unwrap_or_default();
        match (self.reason, self.rule) {
            ("policy", _) => format!("policy of {}", self.chain),
            ("hotdrop", Some(p)) => {
                format!("hotdrop at {} #{p}{src}, truncated header", self.chain)
            }
            (_, Some(p)) => format!("{} #{p}{src}", self.chain),
            _ => self.reason.to_string(),
        }
    }
}

struct Side<'a> {
    rs: &'a Ruleset,
}

#[derive(serde::Serialize)]
struct JsonCounterexample {
    packet: String,
    old: Decider,
    new: Decider,
    region: Option<String>,
}

#[derive(serde::Serialize)]
struct JsonHook {
    hook: &'static str,
    equivalent: bool,
    /// Leaf boxes of the search where the verdicts differ.
    regions: u64,
    /// Distinct (old decider, new decider) pairs.
    pairs: usize,
    nodes: u64,
    counterexamples: Vec<JsonCounterexample>,
}

/// Check a counterexample against `interp` on both sides (an internal error if it does not replay).
fn verify(c: &Counterexample, old: &Side, new: &Side) -> Result<(), Failure> {
    let o = analysis::replay(old.rs, c.hook, &c.witness);
    let n = analysis::replay(new.rs, c.hook, &c.witness);
    if (o, n) != (c.old, c.new) {
        return Err(Failure::Runtime(anyhow::anyhow!(
            "internal error: counterexample `{}` at {} replays as {:?} / {:?} in interp, the analysis said {:?} / {:?}",
            c.witness.spec(),
            c.hook.chain_name(),
            o,
            n,
            c.old,
            c.new
        )));
    }
    Ok(())
}

fn write_pcap(path: &Path, frames: &[Vec<u8>]) -> Result<(), Failure> {
    use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
    let file = std::fs::File::create(path)
        .map_err(|e| Failure::Usage(format!("cannot write {}: {e}", path.display())))?;
    let header = PcapHeader {
        datalink: pcap_file::DataLink::ETHERNET,
        ..Default::default()
    };
    let io = |e: pcap_file::PcapError| Failure::Runtime(anyhow::anyhow!("{}: {e}", path.display()));
    let mut w = PcapWriter::with_header(file, header).map_err(io)?;
    for (i, f) in frames.iter().enumerate() {
        let t = std::time::Duration::from_secs(i as u64);
        w.write_packet(&PcapPacket::new(t, f.len() as u32, f))
            .map_err(io)?;
    }
    Ok(())
}

pub fn run(
    old_path: &Path,
    new_path: &Path,
    hook: HookArg,
    output: Output,
    pcap_out: Option<&Path>,
    limit: usize,
) -> Result<(), Failure> {
    let (old_rs, old_src) = load_rules(old_path)?;
    let (new_rs, new_src) = load_rules(new_path)?;
    let old = Side { rs: &old_rs };
    let new = Side { rs: &new_rs };
    let start = Instant::now();
    let mut hooks = Vec::new();
    let mut frames = Vec::new();
    let mut text = String::new();
    let mut differ = false;
    for h in hook.hooks() {
        let mut last = 0u64;
        let mut progress = |nodes: u64| {
            let s = start.elapsed().as_secs();
            if s >= 1 && s > last {
                last = s;
                eprintln!(
                    "tailwall: diff {}: {nodes} boxes searched, {s} s",
                    h.chain_name()
                );
            }
        };
        let d = analysis::diff(&old_rs, &new_rs, h, limit, &mut progress)
            .map_err(|e| Failure::Semantic(format!("{}: {e}", h.chain_name())))?;
        let c = &d.comparison;
        let mut list = Vec::new();
        for cx in d.counterexamples() {
            verify(&cx, &old, &new)?;
            frames.push(cx.witness.frame());
            list.push(JsonCounterexample {
                packet: cx.witness.spec(),
                old: Decider::of(&cx.old, &old_rs, &old_src),
                new: Decider::of(&cx.new, &new_rs, &new_src),
                region: cx.description.clone(),
            });
        }
        differ |= !c.equivalent();
        if c.equivalent() {
            text.push_str(&format!("{}: equivalent\n", h.chain_name()));
        } else {
            text.push_str(&format!(
                "{}: {} difference{} ({} box{} of packets)\n",
                h.chain_name(),
                c.pairs,
                if c.pairs == 1 { "" } else { "s" },
                c.regions,
                if c.regions == 1 { "" } else { "es" },
            ));
            for (i, cx) in list.iter().enumerate() {
                text.push_str(&format!("  [{}] {} {}\n", i + 1, h.as_str(), cx.packet));
                text.push_str(&format!(
                    "      old: {:<6} {}\n",
                    cx.old.verdict,
                    cx.old.text()
                ));
                text.push_str(&format!(
                    "      new: {:<6} {}\n",
                    cx.new.verdict,
                    cx.new.text()
                ));
                if let Some(r) = &cx.region {
                    text.push_str(&format!(
                        "      region: {r}: {} -> {}\n",
                        cx.old.verdict, cx.new.verdict
                    ));
                }
            }
            if c.pairs > list.len() {
                text.push_str(&format!(
                    "  ... {} more (--limit {})\n",
                    c.pairs - list.len(),
                    limit
                ));
            }
        }
        hooks.push(JsonHook {
            hook: h.as_str(),
            equivalent: c.equivalent(),
            regions: c.regions,
            pairs: c.pairs,
            nodes: c.nodes,
            counterexamples: list,
        });
    }
    if let Some(p) = pcap_out {
        write_pcap(p, &frames)?;
    }
    match output {
        Output::Json => {
            let doc = serde_json::json!({
                "schema_version": SCHEMA_VERSION,
                "old": old_src.name,
                "new": new_src.name,
                "equivalent": !differ,
                "hooks": hooks,
            });
            println!("{}", serde_json::to_string_pretty(&doc).expect("json"));
        }
        Output::Text => {
            print!("{text}");
            if differ {
                println!("{} and {} differ", old_src.name, new_src.name);
            } else {
                println!(
                    "{} and {} are equivalent: every packet gets the same verdict",
                    old_src.name, new_src.name
                );
            }
        }
    }
    if differ {
        Err(Failure::Quiet(1))
    } else {
        Ok(())
    }
}

/// Translation validation of a compile: the artifact's tables decide every packet as the rules do.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Proof {
    /// Wall time of the proof, milliseconds.
    pub ms: f64,
    /// Search nodes visited.
    pub nodes: u64,
}

/// Prove the artifact against the rules (`analysis::validate`); a mismatch is an internal error naming
/// the packet, so nothing unproven is attached or replayed.
/// When the proof takes more than a second, a line per second on stderr says which hook it is proving
/// and how many boxes it has searched.
pub fn prove(rs: &Ruleset, art: &tailwall_compiler::artifact::Artifact) -> Result<Proof, Failure> {
    let t = Instant::now();
    let mut last = 0u64;
    let mut progress = |hook: Hook, nodes: u64| {
        let s = t.elapsed().as_secs();
        if s >= 1 && s > last {
            last = s;
            eprintln!(
                "tailwall: proof {}: {nodes} boxes searched, {s} s",
                hook.chain_name()
            );
        }
    };
    match analysis::validate_with(rs, art, &mut progress) {
        Ok(v) => Ok(Proof {
            ms: t.elapsed().as_secs_f64() * 1e3,
            nodes: v.nodes,
        }),
        Err(e) => Err(Failure::Runtime(anyhow::anyhow!("{e}"))),
    }
}
