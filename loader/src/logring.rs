//! Userspace side of the ring buffer `tw_log` (`docs/decisions/0014-log-ring-buffer.md`): decoding
//! [`LogRecord`]s, the lost-record counters, the monitor's switch, and the text each record is
//! printed as (`tailwall log`, `tailwall monitor`).
use aya::maps::{Array, Map, MapData, PerCpuArray, RingBuf};
use std::path::Path;
use tailwall_abi::{self as abi, LogRecord, MonitorCfg};
use tailwall_compiler::logline::{self, LogInput};

/// A record decoded from the ring buffer's bytes; `None` when they are shorter than a record.
pub fn decode(bytes: &[u8]) -> Option<LogRecord> {
    if bytes.len() < std::mem::size_of::<LogRecord>() {
        return None;
    }
    // SAFETY: the length was checked; LogRecord is repr(C) plain integers (any bit pattern is a
    // value); read_unaligned copes with the buffer's alignment.
    Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<LogRecord>()) })
}

/// The captured bytes of a record's frame.
pub fn frame(r: &LogRecord) -> &[u8] {
    &r.data[..(r.cap_len as usize).min(r.data.len())]
}

/// Records lost to a full ring buffer, per kind (`[LOG_KIND_RULE, LOG_KIND_DECISION]`), summed over
/// the CPUs of `tw_log_lost`.
///
/// # Errors
/// A map that is not the per-CPU array of the ABI.
pub fn lost(map: &Map) -> Result<[u64; 2], aya::maps::MapError> {
    let a: PerCpuArray<&MapData, u64> = PerCpuArray::try_from(map)?;
    let mut out = [0u64; 2];
    for (k, slot) in out.iter_mut().enumerate() {
        *slot = a.get(&(k as u32), 0)?.iter().sum();
    }
    Ok(out)
}

/// Write the monitor's switch (`tw_monitor[0]`).
///
/// # Errors
/// A map that is not the ABI's one-entry array.
pub fn set_monitor(map: &mut Map, cfg: MonitorCfg) -> Result<(), aya::maps::MapError> {
    let mut a: Array<&mut MapData, MonitorCfg> = Array::try_from(map)?;
    a.set(0, cfg, 0)
}

/// Open one of a pinned generation's maps (`gen-N/<name>`).
///
/// # Errors
/// The pin is missing or not a map.
pub fn open_pinned(path: &Path) -> Result<Map, aya::maps::MapError> {
    Map::from_map_data(MapData::from_pin(path)?)
}

/// A reader of a loaded generation's ring buffer map.
///
/// # Errors
/// The map is not a ring buffer, or its pages cannot be mapped.
pub fn ring(map: &Map) -> Result<RingBuf<&MapData>, aya::maps::MapError> {
    RingBuf::try_from(map)
}

/// A reader of a pinned ring buffer map ([`open_pinned`]).
///
/// # Errors
/// As [`ring`].
pub fn ring_owned(map: Map) -> Result<RingBuf<MapData>, aya::maps::MapError> {
    RingBuf::try_from(map)
}

/// Offset of CLOCK_MONOTONIC (`bpf_ktime_get_ns`) from the Unix epoch, in nanoseconds, now.
pub fn monotonic_to_epoch_ns() -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let mono = i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128);
    now - mono
}

/// The hook's chain name of a record (`INPUT`, `FORWARD`, `OUTPUT`).
pub fn hook_name(hook: u32) -> &'static str {
    match hook {
        abi::HOOK_INPUT => "INPUT",
        abi::HOOK_FORWARD => "FORWARD",
        abi::HOOK_OUTPUT => "OUTPUT",
        // A decision of the entry program, before it knew the hook (not IP, malformed, …).
        _ => "-",
    }
}

/// The kernel LOG line of a record (`tailwall_compiler::logline`): `name_of` turns an ifindex into a
/// device name; ifindex 0 is no device (no `MAC=` without an input device, as the kernel).
pub fn kernel_line(
    r: &LogRecord,
    prefix: &str,
    flags: u8,
    name_of: &dyn Fn(u32) -> String,
) -> String {
    let in_name = (r.in_ifindex != 0).then(|| name_of(r.in_ifindex));
    let out_name = (r.out_ifindex != 0 && r.out_ifindex != abi::IFINDEX_UNKNOWN)
        .then(|| name_of(r.out_ifindex));
    logline::line(&LogInput {
        prefix,
        in_iface: in_name.as_deref(),
        out_iface: out_name.as_deref(),
        frame: frame(r),
        frame_len: r.frame_len as usize,
        flags,
    })
}

/// The name of interface `ifindex` in the current namespace (`if_indextoname`), or its number.
pub fn ifname(ifindex: u32) -> String {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: `buf` holds IF_NAMESIZE bytes as the call requires.
    let p = unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr()) };
    if p.is_null() {
        return format!("if{ifindex}");
    }
    // SAFETY: if_indextoname wrote a NUL-terminated name into `buf`.
    unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}
