//! The ring buffer `tw_log`: LOG/NFLOG records written by the walk when it visits a `RULE_F_LOG`
//! position, and decisions streamed for `tailwall monitor` (`docs/decisions/0014-log-ring-buffer.md`).
//!
//! Guarantees: a full ring buffer drops the record and counts it in `tw_log_lost[kind]` (per-CPU);
//! the packet's verdict never depends on the ring buffer. The monitor costs one array lookup per
//! packet while it is off (`tw_monitor[0].enabled == 0`): it runs where the packet's decision is
//! taken — after the walk, or where the entry program or a stage decides instead.
use aya_ebpf::helpers::generated::{bpf_get_prandom_u32, bpf_ktime_get_ns};
use tailwall_abi::{LogRecord, PktCtx, LOG_KIND_DECISION, LOG_SNAPLEN};

use crate::{
    common::Hook,
    maps::{TW_DECISION, TW_LOG, TW_LOG_LOST, TW_MONITOR},
};

/// Write one record of `kind` for the packet `p` (position, reason, action as documented on
/// [`LogRecord`]); a full ring buffer counts the loss instead.
#[inline(always)]
pub fn report<C: Hook>(ctx: &C, p: &PktCtx, kind: u32, position: u32, reason: u32, action: u32) {
    let Some(mut e) = TW_LOG.reserve::<LogRecord>(0) else {
        if let Some(c) = TW_LOG_LOST.get_ptr_mut(kind) {
            // SAFETY: a valid per-CPU map value pointer.
            unsafe { *c += 1 };
        }
        return;
    };
    let r = e.as_mut_ptr();
    let frame_len = ctx.frame_len() as u32;
    let mut cap = frame_len;
    if cap > LOG_SNAPLEN {
        cap = LOG_SNAPLEN;
    }
    // SAFETY: `r` is the reserved record (the kernel's ring buffer memory, `size_of::<LogRecord>()`
    // bytes); every field is written before submit.
    unsafe {
        (*r).ts_ns = bpf_ktime_get_ns();
        (*r).kind = kind;
        (*r).hook = p.hook;
        (*r).region = p.region;
        (*r).position = position;
        (*r).reason = reason;
        (*r).action = action;
        (*r).in_ifindex = p.in_ifindex;
        (*r).out_ifindex = p.out_ifindex;
        (*r).frame_len = frame_len;
        // The helper's length must be provably 1..=LOG_SNAPLEN: bound `cap - 1` read through a
        // volatile load, so LLVM cannot fold the check into the frame pointers' comparison.
        let c = core::ptr::read_volatile(&cap.wrapping_sub(1));
        let mut ok = false;
        if c < LOG_SNAPLEN {
            ok = ctx.copy_head((*r).data.as_mut_ptr(), c + 1);
        }
        (*r).cap_len = if ok { cap } else { 0 };
    }
    e.submit(0);
}

/// The monitor for a decision the entry program took itself (not IP, malformed, the other family,
/// a parsing bound, a failed tail call): `tw_pkt` may not describe this packet, so the record has
/// hook `tailwall_abi::NO_RULE` ("unknown") and no interfaces. Returns `action` unchanged.
#[inline(always)]
pub fn monitor_entry<C: Hook>(ctx: &C, action: u32) -> u32 {
    let p = PktCtx {
        hook: tailwall_abi::NO_RULE,
        region: tailwall_abi::NO_RULE,
        ..PktCtx::default()
    };
    monitor(ctx, &p, action)
}

/// The monitor for a decision a field stage took (a failed tail call or lookup, an unknown
/// interface): `tw_pkt` describes the packet. Returns `action` unchanged.
#[inline(always)]
pub fn monitor_stage<C: Hook>(ctx: &C, action: u32) -> u32 {
    match crate::common::pkt() {
        // SAFETY: a valid per-CPU map value pointer.
        Some(pp) => monitor(ctx, unsafe { &*pp }, action),
        None => action,
    }
}

/// The monitor: when `tw_monitor` is on and the decision just recorded in `tw_decision` passes its
/// verdict filter and sampling, stream it. Returns `action` unchanged.
#[inline(always)]
pub fn monitor<C: Hook>(ctx: &C, p: &PktCtx, action: u32) -> u32 {
    let Some(m) = TW_MONITOR.get(0) else {
        return action;
    };
    if m.enabled == 0 {
        return action;
    }
    if m.verdicts != 0 && (action >= 32 || m.verdicts & (1 << action) == 0) {
        return action;
    }
    // SAFETY: a helper without arguments.
    if m.sample > 1 && unsafe { bpf_get_prandom_u32() } % m.sample != 0 {
        return action;
    }
    let Some(d) = TW_DECISION.get(0) else {
        return action;
    };
    report(ctx, p, LOG_KIND_DECISION, d.rule, d.reason, action);
    action
}
