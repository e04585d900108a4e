//! `tw_s_src_ip`: the field stage for the source address (LPM trie on `tw_t_src_ip`).
//! See [`super::run`] for what every stage guarantees.
use aya_ebpf::{macros::xdp, programs::XdpContext};

use crate::maps::{TW_T_SRC_IP, TW_V_SRC_IP};

#[xdp]
pub fn tw_s_src_ip(ctx: XdpContext) -> u32 {
    super::run(
        &ctx,
        |p| super::lpm_class(&TW_T_SRC_IP, p.src_ip),
        &TW_V_SRC_IP,
    )
}
