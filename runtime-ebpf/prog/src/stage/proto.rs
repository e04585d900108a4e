//! `tw_s_proto`: the field stage for the IP protocol (direct array `tw_t_proto`, 256 entries).
//! See [`super::run`] for what every stage guarantees.
use aya_ebpf::{macros::xdp, programs::XdpContext};

use crate::maps::{TW_T_PROTO, TW_V_PROTO};

#[xdp]
pub fn tw_s_proto(ctx: XdpContext) -> u32 {
    super::run(
        &ctx,
        |p| super::array_class(&TW_T_PROTO, p.proto),
        &TW_V_PROTO,
    )
}
