//! Which netfilter hook judges a packet arriving at XDP ingress: INPUT (delivered to this host) or
//! FORWARD (routed through it), decided with `bpf_fib_lookup` the way `ip_route_input_noref` routes it
//! (`net/ipv4/route.c`), not with a list of local addresses.
//!
//! Mapping of the helper's result (`bpf_ipv4_fib_lookup` in `net/core/filter.c`) to the hook:
//! - destination multicast (224.0.0.0/4) or limited broadcast: INPUT without a lookup (the kernel routes
//!   them by `ip_route_input_mc` / `brd_input`, locally delivered);
//! - `BPF_FIB_LKUP_RET_SUCCESS`, `NO_NEIGH` (a unicast route; the neighbour is not resolved yet, the
//!   kernel forwards and resolves it) and `UNSUPP_LWT` (a route with an encapsulation the helper does
//!   not handle; the kernel forwards it): FORWARD, `out_ifindex` = the route's device
//!   (`IFINDEX_UNKNOWN` for `UNSUPP_LWT`, where the helper does not report it: an `out_iface` stage
//!   drops such a packet, `REASON_NO_IFACE`);
//! - `NOT_FWDED` (a local, broadcast or other non-unicast route, or no route at all), `BLACKHOLE`,
//!   `UNREACHABLE`, `PROHIBIT`: INPUT. For local and broadcast routes that is the kernel's hook; for the
//!   others the kernel drops the packet in routing before any filter hook (`ip_error`, `dst_discard`),
//!   so judging it by INPUT can only drop what the kernel drops anyway (the INPUT counters count it);
//! - `FWD_DISABLED` (forwarding is off on the ingress device: the helper answers this before looking
//!   anything up): INPUT — the kernel delivers local destinations to INPUT and drops the rest in
//!   routing (`ip_route_input_slow`: `-EHOSTUNREACH` when `!IN_DEV_FORWARD`);
//! - `FRAG_NEEDED` cannot happen: `tot_len` is passed as 0, so the MTU is not checked (the kernel
//!   checks it in `ip_forward`, before the FORWARD hook);
//! - a negative result (the helper refused its arguments): `None`, the caller drops (fail closed).
//!
//! IPv6 ([`decide6`], `bpf_ipv6_fib_lookup`, as `ip6_route_input` routes): a multicast destination
//! (`ff00::/8`) is INPUT without a lookup (`ip6_mc_input`); the results map to the hook as for IPv4
//! (`FWD_DISABLED`: `net.ipv6.conf.all.forwarding` is off).
//!
//! Not visible to the lookup (documented in `docs/conformance.md`): routing by firewall mark or
//! socket (`ip rule fwmark`, mangle-table marks), the VRF a VLAN device belongs to.
use aya_ebpf::{
    bindings::{
        bpf_fib_lookup as FibParams, BPF_FIB_LKUP_RET_NO_NEIGH, BPF_FIB_LKUP_RET_SUCCESS,
        BPF_FIB_LKUP_RET_UNSUPP_LWT,
    },
    helpers::generated::bpf_fib_lookup,
};
use tailwall_abi::{HOOK_FORWARD, HOOK_INPUT, IFINDEX_UNKNOWN};

use crate::common::Hook;

/// `AF_INET`.
const AF_INET: u8 = 2;
/// `AF_INET6`.
const AF_INET6: u8 = 10;

/// The packet's IPv4 header fields the route lookup uses (addresses and ports in network byte order,
/// as in the header).
pub struct Flow {
    pub src: [u8; 4],
    pub dst: [u8; 4],
    pub tos: u8,
    pub proto: u8,
    /// Ports in network byte order, 0 when the packet carries none (as the kernel's flow dissector).
    pub sport: u16,
    pub dport: u16,
}

/// The packet's IPv6 header fields the route lookup uses (network byte order, as in the header).
pub struct Flow6 {
    pub src: [u8; 16],
    pub dst: [u8; 16],
    /// Traffic class and flow label (`ip6_flowinfo`), network byte order.
    pub flowinfo: u32,
    /// The upper-layer protocol (after the extension headers).
    pub proto: u8,
    /// Ports in network byte order, 0 when the packet carries none.
    pub sport: u16,
    pub dport: u16,
}

/// The hook (`HOOK_INPUT` / `HOOK_FORWARD`) and the egress ifindex (0 at INPUT, `IFINDEX_UNKNOWN`
/// when the route's device is not reported) for a packet received on `ctx`'s interface; `None` when
/// the helper refused the lookup.
#[inline(always)]
pub fn decide<C: Hook>(ctx: &C, flow: &Flow) -> Option<(u32, u32)> {
    let d = flow.dst;
    if d[0] & 0xf0 == 0xe0 || d == [255, 255, 255, 255] {
        return Some((HOOK_INPUT, 0));
    }
    // SAFETY: an all-zero bpf_fib_lookup is a valid value (plain integers and unions of them).
    let mut p: FibParams = unsafe { core::mem::zeroed() };
    p.family = AF_INET;
    p.l4_protocol = flow.proto;
    p.sport = flow.sport;
    p.dport = flow.dport;
    p.ifindex = ctx.ifindex();
    p.__bindgen_anon_1.tot_len = 0;
    p.__bindgen_anon_2.tos = flow.tos;
    p.__bindgen_anon_3.ipv4_src = u32::from_ne_bytes(flow.src);
    p.__bindgen_anon_4.ipv4_dst = u32::from_ne_bytes(flow.dst);
    lookup(ctx, &mut p)
}

/// [`decide`] for an IPv6 packet (`bpf_ipv6_fib_lookup`).
#[inline(always)]
pub fn decide6<C: Hook>(ctx: &C, flow: &Flow6) -> Option<(u32, u32)> {
    if flow.dst[0] == 0xff {
        return Some((HOOK_INPUT, 0));
    }
    let word = |a: &[u8; 16], i: usize| u32::from_ne_bytes([a[i], a[i + 1], a[i + 2], a[i + 3]]);
    // SAFETY: an all-zero bpf_fib_lookup is a valid value (plain integers and unions of them).
    let mut p: FibParams = unsafe { core::mem::zeroed() };
    p.family = AF_INET6;
    p.l4_protocol = flow.proto;
    p.sport = flow.sport;
    p.dport = flow.dport;
    p.ifindex = ctx.ifindex();
    p.__bindgen_anon_1.tot_len = 0;
    p.__bindgen_anon_2.flowinfo = flow.flowinfo;
    p.__bindgen_anon_3.ipv6_src = [
        word(&flow.src, 0),
        word(&flow.src, 4),
        word(&flow.src, 8),
        word(&flow.src, 12),
    ];
    p.__bindgen_anon_4.ipv6_dst = [
        word(&flow.dst, 0),
        word(&flow.dst, 4),
        word(&flow.dst, 8),
        word(&flow.dst, 12),
    ];
    lookup(ctx, &mut p)
}

/// Run `bpf_fib_lookup` on `p` and map its result to the hook (module docs).
#[inline(always)]
fn lookup<C: Hook>(ctx: &C, p: &mut FibParams) -> Option<(u32, u32)> {
    // SAFETY: the helper reads and writes `p` within its size; `ctx.ctx` is the program's context.
    let rc =
        unsafe { bpf_fib_lookup(ctx.as_ptr(), p, core::mem::size_of::<FibParams>() as i32, 0) };
    if rc < 0 {
        return None;
    }
    let rc = rc as u32;
    if rc == BPF_FIB_LKUP_RET_SUCCESS || rc == BPF_FIB_LKUP_RET_NO_NEIGH {
        Some((HOOK_FORWARD, p.ifindex))
    } else if rc == BPF_FIB_LKUP_RET_UNSUPP_LWT {
        Some((HOOK_FORWARD, IFINDEX_UNKNOWN))
    } else {
        Some((HOOK_INPUT, 0))
    }
}
