//! Attaching a generation to an interface, swapping it atomically, reading its counters, detaching.
//!
//! Layout (per network namespace, keyed by the inode of the calling thread's `ns/net`):
//! - `/sys/fs/bpf/tailwall/<netns>/<iface>/link`: the pinned XDP bpf_link (one per interface, ever);
//! - `/sys/fs/bpf/tailwall/<netns>/<iface>/gen-N/`: the pins that keep generation N alive and readable:
//!   `entry` (program), `tw_progs` (a prog array is emptied when its last user reference goes),
//!   `tw_rule_cnt`, `tw_reasons`;
//! - `/run/tailwall/<netns>/<iface>.json`: the state (generation, digest, rules, pins), written to a
//!   temporary file and renamed; `/run/tailwall/<netns>/<iface>.lock`: the per-interface `flock`.
//!
//! Guarantees of [`attach`]: generation N is loaded (verifier), filled, self-tested against `sim` on probe
//! frames (their counts are then zeroed) and pinned before anything live changes; the interface is then flipped with one `BPF_LINK_UPDATE` on the existing link (the first
//! attach creates and pins the link), so packets see either the old or the new classifier, never none
//! and never a mix; other generations are unpinned only after the flip. Per-rule counters follow their
//! rule across a swap by the rule's identity (packets counted on the old generation between the copy
//! and the flip are lost). The same digest re-applied is a no-op. A failure before the flip leaves the
//! interface as it was.
use std::{
    fs,
    io::Write as _,
    os::fd::AsRawFd,
    path::{Path, PathBuf},
};

use aya::{
    maps::{Map, MapData, PerCpuArray, PerCpuValues},
    programs::{links::FdLink, links::PinnedLink, xdp::XdpLink, XdpMode},
};
use serde::{Deserialize, Serialize};
use tailwall_abi as abi;
use tailwall_compiler::artifact::Artifact;

use crate::{
    error::{file, map_err, prog_err, sys, LoadError},
    generation::{read_counters, Generation},
};

const BPFFS: &str = "/sys/fs/bpf";
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;
const STATE_ROOT: &str = "/run/tailwall";
const STATE_SCHEMA: u32 = 1;
/// Pins of one generation (file names inside `gen-N/`).
const PIN_ENTRY: &str = "entry";
const PINNED_MAPS: [&str; 3] = [abi::MAP_PROGS, abi::MAP_RULE_CNT, abi::MAP_REASONS];

/// XDP attach mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// In the driver (`XDP_FLAGS_DRV_MODE`); fails on drivers without XDP support.
    Native,
    /// In the stack (`XDP_FLAGS_SKB_MODE`); works everywhere, slower.
    Generic,
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Native => "native",
            Mode::Generic => "generic",
        })
    }
}

impl Mode {
    fn xdp(self) -> XdpMode {
        match self {
            Mode::Native => XdpMode::Driver,
            Mode::Generic => XdpMode::Skb,
        }
    }
}

/// One rule as recorded in the state file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateRule {
    /// Global rule index (bit, counter slot).
    pub index: u32,
    pub chain: String,
    /// 1-based position in its chain.
    pub position: u32,
    /// `accept` or `drop`.
    pub verdict: String,
    pub text: String,
    pub comment: Option<String>,
    pub identity: String,
}

/// The state file of one interface.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub schema_version: u32,
    pub iface: String,
    pub ifindex: u32,
    /// Inode of the network namespace.
    pub netns: String,
    pub mode: Mode,
    pub generation: u64,
    pub digest: String,
    /// Kernel id of the XDP link (unchanged across swaps).
    pub link_id: u32,
    pub link_pin: PathBuf,
    pub generation_dir: PathBuf,
    /// `accept` or `drop`.
    pub policy: String,
    pub rules: Vec<StateRule>,
}

/// What [`attach`] did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AttachOutcome {
    pub iface: String,
    pub generation: u64,
    pub digest: String,
    pub link_id: u32,
    pub mode: Mode,
    /// `true` when the interface already ran this digest and nothing was changed.
    pub unchanged: bool,
    /// `true` when an existing link was updated (a swap), `false` on the first attach.
    pub swapped: bool,
}

impl std::fmt::Display for AttachOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = if self.unchanged {
            "unchanged (same ruleset already attached)"
        } else if self.swapped {
            "swapped atomically"
        } else {
            "attached"
        };
        write!(
            f,
            "{}: {what}, generation {}, xdp link {} ({} mode)",
            self.iface, self.generation, self.link_id, self.mode
        )
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
}

/// Name of a `tw_reasons` slot.
pub fn reason_name(slot: u32) -> &'static str {
    match slot {
        abi::REASON_POLICY => "policy",
        abi::REASON_NOT_IPV4 => "not_ipv4",
        abi::REASON_MALFORMED => "malformed",
        abi::REASON_TAIL_CALL => "tail_call",
        abi::REASON_BOUND => "bound",
        abi::REASON_HOTDROP => "hotdrop",
        abi::REASON_MAP => "map",
        _ => "unknown",
    }
}

// ---------------------------------------------------------------------------------------------------
// Paths, bpffs, lock, state.

/// Key of the calling thread's network namespace: the inode of `/proc/thread-self/ns/net`.
pub fn netns_key() -> Result<String, LoadError> {
    use std::os::unix::fs::MetadataExt as _;
    let p = "/proc/thread-self/ns/net";
    Ok(fs::metadata(p).map_err(file(p))?.ino().to_string())
}

struct Paths {
    iface: String,
    dir: PathBuf,
    link: PathBuf,
    state: PathBuf,
    lock: PathBuf,
    netns: String,
}

impl Paths {
    fn new(iface: &str) -> Result<Paths, LoadError> {
        if iface.is_empty() || iface.len() > 15 || iface.contains('/') || iface.starts_with('.') {
            return Err(LoadError::UnknownInterface(iface.to_string()));
        }
        let netns = netns_key()?;
        let dir = Path::new(BPFFS).join("tailwall").join(&netns).join(iface);
        let run = Path::new(STATE_ROOT).join(&netns);
        Ok(Paths {
            iface: iface.to_string(),
            link: dir.join("link"),
            dir,
            state: run.join(format!("{iface}.json")),
            lock: run.join(format!("{iface}.lock")),
            netns,
        })
    }

    fn generation_dir(&self, n: u64) -> PathBuf {
        self.dir.join(format!("gen-{n}"))
    }

    /// Generation numbers that have a directory under the interface's pin directory.
    fn generations(&self) -> Result<Vec<u64>, LoadError> {
        let mut out = Vec::new();
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(file(&self.dir)(e)),
        };
        for e in entries {
            let e = e.map_err(file(&self.dir))?;
            if let Some(n) = e
                .file_name()
                .to_str()
                .and_then(|s| s.strip_prefix("gen-"))
                .and_then(|s| s.parse().ok())
            {
                out.push(n);
            }
        }
        out.sort_unstable();
        Ok(out)
    }
}

/// Mount bpffs at /sys/fs/bpf unless it already is one.
fn ensure_bpffs() -> Result<(), LoadError> {
    let c = std::ffi::CString::new(BPFFS).expect("no nul");
    // SAFETY: statfs on a nul-terminated path into a zeroed struct owned by this frame.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } == 0 && st.f_type as i64 == BPF_FS_MAGIC {
        return Ok(());
    }
    fs::create_dir_all(BPFFS).map_err(file(BPFFS))?;
    let fstype = std::ffi::CString::new("bpf").expect("no nul");
    // SAFETY: mount(2) with nul-terminated strings that outlive the call and no data.
    if unsafe {
        libc::mount(
            fstype.as_ptr(),
            c.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    } != 0
    {
        return Err(sys("mount bpffs at /sys/fs/bpf")(
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// An exclusive `flock` on the interface's lock file, released on drop.
struct Lock {
    _file: fs::File,
}

impl Lock {
    fn take(paths: &Paths, wait: bool) -> Result<Lock, LoadError> {
        let dir = paths.lock.parent().expect("lock has a parent");
        fs::create_dir_all(dir).map_err(file(dir))?;
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&paths.lock)
            .map_err(file(&paths.lock))?;
        let op = if wait {
            libc::LOCK_EX
        } else {
            libc::LOCK_EX | libc::LOCK_NB
        };
        // SAFETY: flock on an fd owned by `f`.
        if unsafe { libc::flock(f.as_raw_fd(), op) } != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return Err(LoadError::Busy {
                    iface: paths.iface.clone(),
                    path: paths.lock.clone(),
                });
            }
            return Err(file(&paths.lock)(e));
        }
        Ok(Lock { _file: f })
    }
}

fn read_state(paths: &Paths) -> Result<Option<State>, LoadError> {
    match fs::read(&paths.state) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|source| LoadError::State {
                path: paths.state.clone(),
                source,
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(file(&paths.state)(e)),
    }
}

fn write_state(paths: &Paths, state: &State) -> Result<(), LoadError> {
    let tmp = paths.state.with_extension("json.tmp");
    let body = serde_json::to_vec_pretty(state).expect("state serialises");
    let mut f = fs::File::create(&tmp).map_err(file(&tmp))?;
    f.write_all(&body)
        .and_then(|()| f.sync_all())
        .map_err(file(&tmp))?;
    fs::rename(&tmp, &paths.state).map_err(file(&paths.state))
}

fn remove_generation_dir(dir: &Path) -> Result<(), LoadError> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(file(dir)(e)),
    }
}

fn pin_err(path: &Path) -> impl FnOnce(aya::pin::PinError) -> LoadError + '_ {
    move |source| LoadError::Pin {
        path: path.to_path_buf(),
        source: Box::new(source),
    }
}

fn link_err(
    iface: &str,
) -> impl FnOnce(Box<dyn std::error::Error + Send + Sync>) -> LoadError + '_ {
    move |source| LoadError::Link {
        iface: iface.to_string(),
        source,
    }
}

fn ifindex(iface: &str) -> Result<u32, LoadError> {
    let c = std::ffi::CString::new(iface)
        .map_err(|_| LoadError::UnknownInterface(iface.to_string()))?;
    // SAFETY: if_nametoindex on a nul-terminated string.
    match unsafe { libc::if_nametoindex(c.as_ptr()) } {
        0 => Err(LoadError::UnknownInterface(iface.to_string())),
        i => Ok(i),
    }
}

// ---------------------------------------------------------------------------------------------------
// Operations.

/// Pin the parts of `gen` that must outlive this process into `dir`.
fn pin_generation(gen: &mut Generation, dir: &Path) -> Result<(), LoadError> {
    fs::create_dir_all(dir).map_err(file(dir))?;
    let entry = dir.join(PIN_ENTRY);
    gen.xdp_mut(abi::PROG_ENTRY)?
        .pin(&entry)
        .map_err(pin_err(&entry))?;
    for name in PINNED_MAPS {
        let p = dir.join(name);
        gen.map(name).pin(&p).map_err(pin_err(&p))?;
    }
    Ok(())
}

fn open_pinned_map(dir: &Path, name: &'static str) -> Result<Map, LoadError> {
    let data = MapData::from_pin(dir.join(name)).map_err(map_err(name))?;
    Map::from_map_data(data).map_err(map_err(name))
}

/// Copy per-CPU counters of the previous generation into `gen`: rules by identity, reasons by slot.
fn carry_counters(gen: &mut Generation, art: &Artifact, old: &State) -> Result<(), LoadError> {
    let old_rules = open_pinned_map(&old.generation_dir, abi::MAP_RULE_CNT)?;
    let old_reasons = open_pinned_map(&old.generation_dir, abi::MAP_REASONS)?;
    let copy = |from: &Map,
                to: &mut Map,
                name: &'static str,
                pairs: &[(u32, u32)]|
     -> Result<(), LoadError> {
        let from: PerCpuArray<&MapData, abi::Counter> =
            PerCpuArray::try_from(from).map_err(map_err(name))?;
        let mut to: PerCpuArray<&mut MapData, abi::Counter> =
            PerCpuArray::try_from(to).map_err(map_err(name))?;
        for &(i, j) in pairs {
            let values: Vec<abi::Counter> = from
                .get(&i, 0)
                .map_err(map_err(name))?
                .iter()
                .copied()
                .collect();
            let values = PerCpuValues::try_from(values).map_err(sys("per-cpu counter copy"))?;
            to.set(j, values, 0).map_err(map_err(name))?;
        }
        Ok(())
    };
    let mut pairs = Vec::new();
    for r in &art.rules {
        if let Some(o) = old.rules.iter().find(|o| o.identity == r.identity) {
            if !pairs.iter().any(|&(i, _)| i == o.index) {
                pairs.push((o.index, r.index));
            }
        }
    }
    copy(
        &old_rules,
        gen.map_mut(abi::MAP_RULE_CNT),
        abi::MAP_RULE_CNT,
        &pairs,
    )?;
    let slots: Vec<(u32, u32)> = (0..abi::REASON_SLOTS).map(|s| (s, s)).collect();
    copy(
        &old_reasons,
        gen.map_mut(abi::MAP_REASONS),
        abi::MAP_REASONS,
        &slots,
    )
}

/// Load `artifact` and make it the classifier of `iface` (see the module docs). `wait`: block on the
/// interface lock instead of failing with [`LoadError::Busy`].
pub fn attach(
    iface: &str,
    artifact: &Artifact,
    mode: Mode,
    wait: bool,
) -> Result<AttachOutcome, LoadError> {
    let paths = Paths::new(iface)?;
    let ifindex = ifindex(iface)?;
    ensure_bpffs()?;
    let _lock = Lock::take(&paths, wait)?;
    let old = read_state(&paths)?.filter(|s| paths.link.exists() && s.ifindex == ifindex);
    if let Some(s) = &old {
        if s.digest == artifact.digest {
            return Ok(AttachOutcome {
                iface: iface.to_string(),
                generation: s.generation,
                digest: s.digest.clone(),
                link_id: s.link_id,
                mode: s.mode,
                unchanged: true,
                swapped: false,
            });
        }
        if s.mode != mode {
            return Err(LoadError::ModeChange {
                iface: iface.to_string(),
                attached: s.mode,
                requested: mode,
            });
        }
    }

    // Build generation N completely; nothing live changes until the flip.
    let mut gen = Generation::load(artifact)?;
    let n = paths
        .generations()?
        .last()
        .copied()
        .unwrap_or(0)
        .max(old.as_ref().map_or(0, |s| s.generation))
        + 1;
    let gen_dir = paths.generation_dir(n);
    let built = (|| {
        gen.self_test(artifact)?;
        if let Some(s) = &old {
            carry_counters(&mut gen, artifact, s)?;
        }
        pin_generation(&mut gen, &gen_dir)
    })();
    if let Err(e) = built {
        let _ = remove_generation_dir(&gen_dir);
        return Err(e);
    }

    // Flip.
    let flipped = flip(&paths, &mut gen, ifindex, mode, old.is_some());
    let (link_id, swapped) = match flipped {
        Ok(x) => x,
        Err(e) => {
            let _ = remove_generation_dir(&gen_dir);
            return Err(e);
        }
    };

    let state = State {
        schema_version: STATE_SCHEMA,
        iface: iface.to_string(),
        ifindex,
        netns: paths.netns.clone(),
        mode,
        generation: n,
        digest: artifact.digest.clone(),
        link_id,
        link_pin: paths.link.clone(),
        generation_dir: gen_dir.clone(),
        policy: if artifact.globals.policy == abi::ACTION_ACCEPT {
            "accept"
        } else {
            "drop"
        }
        .to_string(),
        rules: artifact
            .rules
            .iter()
            .map(|r| StateRule {
                index: r.index,
                chain: r.chain.clone(),
                position: r.position,
                verdict: r.verdict.as_str().to_string(),
                text: r.text.clone(),
                comment: r.comment.clone(),
                identity: r.identity.clone(),
            })
            .collect(),
    };
    write_state(&paths, &state)?;
    // Retire every other generation: the link no longer runs them.
    for m in paths.generations()? {
        if m != n {
            remove_generation_dir(&paths.generation_dir(m))?;
        }
    }
    Ok(AttachOutcome {
        iface: iface.to_string(),
        generation: n,
        digest: artifact.digest.clone(),
        link_id,
        mode,
        unchanged: false,
        swapped,
    })
}

/// Point the interface at `gen`'s entry program: update the pinned link, or create and pin it.
/// Returns (link id, whether an existing link was updated).
fn flip(
    paths: &Paths,
    gen: &mut Generation,
    ifindex: u32,
    mode: Mode,
    has_link: bool,
) -> Result<(u32, bool), LoadError> {
    let iface = paths.iface.as_str();
    let entry = gen.xdp_mut(abi::PROG_ENTRY)?;
    if has_link {
        let pinned = PinnedLink::from_pin(&paths.link).map_err(|e| link_err(iface)(e.into()))?;
        let fd_link: FdLink = pinned.into();
        let link_id = fd_link.info().map_err(|e| link_err(iface)(e.into()))?.id();
        let xdp_link = XdpLink::try_from(fd_link).map_err(|e| link_err(iface)(e.into()))?;
        // One BPF_LINK_UPDATE: the atomic flip.
        let id = entry
            .attach_to_link(xdp_link)
            .map_err(prog_err(abi::PROG_ENTRY))?;
        // Closing our fd of the link leaves it attached: it is pinned.
        drop(entry.take_link(id).map_err(prog_err(abi::PROG_ENTRY))?);
        return Ok((link_id, true));
    }
    let id = entry
        .attach_to_if_index(ifindex, mode.xdp())
        .map_err(prog_err(abi::PROG_ENTRY))?;
    let link = entry.take_link(id).map_err(prog_err(abi::PROG_ENTRY))?;
    // A netlink attachment (no bpf_link support) cannot be pinned or updated atomically: undo it.
    let fd_link = FdLink::try_from(link).map_err(|e| {
        link_err(iface)(
            format!(
                "the kernel attached without a bpf_link ({e}); tailwall needs xdp bpf_link support"
            )
            .into(),
        )
    })?;
    let link_id = fd_link.info().map_err(|e| link_err(iface)(e.into()))?.id();
    if let Some(parent) = paths.link.parent() {
        fs::create_dir_all(parent).map_err(file(parent))?;
    }
    // A pin left by a link whose interface was since re-created (the old link is defunct: had it still
    // been attached here, creating ours would have failed with EBUSY).
    if paths.link.exists() {
        fs::remove_file(&paths.link).map_err(file(&paths.link))?;
    }
    // If pinning fails the link fd is dropped here, which detaches the program again.
    let pinned = fd_link.pin(&paths.link).map_err(pin_err(&paths.link))?;
    drop(pinned);
    Ok((link_id, false))
}

/// Remove tailwall's classifier from `iface`: the link (which detaches the program), every
/// generation's pins and the state file. Fails with [`LoadError::Busy`] while an attach holds the lock.
pub fn detach(iface: &str) -> Result<(), LoadError> {
    let paths = Paths::new(iface)?;
    let _lock = Lock::take(&paths, false)?;
    let state = read_state(&paths)?;
    if state.is_none() && !paths.link.exists() {
        return Err(LoadError::NotAttached(iface.to_string()));
    }
    if paths.link.exists() {
        let pinned = PinnedLink::from_pin(&paths.link).map_err(|e| link_err(iface)(e.into()))?;
        // Unpinning and closing the last fd releases the link, which detaches the program.
        drop(pinned.unpin().map_err(file(&paths.link))?);
    }
    for m in paths.generations()? {
        remove_generation_dir(&paths.generation_dir(m))?;
    }
    let _ = fs::remove_dir(&paths.dir);
    if let Some(netns_dir) = paths.dir.parent() {
        let _ = fs::remove_dir(netns_dir);
    }
    match fs::remove_file(&paths.state) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(file(&paths.state)(e)),
    }
}

/// The state of `iface` as recorded by the last [`attach`].
pub fn state(iface: &str) -> Result<State, LoadError> {
    let paths = Paths::new(iface)?;
    read_state(&paths)?.ok_or_else(|| LoadError::NotAttached(iface.to_string()))
}

/// Per-rule and per-reason counters of the generation attached to `iface`, summed over CPUs.
pub fn stats(iface: &str) -> Result<Stats, LoadError> {
    let s = state(iface)?;
    let rule_cnt = read_counters(
        &open_pinned_map(&s.generation_dir, abi::MAP_RULE_CNT)?,
        abi::MAP_RULE_CNT,
    )?;
    let reason_cnt = read_counters(
        &open_pinned_map(&s.generation_dir, abi::MAP_REASONS)?,
        abi::MAP_REASONS,
    )?;
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
        link_id: s.link_id,
        mode: s.mode,
        policy: s.policy,
        rules,
        reasons,
    })
}

/// Move the calling thread into the network namespace `/run/netns/<name>` (as `ip netns exec` does,
/// without remounting /sys). Call it before any other thread is started.
pub fn enter_netns(name: &str) -> Result<(), LoadError> {
    let err = |source| LoadError::Netns {
        name: name.to_string(),
        source,
    };
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return Err(err(std::io::Error::from(std::io::ErrorKind::InvalidInput)));
    }
    let f = fs::File::open(Path::new("/run/netns").join(name)).map_err(err)?;
    // SAFETY: setns on an fd owned by `f`.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(err(std::io::Error::last_os_error()));
    }
    Ok(())
}
