//! The field table: every header field tailwall can match, listed once. The front ends, IR checks,
//! classifier builder, simulator and the loader's stage selection all read this table.
//!
//! The interface fields (`in_iface`, `out_iface`) are packet metadata, not header fields: their
//! lookup kind is [`Lookup::Iface`], their tests are [`crate::ir::Test::Iface`], and they are marked
//! `datapath: false` — the datapath does not compile them yet (`artifact::build` rejects a rule that
//! tests one), so their stage id (0) and map/program names are reserved placeholders.
use serde::Serialize;

/// A header field. The spelling of [`FieldInfo::name`] is the one used everywhere: YAML key, IR dump,
/// stage file, map stem.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    SrcIp,
    DstIp,
    Proto,
    SrcPort,
    DstPort,
    /// Input interface name (packet metadata, not a header field).
    InIface,
    /// Output interface name (packet metadata, not a header field).
    OutIface,
}

/// How a field's table is looked up in the datapath.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Lookup {
    /// Longest-prefix match over a 32-bit address (BPF LPM trie).
    Lpm,
    /// Direct index of a small value (BPF array, one entry per value).
    Exact,
    /// Direct index of a 16-bit port plus the "absent" and "truncated" sentinels (BPF array); ranges are
    /// exact because every port has its own entry.
    PortRange,
    /// An interface name ([`crate::ir::Test::Iface`]); not compiled by the datapath yet.
    Iface,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldInfo {
    pub field: Field,
    /// Canonical spelling.
    pub name: &'static str,
    /// Value width in bits.
    pub bits: u8,
    pub lookup: Lookup,
    /// The value lives in the transport header: absent on non-first fragments and protocols without ports.
    pub transport: bool,
    /// The datapath can compile this field (it has a stage program and maps). For fields with
    /// `datapath: false` (the interfaces) `stage_id` is 0 (no stage has id 0) and the map/program names
    /// are reserved, never created by the loader nor the artifact.
    pub datapath: bool,
    /// Stable stage id ([`tailwall_abi::STAGE_SRC_IP`], …).
    pub stage_id: u32,
    /// Lookup-table map name (`tw_t_<name>`).
    pub table_map: &'static str,
    /// Class-vector map name (`tw_v_<name>`).
    pub vector_map: &'static str,
    /// eBPF program name of the stage.
    pub prog: &'static str,
}

use tailwall_abi as abi;

/// All fields, in the order that breaks ties when planning stages.
pub const FIELDS: [FieldInfo; 7] = [
    FieldInfo {
        field: Field::SrcIp,
        name: "src_ip",
        bits: 32,
        lookup: Lookup::Lpm,
        transport: false,
        datapath: true,
        stage_id: abi::STAGE_SRC_IP,
        table_map: abi::MAP_T_SRC_IP,
        vector_map: abi::MAP_V_SRC_IP,
        prog: abi::PROG_SRC_IP,
    },
    FieldInfo {
        field: Field::DstIp,
        name: "dst_ip",
        bits: 32,
        lookup: Lookup::Lpm,
        transport: false,
        datapath: true,
        stage_id: abi::STAGE_DST_IP,
        table_map: abi::MAP_T_DST_IP,
        vector_map: abi::MAP_V_DST_IP,
        prog: abi::PROG_DST_IP,
    },
    FieldInfo {
        field: Field::Proto,
        name: "proto",
        bits: 8,
        lookup: Lookup::Exact,
        transport: false,
        datapath: true,
        stage_id: abi::STAGE_PROTO,
        table_map: abi::MAP_T_PROTO,
        vector_map: abi::MAP_V_PROTO,
        prog: abi::PROG_PROTO,
    },
    FieldInfo {
        field: Field::SrcPort,
        name: "src_port",
        bits: 16,
        lookup: Lookup::PortRange,
        transport: true,
        datapath: true,
        stage_id: abi::STAGE_SRC_PORT,
        table_map: abi::MAP_T_SRC_PORT,
        vector_map: abi::MAP_V_SRC_PORT,
        prog: abi::PROG_SRC_PORT,
    },
    FieldInfo {
        field: Field::DstPort,
        name: "dst_port",
        bits: 16,
        lookup: Lookup::PortRange,
        transport: true,
        datapath: true,
        stage_id: abi::STAGE_DST_PORT,
        table_map: abi::MAP_T_DST_PORT,
        vector_map: abi::MAP_V_DST_PORT,
        prog: abi::PROG_DST_PORT,
    },
    FieldInfo {
        field: Field::InIface,
        name: "in_iface",
        bits: 0,
        lookup: Lookup::Iface,
        transport: false,
        datapath: false,
        stage_id: 0,
        table_map: "tw_t_in_iface",
        vector_map: "tw_v_in_iface",
        prog: "tw_s_in_iface",
    },
    FieldInfo {
        field: Field::OutIface,
        name: "out_iface",
        bits: 0,
        lookup: Lookup::Iface,
        transport: false,
        datapath: false,
        stage_id: 0,
        table_map: "tw_t_out_iface",
        vector_map: "tw_v_out_iface",
        prog: "tw_s_out_iface",
    },
];

impl Field {
    pub const ALL: [Field; 7] = [
        Field::SrcIp,
        Field::DstIp,
        Field::Proto,
        Field::SrcPort,
        Field::DstPort,
        Field::InIface,
        Field::OutIface,
    ];
    /// The fields the datapath compiles (`FieldInfo::datapath`), in field-table order.
    pub const DATAPATH: [Field; 5] = [
        Field::SrcIp,
        Field::DstIp,
        Field::Proto,
        Field::SrcPort,
        Field::DstPort,
    ];

    pub fn info(self) -> &'static FieldInfo {
        &FIELDS[self as usize]
    }
    pub fn name(self) -> &'static str {
        self.info().name
    }
    pub fn from_name(name: &str) -> Option<Field> {
        FIELDS.iter().find(|f| f.name == name).map(|f| f.field)
    }
    /// Largest value the field can hold (0 for interface fields, whose values are names).
    pub fn max_value(self) -> u32 {
        match self.info().bits {
            0 => 0,
            32 => u32::MAX,
            b => (1u32 << b) - 1,
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
    fn field_table_is_indexed_by_discriminant() {
        for (i, f) in Field::ALL.iter().enumerate() {
            assert_eq!(FIELDS[i].field, *f);
            assert_eq!(Field::from_name(f.name()), Some(*f));
            assert!(f.info().table_map.ends_with(f.name()));
            assert!(f.info().vector_map.ends_with(f.name()));
            assert!(f.info().prog.ends_with(f.name()));
            assert_eq!(f.info().datapath, Field::DATAPATH.contains(f));
            assert_eq!(f.info().datapath, f.info().stage_id != 0);
        }
    }
}
