//! `tw_s_src_port`: the field stage for the source port (direct array `tw_t_src_port`: every port, then PORT_ABSENT and PORT_TRUNCATED).
//! See [`super::run`] for what every stage guarantees.
use aya_ebpf::{macros::xdp, programs::XdpContext};

use crate::maps::{TW_T_SRC_PORT, TW_V_SRC_PORT};

#[xdp]
pub fn tw_s_src_port(ctx: XdpContext) -> u32 {
    super::run(
        &ctx,
        |p| super::array_class(&TW_T_SRC_PORT, p.src_port),
        &TW_V_SRC_PORT,
    )
}
