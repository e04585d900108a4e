//! `-m ipcomp --ipcompspi SPI[:SPI] --compres` (needs `-p ipcomp`).
use super::spi_like::{flag, save_range_unless_full, u32_range};
use super::*;

static OPTS: [OptDef; 2] = [
    OptDef::new("ipcompspi", Arity::One, true, u32_range),
    OptDef::new("compres", Arity::Zero, false, flag),
];

/// libxt_ipcomp has no init: without `--ipcompspi` the SPI range is 0:0, which `comp_save` prints.
fn save(i: &Inst, out: &mut String) {
    match i.get("ipcompspi") {
        Some(g) => save_range_unless_full(out, g, u32::MAX as u64),
        None => out.push_str(" --ipcompspi 0"),
    }
    if i.has("compres") {
        out.push_str(" --compres");
    }
}

pub static EXT: Ext = Ext {
    name: "ipcomp",
    target: false,
    family: None,
    protos: &[108],
    tables: &[],
    hooks: &[],
    opts: &OPTS,
    check: no_check,
    save,
};
