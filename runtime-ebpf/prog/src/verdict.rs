//! `tw_final`: the verdict program at prog-array index `TW_NSTAGES`.
//!
//! Guarantees:
//! - the deciding rule is the lowest set bit of `tw_scratch` (chunk by chunk, word by word), i.e. the
//!   first rule, in hook order, that every field stage admitted; with no field stage (`started == 0`)
//!   every rule admits every packet and rule 0 decides when there is one;
//! - a deciding rule with `RULE_F_NEEDS_L4` on a packet whose transport header is truncated drops it
//!   (`REASON_HOTDROP`, no rule counter), as iptables' hotdrop;
//! - otherwise the rule's packet/byte counter (bytes = IPv4 total length) is bumped and its action taken;
//!   no set bit: the policy (`TW_POLICY`), counted in `tw_reasons[REASON_POLICY]`;
//! - a set bit at or beyond `TW_NRULES` drops (`REASON_BOUND`), a failed lookup drops (`REASON_MAP`).
use aya_ebpf::{macros::xdp, programs::XdpContext};
use tailwall_abi::{
    PktCtx, ACTION_DROP, CHUNK_WORDS, NO_RULE, PORT_TRUNCATED, REASON_BOUND, REASON_HOTDROP,
    REASON_POLICY, REASON_RULE, RULE_F_NEEDS_L4,
};

use crate::{
    common::{by_reason, decide, map_failure, pkt, xdp_of},
    maps::{nchunks, nrules, policy, TW_RULES, TW_RULE_CNT, TW_SCRATCH},
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

/// First set bit of the scratch vector, `NO_RULE` when it is all zero; `Err` when a lookup failed.
///
/// The scan only finds the first non-zero word and parks its index in the per-CPU `tw_pkt.step` (no
/// program follows the final one, so the slot is free); the index is then read back. The verifier sees
/// one unknown (bounded) value after the scan instead of one constant per (chunk, word) exit, so the
/// code after the scan is verified once and the instruction count grows linearly with `TW_NCHUNKS`.
#[inline(always)]
fn first_bit(p: *mut PktCtx) -> Result<u32, ()> {
    let n = nchunks();
    let mut found = false;
    let mut c = 0u32;
    'scan: while c < n {
        let Some(s) = TW_SCRATCH.get(c) else {
            return Err(());
        };
        let mut w = 0;
        while w < CHUNK_WORDS {
            if s.w[w] != 0 {
                // SAFETY: a valid per-CPU map value pointer.
                unsafe {
                    core::ptr::write_volatile(&raw mut (*p).step, c * CHUNK_WORDS as u32 + w as u32)
                };
                found = true;
                break 'scan;
            }
            w += 1;
        }
        c += 1;
    }
    if !found {
        return Ok(NO_RULE);
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
    if x == 0 {
        return Err(());
    }
    Ok(word * 64 + ctz(x))
}

#[xdp]
pub fn tw_final(_ctx: XdpContext) -> u32 {
    let Some(pp) = pkt() else {
        return map_failure(0);
    };
    // SAFETY: a valid per-CPU map value pointer.
    let p = unsafe { &*pp };
    let bytes = p.ip_len as u64;
    let nrules = nrules();
    let rule = if p.started == 0 {
        if nrules > 0 {
            0
        } else {
            NO_RULE
        }
    } else {
        match first_bit(pp) {
            Ok(r) => r,
            Err(()) => return map_failure(bytes),
        }
    };
    if rule == NO_RULE {
        return by_reason(REASON_POLICY, policy(), bytes);
    }
    if rule >= nrules {
        return by_reason(REASON_BOUND, ACTION_DROP, bytes);
    }
    let Some(meta) = TW_RULES.get(rule) else {
        return map_failure(bytes);
    };
    if meta.flags & RULE_F_NEEDS_L4 != 0
        && (p.src_port == PORT_TRUNCATED || p.dst_port == PORT_TRUNCATED)
    {
        let verdict = by_reason(REASON_HOTDROP, ACTION_DROP, bytes);
        decide(rule, REASON_HOTDROP, ACTION_DROP);
        return verdict;
    }
    let Some(cnt) = TW_RULE_CNT.get_ptr_mut(rule) else {
        return map_failure(bytes);
    };
    // SAFETY: a valid per-CPU map value pointer.
    unsafe {
        (*cnt).packets += 1;
        (*cnt).bytes += bytes;
    }
    let action = meta.action;
    decide(rule, REASON_RULE, action);
    xdp_of(action)
}
