//! Decoding an Ethernet frame into the header fields the classifier reads.
//!
//! This is the single definition of "what the datapath sees": the eBPF entry program
//! (`runtime-ebpf/prog/src/entry.rs`) makes exactly these decisions, and `interp` and `sim` both start
//! from [`decode`]. Guarantees:
//! - up to [`MAX_VLAN_TAGS`] VLAN tags (802.1Q `0x8100`, 802.1ad `0x88a8`, in any order) between the
//!   MAC addresses and the EtherType are skipped: a tagged frame is classified by its inner header, as
//!   the kernel's VLAN devices hand the inner packet to netfilter. A further tag is [`Decoded::Bound`]
//!   (dropped, counted `REASON_BOUND`); a frame that ends inside a tag is [`Decoded::Malformed`];
//! - frames shorter than an Ethernet header, or whose (inner) EtherType is not IPv4 (0x0800), are
//!   [`Decoded::NotIpv4`] and pass untouched;
//! - an IPv4 header the kernel's `ip_rcv` would reject for its shape (fewer than 20 bytes, version ≠ 4,
//!   IHL < 5, header longer than the frame, total length shorter than the header or longer than the frame)
//!   is [`Decoded::Malformed`]. The header checksum is not verified (the kernel does, after XDP);
//! - the transport header is read only from the first fragment, within the IPv4 total length (Ethernet
//!   padding is ignored): TCP needs 20 bytes and UDP 8, as iptables' tcp/udp matches do; a TCP fragment
//!   at offset 1 (8 bytes) counts as a truncated header, which the tcp match hotdrops (`tcp_mt` in
//!   `net/netfilter/xt_tcpudp.c`; found by the oracle at FORWARD and OUTPUT).
use crate::ir::Field;
use serde::Serialize;
use std::net::Ipv4Addr;

pub const ETH_HLEN: usize = 14;
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// 802.1Q VLAN tag protocol identifier (`ETH_P_8021Q`, `include/uapi/linux/if_ether.h`).
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// 802.1ad service VLAN tag protocol identifier (`ETH_P_8021AD`), the outer tag of QinQ.
pub const ETHERTYPE_QINQ: u16 = 0x88a8;
/// Bytes of one VLAN tag: TCI (priority, DEI, VLAN id) and the next EtherType.
pub const VLAN_HLEN: usize = 4;
pub use tailwall_abi::MAX_VLAN_TAGS;
pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ports {
    Present {
        src: u16,
        dst: u16,
    },
    /// Non-first fragment, or a protocol without ports.
    Absent,
    /// TCP/UDP first fragment whose header is cut short, or a TCP fragment at offset 1.
    Truncated,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Ipv4Packet {
    pub src: u32,
    pub dst: u32,
    pub proto: u8,
    /// IPv4 total length: what iptables' byte counters add.
    pub ip_len: u16,
    /// Fragment offset in 8-byte units (0 for the first or only fragment).
    pub frag_offset: u16,
    pub ports: Ports,
    /// TCP flags byte (header byte 13) when `proto` is TCP and the ports are present, else 0.
    pub tcp_flags: u8,
    /// Time to live (header byte 8).
    pub ttl: u8,
}

impl Ipv4Packet {
    /// The packet as the filter chain of `hook` sees it: at FORWARD the router has already
    /// decremented the TTL (`ip_forward` calls `ip_decrease_ttl` before the FORWARD hook), so `ttl`
    /// is one less (a TTL of 0 or 1 never reaches FORWARD in the kernel: it is dropped with ICMP "time
    /// exceeded"; here it reads 0). The datapath's entry program writes the same value.
    pub fn at_hook(&self, hook: crate::ir::Hook) -> Ipv4Packet {
        let mut p = *self;
        if hook == crate::ir::Hook::Forward {
            p.ttl = p.ttl.saturating_sub(1);
        }
        p
    }
}

/// The value of one field of a packet, as a classifier stage sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldValue {
    Value(u32),
    Absent,
    Truncated,
}

impl FieldValue {
    /// The index of this value in a direct array table (`tw_t_<field>` of an array field): the value
    /// itself, or the transport sentinels [`tailwall_abi::PORT_ABSENT`] /
    /// [`tailwall_abi::PORT_TRUNCATED`].
    pub fn table_index(self) -> u32 {
        match self {
            FieldValue::Value(v) => v,
            FieldValue::Absent => tailwall_abi::PORT_ABSENT,
            FieldValue::Truncated => tailwall_abi::PORT_TRUNCATED,
        }
    }
}

impl Ipv4Packet {
    /// The packet's value of `field`: the one definition of how each field is read from a decoded
    /// packet (the eBPF entry program fills `PktCtx` with the same values). A new [`Field`] without
    /// an arm here does not compile.
    pub fn value(&self, field: Field) -> FieldValue {
        match (field, self.ports) {
            (Field::SrcIp, _) => FieldValue::Value(self.src),
            (Field::Length, _) => FieldValue::Value(self.ip_len as u32),
            (Field::DstIp, _) => FieldValue::Value(self.dst),
            (Field::Proto, _) => FieldValue::Value(self.proto as u32),
            (Field::SrcPort, Ports::Present { src, .. }) => FieldValue::Value(src as u32),
            (Field::DstPort, Ports::Present { dst, .. }) => FieldValue::Value(dst as u32),
            (Field::SrcPort | Field::DstPort, Ports::Absent) => FieldValue::Absent,
            (Field::SrcPort | Field::DstPort, Ports::Truncated) => FieldValue::Truncated,
            // Interfaces are packet metadata, not header fields: `interp::Meta` carries them.
            (Field::InIface | Field::OutIface, _) => FieldValue::Absent,
            // Part of the tcp match: absent and truncated as the ports, for TCP only.
            (Field::TcpFlags, Ports::Present { .. }) if self.proto == IPPROTO_TCP => {
                FieldValue::Value(self.tcp_flags as u32)
            }
            (Field::TcpFlags, Ports::Truncated) if self.proto == IPPROTO_TCP => {
                FieldValue::Truncated
            }
            (Field::TcpFlags, _) => FieldValue::Absent,
            (Field::Ttl, _) => FieldValue::Value(self.ttl as u32),
            (Field::Fragment, _) => FieldValue::Value((self.frag_offset != 0) as u32),
        }
    }
}

impl std::fmt::Display for Ipv4Packet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (s, d) = (Ipv4Addr::from(self.src), Ipv4Addr::from(self.dst));
        let proto = match self.proto {
            IPPROTO_TCP => "tcp".to_string(),
            IPPROTO_UDP => "udp".to_string(),
            IPPROTO_ICMP => "icmp".to_string(),
            p => format!("proto {p}"),
        };
        match self.ports {
            Ports::Present { src, dst } => write!(f, "{proto} {s}:{src} -> {d}:{dst}"),
            Ports::Absent if self.frag_offset != 0 => {
                write!(f, "{proto} {s} -> {d} frag@{}", self.frag_offset * 8)
            }
            Ports::Absent => write!(f, "{proto} {s} -> {d}"),
            Ports::Truncated => write!(f, "{proto} {s} -> {d} (truncated header)"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decoded {
    NotIpv4,
    Malformed(&'static str),
    Ipv4(Ipv4Packet),
    /// A parsing bound of the datapath was hit (more than [`MAX_VLAN_TAGS`] VLAN tags): dropped,
    /// counted `REASON_BOUND` (fail closed: the packet is never classified by a header we did not read).
    Bound(&'static str),
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Whether `ethertype` is a VLAN tag protocol identifier the datapath skips (802.1Q or 802.1ad, the
/// kernel's `eth_type_vlan`).
pub fn is_vlan_tpid(ethertype: u16) -> bool {
    ethertype == ETHERTYPE_VLAN || ethertype == ETHERTYPE_QINQ
}

/// The network header of an Ethernet frame: its EtherType and its offset in the frame, after skipping up
/// to [`MAX_VLAN_TAGS`] VLAN tags. `Err` is the frame's decoding when there is no network header to read:
/// shorter than an Ethernet header ([`Decoded::NotIpv4`]), cut inside a tag ([`Decoded::Malformed`]),
/// more tags than the bound ([`Decoded::Bound`]).
pub fn network_header(frame: &[u8]) -> Result<(u16, usize), Decoded> {
    if frame.len() < ETH_HLEN {
        return Err(Decoded::NotIpv4);
    }
    let mut ethertype = be16(frame, 12);
    let mut at = ETH_HLEN;
    for _ in 0..MAX_VLAN_TAGS {
        if !is_vlan_tpid(ethertype) {
            return Ok((ethertype, at));
        }
        if frame.len() < at + VLAN_HLEN {
            return Err(Decoded::Malformed("frame ends inside a vlan tag"));
        }
        ethertype = be16(frame, at + 2);
        at += VLAN_HLEN;
    }
    if is_vlan_tpid(ethertype) {
        return Err(Decoded::Bound("more vlan tags than MAX_VLAN_TAGS"));
    }
    Ok((ethertype, at))
}

/// Decode an Ethernet frame (no FCS).
pub fn decode(frame: &[u8]) -> Decoded {
    let (ethertype, l3) = match network_header(frame) {
        Ok(h) => h,
        Err(d) => return d,
    };
    if ethertype != ETHERTYPE_IPV4 {
        return Decoded::NotIpv4;
    }
    let ip = &frame[l3..];
    if ip.len() < 20 {
        return Decoded::Malformed("short ipv4 header");
    }
    if ip[0] >> 4 != 4 {
        return Decoded::Malformed("ip version is not 4");
    }
    let ihl = (ip[0] & 0x0f) as usize * 4;
    if ihl < 20 {
        return Decoded::Malformed("ihl < 5");
    }
    if ihl > ip.len() {
        return Decoded::Malformed("ip header longer than frame");
    }
    let tot_len = be16(ip, 2) as usize;
    if tot_len < ihl || tot_len > ip.len() {
        return Decoded::Malformed("bad ip total length");
    }
    let frag_offset = be16(ip, 6) & 0x1fff;
    let proto = ip[9];
    let l4 = &ip[ihl..tot_len];
    let tcp_flags = if proto == IPPROTO_TCP && frag_offset == 0 && l4.len() >= 20 {
        l4[13]
    } else {
        0
    };
    let ports = if frag_offset == 1 && proto == IPPROTO_TCP {
        // x_tables' tcp match hotdrops a TCP fragment at offset 1 ("evil TCP offset=1 frag": it could
        // overwrite the flags of the first), as it does a truncated header (`tcp_mt`).
        Ports::Truncated
    } else if frag_offset != 0 {
        Ports::Absent
    } else {
        let need = match proto {
            IPPROTO_TCP => 20,
            IPPROTO_UDP => 8,
            _ => 0,
        };
        if need == 0 {
            Ports::Absent
        } else if l4.len() < need {
            Ports::Truncated
        } else {
            Ports::Present {
                src: be16(l4, 0),
                dst: be16(l4, 2),
            }
        }
    };
    Decoded::Ipv4(Ipv4Packet {
        src: be32(ip, 12),
        dst: be32(ip, 16),
        proto,
        ip_len: tot_len as u16,
        frag_offset,
        ports,
        tcp_flags,
        ttl: ip[8],
    })
}

/// Rewrite `frame` (untagged Ethernet + IPv4) so that [`decode`] reads `v` for `field`, every other field
/// keeping its value: the inverse of [`Ipv4Packet::value`], used by the test generator and the
/// analysis' counterexamples to give a packet a header field's value. Returns `false`, leaving the
/// frame as it was, when the frame is not well-formed IPv4 or the value cannot be written that way:
/// - `length` only grows (zeros appended after the transport header, Ethernet padding dropped, the
///   UDP length kept equal to the IP payload), never on a truncated transport header: a smaller value
///   would cut the headers, zeros would complete a truncated one;
/// - the TCP flags only on a TCP first fragment whose header is complete;
/// - `proto` and the ports are chosen when the frame is built ([`build_frame`], [`l4_header`]), and
///   the interfaces are packet metadata: never written here.
///
/// The IPv4 header checksum is recomputed. A new [`Field`] without an arm here does not compile.
pub fn write_value(frame: &mut Vec<u8>, field: Field, v: u32) -> bool {
    // Untagged frames only: the offsets below start at the Ethernet header's end.
    if frame.len() < ETH_HLEN || be16(frame, 12) != ETHERTYPE_IPV4 {
        return false;
    }
    let Decoded::Ipv4(p) = decode(frame) else {
        return false;
    };
    let ihl = (frame[ETH_HLEN] & 0x0f) as usize * 4;
    match field {
        Field::SrcIp | Field::DstIp => {
            let at = ETH_HLEN + if field == Field::SrcIp { 12 } else { 16 };
            frame[at..at + 4].copy_from_slice(&v.to_be_bytes());
        }
        Field::Ttl if v <= 0xff => frame[ETH_HLEN + 8] = v as u8,
        Field::Ttl => return false,
        Field::Length => {
            let tot = p.ip_len as usize;
            // Zeros after a truncated transport header would complete it.
            if v as usize <= tot || v > 0xffff || p.ports == Ports::Truncated {
                return v as usize == tot;
            }
            frame.truncate(ETH_HLEN + tot);
            frame.resize(ETH_HLEN + v as usize, 0);
            frame[ETH_HLEN + 2..ETH_HLEN + 4].copy_from_slice(&(v as u16).to_be_bytes());
            if p.proto == IPPROTO_UDP && matches!(p.ports, Ports::Present { .. }) {
                let at = ETH_HLEN + ihl + 4;
                frame[at..at + 2].copy_from_slice(&((v as usize - ihl) as u16).to_be_bytes());
            }
        }
        Field::TcpFlags => {
            if p.proto != IPPROTO_TCP || !matches!(p.ports, Ports::Present { .. }) || v > 0xff {
                return false;
            }
            frame[ETH_HLEN + ihl + 13] = v as u8;
            return true; // the IPv4 header is unchanged
        }
        // A fragment offset is chosen when the frame is built: it removes the transport header.
        Field::Fragment => return v == (p.frag_offset != 0) as u32,
        Field::Proto | Field::SrcPort | Field::DstPort | Field::InIface | Field::OutIface => {
            return false
        }
    }
    frame[ETH_HLEN + 10..ETH_HLEN + 12].fill(0);
    let csum = ipv4_checksum(&frame[ETH_HLEN..ETH_HLEN + ihl]);
    frame[ETH_HLEN + 10..ETH_HLEN + 12].copy_from_slice(&csum.to_be_bytes());
    true
}

/// Build an Ethernet+IPv4 frame (test and demo helper). `payload` follows the IPv4 header; for TCP/UDP
/// pass [`l4_header`]'s output. The IPv4 checksum is filled in so that a real kernel accepts the frame.
pub fn build_frame(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    frag_offset: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = Vec::with_capacity(ETH_HLEN + 20 + payload.len());
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    let tot = (20 + payload.len()) as u16;
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&tot.to_be_bytes());
    ip[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
    ip[6..8].copy_from_slice(&(frag_offset & 0x1fff).to_be_bytes());
    ip[8] = 64;
    ip[9] = proto;
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&dst.octets());
    let csum = ipv4_checksum(&ip);
    ip[10..12].copy_from_slice(&csum.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(payload);
    f
}

/// A minimal TCP (20 bytes, SYN set) or UDP (8 bytes) header followed by `data`; checksums left zero
/// (the kernel's INPUT hook runs before transport checksums are checked).
pub fn l4_header(proto: u8, sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&sport.to_be_bytes());
    h.extend_from_slice(&dport.to_be_bytes());
    match proto {
        IPPROTO_TCP => {
            h.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
        }
        _ => {
            h.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
            h.extend_from_slice(&[0, 0]);
        }
    }
    h.extend_from_slice(data);
    h
}

pub fn ipv4_checksum(hdr: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in hdr.chunks(2) {
        sum += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: [u8; 6] = [2, 0, 0, 0, 0, 1];

    fn tcp(sport: u16, dport: u16) -> Vec<u8> {
        build_frame(
            M,
            M,
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 2),
            IPPROTO_TCP,
            0,
            &l4_header(IPPROTO_TCP, sport, dport, b""),
        )
    }

    #[test]
    fn forward_sees_the_decremented_ttl() {
        use crate::ir::Hook;
        let Decoded::Ipv4(p) = decode(&tcp(1, 2)) else {
            panic!()
        };
        assert_eq!(p.ttl, 64);
        assert_eq!(p.at_hook(Hook::Input).ttl, 64);
        assert_eq!(p.at_hook(Hook::Output).ttl, 64);
        assert_eq!(p.at_hook(Hook::Forward).ttl, 63);
        let zero = Ipv4Packet { ttl: 0, ..p };
        assert_eq!(zero.at_hook(Hook::Forward).ttl, 0);
    }

    #[test]
    fn ports_present_on_first_fragment() {
        let Decoded::Ipv4(p) = decode(&tcp(1234, 80)) else {
            panic!()
        };
        assert_eq!(p.ports, Ports::Present { src: 1234, dst: 80 });
        assert_eq!(p.ip_len, 40);
    }

    #[test]
    fn tcp_fragment_at_offset_one_is_truncated() {
        let frag = |proto, off| match decode(&build_frame(
            M,
            M,
            Ipv4Addr::LOCALHOST,
            Ipv4Addr::LOCALHOST,
            proto,
            off,
            &[0; 24],
        )) {
            Decoded::Ipv4(p) => p.ports,
            other => panic!("{other:?}"),
        };
        assert_eq!(frag(IPPROTO_TCP, 1), Ports::Truncated);
        assert_eq!(frag(IPPROTO_TCP, 2), Ports::Absent);
        assert_eq!(frag(IPPROTO_UDP, 1), Ports::Absent);
    }

    #[test]
    fn ports_absent_on_later_fragment() {
        let f = build_frame(
            M,
            M,
            Ipv4Addr::LOCALHOST,
            Ipv4Addr::LOCALHOST,
            IPPROTO_TCP,
            3,
            &[0; 24],
        );
        let Decoded::Ipv4(p) = decode(&f) else {
            panic!()
        };
        assert_eq!(p.ports, Ports::Absent);
    }

    #[test]
    fn ports_truncated_ignores_ethernet_padding() {
        // A 10-byte TCP header, padded to 64 bytes by Ethernet: still truncated.
        let mut f = build_frame(
            M,
            M,
            Ipv4Addr::LOCALHOST,
            Ipv4Addr::LOCALHOST,
            IPPROTO_TCP,
            0,
            &[0; 10],
        );
        f.resize(64, 0);
        let Decoded::Ipv4(p) = decode(&f) else {
            panic!()
        };
        assert_eq!(p.ports, Ports::Truncated);
    }

    #[test]
    fn ihl_options_shift_transport_header() {
        let mut f = tcp(1, 2);
        // Insert 4 bytes of IP options (NOP NOP NOP EOL) and fix IHL/total length.
        f.splice(34..34, [1, 1, 1, 0]);
        f[14] = 0x46;
        let tot = be16(&f, 16) + 4;
        f[16..18].copy_from_slice(&tot.to_be_bytes());
        let Decoded::Ipv4(p) = decode(&f) else {
            panic!()
        };
        assert_eq!(p.ports, Ports::Present { src: 1, dst: 2 });
    }

    fn tagged(f: &[u8], tags: &[(u16, u16)]) -> Vec<u8> {
        let mut t = f.to_vec();
        let bytes: Vec<u8> = tags
            .iter()
            .flat_map(|(tpid, tci)| [tpid.to_be_bytes(), tci.to_be_bytes()].concat())
            .collect();
        t.splice(12..12, bytes);
        t
    }

    #[test]
    fn vlan_tags_are_skipped_up_to_the_bound() {
        let plain = decode(&tcp(1234, 22));
        assert!(matches!(plain, Decoded::Ipv4(_)));
        for tags in [
            &[(ETHERTYPE_VLAN, 10)][..],
            &[(ETHERTYPE_QINQ, 10)],
            &[(ETHERTYPE_QINQ, 100), (ETHERTYPE_VLAN, 10)],
            &[(ETHERTYPE_VLAN, 0), (ETHERTYPE_VLAN, 0)],
        ] {
            assert_eq!(decode(&tagged(&tcp(1234, 22), tags)), plain, "{tags:x?}");
        }
        let three = [
            (ETHERTYPE_QINQ, 1),
            (ETHERTYPE_VLAN, 2),
            (ETHERTYPE_VLAN, 3),
        ];
        assert!(matches!(
            decode(&tagged(&tcp(1234, 22), &three)),
            Decoded::Bound(_)
        ));
        // A tag around ARP: not IPv4. A frame that ends inside the tag: malformed.
        let mut arp = tagged(&tcp(1, 2), &[(ETHERTYPE_VLAN, 5)]);
        arp[16..18].copy_from_slice(&0x0806u16.to_be_bytes());
        assert_eq!(decode(&arp), Decoded::NotIpv4);
        let cut = &tagged(&tcp(1, 2), &[(ETHERTYPE_VLAN, 5)])[..16];
        assert!(matches!(decode(cut), Decoded::Malformed(_)));
        // The tag sits before the network header: its offset moves by 4 per tag.
        let two = tagged(&tcp(1, 2), &[(ETHERTYPE_QINQ, 1), (ETHERTYPE_VLAN, 2)]);
        assert_eq!(
            network_header(&two),
            Ok((ETHERTYPE_IPV4, ETH_HLEN + 2 * VLAN_HLEN))
        );
    }

    #[test]
    fn write_value_is_the_inverse_of_value() {
        let mut f = tcp(1, 2);
        assert!(write_value(&mut f, Field::Length, 300));
        let Decoded::Ipv4(p) = decode(&f) else {
            panic!()
        };
        assert_eq!(p.value(Field::Length), FieldValue::Value(300));
        assert_eq!(p.ports, Ports::Present { src: 1, dst: 2 });
        assert_eq!(ipv4_checksum(&f[ETH_HLEN..ETH_HLEN + 20]), 0);
        assert!(!write_value(&mut f, Field::Length, 40), "never shrinks");
        assert!(write_value(&mut f, Field::SrcIp, 0x0a00_0001));
        let Decoded::Ipv4(p) = decode(&f) else {
            panic!()
        };
        assert_eq!((p.src, p.ip_len), (0x0a00_0001, 300));
    }

    #[test]
    fn malformed_and_non_ipv4() {
        assert_eq!(decode(&[0; 10]), Decoded::NotIpv4);
        let mut arp = tcp(1, 2);
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        assert_eq!(decode(&arp), Decoded::NotIpv4);
        let mut bad = tcp(1, 2);
        bad[14] = 0x44;
        assert!(matches!(decode(&bad), Decoded::Malformed(_)));
        let mut long = tcp(1, 2);
        long[16..18].copy_from_slice(&1000u16.to_be_bytes());
        assert!(matches!(decode(&long), Decoded::Malformed(_)));
    }
}
