//! `-m mh --mh-type TYPE[:TYPE]` (ip6tables; needs `-p mobility-header`).
use super::spi_like::{save_range_unless_full, u8_range};
use super::*;

static OPTS: [OptDef; 1] = [OptDef::new("mh-type", Arity::One, true, u8_range)];

fn save(i: &Inst, out: &mut String) {
    if let Some(g) = i.get("mh-type") {
        save_range_unless_full(out, g, 255);
    }
}

pub static EXT: Ext = Ext {
    name: "mh",
    target: false,
    family: Some(Family::V6),
    protos: &[135],
    tables: &[],
    hooks: &[],
    opts: &OPTS,
    check: no_check,
    save,
};
