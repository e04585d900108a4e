//! The commands that operate a classifier on an interface: `compile --attach` (the apply step),
//! `status`, `show`, `stats [--zero]`, `rollback`, `confirm`, `detach [--all]`, and the hidden
//! `--confirm` timer. Each maps [`IfaceError`]s to the documented exit codes (see `docs/cli.md`).
use std::{path::Path, time::Duration};

use tailwall_compiler::artifact::Artifact;
use tailwall_loader::{
    iface::{self, ApplyOptions, Source},
    IfaceError, LoadError, ModeRequest,
};

use super::{Failure, Mode, Output, SCHEMA_VERSION};
use tailwall_loader::iface::iso_utc;

/// Map a lifecycle error to its exit code (docs/cli.md).
pub fn iface_error(e: IfaceError) -> Failure {
    use IfaceError as E;
    match e {
        E::Busy { .. } => Failure::Busy(format!("{e} (use --wait to wait for it)")),
        E::Load(LoadError::Verifier { .. }) => Failure::Semantic(e.to_string()),
        E::UnknownInterface { .. }
        | E::NotAttached { .. }
        | E::ModeChange { .. }
        | E::NoPrevious { .. }
        | E::NothingToConfirm { .. }
        | E::Netns { .. } => Failure::Usage(e.to_string()),
        E::PrivateBpffs { .. } | E::UnsafePath { .. } | E::Moved { .. } => {
            Failure::Refused(e.to_string())
        }
        E::Privilege { .. } => Failure::Privilege(e.to_string()),
        e => Failure::Runtime(e.into()),
    }
}

fn mode_request(m: Mode) -> ModeRequest {
    match m {
        Mode::Native => ModeRequest::Exact(tailwall_loader::Mode::Native),
        Mode::Generic => ModeRequest::Exact(tailwall_loader::Mode::Generic),
        Mode::Auto => ModeRequest::Auto,
    }
}

/// Does the artifact enforce nothing (no position of any hook's region drops or rejects: no DROP or REJECT rule and every
/// policy ACCEPT)? Attaching it would pass every packet the datapath can parse.
pub fn enforces_nothing(art: &Artifact) -> bool {
    art.positions
        .iter()
        .all(|p| p.action != tailwall_abi::ACTION_DROP && p.action != tailwall_abi::ACTION_REJECT)
}

/// The refusal of a ruleset that enforces nothing (exit 3).
pub fn refuse_empty(rules: &Path, art: &Artifact) -> Failure {
    Failure::Semantic(format!(
        "{}: enforces nothing ({} rule{}, none drops, the policies of INPUT, FORWARD and OUTPUT ACCEPT): attaching it would pass every packet; refused (an empty or truncated file is the usual cause). Pass --allow-empty if an accept-all filter is what you want",
        rules.display(),
        art.rules.len(),
        if art.rules.len() == 1 { "" } else { "s" },
    ))
}

/// Options of the apply step of `compile --attach`.
pub struct Apply<'a> {
    pub iface: &'a str,
    pub mode: Mode,
    pub wait: bool,
    pub keep: u32,
    pub confirm: Option<Duration>,
    pub source: Source,
}

/// Attach `art` (see `tailwall_loader::iface::attach_with`); with `confirm`, arm the revert timer.
pub fn apply(art: &Artifact, a: Apply<'_>) -> Result<tailwall_loader::AttachOutcome, Failure> {
    let mut o = ApplyOptions::new(mode_request(a.mode));
    o.wait = a.wait;
    o.keep = a.keep;
    o.source = a.source;
    let out = iface::attach_with(a.iface, art, &o).map_err(iface_error)?;
    if let Some(d) = a.confirm {
        if !out.unchanged {
            arm_confirm(a.iface, out.generation, d)?;
        }
    }
    Ok(out)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Record the pending confirmation and start the detached timer process (`tailwall __confirm-timer`),
/// which reverts unless `tailwall confirm IFACE` comes first. It runs in this process's network
/// namespace (inherited).
fn arm_confirm(iface: &str, generation: u64, d: Duration) -> Result<(), Failure> {
    use std::os::unix::process::CommandExt as _;
    let deadline = now().saturating_add(d.as_secs().max(1));
    let exe = std::env::current_exe()
        .map_err(|e| Failure::Runtime(anyhow::anyhow!("locating the tailwall binary: {e}")))?;
    let mut timer = std::process::Command::new(exe);
    timer
        .args([
            "__confirm-timer",
            iface,
            &generation.to_string(),
            &deadline.to_string(),
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0);
    iface::arm_confirm(iface, generation, deadline, timer).map_err(iface_error)?;
    Ok(())
}

/// `__confirm-timer IFACE GEN DEADLINE`: sleep until DEADLINE; if GEN still waits for confirmation,
/// roll back to the previous generation (detach when there is none).
pub fn confirm_timer(iface: &str, generation: u64, deadline: u64) -> Result<(), Failure> {
    loop {
        let left = deadline.saturating_sub(now());
        if left == 0 {
            break;
        }
        std::thread::sleep(Duration::from_secs(left.min(1)));
        match iface::pending_confirm(iface) {
            Ok(Some(p)) if p.generation == generation => {}
            _ => return Ok(()),
        }
    }
    match iface::pending_confirm(iface).map_err(iface_error)? {
        Some(p) if p.generation == generation => {}
        _ => return Ok(()),
    }
    match iface::rollback(iface, Some(generation)) {
        Ok(_) => Ok(()),
        Err(IfaceError::NoPrevious { .. }) => iface::detach(iface).map_err(iface_error),
        Err(e) => Err(iface_error(e)),
    }
}

/// Longest `--confirm` accepted: 24 hours. iptables-apply's own default is 10 s; a longer window is no
/// safety net, and the bound keeps the deadline arithmetic far from overflow.
pub const MAX_CONFIRM_SECS: u64 = 24 * 3600;

/// Parse a duration: `30s`, `2m`, `1h`, or plain seconds; at most [`MAX_CONFIRM_SECS`].
///
/// # Errors
/// A message for clap (exit 2) when the text is not a duration, is 0, or exceeds the bound.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (e.g. 30s, 2m, 1h)"))?;
    let per_unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(format!("`{s}`: unknown unit `{unit}` (s, m or h)")),
    };
    let secs = n
        .checked_mul(per_unit)
        .filter(|&secs| secs <= MAX_CONFIRM_SECS)
        .ok_or_else(|| format!("`{s}`: a --confirm longer than 24h is refused"))?;
    if secs == 0 {
        return Err("a --confirm of 0 seconds would revert at once".into());
    }
    Ok(Duration::from_secs(secs))
}

fn print_json(mut doc: serde_json::Value) {
    doc["schema_version"] = SCHEMA_VERSION.into();
    println!("{}", serde_json::to_string_pretty(&doc).expect("json"));
}

pub fn confirm(iface: &str, output: Output) -> Result<(), Failure> {
    let g = iface::confirm(iface).map_err(iface_error)?;
    match output {
        Output::Json => print_json(serde_json::json!({"iface": iface, "confirmed": g})),
        Output::Text => println!("{iface}: generation {g} confirmed"),
    }
    Ok(())
}

pub fn rollback(iface: &str, output: Output) -> Result<(), Failure> {
    let g = iface::rollback(iface, None).map_err(iface_error)?;
    match output {
        Output::Json => print_json(serde_json::json!({"iface": iface, "generation": g})),
        Output::Text => println!("{iface}: rolled back atomically to generation {g}"),
    }
    Ok(())
}

pub fn detach(iface: Option<&str>, all: bool, output: Output) -> Result<(), Failure> {
    let done = match (iface, all) {
        (Some(i), false) => {
            iface::detach(i).map_err(iface_error)?;
            vec![i.to_string()]
        }
        (None, true) => iface::detach_all().map_err(iface_error)?,
        _ => return Err(Failure::Usage("detach takes IFACE or --all".into())),
    };
    match output {
        Output::Json => print_json(serde_json::json!({ "detached": done })),
        Output::Text => {
            if done.is_empty() {
                println!("nothing attached in this network namespace");
            }
            for i in done {
                println!("{i}: detached");
            }
        }
    }
    Ok(())
}

/// How a pending `--confirm` stands, for `status`.
fn pending_text(p: &iface::PendingConfirm, iface: &str) -> String {
    let now = now();
    let at = iso_utc(p.deadline);
    let timer = p.timer_pid.map_or_else(
        || "its timer".to_string(),
        |pid| format!("its timer (pid {pid})"),
    );
    if !p.timer_running {
        return format!(
            "pending --confirm: generation {} was to revert at {at}, but {timer} is gone: nothing reverts by itself. Keep it: `tailwall confirm {iface}`; revert now: `tailwall rollback {iface}` (the first tailwall command on {iface} after {at} reverts it)",
            p.generation
        );
    }
    if p.deadline <= now {
        return format!(
            "pending --confirm: generation {} reverts now (deadline {at} passed)",
            p.generation
        );
    }
    format!(
        "pending --confirm: generation {} reverts at {at} (in {} s) unless `tailwall confirm {iface}`",
        p.generation,
        p.deadline - now
    )
}

fn status_text(s: &iface::Status) {
    for r in &s.repaired {
        println!("{}: repaired: {r}", s.iface);
    }
    let name = match &s.device {
        Some(d) => format!("{} (now {d})", s.iface),
        None => s.iface.clone(),
    };
    let Some(g) = s.generation else {
        println!("{name}: not filtered by tailwall");
        return;
    };
    let egress = match (s.egress_link_id, s.egress_prog_id) {
        (Some(l), Some(p)) => format!(", tcx egress link {l}, program {p}"),
        _ => String::new(),
    };
    println!(
        "{}: generation {g}, {} mode, xdp link {}, program {}{egress}; hooks: {}",
        name,
        s.mode
            .map_or_else(|| "unknown".to_string(), |m| m.to_string()),
        s.link_id.unwrap_or_default(),
        s.prog_id.unwrap_or_default(),
        s.hooks.join(", ")
    );
    if s.record_lost {
        println!(
            "  ruleset: unknown: the record of generation {g} is lost (the filter keeps enforcing); apply the ruleset again to record it"
        );
    } else {
        println!(
            "  ruleset: {} ({} rules, policy {}), applied at {}, digest {}",
            s.source.as_deref().unwrap_or("(not recorded)"),
            s.rules.unwrap_or_default(),
            s.policy.as_deref().unwrap_or("?").to_uppercase(),
            s.applied_at.map_or_else(|| "?".to_string(), iso_utc),
            s.digest.as_deref().unwrap_or("?")
        );
    }
    println!(
        "  rollback: {}",
        if s.previous.is_empty() {
            "no previous generation kept".to_string()
        } else {
            format!(
                "generations {} kept",
                s.previous
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    );
    if let Some(p) = &s.pending_confirm {
        println!("  {}", pending_text(p, &s.iface));
    }
    let fc: Vec<String> = s
        .fail_closed
        .iter()
        .map(|(n, p)| format!("{n} {p}"))
        .collect();
    println!("  datapath counters (packets): {}", fc.join(", "));
}

pub fn status(which: Option<&str>, output: Output) -> Result<(), Failure> {
    let names = match which {
        Some(i) => vec![i.to_string()],
        None => iface::interfaces().map_err(iface_error)?,
    };
    let mut all = Vec::new();
    for n in &names {
        match iface::status(n) {
            Ok(s) => all.push(s),
            // An interface tailwall never touched: not filtered (still a successful status).
            Err(IfaceError::NotAttached { .. }) if which.is_some() => {}
            Err(IfaceError::NotAttached { .. }) => continue,
            Err(e) => return Err(iface_error(e)),
        }
    }
    match output {
        Output::Json => print_json(serde_json::json!({ "interfaces": all })),
        Output::Text => {
            if all.is_empty() {
                match which {
                    Some(i) => println!("{i}: not filtered by tailwall"),
                    None => println!("no interface filtered by tailwall in this network namespace"),
                }
            }
            for s in &all {
                status_text(s);
            }
        }
    }
    // Exit 0 only when every interface asked about is filtered.
    if which.is_some() && all.iter().all(|s| !s.attached) {
        return Err(Failure::Quiet(7));
    }
    Ok(())
}

pub fn show(iface: &str, output: Output) -> Result<(), Failure> {
    let rec = iface::state(iface).map_err(iface_error)?;
    match output {
        Output::Json => print_json(serde_json::json!({
            "iface": iface, "generation": rec.generation, "source": rec.source,
            "text": rec.source_text, "digest": rec.digest,
        })),
        Output::Text => {
            let Some(text) = &rec.source_text else {
                return Err(Failure::Usage(format!(
                    "{iface}: generation {} was applied without its source recorded",
                    rec.generation
                )));
            };
            let stored = rec.source_format.as_deref().unwrap_or("iptables");
            match (stored, super::FORMAT.get().copied().flatten()) {
                (_, None)
                | ("iptables", Some(super::RulesFormat::Iptables))
                | ("yaml", Some(super::RulesFormat::Yaml)) => print!("{text}"),
                ("iptables", Some(super::RulesFormat::Yaml)) => print!("{}", to_yaml(&rec, text)?),
                _ => {
                    return Err(Failure::Usage(format!(
                        "{iface}: the live ruleset was applied as YAML; tailwall has no YAML -> iptables-save printer yet (show it without --format)"
                    )))
                }
            }
        }
    }
    Ok(())
}

/// An iptables-save source as YAML, the way `migrate` converts it.
fn to_yaml(rec: &iface::State, text: &str) -> Result<String, Failure> {
    let name = rec.source.clone().unwrap_or_else(|| "live.rules".into());
    let src = tailwall_compiler::diag::SourceFile::new(name, text.to_string());
    let m = tailwall_compiler::lower::migrate(&src).map_err(|d| {
        Failure::Runtime(anyhow::anyhow!(
            "converting the live ruleset: {}",
            tailwall_compiler::diag::render_all(&d, &src)
        ))
    })?;
    Ok(tailwall_compiler::yaml::print(
        &m.ruleset,
        &super::migrate::annotations(&src, &m),
    ))
}

/// `stats IFACE`: the live generation's counters as `iptables -L -v -x -n --line-numbers` prints them
/// (`tailwall_compiler::listing`, rendered from the live ruleset's own source so rules are spelled as
/// iptables spells them), then the datapath's own reason counters on stderr, so stdout stays exactly
/// iptables' text. Counters are keyed by the IR rule each datapath rule counts for.
pub fn stats(iface: &str, zero: bool, output: Output) -> Result<(), Failure> {
    use tailwall_compiler::listing::{self, Counter, Counts};
    let st = tailwall_loader::stats(iface).map_err(iface_error)?;
    let rec = iface::state(iface).map_err(iface_error)?;
    if rec.generation != st.generation {
        return Err(Failure::Runtime(anyhow::anyhow!(
            "{iface}: the live generation changed while reading its counters ({} -> {}); run stats again",
            st.generation,
            rec.generation
        )));
    }
    let Some(text) = &rec.source_text else {
        return Err(Failure::Usage(format!(
            "{iface}: generation {} was applied without its source recorded",
            rec.generation
        )));
    };
    let format = match rec.source_format.as_deref() {
        Some("yaml") => tailwall_compiler::frontend::Format::Yaml,
        _ => tailwall_compiler::frontend::Format::IptablesSave,
    };
    let name = rec.source.clone().unwrap_or_else(|| "live".into());
    let src = tailwall_compiler::diag::SourceFile::new(name, text.clone());
    let relower = |d: Vec<tailwall_compiler::diag::Diagnostic>| {
        Failure::Runtime(anyhow::anyhow!(
            "re-reading the live ruleset: {}",
            tailwall_compiler::diag::render_all(&d, &src)
        ))
    };
    let rs = listing::lower_source(&src, format).map_err(relower)?;
    let mut counts = Counts::default();
    for r in &st.rules {
        let k = Counter {
            packets: r.packets,
            bytes: r.bytes,
        };
        if !counts.add_at(&rs, &r.rule.chain, r.rule.position, k) {
            return Err(Failure::Runtime(anyhow::anyhow!(
                "{iface}: datapath rule {} ({} #{}) is not a rule of the live ruleset",
                r.rule.index,
                r.rule.chain,
                r.rule.position
            )));
        }
    }
    // Each built-in chain's policy counter; a generation recorded before policy positions
    // (schema 3) has only the total (`tw_reasons[REASON_POLICY]`), all of it the attached hook's.
    for (chain, c) in &st.policies {
        counts.policies.insert(
            chain.clone(),
            Counter {
                packets: c.packets,
                bytes: c.bytes,
            },
        );
    }
    if st.policies.is_empty() {
        if let Some(p) = st
            .reasons
            .iter()
            .find(|r| r.slot == tailwall_abi::REASON_POLICY)
        {
            counts.policies.insert(
                "INPUT".into(),
                Counter {
                    packets: p.packets,
                    bytes: p.bytes,
                },
            );
        }
    }
    let listed = listing::list_source(&src, format, &counts).map_err(relower)?;
    if zero {
        tailwall_loader::zero(iface).map_err(iface_error)?;
    }
    let datapath: Vec<_> = st
        .reasons
        .iter()
        .filter(|r| r.slot != tailwall_abi::REASON_POLICY)
        .collect();
    if output == Output::Json {
        let mut doc = serde_json::to_value(&listed).expect("json");
        doc["iface"] = st.iface.clone().into();
        doc["generation"] = st.generation.into();
        doc["digest"] = st.digest.clone().into();
        doc["link_id"] = st.link_id.into();
        doc["mode"] = serde_json::to_value(st.mode).expect("json");
        doc["datapath"] = serde_json::to_value(&datapath).expect("json");
        doc["zeroed"] = zero.into();
        print_json(doc);
        return Ok(());
    }
    print!("{}", listed.to_text());
    eprintln!(
        "{}: generation {}, xdp link {}, {} mode",
        st.iface, st.generation, st.link_id, st.mode
    );
    for r in datapath.iter().filter(|r| r.packets > 0) {
        eprintln!("datapath: {:>10} {:>12} {}", r.packets, r.bytes, r.name);
    }
    if zero {
        eprintln!("(counters zeroed)");
    }
    Ok(())
}

pub fn gc(output: Output) -> Result<(), Failure> {
    let cleaned = iface::gc().map_err(iface_error)?;
    match output {
        Output::Json => print_json(serde_json::json!({ "cleaned": cleaned })),
        Output::Text => {
            if cleaned.is_empty() {
                println!("nothing stale");
            }
            for c in cleaned {
                println!("{c}: removed the pins of a link no longer on any device");
            }
        }
    }
    Ok(())
}

/// The rules files of a `--config` directory: (interface, path), sorted by interface. Two files for
/// one interface, or a name that cannot be an interface, are usage errors.
fn config_files(dir: &Path) -> Result<Vec<(String, std::path::PathBuf)>, Failure> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Failure::Usage(format!("--config {}: {e}", dir.display())))?;
    let mut out: Vec<(String, std::path::PathBuf)> = Vec::new();
    for e in entries {
        let e = e.map_err(|e| Failure::Usage(format!("--config {}: {e}", dir.display())))?;
        let path = e.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(stem) = [".rules", ".yaml", ".yml"]
            .iter()
            .find_map(|ext| name.strip_suffix(ext))
        else {
            continue;
        };
        if !iface::paths::valid_iface(stem) {
            return Err(Failure::Usage(format!(
                "{}: `{stem}` cannot be an interface name",
                path.display()
            )));
        }
        if let Some((_, other)) = out.iter().find(|(i, _)| i == stem) {
            return Err(Failure::Usage(format!(
                "two rules files for {stem}: {} and {}",
                other.display(),
                path.display()
            )));
        }
        out.push((stem.to_string(), path));
    }
    if out.is_empty() {
        // A boot unit or a configuration-management run that applies nothing must not report
        // success while every interface stays unfiltered.
        return Err(Failure::Usage(format!(
            "--config {}: no IFACE.rules, IFACE.yaml or IFACE.yml file to apply (nothing would be filtered)",
            dir.display()
        )));
    }
    out.sort();
    Ok(out)
}

/// `apply --config DIR`: every `IFACE.{rules,yaml,yml}` of DIR onto IFACE (see the command's help).
pub fn apply_config(
    dir: &Path,
    only: Option<&str>,
    mode: Mode,
    allow_empty: bool,
    keep: u32,
    output: Output,
) -> Result<(), Failure> {
    let mut files = config_files(dir)?;
    if let Some(o) = only {
        files.retain(|(i, _)| i == o);
        if files.is_empty() {
            return Err(Failure::Usage(format!(
                "--only {o}: no {o}.rules or {o}.yaml in {}",
                dir.display()
            )));
        }
    }
    let mut worst = 0u8;
    let mut results = Vec::new();
    for (iface_name, path) in &files {
        let r = (|| {
            let (rs, src) = super::load_rules(path)?;
            let art = super::build(&rs, &src)?;
            super::diff::prove(&rs, &art)?;
            if !allow_empty && enforces_nothing(&art) {
                return Err(refuse_empty(path, &art));
            }
            apply(
                &art,
                Apply {
                    iface: iface_name,
                    mode,
                    wait: true,
                    keep,
                    confirm: None,
                    source: super::source_of(&src),
                },
            )
        })();
        match r {
            Ok(out) => {
                if output == Output::Text {
                    println!("{out}");
                }
                results.push(serde_json::json!({
                    "iface": iface_name, "file": path.display().to_string(), "ok": true,
                    "attached": out,
                }));
            }
            Err(f) => {
                let (code, msg) = f.code_and_message();
                if let Some(m) = &msg {
                    eprintln!("tailwall: error: {iface_name} ({}): {m}", path.display());
                }
                worst = worst.max(code);
                results.push(serde_json::json!({
                    "iface": iface_name, "file": path.display().to_string(), "ok": false,
                    "error": {"exit_code": code, "message": msg},
                }));
            }
        }
    }
    if output == Output::Json {
        print_json(serde_json::json!({ "interfaces": results }));
    }
    if worst != 0 {
        return Err(Failure::Quiet(worst));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confirm_duration_is_bounded_and_never_overflows() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(
            parse_duration("24h"),
            Ok(Duration::from_secs(MAX_CONFIRM_SECS))
        );
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        // Found by hand: this panicked with "attempt to add with overflow" after the flip.
        assert!(parse_duration("18446744073709551615s").is_err());
        assert!(parse_duration("99999999999h").is_err());
        assert!(parse_duration("25h").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("10d").is_err());
    }

    #[test]
    fn config_dir_without_a_rules_file_is_refused() {
        let dir = std::env::temp_dir().join(format!("tw-conf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("eth0.v4"), "*filter\nCOMMIT\n").unwrap();
        std::fs::write(dir.join("eth0.rules.bak"), "*filter\nCOMMIT\n").unwrap();
        let r = config_files(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        match r {
            Err(Failure::Usage(m)) => assert!(m.contains("nothing would be filtered"), "{m}"),
            other => panic!("expected a usage error, got {other:?}"),
        }
    }
}
