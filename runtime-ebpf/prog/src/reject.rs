//! `tw_reject`: the XDP program at prog-array index `TW_NSTAGES + 1`. `tw_final` tail-calls it
//! when a REJECT rule decided (the rule already counted the packet, `tw_decision` already names it,
//! the reply's kind is in `tw_pkt.step`). It writes the reply the kernel would send in place of the
//! rejected frame, byte for byte as `tailwall_compiler::reject::reply` defines it, then judges the
//! reply at OUTPUT: it re-enters the chain through [`crate::entry::entry`] with the hook fixed to
//! OUTPUT (`in` = no device, `out` = the device the frame came in on) and `PktCtx::reply = 1`, so the
//! stages and `tw_final` run on the reply; `tw_final` sends it (`XDP_TX`) when OUTPUT accepts it.
//!
//! Guarantees:
//! - no reply where the kernel sends none (`tailwall_compiler::reject`'s list): dropped, counted
//!   `REASON_REJECT_SILENT`;
//! - a reply that cannot be built (a helper refused to read, resize or write the frame, no route
//!   back for a FORWARD ICMP error's source address): dropped, counted `REASON_REJECT_FAIL` (never
//!   passed: fail closed);
//! - the reply is assembled in the per-CPU `tw_reply_buf` (no packet-pointer arithmetic with
//!   variable lengths), checksummed with `bpf_csum_diff` in chunks of at most 512 bytes, then the
//!   frame is resized (`bpf_xdp_adjust_head` for the ICMP headers, `bpf_xdp_adjust_tail` to the
//!   reply's length) and overwritten (`bpf_xdp_store_bytes`).
use aya_ebpf::{
    bindings::{
        bpf_fib_lookup as FibParams, xdp_action, BPF_FIB_LKUP_RET_NO_NEIGH,
        BPF_FIB_LKUP_RET_SUCCESS, BPF_FIB_LOOKUP_SRC,
    },
    helpers::generated::{
        bpf_csum_diff, bpf_fib_lookup, bpf_xdp_adjust_head, bpf_xdp_adjust_tail,
        bpf_xdp_load_bytes, bpf_xdp_store_bytes,
    },
    macros::xdp,
    programs::XdpContext,
    EbpfContext,
};
use tailwall_abi::{
    PktCtx, ACTION_ACCEPT, HOOK_FORWARD, HOOK_OUTPUT, PORT_ABSENT, REASON_REJECT_FAIL,
    REASON_REJECT_SILENT, REASON_REPLY_SENT, REJECT_ICMP, REJECT_TCP_RESET,
};

use crate::common::{count, pkt, Hook};
use crate::entry::entry;
use crate::maps::{reply_hl, reply_ttl, TW_REPLY_BUF};

/// Most bytes of the rejected IPv4 datagram an ICMP error quotes (`reject::QUOTE_V4`).
const QUOTE_V4: u32 = 548;
/// Most bytes of the rejected IPv6 packet an ICMPv6 error quotes (`reject::QUOTE_V6`).
const QUOTE_V6: u32 = 1232;
/// Ethernet header and at most two VLAN tags.
const L3_MAX: u32 = 14 + 8;
/// The longest reply: L3_MAX + 40 + 8 + QUOTE_V6.
const REPLY_MAX: u32 = L3_MAX + 48 + QUOTE_V6;
/// Largest `bpf_csum_diff` input (`struct bpf_scratchpad`: 128 words).
const CSUM_CHUNK: u32 = 512;

const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

enum Built {
    /// The frame now holds the reply.
    Reply,
    /// The kernel would send nothing.
    Silent,
    /// The reply could not be built.
    Fail,
}

/// The program (see the module docs).
#[xdp]
pub fn tw_reject(ctx: XdpContext) -> u32 {
    let Some(pp) = pkt() else {
        return xdp_action::XDP_DROP;
    };
    // SAFETY: a valid per-CPU map value pointer; copied before `entry` rewrites it.
    let p = unsafe { *pp };
    let bytes = p.ip_len as u64;
    match build(&ctx, &p) {
        Built::Reply => {
            // Returns only when the entry decided the reply itself or a tail call failed.
            if entry(&ctx, HOOK_OUTPUT, 1) == ACTION_ACCEPT {
                count(REASON_REPLY_SENT, bytes);
                xdp_action::XDP_TX
            } else {
                xdp_action::XDP_DROP
            }
        }
        Built::Silent => {
            count(REASON_REJECT_SILENT, bytes);
            xdp_action::XDP_DROP
        }
        Built::Fail => {
            count(REASON_REJECT_FAIL, bytes);
            xdp_action::XDP_DROP
        }
    }
}

#[inline(always)]
fn build(ctx: &XdpContext, p: &PktCtx) -> Built {
    let kind = p.step;
    let v6 = p.region & 1 == 1;
    let l3 = p.l3_off;
    if !(14..=L3_MAX).contains(&l3) {
        return Built::Fail;
    }
    if p.fragment != 0 {
        return Built::Silent;
    }
    let data = ctx.data();
    if data + 14 > ctx.data_end() {
        return Built::Fail;
    }
    // SAFETY: checked against data_end above.
    let l2_multicast = unsafe { *(data as *const u8) } & 1 != 0;
    if v6 {
        let (s, d) = (&p.src_ip6, &p.dst_ip6);
        if d[0] == 0xff {
            return Built::Silent;
        }
        if s[0] == 0xff || *s == [0u8; 16] {
            return Built::Silent;
        }
    } else {
        let (s, d) = (u32::from_be_bytes(p.src_ip), u32::from_be_bytes(p.dst_ip));
        if d >> 28 == 0xe || d == u32::MAX {
            return Built::Silent;
        }
        if s == 0 || s >> 24 == 127 || s >> 28 == 0xe || s == u32::MAX {
            return Built::Silent;
        }
    }
    if kind & REJECT_ICMP != 0 {
        if l2_multicast {
            return Built::Silent;
        }
        let icmp_proto = if v6 { 58 } else { 1 };
        if p.proto == icmp_proto {
            if p.icmp_type >= PORT_ABSENT {
                return Built::Silent;
            }
            let ty = p.icmp_type >> 8;
            let error = if v6 {
                ty < 128
            } else {
                ty > 18 || ty == 3 || ty == 4 || ty == 5 || ty == 11 || ty == 12
            };
            if error {
                return Built::Silent;
            }
        }
        if v6 && (p.l4_off < l3 || p.l4_off - l3 >= p.ip_len) {
            return Built::Silent;
        }
        icmp(ctx, p, v6, l3, (kind >> 8) as u8, kind as u8)
    } else if kind == REJECT_TCP_RESET {
        if p.proto != 6 || p.tcp_flags > 0xff {
            return Built::Silent;
        }
        if p.tcp_flags & 0x04 != 0 {
            return Built::Silent;
        }
        rst(ctx, p, v6, l3)
    } else {
        Built::Fail
    }
}

/// Fold a 32-bit ones' complement sum and complement it: the checksum to store, in the byte order
/// `bpf_csum_diff` summed in (store it with `to_ne_bytes`).
#[inline(always)]
fn fold(sum: u64) -> u16 {
    let mut s = (sum & 0xffff_ffff) as u32 as u64;
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    !(s as u16)
}

/// `x`, through a volatile stack read: LLVM forgets what it knew of it, so the bounds check that
/// follows is made on the register passed to the helper (the verifier needs exactly that).
#[inline(always)]
fn opaque(x: u32) -> u32 {
    // SAFETY: a plain read of a local.
    unsafe { core::ptr::read_volatile(&x) }
}

/// `bpf_csum_diff` of `len` bytes (a multiple of 4, at most `CSUM_CHUNK`) at `at` of the buffer.
#[inline(always)]
fn csum(b: *mut u8, at: u32, len: u32, seed: u64) -> Option<u64> {
    let (at, len) = (opaque(at), opaque(len));
    if len > CSUM_CHUNK || at > REPLY_MAX {
        return None;
    }
    if len == 0 {
        return Some(seed);
    }
    // SAFETY: `at + len` lies within the buffer (REPLY_MAX + CSUM_CHUNK < REPLY_BUF_LEN); the
    // helper only reads.
    let r = unsafe {
        bpf_csum_diff(
            core::ptr::null_mut(),
            0,
            b.add(at as usize) as *mut u32,
            len,
            seed as u32,
        )
    };
    if r < 0 {
        None
    } else {
        Some(r as u64)
    }
}

/// Load `len` (1..) bytes of the frame at `off` into the buffer at `at`.
#[inline(always)]
fn load(ctx: &XdpContext, off: u32, b: *mut u8, at: u32, len: u32) -> bool {
    let (at, len) = (opaque(at), opaque(len));
    if len == 0 || len > QUOTE_V6 || at > L3_MAX + 48 {
        return false;
    }
    // SAFETY: `at + len` lies within the buffer.
    unsafe {
        bpf_xdp_load_bytes(
            ctx.as_ptr() as *mut _,
            off,
            b.add(at as usize) as *mut _,
            len,
        ) == 0
    }
}

/// The L2 header into the buffer, MAC addresses swapped.
#[inline(always)]
fn link(ctx: &XdpContext, b: &mut [u8; tailwall_abi::REPLY_BUF_LEN], l3: u32) -> bool {
    if !load(ctx, 0, b.as_mut_ptr(), 0, l3) {
        return false;
    }
    let mut i = 0;
    while i < 6 {
        b.swap(i, i + 6);
        i += 1;
    }
    true
}

/// Resize the frame from its length to `new_len` after growing its head by `grow`, and write the
/// buffer over it.
#[inline(always)]
fn emit(ctx: &XdpContext, b: *mut u8, grow: u32, new_len: u32) -> bool {
    let new_len = opaque(new_len);
    if new_len == 0 || new_len > REPLY_MAX {
        return false;
    }
    let old = ctx.data_end().wrapping_sub(ctx.data()) as i64;
    let raw = ctx.as_ptr() as *mut _;
    // SAFETY: the helpers check their arguments against the frame.
    unsafe {
        if grow != 0 && bpf_xdp_adjust_head(raw, -(grow as i32)) != 0 {
            return false;
        }
        let delta = new_len as i64 - (old + grow as i64);
        if delta != 0 && bpf_xdp_adjust_tail(raw, delta as i32) != 0 {
            return false;
        }
        bpf_xdp_store_bytes(raw, 0, b as *mut _, new_len) == 0
    }
}

/// The source address of a FORWARD ICMP error: the preferred source of the route back to the
/// sender (`bpf_fib_lookup` with `BPF_FIB_LOOKUP_SRC`, as `icmp_route_lookup` selects it), written
/// at `at` of the buffer (4 or 16 bytes).
#[inline(always)]
fn route_src(
    ctx: &XdpContext,
    p: &PktCtx,
    v6: bool,
    b: &mut [u8; tailwall_abi::REPLY_BUF_LEN],
    at: usize,
) -> bool {
    // SAFETY: an all-zero bpf_fib_lookup is a valid value.
    let mut f: FibParams = unsafe { core::mem::zeroed() };
    f.ifindex = ctx.ifindex();
    if v6 {
        f.family = AF_INET6;
        f.l4_protocol = 58;
        let s = &p.src_ip6;
        let w = |i: usize| u32::from_ne_bytes([s[i], s[i + 1], s[i + 2], s[i + 3]]);
        f.__bindgen_anon_4.ipv6_dst = [w(0), w(4), w(8), w(12)];
    } else {
        f.family = AF_INET;
        f.l4_protocol = 1;
        f.__bindgen_anon_4.ipv4_dst = u32::from_ne_bytes(p.src_ip);
    }
    // SAFETY: the helper reads and writes `f` within its size.
    let rc = unsafe {
        bpf_fib_lookup(
            ctx.as_ptr(),
            &mut f,
            core::mem::size_of::<FibParams>() as i32,
            BPF_FIB_LOOKUP_SRC,
        )
    };
    if rc < 0 || (rc as u32 != BPF_FIB_LKUP_RET_SUCCESS && rc as u32 != BPF_FIB_LKUP_RET_NO_NEIGH) {
        return false;
    }
    if at + 16 > b.len() {
        return false;
    }
    // SAFETY: the union member of the family just looked up.
    unsafe {
        if v6 {
            let src = f.__bindgen_anon_3.ipv6_src;
            let mut i = 0;
            while i < 4 {
                let x = src[i].to_ne_bytes();
                b[at + i * 4..at + i * 4 + 4].copy_from_slice(&x);
                i += 1;
            }
        } else {
            b[at..at + 4].copy_from_slice(&f.__bindgen_anon_3.ipv4_src.to_ne_bytes());
        }
    }
    true
}

/// An ICMP (type 3) / ICMPv6 (type 1) error of `code` quoting the rejected packet.
#[inline(always)]
fn icmp(ctx: &XdpContext, p: &PktCtx, v6: bool, l3: u32, ty: u8, code: u8) -> Built {
    let Some(bp) = TW_REPLY_BUF.get_ptr_mut(0) else {
        return Built::Fail;
    };
    // SAFETY: a valid per-CPU map value pointer.
    let b = unsafe { &mut (*bp).b };
    let bptr = b.as_mut_ptr();
    let (hl, cap) = if v6 {
        (40u32, QUOTE_V6)
    } else {
        (20u32, QUOTE_V4)
    };
    let q = if p.ip_len < cap { p.ip_len } else { cap };
    if !(20..=QUOTE_V6).contains(&q) || l3 > L3_MAX {
        return Built::Fail;
    }
    let head = hl + 8;
    if !link(ctx, b, l3) || !load(ctx, l3, bptr, l3 + head, q) {
        return Built::Fail;
    }
    // Masked so that the verifier sees every index below the buffer's size (l3 <= 22, the
    // reply's end <= REPLY_MAX, both checked above: the masks change no value).
    let ip = (opaque(l3) & 0x1f) as usize;
    let end = (opaque(l3 + head + q) & 0x7ff) as usize;
    // Zero padding up to the next 4-byte boundary (the checksum sums whole words).
    b[end] = 0;
    b[end + 1] = 0;
    b[end + 2] = 0;
    let ilen = 8 + q;
    if v6 {
        b[ip] = 0x60;
        b[ip + 1] = 0;
        b[ip + 2] = 0;
        b[ip + 3] = 0;
        b[ip + 4..ip + 6].copy_from_slice(&(ilen as u16).to_be_bytes());
        b[ip + 6] = 58;
        b[ip + 7] = reply_hl();
        b[ip + 24..ip + 40].copy_from_slice(&p.src_ip6);
        if p.hook == HOOK_FORWARD {
            if !route_src(ctx, p, true, b, ip + 8) {
                return Built::Fail;
            }
        } else {
            b[ip + 8..ip + 24].copy_from_slice(&p.dst_ip6);
        }
    } else {
        // SAFETY: the rejected IPv4 header's TOS byte, loaded into the quote.
        let tos = b[ip + 28 + 1];
        b[ip] = 0x45;
        b[ip + 1] = (tos & 0x1e) | 0xc0;
        b[ip + 2..ip + 4].copy_from_slice(&((hl + ilen) as u16).to_be_bytes());
        b[ip + 4..ip + 10].copy_from_slice(&[0, 0, 0, 0, reply_ttl(), 1]);
        b[ip + 10] = 0;
        b[ip + 11] = 0;
        b[ip + 16..ip + 20].copy_from_slice(&p.src_ip);
        if p.hook == HOOK_FORWARD {
            if !route_src(ctx, p, false, b, ip + 12) {
                return Built::Fail;
            }
        } else {
            b[ip + 12..ip + 16].copy_from_slice(&p.dst_ip);
        }
    }
    let t = ip + hl as usize;
    b[t..t + 8].copy_from_slice(&[ty, code, 0, 0, 0, 0, 0, 0]);
    // The ICMP checksum: ICMPv6 over the pseudo-header too (RFC 8200 8.1).
    let mut sum = 0u64;
    if v6 {
        let Some(s) = csum(bptr, l3 + 8, 32, 0) else {
            return Built::Fail;
        };
        let mut tail = [ilen.to_be(), 58u32.to_be()];
        // SAFETY: a stack array of 8 bytes, read only.
        let r = unsafe { bpf_csum_diff(core::ptr::null_mut(), 0, tail.as_mut_ptr(), 8, s as u32) };
        if r < 0 {
            return Built::Fail;
        }
        sum = r as u64;
    }
    let n = (ilen + 3) & !3;
    let mut at = l3 + hl;
    let mut left = n;
    let mut i = 0;
    while i < 3 {
        let c = if left > CSUM_CHUNK { CSUM_CHUNK } else { left };
        let Some(s) = csum(bptr, at, c, sum) else {
            return Built::Fail;
        };
        sum = s;
        at += c;
        left -= c;
        i += 1;
    }
    if left != 0 {
        return Built::Fail;
    }
    b[t + 2..t + 4].copy_from_slice(&fold(sum).to_ne_bytes());
    if !v6 {
        let Some(s) = csum(bptr, l3, 20, 0) else {
            return Built::Fail;
        };
        b[ip + 10..ip + 12].copy_from_slice(&fold(s).to_ne_bytes());
    }
    if emit(ctx, bptr, head, l3 + head + q) {
        Built::Reply
    } else {
        Built::Fail
    }
}

/// A TCP RST answering the rejected segment (`nf_send_reset` / `nf_send_reset6`).
#[inline(always)]
fn rst(ctx: &XdpContext, p: &PktCtx, v6: bool, l3: u32) -> Built {
    let Some(bp) = TW_REPLY_BUF.get_ptr_mut(0) else {
        return Built::Fail;
    };
    // SAFETY: a valid per-CPU map value pointer.
    let b = unsafe { &mut (*bp).b };
    let bptr = b.as_mut_ptr();
    let l4 = p.l4_off;
    if l4 < l3 + 20 || l4 - l3 > p.ip_len || p.ip_len - (l4 - l3) < 20 {
        return Built::Fail;
    }
    let seglen = p.ip_len - (l4 - l3);
    let mut o = [0u8; 20];
    // SAFETY: a stack array of 20 bytes.
    if unsafe { bpf_xdp_load_bytes(ctx.as_ptr() as *mut _, l4, o.as_mut_ptr() as *mut _, 20) } != 0
    {
        return Built::Fail;
    }
    if !link(ctx, b, l3) {
        return Built::Fail;
    }
    let hl = if v6 { 40u32 } else { 20 };
    // Masked for the verifier (l3 <= 22 was checked: no value changes).
    let ip = (opaque(l3) & 0x1f) as usize;
    if v6 {
        b[ip..ip + 8].copy_from_slice(&[0x60, 0, 0, 0, 0, 20, 6, reply_hl()]);
        b[ip + 8..ip + 24].copy_from_slice(&p.dst_ip6);
        b[ip + 24..ip + 40].copy_from_slice(&p.src_ip6);
    } else {
        b[ip..ip + 12].copy_from_slice(&[0x45, 0, 0, 40, 0, 0, 0x40, 0, reply_ttl(), 6, 0, 0]);
        b[ip + 12..ip + 16].copy_from_slice(&p.dst_ip);
        b[ip + 16..ip + 20].copy_from_slice(&p.src_ip);
    }
    let t = ip + hl as usize;
    let mut h = [0u8; 20];
    h[0] = o[2];
    h[1] = o[3];
    h[2] = o[0];
    h[3] = o[1];
    h[12] = 0x50;
    let flags = o[13];
    if flags & 0x10 != 0 {
        h[4..8].copy_from_slice(&o[8..12]);
        h[13] = 0x04;
    } else {
        let doff = ((o[12] >> 4) as u32) * 4;
        let ack = u32::from_be_bytes([o[4], o[5], o[6], o[7]])
            .wrapping_add((flags & 0x02 != 0) as u32)
            .wrapping_add((flags & 0x01 != 0) as u32)
            .wrapping_add(seglen)
            .wrapping_sub(doff);
        h[8..12].copy_from_slice(&ack.to_be_bytes());
        h[13] = 0x14;
    }
    b[t..t + 20].copy_from_slice(&h);
    // The pseudo-header: the addresses as written, then length 20 and protocol 6.
    let (addr_at, addr_len) = if v6 { (l3 + 8, 32) } else { (l3 + 12, 8) };
    let Some(s) = csum(bptr, addr_at, addr_len, 0) else {
        return Built::Fail;
    };
    let mut tail = [20u32.to_be(), 6u32.to_be()];
    // SAFETY: a stack array of 8 bytes, read only.
    let r = unsafe { bpf_csum_diff(core::ptr::null_mut(), 0, tail.as_mut_ptr(), 8, s as u32) };
    if r < 0 {
        return Built::Fail;
    }
    let Some(s) = csum(bptr, l3 + hl, 20, r as u64) else {
        return Built::Fail;
    };
    b[t + 16..t + 18].copy_from_slice(&fold(s).to_ne_bytes());
    if !v6 {
        let Some(s) = csum(bptr, l3, 20, 0) else {
            return Built::Fail;
        };
        b[ip + 10..ip + 12].copy_from_slice(&fold(s).to_ne_bytes());
    }
    if emit(ctx, bptr, 0, l3 + hl + 20) {
        Built::Reply
    } else {
        Built::Fail
    }
}
