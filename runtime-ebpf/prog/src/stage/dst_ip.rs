//! `tw_s_dst_ip`: the field stage for the destination address (LPM trie on `tw_t_dst_ip`).
//! See [`super::run`] for what every stage guarantees.
use aya_ebpf::{macros::xdp, programs::XdpContext};

use crate::maps::{TW_T_DST_IP, TW_V_DST_IP};

#[xdp]
pub fn tw_s_dst_ip(ctx: XdpContext) -> u32 {
    super::run(
        &ctx,
        |p| super::lpm_class(&TW_T_DST_IP, p.dst_ip),
        &TW_V_DST_IP,
    )
}
