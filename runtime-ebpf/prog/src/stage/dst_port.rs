//! `tw_s_dst_port`: the field stage for the destination port (direct array `tw_t_dst_port`: every port, then PORT_ABSENT and PORT_TRUNCATED).
//! See [`super::run`] for what every stage guarantees.
use aya_ebpf::{macros::xdp, programs::XdpContext};

use crate::maps::{TW_T_DST_PORT, TW_V_DST_PORT};

#[xdp]
pub fn tw_s_dst_port(ctx: XdpContext) -> u32 {
    super::run(
        &ctx,
        |p| super::array_class(&TW_T_DST_PORT, p.dst_port),
        &TW_V_DST_PORT,
    )
}
