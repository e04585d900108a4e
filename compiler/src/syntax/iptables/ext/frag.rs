//! `-m frag --fragid ID[:ID] --fraglen N --fragres --fragfirst --fragmore --fraglast` (ip6tables fragment
//! header; `--fragmore` and `--fraglast` exclude each other).
use super::spi_like::{flag, save_range_unless_full, u32_num, u32_range};
use super::*;

static OPTS: [OptDef; 6] = [
    OptDef::new("fragid", Arity::One, true, u32_range),
    OptDef::new("fraglen", Arity::One, true, u32_num),
    OptDef::new("fragres", Arity::Zero, false, flag),
    OptDef::new("fragfirst", Arity::Zero, false, flag),
    OptDef::new("fragmore", Arity::Zero, false, flag),
    OptDef::new("fraglast", Arity::Zero, false, flag),
];

fn check(i: &Inst, _: &RuleCtx) -> CheckResult {
    exclusive(i, &["fragmore", "fraglast"])
}

fn save(i: &Inst, out: &mut String) {
    for def in &OPTS {
        let Some(g) = i.get(def.name) else { continue };
        if def.name == "fragid" {
            save_range_unless_full(out, g, u32::MAX as u64);
        } else {
            opt_head(out, g);
            fmt_val(out, &g.val);
        }
    }
}

pub static EXT: Ext = Ext {
    name: "frag",
    target: false,
    family: Some(Family::V6),
    protos: &[],
    tables: &[],
    hooks: &[],
    opts: &OPTS,
    check,
    save,
};
