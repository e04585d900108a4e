//! `-m ah --ahspi N[:M]` and `-m esp --espspi N[:M]` (the SPI range; the full range is not printed).
use super::*;

fn spi(a: &[&str], _: Family) -> Result<Val, ValErr> {
    let (lo, hi) = parse_range(a[0], u32::MAX as u64, ':', "SPI")?;
    Ok(Val::Range(lo, hi))
}

static AH_OPTS: [OptDef; 1] = [OptDef::new("ahspi", Arity::One, true, spi)];
static ESP_OPTS: [OptDef; 1] = [OptDef::new("espspi", Arity::One, true, spi)];

fn save(i: &Inst, out: &mut String) {
    if let Some(g) = i.given.first() {
        if let Val::Range(a, b) = g.val {
            if a != 0 || b != u32::MAX as u64 || g.neg {
                opt_head(out, g);
                fmt_range(out, a, b);
            }
        }
    }
}

pub static AH: Ext = Ext {
    name: "ah",
    target: false,
    family: Some(Family::V4),
    protos: &[51],
    tables: &[],
    hooks: &[],
    opts: &AH_OPTS,
    check: no_check,
    save,
};

pub static ESP: Ext = Ext {
    name: "esp",
    target: false,
    family: None,
    protos: &[50],
    tables: &[],
    hooks: &[],
    opts: &ESP_OPTS,
    check: no_check,
    save,
};
