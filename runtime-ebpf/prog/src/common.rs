//! Helpers shared by all programs: the program types a chain runs as ([`Hook`]), reason counters, the
//! per-CPU decision record, tail calls that fail closed.
//!
//! The entry, stage and final code is written once, generic over [`Hook`], and instantiated for XDP
//! (`XdpContext`, chain `tw_progs`) and for tc/tcx (`TcContext`, chain `tw_progs_tc`): a prog array
//! holds programs of one type only, so each program type has its own array, while every other map
//! (tables, vectors, rule metadata, regions, counters, `tw_pkt`, `tw_scratch`) is shared by both
//! chains. Internal functions return an `ACTION_*` code; the program wrappers turn it into the
//! program type's verdict ([`xdp_of`], [`tc_of`]).
use aya_ebpf::{
    bindings::{xdp_action, TC_ACT_SHOT},
    maps::ProgramArray,
    programs::{TcContext, XdpContext},
    EbpfContext,
};
use tailwall_abi::{Decision, PktCtx, ACTION_ACCEPT, NO_RULE, REASON_MAP, REASON_TAIL_CALL};

use crate::maps::{TW_DECISION, TW_PKT, TW_PROGS, TW_PROGS_TC, TW_REASONS};

/// A program type the chain runs as: where its packet is, and its own prog array.
pub trait Hook: EbpfContext {
    /// The prog array of this program type's chain (`tw_progs` / `tw_progs_tc`).
    fn progs() -> &'static ProgramArray;
    /// Address of the first byte of the frame (the Ethernet header).
    fn start(&self) -> usize;
    /// One past the last byte readable directly (XDP: the frame's end; tc: the skb's linear part).
    fn end(&self) -> usize;
    /// Length of the whole frame in bytes (tc: `skb->len`, linear part and pages).
    fn frame_len(&self) -> usize;
    /// The interface the program runs on (XDP: `ingress_ifindex`; tc: `skb->ifindex`).
    fn ifindex(&self) -> u32;
    /// Make the first `len` bytes directly readable (tc: `bpf_skb_pull_data` when the linear part
    /// is shorter; XDP frames are linear). `false` when the kernel refused.
    fn pull(&self, len: usize) -> bool;
    /// Copy the frame's first `len` bytes (1..=`LOG_SNAPLEN`, at most the frame's length) to `dst`
    /// (`bpf_xdp_load_bytes` / `bpf_skb_load_bytes`); `false` when the helper refused.
    fn copy_head(&self, dst: *mut u8, len: u32) -> bool;
}

impl Hook for XdpContext {
    #[inline(always)]
    fn progs() -> &'static ProgramArray {
        &TW_PROGS
    }
    #[inline(always)]
    fn start(&self) -> usize {
        self.data()
    }
    #[inline(always)]
    fn end(&self) -> usize {
        self.data_end()
    }
    #[inline(always)]
    fn frame_len(&self) -> usize {
        self.data_end().wrapping_sub(self.data())
    }
    #[inline(always)]
    fn ifindex(&self) -> u32 {
        // SAFETY: `self.ctx` is the program's valid xdp_md.
        unsafe { (*self.ctx).ingress_ifindex }
    }
    #[inline(always)]
    fn pull(&self, _len: usize) -> bool {
        true
    }
    #[inline(always)]
    fn copy_head(&self, dst: *mut u8, len: u32) -> bool {
        // SAFETY: `dst` points to at least `len` writable bytes (a ring buffer record's `data`).
        unsafe { aya_ebpf::helpers::generated::bpf_xdp_load_bytes(self.ctx, 0, dst.cast(), len) == 0 }
    }
}

impl Hook for TcContext {
    #[inline(always)]
    fn progs() -> &'static ProgramArray {
        &TW_PROGS_TC
    }
    #[inline(always)]
    fn start(&self) -> usize {
        self.data()
    }
    #[inline(always)]
    fn end(&self) -> usize {
        self.data_end()
    }
    #[inline(always)]
    fn frame_len(&self) -> usize {
        self.len() as usize
    }
    #[inline(always)]
    fn ifindex(&self) -> u32 {
        // SAFETY: `self.skb.skb` is the program's valid __sk_buff.
        unsafe { (*self.skb.skb).ifindex }
    }
    #[inline(always)]
    fn pull(&self, len: usize) -> bool {
        if self.data() + len <= self.data_end() {
            return true;
        }
        self.pull_data(len as u32).is_ok()
    }
    #[inline(always)]
    fn copy_head(&self, dst: *mut u8, len: u32) -> bool {
        // SAFETY: as for XDP; the skb is the program's context.
        unsafe {
            aya_ebpf::helpers::generated::bpf_skb_load_bytes(
                self.skb.skb as *const _,
                0,
                dst.cast(),
                len,
            ) == 0
        }
    }
}

/// tc verdict of an `ACTION_*` code: ACCEPT is `TCX_NEXT` (-1: the next tcx program, if any, then the
/// stack — an ACCEPT in iptables' filter table does not skip what comes after it), anything else
/// `TC_ACT_SHOT` (fail closed).
#[inline(always)]
pub fn tc_of(action: u32) -> i32 {
    if action == ACTION_ACCEPT {
        tailwall_abi::TCX_NEXT
    } else {
        TC_ACT_SHOT as i32
    }
}

/// XDP verdict of an `ACTION_*` code; anything but ACCEPT drops (fail closed).
#[inline(always)]
pub fn xdp_of(action: u32) -> u32 {
    if action == ACTION_ACCEPT {
        xdp_action::XDP_PASS
    } else {
        xdp_action::XDP_DROP
    }
}

/// Record the decision of this packet on this CPU (read back after BPF_PROG_TEST_RUN): in slot
/// `DECISION_REPLY` while a REJECT's reply is judged (`PktCtx::reply`), else `DECISION_PACKET`.
#[inline(always)]
pub fn decide(rule: u32, reason: u32, action: u32) {
    let slot = match pkt() {
        // SAFETY: a valid per-CPU map value pointer.
        Some(p) if unsafe { (*p).reply } != 0 => tailwall_abi::DECISION_REPLY,
        _ => tailwall_abi::DECISION_PACKET,
    };
    if let Some(d) = TW_DECISION.get_ptr_mut(slot) {
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

/// Count one packet of `bytes` in reason slot `reason` without recording a decision (what a
/// REJECT's reply did: the packet's decision stays the rule's).
#[inline(always)]
pub fn count(reason: u32, bytes: u64) {
    if let Some(c) = TW_REASONS.get_ptr_mut(reason) {
        // SAFETY: a valid per-CPU map value pointer.
        unsafe {
            (*c).packets += 1;
            (*c).bytes += bytes;
        }
    }
}

/// Count one packet of `bytes` in reason slot `reason`, record the decision (no position), and return
/// `action`.
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
    action
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

/// Tail-call `index` of the program type's prog array; returns only if the tail call failed, with a
/// counted drop.
#[inline(always)]
pub fn tail_call<C: Hook>(ctx: &C, index: u32, bytes: u64) -> u32 {
    // SAFETY: control leaves this program on success; nothing here needs dropping.
    unsafe { C::progs().tail_call(ctx, index) };
    by_reason(REASON_TAIL_CALL, tailwall_abi::ACTION_DROP, bytes)
}
