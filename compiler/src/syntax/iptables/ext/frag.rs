//! `-m frag --fragid ID[:ID] --fraglen N --fragres --fragfirst --fragmore --fraglast` (ip6tables fragment
//! header; `--fragmore` and `--fraglast` exclude each other).
use super::spi_like::{flag, save_eliding_full_range, u32_num, u32_range};
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
    save_eliding_full_range(i, out, "fragid");
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
