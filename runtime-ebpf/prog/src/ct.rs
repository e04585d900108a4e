//! The connection-tracking state a packet WILL get from conntrack (`PktCtx::ct_state`), computed at
//! XDP ingress / tc egress, before conntrack has seen the packet (`docs/decisions/0014`).
//!
//! The state without a conntrack entry is `tailwall_compiler::packet::IpPacket::ct_state` (the one
//! definition, from the frame alone; this file mirrors it); an entry of the kernel's own conntrack
//! table, found with the kfunc `bpf_xdp_ct_lookup` / `bpf_skb_ct_lookup` (TCP and UDP only, the
//! kfunc's limit) and released with `bpf_ct_release`, overrides it:
//! - entry found in the reply direction: `ESTABLISHED` (`IP_CT_ESTABLISHED_REPLY`);
//! - entry found in the original direction: `ESTABLISHED` once it has seen a reply (`IPS_SEEN_REPLY`
//!   in `nf_conn::status`, whose offset the loader reads from the kernel's BTF), else `NEW`;
//! - an ICMP / ICMPv6 error quoting a TCP or UDP header: the quoted tuple, inverted as
//!   `nf_conntrack_inet_error` inverts it, is looked up: found → `RELATED`, else `INVALID`.
//!
//! The kfuncs cannot be named from Rust: each is called as a helper with a placeholder id
//! (`tailwall_abi::KFUNC_*`) that the loader rewrites into the kfunc call (`loader/src/kfunc.rs`).
//! A lookup error other than "no entry" (`-ENOENT`) drops the packet, counted `REASON_CT`.
use aya_ebpf::{
    bindings::{__sk_buff, xdp_md},
    programs::{TcContext, XdpContext},
};
use tailwall_abi::{
    CT_ESTABLISHED, CT_NEW, KFUNC_CT_RELEASE, KFUNC_SKB_CT_LOOKUP, KFUNC_XDP_CT_LOOKUP,
};

/// `struct bpf_ct_opts` in its 12-byte form (`NF_BPF_CT_OPTS_SZ` before the zone members; the kernel
/// accepts both sizes): `netns_id` -1 = the packet's namespace; `error` and `dir` are written back.
#[repr(C)]
pub struct CtOpts {
    pub netns_id: i32,
    pub error: i32,
    pub l4proto: u8,
    pub dir: u8,
    pub reserved: [u8; 2],
}

/// `struct bpf_sock_tuple` as 9 words (the IPv6 arm's 36 bytes): the IPv4 arm is words 0..3
/// (`saddr`, `daddr`, `sport`|`dport`), network byte order in memory.
#[repr(C)]
pub struct Tuple {
    pub words: [u32; 9],
}

/// `sizeof(bpf_sock_tuple.ipv4)`.
pub const TUPLE_V4: u32 = 12;
/// `BPF_F_CURRENT_NETNS`.
const CURRENT_NETNS: i32 = -1;
/// `IP_CT_DIR_REPLY`.
const DIR_REPLY: u8 = 1;
/// `IPS_SEEN_REPLY` (bit 1 of `nf_conn::status`).
const IPS_SEEN_REPLY: u64 = 1 << 1;
/// `-ENOENT`: the lookup found no entry.
const ENOENT: i32 = -2;

/// A program type that can ask conntrack (`bpf_xdp_ct_lookup` for XDP, `bpf_skb_ct_lookup` for tc).
pub trait CtLookup {
    /// The kfunc lookup: an acquired `struct nf_conn *` or null.
    fn ct_lookup(&self, tuple: *mut Tuple, size: u32, opts: *mut CtOpts) -> *mut u8;
}

type LookupXdp = unsafe extern "C" fn(*mut xdp_md, *mut Tuple, u32, *mut CtOpts, u32) -> *mut u8;
type LookupSkb = unsafe extern "C" fn(*mut __sk_buff, *mut Tuple, u32, *mut CtOpts, u32) -> *mut u8;
type Release = unsafe extern "C" fn(*mut u8);

impl CtLookup for XdpContext {
    #[inline(always)]
    fn ct_lookup(&self, tuple: *mut Tuple, size: u32, opts: *mut CtOpts) -> *mut u8 {
        // SAFETY: the placeholder id becomes the kfunc call at load (see the module docs); the
        // arguments are the program's context and two initialised stack objects of the sizes given.
        unsafe {
            let f: LookupXdp = core::mem::transmute(KFUNC_XDP_CT_LOOKUP as usize);
            f(self.ctx, tuple, size, opts, 12)
        }
    }
}

impl CtLookup for TcContext {
    #[inline(always)]
    fn ct_lookup(&self, tuple: *mut Tuple, size: u32, opts: *mut CtOpts) -> *mut u8 {
        // SAFETY: as for XDP.
        unsafe {
            let f: LookupSkb = core::mem::transmute(KFUNC_SKB_CT_LOOKUP as usize);
            f(self.skb.skb, tuple, size, opts, 12)
        }
    }
}

/// What a lookup found.
pub enum Found {
    /// An entry: the state it gives the packet (`CT_ESTABLISHED` or `CT_NEW`).
    State(u32),
    /// No entry.
    None,
    /// The lookup failed otherwise: the state is unknown (fail closed).
    Error,
}

/// Look `tuple` (addresses and ports in network byte order, `size` [`TUPLE_V4`] or 36 for IPv6) up
/// for `l4proto` (TCP or UDP) and release the entry.
#[inline(always)]
pub fn lookup<C: CtLookup>(ctx: &C, tuple: &mut Tuple, size: u32, l4proto: u8) -> Found {
    let mut opts = CtOpts {
        netns_id: CURRENT_NETNS,
        error: 0,
        l4proto,
        dir: 0,
        reserved: [0; 2],
    };
    let ct = ctx.ct_lookup(tuple, size, &mut opts);
    if ct.is_null() {
        // SAFETY: a plain read of a local the kfunc wrote.
        let err = unsafe { core::ptr::read_volatile(&opts.error) };
        return if err == ENOENT {
            Found::None
        } else {
            Found::Error
        };
    }
    let state = if opts.dir == DIR_REPLY {
        CT_ESTABLISHED
    } else {
        // SAFETY: `ct` is a trusted `struct nf_conn *` and `status` an `unsigned long` member at
        // the offset the loader read from the running kernel's BTF (the verifier checks the read).
        let status = unsafe {
            core::ptr::read_volatile(ct.add(crate::maps::ct_status_offset()) as *const u64)
        };
        if status & IPS_SEEN_REPLY != 0 {
            CT_ESTABLISHED
        } else {
            CT_NEW
        }
    };
    // SAFETY: the placeholder id becomes `bpf_ct_release` at load; `ct` is the acquired entry.
    unsafe {
        let f: Release = core::mem::transmute(KFUNC_CT_RELEASE as usize);
        f(ct);
    }
    Found::State(state)
}

use crate::entry::{be16, byte};
use tailwall_abi::{CT_INVALID, CT_RELATED};

const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_ICMP: u8 = 1;

/// `tcp_valid_flags[]` of `nf_conntrack_proto_tcp.c`, on the flags byte without ECE, CWR and PSH:
/// SYN, SYN|URG, SYN|ACK, RST, RST|ACK, FIN|ACK, FIN|ACK|URG, ACK, ACK|URG. Anything else is
/// `INVALID` ("invalid tcp flag combination"), entry or not.
#[inline(always)]
pub fn tcp_flags_valid(flags: u8) -> bool {
    let f = flags & !(0x40 | 0x80 | 0x08);
    f == 0x02
        || f == 0x22
        || f == 0x12
        || f == 0x04
        || f == 0x14
        || f == 0x11
        || f == 0x31
        || f == 0x10
        || f == 0x30
}

/// The state of a TCP packet with valid flags and no entry: `tcp_conntracks[0][index][sNO]` with
/// `nf_conntrack_tcp_loose = 1` (the default): a SYN (without ACK) opens a connection, an ACK without
/// SYN, FIN or RST is picked up mid-stream, both `NEW`; SYN|ACK, FIN, RST alone are `INVALID`.
#[inline(always)]
pub fn tcp_new(flags: u8) -> u32 {
    let (fin, syn, rst, ack) = (
        flags & 1 != 0,
        flags & 2 != 0,
        flags & 4 != 0,
        flags & 0x10 != 0,
    );
    if rst {
        CT_INVALID
    } else if syn {
        if ack {
            CT_INVALID
        } else {
            CT_NEW
        }
    } else if fin {
        CT_INVALID
    } else if ack {
        CT_NEW
    } else {
        CT_INVALID
    }
}

/// The TCP/UDP header at `l4` (`room` bytes of it within the datagram, readable up to `end`): its
/// state without an entry, or `None` when the header is such that conntrack refuses it outright
/// (`INVALID`, no lookup).
#[inline(always)]
fn tcp_udp_no_entry(proto: u8, l4: usize, room: usize, end: usize) -> Option<u32> {
    if proto == IPPROTO_TCP {
        // `tcp_error`: a header shorter than 20 bytes or than its data offset.
        if room < 20 || l4 + 20 > end {
            return None;
        }
        let doff = (byte(l4 + 12) >> 4) as usize * 4;
        if doff < 20 || doff > room {
            return None;
        }
        let flags = byte(l4 + 13);
        if !tcp_flags_valid(flags) {
            return None;
        }
        Some(tcp_new(flags))
    } else {
        // `udp_error`: a header shorter than 8 bytes, a length field below 8 or beyond the datagram.
        if room < 8 || l4 + 8 > end {
            return None;
        }
        let len = be16(l4 + 4) as usize;
        if len < 8 || len > room {
            return None;
        }
        Some(CT_NEW)
    }
}

/// The state of an IPv4 datagram (`ip` its header, `ihl` and `tot_len` checked by the caller, `end`
/// the readable end); `None`: the lookup failed, drop (`REASON_CT`).
#[inline(always)]
pub fn state_v4<C: CtLookup>(
    ctx: &C,
    ip: usize,
    ihl: usize,
    tot_len: usize,
    end: usize,
    frag_offset: u32,
    proto: u8,
) -> Option<u32> {
    if frag_offset != 0 {
        return Some(CT_INVALID);
    }
    // SAFETY: a plain read of a local. Volatile so that LLVM cannot drop the bound checks below as
    // implied by the total length (it knows `ip + tot_len <= end`; the verifier does not).
    let end = unsafe { core::ptr::read_volatile(&end) };
    let l4 = ip + ihl;
    let room = tot_len - ihl;
    if proto == IPPROTO_TCP || proto == IPPROTO_UDP {
        let Some(fresh) = tcp_udp_no_entry(proto, l4, room, end) else {
            return Some(CT_INVALID);
        };
        if l4 + 4 > end {
            return Some(CT_INVALID);
        }
        let mut t = tuple_v4(ip + 12, ip + 16, l4, false);
        return match lookup(ctx, &mut t, TUPLE_V4, proto) {
            Found::State(s) => Some(s),
            Found::None => Some(fresh),
            Found::Error => None,
        };
    }
    if proto != IPPROTO_ICMP {
        return Some(CT_INVALID);
    }
    if room < 8 || l4 + 8 > end {
        return Some(CT_INVALID);
    }
    let kind = byte(l4);
    if kind == 8 || kind == 13 || kind == 15 || kind == 17 {
        return Some(CT_NEW);
    }
    if !(kind == 3 || kind == 4 || kind == 5 || kind == 11 || kind == 12) {
        return Some(CT_INVALID);
    }
    // An error: the quoted IPv4 header and the first 4 bytes of its transport header.
    let inner = l4 + 8;
    let inner_room = room - 8;
    if inner_room < 20 || inner + 20 > end {
        return Some(CT_INVALID);
    }
    let iihl = (byte(inner) & 0x0f) as usize * 4;
    let iproto = byte(inner + 9);
    if byte(inner) >> 4 != 4
        || iihl < 20
        || be16(inner + 6) & 0x1fff != 0
        || (iproto != IPPROTO_TCP && iproto != IPPROTO_UDP)
        || iihl + 4 > inner_room
        || iihl > 60
    {
        return Some(CT_INVALID);
    }
    let il4 = inner + iihl;
    if il4 + 4 > end {
        return Some(CT_INVALID);
    }
    let mut t = tuple_v4(inner + 12, inner + 16, il4, true);
    match lookup(ctx, &mut t, TUPLE_V4, iproto) {
        Found::State(_) => Some(CT_RELATED),
        Found::None => Some(CT_INVALID),
        Found::Error => None,
    }
}

/// The IPv4 tuple of addresses at `src`/`dst` and ports at `l4` (network byte order, read byte by
/// byte); `invert`: source and destination swapped (`nf_ct_invert_tuple`).
#[inline(always)]
fn tuple_v4(src: usize, dst: usize, l4: usize, invert: bool) -> Tuple {
    let addr = |at: usize| u32::from_ne_bytes([byte(at), byte(at + 1), byte(at + 2), byte(at + 3)]);
    let (s, d) = (addr(src), addr(dst));
    let ports = if invert {
        u32::from_ne_bytes([byte(l4 + 2), byte(l4 + 3), byte(l4), byte(l4 + 1)])
    } else {
        u32::from_ne_bytes([byte(l4), byte(l4 + 1), byte(l4 + 2), byte(l4 + 3)])
    };
    let (s, d) = if invert { (d, s) } else { (s, d) };
    Tuple {
        words: [s, d, ports, 0, 0, 0, 0, 0, 0],
    }
}
