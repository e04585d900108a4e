//! `-m ipcomp --ipcompspi SPI[:SPI] --compres` (needs `-p ipcomp`).
use super::spi_like::{flag, save_range_unless_full, u32_range};
use super::*;

static OPTS: [OptDef; 2] = [
    OptDef::new("ipcompspi", Arity::One, true, u32_range),
    OptDef::new("compres", Arity::Zero, false, flag),
];

fn save(i: &Inst, out: &mut String) {
    if let Some(g) = i.get("ipcompspi") {
        save_range_unless_full(out, g, u32::MAX as u64);
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
