//! Real iptables in a throwaway namespace, used as a classifier: load a ruleset, deliver one frame to
//! the INPUT chain, and read back which rule (or the policy) counted it.
//!
//! How a frame reaches INPUT whatever its addresses (checked by `oracle_delivers_arbitrary_addresses`):
//! the victim namespace routes every IPv4 destination as local (`local 0.0.0.0/0 dev lo table local`),
//! with `rp_filter=0` and `accept_local=1` (with that route every source is also "local", which the
//! kernel would otherwise call a martian source). Frames are sent from the peer end of a veth pair with
//! the victim's MAC as destination.
//!
//! How the deciding rule is observed: after the frame, a *sentinel* frame (from [`SENTINEL_SRC`]) is
//! sent on the same CPU; a `raw PREROUTING` rule counts and drops it, so it never reaches INPUT. Frames
//! from one CPU are processed in order, so once the sentinel counter has moved, the test frame has been
//! through INPUT: exactly one INPUT counter (a rule or the policy) moved by one packet, or none did —
//! iptables "hotdropped" it (a truncated TCP/UDP header), or the frame never reached INPUT (not IPv4,
//! dropped by `ip_rcv`, held for reassembly).
//!
//! The victim sends nothing (`raw OUTPUT -j DROP`): its replies (ICMP unreachable, TCP RST) would be
//! routed to itself by the catch-all local route and counted at INPUT.
//!
//! Thrown away: the packet's fate after INPUT (delivery to a socket), and byte counts (only packet
//! counts are compared). The verdict reported is iptables' own: the target printed by `iptables-save`
//! for the counted rule, or the chain policy.
use crate::netns::{FrameSender, VethPair};
use anyhow::{bail, Context, Result};
use std::fmt;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};
use tailwall_compiler::artifact::Artifact;
use tailwall_compiler::interp::{Decided, Outcome};
use tailwall_compiler::ir::Verdict;
use tailwall_compiler::packet::{decode, Decoded};
use tailwall_loader::TestRun;

/// Source address of the sentinel frame; `raw PREROUTING` drops it before routing.
pub const SENTINEL_SRC: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 99);

/// Which iptables implementation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// `iptables-legacy` (x_tables, `ip_tables` module).
    Legacy,
    /// `iptables-nft` (nf_tables with the iptables compatibility layer).
    Nft,
}

impl Flavor {
    pub fn cmd(self) -> &'static str {
        match self {
            Flavor::Legacy => "iptables-legacy",
            Flavor::Nft => "iptables-nft",
        }
    }
    pub fn restore(self) -> &'static str {
        match self {
            Flavor::Legacy => "iptables-legacy-restore",
            Flavor::Nft => "iptables-nft-restore",
        }
    }
    pub fn save(self) -> &'static str {
        match self {
            Flavor::Legacy => "iptables-legacy-save",
            Flavor::Nft => "iptables-nft-save",
        }
    }
}

/// What iptables did with one frame at INPUT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observed {
    /// The rule at this 1-based position of INPUT counted it; `target` as iptables-save prints it.
    Rule { position: u32, target: String },
    /// No rule matched: the chain policy counted it.
    Policy { policy: String },
    /// No INPUT counter moved (hotdrop, or the frame did not reach INPUT).
    NotCounted,
}

impl fmt::Display for Observed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Observed::Rule { position, target } => write!(f, "rule {position} ({target})"),
            Observed::Policy { policy } => write!(f, "policy ({policy})"),
            Observed::NotCounted => write!(f, "not counted"),
        }
    }
}

/// INPUT counters and the sentinel counter from one `iptables-save -c` read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub policy: String,
    pub policy_packets: u64,
    /// (packets, target) per INPUT rule, in order.
    pub rules: Vec<(u64, String)>,
    pub sentinel: u64,
}

impl Counters {
    /// Parse `iptables-save -c` output (all tables).
    pub fn parse(save: &str) -> Result<Counters> {
        let mut c = Counters::default();
        let mut table = "";
        let mut saw_input = false;
        for line in save.lines() {
            if let Some(t) = line.strip_prefix('*') {
                table = match t {
                    "filter" => "filter",
                    "raw" => "raw",
                    _ => "",
                };
            } else if table == "filter" && line.starts_with(":INPUT ") {
                let mut it = line.split_whitespace().skip(1);
                c.policy = it
                    .next()
                    .context("INPUT chain line without policy")?
                    .to_string();
                c.policy_packets =
                    parse_pcnt(it.next().context("INPUT chain line without counters")?)?;
                saw_input = true;
            } else if line.starts_with('[') {
                let (cnt, rest) = line.split_once(' ').context("counter without rule")?;
                if table == "filter" && rest.starts_with("-A INPUT ") {
                    let target = rest
                        .rsplit_once(" -j ")
                        .map(|(_, t)| t.split_whitespace().next().unwrap_or(""));
                    c.rules
                        .push((parse_pcnt(cnt)?, target.unwrap_or("").to_string()));
                } else if table == "raw" && rest.contains(&format!("-s {SENTINEL_SRC}/32")) {
                    c.sentinel = parse_pcnt(cnt)?;
                }
            }
        }
        if !saw_input {
            bail!("no filter INPUT chain in iptables-save output");
        }
        Ok(c)
    }

    /// Which INPUT counter moved from `before` to `self` (at most one packet may have moved).
    pub fn moved_since(&self, before: &Counters) -> Result<Observed> {
        if self.rules.len() != before.rules.len() {
            bail!("INPUT changed size between reads");
        }
        let mut moved = Vec::new();
        for (i, (a, b)) in before.rules.iter().zip(&self.rules).enumerate() {
            if b.0 != a.0 {
                moved.push((
                    b.0 - a.0,
                    Observed::Rule {
                        position: i as u32 + 1,
                        target: b.1.clone(),
                    },
                ));
            }
        }
        if self.policy_packets != before.policy_packets {
            moved.push((
                self.policy_packets - before.policy_packets,
                Observed::Policy {
                    policy: self.policy.clone(),
                },
            ));
        }
        match moved.len() {
            0 => Ok(Observed::NotCounted),
            1 if moved[0].0 == 1 => Ok(moved.pop().map(|m| m.1).unwrap_or(Observed::NotCounted)),
            _ => bail!("more than one packet counted at INPUT: {moved:?} (stray traffic in the namespace?)"),
        }
    }
}

fn parse_pcnt(s: &str) -> Result<u64> {
    let inner = s
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .with_context(|| format!("bad counter {s}"))?;
    let (p, _) = inner
        .split_once(':')
        .with_context(|| format!("bad counter {s}"))?;
    p.parse().with_context(|| format!("bad packet count {s}"))
}

/// A veth pair whose host namespace runs real iptables on INPUT.
pub struct IptablesOracle {
    pub flavor: Flavor,
    tx: FrameSender,
    sentinel: Vec<u8>,
    /// Frames still in flight are bounded by this wait (per frame).
    pub timeout: Duration,
    pub pair: VethPair,
}

impl IptablesOracle {
    /// Fresh namespaces, routing set up so every IPv4 destination is delivered to INPUT, and the raw
    /// sentinel rule installed.
    pub fn new(flavor: Flavor) -> Result<IptablesOracle> {
        let pair = VethPair::new()?;
        let ns = &pair.host;
        for scope in ["all", "default", &pair.host_if] {
            ns.sysctl(&format!("net.ipv4.conf.{scope}.rp_filter"), "0")?;
            ns.sysctl(&format!("net.ipv4.conf.{scope}.accept_local"), "1")?;
        }
        ns.exec(
            "ip",
            [
                "route",
                "add",
                "local",
                "0.0.0.0/0",
                "dev",
                "lo",
                "table",
                "local",
            ],
        )?;
        ns.exec(
            flavor.cmd(),
            [
                "-w",
                "-t",
                "raw",
                "-A",
                "PREROUTING",
                "-s",
                &format!("{SENTINEL_SRC}/32"),
                "-j",
                "DROP",
            ],
        )?;
        // Replies the victim would generate (ICMP unreachable, TCP RST) are routed back to itself by the
        // catch-all local route and would reach INPUT: the victim sends nothing.
        ns.exec(
            flavor.cmd(),
            ["-w", "-t", "raw", "-A", "OUTPUT", "-j", "DROP"],
        )?;
        pair.wait_carrier(Duration::from_secs(5))?;
        let tx = pair.sender()?;
        let sentinel = tailwall_compiler::packet::build_frame(
            pair.host_mac,
            pair.peer_mac,
            SENTINEL_SRC,
            pair.host_ip,
            17,
            0,
            &tailwall_compiler::packet::l4_header(17, 9, 9, b"sentinel"),
        );
        Ok(IptablesOracle {
            flavor,
            tx,
            sentinel,
            timeout: Duration::from_secs(2),
            pair,
        })
    }

    /// MAC address frames must carry as destination (the victim veth's).
    pub fn victim_mac(&self) -> [u8; 6] {
        self.pair.host_mac
    }

    /// Replace the filter table with `restore_text` (iptables-save format).
    pub fn load(&self, restore_text: &str) -> Result<()> {
        self.pair
            .host
            .exec_stdin(self.flavor.restore(), ["-w"], restore_text)
            .with_context(|| format!("{} rejected:\n{restore_text}", self.flavor.restore()))
            .map(drop)
    }

    /// Read every counter (one `iptables-save -c`).
    pub fn counters(&self) -> Result<Counters> {
        Counters::parse(&self.pair.host.exec(self.flavor.save(), ["-c"])?)
    }

    /// Deliver `frame` to the victim and report which INPUT counter moved. `before` must be the current
    /// counters; the returned counters are the ones after this frame (pass them to the next call).
    pub fn classify(&self, frame: &[u8], before: &Counters) -> Result<(Observed, Counters)> {
        with_pinned_cpu(|| -> Result<()> {
            self.tx.send(frame)?;
            self.tx.send(&self.sentinel)
        })??;
        let start = Instant::now();
        loop {
            let now = self.counters()?;
            if now.sentinel > before.sentinel {
                if now.sentinel != before.sentinel + 1 {
                    bail!("sentinel counted {} times", now.sentinel - before.sentinel);
                }
                return Ok((now.moved_since(before)?, now));
            }
            if start.elapsed() > self.timeout {
                bail!("sentinel frame not counted within {:?}", self.timeout);
            }
            std::thread::yield_now();
        }
    }
}

/// What iptables did with one frame, read from the counters of every `filter` chain (for rulesets
/// with user chains): the terminal rule (ACCEPT/DROP) that counted it, as (chain, 1-based position,
/// target); else the INPUT policy; else nothing (hotdrop). Jump, goto and RETURN rules also count the
/// packet on their way, so they are skipped when looking for the decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ObservedChains {
    Rule {
        chain: String,
        position: u32,
        target: String,
    },
    Policy {
        policy: String,
    },
    NotCounted,
}

/// `(chain, 1-based position, packets, target)` of one filter rule.
type RuleCount = (String, u32, u64, String);

/// Every filter rule's [`RuleCount`] and `(INPUT policy, packets)`, from one `iptables-save -c`.
fn all_filter_counters(save: &str) -> Result<(Vec<RuleCount>, (String, u64))> {
    let mut table = "";
    let mut rules: Vec<RuleCount> = Vec::new();
    let mut policy = None;
    for line in save.lines() {
        if let Some(t) = line.strip_prefix('*') {
            table = if t == "filter" { "filter" } else { "" };
        } else if table == "filter" && line.starts_with(":INPUT ") {
            let mut it = line.split_whitespace().skip(1);
            let p = it.next().context("INPUT without policy")?.to_string();
            policy = Some((p, parse_pcnt(it.next().context("INPUT without counters")?)?));
        } else if table == "filter" && line.starts_with('[') {
            let (cnt, rest) = line.split_once(' ').context("counter without rule")?;
            let Some(rest) = rest.strip_prefix("-A ") else {
                continue;
            };
            let chain = rest.split_whitespace().next().unwrap_or("").to_string();
            let target = rest
                .rsplit_once(" -j ")
                .or_else(|| rest.rsplit_once(" -g "))
                .map(|(_, t)| t.split_whitespace().next().unwrap_or("").to_string())
                .unwrap_or_default();
            let position = rules.iter().filter(|r| r.0 == chain).count() as u32 + 1;
            rules.push((chain, position, parse_pcnt(cnt)?, target));
        }
    }
    Ok((rules, policy.context("no filter INPUT chain")?))
}

impl IptablesOracle {
    /// Deliver `frame` and report the decision from the counters of every filter chain (see
    /// [`ObservedChains`]).
    pub fn classify_chains(&self, frame: &[u8]) -> Result<ObservedChains> {
        let before_text = self.pair.host.exec(self.flavor.save(), ["-c"])?;
        let before = Counters::parse(&before_text)?;
        let (rules0, pol0) = all_filter_counters(&before_text)?;
        with_pinned_cpu(|| -> Result<()> {
            self.tx.send(frame)?;
            self.tx.send(&self.sentinel)
        })??;
        let start = Instant::now();
        loop {
            let text = self.pair.host.exec(self.flavor.save(), ["-c"])?;
            let now = Counters::parse(&text)?;
            if now.sentinel > before.sentinel {
                let (rules1, pol1) = all_filter_counters(&text)?;
                if rules1.len() != rules0.len() {
                    bail!("the filter table changed size");
                }
                let decided: Vec<&RuleCount> = rules1
                    .iter()
                    .zip(&rules0)
                    .filter(|(a, b)| a.2 != b.2 && (a.3 == "ACCEPT" || a.3 == "DROP"))
                    .map(|(a, _)| a)
                    .collect();
                return match (decided.as_slice(), pol1.1 - pol0.1) {
                    ([], 0) => Ok(ObservedChains::NotCounted),
                    ([], 1) => Ok(ObservedChains::Policy { policy: pol1.0 }),
                    ([(chain, position, _, target)], 0) => Ok(ObservedChains::Rule {
                        chain: chain.clone(),
                        position: *position,
                        target: target.clone(),
                    }),
                    _ => bail!(
                        "more than one decision counted: {decided:?}, policy {}",
                        pol1.1 - pol0.1
                    ),
                };
            }
            if start.elapsed() > self.timeout {
                bail!("sentinel frame not counted within {:?}", self.timeout);
            }
            std::thread::yield_now();
        }
    }
}

/// Run `f` with the calling thread pinned to the CPU it is on, then restore its affinity: frames sent
/// from one CPU through a veth are received in order (same per-CPU backlog).
fn with_pinned_cpu<T>(f: impl FnOnce() -> T) -> Result<T> {
    // SAFETY: cpu_set_t is plain data; sched_{get,set}affinity(0) act on the calling thread only.
    unsafe {
        let mut old: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut old) != 0 {
            return Err(std::io::Error::last_os_error()).context("sched_getaffinity");
        }
        let cpu = libc::sched_getcpu();
        if cpu < 0 {
            return Err(std::io::Error::last_os_error()).context("sched_getcpu");
        }
        let mut one: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu as usize, &mut one);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &one) != 0 {
            return Err(std::io::Error::last_os_error()).context("sched_setaffinity");
        }
        let out = f();
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &old);
        Ok(out)
    }
}

/// One engine's answer for one frame, in the terms the oracle can check: the deciding rule's 1-based
/// INPUT position and verdict, the policy, or "no INPUT counter" (hotdrop, not IPv4, malformed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Rule {
        position: u32,
        verdict: Verdict,
    },
    Policy {
        verdict: Verdict,
    },
    Hotdrop {
        position: u32,
    },
    NotIpv4,
    Malformed,
    /// The kernel dropped on an internal fault (`REASON_*` slot); never an expected answer.
    FailClosed {
        reason: u32,
    },
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Answer::Rule { position, verdict } => {
                write!(f, "rule {position} ({})", verdict.target())
            }
            Answer::Policy { verdict } => write!(f, "policy ({})", verdict.target()),
            Answer::Hotdrop { position } => write!(f, "hotdrop at rule {position}"),
            Answer::NotIpv4 => write!(f, "not ipv4 (pass)"),
            Answer::Malformed => write!(f, "malformed (drop)"),
            Answer::FailClosed { reason } => write!(f, "failed closed (reason {reason})"),
        }
    }
}

impl Answer {
    /// `interp` / `sim` outcome.
    pub fn from_outcome(o: &Outcome) -> Answer {
        match o.decided {
            Decided::Rule { position, .. } => Answer::Rule {
                position,
                verdict: o.verdict,
            },
            Decided::Policy { .. } => Answer::Policy { verdict: o.verdict },
            Decided::Hotdrop { position, .. } => Answer::Hotdrop { position },
            Decided::NotIpv4 => Answer::NotIpv4,
            Decided::Malformed => Answer::Malformed,
            Decided::FailClosed { reason } => Answer::FailClosed { reason },
        }
    }

    /// The kernel's `tw_decision` after a test run of `artifact`'s generation, decoded by
    /// [`Outcome::from_kernel`]. The hotdrop position is the first candidate rule's, as the datapath
    /// reports it.
    pub fn from_test_run(artifact: &Artifact, run: &TestRun) -> Result<Answer> {
        let o = Outcome::from_kernel(artifact, run.xdp_action, &run.decision)?;
        Ok(Answer::from_outcome(&o))
    }

    /// Does iptables' observation agree with this answer? Hotdrop, not-IPv4 and malformed frames move
    /// no INPUT counter.
    pub fn agrees_with(&self, observed: &Observed) -> bool {
        match (self, observed) {
            (
                Answer::Rule { position, verdict },
                Observed::Rule {
                    position: p,
                    target,
                },
            ) => position == p && verdict.target() == target,
            (Answer::Policy { verdict }, Observed::Policy { policy }) => verdict.target() == policy,
            (
                Answer::Hotdrop { .. } | Answer::NotIpv4 | Answer::Malformed,
                Observed::NotCounted,
            ) => true,
            _ => false,
        }
    }
}

/// A frame as hex bytes plus what [`decode`] makes of it, for mismatch reports.
pub fn describe_frame(frame: &[u8]) -> String {
    let hex: String = frame.iter().map(|b| format!("{b:02x}")).collect();
    let decoded = match decode(frame) {
        Decoded::Ipv4(p) => p.to_string(),
        other => format!("{other:?}"),
    };
    format!("{decoded}\n    {hex}")
}
