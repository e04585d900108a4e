//! tailwall's loader library: puts a compiled [`Artifact`](tailwall_compiler::artifact::Artifact) into the
//! kernel with aya, runs frames through it, attaches it to an interface and swaps it atomically.
//!
//! - [`Generation`]: one loaded generation (programs verified, maps sized and filled, prog array wired);
//!   [`Generation::test_run`] runs a frame through it with BPF_PROG_TEST_RUN;
//! - [`test_run_live`]: BPF_PROG_TEST_RUN in live-frames mode on any XDP program fd (benchmarks);
//! - [`iface`]: attach / swap / detach / stats on an interface, with bpffs pins and a state file.
//!
//! The eBPF object is built from `runtime-ebpf/prog` by `build.rs` and embedded ([`object::OBJECT`]).
pub mod error;
pub mod generation;
pub mod iface;

pub mod object;
mod sys;

pub use error::LoadError;
pub use generation::{Generation, ProgramStat, TestRun};
pub use iface::{
    attach, detach, enter_netns, state, stats, AttachOutcome, Mode, ReasonStats, RuleStats, State,
    Stats,
};

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
