//! `-m set --match-set NAME src|dst[,src|dst…]` plus its counter options (libxt_set revision 4). Whether
//! the set exists is kernel state and is not checked.
use super::*;

fn match_set(a: &[&str], _: Family) -> Result<Val, ValErr> {
    if a[0].is_empty() || a[0].len() > 31 {
        return Err((
            "E0320",
            format!("invalid set name `{}` (1-31 characters)", a[0]),
        ));
    }
    let dirs: Vec<&str> = a[1].split(',').collect();
    if dirs.len() > 6 || !dirs.iter().all(|d| *d == "src" || *d == "dst") {
        return Err((
            "E0320",
            format!(
                "invalid set flags `{}` (up to six of src, dst, comma-separated)",
                a[1]
            ),
        ));
    }
    Ok(Val::Pair(
        Box::new(Val::Word(a[0].to_string())),
        Box::new(Val::Word(a[1].to_string())),
    ))
}
fn flag(_: &[&str], _: Family) -> Result<Val, ValErr> {
    Ok(Val::Flag)
}
fn count(a: &[&str], _: Family) -> Result<Val, ValErr> {
    parse_uint(a, u64::MAX, "counter value")
}

static OPTS: [OptDef; 9] = [
    OptDef::new("match-set", Arity::Two, true, match_set).aliases(&["set"]),
    OptDef::new("return-nomatch", Arity::Zero, false, flag),
    OptDef::new("update-counters", Arity::Zero, true, flag),
    OptDef::new("update-subcounters", Arity::Zero, true, flag),
    OptDef::new("packets-eq", Arity::One, true, count),
    OptDef::new("packets-lt", Arity::One, false, count),
    OptDef::new("packets-gt", Arity::One, false, count),
    OptDef::new("bytes-eq", Arity::One, true, count),
    OptDef::new("bytes-lt", Arity::One, false, count),
];

fn check(i: &Inst, _: &RuleCtx) -> Result<(), (String, Option<&'static str>)> {
    need_one(i, &["match-set"])
}

pub static EXT: Ext = Ext {
    name: "set",
    target: false,
    family: None,
    protos: &[],
    tables: &[],
    hooks: &[],
    opts: &OPTS,
    check,
    save: save_in_order,
};
