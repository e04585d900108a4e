//! The few raw `bpf(2)` calls aya 0.14 does not wrap the way we need: element updates with byte images,
//! and BPF_PROG_TEST_RUN on a bare program fd (for live frames). Each call is one syscall with a
//! `repr(C)` attribute laid out as `union bpf_attr`'s member in `include/uapi/linux/bpf.h`.
use std::{
    io,
    os::fd::{AsRawFd, BorrowedFd},
};

const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_PROG_TEST_RUN: libc::c_long = 10;
const BPF_MAP_UPDATE_BATCH: libc::c_long = 26;
/// `BPF_F_TEST_XDP_LIVE_FRAMES`: run XDP on real frames; XDP_PASS frames enter the stack of the
/// ingress device, XDP_TX/REDIRECT are transmitted.
pub const BPF_F_TEST_XDP_LIVE_FRAMES: u32 = 1 << 1;

/// `bpf_attr` for BPF_MAP_*_ELEM.
#[repr(C)]
#[derive(Default)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// `bpf_attr` for BPF_MAP_*_BATCH.
#[repr(C)]
#[derive(Default)]
struct MapBatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

/// `bpf_attr` for BPF_PROG_TEST_RUN.
#[repr(C)]
#[derive(Default)]
pub(crate) struct TestRunAttr {
    pub prog_fd: u32,
    pub retval: u32,
    pub data_size_in: u32,
    pub data_size_out: u32,
    pub data_in: u64,
    pub data_out: u64,
    pub repeat: u32,
    pub duration: u32,
    pub ctx_size_in: u32,
    pub ctx_size_out: u32,
    pub ctx_in: u64,
    pub ctx_out: u64,
    pub flags: u32,
    pub cpu: u32,
    pub batch_size: u32,
    pub _pad: u32,
}

/// `struct xdp_md`, the XDP test-run context.
#[repr(C)]
#[derive(Default)]
pub(crate) struct XdpMd {
    pub data: u32,
    pub data_end: u32,
    pub data_meta: u32,
    pub ingress_ifindex: u32,
    pub rx_queue_index: u32,
    pub egress_ifindex: u32,
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<()> {
    // SAFETY: `attr` is a live, fully initialised repr(C) bpf_attr member of the stated size; every
    // pointer inside it refers to a buffer that outlives the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T,
            std::mem::size_of::<T>() as u32,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Update one element; `key`/`value` must have the map's key and value sizes (checked by the caller).
pub(crate) fn map_update(map: BorrowedFd<'_>, key: &[u8], value: &[u8]) -> io::Result<()> {
    let mut attr = MapElemAttr {
        map_fd: map.as_raw_fd() as u32,
        key: key.as_ptr() as u64,
        value: value.as_ptr() as u64,
        ..Default::default()
    };
    bpf(BPF_MAP_UPDATE_ELEM, &mut attr)
}

/// Update `count` elements at once: `keys` and `values` are the concatenated keys and values.
pub(crate) fn map_update_batch(
    map: BorrowedFd<'_>,
    keys: &[u8],
    values: &[u8],
    count: u32,
) -> io::Result<()> {
    let mut done = 0u32;
    while done < count {
        let mut attr = MapBatchAttr {
            keys: keys.as_ptr() as u64 + (keys.len() as u64 / count as u64) * done as u64,
            values: values.as_ptr() as u64 + (values.len() as u64 / count as u64) * done as u64,
            count: count - done,
            map_fd: map.as_raw_fd() as u32,
            ..Default::default()
        };
        bpf(BPF_MAP_UPDATE_BATCH, &mut attr)?;
        if attr.count == 0 {
            return Err(io::Error::other("batch update made no progress"));
        }
        done += attr.count;
    }
    Ok(())
}

/// BPF_PROG_TEST_RUN; returns (retval, duration in ns per run).
pub(crate) fn prog_test_run(
    attr: &mut TestRunAttr,
    prog: BorrowedFd<'_>,
) -> io::Result<(u32, u32)> {
    attr.prog_fd = prog.as_raw_fd() as u32;
    bpf(BPF_PROG_TEST_RUN, attr)?;
    Ok((attr.retval, attr.duration))
}

/// Pins the calling thread to the CPU it runs on until dropped (then restores the old mask), so that a
/// per-CPU map read after a test-run reads the CPU the program ran on.
pub(crate) struct CpuPin {
    pub cpu: usize,
    old: libc::cpu_set_t,
}

impl CpuPin {
    pub fn current() -> io::Result<CpuPin> {
        // SAFETY: plain libc calls on a zeroed cpu_set_t owned by this frame.
        unsafe {
            let mut old: libc::cpu_set_t = std::mem::zeroed();
            if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut old) != 0 {
                return Err(io::Error::last_os_error());
            }
            let cpu = libc::sched_getcpu();
            if cpu < 0 {
                return Err(io::Error::last_os_error());
            }
            let mut one: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu as usize, &mut one);
            if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &one) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(CpuPin {
                cpu: cpu as usize,
                old,
            })
        }
    }
}

impl Drop for CpuPin {
    fn drop(&mut self) {
        // SAFETY: restores the mask read in `current`.
        unsafe {
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &self.old);
        }
    }
}
