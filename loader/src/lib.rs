//! tailwall's loader library: puts a compiled [`Artifact`](tailwall_compiler::artifact::Artifact) into the
//! kernel with aya, runs frames through it, attaches it to an interface and operates it there.
//!
//! - [`Generation`]: one loaded generation (programs verified, maps sized and filled, prog array wired);
//!   [`Generation::test_run`] runs a frame through it with BPF_PROG_TEST_RUN; errors: [`LoadError`];
//! - [`test_run_live`]: BPF_PROG_TEST_RUN in live-frames mode on any XDP program fd (benchmarks);
//! - [`iface`]: the lifecycle on an interface (attach / swap / verify / rollback / confirm / stats /
//!   status / detach) with bpffs pins and root-only records; errors: [`IfaceError`];
//! - [`mode`]: the XDP attach mode.
//!
//! Module graph (no cycles): `mode` ← `error` ← `generation` ← `iface`; `sys` (raw `bpf(2)`) is a leaf.
//! The eBPF object is built from `runtime-ebpf/prog` by `build.rs` and embedded ([`object::OBJECT`]).
pub mod conntrack;
pub mod engine;
pub mod error;
pub mod generation;
pub mod iface;
pub mod kfunc;
pub mod logring;
pub mod mode;

pub mod object;
mod sys;

pub use engine::KernelEngine;
pub use error::{IfaceError, LoadError};
pub use generation::{Generation, ProgramStat, TestRun};
pub use iface::{
    attach, attach_with, detach, detach_all, enter_netns, rollback, state, stats, status, zero,
    ApplyOptions, AttachOutcome, ReasonStats, RuleStats, State, Stats, Status,
};
pub use mode::{Mode, ModeRequest};
pub use sys::{object_ids, tcx_egress_programs, ObjectKind};

/// Run `frame` `repeat` times through the XDP program `prog` in live-frames mode
/// (`BPF_F_TEST_XDP_LIVE_FRAMES`): frames the program passes enter the network stack as if received on
/// interface `ifindex` of the calling thread's network namespace. Returns the kernel's mean
/// nanoseconds per run (covering the program and the stack's handling of the frame).
pub fn test_run_live(
    prog: std::os::fd::BorrowedFd<'_>,
    frame: &[u8],
    repeat: u32,
    ifindex: u32,
) -> Result<u32, LoadError> {
    if frame.len() < 14 {
        return Err(LoadError::FrameTooShort(frame.len()));
    }
    let ctx = sys::XdpMd {
        data_end: frame.len() as u32,
        ingress_ifindex: ifindex,
        ..Default::default()
    };
    let mut attr = sys::TestRunAttr {
        data_in: frame.as_ptr() as u64,
        data_size_in: frame.len() as u32,
        ctx_in: &ctx as *const sys::XdpMd as u64,
        ctx_size_in: std::mem::size_of::<sys::XdpMd>() as u32,
        repeat: repeat.max(1),
        flags: sys::BPF_F_TEST_XDP_LIVE_FRAMES,
        ..Default::default()
    };
    let (_, duration) = sys::prog_test_run(&mut attr, prog)
        .map_err(error::sys("BPF_PROG_TEST_RUN (live frames)"))?;
    Ok(duration)
}
