//! The loader's errors, one type per domain:
//! - [`LoadError`]: loading, test-running and self-testing one generation (artifact, object, verifier,
//!   maps, test-run) — returned by [`crate::Generation`];
//! - [`IfaceError`]: the lifecycle on an interface (bpffs, pins, state records, lock, link, netns,
//!   privileges) — returned by [`crate::iface`]; wraps a [`LoadError`] when building the generation
//!   failed.
//!
//! This module depends on no other module of the crate but the leaf [`crate::mode`].
use std::{io, path::PathBuf};

use crate::mode::Mode;

/// Why a generation could not be loaded, filled, self-tested or test-run. Nothing live changed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The artifact was compiled for another datapath ABI (`tailwall_abi::ABI_VERSION`).
    #[error("artifact speaks abi version {found}, this loader speaks {expected}")]
    AbiVersion { found: u32, expected: u32 },
    /// The artifact contradicts itself or the ABI's map layout.
    #[error("artifact is inconsistent: {0}")]
    Artifact(String),
    /// The embedded eBPF object lacks a program the loader needs (a build mismatch).
    #[error("the ebpf object has no program {program}")]
    MissingProgram { program: &'static str },
    /// The embedded eBPF object lacks a map of the ABI, or it has an unexpected kind.
    #[error("the ebpf object has no usable map {map}")]
    MissingMap { map: &'static str },
    /// aya could not load the embedded object: parsing it, or creating its maps (an allocation
    /// failure: memlock or map-size limits).
    #[error("cannot load the embedded ebpf object (parsing it or creating its maps)")]
    Object(#[source] Box<aya::EbpfError>),
    /// The kernel refused to create map `map` (BPF_MAP_CREATE): an allocation failure (`ENOMEM`:
    /// a memory cgroup limit; `EPERM` on kernels before 5.11: RLIMIT_MEMLOCK) or a size it does not
    /// support (`E2BIG`).
    #[error("cannot create map {map}: {source} (hint: the kernel could not allocate it: a memory cgroup limit, or RLIMIT_MEMLOCK on kernels before 5.11; `tailwall compile RULES` prints every map's size)")]
    MapCreate {
        map: String,
        #[source]
        source: io::Error,
    },
    /// The ruleset tests `ct_state` and the running kernel cannot tell it (no conntrack kfuncs, no
    /// BTF): refused at load, never judged without conntrack (`docs/decisions/0014`).
    #[error("the ruleset matches conntrack state (ct_state) but this kernel cannot look connections up from XDP/tc: {0} (hint: Linux 5.18 or later with CONFIG_NF_CONNTRACK and CONFIG_DEBUG_INFO_BTF)")]
    Conntrack(String),
    /// The kernel's verifier refused a program; `log` is the verifier log.
    #[error("the verifier rejected {program}: {source}\nverifier log:\n{log}")]
    Verifier {
        program: &'static str,
        log: String,
        #[source]
        source: io::Error,
    },
    /// A program operation other than loading failed.
    #[error("program {program}: {source}")]
    Program {
        program: &'static str,
        #[source]
        source: Box<aya::programs::ProgramError>,
    },
    /// A map operation failed (creation is an allocation failure: memlock or map-size limits).
    #[error("map {map}: {source}")]
    Map {
        map: &'static str,
        #[source]
        source: Box<aya::maps::MapError>,
    },
    /// A raw system call failed; `op` names it.
    #[error("{op} failed")]
    Sys {
        op: &'static str,
        #[source]
        source: io::Error,
    },
    /// BPF_PROG_TEST_RUN refuses frames shorter than an Ethernet header (14 bytes); the length given.
    #[error(
        "a frame of {0} bytes is shorter than an ethernet header; the kernel's test-run rejects it"
    )]
    FrameTooShort(usize),
    /// The kernel and the userspace model disagreed on a probe frame before going live.
    #[error("self-test failed before going live: {0}")]
    SelfTest(String),
}

/// What is wrong with the bpffs a pin would go to ([`IfaceError::PrivateBpffs`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BpffsProblem {
    /// `/sys/fs/bpf` is not a bpffs in this mount namespace, and this namespace is not the one of
    /// the oldest process we can see (e.g. `ip netns exec`, `unshare -m`, a private-mounts unit):
    /// mounting one here would die with the command.
    NotMountedPrivate,
    /// `/sys/fs/bpf` is a bpffs, but another instance than the one of the oldest process we can see.
    Private,
}

/// Why an operation on an interface failed. Unless stated, the interface's filter is as it was.
#[derive(Debug, thiserror::Error)]
pub enum IfaceError {
    /// Building the new generation failed before anything live changed.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// No interface of that name in the calling thread's network namespace (or an invalid name).
    #[error("interface {iface} does not exist")]
    UnknownInterface { iface: String },
    /// Another tailwall holds the interface's lock file.
    #[error("interface {iface} is busy: another tailwall is applying a ruleset to it (lock {})", lock.display())]
    Busy { iface: String, lock: PathBuf },
    /// A live link's mode cannot change; detach first.
    #[error("{iface} is attached in {attached} mode, {requested} was asked: the mode cannot change under a live link, detach first")]
    ModeChange {
        iface: String,
        attached: Mode,
        requested: Mode,
    },
    /// The kernel shows no tailwall link on the interface.
    #[error("no tailwall classifier is attached to {iface}")]
    NotAttached { iface: String },
    /// The interface's link is on another device index now (the device was renamed; the filter
    /// follows the device): apply to the device's new name, or detach this name.
    #[error("the classifier of {iface} is now on the device with index {ifindex} (renamed?); it still filters that device: apply to its new name, or `tailwall detach {iface}`")]
    Moved { iface: String, ifindex: u32 },
    /// `confirm`: no `--confirm` waits for the live generation; `why` says what there is instead.
    #[error("{iface}: nothing waits for confirmation ({why})")]
    NothingToConfirm { iface: String, why: String },
    /// The kernel runs generation `generation` of `iface`, but its record is gone: its rules cannot
    /// be named. The filter keeps enforcing; applying a ruleset records it again.
    #[error("{iface}: the kernel runs generation {generation}, but its record {} is missing (deleted?): its rules, digest and source are unknown. The filter keeps enforcing; apply the ruleset again (`tailwall compile FILE --attach {iface}`) to record it", path.display())]
    RecordLost {
        iface: String,
        generation: u64,
        path: PathBuf,
    },
    /// `rollback` found no complete previous generation.
    #[error("{iface} has no previous generation to roll back to (kept generations: {kept})")]
    NoPrevious { iface: String, kept: usize },
    /// A file or directory operation failed.
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A path tailwall would use is not one it created: a symlink, another owner, or a group- or
    /// world-writable mode. Refused: whoever controls it could switch the filter off.
    #[error("{} is not safe to use: {why}; remove it (tailwall recreates it root-owned, mode 0700)", path.display())]
    UnsafePath { path: PathBuf, why: &'static str },
    /// A generation record is not valid JSON of the expected shape.
    #[error("generation record {} is unreadable: {source}", path.display())]
    Record {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// Pinning an object into the bpffs failed.
    #[error("pinning at {}: {source}", path.display())]
    Pin {
        path: PathBuf,
        #[source]
        source: Box<aya::pin::PinError>,
    },
    /// Attaching the first link failed; `hint` says what to try.
    #[error("cannot attach xdp to {iface} in {mode} mode: {source}{hint}")]
    Attach {
        iface: String,
        mode: Mode,
        hint: &'static str,
        #[source]
        source: Box<aya::programs::ProgramError>,
    },
    /// The kernel attached without a bpf_link (netlink): it could be neither pinned nor swapped
    /// atomically, so it was undone.
    #[error("the kernel attached to {iface} without a bpf_link; tailwall needs xdp bpf_link support (linux >= 5.9)")]
    NoBpfLink { iface: String },
    /// A bpf_link operation on a pinned link failed (`op` names the link when it is the tcx egress
    /// one; else it is the XDP link).
    #[error("link on {iface}: {op}: {source}")]
    Link {
        iface: String,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    /// Verification after the flip: the interface does not run what was just attached.
    #[error("{iface} does not run the new generation after the flip (expected program {expected}, the kernel's link runs {found:?}); the filter state is unknown, run `tailwall status {iface}`")]
    NotEnforcing {
        iface: String,
        expected: u32,
        found: Option<u32>,
    },
    /// The second link of an apply or rollback, OUTPUT's tcx egress link, could not be made to run
    /// the new generation; `after` says what the XDP flip's undo left (normally: the generation that
    /// ran before, on both links; nothing half-installed).
    #[error(
        "{iface}: the OUTPUT filter (tcx egress link) could not be switched: {source}; {after}"
    )]
    Egress {
        iface: String,
        after: String,
        source: Box<IfaceError>,
    },
    /// Pins would die with this process: refuse instead of reporting a filter that vanishes.
    #[error("{}; pins made here would vanish when this command exits, leaving {iface} unfiltered. Fix: run tailwall in the host's mount namespace with `tailwall --netns NAME …` instead of `ip netns exec NAME tailwall …`, or bind-mount the host's bpffs at /sys/fs/bpf (containers: a hostPath volume, systemd: BindPaths=/sys/fs/bpf)", match problem {
        BpffsProblem::NotMountedPrivate => "/sys/fs/bpf is not a bpffs in this private mount namespace (or TAILWALL_NO_BPFFS_MOUNT=1 forbids mounting one)",
        BpffsProblem::Private => "/sys/fs/bpf is a private bpffs, not the host's",
    })]
    PrivateBpffs {
        iface: String,
        problem: BpffsProblem,
    },
    /// The caller lacks the capabilities the operation needs.
    #[error("{op} needs CAP_BPF and CAP_NET_ADMIN (and CAP_SYS_ADMIN to mount the bpffs): run it as root")]
    Privilege { op: &'static str },
    /// `--netns NAME`: `/run/netns/NAME` could not be entered.
    #[error("cannot enter network namespace {name}: {source}")]
    Netns {
        name: String,
        #[source]
        source: io::Error,
    },
}

pub(crate) fn sys(op: &'static str) -> impl FnOnce(io::Error) -> LoadError {
    move |source| LoadError::Sys { op, source }
}

pub(crate) fn map_err(map: &'static str) -> impl FnOnce(aya::maps::MapError) -> LoadError {
    move |source| LoadError::Map {
        map,
        source: Box::new(source),
    }
}

pub(crate) fn prog_err(
    program: &'static str,
) -> impl FnOnce(aya::programs::ProgramError) -> LoadError {
    move |source| LoadError::Program {
        program,
        source: Box::new(source),
    }
}

pub(crate) fn file(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> IfaceError {
    let path = path.into();
    move |source| IfaceError::File { path, source }
}

// Callers wrap them in `anyhow` and send them across threads.
const _: fn() = || {
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<LoadError>();
    send_sync::<IfaceError>();
};
