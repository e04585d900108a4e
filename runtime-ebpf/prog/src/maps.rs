//! Every map and load-time global of the datapath but the per-field ones (generated in `stage`),
//! named exactly as `tailwall-abi` names them.
//!
//! `max_entries` here are placeholders: the loader sizes every map from the artifact
//! (`EbpfLoader::set_max_entries`) and sets the globals (`EbpfLoader::set_global`) before loading.
use aya_ebpf::{
    macros::map,
    maps::{Array, PerCpuArray, ProgramArray, RingBuf},
};
use tailwall_abi::{
    Chunk, Counter, Decision, MonitorCfg, PktCtx, RegionMeta, ReplyBuf, RuleMeta, LOG_LOST_SLOTS,
    LOG_RING_BYTES, MAX_REGIONS, MAX_STAGES, REASON_SLOTS,
};

#[map(name = "tw_progs")]
pub static TW_PROGS: ProgramArray = ProgramArray::with_max_entries(MAX_STAGES + 2, 0);
/// The tc chain's prog array (`tailwall_abi::MAP_PROGS_TC`): the same positions as `tw_progs`.
#[map(name = "tw_progs_tc")]
pub static TW_PROGS_TC: ProgramArray = ProgramArray::with_max_entries(MAX_STAGES + 1, 0);
#[map(name = "tw_pkt")]
pub static TW_PKT: PerCpuArray<PktCtx> = PerCpuArray::with_max_entries(1, 0);
#[map(name = "tw_scratch")]
pub static TW_SCRATCH: PerCpuArray<Chunk> = PerCpuArray::with_max_entries(1, 0);
#[map(name = "tw_rules")]
pub static TW_RULES: Array<RuleMeta> = Array::with_max_entries(1, 0);
#[map(name = "tw_rule_cnt")]
pub static TW_RULE_CNT: PerCpuArray<Counter> = PerCpuArray::with_max_entries(1, 0);
#[map(name = "tw_reasons")]
pub static TW_REASONS: PerCpuArray<Counter> = PerCpuArray::with_max_entries(REASON_SLOTS, 0);
#[map(name = "tw_decision")]
pub static TW_DECISION: PerCpuArray<Decision> = PerCpuArray::with_max_entries(2, 0);
/// Where `tw_reject` assembles a REJECT's reply (`tailwall_abi::MAP_REPLY_BUF`).
#[map(name = "tw_reply_buf")]
pub static TW_REPLY_BUF: PerCpuArray<ReplyBuf> = PerCpuArray::with_max_entries(1, 0);
#[map(name = "tw_regions")]
pub static TW_REGIONS: Array<RegionMeta> = Array::with_max_entries(MAX_REGIONS, 0);
/// LOG/NFLOG records and monitored decisions (`tailwall_abi::LogRecord`).
#[map(name = "tw_log")]
pub static TW_LOG: RingBuf = RingBuf::with_byte_size(LOG_RING_BYTES, 0);
/// Records lost to a full `tw_log`, per `LogRecord::kind`.
#[map(name = "tw_log_lost")]
pub static TW_LOG_LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(LOG_LOST_SLOTS, 0);
/// The monitor's switch (`tailwall_abi::MonitorCfg`, one entry; all zero: off).
#[map(name = "tw_monitor")]
pub static TW_MONITOR: Array<MonitorCfg> = Array::with_max_entries(1, 0);

// Load-time constants (read-only `.rodata`, set by the loader; the verifier sees their exact values).
#[unsafe(no_mangle)]
static TW_NCHUNKS: u32 = 0;
#[unsafe(no_mangle)]
static TW_NSTAGES: u32 = 0;
#[unsafe(no_mangle)]
static TW_NRULES: u32 = 0;
#[unsafe(no_mangle)]
static TW_NVISITS: u32 = 0;
#[unsafe(no_mangle)]
static TW_REPLY_TTL: u32 = 64;
#[unsafe(no_mangle)]
static TW_REPLY_HL: u32 = 64;

/// TTL of the IPv4 replies REJECT builds (`tailwall_abi::GLOBAL_REPLY_TTL`), 1..=255.
#[inline(always)]
pub fn reply_ttl() -> u8 {
    // SAFETY: as in `nchunks`.
    let n = unsafe { core::ptr::read_volatile(&TW_REPLY_TTL) };
    n.clamp(1, 255) as u8
}

/// Hop limit of the IPv6 replies REJECT builds (`tailwall_abi::GLOBAL_REPLY_HL`), 1..=255.
#[inline(always)]
pub fn reply_hl() -> u8 {
    // SAFETY: as in `nchunks`.
    let n = unsafe { core::ptr::read_volatile(&TW_REPLY_HL) };
    n.clamp(1, 255) as u8
}

#[unsafe(no_mangle)]
static TW_CT: u32 = 0;
#[unsafe(no_mangle)]
static TW_CT_STATUS: u32 = 0;

/// Does the generation test `ct_state` (`tailwall_abi::GLOBAL_CT`)? When not, the verifier prunes
/// every conntrack lookup.
#[inline(always)]
pub fn ct_used() -> bool {
    // SAFETY: as in `nchunks`.
    unsafe { core::ptr::read_volatile(&TW_CT) != 0 }
}

/// Offset of `nf_conn::status` (`tailwall_abi::GLOBAL_CT_STATUS`).
#[inline(always)]
pub fn ct_status_offset() -> usize {
    // SAFETY: as in `nchunks`.
    unsafe { core::ptr::read_volatile(&TW_CT_STATUS) as usize }
}

/// Chunks per rule vector, clamped to the ABI bound so every loop has a constant bound.
#[inline(always)]
pub fn nchunks() -> u32 {
    // SAFETY: a plain read of a static the loader patches before load; volatile so LLVM does not fold
    // the placeholder value.
    let n = unsafe { core::ptr::read_volatile(&TW_NCHUNKS) };
    if n > tailwall_abi::MAX_CHUNKS {
        tailwall_abi::MAX_CHUNKS
    } else {
        n
    }
}

#[inline(always)]
pub fn nstages() -> u32 {
    // SAFETY: as in `nchunks`.
    unsafe { core::ptr::read_volatile(&TW_NSTAGES) }
}

#[inline(always)]
pub fn nrules() -> u32 {
    // SAFETY: as in `nchunks`.
    unsafe { core::ptr::read_volatile(&TW_NRULES) }
}

/// Most positions one walk visits, clamped to the ABI bound so the walk's loop has a constant bound.
#[inline(always)]
pub fn nvisits() -> u32 {
    // SAFETY: as in `nchunks`.
    let n = unsafe { core::ptr::read_volatile(&TW_NVISITS) };
    if n > tailwall_abi::MAX_VISITS {
        tailwall_abi::MAX_VISITS
    } else {
        n
    }
}
