//! Real iptables in a throwaway namespace, used as a classifier: load a ruleset, deliver one frame to
//! the INPUT chain, and read back which rule (or the policy) counted it ([`IptablesOracle`]: INPUT
//! only, one interface). [`HookOracle`] does the same for every hook — INPUT, FORWARD (routed through
//! the victim between two peers) and OUTPUT (sent by the victim) — reading the decision from every
//! filter chain's counters; [`Departure`] names where iptables-nft departs from iptables' documented
//! meaning, with the predicates that exclude the affected frames.
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
use crate::netns::{fmt_mac, FrameSender, Netns, VethPair};
use anyhow::{bail, Context, Result};
use std::fmt;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};
use tailwall_compiler::artifact::Artifact;
use tailwall_compiler::interp::{Decided, Meta, Outcome};
use tailwall_compiler::ir::{Hook, Ruleset, Verdict};
use tailwall_compiler::packet::{decode, ipv4_checksum, Decoded, ETH_HLEN};
use tailwall_loader::TestRun;

/// Source address of the sentinel frame; `raw PREROUTING` drops it before routing.
pub const SENTINEL_SRC: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 99);
/// The IPv6 oracle's sentinel source ([`IptablesOracle::new_v6`]), dropped in ip6tables' raw table.
pub const SENTINEL_SRC6: std::net::Ipv6Addr =
    std::net::Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 0x99);
/// The victim's IPv6 address the sentinel is sent to (every IPv6 destination is local there).
pub const VICTIM6: std::net::Ipv6Addr =
    std::net::Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 1);

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
    /// [`Flavor::cmd`] of ip6tables.
    pub fn cmd6(self) -> &'static str {
        match self {
            Flavor::Legacy => "ip6tables-legacy",
            Flavor::Nft => "ip6tables-nft",
        }
    }
    /// [`Flavor::restore`] of ip6tables.
    pub fn restore6(self) -> &'static str {
        match self {
            Flavor::Legacy => "ip6tables-legacy-restore",
            Flavor::Nft => "ip6tables-nft-restore",
        }
    }
    /// [`Flavor::save`] of ip6tables.
    pub fn save6(self) -> &'static str {
        match self {
            Flavor::Legacy => "ip6tables-legacy-save",
            Flavor::Nft => "ip6tables-nft-save",
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
                } else if table == "raw"
                    && (rest.contains(&format!("-s {SENTINEL_SRC}/32"))
                        || rest.contains(&format!("-s {SENTINEL_SRC6}/128")))
                {
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
            // A LOG/NFLOG rule counts the packet and lets the next rule decide (`logs_moved`).
            if b.0 != a.0 && !is_log_target(&b.1) {
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

/// `LOG` / `NFLOG`: targets that count the packet and return `XT_CONTINUE`.
fn is_log_target(target: &str) -> bool {
    matches!(target, "LOG" | "NFLOG")
}

impl Counters {
    /// The 1-based INPUT positions of the LOG/NFLOG rules whose counters moved from `before` to
    /// `self` (each by one packet), in order: the rules that reported the one packet delivered.
    ///
    /// # Errors
    /// A LOG rule counted more than one packet, or INPUT changed size.
    pub fn logs_moved(&self, before: &Counters) -> Result<Vec<u32>> {
        if self.rules.len() != before.rules.len() {
            bail!("INPUT changed size between reads");
        }
        let mut out = Vec::new();
        for (i, (a, b)) in before.rules.iter().zip(&self.rules).enumerate() {
            if b.0 != a.0 && is_log_target(&b.1) {
                if b.0 - a.0 != 1 {
                    bail!("LOG rule {} counted {} packets", i + 1, b.0 - a.0);
                }
                out.push(i as u32 + 1);
            }
        }
        Ok(out)
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
    /// ip6tables (an IPv6 oracle, [`IptablesOracle::new_v6`]) instead of iptables.
    pub v6: bool,
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
            v6: false,
            tx,
            sentinel,
            timeout: Duration::from_secs(2),
            pair,
        })
    }

    /// The IPv6 oracle: ip6tables (`flavor`) in fresh namespaces where every IPv6 destination is
    /// local (`local ::/0` in the local table), so generated IPv6 frames reach INPUT; the sentinel
    /// ([`SENTINEL_SRC6`]) is dropped in ip6tables' raw PREROUTING and the victim sends nothing.
    pub fn new_v6(flavor: Flavor) -> Result<IptablesOracle> {
        let pair = VethPair::new()?;
        let ns = &pair.host;
        ns.exec(
            "ip",
            [
                "-6", "route", "add", "local", "::/0", "dev", "lo", "table", "local",
            ],
        )?;
        let sentinel_rule = format!("{SENTINEL_SRC6}/128");
        ns.exec(
            flavor.cmd6(),
            [
                "-w",
                "-t",
                "raw",
                "-A",
                "PREROUTING",
                "-s",
                &sentinel_rule,
                "-j",
                "DROP",
            ],
        )?;
        ns.exec(
            flavor.cmd6(),
            ["-w", "-t", "raw", "-A", "OUTPUT", "-j", "DROP"],
        )?;
        pair.wait_carrier(Duration::from_secs(5))?;
        let tx = pair.sender()?;
        let sentinel = tailwall_compiler::packet::build_frame_v6(
            pair.host_mac,
            pair.peer_mac,
            SENTINEL_SRC6,
            VICTIM6,
            17,
            &tailwall_compiler::packet::l4_header(17, 9, 9, b"sentinel"),
        );
        Ok(IptablesOracle {
            flavor,
            v6: true,
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
        let restore = if self.v6 {
            self.flavor.restore6()
        } else {
            self.flavor.restore()
        };
        self.pair
            .host
            .exec_stdin(restore, ["-w"], restore_text)
            .with_context(|| format!("{restore} rejected:\n{restore_text}"))
            .map(drop)
    }

    /// Read every counter (one `iptables-save -c`, `ip6tables-save -c` for the IPv6 oracle).
    pub fn counters(&self) -> Result<Counters> {
        let save = if self.v6 {
            self.flavor.save6()
        } else {
            self.flavor.save()
        };
        Counters::parse(&self.pair.host.exec(save, ["-c"])?)
    }

    /// Deliver `frame` to the victim and report which INPUT counter moved (LOG/NFLOG rules' counters
    /// aside: [`Counters::logs_moved`] on the returned counters). `before` must be the current
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

/// `(chain, 1-based position, packets, target)` of one filter rule.
type RuleCount = (String, u32, u64, String);

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
    /// A frame of the family the ruleset does not filter (passed).
    OtherFamily,
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
            Answer::OtherFamily => write!(f, "other family (pass)"),
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
            Decided::OtherFamily => Answer::OtherFamily,
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
                Answer::Hotdrop { .. } | Answer::NotIpv4 | Answer::OtherFamily | Answer::Malformed,
                Observed::NotCounted,
            ) => true,
            _ => false,
        }
    }
}

/// A frame as hex bytes plus what [`decode`] makes of it, for mismatch reports.
pub fn describe_frame(frame: &[u8]) -> String {
    let hex: String = frame.iter().map(|b| format!("{b:02x}")).collect();
    let decoded = decode(frame).to_string();
    format!("{decoded}\n    {hex}")
}

// ---------------------------------------------------------------------------------------------------
// Every hook: INPUT, FORWARD and OUTPUT of a victim namespace with two interfaces.
// ---------------------------------------------------------------------------------------------------

/// The victim's interfaces, one veth leg each to its own peer namespace, named as generated rules name
/// them (`testgen::IFACES`). Routes (FORWARD, OUTPUT): `0.0.0.0/1` leaves by leg 0, `128.0.0.0/1` by
/// leg 1 ([`out_leg`]).
pub const LEGS: [&str; 2] = ["eth0", "wan1"];

/// MTU of both ends of every leg (bytes of IPv4 packet): frames up to it are askable. Above the
/// generated lengths (`-m length` up to 1600), below what native XDP on a veth allows (about 3.5 KiB:
/// `compile --attach` fails with ERANGE at 9000).
pub const LEG_MTU: usize = 2000;

/// The leg a destination is routed out of at FORWARD and OUTPUT (its top bit).
pub fn out_leg(dst: Ipv4Addr) -> usize {
    (u32::from(dst) >> 31) as usize
}

/// Is `a` one of the harness's own link addresses (`198.18.0.0/29`: leg `i` is `198.18.0.(4i+1)/30`
/// on the victim, `.(4i+2)` on its peer)? Frames to or from them are local, not forwarded.
pub fn harness_addr(a: Ipv4Addr) -> bool {
    u32::from(a) & 0xffff_fff8 == 0xc612_0000
}

/// The addresses of leg `i` ([`harness_addr`]): `(victim, peer)`, `198.18.0.(4i+1)` and `.(4i+2)`.
pub fn leg_addrs(i: usize) -> (Ipv4Addr, Ipv4Addr) {
    let base = 0xc612_0000u32 + 4 * i as u32;
    (Ipv4Addr::from(base + 1), Ipv4Addr::from(base + 2))
}

/// What iptables decided for one frame at one hook, read from the counters of every filter chain: the
/// terminal rule (ACCEPT/DROP) that counted it, as (chain, 1-based position, target); else the policy
/// of the built-in chain whose counter moved; else nothing (a hotdrop, or the frame never reached the
/// hook). Jump, goto and RETURN rules also count a packet on its way, so they are not decisions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Rule {
        chain: String,
        position: u32,
        target: String,
    },
    Policy {
        chain: String,
        policy: String,
    },
    NotCounted,
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Rule {
                chain,
                position,
                target,
            } => write!(f, "rule {chain} {position} ({target})"),
            Decision::Policy { chain, policy } => write!(f, "policy {chain} ({policy})"),
            Decision::NotCounted => write!(f, "not counted"),
        }
    }
}

impl Decision {
    /// What iptables' counters must show for an engine's outcome on `rs`: a rule or the policy of its
    /// chain; hotdrops, frames that are not IPv4 and malformed ones move no counter. A fail-closed
    /// kernel drop has no counterpart (`None`).
    pub fn expected(rs: &Ruleset, o: &Outcome) -> Option<Decision> {
        let name = |c: tailwall_compiler::ir::ChainId| {
            rs.chain(c)
                .map_or_else(|| format!("chain {}", c.0), |c| c.name.clone())
        };
        Some(match o.decided {
            Decided::Rule {
                chain, position, ..
            } => Decision::Rule {
                chain: name(chain),
                position,
                target: o.verdict.target().to_string(),
            },
            Decided::Policy { chain } => Decision::Policy {
                chain: name(chain),
                policy: o.verdict.target().to_string(),
            },
            Decided::Hotdrop { .. }
            | Decided::NotIpv4
            | Decided::OtherFamily
            | Decided::Malformed => Decision::NotCounted,
            Decided::FailClosed { .. } => return None,
        })
    }
}

/// Every filter counter of one `iptables-save -c`: rules as [`RuleCount`], built-in chains as
/// `(chain, policy, packets)`, and the sentinel rule's packets (0 when absent).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct TableCounters {
    rules: Vec<RuleCount>,
    policies: Vec<(String, String, u64)>,
    sentinel: u64,
}

impl TableCounters {
    fn parse(save: &str) -> Result<TableCounters> {
        let mut c = TableCounters::default();
        let mut table = "";
        for line in save.lines() {
            if let Some(t) = line.strip_prefix('*') {
                table = match t {
                    "filter" => "filter",
                    "raw" => "raw",
                    _ => "",
                };
            } else if table == "filter" && line.starts_with(':') {
                let mut it = line[1..].split_whitespace();
                let chain = it.next().context("chain line without a name")?;
                let policy = it.next().context("chain line without a policy")?;
                if policy != "-" {
                    let packets = parse_pcnt(it.next().context("chain line without counters")?)?;
                    c.policies
                        .push((chain.to_string(), policy.to_string(), packets));
                }
            } else if line.starts_with('[') {
                let (cnt, rest) = line.split_once(' ').context("counter without rule")?;
                if table == "raw" && rest.contains(&format!("-s {SENTINEL_SRC}/32")) {
                    c.sentinel = parse_pcnt(cnt)?;
                    continue;
                }
                let Some(rest) = rest.strip_prefix("-A ").filter(|_| table == "filter") else {
                    continue;
                };
                let chain = rest.split_whitespace().next().unwrap_or("").to_string();
                let target = rest
                    .rsplit_once(" -j ")
                    .or_else(|| rest.rsplit_once(" -g "))
                    .map(|(_, t)| t.split_whitespace().next().unwrap_or("").to_string())
                    .unwrap_or_default();
                let position = c.rules.iter().filter(|r| r.0 == chain).count() as u32 + 1;
                c.rules.push((chain, position, parse_pcnt(cnt)?, target));
            }
        }
        if c.policies.len() != 3 {
            bail!(
                "expected the three built-in filter chains, got {:?}",
                c.policies
            );
        }
        Ok(c)
    }

    /// The one decision between `before` and `self`.
    fn decision_since(&self, before: &TableCounters) -> Result<Decision> {
        if self.rules.len() != before.rules.len() {
            bail!("the filter table changed size between reads");
        }
        let mut moved = Vec::new();
        for (a, b) in before.rules.iter().zip(&self.rules) {
            if b.2 != a.2 && matches!(b.3.as_str(), "ACCEPT" | "DROP") {
                moved.push((
                    b.2 - a.2,
                    Decision::Rule {
                        chain: b.0.clone(),
                        position: b.1,
                        target: b.3.clone(),
                    },
                ));
            }
        }
        for (a, b) in before.policies.iter().zip(&self.policies) {
            if b.2 != a.2 {
                moved.push((
                    b.2 - a.2,
                    Decision::Policy {
                        chain: b.0.clone(),
                        policy: b.1.clone(),
                    },
                ));
            }
        }
        match moved.as_slice() {
            [] => Ok(Decision::NotCounted),
            [(1, d)] => Ok(d.clone()),
            _ => {
                bail!("more than one decision counted: {moved:?} (stray traffic in the namespace?)")
            }
        }
    }
}

/// One leg: the victim's interface [`LEGS`]`[i]` and the peer namespace at its other end.
struct Leg {
    victim_mac: [u8; 6],
    tx: FrameSender,
    sentinel: Vec<u8>,
    // Declared last: dropped after the sender bound to it.
    _peer: Netns,
}

/// Real iptables at one hook of a throwaway victim namespace (named `two-…`), used as a classifier:
/// load a filter table, hand it one frame at [`Hook`] `hook`, read back which rule (or policy) counted
/// it ([`Decision`]).
///
/// How a frame reaches each hook (the victim has the two interfaces [`LEGS`], `rp_filter=0`,
/// `accept_local=1`):
/// - INPUT: every IPv4 destination is routed as local (`local 0.0.0.0/0 dev lo table local`); the frame
///   is sent from the peer of the chosen leg (AF_PACKET, the victim's MAC as destination). The victim
///   sends nothing (`raw OUTPUT -j DROP`).
/// - FORWARD: `ip_forward=1`, `0.0.0.0/1` routed out of leg 0 and `128.0.0.0/1` out of leg 1 via the
///   peers (permanent neighbour entries: no ARP); the frame arrives from the chosen leg's peer and is
///   forwarded, not delivered. Non-first fragments are not reassembled on this path (no conntrack).
/// - OUTPUT: the same routes; the frame's IPv4 packet is sent by the victim itself through a raw socket
///   (`IPPROTO_RAW`, header included: the kernel only fills in the total length and the header
///   checksum), which traverses OUTPUT synchronously in `sendto` (an `EPERM` is iptables' DROP).
///   Everything arriving at the victim is dropped in `raw PREROUTING`.
///
/// At INPUT and FORWARD a *sentinel* frame (from [`SENTINEL_SRC`], dropped and counted by `raw
/// PREROUTING`) follows the frame on the same CPU and leg: once its counter moved, the frame has been
/// through the hook (see the module docs). Counters are read with one `iptables-save -c` per frame,
/// whose result is the next frame's "before".
pub struct HookOracle {
    pub flavor: Flavor,
    pub hook: Hook,
    /// Bound on the wait for the sentinel, per frame.
    pub timeout: Duration,
    legs: Vec<Leg>,
    raw: Option<OwnedFd>,
    last: Option<TableCounters>,
    victim: Netns,
}

impl HookOracle {
    /// A fresh victim namespace and its two legs, set up for `hook` (see the type docs).
    pub fn new(flavor: Flavor, hook: Hook) -> Result<HookOracle> {
        let victim = Netns::with_prefix("two")?;
        let mut legs = Vec::new();
        let ipt = |args: &[&str]| -> Result<()> {
            let mut a = vec!["-w"];
            a.extend_from_slice(args);
            victim.exec(flavor.cmd(), a).map(drop)
        };
        for scope in ["all", "default"] {
            victim.sysctl(&format!("net.ipv4.conf.{scope}.rp_filter"), "0")?;
            victim.sysctl(&format!("net.ipv4.conf.{scope}.accept_local"), "1")?;
            victim.sysctl(&format!("net.ipv4.conf.{scope}.send_redirects"), "0")?;
        }
        for (i, name) in LEGS.iter().enumerate() {
            let peer = Netns::with_prefix("two")?;
            let peer_if = format!("p{i}");
            victim.exec(
                "ip",
                [
                    "link",
                    "add",
                    name,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    &peer_if,
                    "netns",
                    peer.name(),
                ],
            )?;
            let victim_mac = [0x02, 0x74, 0x77, 0x01, i as u8, 0x01];
            let peer_mac = [0x02, 0x74, 0x77, 0x01, i as u8, 0x02];
            let (vip, pip) = leg_addrs(i);
            for (ns, ifname, mac, ip) in [
                (&victim, *name, victim_mac, vip),
                (&peer, peer_if.as_str(), peer_mac, pip),
            ] {
                ns.exec(
                    "ip",
                    ["link", "set", "dev", ifname, "address", &fmt_mac(mac)],
                )?;
                ns.exec("ip", ["addr", "add", &format!("{ip}/30"), "dev", ifname])?;
                // Length matches make frames beyond the default 1500-byte MTU.
                ns.exec(
                    "ip",
                    ["link", "set", "dev", ifname, "mtu", &LEG_MTU.to_string()],
                )?;
                ns.exec("ip", ["link", "set", "dev", ifname, "up"])?;
            }
            for key in ["rp_filter", "accept_local"] {
                victim.sysctl(
                    &format!("net.ipv4.conf.{name}.{key}"),
                    if key == "rp_filter" { "0" } else { "1" },
                )?;
            }
            if hook != Hook::Input {
                let half = if i == 0 { "0.0.0.0/1" } else { "128.0.0.0/1" };
                victim.exec(
                    "ip",
                    [
                        "neigh",
                        "replace",
                        &pip.to_string(),
                        "lladdr",
                        &fmt_mac(peer_mac),
                        "dev",
                        name,
                        "nud",
                        "permanent",
                    ],
                )?;
                victim.exec(
                    "ip",
                    ["route", "add", half, "via", &pip.to_string(), "dev", name],
                )?;
            }
            let peer_ifindex = peer.ifindex(&peer_if)?;
            wait_carrier(&peer, &peer_if, Duration::from_secs(5))?;
            let tx = peer.run(|| FrameSender::open(peer_ifindex))??;
            let sentinel = tailwall_compiler::packet::build_frame(
                victim_mac,
                peer_mac,
                SENTINEL_SRC,
                vip,
                17,
                0,
                &tailwall_compiler::packet::l4_header(17, 9, 9, b"sentinel"),
            );
            legs.push(Leg {
                victim_mac,
                tx,
                sentinel,
                _peer: peer,
            });
        }
        let mut raw = None;
        match hook {
            Hook::Input => {
                victim.exec(
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
                ipt(&[
                    "-t",
                    "raw",
                    "-A",
                    "PREROUTING",
                    "-s",
                    &format!("{SENTINEL_SRC}/32"),
                    "-j",
                    "DROP",
                ])?;
                ipt(&["-t", "raw", "-A", "OUTPUT", "-j", "DROP"])?;
            }
            Hook::Forward => {
                victim.sysctl("net.ipv4.ip_forward", "1")?;
                ipt(&[
                    "-t",
                    "raw",
                    "-A",
                    "PREROUTING",
                    "-s",
                    &format!("{SENTINEL_SRC}/32"),
                    "-j",
                    "DROP",
                ])?;
                ipt(&["-t", "raw", "-A", "OUTPUT", "-j", "DROP"])?;
            }
            Hook::Output => {
                ipt(&["-t", "raw", "-A", "PREROUTING", "-j", "DROP"])?;
                raw = Some(victim.run(open_raw_socket)??);
            }
        }
        Ok(HookOracle {
            flavor,
            hook,
            timeout: Duration::from_secs(2),
            legs,
            raw,
            last: None,
            victim,
        })
    }

    /// The victim namespace (e.g. to run `iptables -L` in it).
    pub fn victim(&self) -> &Netns {
        &self.victim
    }

    /// The interfaces a frame sent on leg `leg` has at this hook, as `interp` takes them: the input
    /// interface is the leg (INPUT, FORWARD), the output interface the route's leg for the destination
    /// (FORWARD, OUTPUT).
    pub fn meta(&self, frame: &[u8], leg: usize) -> Meta {
        let dst = match decode(frame) {
            Decoded::Ipv4(p) => Some(Ipv4Addr::from(p.dst as u32)),
            _ => None,
        };
        let out = dst.map(|d| LEGS[out_leg(d)].to_string());
        match self.hook {
            Hook::Input => Meta {
                in_iface: Some(LEGS[leg].to_string()),
                out_iface: None,
            },
            Hook::Forward => Meta {
                in_iface: Some(LEGS[leg].to_string()),
                out_iface: out,
            },
            Hook::Output => Meta {
                in_iface: None,
                out_iface: out,
            },
        }
    }

    /// Why real iptables cannot be asked about `frame` at this hook, or `None` when it can. Asked
    /// frames either reach the hook unchanged or are dropped before it by the kernel in a way every
    /// engine reports as "not counted" (not IPv4, malformed).
    pub fn unaskable(&self, frame: &[u8]) -> Option<&'static str> {
        if frame.len() < ETH_HLEN {
            return Some("shorter than an Ethernet header");
        }
        if frame.len() > ETH_HLEN + LEG_MTU {
            return Some("longer than the legs' MTU");
        }
        if !matches!(
            tailwall_compiler::packet::network_header(frame),
            Ok((_, ETH_HLEN))
        ) {
            return Some("VLAN-tagged (the victim has no VLAN device)");
        }
        match decode(frame) {
            Decoded::Ipv4(p) => {
                let (src, dst) = (Ipv4Addr::from(p.src as u32), Ipv4Addr::from(p.dst as u32));
                if tailwall_compiler::testgen::is_martian(p.src as u32)
                    || tailwall_compiler::testgen::is_martian(p.dst as u32)
                {
                    return Some("martian address (dropped or rerouted by routing)");
                }
                if harness_addr(src) || harness_addr(dst) {
                    return Some("address of the harness's links");
                }
                let ihl = (frame[ETH_HLEN] & 0x0f) as usize * 4;
                let checksum_ok = ipv4_checksum(&frame[ETH_HLEN..ETH_HLEN + ihl]) == 0;
                match self.hook {
                    Hook::Input | Hook::Forward if !checksum_ok => {
                        Some("bad IPv4 header checksum (ip_rcv drops it)")
                    }
                    Hook::Input if p.frag_offset != 0 => {
                        Some("non-first fragment (reassembled before INPUT)")
                    }
                    Hook::Forward if frame[ETH_HLEN + 8] <= 1 => Some("TTL <= 1 (not forwarded)"),
                    _ => None,
                }
            }
            _ if self.hook == Hook::Output => {
                Some("not well-formed IPv4 (a raw IPv4 socket cannot send it unchanged)")
            }
            _ => None,
        }
    }

    /// Replace the filter table with `restore_text` (iptables-save format).
    pub fn load(&mut self, restore_text: &str) -> Result<()> {
        self.victim
            .exec_stdin(self.flavor.restore(), ["-w"], restore_text)
            .with_context(|| format!("{} rejected:\n{restore_text}", self.flavor.restore()))?;
        self.last = None;
        Ok(())
    }

    fn read(&self) -> Result<(String, TableCounters)> {
        let text = self.victim.exec(self.flavor.save(), ["-c"])?;
        let c = TableCounters::parse(&text)?;
        Ok((text, c))
    }

    /// The filter table as `iptables-save -c` prints it now.
    pub fn save(&self) -> Result<String> {
        Ok(self.read()?.0)
    }

    /// Send `frame` from the peer of leg `leg` to the victim (its MAC as destination), with no counter
    /// read: e.g. traffic for a filter other than iptables attached to the victim's interface.
    pub fn send(&self, frame: &[u8], leg: usize) -> Result<()> {
        let l = &self.legs[leg];
        let mut f = frame.to_vec();
        f[..6].copy_from_slice(&l.victim_mac);
        l.tx.send(&f)
    }

    /// Hand `frame` to the hook (arriving on leg `leg` at INPUT/FORWARD; at OUTPUT its IPv4 packet is
    /// sent by the victim) and report the decision. Check [`HookOracle::unaskable`] first.
    pub fn classify(&mut self, frame: &[u8], leg: usize) -> Result<Decision> {
        let before = match self.last.take() {
            Some(c) => c,
            None => self.read()?.1,
        };
        let now = match self.hook {
            Hook::Input | Hook::Forward => {
                let l = &self.legs[leg];
                let mut f = frame.to_vec();
                f[..6].copy_from_slice(&l.victim_mac);
                with_pinned_cpu(|| -> Result<()> {
                    l.tx.send(&f)?;
                    l.tx.send(&l.sentinel)
                })??;
                let start = Instant::now();
                loop {
                    let (_, now) = self.read()?;
                    if now.sentinel > before.sentinel {
                        if now.sentinel != before.sentinel + 1 {
                            bail!("sentinel counted {} times", now.sentinel - before.sentinel);
                        }
                        break now;
                    }
                    if start.elapsed() > self.timeout {
                        bail!("sentinel frame not counted within {:?}", self.timeout);
                    }
                    std::thread::yield_now();
                }
            }
            Hook::Output => {
                let fd = self.raw.as_ref().context("no raw socket")?;
                send_raw(fd, frame)?;
                self.read()?.1
            }
        };
        let d = now.decision_since(&before)?;
        self.last = Some(now);
        Ok(d)
    }
}

fn wait_carrier(ns: &Netns, ifname: &str, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        let out = ns.exec("ip", ["-o", "link", "show", "dev", ifname])?;
        if out.contains("LOWER_UP") && !out.contains("NO-CARRIER") {
            return Ok(());
        }
        if start.elapsed() > timeout {
            bail!("{ifname} has no carrier after {timeout:?}: {out}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `socket(AF_INET, SOCK_RAW, IPPROTO_RAW)` in the current thread's namespace (header included).
fn open_raw_socket() -> Result<OwnedFd> {
    // SAFETY: plain socket(2) call; the fd is owned below.
    let raw = unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::IPPROTO_RAW,
        )
    };
    if raw < 0 {
        return Err(std::io::Error::last_os_error()).context("socket(AF_INET, SOCK_RAW)");
    }
    // SAFETY: `raw` is a fresh, valid fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Send the IPv4 packet of `frame` (its total length, without Ethernet header or padding) through the
/// raw socket. `EPERM` is netfilter's DROP at OUTPUT, not an error.
fn send_raw(fd: &OwnedFd, frame: &[u8]) -> Result<()> {
    let ip = &frame[ETH_HLEN..];
    let tot = (u16::from_be_bytes([ip[2], ip[3]]) as usize).min(ip.len());
    let ip = &ip[..tot];
    // SAFETY: zeroed sockaddr_in is a valid value; fields set below.
    let mut sin: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    sin.sin_family = libc::AF_INET as u16;
    sin.sin_addr.s_addr = u32::from_ne_bytes([ip[16], ip[17], ip[18], ip[19]]);
    // SAFETY: buffer and address pointers are valid for the given lengths.
    let n = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            ip.as_ptr().cast(),
            ip.len(),
            0,
            (&sin as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as u32,
        )
    };
    if n < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EPERM) {
            return Ok(());
        }
        return Err(e).context("sendto(raw IPv4)");
    }
    Ok(())
}

/// A way iptables-nft (1.8.9, on this kernel) departs from iptables' documented meaning (the
/// x_tables modules, which `interp` follows), or a known difference of tailwall itself; each is named
/// in `docs/conformance.md`. The oracle excludes the frames (or rulesets) a departure may affect, by
/// the predicates of [`departure`] and [`Departure::refused_ruleset`], and counts them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Departure {
    /// iptables-nft-restore refuses `! -s 0.0.0.0/0` / `! -d 0.0.0.0/0` (`RULE_APPEND failed (Invalid
    /// argument)`): the whole ruleset cannot be loaded.
    NftRefusesNegatedAnyAddress,
    /// iptables-nft translates `-m tcp`/`-m udp` ports (and `-m icmp --icmp-type T` without a code or
    /// `!`: `icmp type T`, checked with `nft list ruleset`) into nft payload loads: a truncated
    /// TCP/UDP/ICMP header is not hotdropped (the bytes are read when they are there, the rule fails
    /// otherwise).
    /// Predicate: the frame is hotdropped by `interp`.
    NftNoHotdrop,
    /// iptables-nft's payload loads read "ports" (and TCP flags, the ICMP type) from a non-first
    /// fragment's data, where x_tables' tcp/udp/multiport/icmp fail on any fragment but the first.
    /// Predicate: a non-first TCP/UDP/ICMP fragment whose `interp` outcome changes when the same bytes are read as a first
    /// fragment, or when only its transport fields are read from them (it stays a fragment for `-f`).
    NftFragmentPorts,
    /// iptables-nft drops the `!` of a full port range (`! --dport 0:65535`, which x_tables never
    /// matches) and emits no port test at all for it. Predicate: the ruleset has such a match and the
    /// frame's `interp` outcome changes when the match is removed.
    NftFullRangeNegation,
    /// tailwall (IR, interp, datapath) treats every port test as `-m tcp`/`-m udp` does, hotdropping a
    /// truncated header (and a TCP fragment at offset 1); x_tables' `-m multiport` reads only the 4
    /// port bytes, so on a TCP header of 4..19 / UDP header of 4..7 bytes it matches the ports instead,
    /// and it fails on any fragment without a hotdrop. Predicate: `interp` hotdrops at a rule whose port
    /// tests are all multiport (several tests) and the transport header has >= 4 bytes or the frame is
    /// a fragment.
    MultiportTruncatedHeader,
}

impl Departure {
    /// The name used in reports and `docs/conformance.md`.
    pub fn name(self) -> &'static str {
        match self {
            Departure::NftRefusesNegatedAnyAddress => "nft-refuses-negated-any-address",
            Departure::NftNoHotdrop => "nft-no-hotdrop",
            Departure::NftFragmentPorts => "nft-fragment-ports",
            Departure::NftFullRangeNegation => "nft-full-range-negation",
            Departure::MultiportTruncatedHeader => "tailwall-multiport-truncated-header",
        }
    }

    /// The departure that keeps `flavor` from loading the iptables-save text at all.
    pub fn refused_ruleset(flavor: Flavor, text: &str) -> Option<Departure> {
        (flavor == Flavor::Nft
            && (text.contains("! -s 0.0.0.0/0") || text.contains("! -d 0.0.0.0/0")))
        .then_some(Departure::NftRefusesNegatedAnyAddress)
    }
}

/// The departure whose predicate `frame` (at `hook`, with `meta`, on `rs`) falls under, if any.
pub fn departure(
    flavor: Flavor,
    hook: Hook,
    rs: &Ruleset,
    meta: &Meta,
    frame: &[u8],
) -> Option<Departure> {
    use tailwall_compiler::interp::run_with;
    use tailwall_compiler::ir::{Field, Test};
    use tailwall_compiler::packet::Ports;
    let decoded = decode(frame);
    let Decoded::Ipv4(p) = &decoded else {
        return None;
    };
    let o = run_with(rs, hook, meta, &decoded);
    let nft = flavor == Flavor::Nft;
    if let Decided::Hotdrop { rule, .. } = o.decided {
        if nft {
            return Some(Departure::NftNoHotdrop);
        }
        let r = rs.rule(rule)?;
        let ports: Vec<_> = [Field::SrcPort, Field::DstPort]
            .iter()
            .filter_map(|&f| r.get(f))
            .collect();
        let ihl = (frame[ETH_HLEN] & 0x0f) as usize * 4;
        let l4 = (p.ip_len as usize).saturating_sub(ihl);
        if !ports.is_empty()
            && ports.iter().all(|m| m.tests.len() > 1)
            && (l4 >= 4 || p.frag_offset != 0)
        {
            return Some(Departure::MultiportTruncatedHeader);
        }
        return None;
    }
    if !nft {
        return None;
    }
    if p.frag_offset != 0 && matches!(p.proto, 1 | 6 | 17) {
        let mut whole = frame.to_vec();
        whole[ETH_HLEN + 6] &= 0xe0;
        whole[ETH_HLEN + 7] = 0;
        let ihl = (frame[ETH_HLEN] & 0x0f) as usize * 4;
        whole[ETH_HLEN + 10..ETH_HLEN + 12].fill(0);
        let c = ipv4_checksum(&whole[ETH_HLEN..ETH_HLEN + ihl]);
        whole[ETH_HLEN + 10..ETH_HLEN + 12].copy_from_slice(&c.to_be_bytes());
        let read = decode(&whole);
        if let Decoded::Ipv4(q) = &read {
            // nft reads the transport header (ports, TCP flags) from the fragment's data while the
            // packet stays a non-first fragment for `-f`: try both readings.
            let mixed = Decoded::Ipv4(tailwall_compiler::packet::IpPacket {
                ports: q.ports,
                tcp_flags: q.tcp_flags,
                icmp: q.icmp,
                ..*p
            });
            if (q.ports != Ports::Absent || q.icmp != tailwall_compiler::packet::Icmp::Absent)
                && (run_with(rs, hook, meta, &read) != o || run_with(rs, hook, meta, &mixed) != o)
            {
                return Some(Departure::NftFragmentPorts);
            }
        }
    }
    let full = |m: &tailwall_compiler::ir::Match| {
        m.negated
            && matches!(m.field, Field::SrcPort | Field::DstPort)
            && m.tests == [Test::Range { lo: 0, hi: 65535 }]
    };
    if rs.rules().any(|r| r.matches.iter().any(full)) {
        // nft emits no expression for a full range, negated or not: the rule tests the protocol only.
        let mut dropped = rs.clone();
        for c in &mut dropped.chains {
            for r in &mut c.rules {
                r.matches.retain(|m| !full(m));
            }
        }
        if run_with(&dropped, hook, meta, &decoded) != o {
            return Some(Departure::NftFullRangeNegation);
        }
    }
    None
}

/// `frame` as a `packet:` line of the shared corpus (`tests/src/corpus.rs`), for turning a mismatch
/// into a regression case; frames the grammar cannot spell are described as `unspellable: …`.
pub fn corpus_packet(frame: &[u8]) -> String {
    let Decoded::Ipv4(p) = decode(frame) else {
        return format!("unspellable: {}", describe_frame(frame));
    };
    let proto = match p.proto {
        6 => "tcp".to_string(),
        17 => "udp".to_string(),
        1 => "icmp".to_string(),
        n => n.to_string(),
    };
    let ihl = (frame[ETH_HLEN] & 0x0f) as usize * 4;
    let (sp, dp) = if matches!(p.proto, 6 | 17) && frame.len() >= ETH_HLEN + ihl + 4 {
        let t = &frame[ETH_HLEN + ihl..];
        (
            u16::from_be_bytes([t[0], t[1]]),
            u16::from_be_bytes([t[2], t[3]]),
        )
    } else {
        (0, 0)
    };
    let mut s = if matches!(p.proto, 6 | 17) {
        format!(
            "{proto} {}:{sp} -> {}:{dp}",
            Ipv4Addr::from(p.src as u32),
            Ipv4Addr::from(p.dst as u32)
        )
    } else {
        format!(
            "{proto} {} -> {}",
            Ipv4Addr::from(p.src as u32),
            Ipv4Addr::from(p.dst as u32)
        )
    };
    if p.frag_offset != 0 {
        s += &format!(" frag {}", p.frag_offset);
    }
    if p.ports == tailwall_compiler::packet::Ports::Truncated && p.frag_offset == 0 {
        s += &format!(" truncate {}", (p.ip_len as usize).saturating_sub(ihl));
    }
    if ihl > 20 {
        s += &format!(" options {}", (ihl - 20) / 4);
    }
    if frame.len() > ETH_HLEN + p.ip_len as usize {
        s += " pad";
    }
    s
}

/// `(packets, bytes)` of one counter.
pub type PacketsBytes = (u64, u64);

/// `(packets, bytes)` of `chain`'s policy (`None` for a user chain) and of each of its rules in order,
/// from `iptables-save -c` output (filter table).
pub fn chain_counters(
    save: &str,
    chain: &str,
) -> Result<(Option<PacketsBytes>, Vec<PacketsBytes>)> {
    fn pair(s: &str) -> Result<(u64, u64)> {
        let inner = s
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .with_context(|| format!("bad counter {s}"))?;
        let (p, b) = inner
            .split_once(':')
            .with_context(|| format!("bad counter {s}"))?;
        Ok((p.parse()?, b.parse()?))
    }
    let (mut table, mut policy, mut rules) = ("", None, Vec::new());
    let head = format!(":{chain} ");
    let append = format!("-A {chain} ");
    for line in save.lines() {
        if let Some(t) = line.strip_prefix('*') {
            table = if t == "filter" { "filter" } else { "" };
        } else if table != "filter" {
        } else if let Some(rest) = line.strip_prefix(&head) {
            let mut it = rest.split_whitespace();
            if it.next() != Some("-") {
                policy = Some(pair(it.next().context("chain line without counters")?)?);
            }
        } else if let Some((cnt, rest)) = line.split_once(' ') {
            if rest.starts_with(&append) {
                rules.push(pair(cnt)?);
            }
        }
    }
    Ok((policy, rules))
}
