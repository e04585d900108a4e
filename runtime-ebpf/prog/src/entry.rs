//! `tw_entry`: the attached XDP program. Decodes Ethernet + IPv4 / IPv6 with exactly the decisions of
//! `tailwall_compiler::packet::decode`, fills the per-CPU `tw_pkt` and tail-calls `tw_progs[0]`.
//!
//! Guarantees (mirroring `packet::decode`):
//! - up to `MAX_VLAN_TAGS` VLAN tags (0x8100 / 0x88a8) are skipped and the inner header classified; one
//!   more tag: `XDP_DROP`, counted `REASON_BOUND`; a frame ending inside a tag: `XDP_DROP`, counted
//!   `REASON_MALFORMED`;
//! - shorter than an Ethernet header, or (inner) EtherType neither 0x0800 nor 0x86DD:
//!   `XDP_PASS`, counted `REASON_NOT_IPV4`;
//! - a frame of a family the generation holds no ruleset for (no region of it at any hook):
//!   `XDP_PASS`, counted `REASON_OTHER_FAMILY`, as the family's empty iptables / ip6tables table
//!   passes it (IPv6: before parsing it; IPv4: after the checks below);
//! - (inner) EtherType 0x86DD (IPv6): see [`ipv6`];
//! - IPv4 shorter than 20 bytes, version ≠ 4, IHL < 5, header longer than the frame, total length
//!   shorter than the header or longer than the frame: `XDP_DROP`, counted `REASON_MALFORMED`;
//! - the transport header is read only on the first fragment and only within the IPv4 total length
//!   (Ethernet padding ignored): TCP needs 20 bytes, UDP 8, else `PORT_TRUNCATED`; other protocols and
//!   later fragments carry `PORT_ABSENT`, except a TCP fragment at offset 1: `PORT_TRUNCATED` (the tcp
//!   match hotdrops it). The TCP flags (byte 13) the same way, for TCP only.
//!
//! - the hook (`PktCtx::hook`) is decided by the FIB ([`crate::hook::decide`], IPv6:
//!   [`crate::hook::decide6`]) in `tw_entry`; the
//!   test-run entries `tw_entry_in` / `tw_entry_fwd` fix it instead (BPF_PROG_TEST_RUN frames have no
//!   real ingress). A FIB lookup the helper refuses drops the packet (`REASON_MAP`). The walk judges
//!   the packet by that hook's region (`PktCtx::region = hook * 2 + family`): a routed packet by
//!   FORWARD's rules, a delivered one by INPUT's.
//!
//! The checksum is not verified (the kernel does it after XDP).
use aya_ebpf::{
    bindings::__sk_buff,
    macros::xdp,
    programs::{TcContext, XdpContext},
};
use tailwall_abi::{
    PktCtx, ACTION_ACCEPT, ACTION_DROP, CT_INVALID, CT_RELATED, HOOK_FORWARD, HOOK_INPUT, HOOK_OUTPUT,
    MAX_EXT_HEADERS, MAX_VLAN_TAGS, NO_RULE, PORT_ABSENT, PORT_TRUNCATED, REASON_BOUND, REASON_CT,
    REASON_MALFORMED, REASON_NOT_IPV4, REASON_OTHER_FAMILY,
};

use crate::ct::{self, CtLookup};
use crate::hook::{self, Flow, Flow6};
use crate::maps::TW_REGIONS;

use crate::common::{by_reason, map_failure, pkt, tail_call, tc_of, xdp_of, Hook};
use crate::log::monitor_entry;

const ETH_HLEN: usize = 14;
const VLAN_HLEN: usize = 4;
const ETH_P_IP: u32 = 0x0800;
const ETH_P_IPV6: u32 = 0x86dd;
const ETH_P_8021Q: u32 = 0x8100;
const ETH_P_8021AD: u32 = 0x88a8;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_ICMP: u8 = 1;
const IPPROTO_ICMPV6: u8 = 58;
/// `struct icmphdr`: what `-m icmp` reads (`packet::ICMP_HLEN`).
const ICMP_HLEN: usize = 8;

#[inline(always)]
pub(crate) fn byte(at: usize) -> u8 {
    // SAFETY: every caller has checked `at < data_end` against the packet bounds.
    unsafe { *(at as *const u8) }
}

#[inline(always)]
pub(crate) fn be16(at: usize) -> u32 {
    ((byte(at) as u32) << 8) | byte(at + 1) as u32
}

/// `forced`: the hook for every packet, or this value to ask the FIB.
const HOOK_BY_FIB: u32 = u32::MAX;

/// The attached entry program: the hook comes from the FIB.
#[xdp]
pub fn tw_entry(ctx: XdpContext) -> u32 {
    xdp_of(monitor_entry(&ctx, entry(&ctx, HOOK_BY_FIB, 0)))
}

/// Test-run entry: every packet is judged at INPUT.
#[xdp]
pub fn tw_entry_in(ctx: XdpContext) -> u32 {
    xdp_of(monitor_entry(&ctx, entry(&ctx, HOOK_INPUT, 0)))
}

/// Test-run entry: every packet is judged at FORWARD (egress interface unknown).
#[xdp]
pub fn tw_entry_fwd(ctx: XdpContext) -> u32 {
    xdp_of(monitor_entry(&ctx, entry(&ctx, HOOK_FORWARD, 0)))
}

/// `AF_PACKET`: a packet socket's frames never pass netfilter's OUTPUT.
const AF_PACKET: u32 = 17;

/// The tc entry program attached at tcx egress (`tailwall_abi::PROG_EGRESS`): a locally generated
/// packet (one with a socket, `skb->sk`, other than a packet socket) is judged at OUTPUT
/// (`out_ifindex` = the device it leaves by, no input device, no FIB lookup). A packet without a
/// socket is a forwarded one (FORWARD judged it where it came in; netfilter's OUTPUT never sees it),
/// and a packet socket's frame (`AF_PACKET`: DHCP clients, `tcpdump`-style senders) bypasses
/// netfilter: both go on untouched (`TCX_NEXT`), as netfilter lets them. The frame starts with its
/// Ethernet header, as at XDP.
#[unsafe(no_mangle)]
#[unsafe(link_section = "classifier")]
pub fn tw_egress(skb: *mut __sk_buff) -> i32 {
    // SAFETY: `skb` is the program's valid __sk_buff; `sk` is a pointer the kernel fills (or NULL),
    // whose `family` is readable once it is not NULL.
    let netfilter_sees = unsafe {
        let sk = (*skb).__bindgen_anon_2.sk;
        !sk.is_null() && core::ptr::read_volatile(&raw const (*sk).family) != AF_PACKET
    };
    if !netfilter_sees {
        return tailwall_abi::TCX_NEXT;
    }
    let ctx = TcContext::new(skb);
    tc_of(monitor_entry(&ctx, entry(&ctx, HOOK_OUTPUT, 0)))
}

/// The headers the entry program reads of an IPv4 packet, at most: Ethernet, `MAX_VLAN_TAGS` tags, a
/// 60-byte IPv4 header, the 20-byte TCP header (tc: pulled into the skb's linear part when they are
/// not there).
const HEADERS_MAX: usize = ETH_HLEN + VLAN_HLEN * MAX_VLAN_TAGS as usize + 60 + 20;
/// The bytes pulled at tc for an IPv6 packet, at most (XDP: the whole frame is readable): the
/// 40-byte header, extension headers and the transport header. An IPv6 header chain reaching past
/// them is dropped at tc (`REASON_BOUND`, `docs/conformance.md`); real chains (hop-by-hop, a
/// fragment header, AH) are far shorter.
const HEADERS_MAX_V6: usize = 512;

/// Parse the frame at `ctx`, fill `tw_pkt` for `forced`'s hook (or the FIB's) and tail-call the
/// chain (`reply`: 1 when the frame is a REJECT's reply `tw_reject` built, `PktCtx::reply`); returns an `ACTION_*` code when the packet is decided here or the tail call failed.
#[inline(always)]
pub fn entry<C: Hook + CtLookup>(ctx: &C, forced: u32, reply: u32) -> u32 {
    // First: a decision taken before `PktCtx` is filled (not IP, malformed) must go to this
    // packet's `tw_decision` slot, not to the slot of the previous packet's REJECT reply.
    if let Some(p) = pkt() {
        // SAFETY: a valid per-CPU map value pointer.
        unsafe { (*p).reply = reply };
    }
    let wire = ctx.frame_len();
    let frame_len = wire as u64;
    if !ctx.pull(if wire < HEADERS_MAX {
        wire
    } else {
        HEADERS_MAX
    }) {
        return map_failure(frame_len);
    }
    let data = ctx.start();
    let end = ctx.end();
    // The frame's true end: lengths (the IPv4 total length) are checked against it, reads against
    // `end` (equal at XDP; at tc the pages past the linear part are not read).
    let wire_end = data + wire;
    if data + ETH_HLEN > end {
        return by_reason(REASON_NOT_IPV4, ACTION_ACCEPT, frame_len);
    }
    // `packet::network_header`: skip up to MAX_VLAN_TAGS tags to the inner EtherType.
    let mut ethertype = be16(data + 12);
    let mut l3 = data + ETH_HLEN;
    // `l3 - data`, kept as a number for the IPv6 branch, which re-reads the packet pointers.
    let mut l3_off = ETH_HLEN;
    for _ in 0..MAX_VLAN_TAGS {
        if ethertype != ETH_P_8021Q && ethertype != ETH_P_8021AD {
            break;
        }
        if l3 + VLAN_HLEN > end {
            return by_reason(REASON_MALFORMED, ACTION_DROP, frame_len);
        }
        ethertype = be16(l3 + 2);
        l3 += VLAN_HLEN;
        l3_off += VLAN_HLEN;
    }
    if ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD {
        return by_reason(REASON_BOUND, ACTION_DROP, frame_len);
    }
    if ethertype == ETH_P_IPV6 {
        // `interp::classified`: a generation without an IPv6 ruleset passes IPv6 unparsed.
        if !family_held(FAMILY_V6) {
            return by_reason(REASON_OTHER_FAMILY, ACTION_ACCEPT, frame_len);
        }
        // tc: the extension headers may lie past the IPv4-sized pull (XDP: a no-op).
        if !ctx.pull(if wire < HEADERS_MAX_V6 {
            wire
        } else {
            HEADERS_MAX_V6
        }) {
            return map_failure(frame_len);
        }
        // SAFETY: a plain read of a local. Volatile so that LLVM neither derives the offset from the
        // (now stale) packet pointers nor drops the bound below, which the verifier needs to see.
        let off = unsafe { core::ptr::read_volatile(&l3_off) };
        if off > ETH_HLEN + VLAN_HLEN * MAX_VLAN_TAGS {
            return by_reason(REASON_MALFORMED, ACTION_DROP, frame_len);
        }
        let data = ctx.start();
        // The bytes from the IPv6 header to the frame's true end, kept a number: packet pointer
        // arithmetic with the (unbounded) skb length is not allowed.
        let room = wire.saturating_sub(off);
        return ipv6(
            ctx,
            forced,
            reply,
            off,
            data + off,
            ctx.end(),
            room,
            frame_len,
        );
    }
    if ethertype != ETH_P_IP {
        return by_reason(REASON_NOT_IPV4, ACTION_ACCEPT, frame_len);
    }
    let ip = l3;
    if ip + 20 > end {
        return by_reason(REASON_MALFORMED, ACTION_DROP, frame_len);
    }
    let b0 = byte(ip);
    if b0 >> 4 != 4 {
        return by_reason(REASON_MALFORMED, ACTION_DROP, frame_len);
    }
    let ihl = ((b0 & 0x0f) as usize) * 4;
    if ihl < 20 || ip + ihl > end {
        return by_reason(REASON_MALFORMED, ACTION_DROP, frame_len);
    }
    let tot_len = be16(ip + 2) as usize;
    if tot_len < ihl || ip + tot_len > wire_end {
        return by_reason(REASON_MALFORMED, ACTION_DROP, frame_len);
    }
    let frag_offset = be16(ip + 6) & 0x1fff;
    let proto = byte(ip + 9);
    let src_ip = [byte(ip + 12), byte(ip + 13), byte(ip + 14), byte(ip + 15)];
    let dst_ip = [byte(ip + 16), byte(ip + 17), byte(ip + 18), byte(ip + 19)];

    let (mut src_port, mut dst_port, mut tcp_flags) = (PORT_ABSENT, PORT_ABSENT, PORT_ABSENT);
    if frag_offset == 1 && proto == IPPROTO_TCP {
        // The tcp match hotdrops a TCP fragment at offset 1, as a truncated header (`packet::decode`).
        src_port = PORT_TRUNCATED;
        dst_port = PORT_TRUNCATED;
        tcp_flags = PORT_TRUNCATED;
    } else if frag_offset == 0 && (proto == IPPROTO_TCP || proto == IPPROTO_UDP) {
        let need = if proto == IPPROTO_TCP { 20 } else { 8 };
        let l4 = ip + ihl;
        // `l4 + 4 > end` cannot hold when the first test passes; it is there for the verifier.
        if tot_len - ihl < need || l4 + 4 > end {
            src_port = PORT_TRUNCATED;
            dst_port = PORT_TRUNCATED;
            if proto == IPPROTO_TCP {
                tcp_flags = PORT_TRUNCATED;
            }
        } else {
            src_port = be16(l4);
            dst_port = be16(l4 + 2);
            // `l4 + 14 > end` cannot hold for a complete TCP header; it is there for the verifier.
            if proto == IPPROTO_TCP {
                tcp_flags = if l4 + 14 > end {
                    PORT_TRUNCATED
                } else {
                    byte(l4 + 13) as u32
                };
            }
        }
    }

    // `packet::decode`'s `icmp`: type << 8 | code of a first fragment's complete 8-byte ICMP header.
    let mut icmp_type = PORT_ABSENT;
    if frag_offset == 0 && proto == IPPROTO_ICMP {
        let l4 = ip + ihl;
        // `l4 + 2 > end` cannot hold when the first test passes; it is there for the verifier.
        icmp_type = if tot_len - ihl < ICMP_HLEN || l4 + 2 > end {
            PORT_TRUNCATED
        } else {
            ((byte(l4) as u32) << 8) | byte(l4 + 1) as u32
        };
    }

    let ip_len = tot_len as u64;
    // `interp::classified`: a valid IPv4 packet under a generation without an IPv4 ruleset passes.
    if !family_held(FAMILY_V4) {
        return by_reason(REASON_OTHER_FAMILY, ACTION_ACCEPT, ip_len);
    }
    // `IpPacket::ct_state`, overridden by the kernel's conntrack entry (`docs/decisions/0014`).
    let ct_state = if reply != 0 {
        // A REJECT's reply is RELATED to the packet it answers (`nf_send_reset` /
        // `nf_send_unreach` attach the rejected packet's conntrack: `nf_ct_attach`).
        CT_RELATED
    } else if crate::maps::ct_used() {
        match ct::state_v4(ctx, ip, ihl, tot_len, end, frag_offset, proto) {
            Some(s) => s,
            None => return by_reason(REASON_CT, ACTION_DROP, ip_len),
        }
    } else {
        CT_INVALID
    };
    let (hook, in_ifindex, out_ifindex) = if forced == HOOK_OUTPUT {
        (HOOK_OUTPUT, 0, ctx.ifindex())
    } else if forced != HOOK_BY_FIB {
        (forced, ctx.ifindex(), 0)
    } else {
        let (sport, dport) = if src_port < 65536 {
            ((src_port as u16).to_be(), (dst_port as u16).to_be())
        } else {
            (0, 0)
        };
        let flow = Flow {
            src: src_ip,
            dst: dst_ip,
            tos: byte(ip + 1),
            proto,
            sport,
            dport,
        };
        match hook::decide(ctx, &flow) {
            Some((hook, out)) => (hook, ctx.ifindex(), out),
            None => return map_failure(ip_len),
        }
    };
    let Some(p) = pkt() else {
        return map_failure(ip_len);
    };
    // SAFETY: a valid per-CPU map value pointer.
    unsafe {
        // Member by member (every one: [`WRITES_EVERY_MEMBER`]): a struct literal's `[0; 16]` for
        // the IPv6 addresses compiles to a call of `memset`, a byte loop in a BPF subprogram that
        // cost IPv4 packets ~20 ns; [`zero_addr6`] stores words.
        let q = &mut *p;
        q.src_ip = src_ip;
        q.dst_ip = dst_ip;
        q.proto = proto as u32;
        q.src_port = src_port;
        q.dst_port = dst_port;
        q.ip_len = tot_len as u32;
        q.step = 0;
        q.started = 0;
        q.hook = hook;
        q.in_ifindex = in_ifindex;
        q.out_ifindex = out_ifindex;
        q.tcp_flags = tcp_flags;
        // `Ipv4Packet::at_hook`: FORWARD sees the TTL after the router's decrement.
        q.ttl = if hook == HOOK_FORWARD {
            (byte(ip + 8) as u32).saturating_sub(1)
        } else {
            byte(ip + 8) as u32
        };
        // The region of the hook that judges the packet (`hook * 2 + family`, IPv4: family 0): the
        // FIB's INPUT or FORWARD at XDP, OUTPUT at tc egress; a region the generation does not hold
        // is dropped by the walk (REASON_NO_REGION).
        q.region = hook * 2;
        q.walk = 0;
        q.fragment = (frag_offset != 0) as u32;
        q.icmp_type = icmp_type;
        zero_addr6(&raw mut q.src_ip6);
        zero_addr6(&raw mut q.dst_ip6);
        q.reply = reply;
        q.l3_off = (ip - data) as u32;
        q.l4_off = if frag_offset == 0 {
            (ip - data + ihl) as u32
        } else {
            0
        };
        q.ct_state = ct_state;
    }
    tail_call(ctx, 0, ip_len)
}

/// The IPv4 path of [`entry`] writes `PktCtx` member by member: naming every member here makes a new
/// one fail to compile until that path writes it too (never called).
#[allow(dead_code)]
const WRITES_EVERY_MEMBER: fn(PktCtx) = |c| {
    let PktCtx {
        src_ip: _,
        dst_ip: _,
        proto: _,
        src_port: _,
        dst_port: _,
        ip_len: _,
        step: _,
        started: _,
        hook: _,
        in_ifindex: _,
        out_ifindex: _,
        tcp_flags: _,
        ttl: _,
        region: _,
        walk: _,
        fragment: _,
        icmp_type: _,
        src_ip6: _,
        dst_ip6: _,
        reply: _,
        l3_off: _,
        l4_off: _,
        ct_state: _,
    } = c;
};

/// Zero an IPv6 address member of `PktCtx` with four word stores (volatile, so LLVM does not turn
/// them back into a `memset` call). `PktCtx` is 4-byte aligned and the member sits at a multiple of 4.
#[inline(always)]
fn zero_addr6(a: *mut [u8; 16]) {
    let w = a as *mut u32;
    let mut i = 0;
    while i < 4 {
        // SAFETY: `a` points at 16 writable bytes, 4-byte aligned (asserted in `tailwall_abi`).
        unsafe { core::ptr::write_volatile(w.add(i), 0) };
        i += 1;
    }
}

/// `PktCtx::region`'s family part (`region = hook * 2 + family`).
const FAMILY_V4: u32 = 0;
/// IPv6's family part of a region index.
const FAMILY_V6: u32 = 1;

/// Does the generation hold a ruleset of `family` (a region of it at any hook)? A frame of a family
/// it holds none of is passed (`REASON_OTHER_FAMILY`), as the empty iptables / ip6tables table of
/// that family passes it (`docs/decisions/0013-ipv6-datapath.md`). A family it holds
/// is judged, and a missing region of it drops in `tw_final` (`REASON_NO_REGION`, fail closed).
#[inline(always)]
fn family_held(family: u32) -> bool {
    let mut h = 0;
    while h <= HOOK_OUTPUT {
        if let Some(r) = TW_REGIONS.get(h * 2 + family) {
            if r.first != NO_RULE {
                return true;
            }
        }
        h += 1;
    }
    false
}

const NEXTHDR_HOP: u8 = 0;
const NEXTHDR_ROUTING: u8 = 43;
const NEXTHDR_FRAGMENT: u8 = 44;
const NEXTHDR_AUTH: u8 = 51;
const NEXTHDR_DEST: u8 = 60;
/// IPv6 fixed header length.
const IPV6_HLEN: usize = 40;
/// Largest offset (from the IPv6 header) of an extension header the walk reads: bounds the packet
/// pointer for the verifier. Never reached at XDP (a frame is at most a page); at tc a header chain
/// beyond the pulled bytes ([`HEADERS_MAX_V6`]) is dropped, `REASON_BOUND`.
const EXT_READ_MAX: usize = 0x3fff;

/// `packet::is_ext_header` without `NEXTHDR_NONE` (which ends the walk as an upper-layer protocol).
#[inline(always)]
fn walks_past(nexthdr: u8) -> bool {
    nexthdr == NEXTHDR_HOP
        || nexthdr == NEXTHDR_ROUTING
        || nexthdr == NEXTHDR_FRAGMENT
        || nexthdr == NEXTHDR_AUTH
        || nexthdr == NEXTHDR_DEST
}

/// The IPv6 half of [`entry`] (`ip` = the IPv6 header's address, `end` the readable end, `room` the
/// frame's bytes from `ip` on), exactly `packet::decode_ipv6`:
/// - shorter than 40 bytes, version ≠ 6, payload length beyond the frame: `XDP_DROP`,
///   `REASON_MALFORMED`;
/// - the extension headers (hop-by-hop, routing, fragment, destination options, AH) are walked as
///   `ipv6_find_hdr` walks them, within the payload length, at most `MAX_EXT_HEADERS`: one more
///   drops (`REASON_BOUND`); a header cut short, or a non-first fragment followed by another
///   extension header: `REASON_MALFORMED`; the upper-layer header (or `NEXTHDR_NONE`) is `proto`;
/// - a non-first fragment (fragment header offset ≠ 0) carries `PORT_ABSENT` and `fragment = 1`;
///   ports and TCP flags of a first fragment as for IPv4 (TCP 20 bytes, UDP 8, else
///   `PORT_TRUNCATED`), within the payload length; no offset-1 rule (ip6tables' offset is in bytes);
/// - `ip_len` = 40 + payload length, `ttl` = the hop limit (FORWARD: minus one), `region` = the
///   hook's IPv6 region; the IPv4 members are 0.
///
/// At tc, a header the walk must read that lies past the pulled bytes drops (`REASON_BOUND`).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn ipv6<C: Hook>(
    ctx: &C,
    forced: u32,
    reply: u32,
    l3: usize,
    ip: usize,
    end: usize,
    room: usize,
    frame_len: u64,
) -> u32 {
    if ip + IPV6_HLEN > end {
        return by_reason(REASON_MALFORMED, ACTION_DROP, frame_len);
    }
    if byte(ip) >> 4 != 6 {
        return by_reason(REASON_MALFORMED, ACTION_DROP, frame_len);
    }
    // Offsets below are from `ip`; `pend` is the payload's end.
    let pend = IPV6_HLEN + be16(ip + 4) as usize;
    if pend > room {
        return by_reason(REASON_MALFORMED, ACTION_DROP, frame_len);
    }
    let ip_len = pend as u64;
    let mut nexthdr = byte(ip + 6);
    let mut start = IPV6_HLEN;
    let mut frag_offset = 0u32;
    let mut walked = 0u32;
    while walks_past(nexthdr) {
        if walked == MAX_EXT_HEADERS {
            return by_reason(REASON_BOUND, ACTION_DROP, ip_len);
        }
        walked += 1;
        if start + 2 > pend {
            return by_reason(REASON_MALFORMED, ACTION_DROP, ip_len);
        }
        if start > EXT_READ_MAX || ip + start + 2 > end {
            return by_reason(REASON_BOUND, ACTION_DROP, ip_len);
        }
        let next = byte(ip + start);
        let hdrlen = byte(ip + start + 1) as usize;
        let len = if nexthdr == NEXTHDR_FRAGMENT {
            if start + 4 > pend {
                return by_reason(REASON_MALFORMED, ACTION_DROP, ip_len);
            }
            if ip + start + 4 > end {
                return by_reason(REASON_BOUND, ACTION_DROP, ip_len);
            }
            let off = be16(ip + start + 2) & 0xfff8;
            if off != 0 {
                if walks_past(next) {
                    return by_reason(REASON_MALFORMED, ACTION_DROP, ip_len);
                }
                frag_offset = off >> 3;
                nexthdr = next;
                break;
            }
            8
        } else if nexthdr == NEXTHDR_AUTH {
            (hdrlen + 2) * 4
        } else {
            (hdrlen + 1) * 8
        };
        nexthdr = next;
        start += len;
    }
    let proto = nexthdr;
    // The transport header's bytes within the payload (none when the walk ended past it).
    let l4len = pend.saturating_sub(start);
    let (mut src_port, mut dst_port, mut tcp_flags) = (PORT_ABSENT, PORT_ABSENT, PORT_ABSENT);
    if frag_offset == 0 && (proto == IPPROTO_TCP || proto == IPPROTO_UDP) {
        let need = if proto == IPPROTO_TCP { 20 } else { 8 };
        if l4len < need {
            src_port = PORT_TRUNCATED;
            dst_port = PORT_TRUNCATED;
            if proto == IPPROTO_TCP {
                tcp_flags = PORT_TRUNCATED;
            }
        } else {
            if start > EXT_READ_MAX || ip + start + need > end {
                return by_reason(REASON_BOUND, ACTION_DROP, ip_len);
            }
            let l4 = ip + start;
            src_port = be16(l4);
            dst_port = be16(l4 + 2);
            if proto == IPPROTO_TCP {
                // `l4 + 14 > end` cannot hold after the test above; it is there for the verifier.
                tcp_flags = if l4 + 14 > end {
                    PORT_TRUNCATED
                } else {
                    byte(l4 + 13) as u32
                };
            }
        }
    }
    // `packet::decode_ipv6`'s `icmp`: type << 8 | code of a first fragment's complete ICMPv6 header.
    let mut icmp_type = PORT_ABSENT;
    if frag_offset == 0 && proto == IPPROTO_ICMPV6 {
        icmp_type = if l4len < ICMP_HLEN {
            PORT_TRUNCATED
        } else {
            if start > EXT_READ_MAX || ip + start + 2 > end {
                return by_reason(REASON_BOUND, ACTION_DROP, ip_len);
            }
            ((byte(ip + start) as u32) << 8) | byte(ip + start + 1) as u32
        };
    }
    let mut src_ip6 = [0u8; 16];
    let mut dst_ip6 = [0u8; 16];
    let mut i = 0;
    while i < 16 {
        src_ip6[i] = byte(ip + 8 + i);
        dst_ip6[i] = byte(ip + 24 + i);
        i += 1;
    }
    let (hook, in_ifindex, out_ifindex) = if forced == HOOK_OUTPUT {
        (HOOK_OUTPUT, 0, ctx.ifindex())
    } else if forced != HOOK_BY_FIB {
        (forced, ctx.ifindex(), 0)
    } else {
        let (sport, dport) = if src_port < 65536 {
            ((src_port as u16).to_be(), (dst_port as u16).to_be())
        } else {
            (0, 0)
        };
        let flow = Flow6 {
            src: src_ip6,
            dst: dst_ip6,
            // Traffic class and flow label (`ip6_flowinfo`): the header's first word without the
            // version, in network byte order.
            flowinfo: u32::from_ne_bytes([byte(ip), byte(ip + 1), byte(ip + 2), byte(ip + 3)])
                & 0x0fff_ffffu32.to_be(),
            proto,
            sport,
            dport,
        };
        match hook::decide6(ctx, &flow) {
            Some((hook, out)) => (hook, ctx.ifindex(), out),
            None => return map_failure(ip_len),
        }
    };
    let hop_limit = byte(ip + 7) as u32;
    let Some(p) = pkt() else {
        return map_failure(ip_len);
    };
    // SAFETY: a valid per-CPU map value pointer.
    unsafe {
        *p = PktCtx {
            src_ip: [0; 4],
            dst_ip: [0; 4],
            proto: proto as u32,
            src_port,
            dst_port,
            ip_len: pend as u32,
            step: 0,
            started: 0,
            hook,
            in_ifindex,
            out_ifindex,
            tcp_flags,
            // `IpPacket::at_hook`: FORWARD sees the hop limit after the router's decrement.
            ttl: if hook == HOOK_FORWARD {
                hop_limit.saturating_sub(1)
            } else {
                hop_limit
            },
            // The region of the hook that judges the packet (`hook * 2 + family`): the FIB's INPUT
            // or FORWARD at XDP, OUTPUT at tc egress.
            region: hook * 2 + FAMILY_V6,
            walk: 0,
            fragment: (frag_offset != 0) as u32,
            icmp_type,
            src_ip6,
            dst_ip6,
            reply,
            l3_off: l3 as u32,
            l4_off: if frag_offset == 0 {
                (l3 + start) as u32
            } else {
                0
            },
            // An IPv6 ruleset cannot test `ct_state` yet (`artifact::build` refuses it, located).
            ct_state: CT_INVALID,
        };
    }
    tail_call(ctx, 0, ip_len)
}
