//! `-j NFQUEUE --queue-num N | --queue-balance A:B [--queue-bypass] [--queue-cpu-fanout]` (revision 3:
//! the queue number is always printed; a balance range needs A < B <= 65534, as iptables checks).
use super::*;

fn num(a: &[&str], _: Family) -> Result<Val, ValErr> {
    parse_uint(a, 65535, "queue number")
}
fn balance(a: &[&str], _: Family) -> Result<Val, ValErr> {
    if !a[0].contains(':') {
        return Err(("E0320", format!("`{}` is not a range (A:B)", a[0])));
    }
    let (lo, hi) = parse_range(a[0], 65534, ':', "queue range")?;
    if lo >= hi {
        return Err(("E0305", format!("queue range `{}` must have A < B", a[0])));
    }
    Ok(Val::Range(lo, hi))
}
fn flag(_: &[&str], _: Family) -> Result<Val, ValErr> {
    Ok(Val::Flag)
}

static OPTS: [OptDef; 4] = [
    OptDef::new("queue-num", Arity::One, false, num),
    OptDef::new("queue-balance", Arity::One, false, balance),
    OptDef::new("queue-bypass", Arity::Zero, false, flag),
    OptDef::new("queue-cpu-fanout", Arity::Zero, false, flag),
];

fn check(i: &Inst, _: &RuleCtx) -> CheckResult {
    exclusive(i, &["queue-num", "queue-balance"])
}

fn save(i: &Inst, out: &mut String) {
    match i.get("queue-balance").map(|g| &g.val) {
        Some(Val::Range(a, b)) => out.push_str(&format!(" --queue-balance {a}:{b}")),
        _ => {
            let n = match i.get("queue-num").map(|g| &g.val) {
                Some(Val::Num(n)) => *n,
                _ => 0,
            };
            out.push_str(&format!(" --queue-num {n}"));
        }
    }
    for n in ["queue-bypass", "queue-cpu-fanout"] {
        if i.has(n) {
            out.push_str(&format!(" --{n}"));
        }
    }
}

pub static EXT: Ext = Ext {
    name: "NFQUEUE",
    target: true,
    family: None,
    protos: &[],
    tables: &[],
    hooks: &[],
    opts: &OPTS,
    check,
    save,
};
