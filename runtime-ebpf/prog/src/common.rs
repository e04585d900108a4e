//! Helpers shared by all programs: reason counters, the per-CPU decision record, tail calls that fail
//! closed.
use aya_ebpf::{bindings::xdp_action, programs::XdpContext};
use tailwall_abi::{Decision, PktCtx, ACTION_ACCEPT, NO_RULE, REASON_MAP, REASON_TAIL_CALL};

use crate::maps::{TW_DECISION, TW_PKT, TW_PROGS, TW_REASONS};

/// XDP verdict of an `ACTION_*` code; anything but ACCEPT drops (fail closed).
#[inline(always)]
pub fn xdp_of(action: u32) -> u32 {
    if action == ACTION_ACCEPT {
        xdp_action::XDP_PASS
    } else {
        xdp_action::XDP_DROP
    }
}

/// Record the decision of this packet on this CPU (read back after BPF_PROG_TEST_RUN).
#[inline(always)]
pub fn decide(rule: u32, reason: u32, action: u32) {
    if let Some(d) = TW_DECISION.get_ptr_mut(0) {
        // SAFETY: a valid per-CPU map value pointer; this CPU runs one packet at a time.
        unsafe {
            let seq = (*d).seq;
            *d = Decision {
                rule,
                reason,
                action,
                seq: seq.wrapping_add(1),
            };
        }
    }
}

/// Count one packet of `bytes` in reason slot `reason`, record the decision (no position), and return
/// its verdict.
#[inline(always)]
pub fn by_reason(reason: u32, action: u32, bytes: u64) -> u32 {
    by_reason_at(NO_RULE, reason, action, bytes)
}

/// [`by_reason`] for a decision taken at position `rule` (the policy position, a hotdropping rule).
#[inline(always)]
pub fn by_reason_at(rule: u32, reason: u32, action: u32, bytes: u64) -> u32 {
    if let Some(c) = TW_REASONS.get_ptr_mut(reason) {
        // SAFETY: a valid per-CPU map value pointer.
        unsafe {
            (*c).packets += 1;
            (*c).bytes += bytes;
        }
    }
    decide(rule, reason, action);
    xdp_of(action)
}

/// The per-CPU packet context; `None` only if the map is broken.
#[inline(always)]
pub fn pkt() -> Option<*mut PktCtx> {
    TW_PKT.get_ptr_mut(0)
}

/// A lookup that must succeed failed: drop, counted.
#[inline(always)]
pub fn map_failure(bytes: u64) -> u32 {
    by_reason(REASON_MAP, tailwall_abi::ACTION_DROP, bytes)
}

/// Tail-call `tw_progs[index]`; returns only if the tail call failed, with a counted drop.
#[inline(always)]
pub fn tail_call(ctx: &XdpContext, index: u32, bytes: u64) -> u32 {
    // SAFETY: control leaves this program on success; nothing here needs dropping.
    unsafe { TW_PROGS.tail_call(ctx, index) };
    by_reason(REASON_TAIL_CALL, tailwall_abi::ACTION_DROP, bytes)
}
