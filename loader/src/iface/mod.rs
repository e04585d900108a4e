//! The lifecycle of a classifier on an interface: attach, swap atomically, verify, roll back, confirm,
//! read and zero counters, detach. Files by job: [`paths`] (where things live and their safety),
//! `record` (what userspace remembers of a generation), `reconcile` (what the kernel says),
//! `counters` (totals and carrying them across a swap).
//!
//! Layout (per network namespace, keyed by the inode of the calling thread's `ns/net`; see
//! [`paths`]): the pinned XDP bpf_link and one pin directory per kept generation in the host's bpffs,
//! one root-only record per generation in `/run/tailwall`, and a per-interface `flock`.
//!
//! Guarantees of [`attach_with`]:
//! - it refuses to pin into a bpffs that would die with the process ([`IfaceError::PrivateBpffs`]) and
//!   into directories it did not create ([`IfaceError::UnsafePath`]);
//! - the kernel is asked first (which link is on the interface, which program it runs): the digest
//!   short-cut ("unchanged") is taken only when the kernel confirms that the interface runs that
//!   generation; leftovers of a crash or of a vanished interface are repaired;
//! - generation N is loaded (verifier), filled, self-tested against `sim` on probe frames, recorded
//!   and pinned before anything live changes; the interface is then flipped with one
//!   `BPF_LINK_UPDATE` (`BPF_F_REPLACE`: only if the link still runs the generation we saw), so
//!   packets see the old or the new classifier, never none and never a mix;
//! - after the flip, a fresh handle of the pinned link must show the new entry program on the
//!   interface ([`IfaceError::NotEnforcing`] otherwise);
//! - a generation with an OUTPUT region has a second link, `tw_egress` at tcx egress (`egress`):
//!   created on the first apply that needs it, then flipped right after the XDP link with its own
//!   `BPF_LINK_UPDATE` and verified the same way; if that step fails the XDP flip is undone (the
//!   interface runs the previous generation on both links, or nothing on a first attach) and the apply
//!   fails ([`IfaceError::Egress`]). A crash between the two flips is repaired by the next command
//!   (the egress link follows the XDP link's generation);
//! - counters follow their rule by identity, loss-free (see `counters`);
//! - the previous `keep` generations stay pinned for [`rollback`]; generations above the live one
//!   (a crash before the flip, a rolled-back one) are removed by the next command;
//! - a failure before the flip leaves the interface as it was and no pins behind.
mod confirm;
mod counters;
mod egress;
pub mod paths;
mod reconcile;
mod record;

use std::{
    os::fd::{AsFd as _, AsRawFd as _},
    path::Path,
};

use aya::programs::{links::FdLink, xdp::XdpLink};
use serde::Serialize;
use tailwall_abi as abi;
use tailwall_compiler::artifact::Artifact;

pub use confirm::{iso_utc, PendingConfirm};
pub use counters::reason_name;
pub use egress::OutputHook;
pub use paths::netns_key;
pub use record::{Carry, Pending, Source, State, StateRule};

use crate::{
    error::{file, prog_err, IfaceError},
    generation::Generation,
    mode::{Mode, ModeRequest},
    sys,
};
use paths::{open_lock, remove_all, remove_empty_dir, remove_file, Paths};
use reconcile::{entry_prog_id, open_link, reconcile, LinkState, View};
use record::{read_json, write_json};

/// Pins of one generation (file names inside `gen-N/`).
pub(crate) const PIN_ENTRY: &str = "entry";
const PINNED_MAPS: [&str; 7] = [
    abi::MAP_PROGS,
    abi::MAP_PROGS_TC,
    abi::MAP_RULE_CNT,
    abi::MAP_REASONS,
    abi::MAP_LOG,
    abi::MAP_LOG_LOST,
    abi::MAP_MONITOR,
];
/// Previous generations kept pinned for [`rollback`] unless asked otherwise.
pub const DEFAULT_KEEP: u32 = 2;

/// How to apply a ruleset ([`attach_with`]).
#[derive(Clone, Debug)]
pub struct ApplyOptions {
    pub mode: ModeRequest,
    /// Block on the interface lock instead of failing with [`IfaceError::Busy`].
    pub wait: bool,
    /// Previous generations to keep pinned for [`rollback`].
    pub keep: u32,
    /// Recorded for `status` and `show`.
    pub source: Source,
}

impl ApplyOptions {
    pub fn new(mode: impl Into<ModeRequest>) -> ApplyOptions {
        ApplyOptions {
            mode: mode.into(),
            wait: false,
            keep: DEFAULT_KEEP,
            source: Source::default(),
        }
    }
}

/// What [`attach_with`] did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AttachOutcome {
    pub iface: String,
    pub generation: u64,
    pub digest: String,
    pub link_id: u32,
    /// The tcx egress link running the generation's `tw_egress` (OUTPUT); None unless `output` is
    /// [`OutputHook::Enforced`].
    pub egress_link_id: Option<u32>,
    /// What the generation does at OUTPUT.
    pub output: OutputHook,
    pub mode: Mode,
    /// `true` when the kernel confirmed the interface already ran this digest; nothing changed.
    pub unchanged: bool,
    /// `true` when an existing link was updated (a swap), `false` on the first attach.
    pub swapped: bool,
    /// `--mode auto` fell back to generic: why native failed.
    pub fallback: Option<String>,
    /// What was found and repaired before applying (a crash's leftovers, a vanished link).
    pub repaired: Vec<String>,
    /// `unchanged`: the source the record named before this apply (the record now names this apply's
    /// file; the rules are the same).
    pub source_was: Option<String>,
    /// The generation whose pending `--confirm` this apply cancelled (the new generation replaced
    /// it: it can no longer be confirmed, and its timer reverts nothing).
    pub cancelled_confirm: Option<u64>,
    /// Wall time of each step, microseconds.
    pub timings: Timings,
}

/// Wall time of the steps of one apply, in microseconds (0: the step did not run).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Timings {
    /// Reconcile with the kernel (lock included).
    pub reconcile_us: u64,
    /// Load, verify, fill and self-test the new generation.
    pub build_us: u64,
    /// Of which: load, verify and fill ([`Generation::load_time`]).
    pub load_us: u64,
    /// Write the record and pin.
    pub pin_us: u64,
    /// The flip and its verification.
    pub flip_us: u64,
    /// RCU grace period, reading the old counters and writing the carry.
    pub carry_us: u64,
    /// Retiring generations beyond `keep`.
    pub retire_us: u64,
}

impl std::fmt::Display for AttachOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for r in &self.repaired {
            writeln!(f, "{}: repaired: {r}", self.iface)?;
        }
        if let Some(g) = self.cancelled_confirm {
            writeln!(
                f,
                "{}: cancelled the pending --confirm of generation {g}: generation {} replaces it",
                self.iface, self.generation
            )?;
        }
        if let Some(why) = &self.fallback {
            writeln!(
                f,
                "{}: native xdp unavailable ({why}); using generic",
                self.iface
            )?;
        }
        let was;
        let what = if self.unchanged {
            match &self.source_was {
                Some(w) => {
                    was = format!("unchanged (the kernel runs this ruleset already, applied from {}; the record now names this file)", if w.is_empty() { "an unrecorded source" } else { w });
                    was.as_str()
                }
                None => "unchanged (the kernel runs this ruleset already)",
            }
        } else if self.swapped {
            "swapped atomically"
        } else {
            "attached"
        };
        write!(
            f,
            "{}: {what}, generation {}, xdp link {} ({} mode)",
            self.iface, self.generation, self.link_id, self.mode
        )?;
        match self.egress_link_id {
            Some(l) => write!(f, ", tcx egress link {l} (OUTPUT)"),
            None => write!(f, "; {}", self.output),
        }
    }
}

/// One rule with its counters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RuleStats {
    #[serde(flatten)]
    pub rule: StateRule,
    pub packets: u64,
    pub bytes: u64,
}

/// One `tw_reasons` slot with its counters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReasonStats {
    pub slot: u32,
    /// `policy`, `not_ipv4`, `malformed`, `tail_call`, `bound`, `hotdrop`, `map`.
    pub name: &'static str,
    pub packets: u64,
    pub bytes: u64,
}

/// Counters of an attached interface ([`stats`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub iface: String,
    pub generation: u64,
    pub digest: String,
    pub link_id: u32,
    pub mode: Mode,
    pub policy: String,
    pub rules: Vec<RuleStats>,
    pub reasons: Vec<ReasonStats>,
    /// Each built-in chain's policy counter (`INPUT`, `FORWARD`, `OUTPUT` of the compiled regions),
    /// by chain name; empty for a generation recorded before policy positions were (schema 3), whose
    /// policy packets are only in `reasons[REASON_POLICY]`.
    pub policies: std::collections::BTreeMap<String, PolicyStats>,
}

/// One built-in chain's policy counter ([`Stats::policies`]), summed over CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PolicyStats {
    pub packets: u64,
    pub bytes: u64,
}

/// What is attached to one interface, as the kernel confirms it ([`status`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Status {
    /// The interface name tailwall attached by (its pins and records are kept under it).
    pub iface: String,
    /// The device's current name when it was renamed since (the filter follows the device).
    pub device: Option<String>,
    /// The kernel runs `generation`, but its record is gone (digest, source, rules unknown; the
    /// mode is the kernel's): applying the ruleset again records it.
    pub record_lost: bool,
    pub ifindex: Option<u32>,
    pub netns: String,
    /// The kernel shows a tailwall link on the interface running a generation we have pins for.
    pub attached: bool,
    pub generation: Option<u64>,
    pub digest: Option<String>,
    pub mode: Option<Mode>,
    pub link_id: Option<u32>,
    pub prog_id: Option<u32>,
    /// The tcx egress link (OUTPUT) and the program it runs, as the kernel shows them (None: no
    /// egress link; the live generation has no OUTPUT region).
    pub egress_link_id: Option<u32>,
    pub egress_prog_id: Option<u32>,
    /// The hooks enforced: `xdp (filter INPUT, FORWARD)` and, when the live generation has an OUTPUT
    /// region, `tcx egress (filter OUTPUT)` (or a line saying the egress link does not run it).
    pub hooks: Vec<&'static str>,
    pub source: Option<String>,
    pub applied_at: Option<u64>,
    pub rules: Option<usize>,
    pub policy: Option<String>,
    /// Kept generations below the live one (rollback targets), ascending.
    pub previous: Vec<u64>,
    /// A `--confirm` waiting for `tailwall confirm` (always of the live generation).
    pub pending_confirm: Option<PendingConfirm>,
    /// The datapath's fail-closed counters (every reason but `policy`), packets.
    pub fail_closed: Vec<(String, u64)>,
    pub repaired: Vec<String>,
}

fn ifindex(iface: &str) -> Result<u32, IfaceError> {
    let unknown = || IfaceError::UnknownInterface {
        iface: iface.to_string(),
    };
    let c = std::ffi::CString::new(iface).map_err(|_| unknown())?;
    // SAFETY: if_nametoindex on a nul-terminated string.
    match unsafe { libc::if_nametoindex(c.as_ptr()) } {
        0 => Err(unknown()),
        i => Ok(i),
    }
}

/// An exclusive `flock` on the interface's lock file, released on drop.
struct Lock {
    _file: std::fs::File,
}

impl Lock {
    /// Lock the interface. `gc` removes idle lock files (holding the lock while it unlinks), so a
    /// lock taken on a file that is no longer at the path is retried on the current file.
    fn take(paths: &Paths, wait: bool) -> Result<Lock, IfaceError> {
        use std::os::unix::fs::MetadataExt as _;
        loop {
            let f = open_lock(&paths.lock)?;
            let op = if wait {
                libc::LOCK_EX
            } else {
                libc::LOCK_EX | libc::LOCK_NB
            };
            // SAFETY: flock on an fd owned by `f`.
            if unsafe { libc::flock(f.as_raw_fd(), op) } != 0 {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                    return Err(IfaceError::Busy {
                        iface: paths.iface.clone(),
                        lock: paths.lock.clone(),
                    });
                }
                return Err(file(&paths.lock)(e));
            }
            let held = f.metadata().map_err(file(&paths.lock))?.ino();
            match std::fs::symlink_metadata(&paths.lock) {
                Ok(m) if m.ino() == held => return Ok(Lock { _file: f }),
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(file(&paths.lock)(e)),
            }
        }
    }
}

/// Removes an interface's empty directories when dropped (declare it after the [`Lock`]: it runs
/// while the lock is still held). A failed first attach leaves nothing behind to be listed.
struct TidyOnDrop<'a>(&'a Paths);

impl Drop for TidyOnDrop<'_> {
    fn drop(&mut self) {
        tidy(self.0);
    }
}

/// Fault points of an apply, for the kill -9 tests: when the environment variable
/// `TAILWALL_FAULT_POINT` names one, the process kills itself with SIGKILL there. Only the tailwall
/// process itself can be affected.
pub const FAULT_POINTS: [&str; 6] = [
    "after-load",
    "after-fill",
    "after-pin",
    "after-xdp-flip",
    "after-flip",
    "after-state-write",
];

fn fault_point(name: &'static str) {
    if std::env::var_os("TAILWALL_FAULT_POINT").is_some_and(|v| v == name) {
        // SAFETY: raise has no preconditions; SIGKILL cannot be caught.
        unsafe {
            libc::raise(libc::SIGKILL);
        }
    }
}

/// Lock, reconcile, and fill in what a crash between the flip and the carry write left out.
fn open_iface(paths: &Paths, wait: bool) -> Result<(Lock, View), IfaceError> {
    paths.prepare()?;
    open_prepared(paths, wait)
}

/// As [`open_iface`] for commands that only read or remove: [`IfaceError::NotAttached`] when tailwall
/// never touched the interface in this namespace (nothing is created).
fn open_existing(paths: &Paths, wait: bool) -> Result<(Lock, View), IfaceError> {
    if std::fs::symlink_metadata(&paths.records).is_err()
        && std::fs::symlink_metadata(&paths.dir).is_err()
    {
        return Err(IfaceError::NotAttached {
            iface: paths.iface.clone(),
        });
    }
    open_iface(paths, wait)
}

fn open_prepared(paths: &Paths, wait: bool) -> Result<(Lock, View), IfaceError> {
    let lock = Lock::take(paths, wait)?;
    let mut view = reconcile(paths)?;
    let live_on = match (view.live, view.link) {
        (Some(n), LinkState::Live { ifindex, .. }) => Some((n, ifindex)),
        _ => None,
    };
    egress::settle(paths, live_on, &mut view.repaired)?;
    if let Some(n) = view.live {
        let Some(rec) = read_json::<State>(&paths.record(n))? else {
            view.repaired.push(format!(
                "found no record of generation {n}, which the kernel runs ({} deleted?): its rules, digest and source are unknown until the ruleset is applied again",
                paths.record(n).display()
            ));
            confirm::settle(paths, &mut view)?;
            return Ok((lock, view));
        };
        if let Some(m) = rec.carried_from {
            if !paths.carry(n).exists() && view.previous.contains(&m) {
                if let Some(from) = read_json::<State>(&paths.record(m))? {
                    counters::write_carry(paths, m, &from, &rec)?;
                    view.repaired
                        .push(format!("carried the counters of generation {m} into {n}"));
                }
            }
        }
    }
    confirm::settle(paths, &mut view)?;
    Ok((lock, view))
}

/// The record of generation `n`, which the kernel runs; [`IfaceError::RecordLost`] when it is gone.
fn live_record(paths: &Paths, n: u64) -> Result<State, IfaceError> {
    read_json(&paths.record(n))?.ok_or_else(|| IfaceError::RecordLost {
        iface: paths.iface.clone(),
        generation: n,
        path: paths.record(n),
    })
}

/// Pin the parts of `gen` that must outlive this process into `dir` (mode 0700); `egress`: its
/// `tw_egress` too (the generation enforces OUTPUT, [`egress::wants_egress`]).
fn pin_generation(gen: &mut Generation, dir: &Path, egress: bool) -> Result<(), IfaceError> {
    paths::safe_dir(dir)?;
    let pin_err = |path: std::path::PathBuf| {
        move |source| IfaceError::Pin {
            path,
            source: Box::new(source),
        }
    };
    let entry = dir.join(PIN_ENTRY);
    gen.xdp_mut(abi::PROG_ENTRY)?
        .pin(&entry)
        .map_err(pin_err(entry.clone()))?;
    if egress {
        let p = dir.join(egress::PIN_EGRESS);
        gen.tc_mut(abi::PROG_EGRESS)?
            .pin(&p)
            .map_err(pin_err(p.clone()))?;
    }
    for name in PINNED_MAPS {
        let p = dir.join(name);
        gen.map(name).pin(&p).map_err(pin_err(p.clone()))?;
    }
    Ok(())
}

/// Load `artifact` and make it the classifier of `iface` with the default options (keep
/// [`DEFAULT_KEEP`] generations, no source recorded). `wait`: block on the interface lock.
pub fn attach(
    iface: &str,
    artifact: &Artifact,
    mode: Mode,
    wait: bool,
) -> Result<AttachOutcome, IfaceError> {
    let mut o = ApplyOptions::new(mode);
    o.wait = wait;
    attach_with(iface, artifact, &o)
}

/// Load `artifact` and make it the classifier of `iface` (see the module docs for the guarantees).
pub fn attach_with(
    iface: &str,
    artifact: &Artifact,
    opts: &ApplyOptions,
) -> Result<AttachOutcome, IfaceError> {
    paths::require_caps("attaching a classifier")?;
    let paths = Paths::new(iface)?;
    let ifindex = ifindex(iface)?;
    paths::ensure_host_bpffs(iface)?;
    let mut t = Timings::default();
    let mut clock = std::time::Instant::now();
    let mut lap = |into: &mut u64| {
        *into = clock.elapsed().as_micros() as u64;
        clock = std::time::Instant::now();
    };
    let (_lock, view) = open_iface(&paths, opts.wait)?;
    let _tidy = TidyOnDrop(&paths);
    lap(&mut t.reconcile_us);
    // The live generation and its record (None: the record was lost; the kernel still runs it).
    let old: Option<(u64, Option<State>)> = match view.live {
        Some(n) => Some((n, read_json(&paths.record(n))?)),
        None => None,
    };
    let link_id = match view.link {
        LinkState::Live {
            link_id,
            ifindex: on,
            ..
        } => {
            if on != ifindex {
                return Err(IfaceError::Moved {
                    iface: iface.to_string(),
                    ifindex: on,
                });
            }
            Some(link_id)
        }
        _ => None,
    };
    // The live link's mode: from its record, else (record lost) from the kernel.
    let old_mode = match (&old, view.link) {
        (Some((_, Some(rec))), _) => Some(rec.mode),
        (Some((_, None)), LinkState::Live { ifindex: on, .. }) => reconcile::kernel_mode(on)
            .map_err(|source| IfaceError::Link {
                iface: iface.to_string(),
                op: "RTM_GETLINK (the xdp mode of a generation whose record is lost)",
                source,
            })?,
        _ => None,
    };
    if let (Some(attached), ModeRequest::Exact(m)) = (old_mode, opts.mode) {
        if attached != m {
            return Err(IfaceError::ModeChange {
                iface: iface.to_string(),
                attached,
                requested: m,
            });
        }
    }
    let mut repaired = view.repaired;
    if let Some((n, Some(rec))) = &old {
        // A generation pinned before OUTPUT was enforced has no egress program: build it again.
        let egress_ready = !egress::wants_egress(artifact) || egress::prog_id(&paths, *n).is_some();
        if rec.digest == artifact.digest && egress_ready {
            // `open_iface` made the egress link agree with generation n, or reported why it could
            // not: then "unchanged" would be a lie, so try again and fail with the kernel's reason.
            if !egress::agrees(&paths, ifindex, *n)? {
                egress::sync(&paths, ifindex, *n)?;
            }
            // The kernel runs this ruleset already; the record follows the latest apply's source.
            let mut source_was = None;
            if opts.source.path.is_some() && rec.source != opts.source.path
                || opts.source.text.is_some() && rec.source_text != opts.source.text
            {
                let mut rec = rec.clone();
                source_was = Some(rec.source.clone().unwrap_or_default());
                rec.source.clone_from(&opts.source.path);
                rec.source_text.clone_from(&opts.source.text);
                rec.source_format.clone_from(&opts.source.format);
                write_json(&paths.record(*n), &rec)?;
            }
            let egress_link_id = match egress::state(&paths)? {
                egress::EgressLink::Live { link_id, .. } => Some(link_id),
                _ => None,
            };
            return Ok(AttachOutcome {
                iface: iface.to_string(),
                generation: *n,
                digest: rec.digest.clone(),
                link_id: link_id.unwrap_or_default(),
                egress_link_id,
                output: egress::output_of(artifact),
                mode: rec.mode,
                unchanged: true,
                swapped: false,
                fallback: None,
                repaired,
                cancelled_confirm: None,
                source_was,
                timings: t,
            });
        }
    }
    if let Some((n, None)) = &old {
        repaired.push(format!(
            "generation {n}'s counters are not carried (its record is lost: its rules cannot be matched)"
        ));
    }

    // Build generation N completely; nothing live changes until the flip.
    let mut gen = Generation::load(artifact)?;
    // ct_state needs conntrack's hooks registered in this namespace (`crate::conntrack`).
    if artifact
        .stages
        .contains(&tailwall_compiler::ir::Field::CtState)
    {
        crate::conntrack::ensure_active().map_err(crate::LoadError::Conntrack)?;
    }
    t.load_us = gen.load_time().as_micros() as u64;
    fault_point("after-load");
    let n = paths.generations()?.last().copied().unwrap_or(0) + 1;
    let mode_guess = match (old_mode, opts.mode) {
        (Some(m), _) | (None, ModeRequest::Exact(m)) => m,
        (None, ModeRequest::Auto) => Mode::Native,
    };
    let mut rec = State::new(
        &paths,
        ifindex,
        mode_guess,
        n,
        artifact,
        &opts.source,
        old.as_ref().and_then(|(m, r)| r.as_ref().map(|_| *m)),
    );
    let built = (|| -> Result<(), IfaceError> {
        gen.self_test(artifact)?;
        fault_point("after-fill");
        lap(&mut t.build_us);
        // The record first: every pinned generation has one, whatever happens next.
        write_json(&paths.record(n), &rec)?;
        pin_generation(&mut gen, &paths.gen_dir(n), egress::wants_egress(artifact))?;
        fault_point("after-pin");
        lap(&mut t.pin_us);
        Ok(())
    })();
    if let Err(e) = built {
        let _ = paths.remove_generation(n);
        return Err(e);
    }

    // Flip.
    let flipped = match link_id {
        Some(_) => swap(&paths, &gen, old.as_ref().map(|(m, _)| *m)).map(|()| (false, None)),
        None => first_attach(&paths, &mut gen, ifindex, opts.mode).map(|(m, why)| {
            if m != rec.mode {
                rec.mode = m;
            }
            (true, why)
        }),
    };
    let (first, fallback) = match flipped {
        Ok(x) => x,
        Err(e) => {
            let _ = paths.remove_generation(n);
            if link_id.is_none() {
                remove_empty_dir(&paths.dir);
            }
            return Err(e);
        }
    };
    fault_point("after-xdp-flip");
    // The second link: OUTPUT at tcx egress. If it fails, the XDP flip is undone, so the interface
    // runs the old generation on both hooks (or, on a first attach, nothing of this apply).
    let egress_link_id = match egress::sync(&paths, ifindex, n) {
        Ok(l) => l,
        Err(e) => {
            let m = old.as_ref().map(|(m, _)| *m);
            let undone = match (first, m) {
                (true, _) => undo_first_attach(&paths).map(|()| {
                    "the XDP link was detached again: nothing of this apply is left".to_string()
                }),
                (false, Some(m)) => revert(&paths, ifindex, n, m).map(|()| {
                    format!("the XDP flip was undone: generation {m} runs on both links, as before")
                }),
                (false, None) => Err(IfaceError::NotAttached {
                    iface: iface.to_string(),
                }),
            };
            let after = match undone {
                Ok(after) => {
                    let _ = paths.remove_generation(n);
                    if first {
                        remove_empty_dir(&paths.dir);
                    }
                    after
                }
                Err(u) => format!(
                    "undoing the XDP flip failed too ({u}): the interface runs generation {n} at XDP; run `tailwall status {iface}`"
                ),
            };
            return Err(IfaceError::Egress {
                iface: iface.to_string(),
                after,
                source: Box::new(e),
            });
        }
    };
    fault_point("after-flip");
    // A confirmation pending for the generation just replaced can no longer be confirmed: cancel it
    // (its timer finds nothing pending and exits) and say so.
    let cancelled_confirm = read_json::<Pending>(&paths.confirm())?.map(|p| p.generation);
    confirm::clear(&paths)?;
    if first && fallback.is_some() {
        write_json(&paths.record(n), &rec)?;
    }
    let new_link = verify(&paths, ifindex, n)?;
    lap(&mut t.flip_us);

    // After the flip: carry the old generation's final counts, retire what is beyond `keep`.
    if let Some((m, Some(old_rec))) = &old {
        counters::rcu_grace_period();
        counters::write_carry(&paths, *m, old_rec, &rec)?;
    }
    fault_point("after-state-write");
    lap(&mut t.carry_us);
    let mut below: Vec<u64> = paths
        .generations()?
        .into_iter()
        .filter(|&g| g < n)
        .collect();
    let drop_count = below.len().saturating_sub(opts.keep as usize);
    for g in below.drain(..drop_count) {
        paths.remove_generation(g)?;
    }
    lap(&mut t.retire_us);
    Ok(AttachOutcome {
        iface: iface.to_string(),
        generation: n,
        digest: artifact.digest.clone(),
        link_id: new_link,
        egress_link_id,
        output: egress::output_of(artifact),
        mode: rec.mode,
        unchanged: false,
        swapped: !first,
        fallback,
        repaired,
        cancelled_confirm,
        source_was: None,
        timings: t,
    })
}

/// Undo a first attach whose egress link failed: detach and unpin the XDP link and any egress link.
fn undo_first_attach(paths: &Paths) -> Result<(), IfaceError> {
    egress::remove(paths)?;
    if let Some(fd) = open_link(paths)? {
        sys::link_detach(fd.as_fd()).map_err(|source| IfaceError::Link {
            iface: paths.iface.clone(),
            op: "BPF_LINK_DETACH",
            source,
        })?;
    }
    remove_file(&paths.link)
}

/// Point both links back from generation `new` to generation `old` (XDP with BPF_F_REPLACE on
/// `new`'s entry, then the egress link), verified: the undo of a swap whose second step failed.
fn revert(paths: &Paths, ifindex: u32, new: u64, old: u64) -> Result<(), IfaceError> {
    let link = open_link(paths)?.ok_or_else(|| IfaceError::NotAttached {
        iface: paths.iface.clone(),
    })?;
    let open = |n: u64| {
        sys::obj_get(&paths.gen_dir(n).join(PIN_ENTRY)).map_err(|source| IfaceError::Link {
            iface: paths.iface.clone(),
            op: "opening a generation's entry pin",
            source,
        })
    };
    let (to, from) = (open(old)?, open(new)?);
    sys::link_update(link.as_fd(), to.as_fd(), Some(from.as_fd())).map_err(|source| {
        IfaceError::Link {
            iface: paths.iface.clone(),
            op: "BPF_LINK_UPDATE",
            source,
        }
    })?;
    verify(paths, ifindex, old)?;
    egress::sync(paths, ifindex, old).map(|_| ())
}

/// A fresh handle of the pinned link must show generation `n`'s entry program on `ifindex`. Returns
/// the link id.
fn verify(paths: &Paths, ifindex: u32, n: u64) -> Result<u32, IfaceError> {
    let expected = entry_prog_id(paths, n).unwrap_or(0);
    match reconcile::link_state(paths)? {
        LinkState::Live {
            link_id,
            prog_id,
            ifindex: on,
        } if prog_id == expected && expected != 0 && on == ifindex => Ok(link_id),
        LinkState::Live { prog_id, .. } => Err(IfaceError::NotEnforcing {
            iface: paths.iface.clone(),
            expected,
            found: Some(prog_id),
        }),
        _ => Err(IfaceError::NotEnforcing {
            iface: paths.iface.clone(),
            expected,
            found: None,
        }),
    }
}

/// Point the pinned link at `gen`'s entry program with one BPF_LINK_UPDATE, only if it still runs
/// generation `old`'s entry (BPF_F_REPLACE).
fn swap(paths: &Paths, gen: &Generation, old: Option<u64>) -> Result<(), IfaceError> {
    let link = open_link(paths)?.ok_or_else(|| IfaceError::NotAttached {
        iface: paths.iface.clone(),
    })?;
    let old_fd = match old {
        Some(m) => Some(
            sys::obj_get(&paths.gen_dir(m).join(PIN_ENTRY)).map_err(|source| IfaceError::Link {
                iface: paths.iface.clone(),
                op: "opening the live generation's entry pin",
                source,
            })?,
        ),
        None => None,
    };
    sys::link_update(
        link.as_fd(),
        gen.entry_fd()?,
        old_fd.as_ref().map(|f| f.as_fd()),
    )
    .map_err(|source| IfaceError::Link {
        iface: paths.iface.clone(),
        op: "BPF_LINK_UPDATE",
        source,
    })
}

/// Why an attach failed, as a hint for the operator.
fn attach_hint(e: &aya::programs::ProgramError, mode: Mode) -> &'static str {
    let errno = match e {
        aya::programs::ProgramError::SyscallError(s) => s.io_error.raw_os_error(),
        _ => None,
    };
    match errno {
        Some(libc::EBUSY) | Some(libc::EEXIST) => {
            " (hint: another XDP program is attached to this interface: see `ip link show`; a tailwall link may remain under the interface's old name, see `tailwall status`)"
        }
        Some(libc::EOPNOTSUPP) | Some(libc::EINVAL) | Some(524) if mode == Mode::Native => {
            " (hint: the driver has no native XDP: use --mode generic, or --mode auto to fall back)"
        }
        Some(libc::EPERM) => " (hint: needs CAP_BPF and CAP_NET_ADMIN)",
        _ => "",
    }
}

/// Create the interface's link on `gen`'s entry program and pin it. Returns the mode used and, for
/// `--mode auto` falling back to generic, why native failed.
fn first_attach(
    paths: &Paths,
    gen: &mut Generation,
    ifindex: u32,
    mode: ModeRequest,
) -> Result<(Mode, Option<String>), IfaceError> {
    let iface = paths.iface.as_str();
    let try_mode = |gen: &mut Generation, m: Mode| -> Result<FdLink, IfaceError> {
        let entry = gen.xdp_mut(abi::PROG_ENTRY)?;
        let id = entry
            .attach_to_if_index(ifindex, m.xdp())
            .map_err(|e| IfaceError::Attach {
                iface: iface.to_string(),
                mode: m,
                hint: attach_hint(&e, m),
                source: Box::new(e),
            })?;
        let link: XdpLink = entry.take_link(id).map_err(prog_err(abi::PROG_ENTRY))?;
        // A netlink attachment (no bpf_link support) cannot be pinned or updated atomically: dropping
        // it detaches it again.
        FdLink::try_from(link).map_err(|_| IfaceError::NoBpfLink {
            iface: iface.to_string(),
        })
    };
    let (fd_link, used, why) = match mode {
        ModeRequest::Exact(m) => (try_mode(gen, m)?, m, None),
        ModeRequest::Auto => match try_mode(gen, Mode::Native) {
            Ok(l) => (l, Mode::Native, None),
            Err(IfaceError::Attach { source, .. }) => (
                try_mode(gen, Mode::Generic)?,
                Mode::Generic,
                Some(source.to_string()),
            ),
            Err(e) => return Err(e),
        },
    };
    // A pin of a defunct link was removed by `reconcile`.
    // If pinning fails the link fd is dropped here, which detaches the program again.
    fd_link.pin(&paths.link).map_err(|source| IfaceError::Pin {
        path: paths.link.clone(),
        source: Box::new(source),
    })?;
    Ok((used, why))
}

/// Return `iface` atomically to the newest kept generation below the live one (one BPF_LINK_UPDATE,
/// verified), and discard the live one. `only_if_live`: do nothing unless that generation is the
/// live one (a `--confirm` revert must not undo a later apply). Returns the generation now live.
pub fn rollback(iface: &str, only_if_live: Option<u64>) -> Result<u64, IfaceError> {
    paths::require_caps("rolling back")?;
    let paths = kept_paths(iface)?;
    paths::ensure_host_bpffs(iface)?;
    let (_lock, view) = open_existing(&paths, true)?;
    let live = view.live.ok_or_else(|| IfaceError::NotAttached {
        iface: iface.to_string(),
    })?;
    if only_if_live.is_some_and(|g| g != live) {
        return Ok(live);
    }
    rollback_locked(&paths, &view)
}

/// [`rollback`] of a locked, reconciled interface with a live generation.
fn rollback_locked(paths: &Paths, view: &View) -> Result<u64, IfaceError> {
    let iface = paths.iface.as_str();
    let (Some(live), LinkState::Live { ifindex, .. }) = (view.live, view.link) else {
        return Err(IfaceError::NotAttached {
            iface: iface.to_string(),
        });
    };
    let target = *view.previous.last().ok_or(IfaceError::NoPrevious {
        iface: iface.to_string(),
        kept: view.previous.len(),
    })?;
    let link = open_link(paths)?.ok_or_else(|| IfaceError::NotAttached {
        iface: iface.to_string(),
    })?;
    let open = |n: u64| {
        sys::obj_get(&paths.gen_dir(n).join(PIN_ENTRY)).map_err(|source| IfaceError::Link {
            iface: iface.to_string(),
            op: "opening a generation's entry pin",
            source,
        })
    };
    let (new, old) = (open(target)?, open(live)?);
    let (from, to) = (
        read_json::<State>(&paths.record(live))?,
        live_record(paths, target)?,
    );
    sys::link_update(link.as_fd(), new.as_fd(), Some(old.as_fd())).map_err(|source| {
        IfaceError::Link {
            iface: iface.to_string(),
            op: "BPF_LINK_UPDATE",
            source,
        }
    })?;
    verify(paths, ifindex, target)?;
    // The egress link follows; if it cannot, both links go back to the live generation.
    if let Err(e) = egress::sync(paths, ifindex, target) {
        let after = match revert(paths, ifindex, target, live) {
            Ok(()) => format!("rolled back nothing: generation {live} runs on both links, as before"),
            Err(u) => format!(
                "undoing the XDP flip failed too ({u}): the interface runs generation {target} at XDP; run `tailwall status {iface}`"
            ),
        };
        return Err(IfaceError::Egress {
            iface: iface.to_string(),
            after,
            source: Box::new(e),
        });
    }
    // The rolled-back generation's counts go to the target (rules by identity).
    counters::rcu_grace_period();
    // The target keeps its own totals and gains what the rolled-back generation's maps counted (its
    // carry came from the target: not counted twice).
    let mut carry = match &from {
        Some(from) => counters::carry_from(paths, live, from, &to, false)?,
        // The rolled-back generation's record is lost: its counts cannot follow their rules.
        None => Carry::default(),
    };
    let own: Carry = read_json(&paths.carry(target))?.unwrap_or_default();
    counters::add_into(&mut carry.rules, &own.rules);
    counters::add_into(&mut carry.reasons, &own.reasons);
    for (chain, [p, b]) in own.policies {
        let c = carry.policies.entry(chain).or_default();
        c[0] += p;
        c[1] += b;
    }
    write_json(&paths.carry(target), &carry)?;
    paths.remove_generation(live)?;
    confirm::clear(paths)?;
    Ok(target)
}

/// Arm a `--confirm`: generation `generation` of `iface` (the live one) reverts at `deadline`
/// (seconds since the Epoch) unless [`confirm`] comes first. `timer` is the command of the timer
/// process (the CLI's hidden `__confirm-timer`); it is started here and inherits the lock that tells
/// every later command whether it still runs. Returns the timer's pid.
pub fn arm_confirm(
    iface: &str,
    generation: u64,
    deadline: u64,
    timer: std::process::Command,
) -> Result<u32, IfaceError> {
    paths::require_caps("arming a --confirm")?;
    let paths = Paths::new(iface)?;
    let (_lock, view) = open_existing(&paths, true)?;
    if view.live != Some(generation) {
        return Err(IfaceError::NothingToConfirm {
            iface: iface.to_string(),
            why: format!(
                "generation {generation} is not live any more; live: {}",
                view.live
                    .map_or_else(|| "nothing".to_string(), |g| format!("generation {g}"))
            ),
        });
    }
    confirm::arm(&paths, generation, deadline, timer)
}

/// Keep the generation a `--confirm` applied. Returns the confirmed generation; errors with
/// [`IfaceError::NothingToConfirm`] when no confirmation waits for the live generation (none was
/// armed, a later apply replaced it, or its deadline passed and it was reverted — the message says
/// which).
pub fn confirm(iface: &str) -> Result<u64, IfaceError> {
    paths::require_caps("confirming")?;
    let paths = kept_paths(iface)?;
    let (_lock, view) = match open_existing(&paths, true) {
        Err(IfaceError::NotAttached { .. }) => {
            return Err(IfaceError::NothingToConfirm {
                iface: iface.to_string(),
                why: "tailwall filters nothing on it".into(),
            })
        }
        r => r?,
    };
    let Some(p) = read_json::<Pending>(&paths.confirm())? else {
        let mut why = vec![match view.live {
            Some(g) => format!("no --confirm pending; generation {g} is live"),
            None => "no --confirm pending; tailwall filters nothing on it".to_string(),
        }];
        why.extend(view.repaired.iter().cloned());
        return Err(IfaceError::NothingToConfirm {
            iface: iface.to_string(),
            why: why.join("; "),
        });
    };
    // `settle` dropped a confirmation of any generation but the live one.
    confirm::clear(&paths)?;
    Ok(p.generation)
}

/// The pending `--confirm` record of `iface`, if any, as written (not settled: the timer's view).
pub fn pending_confirm(iface: &str) -> Result<Option<Pending>, IfaceError> {
    let paths = Paths::new(iface)?;
    read_json(&paths.confirm())
}

/// Remove tailwall's classifier from `iface`: the link (which detaches the program), every
/// generation's pins and records. Works when the interface or its records are gone. Fails with
/// [`IfaceError::Busy`] while an attach holds the lock.
pub fn detach(iface: &str) -> Result<(), IfaceError> {
    paths::require_caps("detaching")?;
    let paths = kept_paths(iface)?;
    if std::fs::symlink_metadata(&paths.records).is_err()
        && std::fs::symlink_metadata(&paths.dir).is_err()
    {
        return Err(IfaceError::NotAttached {
            iface: iface.to_string(),
        });
    }
    paths.prepare()?;
    let _lock = Lock::take(&paths, false)?;
    let link = open_link(&paths)?;
    if link.is_none()
        && paths.generations()?.is_empty()
        && egress::state(&paths)? == egress::EgressLink::Absent
    {
        // Leftovers of a failed attach (empty directories, a stale confirmation): nothing to
        // detach, but nothing to list any more either.
        confirm::clear(&paths)?;
        tidy(&paths);
        return Err(IfaceError::NotAttached {
            iface: iface.to_string(),
        });
    }
    detach_locked(&paths)
}

/// Remove the empty directories of an interface tailwall keeps nothing for (a failed first attach,
/// a detach), so that no phantom entry is listed. Best effort: a non-empty directory stays.
fn tidy(paths: &Paths) {
    remove_empty_dir(&paths.records);
    remove_empty_dir(&paths.dir);
    remove_empty_dir(&paths.ns_pins);
}

/// [`detach`] of a locked interface.
fn detach_locked(paths: &Paths) -> Result<(), IfaceError> {
    let iface = paths.iface.as_str();
    egress::remove(paths)?;
    let link = open_link(paths)?;
    if let Some(fd) = &link {
        // Detach now (even if another process holds the link), then check from the kernel.
        let err = |op| {
            let iface = iface.to_string();
            move |source| IfaceError::Link { iface, op, source }
        };
        let info = sys::link_info(fd.as_fd()).map_err(err("BPF_OBJ_GET_INFO_BY_FD"))?;
        if info.xdp_ifindex != 0 {
            sys::link_detach(fd.as_fd()).map_err(err("BPF_LINK_DETACH"))?;
            let after = sys::link_info(fd.as_fd()).map_err(err("BPF_OBJ_GET_INFO_BY_FD"))?;
            if after.xdp_ifindex != 0 {
                return Err(err("BPF_LINK_DETACH")(std::io::Error::other(
                    "the link is still on its device",
                )));
            }
        }
    }
    remove_file(&paths.link)?;
    for n in paths.generations()? {
        paths.remove_generation(n)?;
    }
    confirm::clear(paths)?;
    remove_all(&paths.dir)?;
    tidy(paths);
    Ok(())
}

/// Interfaces of the calling thread's namespace that have tailwall pins or records.
/// Empty directories (what an older tailwall's failed attach left) are not listed.
pub fn interfaces() -> Result<Vec<String>, IfaceError> {
    paths::require_caps("listing the filtered interfaces")?;
    let p = Paths::in_netns("x", netns_key()?);
    let mut out = paths::list_dir(&p.ns_pins)?;
    for name in paths::list_dir(&p.ns_run)? {
        if !name.ends_with(".lock") && !out.contains(&name) {
            out.push(name);
        }
    }
    out.retain(|n| paths::valid_iface(n) && keeps_anything(&Paths::in_netns(n, p.netns.clone())));
    out.sort();
    Ok(out)
}

/// Does tailwall keep anything (pins, records) under this interface name?
fn keeps_anything(p: &Paths) -> bool {
    [&p.dir, &p.records]
        .iter()
        .any(|d| std::fs::read_dir(d).is_ok_and(|mut e| e.next().is_some()))
}

/// The paths tailwall keeps `iface`'s classifier under: `iface`'s own, or — for a renamed device
/// (tailwall keeps nothing under its new name, and the link of another name is on it) — those of the
/// name it was attached by. Call after [`paths::require_caps`].
fn kept_paths(iface: &str) -> Result<Paths, IfaceError> {
    let own = Paths::new(iface)?;
    if keeps_anything(&own) {
        return Ok(own);
    }
    let Ok(idx) = ifindex(iface) else {
        return Ok(own);
    };
    for other in interfaces()? {
        let p = Paths::in_netns(&other, own.netns.clone());
        if other != iface
            && matches!(reconcile::link_state(&p)?, LinkState::Live { ifindex: on, .. } if on == idx)
        {
            return Ok(p);
        }
    }
    Ok(own)
}

/// The name of device `ifindex` in the calling thread's namespace (None: no such device).
fn ifname(ifindex: u32) -> Option<String> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: if_indextoname writes at most IF_NAMESIZE bytes (nul included) into `buf`.
    let p = unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: on success `buf` holds a nul-terminated name.
    let c = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
    c.to_str().ok().map(str::to_string)
}

/// Detach every interface of the calling thread's namespace. Returns the interfaces detached.
pub fn detach_all() -> Result<Vec<String>, IfaceError> {
    let mut done = Vec::new();
    for iface in interfaces()? {
        match detach(&iface) {
            Ok(()) => done.push(iface),
            Err(IfaceError::NotAttached { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Remove what tailwall left for links no longer on any device, in every network namespace: pins of an
/// interface whose link is defunct (the kernel reports no device: the interface or its whole namespace
/// was deleted) or absent, with its records. An interface whose lock is held is skipped. Returns
/// `<netns>/<iface>` of each interface cleaned.
pub fn gc() -> Result<Vec<String>, IfaceError> {
    paths::require_caps("collecting stale pins")?;
    let mut cleaned = Vec::new();
    for ns in paths::list_dir(Path::new(paths::PIN_ROOT))? {
        let ns_pins = Path::new(paths::PIN_ROOT).join(&ns);
        for name in paths::list_dir(&ns_pins)? {
            if !paths::valid_iface(&name) {
                continue;
            }
            let p = Paths::in_netns(&name, ns.clone());
            if std::fs::symlink_metadata(&p.ns_run).is_ok() {
                paths::safe_dir(&p.ns_run)?;
            } else {
                paths::safe_dir(Path::new(paths::RUN_ROOT))?;
                paths::safe_dir(&p.ns_run)?;
            }
            let _lock = match Lock::take(&p, false) {
                Ok(l) => l,
                Err(IfaceError::Busy { .. }) => continue,
                Err(e) => return Err(e),
            };
            if matches!(reconcile::link_state(&p)?, LinkState::Live { .. }) {
                continue;
            }
            egress::remove(&p)?;
            remove_file(&p.link)?;
            for n in p.generations()? {
                p.remove_generation(n)?;
            }
            confirm::clear(&p)?;
            remove_all(&p.dir)?;
            remove_empty_dir(&p.records);
            cleaned.push(format!("{ns}/{name}"));
        }
        remove_empty_dir(&ns_pins);
        remove_empty_dir(&Path::new(paths::RUN_ROOT).join(&ns));
    }
    // Lock files (and empty record directories) of interfaces tailwall keeps nothing for: those of
    // deleted namespaces would stay forever (and namespace inodes are reused).
    for ns in paths::list_dir(Path::new(paths::RUN_ROOT))? {
        let ns_run = Path::new(paths::RUN_ROOT).join(&ns);
        paths::safe_dir(&ns_run)?;
        for name in paths::list_dir(&ns_run)? {
            let Some(iface) = name.strip_suffix(".lock") else {
                continue;
            };
            let p = Paths::in_netns(iface, ns.clone());
            let kept = |d: &Path| std::fs::read_dir(d).is_ok_and(|mut e| e.next().is_some());
            if !paths::valid_iface(iface) || kept(&p.records) || p.dir.exists() {
                continue;
            }
            let _lock = match Lock::take(&p, false) {
                Ok(l) => l,
                Err(IfaceError::Busy { .. }) => continue,
                Err(e) => return Err(e),
            };
            remove_empty_dir(&p.records);
            remove_file(&p.lock)?;
        }
        remove_empty_dir(&ns_run);
    }
    Ok(cleaned)
}

/// The record of the generation the kernel shows live on `iface`.
pub fn state(iface: &str) -> Result<State, IfaceError> {
    paths::require_caps("reading the live ruleset")?;
    let paths = kept_paths(iface)?;
    let (_lock, view) = open_existing(&paths, true)?;
    let n = view.live.ok_or_else(|| IfaceError::NotAttached {
        iface: iface.to_string(),
    })?;
    live_record(&paths, n)
}

/// The live generation's record on `iface` and one of its pinned maps (`tw_log`, `tw_log_lost`,
/// `tw_monitor`: `tailwall log` and `tailwall monitor`).
///
/// # Errors
/// As [`state`]; [`IfaceError::File`] when the generation has no such pin (built before the map
/// existed: apply the ruleset again).
pub fn live_map(iface: &str, name: &str) -> Result<(State, aya::maps::Map), IfaceError> {
    let rec = state(iface)?;
    let paths = kept_paths(iface)?;
    let path = paths.gen_dir(rec.generation).join(name);
    let map = crate::logring::open_pinned(&path).map_err(|e| IfaceError::File {
        path: path.clone(),
        source: std::io::Error::other(format!(
            "{e} (generation {} has no pinned `{name}`: apply the ruleset again)",
            rec.generation
        )),
    })?;
    Ok((rec, map))
}

/// What is attached to `iface`, confirmed by the kernel, after repairing leftovers.
///
/// `iface` may also be the new name of a renamed device whose tailwall link was made under its old
/// name: the status of that link is returned (its `iface` is the old name, `device` the new one).
/// Errors: [`IfaceError::UnknownInterface`] when there is no such device and tailwall keeps nothing
/// under that name; [`IfaceError::NotAttached`] when the device exists and tailwall never filtered it.
pub fn status(iface: &str) -> Result<Status, IfaceError> {
    paths::require_caps("reading the classifier's status")?;
    let ifindex = ifindex(iface).ok();
    let own = status_of(iface, ifindex);
    if own.as_ref().is_ok_and(|s| s.attached) {
        return own;
    }
    if let (Some(idx), Ok(_) | Err(IfaceError::NotAttached { .. })) = (ifindex, &own) {
        // A renamed device: its link is kept under the name it was attached by.
        for other in interfaces()? {
            if other == iface {
                continue;
            }
            let p = Paths::in_netns(&other, netns_key()?);
            if matches!(reconcile::link_state(&p)?, LinkState::Live { ifindex: on, .. } if on == idx)
            {
                return status_of(&other, None);
            }
        }
    }
    match own {
        Err(IfaceError::NotAttached { .. }) if ifindex.is_none() => {
            Err(IfaceError::UnknownInterface {
                iface: iface.to_string(),
            })
        }
        r => r,
    }
}

fn status_of(iface: &str, ifindex: Option<u32>) -> Result<Status, IfaceError> {
    let paths = Paths::new(iface)?;
    let (_lock, view) = open_existing(&paths, true)?;
    if view.live.is_none() && view.link == LinkState::Absent && paths.generations()?.is_empty() {
        tidy(&paths);
    }
    let mut st = Status {
        iface: iface.to_string(),
        device: None,
        record_lost: false,
        ifindex,
        netns: paths.netns.clone(),
        attached: view.live.is_some(),
        generation: view.live,
        digest: None,
        mode: None,
        link_id: None,
        prog_id: None,
        egress_link_id: None,
        egress_prog_id: None,
        hooks: Vec::new(),
        source: None,
        applied_at: None,
        rules: None,
        policy: None,
        previous: view.previous.clone(),
        pending_confirm: confirm::pending(&paths)?,
        fail_closed: Vec::new(),
        repaired: view.repaired.clone(),
    };
    if let LinkState::Live {
        link_id,
        prog_id,
        ifindex: on,
    } = view.link
    {
        st.link_id = Some(link_id);
        st.prog_id = Some(prog_id);
        st.ifindex = Some(on);
        st.device = ifname(on).filter(|d| d != iface);
    }
    if let Some(n) = view.live {
        st.hooks = vec!["xdp (filter INPUT, FORWARD)"];
        if let egress::EgressLink::Live {
            link_id, prog_id, ..
        } = egress::state(&paths)?
        {
            st.egress_link_id = Some(link_id);
            st.egress_prog_id = Some(prog_id);
        }
        if let LinkState::Live { ifindex: on, .. } = view.link {
            match (egress::prog_id(&paths, n), egress::agrees(&paths, on, n)?) {
                (Some(_), true) => st.hooks.push("tcx egress (filter OUTPUT)"),
                (Some(_), false) => st.hooks.push(
                    "tcx egress: NOT running this generation: OUTPUT is not filtered (apply again)",
                ),
                (None, _) => {}
            }
        }
        let rec = read_json::<State>(&paths.record(n))?;
        let reasons = counters::totals(&paths, n, rec.as_ref())?.reasons;
        match rec {
            Some(rec) => {
                st.digest = Some(rec.digest);
                st.mode = Some(rec.mode);
                st.source = rec.source;
                st.applied_at = Some(rec.applied_at);
                st.rules = Some(rec.rules.len());
                st.policy = Some(rec.policy);
            }
            None => {
                st.record_lost = true;
                st.mode = match view.link {
                    LinkState::Live { ifindex: on, .. } => {
                        reconcile::kernel_mode(on).ok().flatten()
                    }
                    _ => None,
                };
            }
        }
        st.fail_closed = reasons
            .iter()
            .enumerate()
            .filter(|(i, _)| *i as u32 != abi::REASON_POLICY)
            .map(|(i, c)| (reason_name(i as u32).to_string(), c.packets))
            .collect();
    }
    Ok(st)
}

/// Per-rule and per-reason counters of the generation the kernel shows live on `iface` (carried
/// counts included), summed over CPUs.
pub fn stats(iface: &str) -> Result<Stats, IfaceError> {
    paths::require_caps("reading counters")?;
    let paths = kept_paths(iface)?;
    let (_lock, view) = open_existing(&paths, true)?;
    let n = view.live.ok_or_else(|| IfaceError::NotAttached {
        iface: iface.to_string(),
    })?;
    let s = live_record(&paths, n)?;
    let link_id = match view.link {
        LinkState::Live { link_id, .. } => link_id,
        _ => 0,
    };
    let counters::Totals {
        rules: rule_cnt,
        reasons: reason_cnt,
        policies,
    } = counters::totals(&paths, n, Some(&s))?;
    let rules = s
        .rules
        .iter()
        .map(|r| {
            let c = rule_cnt.get(r.index as usize).copied().unwrap_or_default();
            RuleStats {
                rule: r.clone(),
                packets: c.packets,
                bytes: c.bytes,
            }
        })
        .collect();
    let reasons = reason_cnt
        .iter()
        .enumerate()
        .map(|(i, c)| ReasonStats {
            slot: i as u32,
            name: reason_name(i as u32),
            packets: c.packets,
            bytes: c.bytes,
        })
        .collect();
    Ok(Stats {
        iface: s.iface,
        generation: s.generation,
        digest: s.digest,
        link_id,
        mode: s.mode,
        policy: s.policy,
        rules,
        reasons,
        policies: policies
            .into_iter()
            .map(|(chain, c)| {
                let c = PolicyStats {
                    packets: c.packets,
                    bytes: c.bytes,
                };
                (chain, c)
            })
            .collect(),
    })
}

/// Zero every counter of the live generation of `iface` (like `iptables -Z`); packets counted while
/// zeroing may be lost, as with iptables.
pub fn zero(iface: &str) -> Result<(), IfaceError> {
    paths::require_caps("zeroing counters")?;
    let paths = kept_paths(iface)?;
    let (_lock, view) = open_existing(&paths, true)?;
    let n = view.live.ok_or_else(|| IfaceError::NotAttached {
        iface: iface.to_string(),
    })?;
    write_json(&paths.carry(n), &Carry::default())?;
    counters::zero_map(&paths, n, abi::MAP_RULE_CNT)?;
    counters::zero_map(&paths, n, abi::MAP_REASONS)
}

/// Move the calling thread into the network namespace `/run/netns/<name>` (as `ip netns exec` does,
/// without remounting /sys). Call it before any other thread is started.
pub fn enter_netns(name: &str) -> Result<(), IfaceError> {
    let err = |source| IfaceError::Netns {
        name: name.to_string(),
        source,
    };
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return Err(err(std::io::Error::from(std::io::ErrorKind::InvalidInput)));
    }
    let f = std::fs::File::open(Path::new("/run/netns").join(name)).map_err(err)?;
    // SAFETY: setns on an fd owned by `f`.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EPERM) {
            // setns(2) needs CAP_SYS_ADMIN.
            return Err(IfaceError::Privilege {
                op: "entering a network namespace (--netns)",
            });
        }
        return Err(err(e));
    }
    Ok(())
}
