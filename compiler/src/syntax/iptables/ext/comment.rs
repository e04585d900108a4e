//! `-m comment --comment TEXT` (at most 255 bytes, as XT_MAX_COMMENT_LEN - 1).
use super::*;

pub const MAX_COMMENT_LEN: usize = 255;

fn parse(a: &[&str], _: Family) -> Result<Val, ValErr> {
    if a[0].len() > MAX_COMMENT_LEN {
        return Err((
            "E0309",
            format!(
                "comment is {} bytes long; iptables allows at most {MAX_COMMENT_LEN}",
                a[0].len()
            ),
        ));
    }
    Ok(Val::Text(a[0].to_string()))
}

static OPTS: [OptDef; 1] = [OptDef::new("comment", Arity::One, false, parse)];

fn check(i: &Inst, _: &RuleCtx) -> Result<(), (String, Option<&'static str>)> {
    need_one(i, &["comment"])
}

pub static EXT: Ext = Ext {
    name: "comment",
    target: false,
    family: None,
    protos: &[],
    tables: &[],
    hooks: &[],
    opts: &OPTS,
    check,
    save: save_in_order,
};
