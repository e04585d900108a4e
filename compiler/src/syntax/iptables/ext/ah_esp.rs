//! `-m ah --ahspi N[:M]` and `-m esp --espspi N[:M]` (the SPI range; the full range is not printed).
use super::*;

fn spi(a: &[&str], _: Family) -> Result<Val, ValErr> {
    let (lo, hi) = parse_range(a[0], u32::MAX as u64, ':', "SPI")?;
    Ok(Val::Range(lo, hi))
}

static AH_OPTS: [OptDef; 1] = [OptDef::new("ahspi", Arity::One, true, spi)];
static ESP_OPTS: [OptDef; 1] = [OptDef::new("espspi", Arity::One, true, spi)];

fn save(i: &Inst, out: &mut String) {
    if let Some(g) = i.given.iter().find(|g| g.name.ends_with("spi")) {
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

fn ahlen(a: &[&str], _: Family) -> Result<Val, ValErr> {
    parse_uint(a, u32::MAX as u64, "header length")
}
fn flag(_: &[&str], _: Family) -> Result<Val, ValErr> {
    Ok(Val::Flag)
}

static AH6_OPTS: [OptDef; 3] = [
    OptDef::new("ahspi", Arity::One, true, spi),
    OptDef::new("ahlen", Arity::One, true, ahlen),
    OptDef::new("ahres", Arity::Zero, false, flag),
];

fn save6(i: &Inst, out: &mut String) {
    save(i, out);
    for n in ["ahlen", "ahres"] {
        if let Some(g) = i.get(n) {
            opt_head(out, g);
            fmt_val(out, &g.val);
        }
    }
}

/// ip6tables' `-m ah` matches the extension header: no `-p` needed.
pub static AH6: Ext = Ext {
    name: "ah",
    target: false,
    family: Some(Family::V6),
    protos: &[],
    tables: &[],
    hooks: &[],
    opts: &AH6_OPTS,
    check: no_check,
    save: save6,
};
