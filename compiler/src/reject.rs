//! The reply a `-j REJECT` sends: the one definition of the bytes the datapath's `tw_reject` writes
//! in place of the rejected frame (`docs/decisions/0015-reject.md`), used by `sim`-side tests, the
//! kernel test-run tests and the live comparison with iptables.
//!
//! Guarantees (each from the kernel function named):
//! - ICMP (`icmp_send`, `net/ipv4/icmp.c`, via `nf_send_unreach`): type 3 and the kind's code, the
//!   4 unused bytes zero, then the rejected datagram from its IP header, at most 576 − 20 − 8 = 548
//!   bytes; IP header: version 4, IHL 5, TOS `(tos & 0x1e) | 0xc0` (`IPTOS_PREC_INTERNETCONTROL`),
//!   identification 0 (the kernel's `ip_select_ident` is not reproducible: documented), no DF, the
//!   TTL given, source = the rejected packet's destination (INPUT) or the address the route back
//!   selects ([`ReplyParams::src`], FORWARD), destination = its source;
//! - ICMPv6 (`icmp6_send`, `net/ipv6/icmp.c`): type 1 and the kind's code, the rejected packet from
//!   its IPv6 header, at most 1280 − 40 − 8 = 1232 bytes; traffic class 0, flow label 0 (the
//!   kernel's automatic flow label is a keyed hash: documented), the hop limit given;
//! - TCP RST (`nf_send_reset` / `nf_send_reset6`): ports swapped, data offset 5, window 0; when the
//!   rejected segment has ACK: seq = its ack, flags RST; else seq 0, ack = its seq + SYN + FIN +
//!   payload length, flags RST|ACK; IPv4: TOS 0, id 0, DF, source = the rejected destination;
//!   IPv6: traffic class 0, flow label 0;
//! - checksums correct (IPv4 header, ICMP, ICMPv6 and TCP with their pseudo-headers);
//! - the Ethernet header (and any VLAN tags) of the rejected frame with the MAC addresses swapped:
//!   the reply leaves by the interface the packet came in on, to the neighbour it came from;
//! - no reply ([`Reply::Silent`]) where the kernel sends none: a non-first fragment; an ICMP error
//!   (or an ICMP type above 18) / ICMPv6 error (type < 128) or a cut ICMP type; a link-layer
//!   multicast/broadcast or an IP multicast/broadcast destination (`PACKET_HOST`,
//!   `RTCF_BROADCAST|RTCF_MULTICAST`, IPv6 multicast); a source that names no single host (IPv4
//!   0.0.0.0, 127/8, multicast, 255.255.255.255: martians the kernel drops before INPUT; IPv6 `::`,
//!   multicast); for a RST: a segment with RST, a TCP header cut short, a packet that is not TCP;
//!   IPv6 ICMP errors to a packet without an upper-layer header (`reject6_csum_ok`).
//!
//! Not reproduced (documented in `docs/decisions/0015-reject.md`): the transport checksum check of
//! the rejected packet (the kernel stays silent for a corrupt segment unless the device validated
//! it), ICMP rate limiting (`icmp_ratelimit`, `icmp_msgs_per_sec`), IP options echoed in an ICMP
//! reply, directed (subnet) broadcasts, the IPv6 flow label and the IPv4 identification.
use crate::ir::RejectWith;
use crate::packet::{
    self, ipv4_checksum, ETHERTYPE_IPV4, ETHERTYPE_IPV6, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP,
    IPV6_HLEN, NEXTHDR_AUTH, NEXTHDR_FRAGMENT, NEXTHDR_NONE,
};

/// Most bytes of the rejected IPv4 datagram an ICMP error quotes (576 − 20 − 8, `icmp_send`).
pub const QUOTE_V4: usize = 548;
/// Most bytes of the rejected IPv6 packet an ICMPv6 error quotes (1280 − 40 − 8, `icmp6_send`).
pub const QUOTE_V6: usize = 1232;

/// What the reply's headers take from outside the rejected packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplyParams {
    /// TTL of an IPv4 reply (`net.ipv4.ip_default_ttl`, 64 by default).
    pub ttl: u8,
    /// Hop limit of an IPv6 reply (`net.ipv6.conf.*.hop_limit`, 64 by default).
    pub hop_limit: u8,
    /// Source address of an ICMP / ICMPv6 reply when it is not the rejected packet's destination
    /// (FORWARD: the address the route back to the sender selects); `None`: that destination.
    pub src: Option<u128>,
}

impl Default for ReplyParams {
    fn default() -> ReplyParams {
        ReplyParams {
            ttl: 64,
            hop_limit: 64,
            src: None,
        }
    }
}

/// Why the kernel sends no reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Silence {
    /// A non-first fragment.
    Fragment,
    /// The rejected packet is an ICMP / ICMPv6 error (or its type cannot be read).
    IcmpError,
    /// Link-layer or IP multicast / broadcast destination.
    NotUnicast,
    /// The source names no single host.
    BadSource,
    /// A RST to a RST.
    Rst,
    /// The transport header is cut short, or the packet is not TCP (`tcp-reset`), or has no
    /// upper-layer header (IPv6).
    NoTransport,
    /// Not an IPv4 or IPv6 frame the datapath parses.
    NotIp,
}

/// The outcome of a REJECT for one frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// The reply frame, ready to leave by the interface the rejected frame came in on.
    Frame(Vec<u8>),
    /// No reply: the packet is dropped.
    Silent(Silence),
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The ones' complement sum of `data`'s 16-bit big-endian words (odd last byte padded with zero),
/// folded, not complemented, added to `seed`.
pub fn sum16(data: &[u8], seed: u32) -> u32 {
    let mut sum = seed as u64;
    for c in data.chunks(2) {
        sum += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u64;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u32
}

fn fold(sum: u32) -> u16 {
    !(sum16(&[], sum) as u16)
}

/// The reply REJECT `kind` sends for `frame` (an Ethernet frame the datapath decodes as IPv4 or
/// IPv6: `packet::decode` accepted it), or why there is none.
pub fn reply(frame: &[u8], kind: RejectWith, p: &ReplyParams) -> Reply {
    let Ok((ethertype, l3)) = packet::network_header(frame) else {
        return Reply::Silent(Silence::NotIp);
    };
    // The link layer (MACs swapped, tags kept).
    let mut l2 = frame[..l3].to_vec();
    l2[..6].copy_from_slice(&frame[6..12]);
    l2[6..12].copy_from_slice(&frame[..6]);
    let l2_multicast = frame[0] & 1 != 0;
    let ip = &frame[l3..];
    match ethertype {
        ETHERTYPE_IPV4 => v4(l2, l2_multicast, ip, kind, p),
        ETHERTYPE_IPV6 => v6(l2, l2_multicast, ip, kind, p),
        _ => Reply::Silent(Silence::NotIp),
    }
}

fn v4(mut out: Vec<u8>, l2_multicast: bool, ip: &[u8], kind: RejectWith, p: &ReplyParams) -> Reply {
    if !matches!(packet::decode_ipv4(ip), packet::Decoded::Ipv4(_)) {
        return Reply::Silent(Silence::NotIp);
    }
    let ihl = ((ip[0] & 0x0f) as usize) * 4;
    let tot = be16(ip, 2) as usize;
    let ip = &ip[..tot];
    let (src, dst) = (be32(ip, 12), be32(ip, 16));
    let proto = ip[9];
    if be16(ip, 6) & 0x1fff != 0 {
        return Reply::Silent(Silence::Fragment);
    }
    let multicast = |a: u32| a >> 28 == 0xe;
    if multicast(dst) || dst == u32::MAX {
        return Reply::Silent(Silence::NotUnicast);
    }
    if src == 0 || src >> 24 == 127 || multicast(src) || src == u32::MAX {
        return Reply::Silent(Silence::BadSource);
    }
    let l4 = &ip[ihl..];
    let mut hdr = [0u8; 20];
    hdr[0] = 0x45;
    hdr[8] = p.ttl;
    hdr[16..20].copy_from_slice(&src.to_be_bytes());
    let body: Vec<u8> = match kind.icmp() {
        Some((t, c)) => {
            if l2_multicast {
                return Reply::Silent(Silence::NotUnicast);
            }
            if proto == IPPROTO_ICMP {
                // icmp_send: no error about an error (icmp_pointers[].error), nor about a type
                // beyond NR_ICMP_TYPES or one it cannot read.
                match l4.first() {
                    Some(&ty) if ty <= 18 && !matches!(ty, 3 | 4 | 5 | 11 | 12) => {}
                    _ => return Reply::Silent(Silence::IcmpError),
                }
            }
            hdr[1] = (ip[1] & 0x1e) | 0xc0;
            hdr[9] = IPPROTO_ICMP;
            let from = p.src.map_or(dst, |s| s as u32);
            hdr[12..16].copy_from_slice(&from.to_be_bytes());
            let q = tot.min(QUOTE_V4);
            let mut icmp = vec![t, c, 0, 0, 0, 0, 0, 0];
            icmp.extend_from_slice(&ip[..q]);
            let ck = fold(sum16(&icmp, 0));
            icmp[2..4].copy_from_slice(&ck.to_be_bytes());
            icmp
        }
        None => {
            if proto != IPPROTO_TCP || l4.len() < 20 {
                return Reply::Silent(Silence::NoTransport);
            }
            if l4[13] & 0x04 != 0 {
                return Reply::Silent(Silence::Rst);
            }
            hdr[6] = 0x40; // DF
            hdr[9] = IPPROTO_TCP;
            hdr[12..16].copy_from_slice(&dst.to_be_bytes());
            let tcp = rst(l4);
            let mut pseudo = Vec::with_capacity(12);
            pseudo.extend_from_slice(&hdr[12..20]);
            pseudo.extend_from_slice(&[0, IPPROTO_TCP, 0, 20]);
            finish_tcp(tcp, sum16(&pseudo, 0))
        }
    };
    let total = (20 + body.len()) as u16;
    hdr[2..4].copy_from_slice(&total.to_be_bytes());
    let ck = ipv4_checksum(&hdr);
    hdr[10..12].copy_from_slice(&ck.to_be_bytes());
    out.extend_from_slice(&hdr);
    out.extend_from_slice(&body);
    Reply::Frame(out)
}

/// The RST's TCP header (checksum zero) answering the segment `seg` (header and payload), as
/// `nf_reject_ip_tcphdr_put` / `nf_reject_ip6_tcphdr_put` write it.
fn rst(seg: &[u8]) -> [u8; 20] {
    let mut t = [0u8; 20];
    t[0..2].copy_from_slice(&seg[2..4]);
    t[2..4].copy_from_slice(&seg[0..2]);
    t[12] = 0x50;
    let flags = seg[13];
    if flags & 0x10 != 0 {
        t[4..8].copy_from_slice(&seg[8..12]);
        t[13] = 0x04;
    } else {
        let doff = ((seg[12] >> 4) as usize) * 4;
        let ack = be32(seg, 4)
            .wrapping_add(u32::from(flags & 0x02 != 0))
            .wrapping_add(u32::from(flags & 0x01 != 0))
            .wrapping_add(seg.len() as u32)
            .wrapping_sub(doff as u32);
        t[8..12].copy_from_slice(&ack.to_be_bytes());
        t[13] = 0x14;
    }
    t
}

fn finish_tcp(mut t: [u8; 20], pseudo: u32) -> Vec<u8> {
    let ck = fold(sum16(&t, pseudo));
    t[16..18].copy_from_slice(&ck.to_be_bytes());
    t.to_vec()
}

/// The upper-layer header's offset and protocol of a decoded IPv6 packet (`pkt` = header and
/// payload), as `ipv6_skip_exthdr` finds them; `None` for a non-first fragment.
fn transport6(pkt: &[u8]) -> Option<(usize, u8)> {
    let mut nexthdr = pkt[6];
    let mut start = IPV6_HLEN;
    while packet::is_ext_header(nexthdr) && nexthdr != NEXTHDR_NONE {
        let next = pkt[start];
        let len = match nexthdr {
            NEXTHDR_FRAGMENT => {
                if be16(pkt, start + 2) & !7 != 0 {
                    return None;
                }
                8
            }
            NEXTHDR_AUTH => (pkt[start + 1] as usize + 2) * 4,
            _ => (pkt[start + 1] as usize + 1) * 8,
        };
        nexthdr = next;
        start += len;
    }
    Some((start, nexthdr))
}

fn v6(mut out: Vec<u8>, l2_multicast: bool, ip: &[u8], kind: RejectWith, p: &ReplyParams) -> Reply {
    if !matches!(packet::decode_ipv6(ip), packet::Decoded::Ipv6(_)) {
        return Reply::Silent(Silence::NotIp);
    }
    let len = IPV6_HLEN + be16(ip, 4) as usize;
    let pkt = &ip[..len];
    let src: [u8; 16] = pkt[8..24].try_into().expect("16 bytes");
    let dst: [u8; 16] = pkt[24..40].try_into().expect("16 bytes");
    if dst[0] == 0xff {
        return Reply::Silent(Silence::NotUnicast);
    }
    if src == [0; 16] || src[0] == 0xff {
        return Reply::Silent(Silence::BadSource);
    }
    let Some((thoff, proto)) = transport6(pkt) else {
        return Reply::Silent(Silence::Fragment);
    };
    let mut hdr = [0u8; 40];
    hdr[0] = 0x60;
    hdr[7] = p.hop_limit;
    hdr[24..40].copy_from_slice(&src);
    let body = match kind.icmp() {
        Some((t, c)) => {
            if l2_multicast {
                return Reply::Silent(Silence::NotUnicast);
            }
            if thoff >= len {
                return Reply::Silent(Silence::NoTransport);
            }
            if proto == IPPROTO_ICMPV6 && pkt[thoff] < 128 {
                return Reply::Silent(Silence::IcmpError);
            }
            hdr[6] = IPPROTO_ICMPV6;
            let from = p.src.map_or(dst, |s| s.to_be_bytes());
            hdr[8..24].copy_from_slice(&from);
            let q = len.min(QUOTE_V6);
            let mut icmp = vec![t, c, 0, 0, 0, 0, 0, 0];
            icmp.extend_from_slice(&pkt[..q]);
            let ck = fold(sum16(&icmp, pseudo6(&hdr, icmp.len(), IPPROTO_ICMPV6)));
            icmp[2..4].copy_from_slice(&ck.to_be_bytes());
            icmp
        }
        None => {
            if proto != IPPROTO_TCP || len - thoff < 20 {
                return Reply::Silent(Silence::NoTransport);
            }
            let seg = &pkt[thoff..];
            if seg[13] & 0x04 != 0 {
                return Reply::Silent(Silence::Rst);
            }
            hdr[6] = IPPROTO_TCP;
            hdr[8..24].copy_from_slice(&dst);
            finish_tcp(rst(seg), pseudo6(&hdr, 20, IPPROTO_TCP))
        }
    };
    hdr[4..6].copy_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(&hdr);
    out.extend_from_slice(&body);
    Reply::Frame(out)
}

/// The IPv6 pseudo-header's sum (RFC 8200 8.1) for `hdr`'s addresses.
fn pseudo6(hdr: &[u8; 40], len: usize, next: u8) -> u32 {
    let mut ph = Vec::with_capacity(40);
    ph.extend_from_slice(&hdr[8..40]);
    ph.extend_from_slice(&(len as u32).to_be_bytes());
    ph.extend_from_slice(&[0, 0, 0, next]);
    sum16(&ph, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{build_frame, build_frame_v6, l4_header, IPPROTO_UDP};
    use std::net::{Ipv4Addr, Ipv6Addr};

    const A: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
    const B: [u8; 6] = [2, 0, 0, 0, 0, 0xb];

    fn frame(proto: u8, payload: &[u8]) -> Vec<u8> {
        build_frame(
            B,
            A,
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 2),
            proto,
            0,
            payload,
        )
    }

    fn ok(r: Reply) -> Vec<u8> {
        match r {
            Reply::Frame(f) => f,
            s => panic!("{s:?}"),
        }
    }

    #[test]
    fn reject_icmp_port_unreachable_quotes_the_datagram() {
        let f = frame(IPPROTO_UDP, &l4_header(IPPROTO_UDP, 1000, 53, b"hello"));
        let r = ok(reply(
            &f,
            RejectWith::IcmpPortUnreachable,
            &ReplyParams::default(),
        ));
        assert_eq!(&r[..6], &A);
        assert_eq!(&r[6..12], &B);
        let ip = &r[14..];
        assert_eq!(ip[0], 0x45);
        assert_eq!(ip[1], 0xc0);
        assert_eq!(be16(ip, 2) as usize, 20 + 8 + (f.len() - 14));
        assert_eq!(ip[8], 64);
        assert_eq!(ip[9], 1);
        assert_eq!(&ip[12..16], &[10, 0, 0, 2]);
        assert_eq!(&ip[16..20], &[10, 0, 0, 1]);
        assert_eq!(ipv4_checksum(&ip[..20]), 0);
        assert_eq!(&ip[20..22], &[3, 3]);
        assert_eq!(fold(sum16(&ip[20..], 0)), 0);
        assert_eq!(&ip[28..], &f[14..]);
    }

    #[test]
    fn reject_quote_is_cut_at_548_bytes() {
        let f = frame(IPPROTO_UDP, &l4_header(IPPROTO_UDP, 1, 2, &[7u8; 1000]));
        let r = ok(reply(
            &f,
            RejectWith::IcmpAdminProhibited,
            &ReplyParams::default(),
        ));
        assert_eq!(r.len(), 14 + 20 + 8 + QUOTE_V4);
        assert_eq!(r[14 + 21], 13);
    }

    #[test]
    fn reject_tcp_reset_seq_and_ack_as_nf_send_reset() {
        // A SYN (seq 1) with 3 payload bytes: RST|ACK, ack = 1 + 1 + 3.
        let f = frame(IPPROTO_TCP, &l4_header(IPPROTO_TCP, 4000, 25, b"abc"));
        let r = ok(reply(&f, RejectWith::TcpReset, &ReplyParams::default()));
        let ip = &r[14..];
        assert_eq!(
            (ip[1], be16(ip, 2), be16(ip, 4), be16(ip, 6)),
            (0, 40, 0, 0x4000)
        );
        let t = &ip[20..];
        assert_eq!((be16(t, 0), be16(t, 2)), (25, 4000));
        assert_eq!((be32(t, 4), be32(t, 8), t[12], t[13]), (0, 5, 0x50, 0x14));
        let mut pseudo = ip[12..20].to_vec();
        pseudo.extend_from_slice(&[0, 6, 0, 20]);
        assert_eq!(fold(sum16(t, sum16(&pseudo, 0))), 0);
        // An ACK segment: seq = its ack, RST only.
        let mut seg = l4_header(IPPROTO_TCP, 4000, 25, b"");
        seg[13] = 0x10;
        seg[8..12].copy_from_slice(&77u32.to_be_bytes());
        let r = ok(reply(
            &frame(IPPROTO_TCP, &seg),
            RejectWith::TcpReset,
            &ReplyParams::default(),
        ));
        assert_eq!(
            (be32(&r[34..], 4), be32(&r[34..], 8), r[34 + 13]),
            (77, 0, 0x04)
        );
        // No RST for a RST.
        seg[13] = 0x04;
        assert_eq!(
            reply(
                &frame(IPPROTO_TCP, &seg),
                RejectWith::TcpReset,
                &ReplyParams::default()
            ),
            Reply::Silent(Silence::Rst)
        );
    }

    #[test]
    fn reject_is_silent_where_the_kernel_is() {
        let p = ReplyParams::default();
        let k = RejectWith::IcmpPortUnreachable;
        // An ICMP error.
        let f = frame(IPPROTO_ICMP, &[3, 3, 0, 0, 0, 0, 0, 0]);
        assert_eq!(reply(&f, k, &p), Reply::Silent(Silence::IcmpError));
        // An echo request is answered.
        assert!(matches!(
            reply(&frame(IPPROTO_ICMP, &[8, 0, 0, 0, 0, 0, 0, 0]), k, &p),
            Reply::Frame(_)
        ));
        // A later fragment.
        let f = build_frame(
            B,
            A,
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 2),
            IPPROTO_UDP,
            3,
            &[0; 16],
        );
        assert_eq!(reply(&f, k, &p), Reply::Silent(Silence::Fragment));
        // Link-layer broadcast, IP multicast destination.
        let mut f = frame(IPPROTO_UDP, &l4_header(IPPROTO_UDP, 1, 2, b""));
        f[0] = 0xff;
        assert_eq!(reply(&f, k, &p), Reply::Silent(Silence::NotUnicast));
        let f = build_frame(
            B,
            A,
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(224, 0, 0, 1),
            IPPROTO_UDP,
            0,
            &l4_header(IPPROTO_UDP, 1, 2, b""),
        );
        assert_eq!(reply(&f, k, &p), Reply::Silent(Silence::NotUnicast));
    }

    #[test]
    fn reject_icmp6_and_rst6() {
        let s: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let d: Ipv6Addr = "2001:db8::2".parse().unwrap();
        let f = build_frame_v6(
            B,
            A,
            s,
            d,
            IPPROTO_UDP,
            &l4_header(IPPROTO_UDP, 5, 53, b"x"),
        );
        let r = ok(reply(
            &f,
            RejectWith::Icmp6AdmProhibited,
            &ReplyParams::default(),
        ));
        let ip = &r[14..];
        assert_eq!((ip[0], ip[6], ip[7]), (0x60, 58, 64));
        assert_eq!(&ip[8..24], &d.octets());
        assert_eq!(&ip[24..40], &s.octets());
        assert_eq!((ip[40], ip[41]), (1, 1));
        let mut h = [0u8; 40];
        h.copy_from_slice(&ip[..40]);
        assert_eq!(fold(sum16(&ip[40..], pseudo6(&h, ip.len() - 40, 58))), 0);
        assert_eq!(&ip[48..], &f[14..]);
        let f = build_frame_v6(B, A, s, d, IPPROTO_TCP, &l4_header(IPPROTO_TCP, 5, 25, b""));
        let r = ok(reply(&f, RejectWith::TcpReset, &ReplyParams::default()));
        assert_eq!(r.len(), 14 + 60);
        assert_eq!(r[14 + 40 + 13], 0x14);
        // An ICMPv6 error gets nothing; an echo request is answered.
        let f = build_frame_v6(B, A, s, d, IPPROTO_ICMPV6, &[1, 4, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            reply(
                &f,
                RejectWith::Icmp6PortUnreachable,
                &ReplyParams::default()
            ),
            Reply::Silent(Silence::IcmpError)
        );
        let f = build_frame_v6(B, A, s, d, IPPROTO_ICMPV6, &[128, 0, 0, 0, 0, 0, 0, 0]);
        assert!(matches!(
            reply(
                &f,
                RejectWith::Icmp6PortUnreachable,
                &ReplyParams::default()
            ),
            Reply::Frame(_)
        ));
    }
}
