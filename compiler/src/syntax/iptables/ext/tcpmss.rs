//! `-j TCPMSS --set-mss N | --clamp-mss-to-pmtu` (needs `-p tcp` and, as the legacy kernel checks, a tcp
//! match with SYN in both `--tcp-flags` masks).
use super::*;

fn mss(a: &[&str], _: Family) -> Result<Val, ValErr> {
    parse_uint(a, 65535, "MSS")
}
fn flag(_: &[&str], _: Family) -> Result<Val, ValErr> {
    Ok(Val::Flag)
}

static OPTS: [OptDef; 2] = [
    OptDef::new("set-mss", Arity::One, false, mss),
    OptDef::new("clamp-mss-to-pmtu", Arity::Zero, false, flag),
];

fn check(i: &Inst, ctx: &RuleCtx) -> Result<(), (String, Option<&'static str>)> {
    need_one(i, &["set-mss", "clamp-mss-to-pmtu"])?;
    exclusive(i, &["set-mss", "clamp-mss-to-pmtu"])?;
    let syn = ctx.matches.iter().any(|m| {
        m.name() == "tcp"
            && m.given.iter().any(|g| {
                !g.neg
                    && matches!(&g.val, Val::Pair(a, b)
                        if matches!((&**a, &**b), (Val::Bits(m), Val::Bits(c)) if m & 2 != 0 && c & 2 != 0))
            })
    });
    if !syn {
        return Err((
            "TCPMSS is only valid for SYN packets: add `-m tcp --tcp-flags SYN,RST SYN`".into(),
            None,
        ));
    }
    Ok(())
}

pub static EXT: Ext = Ext {
    name: "TCPMSS",
    target: true,
    family: None,
    protos: &[6],
    tables: &[],
    hooks: &["FORWARD", "OUTPUT", "POSTROUTING"],
    opts: &OPTS,
    check,
    save: save_in_order,
};
