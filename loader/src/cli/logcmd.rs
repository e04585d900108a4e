//! `tailwall log IFACE [-f] [-o json]` and `tailwall monitor IFACE [--verdict drop|accept]
//! [--rule CHAIN:N] [--sample 1/N] [-o json] [--pcap-out F]`: the records of the live generation's
//! ring buffer `tw_log` (`docs/decisions/0014-log-ring-buffer.md`, `docs/cli.md`).
//!
//! The ring buffer has one consumer: `log` prints the LOG/NFLOG records and skips decisions,
//! `monitor` prints both. `monitor` switches the datapath's monitor on (`tw_monitor`) and off again
//! when it ends (SIGINT, SIGTERM, `--count`); while nobody monitors it costs one array lookup per
//! packet.
use super::{Failure, Output, SCHEMA_VERSION};
use std::io::Write as _;
use std::os::fd::AsRawFd as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use tailwall_abi::{self as abi, LogRecord, MonitorCfg};
use tailwall_compiler::ir::{LogKind, LogSpec};
use tailwall_loader::{iface, logring};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn trap_signals() {
    // SAFETY: the handler only stores to an atomic (async-signal-safe).
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
}

/// Wait up to `ms` for the ring buffer to have data (poll(2) on its fd).
fn wait_readable(fd: i32, ms: i32) {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, ms) };
}

/// A record resolved against the generation's record: the rule and its log parameters.
struct Resolved<'a> {
    rule: Option<&'a iface::StateRule>,
}

fn resolve<'a>(st: &'a iface::State, position: u32) -> Resolved<'a> {
    let rule = st
        .positions
        .get(position as usize)
        .and_then(|&i| st.rules.get(i as usize));
    Resolved { rule }
}

fn action_name(a: u32) -> &'static str {
    match a {
        abi::ACTION_ACCEPT => "accept",
        abi::ACTION_DROP => "drop",
        _ => "?",
    }
}

fn reason_name(r: u32) -> &'static str {
    match r {
        abi::REASON_RULE => "rule",
        abi::REASON_POLICY => "policy",
        abi::REASON_HOTDROP => "hotdrop",
        abi::REASON_TAIL_CALL => "tail_call",
        abi::REASON_BOUND => "bound",
        abi::REASON_MAP => "map",
        abi::REASON_NO_REGION => "no_region",
        abi::REASON_NO_IFACE => "no_iface",
        abi::REASON_NOT_IPV4 => "not_ip",
        abi::REASON_MALFORMED => "malformed",
        abi::REASON_OTHER_FAMILY => "other_family",
        _ => "other",
    }
}

/// The text of a LOG/NFLOG record: the kernel's line ([`logring::kernel_line`]).
fn log_text(r: &LogRecord, spec: &LogSpec) -> String {
    logring::kernel_line(r, &spec.prefix, spec.flags(), &logring::ifname)
}

fn log_json(r: &LogRecord, st: &iface::State, epoch: i128) -> serde_json::Value {
    let res = resolve(st, r.position);
    let spec = res.rule.and_then(|x| x.log.clone());
    let line = spec.as_ref().map(|s| log_text(r, s));
    let (target, group) = match spec.as_ref().map(|s| &s.kind) {
        Some(LogKind::Nflog { group, .. }) => ("NFLOG", Some(*group)),
        _ => ("LOG", None),
    };
    serde_json::json!({
        "schema_version": SCHEMA_VERSION,
        "kind": "log",
        "time_ns": epoch + i128::from(r.ts_ns),
        "hook": logring::hook_name(r.hook),
        "chain": res.rule.map(|x| x.chain.clone()),
        "rule": res.rule.map(|x| x.position),
        "target": target,
        "level": spec.as_ref().map(LogSpec::level),
        "nflog_group": group,
        "prefix": spec.as_ref().map(|s| s.prefix.clone()),
        "in": (r.in_ifindex != 0).then(|| logring::ifname(r.in_ifindex)),
        "out": (r.out_ifindex != 0 && r.out_ifindex != abi::IFINDEX_UNKNOWN).then(|| logring::ifname(r.out_ifindex)),
        "frame_len": r.frame_len,
        "line": line,
    })
}

/// Send one line to syslog(3) (journald reads it) at the rule's level, identity `tailwall`,
/// facility `LOG_DAEMON` (a process cannot log as `LOG_KERN`).
fn to_syslog(level: u8, line: &str) {
    static OPEN: std::sync::Once = std::sync::Once::new();
    OPEN.call_once(|| {
        // SAFETY: a static NUL-terminated identity, valid for the process' lifetime.
        unsafe { libc::openlog(c"tailwall".as_ptr(), libc::LOG_PID, libc::LOG_DAEMON) };
    });
    let Ok(text) = std::ffi::CString::new(line.trim_end()) else {
        return;
    };
    // SAFETY: "%s" with one NUL-terminated string argument.
    unsafe {
        libc::syslog(
            libc::c_int::from(level.min(7)),
            c"%s".as_ptr(),
            text.as_ptr(),
        )
    };
}

/// `tailwall log IFACE [-f] [--syslog]`.
pub fn log(iface_name: &str, follow: bool, syslog: bool, output: Output) -> Result<(), Failure> {
    let (st, map) =
        iface::live_map(iface_name, abi::MAP_LOG).map_err(super::lifecycle::iface_error)?;
    let mut ring = logring::ring_owned(map)
        .map_err(|e| Failure::Runtime(anyhow::anyhow!("{iface_name}: tw_log: {e}")))?;
    let epoch = logring::monotonic_to_epoch_ns();
    trap_signals();
    let mut out = std::io::stdout().lock();
    loop {
        while let Some(item) = ring.next() {
            let Some(r) = logring::decode(&item) else {
                continue;
            };
            if r.kind != abi::LOG_KIND_RULE {
                continue;
            }
            if syslog {
                if let Some(spec) = resolve(&st, r.position).rule.and_then(|x| x.log.as_ref()) {
                    to_syslog(spec.level(), &log_text(&r, spec));
                }
            }
            match output {
                Output::Json => {
                    let _ = writeln!(out, "{}", log_json(&r, &st, epoch));
                }
                Output::Text => {
                    let res = resolve(&st, r.position);
                    match res.rule.and_then(|x| x.log.as_ref()) {
                        Some(spec) => {
                            let _ = writeln!(out, "{}", log_text(&r, spec));
                        }
                        None => {
                            let _ =
                                writeln!(out, "(position {} of another generation)", r.position);
                        }
                    }
                }
            }
        }
        let _ = out.flush();
        if !follow || STOP.load(Ordering::SeqCst) {
            break;
        }
        wait_readable(ring.as_raw_fd(), 200);
    }
    if let Ok((_, lost)) = iface::live_map(iface_name, abi::MAP_LOG_LOST) {
        if let Ok([l, _]) = logring::lost(&lost) {
            if l > 0 {
                eprintln!("tailwall: {l} log records were lost to a full ring buffer since the generation was applied (packets were not affected)");
            }
        }
    }
    Ok(())
}

/// `--sample 1/N`.
pub fn parse_sample(s: &str) -> Result<u32, String> {
    let n = s.strip_prefix("1/").unwrap_or(s);
    n.parse::<u32>()
        .ok()
        .filter(|&n| n >= 1)
        .ok_or_else(|| format!("`{s}`: expected 1/N with N >= 1"))
}

/// `--rule CHAIN:N`.
pub fn parse_rule(s: &str) -> Result<(String, u32), String> {
    let (c, n) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("`{s}`: expected CHAIN:N"))?;
    let n = n
        .parse::<u32>()
        .ok()
        .filter(|&n| n >= 1)
        .ok_or_else(|| format!("`{s}`: N is a 1-based rule position"))?;
    Ok((c.to_string(), n))
}

/// What `monitor` streams.
pub struct MonitorArgs<'a> {
    pub iface: &'a str,
    /// `ACTION_*` codes streamed (empty: all).
    pub verdicts: Vec<u32>,
    pub rule: Option<(String, u32)>,
    pub sample: u32,
    pub pcap_out: Option<&'a Path>,
    /// Stop after this many printed events.
    pub count: Option<u64>,
    pub output: Output,
}

/// A pcap file (LINKTYPE_ETHERNET, microsecond timestamps) of the monitored frames (their first
/// `LOG_SNAPLEN` bytes, with the original length).
struct PcapOut(std::io::BufWriter<std::fs::File>);

impl PcapOut {
    fn create(path: &Path) -> std::io::Result<PcapOut> {
        let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
        w.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
        w.write_all(&2u16.to_le_bytes())?;
        w.write_all(&4u16.to_le_bytes())?;
        w.write_all(&0i32.to_le_bytes())?;
        w.write_all(&0u32.to_le_bytes())?;
        w.write_all(&abi::LOG_SNAPLEN.to_le_bytes())?;
        w.write_all(&1u32.to_le_bytes())?;
        Ok(PcapOut(w))
    }
    fn frame(&mut self, time_ns: i128, r: &LogRecord) -> std::io::Result<()> {
        let data = logring::frame(r);
        let us = time_ns / 1000;
        self.0.write_all(&((us / 1_000_000) as u32).to_le_bytes())?;
        self.0.write_all(&((us % 1_000_000) as u32).to_le_bytes())?;
        self.0.write_all(&(data.len() as u32).to_le_bytes())?;
        self.0.write_all(&r.frame_len.to_le_bytes())?;
        self.0.write_all(data)?;
        self.0.flush()
    }
}

/// `tailwall monitor IFACE …`.
pub fn monitor(a: MonitorArgs<'_>) -> Result<(), Failure> {
    let rt = |e: String| Failure::Runtime(anyhow::anyhow!("{}: {e}", a.iface));
    let (st, map) =
        iface::live_map(a.iface, abi::MAP_LOG).map_err(super::lifecycle::iface_error)?;
    let (_, mut switch) =
        iface::live_map(a.iface, abi::MAP_MONITOR).map_err(super::lifecycle::iface_error)?;
    if let Some((c, n)) = &a.rule {
        if !st.rules.iter().any(|r| &r.chain == c && r.position == *n) {
            return Err(Failure::Usage(format!(
                "{}: the live ruleset has no rule {c}:{n}",
                a.iface
            )));
        }
    }
    let mut ring = logring::ring_owned(map).map_err(|e| rt(e.to_string()))?;
    let mut pcap = match a.pcap_out {
        Some(p) => Some(PcapOut::create(p).map_err(|e| rt(format!("{}: {e}", p.display())))?),
        None => None,
    };
    // Drain what was there before, so only decisions from now on are printed.
    while ring.next().is_some() {}
    let cfg = MonitorCfg {
        enabled: 1,
        verdicts: a.verdicts.iter().fold(0, |m, &v| m | (1 << v)),
        sample: a.sample,
        pad: 0,
    };
    trap_signals();
    logring::set_monitor(&mut switch, cfg).map_err(|e| rt(e.to_string()))?;
    let epoch = logring::monotonic_to_epoch_ns();
    let mut printed = 0u64;
    let mut out = std::io::stdout().lock();
    let result = (|| -> Result<(), Failure> {
        while !STOP.load(Ordering::SeqCst) && a.count.is_none_or(|c| printed < c) {
            while let Some(item) = ring.next() {
                let Some(r) = logring::decode(&item) else {
                    continue;
                };
                let res = resolve(&st, r.position);
                if let Some((c, n)) = &a.rule {
                    if !res.rule.is_some_and(|x| &x.chain == c && x.position == *n) {
                        continue;
                    }
                }
                let time_ns = epoch + i128::from(r.ts_ns);
                let d = tailwall_compiler::packet::decode(logring::frame(&r));
                if r.kind == abi::LOG_KIND_RULE {
                    let spec = res.rule.and_then(|x| x.log.as_ref());
                    match a.output {
                        Output::Json => {
                            let _ = writeln!(out, "{}", log_json(&r, &st, epoch));
                        }
                        Output::Text => {
                            let _ = writeln!(
                                out,
                                "{:<7} log    {}",
                                logring::hook_name(r.hook),
                                spec.map_or_else(String::new, |s| log_text(&r, s))
                            );
                        }
                    }
                } else {
                    // The deciding rule or the hook's policy.
                    let (chain, rule) = match (res.rule, r.reason) {
                        (Some(x), abi::REASON_RULE | abi::REASON_HOTDROP) => {
                            (x.chain.clone(), Some(x.position))
                        }
                        _ => (logring::hook_name(r.hook).to_string(), None),
                    };
                    match a.output {
                        Output::Json => {
                            let v = serde_json::json!({
                                "schema_version": SCHEMA_VERSION,
                                "kind": "decision",
                                "time_ns": time_ns,
                                "hook": logring::hook_name(r.hook),
                                "chain": chain,
                                "rule": rule,
                                "verdict": action_name(r.action),
                                "reason": reason_name(r.reason),
                                "in": (r.in_ifindex != 0).then(|| logring::ifname(r.in_ifindex)),
                                "out": (r.out_ifindex != 0 && r.out_ifindex != abi::IFINDEX_UNKNOWN).then(|| logring::ifname(r.out_ifindex)),
                                "frame_len": r.frame_len,
                                "packet": d.to_string(),
                            });
                            let _ = writeln!(out, "{v}");
                        }
                        Output::Text => {
                            let _ = writeln!(
                                out,
                                "{:<7} {:<6} {:<8} {:>5}  {:<8} {}",
                                logring::hook_name(r.hook),
                                action_name(r.action),
                                chain,
                                rule.map_or_else(|| "-".to_string(), |n| n.to_string()),
                                reason_name(r.reason),
                                d
                            );
                        }
                    }
                }
                if let Some(p) = pcap.as_mut() {
                    p.frame(time_ns, &r).map_err(|e| rt(format!("pcap: {e}")))?;
                }
                printed += 1;
                if a.count.is_some_and(|c| printed >= c) {
                    break;
                }
            }
            let _ = out.flush();
            wait_readable(ring.as_raw_fd(), 200);
        }
        Ok(())
    })();
    // Off again whatever happened: the monitor costs nothing only while it is off.
    let off = logring::set_monitor(&mut switch, MonitorCfg::default());
    result?;
    off.map_err(|e| rt(format!("switching the monitor off: {e}")))?;
    if let Ok((_, lost)) = iface::live_map(a.iface, abi::MAP_LOG_LOST) {
        if let Ok([_, l]) = logring::lost(&lost) {
            if l > 0 {
                eprintln!("tailwall: {l} decision records were lost to a full ring buffer (packets were not affected)");
            }
        }
    }
    Ok(())
}
