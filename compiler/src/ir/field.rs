//! The field table: every header field tailwall can match, listed once. The front ends, IR checks,
//! classifier builder, simulator and the loader's stage selection all read this table.
//!
//! A datapath field's facts (name, width, lookup, transport, stage, maps, table size) come from its row
//! in `tailwall_abi::datapath_fields!`; this file adds the [`Field`] variant and one
//! [`FieldInfo::from_abi`] line. The interface fields (`in_iface`, `out_iface`) are packet metadata,
//! not header fields: their lookup kind is [`Lookup::Iface`], their tests are
//! [`crate::ir::Test::Iface`] on names, and their datapath rows (`table: hash`) look the packet's
//! interface *index* up in a table the loader fills from the namespace's devices
//! (`docs/decisions/0010`).
use serde::Serialize;

/// A header field. The spelling of [`FieldInfo::name`] is the one used everywhere: YAML key, IR dump,
/// stage file, map stem.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// IPv4 source address (32 bits, `iph->saddr`): `-s` in an iptables ruleset.
    SrcIp,
    /// IPv4 destination address (32 bits, `iph->daddr`): `-d`.
    DstIp,
    /// IPv6 source address (128 bits): what `-s` matches in an ip6tables ruleset, where `src_ip` is
    /// never used. See `docs/decisions/0011-ipv6-addresses-in-the-ir.md`.
    SrcIp6,
    /// IPv6 destination address (128 bits), as [`Field::SrcIp6`].
    DstIp6,
    /// IP protocol (IPv4 `iph->protocol`; IPv6 the upper-layer header after the extension headers, as
    /// `ipv6_find_hdr` finds it): `-p`.
    Proto,
    /// TCP/UDP source port (`--sport`, `--sports` of `-m multiport`): a transport field.
    SrcPort,
    /// TCP/UDP destination port (`--dport`, `--dports`): a transport field.
    DstPort,
    /// Input interface name (packet metadata, not a header field).
    InIface,
    /// Output interface name (packet metadata, not a header field).
    OutIface,
    /// IPv4 total length in bytes, header included (`-m length --length`; `xt_length.c` reads
    /// `tot_len`).
    Length,
    /// The TCP flags byte (header byte 13: CWR ECE URG ACK PSH RST SYN FIN), `-m tcp --tcp-flags`/`--syn`
    /// as the set of bytes `b & mask == comp`; a transport field of TCP only.
    TcpFlags,
    /// IPv4 time to live (`-m ttl --ttl-eq/--ttl-lt/--ttl-gt`, `xt_ttl.c`); the IPv6 hop limit
    /// (`-m hl`) has the same meaning.
    Ttl,
    /// 1 for a non-first fragment (fragment offset ≠ 0), else 0: iptables' `-f` (`ip_packet_match`:
    /// `IPT_F_FRAG` against `ip->frag_off & IP_OFFSET`), `! -f` the first or only fragment.
    Fragment,
    /// ICMP type and code as one value `type << 8 | code` (`-m icmp --icmp-type`, `-m icmp6
    /// --icmpv6-type`: `icmp_type_code_match` in `net/netfilter/xt_tcpudp.c`; type 255 = `any` is the
    /// full range): a transport field of ICMP in IPv4 (protocol 1) and ICMPv6 in IPv6 (protocol 58),
    /// absent on non-first fragments, truncated (hotdrop) when the 8-byte ICMP header is cut.
    IcmpType,
    /// The connection-tracking state conntrack gives the packet (`-m conntrack --ctstate`, `-m state
    /// --state`: `xt_conntrack.c`, `xt_state.c`), one of five values ([`crate::packet::CtState`]):
    /// packet metadata computed from the frame and the kernel's conntrack table
    /// (`docs/decisions/0014-connection-tracking.md`).
    CtState,
}

/// How a field's table is looked up in the datapath.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Lookup {
    /// Longest-prefix match over an address of the field's width (32 or 128 bits; BPF LPM trie).
    Lpm,
    /// Direct index of a small value (BPF array, one entry per value).
    Exact,
    /// Direct index of a 16-bit port plus the "absent" and "truncated" sentinels (BPF array); ranges are
    /// exact because every port has its own entry.
    PortRange,
    /// An interface name ([`crate::ir::Test::Iface`]); the datapath looks the interface index up in a
    /// hash map the loader fills with each device's class (`docs/decisions/0010`).
    Iface,
}

/// One row of the field table. Datapath fields are built from their `tailwall_abi` row
/// ([`FieldInfo::from_abi`]), so name, width, lookup kind and transport-ness are written once, in
/// `tailwall_abi::datapath_fields!` (every field has one since the interfaces reached the datapath;
/// `datapath` stays optional for the next field the IR learns first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldInfo {
    /// The row's field (`FIELDS[f as usize].field == f`).
    pub field: Field,
    /// Canonical spelling.
    pub name: &'static str,
    /// Value width in bits (0 for interface names).
    pub bits: u8,
    /// How the datapath looks the field's value up.
    pub lookup: Lookup,
    /// The value lives in the transport header: absent on non-first fragments and protocols without
    /// ports.
    pub transport: bool,
    /// The datapath's row (stage id, map and program names, table size), `None` when the datapath
    /// does not compile the field: `artifact::build` rejects a rule testing it, located.
    pub datapath: Option<&'static abi::FieldAbi>,
}

impl FieldInfo {
    /// The row of a datapath field, derived from its ABI row.
    pub const fn from_abi(field: Field, row: &'static abi::FieldAbi) -> FieldInfo {
        FieldInfo {
            field,
            name: row.name,
            // Interface tests are on names: the 32-bit ifindex is the datapath's key, not a value
            // the rules test.
            bits: match row.table {
                abi::TableKind::Hash => 0,
                _ => row.bits as u8,
            },
            lookup: match (row.table, row.transport) {
                (abi::TableKind::Hash, _) => Lookup::Iface,
                (abi::TableKind::LpmV4 | abi::TableKind::LpmV6, _) => Lookup::Lpm,
                (abi::TableKind::Array, false) => Lookup::Exact,
                (abi::TableKind::Array, true) => Lookup::PortRange,
            },
            transport: row.transport,
            datapath: Some(row),
        }
    }
    /// The datapath's row; `None` for fields the datapath does not compile.
    pub fn abi(&self) -> Option<&'static abi::FieldAbi> {
        self.datapath
    }
}

use tailwall_abi as abi;

/// All fields, indexed by [`Field`] discriminant; the order breaks ties when planning stages.
pub const FIELDS: [FieldInfo; 15] = [
    FieldInfo::from_abi(Field::SrcIp, &abi::SRC_IP),
    FieldInfo::from_abi(Field::DstIp, &abi::DST_IP),
    FieldInfo::from_abi(Field::SrcIp6, &abi::SRC_IP6),
    FieldInfo::from_abi(Field::DstIp6, &abi::DST_IP6),
    FieldInfo::from_abi(Field::Proto, &abi::PROTO),
    FieldInfo::from_abi(Field::SrcPort, &abi::SRC_PORT),
    FieldInfo::from_abi(Field::DstPort, &abi::DST_PORT),
    FieldInfo::from_abi(Field::InIface, &abi::IN_IFACE),
    FieldInfo::from_abi(Field::OutIface, &abi::OUT_IFACE),
    FieldInfo::from_abi(Field::Length, &abi::LENGTH),
    FieldInfo::from_abi(Field::TcpFlags, &abi::TCP_FLAGS),
    FieldInfo::from_abi(Field::Ttl, &abi::TTL),
    FieldInfo::from_abi(Field::Fragment, &abi::FRAGMENT),
    FieldInfo::from_abi(Field::IcmpType, &abi::ICMP_TYPE),
    FieldInfo::from_abi(Field::CtState, &abi::CT_STATE),
];

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

// The table is indexed by discriminant, and every datapath row of the ABI is the row of exactly one
// field: a row added to `tailwall_abi::datapath_fields!` without its `Field` here fails to compile.
const _: () = {
    let mut i = 0;
    while i < FIELDS.len() {
        assert!(FIELDS[i].field as usize == i);
        i += 1;
    }
    let mut r = 0;
    while r < abi::FIELDS.len() {
        let mut users = 0;
        let mut i = 0;
        while i < FIELDS.len() {
            if let Some(row) = FIELDS[i].datapath {
                if str_eq(row.name, abi::FIELDS[r].name) {
                    users += 1;
                }
            }
            i += 1;
        }
        assert!(users == 1);
        r += 1;
    }
};

impl Field {
    /// Every field, in field-table order.
    pub const ALL: [Field; FIELDS.len()] = {
        let mut all = [Field::SrcIp; FIELDS.len()];
        let mut i = 0;
        while i < FIELDS.len() {
            all[i] = FIELDS[i].field;
            i += 1;
        }
        all
    };

    /// The field's row of the field table.
    pub fn info(self) -> &'static FieldInfo {
        &FIELDS[self as usize]
    }
    /// The canonical spelling (`src_ip`, `dst_port`, …): YAML key, IR dump, stage and map stem.
    pub fn name(self) -> &'static str {
        self.info().name
    }
    /// The field spelled `name` (canonical spelling only, case-sensitive).
    pub fn from_name(name: &str) -> Option<Field> {
        FIELDS.iter().find(|f| f.name == name).map(|f| f.field)
    }
    /// The datapath field of an ABI stage id.
    pub fn from_stage(stage: u32) -> Option<Field> {
        FIELDS
            .iter()
            .find(|f| f.datapath.is_some_and(|r| r.stage == stage))
            .map(|f| f.field)
    }
    /// The fields the datapath compiles, in field-table order.
    pub fn datapath() -> impl Iterator<Item = Field> {
        FIELDS
            .iter()
            .filter(|f| f.datapath.is_some())
            .map(|f| f.field)
    }
    /// The protocols a rule testing this transport field must be limited to (`proto`, not negated,
    /// only these): tcp or udp for ports, tcp for the TCP flags, icmp (1) in IPv4 and ipv6-icmp
    /// (58) in IPv6 for the ICMP type; empty for other fields.
    pub fn l4_protos_in(self, family: super::Family) -> &'static [u32] {
        match (self, family) {
            (Field::IcmpType, super::Family::V4) => &[1],
            (Field::IcmpType, super::Family::V6) => &[58],
            _ => self.l4_protos(),
        }
    }
    /// [`Field::l4_protos_in`] for the fields whose protocols are the same in both families (ports,
    /// TCP flags); for the ICMP type both families' protocols (1 and 58).
    pub fn l4_protos(self) -> &'static [u32] {
        match self {
            Field::TcpFlags => &[6],
            Field::IcmpType => &[1, 58],
            f if f.info().transport => &[6, 17],
            _ => &[],
        }
    }
    /// Largest value the field can hold (0 for interface fields, whose values are names; for
    /// `ct_state` the last of its five states, `UNTRACKED` = 4, below its 3-bit width).
    pub fn max_value(self) -> u128 {
        if self == Field::CtState {
            return crate::packet::CtState::Untracked as u128;
        }
        match self.info().bits {
            0 => 0,
            b => u128::MAX >> (128 - u32::from(b)),
        }
    }
    /// Value width in bits (0 for interface fields).
    pub fn bits(self) -> u8 {
        self.info().bits
    }
    /// The address field of `family` standing for `field` (`src_ip` ↔ `src_ip6`, `dst_ip` ↔
    /// `dst_ip6`); every other field is shared by both families and returned as is.
    pub fn for_family(self, family: super::Family) -> Field {
        use super::Family::{V4, V6};
        match (self, family) {
            (Field::SrcIp | Field::SrcIp6, V4) => Field::SrcIp,
            (Field::DstIp | Field::DstIp6, V4) => Field::DstIp,
            (Field::SrcIp | Field::SrcIp6, V6) => Field::SrcIp6,
            (Field::DstIp | Field::DstIp6, V6) => Field::DstIp6,
            (f, _) => f,
        }
    }
    /// The family whose rulesets may test this field: `Some(V4)` for `src_ip`/`dst_ip`, `Some(V6)`
    /// for `src_ip6`/`dst_ip6`, `None` for fields of both families.
    pub fn family(self) -> Option<super::Family> {
        match self {
            Field::SrcIp | Field::DstIp => Some(super::Family::V4),
            Field::SrcIp6 | Field::DstIp6 => Some(super::Family::V6),
            _ => None,
        }
    }
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_table_names_round_trip() {
        for f in Field::ALL {
            assert_eq!(Field::from_name(f.name()), Some(f));
            if let Some(row) = f.info().abi() {
                assert_eq!(row.name, f.name());
                assert_eq!(Field::from_stage(row.stage), Some(f));
            }
        }
        assert_eq!(Field::datapath().count(), abi::FIELDS.len());
    }
}
