//! `-m cgroup --cgroup CLASSID | --path PATH` (exactly one; the path is printed with iptables-save's
//! quoting).
use super::*;

fn classid(a: &[&str], _: Family) -> Result<Val, ValErr> {
    parse_uint(a, u32::MAX as u64, "class id")
}
fn path(a: &[&str], _: Family) -> Result<Val, ValErr> {
    if a[0].is_empty() || a[0].len() > 4095 {
        return Err(("E0320", "invalid cgroup path".into()));
    }
    Ok(Val::Text(a[0].to_string()))
}

static OPTS: [OptDef; 2] = [
    OptDef::new("path", Arity::One, true, path),
    OptDef::new("cgroup", Arity::One, true, classid),
];

fn check(i: &Inst, _: &RuleCtx) -> CheckResult {
    need_one(i, &["cgroup", "path"])?;
    exclusive(i, &["cgroup", "path"])
}

pub static EXT: Ext = Ext {
    name: "cgroup",
    target: false,
    family: None,
    protos: &[],
    tables: &[],
    hooks: &[],
    opts: &OPTS,
    check,
    save: save_in_order,
};
