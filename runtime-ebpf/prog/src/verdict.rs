//! `tw_final`: the verdict program at prog-array index `TW_NSTAGES`: the walk over the flattened
//! chains (`compiler/src/flatten.rs`, `docs/decisions/0009-chains-flattened.md`).
//!
//! Guarantees:
//! - the walk starts at the first position of the packet's region (`tw_regions[PktCtx.region]`); a
//!   region the generation does not hold drops (`REASON_NO_REGION`);
//! - each visit takes the lowest set bit of `tw_scratch` at or after `pos` and before the region's
//!   policy position (chunk by chunk, word by word), or the policy position when there is none; with
//!   no field stage (`started == 0`) every position is set, so `pos` itself is visited;
//! - a visited position with `RULE_F_NEEDS_L4` on a packet whose transport header is truncated drops
//!   it (`REASON_HOTDROP`, no counter), as iptables' hotdrop;
//! - otherwise the position's packet/byte counter (bytes = IPv4 total length) is bumped; ACCEPT/DROP
//!   decide (the policy position also counts in `tw_reasons[REASON_POLICY]`); CONTINUE (jump, goto,
//!   RETURN, goto fall-off) moves `pos` to `next` (always forward: a `next` not after the position
//!   drops, `REASON_BOUND`);
//! - at most `TW_NVISITS` visits (the ruleset's exact bound, computed by the compiler), then a drop
//!   (`REASON_BOUND`); a position at or beyond `TW_NRULES` drops (`REASON_BOUND`), a failed lookup
//!   drops (`REASON_MAP`);
//! - `tw_decision` records the deciding position (a rule's or the policy's) and the reason;
//! - a visited `RULE_F_LOG` position (LOG/NFLOG: CONTINUE to the next position) is counted like any
//!   position and writes a record to the ring buffer `tw_log` (`log::report`; a full ring buffer
//!   counts the lost record, the packet goes on);
//! - after the walk, `tw_monitor` is read once: when on, the decision is streamed to `tw_log` too.
//!
//! Verifier cost: each visit is one scan whose exit parks the word index in the per-CPU `tw_pkt.step`
//! (see [`first_bit_from`]), so the instructions the verifier walks grow linearly with
//! `TW_NCHUNKS * TW_NVISITS`; a ruleset without jumps has `TW_NVISITS = 1`.
use aya_ebpf::{
    bindings::{__sk_buff, xdp_action},
    macros::xdp,
    programs::{TcContext, XdpContext},
};
use tailwall_abi::{
    PktCtx, ACTION_ACCEPT, ACTION_CONTINUE, ACTION_DROP, ACTION_REJECT, CHUNK_BITS, CHUNK_WORDS,
    LOG_KIND_RULE, NO_RULE, PORT_TRUNCATED, REASON_BOUND, REASON_HOTDROP, REASON_NO_REGION,
    REASON_POLICY, REASON_REPLY_SENT, REASON_RULE, RULE_F_LOG, RULE_F_NEEDS_L4,
};

use crate::{
    common::{
        by_reason, by_reason_at, count, decide, map_failure, pkt, tail_call, tc_of, xdp_of, Hook,
    },
    log::{monitor, report},
    maps::{nchunks, nrules, nstages, nvisits, TW_REGIONS, TW_RULES, TW_RULE_CNT, TW_SCRATCH},
};

/// Index of the lowest set bit of a non-zero word, by halving (no reliance on LLVM's cttz lowering).
#[inline(always)]
fn ctz(mut x: u64) -> u32 {
    let mut n = 0;
    if x & 0xffff_ffff == 0 {
        n += 32;
        x >>= 32;
    }
    if x & 0xffff == 0 {
        n += 16;
        x >>= 16;
    }
    if x & 0xff == 0 {
        n += 8;
        x >>= 8;
    }
    if x & 0xf == 0 {
        n += 4;
        x >>= 4;
    }
    if x & 0x3 == 0 {
        n += 2;
        x >>= 2;
    }
    if x & 0x1 == 0 {
        n += 1;
    }
    n
}

/// Scratch word `word` with the bits below position `from` cleared.
#[inline(always)]
fn masked(x: u64, word: u32, from: u32) -> u64 {
    let from_word = from / 64;
    if word < from_word {
        0
    } else if word == from_word {
        x & (u64::MAX << (from & 63))
    } else {
        x
    }
}

/// The walk's current position (`tw_pkt.walk`), read afresh: the verifier narrows only this read's
/// register at each comparison, so the states after every word of the scan stay equal and prune.
#[inline(always)]
fn walk_pos(p: *const PktCtx) -> u32 {
    // SAFETY: a valid per-CPU map value pointer.
    unsafe { core::ptr::read_volatile(&raw const (*p).walk) }
}

/// The lowest set bit of the scratch vector at or after the walk's position (`tw_pkt.walk`) and
/// before `end`; `end` when there is none; `Err` when a lookup failed.
///
/// The scan only finds the first non-zero (masked) word and parks its index in the per-CPU
/// `tw_pkt.step` (no program follows the final one, so the slot is free); the index is then read back.
/// The verifier sees one unknown (bounded) value after the scan instead of one constant per (chunk,
/// word) exit, so the code after the scan is verified once per visit and the instruction count grows
/// linearly with `TW_NCHUNKS`. The position is re-read from `tw_pkt.walk` at every comparison for the
/// same reason.
///
/// Cost: the scan starts at the chunk holding the position (earlier chunks are not visited); only
/// that chunk's words are compared with the position, every later chunk costs one load and one test
/// per zero word, as the scan before chains did. (Comparing every chunk with the position made the
/// worst-case 10,000-rule packet ~45 ns slower than before chains: `docs/benchmarks.md`.)
#[inline(always)]
fn first_bit_from(p: *mut PktCtx, end: u32) -> Result<u32, ()> {
    let n = nchunks();
    let mut found = false;
    // The chunk holding the walk position: its words are masked below the position. Every later
    // chunk lies wholly after it and is scanned as before chains (one load and one test per word).
    let c0 = walk_pos(p) / CHUNK_BITS as u32;
    'scan: {
        if c0 >= n {
            break 'scan;
        }
        let Some(s) = TW_SCRATCH.get(c0) else {
            return Err(());
        };
        let mut w = 0;
        while w < CHUNK_WORDS {
            let word = c0 * CHUNK_WORDS as u32 + w as u32;
            let x = s.w[w];
            if x != 0 && masked(x, word, walk_pos(p)) != 0 {
                // SAFETY: a valid per-CPU map value pointer.
                unsafe { core::ptr::write_volatile(&raw mut (*p).step, word) };
                found = true;
                break 'scan;
            }
            w += 1;
        }
        let mut c = c0 + 1;
        while c < n {
            let Some(s) = TW_SCRATCH.get(c) else {
                return Err(());
            };
            let mut w = 0;
            while w < CHUNK_WORDS {
                if s.w[w] != 0 {
                    // SAFETY: a valid per-CPU map value pointer.
                    unsafe {
                        core::ptr::write_volatile(
                            &raw mut (*p).step,
                            c * CHUNK_WORDS as u32 + w as u32,
                        )
                    };
                    found = true;
                    break 'scan;
                }
                w += 1;
            }
            c += 1;
        }
    }
    if !found {
        return Ok(end);
    }
    // SAFETY: as above.
    let word = unsafe { core::ptr::read_volatile(&raw const (*p).step) };
    if word >= tailwall_abi::MAX_CHUNKS * CHUNK_WORDS as u32 {
        return Err(());
    }
    let (c, w) = (
        word / CHUNK_WORDS as u32,
        (word % CHUNK_WORDS as u32) as usize,
    );
    let Some(s) = TW_SCRATCH.get(c) else {
        return Err(());
    };
    let Some(&x) = s.w.get(w) else {
        return Err(());
    };
    let x = masked(x, word, walk_pos(p));
    if x == 0 {
        return Err(());
    }
    let bit = word * 64 + ctz(x);
    Ok(if bit < end { bit } else { end })
}

/// The final program of the XDP chain. A REJECT tail-calls `tw_reject` (index `TW_NSTAGES + 1`,
/// the reply's kind parked in `tw_pkt.step`); the walk of a REJECT's reply (`PktCtx::reply`, at
/// OUTPUT) sends it back (`XDP_TX`, counted `REASON_REPLY_SENT`) when OUTPUT accepts it and
/// drops it otherwise (counted on OUTPUT's deciding position).
#[xdp]
pub fn tw_final(ctx: XdpContext) -> u32 {
    let action = judge(&ctx);
    let Some(pp) = pkt() else {
        return xdp_action::XDP_DROP;
    };
    // SAFETY: a valid per-CPU map value pointer.
    let (reply, bytes) = unsafe { ((*pp).reply, (*pp).ip_len as u64) };
    if reply != 0 {
        if action == ACTION_ACCEPT {
            count(REASON_REPLY_SENT, bytes);
            return xdp_action::XDP_TX;
        }
        return xdp_action::XDP_DROP;
    }
    if action == ACTION_REJECT {
        return xdp_of(tail_call(&ctx, nstages() + 1, bytes));
    }
    xdp_of(action)
}

/// The final program of the tc chain (`tailwall_abi::PROG_FINAL_TC`): the same walk.
#[unsafe(no_mangle)]
#[unsafe(link_section = "classifier")]
pub fn tw_final_tc(ctx: *mut __sk_buff) -> i32 {
    tc_of(judge(&TcContext::new(ctx)))
}

/// The walk, then the monitor (one lookup of `tw_monitor` per packet: `log::monitor`).
#[inline(always)]
fn judge<C: Hook>(ctx: &C) -> u32 {
    let action = walk(ctx);
    match pkt() {
        // SAFETY: a valid per-CPU map value pointer.
        Some(pp) => monitor(ctx, unsafe { &*pp }, action),
        None => action,
    }
}

/// The walk (see the module docs); returns the packet's `ACTION_*` code.
#[inline(always)]
fn walk<C: Hook>(ctx: &C) -> u32 {
    let Some(pp) = pkt() else {
        return map_failure(0);
    };
    // SAFETY: a valid per-CPU map value pointer.
    let p = unsafe { &*pp };
    let bytes = p.ip_len as u64;
    let nrules = nrules();
    let Some(region) = TW_REGIONS.get(p.region) else {
        return by_reason(REASON_NO_REGION, ACTION_DROP, bytes);
    };
    let (first, policy) = (region.first, region.policy);
    if first == NO_RULE {
        return by_reason(REASON_NO_REGION, ACTION_DROP, bytes);
    }
    if policy >= nrules || first > policy {
        return by_reason(REASON_BOUND, ACTION_DROP, bytes);
    }
    let started = p.started != 0;
    // `IpPacket::truncated`: a TCP/UDP header or the ICMP header cut short.
    let truncated = p.src_port == PORT_TRUNCATED
        || p.dst_port == PORT_TRUNCATED
        || p.icmp_type == PORT_TRUNCATED;
    let nv = nvisits();
    let mut pos = first;
    let mut i = 0;
    while i < nv {
        // SAFETY: a valid per-CPU map value pointer.
        unsafe { core::ptr::write_volatile(&raw mut (*pp).walk, pos) };
        let cand = if !started {
            if pos < policy {
                pos
            } else {
                policy
            }
        } else {
            match first_bit_from(pp, policy) {
                Ok(b) => b,
                Err(()) => return map_failure(bytes),
            }
        };
        if cand >= nrules {
            return by_reason(REASON_BOUND, ACTION_DROP, bytes);
        }
        let Some(meta) = TW_RULES.get(cand) else {
            return map_failure(bytes);
        };
        if meta.flags & RULE_F_NEEDS_L4 != 0 && truncated {
            return by_reason_at(cand, REASON_HOTDROP, ACTION_DROP, bytes);
        }
        let Some(cnt) = TW_RULE_CNT.get_ptr_mut(cand) else {
            return map_failure(bytes);
        };
        // SAFETY: a valid per-CPU map value pointer.
        unsafe {
            (*cnt).packets += 1;
            (*cnt).bytes += bytes;
        }
        let action = meta.action;
        if action == ACTION_CONTINUE {
            if meta.flags & RULE_F_LOG != 0 {
                report(ctx, p, LOG_KIND_RULE, cand, 0, 0);
            }
            let next = meta.next;
            if next <= cand {
                return by_reason(REASON_BOUND, ACTION_DROP, bytes);
            }
            pos = next;
            i += 1;
            continue;
        }
        if cand == policy {
            return by_reason_at(cand, REASON_POLICY, action, bytes);
        }
        if action == ACTION_REJECT {
            // The reply's kind, for `tw_reject` (no program reads `step` after the walk).
            // SAFETY: a valid per-CPU map value pointer.
            unsafe { core::ptr::write_volatile(&raw mut (*pp).step, meta.next) };
        }
        decide(cand, REASON_RULE, action);
        return action;
    }
    by_reason(REASON_BOUND, ACTION_DROP, bytes)
}
