//! `-m policy --dir in|out --pol none|ipsec [--strict] [ELEMENT [--next ELEMENT]…]` where an element is
//! `[--reqid N] [--spi N] [--proto esp|ah|ipcomp] [--mode tunnel|transport] [--tunnel-src A] [--tunnel-dst A]`
//! (at most 4 elements; tunnel addresses need `--mode tunnel`; `--strict` needs an element). Printed in the
//! order given, element by element.
use super::*;
use crate::syntax::iptables::values::{fmt_addr, parse_addr_any};

fn dir(a: &[&str], _: Family) -> Result<Val, ValErr> {
    match a[0] {
        "in" | "out" => Ok(Val::Word(a[0].to_string())),
        _ => Err(("E0320", format!("unknown direction `{}` (in or out)", a[0]))),
    }
}
fn pol(a: &[&str], _: Family) -> Result<Val, ValErr> {
    match a[0] {
        "none" | "ipsec" => Ok(Val::Word(a[0].to_string())),
        _ => Err((
            "E0320",
            format!("unknown policy `{}` (none or ipsec)", a[0]),
        )),
    }
}
fn flag(_: &[&str], _: Family) -> Result<Val, ValErr> {
    Ok(Val::Flag)
}
fn reqid(a: &[&str], _: Family) -> Result<Val, ValErr> {
    parse_uint(a, u32::MAX as u64, "request id")
}
fn spi(a: &[&str], _: Family) -> Result<Val, ValErr> {
    let v = uint(a[0], u32::MAX as u64).ok_or_else(|| num_err("SPI", a[0], u32::MAX as u64))?;
    Ok(Val::Word(format!("0x{v:x}")))
}
fn proto(a: &[&str], _: Family) -> Result<Val, ValErr> {
    match a[0] {
        "esp" | "ah" | "ipcomp" => Ok(Val::Word(a[0].to_string())),
        _ => Err((
            "E0320",
            format!("unknown IPsec protocol `{}` (esp, ah or ipcomp)", a[0]),
        )),
    }
}
fn mode(a: &[&str], _: Family) -> Result<Val, ValErr> {
    match a[0] {
        "tunnel" | "transport" => Ok(Val::Word(a[0].to_string())),
        _ => Err((
            "E0320",
            format!("unknown mode `{}` (tunnel or transport)", a[0]),
        )),
    }
}
fn addr(a: &[&str], f: Family) -> Result<Val, ValErr> {
    let n = parse_addr_any(a[0], f).map_err(|e| ("E0301", e.to_string()))?;
    Ok(Val::Word(fmt_addr(&n)))
}

const fn multi(o: OptDef) -> OptDef {
    OptDef { multi: true, ..o }
}

static OPTS: [OptDef; 10] = [
    OptDef::new("dir", Arity::One, false, dir),
    OptDef::new("pol", Arity::One, false, pol),
    OptDef::new("strict", Arity::Zero, false, flag),
    multi(OptDef::new("reqid", Arity::One, true, reqid)),
    multi(OptDef::new("spi", Arity::One, true, spi)),
    multi(OptDef::new("proto", Arity::One, true, proto)),
    multi(OptDef::new("mode", Arity::One, true, mode)),
    multi(OptDef::new("tunnel-src", Arity::One, true, addr)),
    multi(OptDef::new("tunnel-dst", Arity::One, true, addr)),
    multi(OptDef::new("next", Arity::Zero, false, flag)),
];

fn check(i: &Inst, _: &RuleCtx) -> CheckResult {
    need_one(i, &["dir"])?;
    need_one(i, &["pol"])?;
    // Split into elements at `--next`; each element names an option at most once.
    let mut elements: Vec<Vec<&Given>> = vec![Vec::new()];
    for g in i
        .given
        .iter()
        .filter(|g| !matches!(g.name, "dir" | "pol" | "strict"))
    {
        if g.name == "next" {
            elements.push(Vec::new());
        } else if let Some(e) = elements.last_mut() {
            if e.iter().any(|x| x.name == g.name) {
                return Err((
                    format!("`--{}` twice in one policy element (use `--next`)", g.name),
                    None,
                ));
            }
            e.push(g);
        }
    }
    if elements.len() > 4 {
        return Err(("at most 4 policy elements".into(), Some("next")));
    }
    let empty = elements.iter().all(|e| e.is_empty());
    if i.has("strict") && empty {
        return Err((
            "`--strict` needs at least one policy element".into(),
            Some("strict"),
        ));
    }
    if i.has("next") && elements.iter().any(|e| e.is_empty()) {
        return Err((
            "`--next` between empty policy elements".into(),
            Some("next"),
        ));
    }
    for e in &elements {
        let tunnel = e
            .iter()
            .any(|g| g.name == "mode" && matches!(&g.val, Val::Word(w) if w == "tunnel"));
        if e.iter().any(|g| g.name.starts_with("tunnel-")) && !tunnel {
            return Err((
                "`--tunnel-src`/`--tunnel-dst` need `--mode tunnel`".into(),
                None,
            ));
        }
    }
    Ok(())
}

fn save(i: &Inst, out: &mut String) {
    for n in ["dir", "pol", "strict"] {
        if let Some(g) = i.get(n) {
            opt_head(out, g);
            fmt_val(out, &g.val);
        }
    }
    for g in i
        .given
        .iter()
        .filter(|g| !matches!(g.name, "dir" | "pol" | "strict"))
    {
        opt_head(out, g);
        fmt_val(out, &g.val);
    }
}

pub static EXT: Ext = Ext {
    name: "policy",
    target: false,
    family: None,
    protos: &[],
    tables: &[],
    hooks: &[],
    opts: &OPTS,
    check,
    save,
};
