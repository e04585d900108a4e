//! Command-line interface. Exit codes (docs/cli.md): 0 ok, 1 runtime/kernel error, 2 usage or parse
//! error, 3 semantic error (unsupported feature, verifier rejection, a ruleset that enforces nothing),
//! 4 interface busy (another apply holds the lock), 5 refused for safety (a bpffs that would not
//! outlive the command, a directory tailwall did not create, a renamed interface), 6 missing
//! privileges, 7 `status IFACE`: not filtered.
mod check;
mod diff;
mod explain;
mod lifecycle;
mod logcmd;
mod migrate;
mod pcap;
mod replay;

use clap::{Parser, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tailwall_compiler::artifact::{self, Artifact};
use tailwall_compiler::diag::{render_all, SourceFile};
use tailwall_compiler::ir::{Hook, Ruleset};

/// JSON output schema version (every `-o json` document carries it).
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Parser, Debug)]
#[command(
    name = "tailwall",
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("TAILWALL_COMMIT"), ")"),
    about = "Compile iptables rules into eBPF bit-vector classifiers and attach them"
)]
pub struct Cli {
    /// Run in the network namespace NAME (as `ip -n NAME`): /run/netns/NAME.
    #[arg(long, global = true, value_name = "NAME")]
    netns: Option<String>,
    /// Format of the rules files (default: by extension, `.yaml`/`.yml` YAML, else iptables-save;
    /// `-` reads stdin, iptables-save unless given).
    #[arg(long, global = true, value_enum)]
    format: Option<RulesFormat>,
    #[command(subcommand)]
    cmd: Cmd,
}

/// `--format`: the rule language of a rules file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RulesFormat {
    /// iptables-save / iptables-restore input.
    Iptables,
    /// The YAML rule language (docs/yaml.md).
    Yaml,
}

/// `--format`, set once by `run` before any command reads a rules file.
static FORMAT: std::sync::OnceLock<Option<RulesFormat>> = std::sync::OnceLock::new();

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Engine {
    /// Userspace model of the datapath (no root needed).
    Sim,
    /// The real eBPF programs through BPF_PROG_TEST_RUN (root).
    Kernel,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Driver (native) XDP.
    Native,
    /// Generic (skb) XDP, works on every device.
    Generic,
    /// Native, falling back to generic (with the reason printed) where the driver has no XDP.
    Auto,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Dump {
    /// The IR after lowering.
    Ir,
    /// The compiled tables and map images.
    Tables,
}

/// `monitor --verdict`.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum VerdictArg {
    Drop,
    Accept,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Check RULES without root: parse, lower, every static check (shadowed rules, datapath limits);
    /// print all diagnostics.
    Check {
        rules: PathBuf,
        #[arg(short, long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Convert an iptables-save / ip6tables-save DUMP into the YAML rule language and report, rule by
    /// rule, what is exact, approximated or unsupported.
    Migrate {
        dump: PathBuf,
        /// Write the YAML to this file (the report then goes to stdout); default: YAML to stdout,
        /// report to stderr.
        #[arg(long, value_name = "FILE.yaml")]
        to: Option<PathBuf>,
        /// Format of the report.
        #[arg(short, long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Compile RULES (YAML by .yaml/.yml extension, else iptables-save); with --attach, load it onto IFACE atomically.
    Compile {
        rules: PathBuf,
        /// An IPv6 (ip6tables-save, or YAML `family: ipv6`) ruleset enforced together with RULES (then
        /// the IPv4 one) by the same generation: each packet is judged by its family's rules.
        #[arg(long, value_name = "RULES6")]
        v6: Option<PathBuf>,
        /// Attach the compiled classifier to this interface's XDP hook (replaces a previous one atomically).
        #[arg(long, value_name = "IFACE")]
        attach: Option<String>,
        /// XDP attach mode.
        #[arg(long, value_enum, default_value_t = Mode::Native, requires = "attach")]
        mode: Mode,
        /// Print an internal form instead of the summary (cannot be combined with --attach).
        #[arg(long, value_enum, conflicts_with = "attach")]
        dump: Option<Dump>,
        /// Skip the translation validation (the proof that the tables decide every packet as the
        /// rules do), for rulesets too large to prove in the time you have; the summary says so.
        #[arg(long)]
        no_validate: bool,
        /// Wait for another tailwall holding the interface lock instead of failing with exit 4.
        #[arg(long, requires = "attach")]
        wait: bool,
        /// Attach even a ruleset that enforces nothing (no rule drops, policy ACCEPT).
        #[arg(long, requires = "attach")]
        allow_empty: bool,
        /// Previous generations kept pinned for `tailwall rollback`.
        #[arg(long, value_name = "N", default_value_t = tailwall_loader::iface::DEFAULT_KEEP, requires = "attach")]
        keep: u32,
        /// Revert automatically after DURATION (30s, 2m, 1h) unless `tailwall confirm IFACE` comes first.
        #[arg(long, value_name = "DURATION", value_parser = lifecycle::parse_duration, requires = "attach")]
        confirm: Option<std::time::Duration>,
        #[arg(short, long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Remove tailwall's classifier from IFACE (or from every interface of the namespace with --all).
    Detach {
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        iface: Option<String>,
        /// Every interface tailwall filters in this network namespace.
        #[arg(long)]
        all: bool,
        #[arg(short, long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Per-rule packet and byte counters of the classifier on IFACE (like `iptables -L -v -x`).
    Stats {
        iface: String,
        /// Zero the counters after printing them (like `iptables -L -Z`).
        #[arg(long)]
        zero: bool,
        #[arg(short, long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Print the packets the LOG/NFLOG rules of the ruleset live on IFACE reported, as the kernel's
    /// LOG target prints them (`PREFIX IN= OUT= MAC= SRC= DST= LEN= … PROTO= SPT= DPT= …`).
    Log {
        iface: String,
        /// Keep reading: print records as they come until interrupted.
        #[arg(short, long)]
        follow: bool,
        /// Also send each line to syslog(3) (journald) at its rule's --log-level.
        #[arg(long)]
        syslog: bool,
        #[arg(short, long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Stream the decisions of the classifier on IFACE (time, hook, chain, rule, verdict, reason,
    /// packet) while it runs; the datapath's monitor is switched off again when it ends.
    Monitor {
        iface: String,
        /// Only this verdict.
        #[arg(long, value_enum)]
        verdict: Option<VerdictArg>,
        /// Only decisions (and log records) of this rule: CHAIN:N, N its 1-based position.
        #[arg(long, value_name = "CHAIN:N", value_parser = logcmd::parse_rule)]
        rule: Option<(String, u32)>,
        /// Stream one decision in N, chosen at random in the datapath (1/N).
        #[arg(long, value_name = "1/N", value_parser = logcmd::parse_sample, default_value = "1/1")]
        sample: u32,
        /// Also write the matched frames (their first 160 bytes) to this pcap file.
        #[arg(long, value_name = "FILE")]
        pcap_out: Option<PathBuf>,
        /// Stop after this many events.
        #[arg(long, value_name = "N")]
        count: Option<u64>,
        #[arg(short, long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// What tailwall attached where, as the kernel confirms it (every interface without IFACE).
    Status {
        iface: Option<String>,
        #[arg(short, long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Print the ruleset live on IFACE, as it was applied (`--format yaml`: an iptables-save source
    /// converted as `migrate` does).
    Show {
        iface: String,
        #[arg(short, long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Return IFACE atomically to the previous kept generation.
    Rollback {
        iface: String,
        #[arg(short, long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Keep the ruleset a `compile --attach IFACE --confirm` applied (cancels the revert).
    Confirm {
        iface: String,
        #[arg(short, long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Converge every interface to its rules file in DIR (`IFACE.rules`: iptables-save, `IFACE.yaml`):
    /// idempotent (an interface already running its file is left alone), for boot (systemd) and
    /// configuration management. Waits for interface locks. All files are tried; exit with the worst
    /// failure's code.
    Apply {
        #[arg(long, value_name = "DIR")]
        config: PathBuf,
        /// Only this interface's file.
        #[arg(long, value_name = "IFACE")]
        only: Option<String>,
        /// XDP attach mode for first attaches.
        #[arg(long, value_enum, default_value_t = Mode::Auto)]
        mode: Mode,
        /// Attach even rulesets that enforce nothing.
        #[arg(long)]
        allow_empty: bool,
        /// Previous generations kept pinned for `tailwall rollback`.
        #[arg(long, value_name = "N", default_value_t = tailwall_loader::iface::DEFAULT_KEEP)]
        keep: u32,
        #[arg(short, long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Remove pins and records of links no longer on any device (deleted interfaces or network
    /// namespaces), in every network namespace.
    Gc {
        #[arg(short, long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Print the shell completion script for SHELL (e.g. `tailwall completions bash >
    /// /etc/bash_completion.d/tailwall`).
    Completions { shell: clap_complete::Shell },
    /// Print the manual page (roff) on stdout (e.g. `tailwall manpage > tailwall.1`).
    Manpage,
    /// Internal: the timer behind --confirm.
    #[command(name = "__confirm-timer", hide = true)]
    ConfirmTimer {
        iface: String,
        generation: u64,
        deadline: u64,
    },
    /// Decide whether OLD and NEW give every packet the same verdict (complete, no root); print one
    /// counterexample packet per difference. Exit 0 equivalent, 1 different, 2/3 input errors.
    Diff {
        old: PathBuf,
        new: PathBuf,
        #[arg(long, value_enum, default_value_t = diff::HookArg::All)]
        hook: diff::HookArg,
        #[arg(short, long, value_enum, default_value_t = Output::Text)]
        output: Output,
        /// Write one Ethernet frame per counterexample to this pcap file (for `replay`).
        #[arg(long, value_name = "FILE")]
        pcap_out: Option<PathBuf>,
        /// Counterexamples per hook, at most.
        #[arg(long, value_name = "N", default_value_t = 10)]
        limit: usize,
    },
    /// The path of one packet through RULES' chains, rule by rule, and the compiled tables' answer.
    Explain {
        rules: PathBuf,
        /// The packet, as `diff` prints it: `tcp 10.0.0.1:1234 -> 10.0.0.2:22 [in eth0]`.
        #[arg(
            long,
            value_name = "SPEC",
            required_unless_present = "pcap",
            conflicts_with = "pcap"
        )]
        packet: Option<String>,
        /// Take the packet from a capture file (Ethernet).
        #[arg(long, value_name = "FILE")]
        pcap: Option<PathBuf>,
        /// Frame of --pcap to explain (0-based).
        #[arg(long, value_name = "N", default_value_t = 0, requires = "pcap")]
        index: usize,
        #[arg(long, value_enum, default_value_t = diff::HookArg::Input)]
        hook: diff::HookArg,
        #[arg(short, long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Run every frame of a pcap through the compiled classifier of one hook (`--hook`, INPUT by default).
    Replay {
        rules: PathBuf,
        /// An IPv6 ruleset judging the IPv6 frames, RULES then judging the IPv4 ones (as `compile --v6`).
        #[arg(long, value_name = "RULES6")]
        v6: Option<PathBuf>,
        /// Capture file (pcap or pcapng) of Ethernet frames.
        #[arg(long)]
        pcap: PathBuf,
        #[arg(long, value_enum, default_value_t = Engine::Sim)]
        engine: Engine,
        /// Run each frame N times in the kernel and report the per-packet time (kernel engine).
        #[arg(long, value_name = "N")]
        repeat: Option<u32>,
        /// The netfilter hook every frame is judged at: `input` (its destination is local), `forward`
        /// (neither address is local), `output` (its source is local).
        #[arg(long, value_enum, default_value_t = HookArg::Input)]
        hook: HookArg,
        #[arg(short, long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
}

/// A built-in chain's hook on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum HookArg {
    Input,
    Forward,
    Output,
}

impl From<HookArg> for Hook {
    fn from(h: HookArg) -> Hook {
        match h {
            HookArg::Input => Hook::Input,
            HookArg::Forward => Hook::Forward,
            HookArg::Output => Hook::Output,
        }
    }
}

/// Why a command failed, mapped to the exit code.
#[derive(Debug)]
pub enum Failure {
    /// Diagnostics were already printed; exit 2 (invalid input: `frontend::is_invalid_input`) or 3
    /// (valid, but not supported or over a limit).
    Diagnostics {
        invalid: bool,
    },
    Usage(String),
    Semantic(String),
    Runtime(anyhow::Error),
    Busy(String),
    /// Refused for safety (exit 5).
    Refused(String),
    /// Missing privileges (exit 6).
    Privilege(String),
    /// Exit with this code; what to say was already printed.
    Quiet(u8),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Failure {
        Failure::Runtime(e)
    }
}

/// `e` and its causes, `outer: inner: …`, leaving out a cause whose text the message already holds (errors whose own text includes their source's would otherwise print it twice:
/// "…: Permission denied (os error 13): Permission denied (os error 13)").
fn chain(e: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in e.chain() {
        let c = cause.to_string();
        if msg.is_empty() {
            msg = c;
        } else if !msg.contains(&c) {
            msg = format!("{msg}: {c}");
        }
    }
    msg
}

impl Failure {
    /// The exit code (docs/cli.md) and the message to print (none when already printed).
    pub fn code_and_message(&self) -> (u8, Option<String>) {
        match self {
            Failure::Diagnostics { invalid } => (if *invalid { 2 } else { 3 }, None),
            Failure::Usage(m) => (2, Some(m.clone())),
            Failure::Semantic(m) => (3, Some(m.clone())),
            Failure::Runtime(e) => (1, Some(chain(e))),
            Failure::Busy(m) => (4, Some(m.clone())),
            Failure::Refused(m) => (5, Some(m.clone())),
            Failure::Privilege(m) => (6, Some(m.clone())),
            Failure::Quiet(code) => (*code, None),
        }
    }

    /// Print the message (`tailwall: error: …` on stderr; with `json`, also a JSON document
    /// `{"schema_version", "error": {"exit_code", "message"}}` on stdout, except for diagnostics, which
    /// the command printed) and return the exit code.
    pub fn report(&self, json: bool) -> u8 {
        let (code, msg) = self.code_and_message();
        if let Some(m) = &msg {
            eprintln!("tailwall: error: {m}");
        }
        // Diagnostics were printed by the command itself (as JSON by `check -o json`).
        if json && !matches!(self, Failure::Quiet(_) | Failure::Diagnostics { .. }) {
            let doc = serde_json::json!({
                "schema_version": SCHEMA_VERSION,
                "error": {
                    "exit_code": code,
                    "message": msg.unwrap_or_else(|| "see the diagnostics on stderr".into()),
                },
            });
            println!("{doc}");
        }
        code
    }
}

/// Does the command print JSON (`-o json`)? Its errors are then JSON too.
fn wants_json(cmd: &Cmd) -> bool {
    let output = match cmd {
        Cmd::Check { output, .. }
        | Cmd::Migrate { output, .. }
        | Cmd::Compile { output, .. }
        | Cmd::Detach { output, .. }
        | Cmd::Stats { output, .. }
        | Cmd::Log { output, .. }
        | Cmd::Monitor { output, .. }
        | Cmd::Status { output, .. }
        | Cmd::Show { output, .. }
        | Cmd::Rollback { output, .. }
        | Cmd::Confirm { output, .. }
        | Cmd::Apply { output, .. }
        | Cmd::Gc { output }
        | Cmd::Replay { output, .. }
        | Cmd::Diff { output, .. }
        | Cmd::Explain { output, .. } => *output,
        _ => Output::Text,
    };
    output == Output::Json
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = wants_json(&cli.cmd);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => ExitCode::from(f.report(json)),
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    let _ = FORMAT.set(cli.format);
    if let Some(ns) = &cli.netns {
        tailwall_loader::enter_netns(ns).map_err(lifecycle::iface_error)?;
    }
    match cli.cmd {
        Cmd::Check { rules, output } => check::run(&rules, output),
        Cmd::Migrate { dump, to, output } => migrate::run(&dump, to.as_deref(), output),
        Cmd::Compile {
            rules,
            v6,
            attach,
            mode,
            dump,
            no_validate,
            wait,
            allow_empty,
            keep,
            confirm,
            output,
        } => {
            let attach = attach.as_deref().map(|iface| lifecycle::Apply {
                iface,
                mode,
                wait,
                keep,
                confirm,
                source: Default::default(),
            });
            let validate = !no_validate;
            compile(
                &rules,
                v6.as_deref(),
                attach,
                dump,
                validate,
                allow_empty,
                output,
            )
        }
        Cmd::Detach { iface, all, output } => lifecycle::detach(iface.as_deref(), all, output),
        Cmd::Stats {
            iface,
            zero,
            output,
        } => lifecycle::stats(&iface, zero, output),
        Cmd::Log {
            iface,
            follow,
            syslog,
            output,
        } => logcmd::log(&iface, follow, syslog, output),
        Cmd::Monitor {
            iface,
            verdict,
            rule,
            sample,
            pcap_out,
            count,
            output,
        } => logcmd::monitor(logcmd::MonitorArgs {
            iface: &iface,
            verdicts: match verdict {
                Some(VerdictArg::Drop) => vec![tailwall_abi::ACTION_DROP],
                Some(VerdictArg::Accept) => vec![tailwall_abi::ACTION_ACCEPT],
                None => Vec::new(),
            },
            rule,
            sample,
            pcap_out: pcap_out.as_deref(),
            count,
            output,
        }),
        Cmd::Status { iface, output } => lifecycle::status(iface.as_deref(), output),
        Cmd::Show { iface, output } => lifecycle::show(&iface, output),
        Cmd::Rollback { iface, output } => lifecycle::rollback(&iface, output),
        Cmd::Confirm { iface, output } => lifecycle::confirm(&iface, output),
        Cmd::Apply {
            config,
            only,
            mode,
            allow_empty,
            keep,
            output,
        } => lifecycle::apply_config(&config, only.as_deref(), mode, allow_empty, keep, output),
        Cmd::Gc { output } => lifecycle::gc(output),
        Cmd::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "tailwall", &mut std::io::stdout());
            Ok(())
        }
        Cmd::Manpage => {
            let cmd = <Cli as clap::CommandFactory>::command();
            clap_mangen::Man::new(cmd)
                .render(&mut std::io::stdout())
                .map_err(|e| Failure::Runtime(anyhow::anyhow!("writing the manual page: {e}")))
        }
        Cmd::ConfirmTimer {
            iface,
            generation,
            deadline,
        } => lifecycle::confirm_timer(&iface, generation, deadline),
        Cmd::Diff {
            old,
            new,
            hook,
            output,
            pcap_out,
            limit,
        } => diff::run(&old, &new, hook, output, pcap_out.as_deref(), limit),
        Cmd::Explain {
            rules,
            packet,
            pcap,
            index,
            hook,
            output,
        } => {
            let source = match (&packet, &pcap) {
                (Some(p), _) => explain::Source::Spec(p),
                (None, Some(path)) => explain::Source::Pcap { path, index },
                (None, None) => {
                    return Err(Failure::Usage("--packet or --pcap is required".into()))
                }
            };
            explain::run(&rules, source, hook, output)
        }
        Cmd::Replay {
            rules,
            v6,
            pcap,
            engine,
            repeat,
            hook,
            output,
        } => replay::run(
            &rules,
            v6.as_deref(),
            &pcap,
            engine,
            repeat,
            hook.into(),
            output,
        ),
    }
}

/// The rule language of a loaded source: `--format`, else by its name.
pub fn format_of(src: &SourceFile) -> tailwall_compiler::frontend::Format {
    match FORMAT.get().copied().flatten() {
        Some(RulesFormat::Yaml) => tailwall_compiler::frontend::Format::Yaml,
        Some(RulesFormat::Iptables) => tailwall_compiler::frontend::Format::IptablesSave,
        None => tailwall_compiler::frontend::Format::of(&src.name),
    }
}

/// What a generation records of its rules file (for `status` and `show`).
pub fn source_of(src: &SourceFile) -> tailwall_loader::iface::Source {
    tailwall_loader::iface::Source {
        path: Some(src.name.clone()),
        text: Some(src.text.clone()),
        format: Some(
            match format_of(src) {
                tailwall_compiler::frontend::Format::Yaml => "yaml",
                tailwall_compiler::frontend::Format::IptablesSave => "iptables",
            }
            .to_string(),
        ),
    }
}

/// Read, parse and lower a rules file; print warnings and notes; on errors print every diagnostic.
/// Returns the source too, to render later diagnostics (the datapath's) against it.
pub fn load_rules(path: &Path) -> Result<(Ruleset, SourceFile), Failure> {
    let src = if path.as_os_str() == "-" {
        let mut b = Vec::new();
        let limit = tailwall_compiler::frontend::MAX_INPUT_BYTES;
        std::io::Read::read_to_end(
            &mut std::io::Read::take(std::io::stdin(), limit + 1),
            &mut b,
        )
        .map_err(|e| Failure::Usage(format!("cannot read stdin: {e}")))?;
        if b.len() as u64 > limit {
            return Err(Failure::Usage(format!(
                "<stdin>: larger than {} MiB, the most tailwall reads (frontend::MAX_INPUT_BYTES)",
                limit >> 20
            )));
        }
        SourceFile::from_bytes("<stdin>", &b)
    } else {
        check::read_source(path)?
    };
    let format = format_of(&src);
    match tailwall_compiler::frontend::load_as(&src, format) {
        Ok(l) => {
            if !l.diagnostics.is_empty() {
                eprint!("{}", render_all(&l.diagnostics, &src));
            }
            Ok((l.ruleset, src))
        }
        Err(diags) => {
            eprint!("{}", render_all(&diags, &src));
            let errors = diags.iter().filter(|d| d.is_error()).count();
            eprintln!(
                "tailwall: {} error{} in {}",
                errors,
                if errors == 1 { "" } else { "s" },
                src.name
            );
            let invalid = diags
                .iter()
                .any(tailwall_compiler::frontend::is_invalid_input);
            Err(Failure::Diagnostics { invalid })
        }
    }
}

/// Build the artifact (every hook's region). Prints one note per user chain no hook reaches (the
/// chains the datapath does not enforce); a rule the datapath cannot compile is rendered as a located
/// diagnostic against `src` (exit 3).
pub fn build(rs: &Ruleset, src: &SourceFile) -> Result<Artifact, Failure> {
    build_at(rs, src, Hook::Input)
}

/// As [`build`], with [`Artifact::hook`] = `hook` (what `replay` and `explain` describe).
pub fn build_at(rs: &Ruleset, src: &SourceFile, hook: Hook) -> Result<Artifact, Failure> {
    match artifact::build(rs, hook) {
        Ok(a) => {
            let notes: Vec<_> = artifact::ignored(rs)
                .iter()
                .map(artifact::Ignored::diagnostic)
                .chain(a.walk_warning())
                .collect();
            if !notes.is_empty() {
                eprint!("{}", render_all(&notes, src));
            }
            Ok(a)
        }
        Err(
            e @ (artifact::BuildError::Several(_)
            | artifact::BuildError::Unsupported { .. }
            | artifact::BuildError::Flatten(_)),
        ) => {
            eprint!("{}", render_all(&e.diagnostics(), src));
            Err(Failure::Diagnostics { invalid: false })
        }
        Err(e) => Err(Failure::Semantic(e.to_string())),
    }
}

/// The rulesets of one generation, each with its source: RULES alone, or RULES (IPv4) and RULES6
/// (`--v6`, IPv6). A `--v6` file that is not an IPv6 ruleset, or an IPv6 RULES next to `--v6`, is a
/// usage error (exit 2): a generation holds one ruleset per family (`E0503`). A lone RULES of either
/// family is one set; the other family then passes the datapath unfiltered, as its empty table does
/// (`docs/decisions/0013-ipv6-datapath.md`).
pub fn load_sets(rules: &Path, v6: Option<&Path>) -> Result<Vec<(Ruleset, SourceFile)>, Failure> {
    use tailwall_compiler::ir::Family;
    let first = load_rules(rules)?;
    let Some(v6) = v6 else {
        return Ok(vec![first]);
    };
    if first.0.family != Family::V4 {
        return Err(Failure::Usage(format!(
            "{}: an IPv6 (ip6tables) ruleset; with --v6, RULES is the IPv4 (iptables) one (E0503)",
            rules.display()
        )));
    }
    let second = load_rules(v6)?;
    if second.0.family != Family::V6 {
        return Err(Failure::Usage(format!(
            "--v6 {}: an IPv4 (iptables) ruleset; --v6 takes an ip6tables-save dump or YAML with `family: ipv6` (E0503)",
            v6.display()
        )));
    }
    Ok(vec![first, second])
}

/// [`build_at`] for the rulesets of one generation ([`load_sets`]): each ruleset's refusals and notes
/// rendered against its own file, then one artifact holding every family's regions
/// (`artifact::build_sets`).
pub fn build_sets_at(sets: &[(Ruleset, SourceFile)], hook: Hook) -> Result<Artifact, Failure> {
    let mut one = None;
    for (rs, src) in sets {
        one = Some(build_at(rs, src, hook)?);
    }
    match (sets.len(), one) {
        (1, Some(a)) => Ok(a),
        _ => {
            let rulesets: Vec<&Ruleset> = sets.iter().map(|(rs, _)| rs).collect();
            artifact::build_sets(&rulesets, hook).map_err(|e| Failure::Semantic(e.to_string()))
        }
    }
}

/// Bytes a map occupies at most (keys + values of every entry).
fn map_bytes(m: &artifact::MapImage) -> u64 {
    m.max_entries as u64 * (m.key_size as u64 + m.value_size as u64)
}

fn compile(
    rules: &Path,
    v6: Option<&Path>,
    attach: Option<lifecycle::Apply<'_>>,
    dump: Option<Dump>,
    validate: bool,
    allow_empty: bool,
    output: Output,
) -> Result<(), Failure> {
    let sets = load_sets(rules, v6)?;
    let (rs, src) = &sets[0];
    match dump {
        Some(Dump::Ir) => {
            for (rs, _) in &sets {
                print!("{}", rs.dump());
            }
            return Ok(());
        }
        Some(Dump::Tables) => {
            print!("{}", build_sets_at(&sets, Hook::Input)?.dump());
            return Ok(());
        }
        None => {}
    }
    let art = build_sets_at(&sets, Hook::Input)?;
    if let [(only, only_src)] = &sets[..] {
        if only.family == tailwall_compiler::ir::Family::V6 {
            eprint!("{}", render_all(&[artifact::lone_ipv6_note()], only_src));
        }
    }
    // `None`: skipped (`--no-validate`).
    let mut proof = None;
    if validate {
        let mut p = diff::prove(rs, &art)?;
        for (other, _) in &sets[1..] {
            let q = diff::prove(other, &art)?;
            p.nodes += q.nodes;
            p.ms += q.ms;
        }
        proof = Some(p);
    }
    if attach.is_some() && sets.len() > 1 {
        return Err(Failure::Semantic(
            "--attach with --v6 is not supported yet: `stats`, `show` and the generation record hold one rules file; attach the IPv4 or the IPv6 ruleset alone (the other family then passes unfiltered), or compile both without --attach".into(),
        ));
    }
    let applied = match attach {
        Some(mut a) => {
            if !allow_empty && lifecycle::enforces_nothing(&art) {
                return Err(lifecycle::refuse_empty(rules, &art));
            }
            a.source = source_of(src);
            Some(lifecycle::apply(&art, a)?)
        }
        None => None,
    };
    let total: u64 = art.maps.iter().map(map_bytes).sum();
    // Per ruleset, its INPUT region: its positions, and the rules they count for (INPUT's and the
    // user chains' it reaches).
    let summary: Vec<(String, &'static str, &'static str, usize, u32)> = sets
        .iter()
        .map(|(rs, src)| {
            let policy = rs
                .hook_chain(Hook::Input)
                .and_then(|c| c.policy)
                .map(|p| p.target())
                .unwrap_or("ACCEPT");
            let (positions, nrules) = art.region(Hook::Input, rs.family).map_or((0, 0), |r| {
                let mut origins: Vec<u32> = art.positions[r.first as usize..r.end as usize]
                    .iter()
                    .filter_map(|p| match p.origin {
                        artifact::PositionOrigin::Rule(i) => Some(i),
                        _ => None,
                    })
                    .collect();
                origins.sort_unstable();
                origins.dedup();
                (r.end - r.first, origins.len())
            });
            let file = if std::ptr::eq(rs, &sets[0].0) {
                rules.display().to_string()
            } else {
                src.name.clone()
            };
            (file, rs.family.as_str(), policy, nrules, positions)
        })
        .collect();
    let (_, _, policy, nrules, positions) = summary[0].clone();
    match output {
        Output::Json => {
            let doc = serde_json::json!({
                "schema_version": SCHEMA_VERSION,
                "rules_file": rules.display().to_string(),
                "hook": "INPUT",
                "policy": policy,
                "rules": nrules,
                "positions": positions,
                "chunks": art.globals.nchunks,
                "stages": art.stages.iter().map(|f| f.name()).collect::<Vec<_>>(),
                "maps": art.maps.iter().map(|m| serde_json::json!({
                    "name": m.name, "kind": m.kind, "max_entries": m.max_entries,
                    "filled": m.entries.len(), "bytes": map_bytes(m),
                })).collect::<Vec<_>>(),
                "map_bytes": total,
                "digest": art.digest,
                "validated": proof,
                "proof": if proof.is_some() { "proved" } else { "skipped" },
                "attached": applied,
                "families": summary.iter().map(|(file, family, policy, rules, positions)| serde_json::json!({
                    "family": family, "rules_file": file, "policy": policy, "rules": rules,
                    "positions": positions,
                })).collect::<Vec<_>>(),
            });
            println!("{}", serde_json::to_string_pretty(&doc).expect("json"));
        }
        Output::Text => {
            for (file, family, policy, nrules, positions) in &summary {
                println!(
                    "{}: {} rules in filter/INPUT and the chains it reaches ({} positions), policy {}{}",
                    file,
                    nrules,
                    positions,
                    policy,
                    if *family == "ipv4" { "" } else { " (IPv6)" }
                );
            }
            let stages: Vec<_> = art.stages.iter().map(|f| f.name()).collect();
            println!(
                "  stages:  {} ({} of {} fields; the final stage walks the positions)",
                if stages.is_empty() {
                    "none".to_string()
                } else {
                    stages.join(" -> ")
                },
                stages.len(),
                tailwall_abi::FIELDS.len()
            );
            println!(
                "  vectors: {} chunk(s) of {} positions",
                art.globals.nchunks,
                tailwall_abi::CHUNK_BITS
            );
            for m in art.maps.iter().filter(|m| !m.entries.is_empty()) {
                println!(
                    "  map {:<14} {:>7} entries {:>10} bytes",
                    m.name,
                    m.entries.len(),
                    map_bytes(m)
                );
            }
            println!("  memory:  {} bytes in maps", total);
            println!("  digest:  {}", art.digest);
            match proof {
                Some(p) => println!(
                    "  proof:   the tables decide every packet as the rules do ({} boxes searched)",
                    p.nodes
                ),
                None => println!(
                    "  proof:   skipped (--no-validate): the tables were not proven to decide as the rules do"
                ),
            }
            if let Some(a) = applied {
                println!("{a}");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_cause_already_in_the_message_is_printed_once() {
        // Found by a tester as nobody: "…: Permission denied (os error 13): Permission denied (os error 13)".
        let e = tailwall_loader::IfaceError::File {
            path: "/run/tailwall/1".into(),
            source: std::io::Error::from_raw_os_error(libc::EACCES),
        };
        let m = super::chain(&anyhow::Error::from(e));
        assert_eq!(m.matches("Permission denied").count(), 1, "{m}");
        let e = anyhow::anyhow!("inner cause").context("outer");
        assert_eq!(super::chain(&e), "outer: inner cause");
    }
}
