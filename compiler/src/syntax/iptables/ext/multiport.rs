//! `-m multiport --sports|--dports|--ports LIST` (revision 1: up to 15 ports, a range counting as two).
use super::*;

fn parse(a: &[&str], _: Family) -> Result<Val, ValErr> {
    let mut v = Vec::new();
    let mut count = 0;
    for part in a[0].split(',') {
        let (lo, hi) = match part.split_once(':') {
            None => {
                let p = port_or_service(part).ok_or_else(|| num_err("port", part, 65535))?;
                (p, p)
            }
            Some((x, y)) => {
                let lo = port_or_service(x).ok_or_else(|| num_err("port", x, 65535))?;
                let hi = port_or_service(y).ok_or_else(|| num_err("port", y, 65535))?;
                if lo > hi {
                    return Err(("E0305", format!("invalid port range `{part}` (min > max)")));
                }
                count += 1;
                (lo, hi)
            }
        };
        count += 1;
        v.push((lo, hi));
    }
    if count > 15 {
        return Err((
            "E0320",
            format!(
                "too many ports in `{}` (at most 15, a range counts as two)",
                a[0]
            ),
        ));
    }
    Ok(Val::Ranges(v))
}

pub static OPTS: [OptDef; 3] = [
    OptDef::new("sports", Arity::One, true, parse).aliases(&["source-ports"]),
    OptDef::new("dports", Arity::One, true, parse).aliases(&["destination-ports"]),
    OptDef::new("ports", Arity::One, true, parse),
];

fn check(i: &Inst, _: &RuleCtx) -> Result<(), (String, Option<&'static str>)> {
    need_one(i, &["sports", "dports", "ports"])?;
    exclusive(i, &["sports", "dports", "ports"])
}

pub static EXT: Ext = Ext {
    name: "multiport",
    target: false,
    family: None,
    protos: &[6, 17, 33, 132, 136],
    tables: &[],
    hooks: &[],
    opts: &OPTS,
    check,
    save: save_in_order,
};
