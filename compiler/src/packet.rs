//! Decoding an Ethernet frame into the header fields the classifier reads.
//!
//! This is the single definition of "what the datapath sees": the eBPF entry program
//! (`runtime-ebpf/prog/src/entry.rs`) makes exactly these decisions, and `interp` and `sim` both start
//! from [`decode`]. Guarantees:
//! - up to [`MAX_VLAN_TAGS`] VLAN tags (802.1Q `0x8100`, 802.1ad `0x88a8`, in any order) between the
//!   MAC addresses and the EtherType are skipped: a tagged frame is classified by its inner header, as
//!   the kernel's VLAN devices hand the inner packet to netfilter. A further tag is [`Decoded::Bound`]
//!   (dropped, counted `REASON_BOUND`); a frame that ends inside a tag is [`Decoded::Malformed`];
//! - frames shorter than an Ethernet header, or whose (inner) EtherType is neither IPv4 (0x0800) nor
//!   IPv6 (0x86DD), are [`Decoded::NotIpv4`] and pass untouched;
//! - an IPv4 header the kernel's `ip_rcv` would reject for its shape (fewer than 20 bytes, version ≠ 4,
//!   IHL < 5, header longer than the frame, total length shorter than the header or longer than the frame)
//!   is [`Decoded::Malformed`]. The header checksum is not verified (the kernel does, after XDP);
//! - the transport header is read only from the first fragment, within the IPv4 total length (Ethernet
//!   padding is ignored): TCP needs 20 bytes and UDP 8, as iptables' tcp/udp matches do; a TCP fragment
//!   at offset 1 (8 bytes) counts as a truncated header, which the tcp match hotdrops (`tcp_mt` in
//!   `net/netfilter/xt_tcpudp.c`; found by the oracle at FORWARD and OUTPUT).
//! - IPv6 ([`decode_ipv6`]): a header shorter than 40 bytes, version ≠ 6, or a payload length beyond
//!   the frame is [`Decoded::Malformed`]; the upper-layer protocol (`proto`, what ip6tables' `-p`
//!   tests) is found by walking the extension headers exactly as the kernel's `ipv6_find_hdr`
//!   (`net/ipv6/exthdrs_core.c`, called by `ip6_packet_match` with `target = -1`) does, at most
//!   [`MAX_EXT_HEADERS`] of them: one more is [`Decoded::ExtHeaderBound`] (dropped, fail closed). A
//!   header cut short, or a non-first fragment followed by another extension header (both `-EBADMSG`
//!   / `-ENOENT` for the kernel, which "hotdrops" them at the first rule with `-p`), is
//!   [`Decoded::MalformedIpv6`] (`docs/conformance.md`). Ports as for IPv4, within the payload length
//!   (without the offset-1 TCP rule: ip6tables' fragment offset is in bytes, never 1).
use crate::ir::{Family, Field};
use serde::Serialize;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Ethernet header length: two MAC addresses and the EtherType (`ETH_HLEN`, `if_ether.h`).
pub const ETH_HLEN: usize = 14;
/// IPv4 EtherType (`ETH_P_IP`, `include/uapi/linux/if_ether.h`).
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// 802.1Q VLAN tag protocol identifier (`ETH_P_8021Q`, `include/uapi/linux/if_ether.h`).
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// 802.1ad service VLAN tag protocol identifier (`ETH_P_8021AD`), the outer tag of QinQ.
pub const ETHERTYPE_QINQ: u16 = 0x88a8;
/// Bytes of one VLAN tag: TCI (priority, DEI, VLAN id) and the next EtherType.
pub const VLAN_HLEN: usize = 4;
pub use tailwall_abi::MAX_VLAN_TAGS;
/// IPv6 EtherType (`ETH_P_IPV6`, `if_ether.h`).
pub const ETHERTYPE_IPV6: u16 = 0x86DD;
/// ICMP's protocol number (RFC 792).
pub const IPPROTO_ICMP: u8 = 1;
/// TCP's protocol number (RFC 9293).
pub const IPPROTO_TCP: u8 = 6;
/// UDP's protocol number (RFC 768).
pub const IPPROTO_UDP: u8 = 17;
/// ICMPv6's next-header number (RFC 4443).
pub const IPPROTO_ICMPV6: u8 = 58;
/// IPv6 fixed header length.
pub const IPV6_HLEN: usize = 40;
/// IPv6 extension headers (`ipv6_ext_hdr` in `net/ipv6/exthdrs_core.c`): hop-by-hop options,
/// routing, fragment, authentication, no next header, destination options.
///
/// Hop-by-hop options header (RFC 8200 §4.3).
pub const NEXTHDR_HOP: u8 = 0;
/// Routing header (RFC 8200 §4.4).
pub const NEXTHDR_ROUTING: u8 = 43;
/// Fragment header (RFC 8200 §4.5).
pub const NEXTHDR_FRAGMENT: u8 = 44;
/// Authentication header (RFC 4302); its length is in 4-byte units, not 8.
pub const NEXTHDR_AUTH: u8 = 51;
/// No next header (RFC 8200 §4.7): nothing follows.
pub const NEXTHDR_NONE: u8 = 59;
/// Destination options header (RFC 8200 §4.6).
pub const NEXTHDR_DEST: u8 = 60;
/// Most IPv6 extension headers the decoder (and the eBPF entry program) walks before the upper-layer
/// header: a packet with more is dropped ([`Decoded::ExtHeaderBound`], the kernel counts
/// `REASON_BOUND`). Real traffic carries at most a few (hop-by-hop, routing, fragment, destination
/// options, AH); this is `tailwall_abi::MAX_EXT_HEADERS`.
pub const MAX_EXT_HEADERS: usize = tailwall_abi::MAX_EXT_HEADERS as usize;

/// Is `nexthdr` an IPv6 extension header for `ipv6_find_hdr` (`ipv6_ext_hdr`, `NEXTHDR_NONE`
/// included)?
pub fn is_ext_header(nexthdr: u8) -> bool {
    matches!(
        nexthdr,
        NEXTHDR_HOP
            | NEXTHDR_ROUTING
            | NEXTHDR_FRAGMENT
            | NEXTHDR_AUTH
            | NEXTHDR_NONE
            | NEXTHDR_DEST
    )
}

/// The TCP/UDP ports of a packet, as iptables' tcp/udp matches (`net/netfilter/xt_tcpudp.c`) see them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ports {
    /// A TCP or UDP first fragment with the whole header (20 / 8 bytes).
    Present {
        /// Source port, host order.
        src: u16,
        /// Destination port, host order.
        dst: u16,
    },
    /// Non-first fragment, or a protocol without ports.
    Absent,
    /// TCP/UDP first fragment whose header is cut short, or a TCP fragment at offset 1.
    Truncated,
}

/// A decoded IPv4 or IPv6 packet: the header fields the classifier reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct IpPacket {
    /// IPv4 (`src`/`dst` are 32-bit addresses, zero-extended) or IPv6.
    pub family: Family,
    /// Source address, host order (IPv4 in the low 32 bits).
    pub src: u128,
    /// Destination address, host order (IPv4 in the low 32 bits).
    pub dst: u128,
    /// IPv4: the protocol field; IPv6: the upper-layer protocol after the extension headers (what
    /// `ipv6_find_hdr` returns, `NEXTHDR_NONE` = 59 included).
    pub proto: u8,
    /// What iptables' byte counters add: the IPv4 total length; for IPv6 the 40-byte header plus the
    /// payload length.
    pub ip_len: u32,
    /// Fragment offset in 8-byte units (0 for the first or only fragment); for IPv6 from the fragment
    /// extension header.
    pub frag_offset: u16,
    /// The TCP/UDP ports, or why there are none.
    pub ports: Ports,
    /// TCP flags byte (header byte 13) when `proto` is TCP and the ports are present, else 0.
    pub tcp_flags: u8,
    /// Time to live (header byte 8).
    pub ttl: u8,
    /// The ICMP header's type and code: ICMP in IPv4, ICMPv6 in IPv6.
    pub icmp: Icmp,
    /// The connection-tracking state: [`decode`] gives the state conntrack gives this packet when it
    /// has no entry for it ([`CtState::without_entry`]); an engine that knows better (the kernel's
    /// conntrack, `interp::Meta::ct_state`) overrides it.
    pub ct_state: CtState,
}

/// The connection-tracking state of a packet, as `-m conntrack --ctstate` / `-m state --state` test it
/// (`xt_conntrack.c`: `XT_CONNTRACK_STATE_BIT(ctinfo)`, `XT_CONNTRACK_STATE_INVALID` when the skb has
/// no conntrack, `XT_CONNTRACK_STATE_UNTRACKED`). The value is the `ct_state` field's (the
/// datapath's `tailwall_abi::CT_*`). Not modelled: `SNAT`/`DNAT` (refused by the front end).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum CtState {
    /// No valid conntrack entry and none created (`tailwall_abi::CT_INVALID`).
    Invalid = 0,
    /// The first packet(s) of a connection (`tailwall_abi::CT_NEW`).
    New = 1,
    /// A connection seen both ways (`tailwall_abi::CT_ESTABLISHED`).
    Established = 2,
    /// An ICMP error about a tracked connection (`tailwall_abi::CT_RELATED`).
    Related = 3,
    /// Deliberately not tracked (`tailwall_abi::CT_UNTRACKED`): IPv6 neighbour discovery and MLD.
    Untracked = 4,
}

impl CtState {
    /// Every state, in value order.
    pub const ALL: [CtState; 5] = [
        CtState::Invalid,
        CtState::New,
        CtState::Established,
        CtState::Related,
        CtState::Untracked,
    ];
    /// iptables' spelling (`INVALID`, `NEW`, `ESTABLISHED`, `RELATED`, `UNTRACKED`).
    pub fn name(self) -> &'static str {
        match self {
            CtState::Invalid => "INVALID",
            CtState::New => "NEW",
            CtState::Established => "ESTABLISHED",
            CtState::Related => "RELATED",
            CtState::Untracked => "UNTRACKED",
        }
    }
    /// The state of a value of the `ct_state` field.
    pub fn from_value(v: u128) -> Option<CtState> {
        CtState::ALL.get(usize::try_from(v).ok()?).copied()
    }
    /// The state spelled `s` (any case, as iptables' parser takes it).
    pub fn from_name(s: &str) -> Option<CtState> {
        CtState::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(s))
    }
    /// The state conntrack gives a packet it has no entry for (`nf_conntrack_in` and the protocol
    /// trackers, `nf_conntrack_tcp_loose = 1`, the default), from the transport bytes `l4` of a
    /// first fragment (cut to the IP payload):
    /// - a later fragment: `INVALID` (conntrack sees only reassembled datagrams; XDP cannot know the
    ///   datagram's state: `docs/conformance.md`);
    /// - TCP (`tcp_error`, `tcp_new`): a header shorter than 20 bytes or its data offset, or flags
    ///   outside `tcp_valid_flags` (ECE, CWR, PSH ignored) → `INVALID`; SYN without ACK, or ACK
    ///   without SYN/FIN/RST (picked up mid-stream) → `NEW`; SYN|ACK, FIN, RST, no flag → `INVALID`;
    /// - UDP (`udp_error`): a header shorter than 8 bytes or a length field below 8 or beyond the
    ///   datagram → `INVALID`, else `NEW`;
    /// - ICMP (`icmp_error`, `icmp_new`): a header shorter than 8 bytes or a type above 18 →
    ///   `INVALID`; an error (types 3, 4, 5, 11, 12) quoting no tracked connection → `INVALID`;
    ///   echo, timestamp, information and address-mask requests (8, 13, 15, 17) → `NEW`; the
    ///   other types (replies) → `INVALID`;
    /// - ICMPv6 (`icmpv6_error`, `icmpv6_new`): shorter than 8 bytes → `INVALID`; an error (type
    ///   below 128) → `INVALID`; echo request and node information query (128, 139) → `NEW`;
    ///   MLD and neighbour discovery (130–137, 143) → `UNTRACKED`; the others → `INVALID`;
    /// - any other protocol: `INVALID` — the generic tracker would say `NEW`, but the datapath
    ///   cannot look its entries up (the kfuncs know TCP and UDP only), so replies would be
    ///   misjudged; tailwall says `INVALID` for all of them (documented in `docs/conformance.md`).
    ///
    /// Checksums are not verified (the kernel marks a bad one `INVALID` at PREROUTING).
    pub fn without_entry(family: Family, proto: u8, frag_offset: u16, l4: &[u8]) -> CtState {
        if frag_offset != 0 {
            return CtState::Invalid;
        }
        match (family, proto) {
            (_, IPPROTO_TCP) => {
                if l4.len() < 20 {
                    return CtState::Invalid;
                }
                let doff = (l4[12] >> 4) as usize * 4;
                if doff < 20 || doff > l4.len() || !tcp_flags_valid(l4[13]) {
                    return CtState::Invalid;
                }
                let f = l4[13];
                let (fin, syn, rst, ack) = (f & 1 != 0, f & 2 != 0, f & 4 != 0, f & 0x10 != 0);
                if !rst && ((syn && !ack) || (!syn && !fin && ack)) {
                    CtState::New
                } else {
                    CtState::Invalid
                }
            }
            (_, IPPROTO_UDP) => {
                if l4.len() < 8 {
                    return CtState::Invalid;
                }
                let len = be16(l4, 4) as usize;
                if len < 8 || len > l4.len() {
                    CtState::Invalid
                } else {
                    CtState::New
                }
            }
            (Family::V4, IPPROTO_ICMP) if l4.len() >= ICMP_HLEN => match l4[0] {
                8 | 13 | 15 | 17 => CtState::New,
                _ => CtState::Invalid,
            },
            (Family::V6, IPPROTO_ICMPV6) if l4.len() >= ICMP_HLEN => match l4[0] {
                128 | 139 => CtState::New,
                130..=137 | 143 => CtState::Untracked,
                _ => CtState::Invalid,
            },
            _ => CtState::Invalid,
        }
    }
}

impl CtState {
    /// Where the state tailwall computes at XDP / tc (`docs/decisions/0014`) differs from the one
    /// iptables tests, for a match admitting `admitted` states: one sentence per difference that
    /// can change the match's result (what `check` notes as `N0004` and `migrate` reports). Listed
    /// in `docs/conformance.md`.
    pub fn departures(admitted: &[CtState]) -> Vec<&'static str> {
        let mut out = Vec::new();
        for s in CtState::ALL {
            if !admitted.contains(&s) {
                continue;
            }
            out.push(match s {
                CtState::Established => {
                    "ICMP replies and protocols other than TCP and UDP are never ESTABLISHED (the conntrack kfuncs look up TCP and UDP only: INVALID here), and TCP segments outside the window are ESTABLISHED (iptables: INVALID)"
                }
                CtState::Related => {
                    "RELATED only for ICMP errors quoting a TCP or UDP connection: connections a helper expects (ftp, sip, ...) and ICMP errors about ICMP are INVALID here"
                }
                CtState::New => {
                    "protocols other than TCP, UDP and ICMP are never NEW (INVALID here), and a SYN reusing the tuple of a connection in TIME_WAIT is ESTABLISHED here (iptables: NEW)"
                }
                CtState::Invalid => {
                    "INVALID here also for later fragments and protocols other than TCP, UDP and ICMP, and never for bad checksums or TCP segments outside the window"
                }
                CtState::Untracked => {
                    "UNTRACKED is never given to IPv4 packets here (the raw table's NOTRACK is not seen)"
                }
            });
        }
        out
    }
}

/// `tcp_valid_flags[]` (`nf_conntrack_proto_tcp.c`) on the flags byte without ECE, CWR and PSH:
/// SYN, SYN|URG, SYN|ACK, RST, RST|ACK, FIN|ACK, FIN|ACK|URG, ACK, ACK|URG.
pub fn tcp_flags_valid(flags: u8) -> bool {
    matches!(
        flags & !(0x40 | 0x80 | 0x08),
        0x02 | 0x22 | 0x12 | 0x04 | 0x14 | 0x11 | 0x31 | 0x10 | 0x30
    )
}

/// The ICMP (IPv4 protocol 1) or ICMPv6 (IPv6 next header 58) header as `-m icmp`/`-m icmp6` read it
/// (`icmp_match`/`icmp6_match` in `net/netfilter/xt_tcpudp.c`, `net/ipv6/netfilter/ip6t_icmp6.c`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Icmp {
    /// The first (or only) fragment holds the whole 8-byte header.
    Present {
        /// ICMP type (header byte 0).
        kind: u8,
        /// ICMP code (header byte 1).
        code: u8,
    },
    /// Another protocol, or a non-first fragment (the match fails, negated or not).
    Absent,
    /// Fewer than 8 bytes of ICMP header in the first fragment: the match hotdrops the packet.
    Truncated,
}

/// Bytes of the ICMP and ICMPv6 header the icmp matches read (`struct icmphdr`, `struct icmp6hdr`).
pub const ICMP_HLEN: usize = 8;

/// The ICMP header of a first fragment's transport bytes `l4` (cut to the IP payload) when `proto`
/// is the family's ICMP protocol (`icmp_proto`); [`Icmp::Absent`] otherwise.
fn icmp_of(proto: u8, icmp_proto: u8, frag_offset: u16, l4: &[u8]) -> Icmp {
    if proto != icmp_proto || frag_offset != 0 {
        Icmp::Absent
    } else if l4.len() < ICMP_HLEN {
        Icmp::Truncated
    } else {
        Icmp::Present {
            kind: l4[0],
            code: l4[1],
        }
    }
}

impl IpPacket {
    /// The transport header a transport match reads is cut short: a TCP/UDP header
    /// ([`Ports::Truncated`]) or the 8-byte ICMP header ([`Icmp::Truncated`]); the first rule with a
    /// transport test that the packet reaches drops it (hotdrop).
    pub fn truncated(&self) -> bool {
        self.ports == Ports::Truncated || self.icmp == Icmp::Truncated
    }
    /// The packet as the filter chain of `hook` sees it: at FORWARD the router has already
    /// decremented the TTL (`ip_forward` calls `ip_decrease_ttl` before the FORWARD hook), so `ttl`
    /// is one less (a TTL of 0 or 1 never reaches FORWARD in the kernel: it is dropped with ICMP "time
    /// exceeded"; here it reads 0). The datapath's entry program writes the same value.
    pub fn at_hook(&self, hook: crate::ir::Hook) -> IpPacket {
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
    /// A present value, as wide as the field (IPv6 addresses use all 128 bits).
    Value(u128),
    /// The packet has no such field (a transport field on a non-first fragment or another protocol, an
    /// address of the other family): a test of it fails, negated or not.
    Absent,
    /// The transport header holding the field is cut short: the first rule testing it hotdrops.
    Truncated,
}

impl FieldValue {
    /// The index of this value in a direct array table (`tw_t_<field>` of an array field): the value
    /// itself, or the transport sentinels [`tailwall_abi::PORT_ABSENT`] /
    /// [`tailwall_abi::PORT_TRUNCATED`].
    pub fn table_index(self) -> u32 {
        match self {
            // Array fields are at most 16 bits wide (`tailwall_abi` checks every array row).
            FieldValue::Value(v) => v as u32,
            FieldValue::Absent => tailwall_abi::PORT_ABSENT,
            FieldValue::Truncated => tailwall_abi::PORT_TRUNCATED,
        }
    }
}

impl IpPacket {
    /// The packet's value of `field`: the one definition of how each field is read from a decoded
    /// packet (the eBPF entry program fills `PktCtx` with the same values). A new [`Field`] without
    /// an arm here does not compile. The address fields of the other family are absent (a ruleset
    /// never tests them: `ir::verify` invariant 10).
    pub fn value(&self, field: Field) -> FieldValue {
        let v4 = self.family == Family::V4;
        match (field, self.ports) {
            (Field::SrcIp, _) if v4 => FieldValue::Value(self.src),
            (Field::DstIp, _) if v4 => FieldValue::Value(self.dst),
            (Field::SrcIp6, _) if !v4 => FieldValue::Value(self.src),
            (Field::DstIp6, _) if !v4 => FieldValue::Value(self.dst),
            (Field::SrcIp | Field::DstIp | Field::SrcIp6 | Field::DstIp6, _) => FieldValue::Absent,
            (Field::Length, _) => FieldValue::Value(self.ip_len.into()),
            (Field::Proto, _) => FieldValue::Value(self.proto.into()),
            (Field::SrcPort, Ports::Present { src, .. }) => FieldValue::Value(src.into()),
            (Field::DstPort, Ports::Present { dst, .. }) => FieldValue::Value(dst.into()),
            (Field::SrcPort | Field::DstPort, Ports::Absent) => FieldValue::Absent,
            (Field::SrcPort | Field::DstPort, Ports::Truncated) => FieldValue::Truncated,
            // Interfaces are packet metadata, not header fields: `interp::Meta` carries them.
            (Field::InIface | Field::OutIface, _) => FieldValue::Absent,
            // Part of the tcp match: absent and truncated as the ports, for TCP only.
            (Field::TcpFlags, Ports::Present { .. }) if self.proto == IPPROTO_TCP => {
                FieldValue::Value(self.tcp_flags.into())
            }
            (Field::TcpFlags, Ports::Truncated) if self.proto == IPPROTO_TCP => {
                FieldValue::Truncated
            }
            (Field::TcpFlags, _) => FieldValue::Absent,
            (Field::Ttl, _) => FieldValue::Value(self.ttl.into()),
            (Field::Fragment, _) => FieldValue::Value(((self.frag_offset != 0) as u32).into()),
            (Field::CtState, _) => FieldValue::Value(self.ct_state as u128),
            (Field::IcmpType, _) => match self.icmp {
                Icmp::Present { kind, code } => {
                    FieldValue::Value((u128::from(kind) << 8) | u128::from(code))
                }
                Icmp::Absent => FieldValue::Absent,
                Icmp::Truncated => FieldValue::Truncated,
            },
        }
    }
}

impl std::fmt::Display for IpPacket {
    /// `tcp 10.0.0.1:1234 -> 10.0.0.2:80`, `tcp [2001:db8::1]:1234 -> [2001:db8::2]:80`, …
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (s, d) = match self.family {
            Family::V4 => (
                Ipv4Addr::from(self.src as u32).to_string(),
                Ipv4Addr::from(self.dst as u32).to_string(),
            ),
            Family::V6 => (
                Ipv6Addr::from(self.src).to_string(),
                Ipv6Addr::from(self.dst).to_string(),
            ),
        };
        let proto = match (self.proto, self.family) {
            (IPPROTO_TCP, _) => "tcp".to_string(),
            (IPPROTO_UDP, _) => "udp".to_string(),
            (IPPROTO_ICMP, Family::V4) => "icmp".to_string(),
            (IPPROTO_ICMPV6, Family::V6) => "icmpv6".to_string(),
            (p, _) => format!("proto {p}"),
        };
        match self.ports {
            Ports::Present { src, dst } if self.family == Family::V6 => {
                write!(f, "{proto} [{s}]:{src} -> [{d}]:{dst}")
            }
            Ports::Present { src, dst } => write!(f, "{proto} {s}:{src} -> {d}:{dst}"),
            Ports::Absent if self.frag_offset != 0 => {
                write!(f, "{proto} {s} -> {d} frag@{}", self.frag_offset * 8)
            }
            Ports::Absent => write!(f, "{proto} {s} -> {d}"),
            Ports::Truncated => write!(f, "{proto} {s} -> {d} (truncated header)"),
        }
    }
}

/// What [`decode`] made of a frame: a packet to classify, or why the datapath passes or drops it
/// without classifying.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decoded {
    /// Neither IPv4 nor IPv6 (ARP, …): passed untouched.
    NotIpv4,
    /// An IPv4 header the kernel would reject: dropped.
    Malformed(&'static str),
    /// An IPv6 header the kernel would reject, or an extension-header chain `ipv6_find_hdr` cannot
    /// walk: dropped.
    MalformedIpv6(&'static str),
    /// More than [`MAX_EXT_HEADERS`] IPv6 extension headers: dropped, fail closed (`REASON_BOUND`).
    ExtHeaderBound,
    /// `family` is [`Family::V4`].
    Ipv4(IpPacket),
    /// A parsing bound of the datapath was hit (more than [`MAX_VLAN_TAGS`] VLAN tags): dropped,
    /// counted `REASON_BOUND` (fail closed: the packet is never classified by a header we did not read).
    Bound(&'static str),
    /// `family` is [`Family::V6`].
    Ipv6(IpPacket),
}

impl Decoded {
    /// The decoded IPv4 or IPv6 packet, if the frame is one the classifier reads.
    pub fn packet(&self) -> Option<&IpPacket> {
        match self {
            Decoded::Ipv4(p) | Decoded::Ipv6(p) => Some(p),
            _ => None,
        }
    }
}

impl std::fmt::Display for Decoded {
    /// The packet's tuple, or what the frame is (`not ipv4`, `malformed ipv4 (…)`, …).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Decoded::Ipv4(p) | Decoded::Ipv6(p) => p.fmt(f),
            Decoded::NotIpv4 => f.write_str("not ipv4"),
            Decoded::Malformed(why) => write!(f, "malformed ipv4 ({why})"),
            Decoded::Bound(why) => write!(f, "dropped: {why}"),
            Decoded::MalformedIpv6(why) => write!(f, "malformed ipv6 ({why})"),
            Decoded::ExtHeaderBound => {
                write!(f, "ipv6 with more than {MAX_EXT_HEADERS} extension headers")
            }
        }
    }
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
///
/// # Errors
/// The [`Decoded`] above when the frame has no readable network header.
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
    match ethertype {
        ETHERTYPE_IPV4 => decode_ipv4(&frame[l3..]),
        ETHERTYPE_IPV6 => decode_ipv6(&frame[l3..]),
        _ => Decoded::NotIpv4,
    }
}

/// Ports of a first (or only) fragment's transport header `l4` (already cut to the IP payload).
fn ports_of(proto: u8, l4: &[u8]) -> Ports {
    let need = match proto {
        IPPROTO_TCP => 20,
        IPPROTO_UDP => 8,
        _ => return Ports::Absent,
    };
    if l4.len() < need {
        Ports::Truncated
    } else {
        Ports::Present {
            src: be16(l4, 0),
            dst: be16(l4, 2),
        }
    }
}

/// Decode an IPv6 packet (the bytes after the Ethernet header): the fixed header, then the extension
/// headers as `ipv6_find_hdr(skb, &off, -1, &frag_off, NULL)` walks them, within the payload length:
/// - an upper-layer header (not an extension header) or `NEXTHDR_NONE` ends the walk: `proto`;
/// - fragment header: a non-zero offset ends the walk with the fragment's next header as `proto`
///   and no ports (when that next header is itself an extension header the kernel returns
///   `-ENOENT`: [`Decoded::MalformedIpv6`]); offset 0 is 8 bytes long;
/// - AH is `(hdrlen + 2) * 4` bytes, the others `(hdrlen + 1) * 8`;
/// - a header whose 2 (fragment: 4) first bytes lie beyond the payload: [`Decoded::MalformedIpv6`];
/// - more than [`MAX_EXT_HEADERS`] extension headers: [`Decoded::ExtHeaderBound`].
pub fn decode_ipv6(ip: &[u8]) -> Decoded {
    if ip.len() < IPV6_HLEN {
        return Decoded::MalformedIpv6("short ipv6 header");
    }
    if ip[0] >> 4 != 6 {
        return Decoded::MalformedIpv6("ip version is not 6");
    }
    let end = IPV6_HLEN + be16(ip, 4) as usize;
    if end > ip.len() {
        return Decoded::MalformedIpv6("bad ipv6 payload length");
    }
    let pkt = &ip[..end];
    let mut nexthdr = ip[6];
    let mut start = IPV6_HLEN;
    let mut frag_offset = 0u16;
    let mut walked = 0;
    while is_ext_header(nexthdr) && nexthdr != NEXTHDR_NONE {
        if walked == MAX_EXT_HEADERS {
            return Decoded::ExtHeaderBound;
        }
        walked += 1;
        if start + 2 > end {
            return Decoded::MalformedIpv6("ipv6 extension header cut short");
        }
        let (next, hdrlen) = (pkt[start], pkt[start + 1] as usize);
        let len = match nexthdr {
            NEXTHDR_FRAGMENT => {
                if start + 4 > end {
                    return Decoded::MalformedIpv6("ipv6 extension header cut short");
                }
                let off = be16(pkt, start + 2) & !7;
                if off != 0 {
                    if is_ext_header(next) && next != NEXTHDR_NONE {
                        return Decoded::MalformedIpv6(
                            "ipv6 non-first fragment followed by an extension header",
                        );
                    }
                    frag_offset = off >> 3;
                    nexthdr = next;
                    break;
                }
                8
            }
            NEXTHDR_AUTH => (hdrlen + 2) * 4,
            _ => (hdrlen + 1) * 8,
        };
        nexthdr = next;
        start += len;
    }
    let l4: &[u8] = pkt.get(start..).unwrap_or_default();
    let ports = if frag_offset != 0 {
        Ports::Absent
    } else {
        ports_of(nexthdr, l4)
    };
    // As for IPv4: byte 13 of a complete TCP header of a first fragment.
    let tcp_flags = if nexthdr == IPPROTO_TCP && frag_offset == 0 && l4.len() >= 20 {
        l4[13]
    } else {
        0
    };
    Decoded::Ipv6(IpPacket {
        family: Family::V6,
        src: u128::from_be_bytes(ip[8..24].try_into().expect("16 bytes")),
        dst: u128::from_be_bytes(ip[24..40].try_into().expect("16 bytes")),
        proto: nexthdr,
        ip_len: end as u32,
        frag_offset,
        ports,
        tcp_flags,
        // The hop limit: what ip6tables' `-m hl` tests (the `ttl` field for both families).
        ttl: ip[7],
        icmp: icmp_of(nexthdr, IPPROTO_ICMPV6, frag_offset, l4),
        ct_state: CtState::without_entry(Family::V6, nexthdr, frag_offset, l4),
    })
}

/// Decode an IPv4 packet (the bytes after the Ethernet header).
pub fn decode_ipv4(ip: &[u8]) -> Decoded {
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
        ports_of(proto, &ip[ihl..tot_len])
    };
    Decoded::Ipv4(IpPacket {
        family: Family::V4,
        src: be32(ip, 12).into(),
        dst: be32(ip, 16).into(),
        proto,
        ip_len: tot_len as u32,
        frag_offset,
        ports,
        tcp_flags,
        ttl: ip[8],
        icmp: icmp_of(proto, IPPROTO_ICMP, frag_offset, l4),
        ct_state: CtState::without_entry(Family::V4, proto, frag_offset, l4),
    })
}

/// Rewrite `frame` (untagged Ethernet + IPv4) so that [`decode`] reads `v` for `field`, every other field
/// keeping its value: the inverse of [`IpPacket::value`], used by the test generator and the
/// analysis' counterexamples to give a packet a header field's value. Returns `false`, leaving the
/// frame as it was, when the frame is not well-formed IPv4 or the value cannot be written that way:
/// - `length` only grows (zeros appended after the transport header, Ethernet padding dropped, the
///   UDP length kept equal to the IP payload), never on a truncated transport header: a smaller value
///   would cut the headers, zeros would complete a truncated one;
/// - the TCP flags only on a TCP first fragment whose header is complete, the ICMP type and code
///   (`type << 8 | code`) only on an ICMP first fragment whose 8-byte header is complete (the ICMP
///   checksum is not recomputed: no filter hook verifies it);
/// - `proto` and the ports are chosen when the frame is built ([`build_frame`], [`l4_header`]), and
///   the interfaces are packet metadata: never written here.
///
/// The IPv4 header checksum is recomputed. A new [`Field`] without an arm here does not compile.
pub fn write_value(frame: &mut Vec<u8>, field: Field, v: u32) -> bool {
    // Untagged frames only: the offsets below start at the Ethernet header's end.
    if frame.len() >= ETH_HLEN && be16(frame, 12) == ETHERTYPE_IPV6 {
        return write_value_v6(frame, field, v);
    }
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
        // The conntrack state is metadata (`interp::Meta::ct_state`); the frame carries only the
        // state without an entry.
        Field::CtState => return v == p.ct_state as u32,
        Field::IcmpType => {
            if !matches!(p.icmp, Icmp::Present { .. }) || v > 0xffff {
                return false;
            }
            let at = ETH_HLEN + ihl;
            frame[at..at + 2].copy_from_slice(&(v as u16).to_be_bytes());
            return true; // the IPv4 header is unchanged
        }
        // IPv4 frames only: their addresses are 32 bits.
        Field::Proto
        | Field::SrcPort
        | Field::DstPort
        | Field::InIface
        | Field::OutIface
        | Field::SrcIp6
        | Field::DstIp6 => return false,
    }
    frame[ETH_HLEN + 10..ETH_HLEN + 12].fill(0);
    let csum = ipv4_checksum(&frame[ETH_HLEN..ETH_HLEN + ihl]);
    frame[ETH_HLEN + 10..ETH_HLEN + 12].copy_from_slice(&csum.to_be_bytes());
    true
}

/// [`write_value`] for an untagged IPv6 frame whose transport header (if any) directly follows the
/// fixed header, or whose only extension header is a fragment header (the frames `diff` builds):
/// `ttl` is the hop limit (byte 7), `length` the 40-byte header plus the payload length (what
/// `-m length` reads, `xt_length.c`), `tcp_flags` byte 13 of a TCP header at offset 40. Addresses
/// are 128 bits: not writable through a `u32`.
fn write_value_v6(frame: &mut Vec<u8>, field: Field, v: u32) -> bool {
    let Decoded::Ipv6(p) = decode(frame) else {
        return false;
    };
    let direct = frame[ETH_HLEN + 6] == p.proto;
    match field {
        Field::Ttl if v <= 0xff => frame[ETH_HLEN + 7] = v as u8,
        Field::Length => {
            let tot = p.ip_len as usize;
            if v as usize <= tot || v > 0xffff + IPV6_HLEN as u32 || p.ports == Ports::Truncated {
                return v as usize == tot;
            }
            frame.truncate(ETH_HLEN + tot);
            frame.resize(ETH_HLEN + v as usize, 0);
            let payload = (v as usize - IPV6_HLEN) as u16;
            frame[ETH_HLEN + 4..ETH_HLEN + 6].copy_from_slice(&payload.to_be_bytes());
            if p.proto == IPPROTO_UDP && matches!(p.ports, Ports::Present { .. }) && direct {
                let at = ETH_HLEN + IPV6_HLEN + 4;
                frame[at..at + 2].copy_from_slice(&payload.to_be_bytes());
            }
        }
        Field::TcpFlags
            if p.proto == IPPROTO_TCP
                && direct
                && matches!(p.ports, Ports::Present { .. })
                && v <= 0xff =>
        {
            frame[ETH_HLEN + IPV6_HLEN + 13] = v as u8;
        }
        Field::Fragment => return v == (p.frag_offset != 0) as u32,
        Field::IcmpType if direct && matches!(p.icmp, Icmp::Present { .. }) && v <= 0xffff => {
            let at = ETH_HLEN + IPV6_HLEN;
            frame[at..at + 2].copy_from_slice(&(v as u16).to_be_bytes());
        }
        _ => return false,
    }
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

/// Build an Ethernet+IPv6 frame (test and demo helper): hop limit 64, `next_header` the first header
/// after the fixed one, `payload` everything after it (extension headers from [`ipv6_ext_header`],
/// then e.g. [`l4_header`]'s output). The payload length is `payload.len()`.
pub fn build_frame_v6(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next_header: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = Vec::with_capacity(ETH_HLEN + IPV6_HLEN + payload.len());
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    f.push(next_header);
    f.push(64);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(payload);
    f
}

/// One IPv6 extension header of type `kind` whose next header is `next` (test helper): a fragment
/// header (8 bytes) with `frag_offset` in 8-byte units and the M flag `more`; AH of 16 bytes (`hdrlen`
/// 2); hop-by-hop, routing (type 0, 0 segments left) and destination options of 8 bytes (a PadN
/// option).
pub fn ipv6_ext_header(kind: u8, next: u8, frag_offset: u16, more: bool) -> Vec<u8> {
    match kind {
        NEXTHDR_FRAGMENT => {
            let fo = (frag_offset << 3) | u16::from(more);
            let [a, b] = fo.to_be_bytes();
            vec![next, 0, a, b, 0, 0, 0x12, 0x34]
        }
        NEXTHDR_AUTH => {
            let mut h = vec![next, 2, 0, 0, 0, 0, 0x10, 0x01, 0, 0, 0, 1];
            h.resize(16, 0);
            h
        }
        NEXTHDR_ROUTING => vec![next, 0, 0, 0, 0, 0, 0, 0],
        _ => vec![next, 0, 1, 4, 0, 0, 0, 0],
    }
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

/// The IPv4 header checksum of `hdr` (RFC 791 / RFC 1071: the ones' complement of the ones' complement
/// sum of its 16-bit big-endian words; an odd last byte is padded with zero). Computed over a header
/// whose checksum field is zero, it is the value to store there (host order).
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

    fn ct_of(proto: u8, l4: &[u8]) -> CtState {
        let f = build_frame(
            [2; 6],
            [4; 6],
            [10, 0, 0, 1].into(),
            [10, 0, 0, 2].into(),
            proto,
            0,
            l4,
        );
        decode(&f).packet().expect("ipv4").ct_state
    }

    #[test]
    fn ct_state_without_entry_follows_the_kernel_trackers() {
        let tcp = |flags: u8| {
            let mut h = l4_header(IPPROTO_TCP, 1, 2, &[]);
            h[13] = flags;
            ct_of(IPPROTO_TCP, &h)
        };
        // tcp_conntracks[0][*][sNO] with nf_conntrack_tcp_loose = 1.
        assert_eq!(tcp(0x02), CtState::New, "SYN");
        assert_eq!(tcp(0x10), CtState::New, "ACK: mid-stream pickup");
        assert_eq!(tcp(0x18), CtState::New, "PSH|ACK");
        assert_eq!(tcp(0x12), CtState::Invalid, "SYN|ACK");
        assert_eq!(tcp(0x04), CtState::Invalid, "RST");
        assert_eq!(tcp(0x11), CtState::Invalid, "FIN|ACK");
        assert_eq!(
            tcp(0x03),
            CtState::Invalid,
            "SYN|FIN: not in tcp_valid_flags"
        );
        assert_eq!(tcp(0x00), CtState::Invalid, "no flag");
        assert_eq!(tcp(0xc2), CtState::New, "SYN with ECE|CWR");
        // A data offset below 5 words.
        let mut h = l4_header(IPPROTO_TCP, 1, 2, &[]);
        h[12] = 0x40;
        h[13] = 0x02;
        assert_eq!(ct_of(IPPROTO_TCP, &h), CtState::Invalid);
        assert_eq!(
            ct_of(IPPROTO_TCP, &[0, 1, 0, 2]),
            CtState::Invalid,
            "truncated"
        );
        let udp = l4_header(IPPROTO_UDP, 1, 2, b"x");
        assert_eq!(ct_of(IPPROTO_UDP, &udp), CtState::New);
        let mut long = udp.clone();
        long[5] = 200;
        assert_eq!(
            ct_of(IPPROTO_UDP, &long),
            CtState::Invalid,
            "udp length past the datagram"
        );
        for (kind, want) in [
            (8, CtState::New),
            (13, CtState::New),
            (0, CtState::Invalid),
            (3, CtState::Invalid),
            (11, CtState::Invalid),
            (19, CtState::Invalid),
        ] {
            assert_eq!(
                ct_of(IPPROTO_ICMP, &[kind, 0, 0, 0, 0, 0, 0, 0]),
                want,
                "icmp {kind}"
            );
        }
        assert_eq!(
            ct_of(47, &[0; 8]),
            CtState::Invalid,
            "gre: cannot be looked up"
        );
        let frag = build_frame(
            [2; 6],
            [4; 6],
            [10, 0, 0, 1].into(),
            [10, 0, 0, 2].into(),
            17,
            2,
            &[0; 8],
        );
        assert_eq!(decode(&frag).packet().unwrap().ct_state, CtState::Invalid);
        let v6 = |kind: u8| {
            CtState::without_entry(Family::V6, IPPROTO_ICMPV6, 0, &[kind, 0, 0, 0, 0, 0, 0, 0])
        };
        assert_eq!(v6(128), CtState::New);
        assert_eq!(v6(135), CtState::Untracked, "neighbour solicitation");
        assert_eq!(v6(129), CtState::Invalid);
        assert_eq!(v6(1), CtState::Invalid);
    }

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
        let zero = IpPacket { ttl: 0, ..p };
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

    fn v6(next: u8, payload: &[u8]) -> Vec<u8> {
        build_frame_v6(
            M,
            M,
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
            next,
            payload,
        )
    }

    /// Extension headers `kinds` in order, then a TCP header to port 22.
    fn v6_exts(kinds: &[(u8, u16, bool)]) -> Vec<u8> {
        let mut p = Vec::new();
        for (i, &(k, off, more)) in kinds.iter().enumerate() {
            let next = kinds.get(i + 1).map_or(IPPROTO_TCP, |e| e.0);
            p.extend(ipv6_ext_header(k, next, off, more));
        }
        p.extend(l4_header(IPPROTO_TCP, 1000, 22, b""));
        v6(kinds.first().map_or(IPPROTO_TCP, |e| e.0), &p)
    }

    fn decoded6(f: &[u8]) -> IpPacket {
        match decode(f) {
            Decoded::Ipv6(p) => p,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ipv6_header_and_ports() {
        let p = decoded6(&v6(IPPROTO_TCP, &l4_header(IPPROTO_TCP, 1000, 22, b"")));
        assert_eq!(p.family, Family::V6);
        assert_eq!(
            p.src,
            u128::from("2001:db8::1".parse::<Ipv6Addr>().unwrap())
        );
        assert_eq!(p.ports, Ports::Present { src: 1000, dst: 22 });
        assert_eq!((p.proto, p.ip_len, p.ttl), (IPPROTO_TCP, 60, 64));
        assert_eq!(p.value(Field::SrcIp), FieldValue::Absent);
        assert_eq!(p.value(Field::SrcIp6), FieldValue::Value(p.src));
        assert_eq!(p.to_string(), "tcp [2001:db8::1]:1000 -> [2001:db8::2]:22");
        // Ethernet padding after a short payload is not transport header.
        let mut f = v6(IPPROTO_UDP, &[0, 1, 0, 2]);
        f.resize(80, 0);
        assert_eq!(decoded6(&f).ports, Ports::Truncated);
    }

    #[test]
    fn ipv6_extension_headers_are_walked_to_the_upper_layer() {
        for kinds in [
            vec![NEXTHDR_HOP],
            vec![NEXTHDR_HOP, NEXTHDR_DEST, NEXTHDR_ROUTING, NEXTHDR_AUTH],
            vec![NEXTHDR_DEST; MAX_EXT_HEADERS],
        ] {
            let k: Vec<_> = kinds.iter().map(|&k| (k, 0, false)).collect();
            let p = decoded6(&v6_exts(&k));
            assert_eq!(
                (p.proto, p.ports),
                (IPPROTO_TCP, Ports::Present { src: 1000, dst: 22 }),
                "{kinds:?}"
            );
        }
        let k = vec![(NEXTHDR_DEST, 0, false); MAX_EXT_HEADERS + 1];
        assert_eq!(decode(&v6_exts(&k)), Decoded::ExtHeaderBound);
        // A first fragment has ports; a later one has none, and its offset.
        let p = decoded6(&v6_exts(&[(NEXTHDR_FRAGMENT, 0, true)]));
        assert_eq!(
            (p.frag_offset, p.ports),
            (0, Ports::Present { src: 1000, dst: 22 })
        );
        let p = decoded6(&v6_exts(&[
            (NEXTHDR_HOP, 0, false),
            (NEXTHDR_FRAGMENT, 7, false),
        ]));
        assert_eq!(
            (p.proto, p.frag_offset, p.ports),
            (IPPROTO_TCP, 7, Ports::Absent)
        );
        // A later fragment followed by an extension header: ipv6_find_hdr returns -ENOENT.
        assert!(matches!(
            decode(&v6_exts(&[
                (NEXTHDR_FRAGMENT, 7, false),
                (NEXTHDR_DEST, 0, false)
            ])),
            Decoded::MalformedIpv6(_)
        ));
        // No next header: the walk ends there, 59 is the protocol.
        let p = decoded6(&v6(NEXTHDR_NONE, &[0; 8]));
        assert_eq!((p.proto, p.ports), (NEXTHDR_NONE, Ports::Absent));
        // ESP is not an extension header for ipv6_find_hdr.
        assert_eq!(decoded6(&v6(50, &[0; 16])).proto, 50);
    }

    #[test]
    fn ipv6_malformed() {
        let ok = v6(IPPROTO_TCP, &l4_header(IPPROTO_TCP, 1, 2, b""));
        assert!(matches!(
            decode(&ok[..ETH_HLEN + 39]),
            Decoded::MalformedIpv6(_)
        ));
        let mut bad = ok.clone();
        bad[ETH_HLEN] = 0x40;
        assert!(matches!(decode(&bad), Decoded::MalformedIpv6(_)));
        let mut long = ok.clone();
        long[ETH_HLEN + 4..ETH_HLEN + 6].copy_from_slice(&100u16.to_be_bytes());
        assert!(matches!(decode(&long), Decoded::MalformedIpv6(_)));
        // An extension header whose first bytes lie past the payload length.
        let mut cut = v6(NEXTHDR_DEST, &[IPPROTO_TCP]);
        cut.resize(80, 0);
        assert!(matches!(decode(&cut), Decoded::MalformedIpv6(_)));
        // A header claiming more bytes than the payload: the transport header is then truncated.
        let mut p = ipv6_ext_header(NEXTHDR_DEST, IPPROTO_TCP, 0, false);
        p[1] = 200;
        p.extend(l4_header(IPPROTO_TCP, 1, 2, b""));
        assert_eq!(decoded6(&v6(NEXTHDR_DEST, &p)).ports, Ports::Truncated);
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
