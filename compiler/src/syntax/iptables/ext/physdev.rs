//! `-m physdev --physdev-in/--physdev-out IFACE --physdev-is-in/--physdev-is-out/--physdev-is-bridged`.
use super::*;

fn iface(a: &[&str], _: Family) -> Result<Val, ValErr> {
    if a[0].len() > 15 {
        return Err((
            "E0320",
            format!("interface name `{}` is longer than 15 characters", a[0]),
        ));
    }
    Ok(Val::Word(a[0].to_string()))
}
fn flag(_: &[&str], _: Family) -> Result<Val, ValErr> {
    Ok(Val::Flag)
}

static OPTS: [OptDef; 5] = [
    OptDef::new("physdev-is-in", Arity::Zero, true, flag),
    OptDef::new("physdev-in", Arity::One, true, iface),
    OptDef::new("physdev-is-out", Arity::Zero, true, flag),
    OptDef::new("physdev-out", Arity::One, true, iface),
    OptDef::new("physdev-is-bridged", Arity::Zero, true, flag),
];

fn check(i: &Inst, _: &RuleCtx) -> Result<(), (String, Option<&'static str>)> {
    if i.given.is_empty() {
        return Err(("`physdev` needs at least one option".into(), None));
    }
    Ok(())
}

pub static EXT: Ext = Ext {
    name: "physdev",
    target: false,
    family: None,
    protos: &[],
    tables: &[],
    hooks: &[],
    opts: &OPTS,
    check,
    save: save_in_order,
};
