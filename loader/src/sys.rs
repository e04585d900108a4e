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
const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;
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

/// Every value of an array map of `len` entries with BPF_MAP_LOOKUP_BATCH (a few syscalls instead of
/// one per key), in key order, `value_bytes` each (per-CPU arrays: the value size rounded up to 8,
/// times the possible CPUs, as the kernel copies them). Errors as the kernel's (`EINVAL`: no batch
/// support for this map type or kernel, before Linux 5.6).
pub(crate) fn array_lookup_all(
    map: BorrowedFd<'_>,
    len: u32,
    value_bytes: usize,
) -> io::Result<Vec<u8>> {
    let mut keys = vec![0u8; len as usize * 4];
    let mut values = vec![0u8; len as usize * value_bytes];
    let mut done = 0u32;
    let mut token = 0u32;
    while done < len {
        let mut attr = MapBatchAttr {
            in_batch: if done == 0 {
                0
            } else {
                &token as *const u32 as u64
            },
            out_batch: &mut token as *mut u32 as u64,
            keys: keys[done as usize * 4..].as_mut_ptr() as u64,
            values: values[done as usize * value_bytes..].as_mut_ptr() as u64,
            count: len - done,
            map_fd: map.as_raw_fd() as u32,
            ..Default::default()
        };
        let r = bpf(BPF_MAP_LOOKUP_BATCH, &mut attr);
        done += attr.count;
        match r {
            Ok(()) if attr.count == 0 => {
                return Err(io::Error::other("batch lookup made no progress"))
            }
            Ok(()) => {}
            // The end of the map: `count` holds what this call copied.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => break,
            Err(e) => return Err(e),
        }
    }
    if done != len {
        return Err(io::Error::other(format!(
            "batch lookup returned {done} of {len} entries"
        )));
    }
    // Arrays return their keys in order; check rather than trust.
    for (i, k) in keys.chunks_exact(4).enumerate() {
        if u32::from_ne_bytes(k.try_into().expect("4 bytes")) != i as u32 {
            return Err(io::Error::other("batch lookup returned keys out of order"));
        }
    }
    Ok(values)
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

const BPF_OBJ_GET: libc::c_long = 7;
const BPF_PROG_GET_NEXT_ID: libc::c_long = 11;
const BPF_MAP_GET_NEXT_ID: libc::c_long = 12;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_LINK_GET_NEXT_ID: libc::c_long = 31;
/// `BPF_LINK_TYPE_XDP` of `enum bpf_link_type`.
pub(crate) const BPF_LINK_TYPE_XDP: u32 = 6;

/// `bpf_attr` for BPF_OBJ_GET.
#[repr(C)]
#[derive(Default)]
struct ObjGetAttr {
    pathname: u64,
    bpf_fd: u32,
    file_flags: u32,
    path_fd: i32,
    _pad: u32,
}

/// `bpf_attr` for BPF_OBJ_GET_INFO_BY_FD.
#[repr(C)]
#[derive(Default)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// `bpf_attr` for BPF_*_GET_NEXT_ID.
#[repr(C)]
#[derive(Default)]
struct NextIdAttr {
    start_id: u32,
    next_id: u32,
    open_flags: u32,
}

/// Open the object pinned at `path` (BPF_OBJ_GET): a fresh fd, owned by the caller.
pub(crate) fn obj_get(path: &std::path::Path) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::{fd::FromRawFd as _, unix::ffi::OsStrExt as _};
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut attr = ObjGetAttr {
        pathname: c.as_ptr() as u64,
        ..Default::default()
    };
    // SAFETY: as in `bpf`; the path outlives the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_OBJ_GET,
            &mut attr as *mut ObjGetAttr,
            std::mem::size_of::<ObjGetAttr>() as u32,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: BPF_OBJ_GET returned a fresh fd that nothing else owns.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(r as i32) })
}

/// BPF_OBJ_GET_INFO_BY_FD into a zeroed buffer of `N` bytes (the kernel fills what it knows).
fn obj_info<const N: usize>(fd: BorrowedFd<'_>) -> io::Result<[u8; N]> {
    let mut buf = [0u8; N];
    let mut attr = InfoAttr {
        bpf_fd: fd.as_raw_fd() as u32,
        info_len: N as u32,
        info: buf.as_mut_ptr() as u64,
    };
    bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr)?;
    Ok(buf)
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_ne_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}

/// What the kernel says about one bpf_link (`struct bpf_link_info`: type, id, prog_id, then the
/// type's union member at offset 16; for XDP `ifindex`, 0 once the device is gone).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RawLinkInfo {
    pub link_type: u32,
    pub id: u32,
    pub prog_id: u32,
    pub xdp_ifindex: u32,
}

pub(crate) fn link_info(fd: BorrowedFd<'_>) -> io::Result<RawLinkInfo> {
    let b = obj_info::<64>(fd)?;
    Ok(RawLinkInfo {
        link_type: u32_at(&b, 0),
        id: u32_at(&b, 4),
        prog_id: u32_at(&b, 8),
        xdp_ifindex: u32_at(&b, 16),
    })
}

/// The kernel id of a program (`struct bpf_prog_info`: type, then id at offset 4).
pub(crate) fn prog_id(fd: BorrowedFd<'_>) -> io::Result<u32> {
    Ok(u32_at(&obj_info::<256>(fd)?, 4))
}

/// Which kind of kernel object [`object_ids`] lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectKind {
    /// BPF_PROG_GET_NEXT_ID.
    Program,
    /// BPF_MAP_GET_NEXT_ID.
    Map,
    /// BPF_LINK_GET_NEXT_ID.
    Link,
}

/// Ids of every loaded program, map or link of the whole system (BPF_*_GET_NEXT_ID; needs
/// CAP_SYS_ADMIN). Used to prove that nothing leaked.
pub fn object_ids(kind: ObjectKind) -> io::Result<Vec<u32>> {
    let cmd = match kind {
        ObjectKind::Program => BPF_PROG_GET_NEXT_ID,
        ObjectKind::Map => BPF_MAP_GET_NEXT_ID,
        ObjectKind::Link => BPF_LINK_GET_NEXT_ID,
    };
    let mut out = Vec::new();
    let mut attr = NextIdAttr::default();
    loop {
        match bpf(cmd, &mut attr) {
            Ok(()) => {
                out.push(attr.next_id);
                attr.start_id = attr.next_id;
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(out),
            Err(e) => return Err(e),
        }
    }
}

const BPF_LINK_UPDATE: libc::c_long = 29;
/// `BPF_F_REPLACE`: BPF_LINK_UPDATE only if the link still runs `old_prog_fd`.
const BPF_F_REPLACE: u32 = 1 << 2;

/// `bpf_attr` for BPF_LINK_UPDATE.
#[repr(C)]
#[derive(Default)]
struct LinkUpdateAttr {
    link_fd: u32,
    new_prog_fd: u32,
    flags: u32,
    old_prog_fd: u32,
}

/// Atomically point `link` at `new_prog`, only if it still runs `old_prog` (BPF_LINK_UPDATE with
/// BPF_F_REPLACE; EPERM when the link runs another program). One pointer swap in the kernel: packets
/// see the old or the new program, never none.
pub(crate) fn link_update(
    link: BorrowedFd<'_>,
    new_prog: BorrowedFd<'_>,
    old_prog: Option<BorrowedFd<'_>>,
) -> io::Result<()> {
    let mut attr = LinkUpdateAttr {
        link_fd: link.as_raw_fd() as u32,
        new_prog_fd: new_prog.as_raw_fd() as u32,
        flags: if old_prog.is_some() { BPF_F_REPLACE } else { 0 },
        old_prog_fd: old_prog.map_or(0, |f| f.as_raw_fd() as u32),
    };
    bpf(BPF_LINK_UPDATE, &mut attr)
}

const BPF_LINK_DETACH: libc::c_long = 34;

/// Detach `link` from its hook now, whoever else holds a reference to it (BPF_LINK_DETACH); the link
/// object lives on, defunct, until its last fd or pin goes.
pub(crate) fn link_detach(link: BorrowedFd<'_>) -> io::Result<()> {
    let mut attr: u32 = link.as_raw_fd() as u32;
    bpf(BPF_LINK_DETACH, &mut attr)
}

const BPF_OBJ_PIN: libc::c_long = 6;
const BPF_LINK_CREATE: libc::c_long = 28;
/// `BPF_TCX_EGRESS` of `enum bpf_attach_type` (include/uapi/linux/bpf.h).
pub(crate) const BPF_TCX_EGRESS: u32 = 47;
/// `BPF_LINK_TYPE_TCX` of `enum bpf_link_type`.
pub(crate) const BPF_LINK_TYPE_TCX: u32 = 11;

/// `bpf_attr` for BPF_LINK_CREATE of a tcx link (`link_create` with its `tcx` member: the relative
/// fd/id at offset 16, `expected_revision` at 24).
#[repr(C)]
#[derive(Default)]
struct LinkCreateTcxAttr {
    prog_fd: u32,
    target_ifindex: u32,
    attach_type: u32,
    flags: u32,
    relative_fd: u32,
    _pad: u32,
    expected_revision: u64,
}

/// Create a tcx link of `prog` on device `ifindex` at `attach_type` (`BPF_TCX_EGRESS`), appended
/// after the programs already there (no `BPF_F_BEFORE`/`BPF_F_AFTER`, no relative program).
/// Returns the link's fd; the link lives while an fd or a pin of it does.
pub(crate) fn link_create_tcx(
    prog: BorrowedFd<'_>,
    ifindex: u32,
    attach_type: u32,
) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd as _;
    let mut attr = LinkCreateTcxAttr {
        prog_fd: prog.as_raw_fd() as u32,
        target_ifindex: ifindex,
        attach_type,
        ..Default::default()
    };
    // SAFETY: as in `bpf`.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_LINK_CREATE,
            &mut attr as *mut LinkCreateTcxAttr,
            std::mem::size_of::<LinkCreateTcxAttr>() as u32,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: BPF_LINK_CREATE returned a fresh fd that nothing else owns.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(r as i32) })
}

const BPF_PROG_QUERY: libc::c_long = 16;

/// `bpf_attr` for BPF_PROG_QUERY (`query`: the device at 0, the attach type at 4, the id buffer at
/// 16, its capacity / the count at 24; include/uapi/linux/bpf.h).
#[repr(C)]
#[derive(Default)]
struct ProgQueryAttr {
    target_ifindex: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    count: u32,
    _pad: u32,
    prog_attach_flags: u64,
    link_ids: u64,
    link_attach_flags: u64,
    revision: u64,
}

/// The ids of the programs attached at tcx egress of device `ifindex` in the calling thread's
/// network namespace, in the order they run (BPF_PROG_QUERY with `BPF_TCX_EGRESS`, what `bpftool net`
/// lists as `tcx/egress`; Linux 6.6). Empty when none is attached.
pub fn tcx_egress_programs(ifindex: u32) -> io::Result<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    let mut attr = ProgQueryAttr {
        target_ifindex: ifindex,
        attach_type: BPF_TCX_EGRESS,
        prog_ids: ids.as_mut_ptr() as u64,
        count: ids.len() as u32,
        ..Default::default()
    };
    bpf(BPF_PROG_QUERY, &mut attr)?;
    ids.truncate(attr.count as usize);
    Ok(ids)
}

/// Pin `fd` (a link, program or map) at `path` in a bpffs (BPF_OBJ_PIN; EEXIST when taken).
pub(crate) fn obj_pin(fd: BorrowedFd<'_>, path: &std::path::Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt as _;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut attr = ObjGetAttr {
        pathname: c.as_ptr() as u64,
        bpf_fd: fd.as_raw_fd() as u32,
        ..Default::default()
    };
    bpf(BPF_OBJ_PIN, &mut attr)
}

/// The network devices of the calling thread's network namespace, `(ifindex, name)`, as
/// `if_nameindex(3)` lists them (netlink `RTM_GETLINK` underneath, glibc): what the interface tables
/// (`tw_t_in_iface`, `tw_t_out_iface`) are filled from.
pub fn devices() -> io::Result<Vec<(u32, String)>> {
    // SAFETY: if_nameindex has no preconditions; it returns NULL on failure (errno set) or an array
    // terminated by an entry with index 0 and a NULL name, freed below with if_freenameindex.
    let head = unsafe { libc::if_nameindex() };
    if head.is_null() {
        return Err(io::Error::last_os_error());
    }
    let mut out = Vec::new();
    let mut p = head;
    // SAFETY: every entry up to the terminator is valid, its name a NUL-terminated C string.
    unsafe {
        while (*p).if_index != 0 && !(*p).if_name.is_null() {
            let name = std::ffi::CStr::from_ptr((*p).if_name)
                .to_string_lossy()
                .into_owned();
            out.push(((*p).if_index, name));
            p = p.add(1);
        }
        libc::if_freenameindex(head);
    }
    Ok(out)
}
