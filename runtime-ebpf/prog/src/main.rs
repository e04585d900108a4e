//! tailwall's XDP datapath (aya-ebpf), the kernel half of the contract in `tailwall-abi`.
//!
//! Programs, chained by tail calls through `tw_progs`:
//! - [`entry::tw_entry`] (attached): parses Ethernet + IPv4 exactly as `tailwall_compiler::packet::decode`,
//!   fills the per-CPU `tw_pkt`, tail-calls index 0;
//! - `tw_s_<field>` ([`stage`]): one program per field, at prog-array indices `0..TW_NSTAGES` in plan
//!   order, ANDs the field's class vector into the per-CPU `tw_scratch`;
//! - [`verdict::tw_final`] at index `TW_NSTAGES`: first set bit → rule action and counters, else policy;
//! - `tw_pass`: an empty XDP program (returns `XDP_PASS`), the benchmark's baseline.
//!
//! Guarantees: every tail-call site is followed by a counted drop (`REASON_TAIL_CALL`); every lookup that
//! must succeed fails closed (`REASON_MAP`); every loop is bounded by an ABI constant (`MAX_CHUNKS`,
//! `CHUNK_WORDS`) and by the load-time globals. Every path writes the per-CPU `tw_decision`.
//! `tw_reasons` counts packets and bytes per reason slot: bytes are the IPv4 total length once the header
//! is parsed, the frame length before (`REASON_NOT_IPV4`, `REASON_MALFORMED`).
//! Thrown away: everything past the IPv4 header and the first 4 bytes of TCP/UDP; IPv6 passes untouched.
#![no_std]
#![no_main]

mod common;
mod ct;
mod entry;
mod hook;
mod log;
mod maps;
mod reject;
mod stage;
mod verdict;

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};

/// The object's license: GPL-compatible so GPL-only helpers (e.g. `bpf_fib_lookup`) stay available.
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";

/// An empty XDP program: the baseline for per-packet cost measurements.
#[xdp]
pub fn tw_pass(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
