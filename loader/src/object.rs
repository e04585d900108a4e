//! The eBPF object built by `build.rs` from `runtime-ebpf/prog`, embedded 8-byte aligned for the ELF parser.

/// The datapath object: `tw_entry`, the `tw_s_<field>` stages, `tw_final`, `tw_pass`, every `tw_*` map.
pub static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tailwall-ebpf"));
