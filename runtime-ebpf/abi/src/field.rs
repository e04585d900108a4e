//! The datapath half of the field table: one row per header field the XDP programs classify on.
//!
//! [`datapath_fields!`] is the only place a datapath field is spelled out. It is an "X-macro": it
//! hands its rows to a macro of the caller's, so each consumer derives what it needs from the same
//! rows —
//! - this crate: one [`FieldAbi`] constant per row and [`FIELDS`] (stage ids, map and program names,
//!   table kind and size), checked at compile time below;
//! - the eBPF crate (`runtime-ebpf/prog/src/stage.rs`): the `tw_t_<f>`/`tw_v_<f>` maps and the
//!   stage program, reading the row's [`crate::PktCtx`] member, twice: `tw_s_<f>` (XDP) and
//!   `tw_c_<f>` (tc, [`FieldAbi::tc_prog`]);
//! - the compiler (`compiler/src/ir/field.rs`): its `FieldInfo` for the field is built from the
//!   [`FieldAbi`] (name, width, lookup kind, transport); `sim`, `artifact` and the loader's map layout
//!   read it from there.
//!
//! Row syntax (one row per field, in ascending stage-id order; ids are never reused):
//! `CONST = name { stage: N, bits: B, transport: T, table: lpm_v4|lpm_v6|array|hash, read: member,
//! maps: tw_t_name / tw_v_name, prog: tw_s_name }` where `member` is the [`crate::PktCtx`] member the
//! stage looks up (already a table index for array tables) and `transport: true` adds the two
//! port-table sentinels ([`crate::PORT_ABSENT`], [`crate::PORT_TRUNCATED`]) to an array table.
//! See `docs/decisions/0008-field-table-x-macro.md` for why a macro and not generated code.

/// Hands the field table's rows to `$then!` (see the module docs for the row syntax).
#[macro_export]
macro_rules! datapath_fields {
    ($then:ident) => {
        $then! {
            SRC_IP = src_ip {
                stage: 1, bits: 32, transport: false, table: lpm_v4, read: src_ip,
                maps: tw_t_src_ip / tw_v_src_ip, prog: tw_s_src_ip
            }
            DST_IP = dst_ip {
                stage: 2, bits: 32, transport: false, table: lpm_v4, read: dst_ip,
                maps: tw_t_dst_ip / tw_v_dst_ip, prog: tw_s_dst_ip
            }
            PROTO = proto {
                stage: 3, bits: 8, transport: false, table: array, read: proto,
                maps: tw_t_proto / tw_v_proto, prog: tw_s_proto
            }
            SRC_PORT = src_port {
                stage: 4, bits: 16, transport: true, table: array, read: src_port,
                maps: tw_t_src_port / tw_v_src_port, prog: tw_s_src_port
            }
            DST_PORT = dst_port {
                stage: 5, bits: 16, transport: true, table: array, read: dst_port,
                maps: tw_t_dst_port / tw_v_dst_port, prog: tw_s_dst_port
            }
            LENGTH = length {
                stage: 10, bits: 16, transport: false, table: array, read: ip_len,
                maps: tw_t_length / tw_v_length, prog: tw_s_length
            }
            TCP_FLAGS = tcp_flags {
                stage: 11, bits: 8, transport: true, table: array, read: tcp_flags,
                maps: tw_t_tcp_flags / tw_v_tcp_flags, prog: tw_s_tcp_flags
            }
            TTL = ttl {
                stage: 12, bits: 8, transport: false, table: array, read: ttl,
                maps: tw_t_ttl / tw_v_ttl, prog: tw_s_ttl
            }
            FRAGMENT = fragment {
                stage: 13, bits: 1, transport: false, table: array, read: fragment,
                maps: tw_t_fragment / tw_v_fragment, prog: tw_s_fragment
            }
            ICMP_TYPE = icmp_type {
                stage: 14, bits: 16, transport: true, table: array, read: icmp_type,
                maps: tw_t_icmp_type / tw_v_icmp_type, prog: tw_s_icmp_type
            }
            SRC_IP6 = src_ip6 {
                stage: 30, bits: 128, transport: false, table: lpm_v6, read: src_ip6,
                maps: tw_t_src_ip6 / tw_v_src_ip6, prog: tw_s_src_ip6
            }
            DST_IP6 = dst_ip6 {
                stage: 31, bits: 128, transport: false, table: lpm_v6, read: dst_ip6,
                maps: tw_t_dst_ip6 / tw_v_dst_ip6, prog: tw_s_dst_ip6
            }
            IN_IFACE = in_iface {
                stage: 40, bits: 32, transport: false, table: hash, read: in_ifindex,
                maps: tw_t_in_iface / tw_v_in_iface, prog: tw_s_in_iface
            }
            OUT_IFACE = out_iface {
                stage: 41, bits: 32, transport: false, table: hash, read: out_ifindex,
                maps: tw_t_out_iface / tw_v_out_iface, prog: tw_s_out_iface
            }
            CT_STATE = ct_state {
                stage: 50, bits: 3, transport: false, table: array, read: ct_state,
                maps: tw_t_ct_state / tw_v_ct_state, prog: tw_s_ct_state
            }
        }
    };
}

/// How a stage's `tw_t_<field>` table is looked up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableKind {
    /// BPF LPM trie keyed by [`crate::LpmV4Key`] (an IPv4 address, network byte order) → u32 class.
    LpmV4,
    /// BPF LPM trie keyed by [`crate::LpmV6Key`] (an IPv6 address, network byte order) → u32 class.
    LpmV6,
    /// BPF array keyed by the u32 value itself → u32 class, [`FieldAbi::table_entries`] entries.
    Array,
    /// BPF hash map keyed by an interface index (u32) → u32 class, at most [`crate::MAX_IFACES`]
    /// entries, filled by the loader from the network namespace's devices (ifindex 0: "no device");
    /// a missing key drops the packet ([`crate::REASON_NO_IFACE`]).
    Hash,
}

/// One row of the datapath field table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldAbi {
    /// Canonical spelling (YAML key, IR dump, suffix of every kernel-visible name).
    pub name: &'static str,
    /// Stable stage id (never reused).
    pub stage: u32,
    /// Value width in bits.
    pub bits: u32,
    /// The value lives in the transport header: absent on non-first fragments and protocols without
    /// ports, truncated on a cut-short TCP/UDP header; its array table carries both sentinels.
    pub transport: bool,
    /// How the stage looks the value up (LPM trie, direct array, …).
    pub table: TableKind,
    /// Lookup-table map (`tw_t_<name>`).
    pub table_map: &'static str,
    /// Class-vector map (`tw_v_<name>`).
    pub vector_map: &'static str,
    /// Stage program (`tw_s_<name>`, XDP).
    pub prog: &'static str,
    /// The same stage as a tc program (`tw_c_<name>`), in the tc chain (`crate::MAP_PROGS_TC`).
    pub tc_prog: &'static str,
}

impl FieldAbi {
    /// Entries of an array table: every value of the field; a transport field's table is a port
    /// table ([`crate::PORT_TABLE_ENTRIES`]: the sentinels sit at [`crate::PORT_ABSENT`] and
    /// [`crate::PORT_TRUNCATED`] whatever the width, entries above the width unused). 0 for LPM tries
    /// (sized by the artifact's entries).
    pub const fn table_entries(&self) -> u32 {
        match self.table {
            TableKind::LpmV4 | TableKind::LpmV6 => 0,
            TableKind::Hash => crate::MAX_IFACES,
            TableKind::Array if self.transport => crate::PORT_TABLE_ENTRIES,
            TableKind::Array => 1u32 << self.bits,
        }
    }
    /// Key size in bytes of the lookup table.
    pub const fn table_key_size(&self) -> u32 {
        match self.table {
            TableKind::LpmV4 => core::mem::size_of::<crate::LpmV4Key>() as u32,
            TableKind::LpmV6 => core::mem::size_of::<crate::LpmV6Key>() as u32,
            TableKind::Array | TableKind::Hash => 4,
        }
    }
}

/// The [`FieldAbi`] row with this stage id, if any.
pub const fn by_stage(stage: u32) -> Option<&'static FieldAbi> {
    let mut i = 0;
    while i < FIELDS.len() {
        if FIELDS[i].stage == stage {
            return Some(FIELDS[i]);
        }
        i += 1;
    }
    None
}

#[doc(hidden)]
#[macro_export]
macro_rules! __table_kind {
    (lpm_v4) => {
        $crate::TableKind::LpmV4
    };
    (lpm_v6) => {
        $crate::TableKind::LpmV6
    };
    (array) => {
        $crate::TableKind::Array
    };
    (hash) => {
        $crate::TableKind::Hash
    };
}

macro_rules! define_rows {
    ($(
        $konst:ident = $name:ident {
            stage: $stage:literal, bits: $bits:literal, transport: $transport:literal,
            table: $kind:ident, read: $member:ident,
            maps: $t:ident / $v:ident, prog: $prog:ident
        }
    )*) => {
        $(
            #[doc = concat!("Field table row of `", stringify!($name), "`.")]
            pub const $konst: FieldAbi = FieldAbi {
                name: stringify!($name),
                stage: $stage,
                bits: $bits,
                transport: $transport,
                table: $crate::__table_kind!($kind),
                table_map: stringify!($t),
                vector_map: stringify!($v),
                prog: stringify!($prog),
                tc_prog: concat!("tw_c_", stringify!($name)),
            };
        )*
        /// Every datapath field, in stage-id order.
        pub const FIELDS: &[&FieldAbi] = &[$(&$konst),*];
        // The row's PktCtx member exists and is what the stage looks up (a u32 table index or an
        // address in network byte order).
        const _: fn(&crate::PktCtx) = |p| { $( let _ = p.$member; )* };
    };
}
datapath_fields!(define_rows);

const fn ends_with(s: &str, suffix: &str, prefix: &str) -> bool {
    let (s, suffix, prefix) = (s.as_bytes(), suffix.as_bytes(), prefix.as_bytes());
    if s.len() != prefix.len() + suffix.len() {
        return false;
    }
    let mut i = 0;
    while i < prefix.len() {
        if s[i] != prefix[i] {
            return false;
        }
        i += 1;
    }
    let mut j = 0;
    while j < suffix.len() {
        if s[prefix.len() + j] != suffix[j] {
            return false;
        }
        j += 1;
    }
    true
}

// Every row: kernel-visible names are `tw_t_/tw_v_/tw_s_<name>` and at most 15 bytes, stage ids are
// strictly ascending from 1 (so unique and never 0; each engineer's rows take ids from their own range,
// so gaps are expected), LPM tries hold IPv4 (32-bit) or IPv6 (128-bit) addresses, arrays are direct
// tables of at most 2^16 + 2 entries, hash tables are keyed by a 32-bit interface index.
const _: () = {
    let mut i = 0;
    while i < FIELDS.len() {
        let f = FIELDS[i];
        assert!(ends_with(f.table_map, f.name, "tw_t_"));
        assert!(ends_with(f.vector_map, f.name, "tw_v_"));
        assert!(ends_with(f.prog, f.name, "tw_s_"));
        assert!(ends_with(f.tc_prog, f.name, "tw_c_"));
        assert!(f.table_map.len() <= 15 && f.vector_map.len() <= 15 && f.prog.len() <= 15);
        assert!(f.stage >= 1 && (i == 0 || f.stage > FIELDS[i - 1].stage));
        match f.table {
            TableKind::LpmV4 => assert!(f.bits == 32 && !f.transport),
            TableKind::LpmV6 => assert!(f.bits == 128 && !f.transport),
            TableKind::Array => assert!(f.bits >= 1 && f.bits <= 16),
            TableKind::Hash => assert!(f.bits == 32 && !f.transport),
        }
        i += 1;
    }
    assert!(FIELDS.len() as u32 <= crate::MAX_STAGES);
};
