//! `tailwall explain RULES (--packet SPEC | --pcap FILE [--index N]) [--hook H] [-o text|json]`: the path
//! of one packet through the chains, rule by rule, and the compiled tables' answer beside it.
//!
//! The path comes from `analysis::explain::trace`, whose outcome must equal `interp`'s (an internal
//! error otherwise). The artifact is built and `sim` runs the same frame at the hook: the two answers
//! are printed side by side and must agree (exit 1 when they do not). For a packet with an interface,
//! or a ruleset the datapath cannot compile, the reason is printed instead of the tables' answer.
use super::diff::{Decider, HookArg};
use super::{load_rules, pcap, Failure, Output, SCHEMA_VERSION};
use std::path::Path;
use tailwall_compiler::analysis::explain::{trace, Tried};
use tailwall_compiler::analysis::Witness;
use tailwall_compiler::artifact;
use tailwall_compiler::interp::{self, Meta};
use tailwall_compiler::ir::{DisplayAction, DisplayMatch, Hook};
use tailwall_compiler::packet::decode;
use tailwall_compiler::sim::Sim;

/// Where the packet comes from.
pub enum Source<'a> {
    Spec(&'a str),
    Pcap { path: &'a Path, index: usize },
}

pub fn run(rules: &Path, source: Source, hook: HookArg, output: Output) -> Result<(), Failure> {
    let hook = match hook {
        HookArg::Input => Hook::Input,
        HookArg::Forward => Hook::Forward,
        HookArg::Output => Hook::Output,
        HookArg::All => {
            return Err(Failure::Usage(
                "explain follows one packet through one hook: --hook input, forward or output"
                    .into(),
            ))
        }
    };
    let (rs, src) = load_rules(rules)?;
    let (pkt, meta, spec) = match source {
        Source::Spec(s) => {
            let w = Witness::parse(s).map_err(|e| Failure::Usage(format!("--packet: {e}")))?;
            (w.decoded(), w.meta.clone(), w.spec())
        }
        Source::Pcap { path, index } => {
            let frames = pcap::read_frames(path).map_err(|e| Failure::Usage(e.to_string()))?;
            let n = frames.len();
            let f = frames.into_iter().nth(index).ok_or_else(|| {
                Failure::Usage(format!(
                    "--index {index}: {} holds {n} frames",
                    path.display()
                ))
            })?;
            let spec = decode(&f.data).to_string();
            (decode(&f.data), Meta::default(), spec)
        }
    };
    let t = trace(&rs, hook, &meta, &pkt);
    let reference = interp::run_with(&rs, hook, &meta, &pkt);
    if t.outcome != reference {
        return Err(Failure::Runtime(anyhow::anyhow!(
            "internal error: the trace ends in {:?}, interp decides {:?}",
            t.outcome,
            reference
        )));
    }
    // The compiled tables' answer at the hook, in a namespace where the packet's interfaces exist
    // (the interface tables filled from them as the loader fills them).
    let compiled = artifact::build(&rs, hook)
        .map_err(|e| match e {
            // Each rule the datapath refuses, not only their number.
            artifact::BuildError::Several(v) => v
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; "),
            e => e.to_string(),
        })
        .and_then(|a| Sim::new(&a).map_err(|e| e.to_string()))
        .map(|sim| {
            sim.with_devices(meta.devices()).run_with(
                tailwall_compiler::flatten::region_slot(hook, tailwall_compiler::ir::Family::V4),
                &meta,
                &pkt,
            )
        });
    let decided = Decider::of(&t.outcome, &rs, &src);
    let sim = compiled.as_ref().map(|o| Decider::of(o, &rs, &src));
    let agree = compiled.as_ref().map(|o| *o == t.outcome).unwrap_or(true);
    let rule_text = |step: &tailwall_compiler::analysis::explain::Step| -> String {
        let Some(r) = rs.rule(step.rule) else {
            return String::new();
        };
        let mut s: Vec<String> = r
            .matches
            .iter()
            .map(|m| DisplayMatch(m).to_string())
            .collect();
        s.push(format!("-> {}", DisplayAction(r.action, &rs)));
        s.join(" ")
    };
    let chain_name = |c| rs.chain(c).map_or("?".to_string(), |c| c.name.clone());
    let line_of = |step: &tailwall_compiler::analysis::explain::Step| {
        rs.rule(step.rule)
            .filter(|r| r.span != Default::default())
            .map(|r| src.line_col(r.span.start as usize).0)
    };
    match output {
        Output::Json => {
            let steps: Vec<_> = t
                .steps
                .iter()
                .map(|s| {
                    serde_json::json!({
                        "chain": chain_name(s.chain), "rule": s.position, "depth": s.depth,
                        "line": line_of(s), "text": rule_text(s),
                        "matched": s.tried == Tried::Matched,
                        "failed_field": match s.tried { Tried::Failed(f) => Some(f.name()), _ => None },
                        "hotdrop": s.tried == Tried::Hotdrop,
                    })
                })
                .collect();
            let doc = serde_json::json!({
                "schema_version": SCHEMA_VERSION,
                "rules_file": src.name,
                "hook": hook.as_str(),
                "packet": spec,
                "steps": steps,
                "decided": decided,
                "compiled": match &sim { Ok(d) => serde_json::to_value(d).expect("json"), Err(_) => serde_json::Value::Null },
                "compiled_unavailable": compiled.as_ref().err(),
                "agree": agree,
            });
            println!("{}", serde_json::to_string_pretty(&doc).expect("json"));
        }
        Output::Text => {
            println!("{} {spec}", hook.as_str());
            for s in &t.steps {
                let indent = "  ".repeat(s.depth + 1);
                let at = format!("{} #{}", chain_name(s.chain), s.position);
                let result = match s.tried {
                    Tried::Matched => format!("match -> {}", DisplayAction(s.action, &rs)),
                    Tried::Failed(f) => format!("no: {f}"),
                    Tried::Hotdrop => "hotdrop: transport header truncated".to_string(),
                };
                let line = line_of(s)
                    .map(|l| format!("{}:{l}", src.name))
                    .unwrap_or_default();
                println!("{indent}{at:<12} {result:<28} {line:<16} {}", rule_text(s));
            }
            println!("rules:    {:<6} {}", decided.verdict, decided.text());
            match &sim {
                Ok(d) => println!(
                    "compiled: {:<6} {} ({})",
                    d.verdict,
                    d.text(),
                    if agree { "agrees" } else { "DISAGREES" }
                ),
                Err(why) => println!("compiled: not run: {why}"),
            }
        }
    }
    if agree {
        Ok(())
    } else {
        Err(Failure::Runtime(anyhow::anyhow!(
            "internal error: the compiled tables decide this packet differently from the rules"
        )))
    }
}
