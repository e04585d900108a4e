//! Field stages: one XDP program (`tw_s_<field>`) and one tc program (`tw_c_<field>`, in [`tc`]) per
//! field, each an instance of [`run`], and the field's two maps (`tw_t_<field>`, `tw_v_<field>`,
//! shared by both), all generated from the ABI's field table (`tailwall_abi::datapath_fields!`):
//! adding a row there adds both stages here.
//!
//! A stage looks the packet's field up in `tw_t_<field>` (LPM trie for addresses, direct array for
//! protocol and ports, hash map from interface index for interfaces) to get a class id, then for
//! `c in 0..TW_NCHUNKS` ANDs (the first stage: copies) `tw_v_<field>[class * TW_NCHUNKS + c]` into
//! the per-CPU `tw_scratch[c]`. An all-zero result tail-calls the final program (index `TW_NSTAGES`) directly; otherwise `tw_progs[step + 1]`.
//! A failed lookup drops (`REASON_MAP`; an interface index missing from its table: `REASON_NO_IFACE`);
//! a step beyond `MAX_STAGES` drops (`REASON_BOUND`).
use aya_ebpf::{
    macros::{map, xdp},
    maps::{lpm_trie::LpmTrie, Array, HashMap},
    programs::XdpContext,
};
use tailwall_abi::{
    Chunk, PktCtx, ACTION_DROP, CHUNK_WORDS, MAX_STAGES, REASON_BOUND, REASON_MAP, REASON_NO_IFACE,
};

use crate::{
    common::{by_reason, map_failure, pkt, tail_call, xdp_of, Hook},
    maps::{nchunks, nstages, TW_SCRATCH},
};

/// The lookup table of one row: its map type and how its class is looked up.
macro_rules! table {
    (lpm_v4, $t:ident) => {
        #[map]
        #[allow(non_upper_case_globals)]
        pub static $t: LpmTrie<[u8; 4], u32> = LpmTrie::with_max_entries(1, 0);
    };
    (lpm_v6, $t:ident) => {
        #[map]
        #[allow(non_upper_case_globals)]
        pub static $t: LpmTrie<[u8; 16], u32> = LpmTrie::with_max_entries(1, 0);
    };
    (array, $t:ident) => {
        #[map]
        #[allow(non_upper_case_globals)]
        pub static $t: Array<u32> = Array::with_max_entries(1, 0);
    };
    (hash, $t:ident) => {
        #[map]
        #[allow(non_upper_case_globals)]
        pub static $t: HashMap<u32, u32> = HashMap::with_max_entries(1, 0);
    };
}

/// The class of a packet's value in one row's table.
macro_rules! class {
    (lpm_v4, $t:ident, $value:expr) => {
        lpm_class(&$t, $value)
    };
    (lpm_v6, $t:ident, $value:expr) => {
        lpm6_class(&$t, $value)
    };
    (array, $t:ident, $value:expr) => {
        array_class(&$t, $value)
    };
    (hash, $t:ident, $value:expr) => {
        hash_class(&$t, $value)
    };
}

/// One stage per row: `tw_t_<f>` (placeholder size, sized by the loader), `tw_v_<f>`, `tw_s_<f>`,
/// and `tc::tw_c_<f>`.
macro_rules! stages {
    ($(
        $konst:ident = $name:ident {
            stage: $stage:literal, bits: $bits:literal, transport: $transport:literal,
            table: $kind:ident, read: $member:ident,
            maps: $t:ident / $v:ident, prog: $prog:ident
        }
    )*) => {$(
        table!($kind, $t);

        #[map]
        #[allow(non_upper_case_globals)]
        pub static $v: Array<Chunk> = Array::with_max_entries(1, 0);

        #[doc = concat!("The field stage of `", stringify!($name), "` (XDP): see [`run`].")]
        #[xdp]
        pub fn $prog(ctx: XdpContext) -> u32 {
            xdp_of(crate::log::monitor_stage(&ctx, run(&ctx, |p| class!($kind, $t, p.$member), &$v)))
        }
    )*

    /// The field stages as tc programs (`tw_c_<field>`, section `classifier`, the tc chain): the
    /// same [`run`] on a `TcContext`. Written out rather than with `#[classifier]`, which cannot
    /// give the symbol a name other than the function's.
    pub mod tc {
        use aya_ebpf::{bindings::__sk_buff, programs::TcContext};

        use super::*;
        use crate::common::tc_of;
        $(
            #[doc = concat!("The field stage of `", stringify!($name), "` (tc): see [`run`].")]
            #[unsafe(export_name = concat!("tw_c_", stringify!($name)))]
            #[unsafe(link_section = "classifier")]
            pub fn $prog(ctx: *mut __sk_buff) -> i32 {
                let ctx = TcContext::new(ctx);
                tc_of(crate::log::monitor_stage(&ctx, run(&ctx, |p| class!($kind, $t, p.$member), &$v)))
            }
        )*
    }
    };
}

tailwall_abi::datapath_fields!(stages);

/// Run one field stage: `class_of` maps the packet context to the field's class id (`Err(reason)`:
/// the lookup failed, the packet is dropped and counted in that reason slot), `vectors` is the
/// field's `tw_v_<field>` map. Returns an `ACTION_*` code (only when the packet is dropped or the
/// tail call failed).
#[inline(always)]
fn run<C: Hook>(
    ctx: &C,
    class_of: impl FnOnce(&PktCtx) -> Result<u32, u32>,
    vectors: &Array<Chunk>,
) -> u32 {
    let Some(p) = pkt() else {
        return map_failure(0);
    };
    // SAFETY: a valid per-CPU map value pointer; this CPU runs one packet at a time.
    let p = unsafe { &mut *p };
    let bytes = p.ip_len as u64;
    let class = match class_of(p) {
        Ok(class) => class,
        Err(reason) => return by_reason(reason, ACTION_DROP, bytes),
    };
    let n = nchunks();
    let base = class.wrapping_mul(n);
    let started = p.started != 0;
    let mut any = 0u64;
    let mut c = 0u32;
    while c < n {
        let Some(v) = vectors.get(base.wrapping_add(c)) else {
            return map_failure(bytes);
        };
        let Some(s) = TW_SCRATCH.get_ptr_mut(c) else {
            return map_failure(bytes);
        };
        // SAFETY: a valid per-CPU map value pointer.
        let s = unsafe { &mut *s };
        let mut w = 0;
        while w < CHUNK_WORDS {
            let x = if started { s.w[w] & v.w[w] } else { v.w[w] };
            s.w[w] = x;
            any |= x;
            w += 1;
        }
        c += 1;
    }
    p.started = 1;
    let next = if any == 0 { nstages() } else { p.step + 1 };
    if next > MAX_STAGES {
        return by_reason(REASON_BOUND, ACTION_DROP, bytes);
    }
    p.step = next;
    tail_call(ctx, next, bytes)
}

/// Class of an IPv4 address in an LPM trie keyed by `LpmV4Key` (prefix length 32 = the whole address).
#[inline(always)]
fn lpm_class(
    trie: &aya_ebpf::maps::lpm_trie::LpmTrie<[u8; 4], u32>,
    addr: [u8; 4],
) -> Result<u32, u32> {
    let key = aya_ebpf::maps::lpm_trie::Key::new(32, addr);
    trie.get(&key).copied().ok_or(REASON_MAP)
}

/// Class of an IPv6 address in an LPM trie keyed by `LpmV6Key` (prefix length 128).
#[inline(always)]
fn lpm6_class(
    trie: &aya_ebpf::maps::lpm_trie::LpmTrie<[u8; 16], u32>,
    addr: [u8; 16],
) -> Result<u32, u32> {
    let key = aya_ebpf::maps::lpm_trie::Key::new(128, addr);
    trie.get(&key).copied().ok_or(REASON_MAP)
}

/// Class of a value in a direct array table.
#[inline(always)]
fn array_class(table: &Array<u32>, index: u32) -> Result<u32, u32> {
    table.get(index).copied().ok_or(REASON_MAP)
}

/// Class of an interface index in an interface table; an index the loader did not put there (a
/// device created after the generation was built) is `REASON_NO_IFACE`.
#[inline(always)]
fn hash_class(table: &HashMap<u32, u32>, ifindex: u32) -> Result<u32, u32> {
    // SAFETY: the value is copied out at once; it is never written by the datapath.
    unsafe { table.get(&ifindex) }
        .copied()
        .ok_or(REASON_NO_IFACE)
}
