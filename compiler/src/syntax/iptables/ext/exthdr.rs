//! ip6tables extension-header matches: `-m dst --dst-len N --dst-opts TYPE[:LEN],…`, `-m hbh --hbh-len N
//! --hbh-opts …`, `-m ipv6header --header LIST [--soft]`.
use super::*;

fn len(a: &[&str], _: Family) -> Result<Val, ValErr> {
    parse_uint(a, u32::MAX as u64, "header length")
}
fn opts(a: &[&str], _: Family) -> Result<Val, ValErr> {
    let parts: Vec<&str> = a[0].split(',').collect();
    if parts.len() > 16 {
        return Err(("E0320", "at most 16 options".into()));
    }
    for p in &parts {
        let ok = match p.split_once(':') {
            Some((t, l)) => uint(t, 255).is_some() && uint(l, 255).is_some(),
            None => uint(p, 255).is_some(),
        };
        if !ok {
            return Err((
                "E0320",
                format!("invalid option `{p}` (TYPE[:LENGTH], 0-255)"),
            ));
        }
    }
    Ok(Val::Word(a[0].to_string()))
}

static DST_OPTS: [OptDef; 2] = [
    OptDef::new("dst-len", Arity::One, true, len),
    OptDef::new("dst-opts", Arity::One, false, opts),
];
static HBH_OPTS: [OptDef; 2] = [
    OptDef::new("hbh-len", Arity::One, true, len),
    OptDef::new("hbh-opts", Arity::One, false, opts),
];

pub static DST: Ext = Ext {
    name: "dst",
    target: false,
    family: Some(Family::V6),
    protos: &[],
    tables: &[],
    hooks: &[],
    opts: &DST_OPTS,
    check: no_check,
    save: save_in_order,
};

pub static HBH: Ext = Ext {
    name: "hbh",
    target: false,
    family: Some(Family::V6),
    protos: &[],
    tables: &[],
    hooks: &[],
    opts: &HBH_OPTS,
    check: no_check,
    save: save_in_order,
};

/// Header names ip6tables prints, and their aliases and protocol numbers.
const HEADERS: [(&str, &[&str]); 8] = [
    ("hop-by-hop", &["hop", "0"]),
    ("ipv6-opts", &["dst", "60"]),
    ("ipv6-route", &["route", "43"]),
    ("ipv6-frag", &["frag", "44"]),
    ("ah", &["auth", "51"]),
    ("esp", &["50"]),
    ("ipv6-nonxt", &["none", "59"]),
    ("protocol", &["proto", "255"]),
];

fn header(a: &[&str], _: Family) -> Result<Val, ValErr> {
    let mut out = Vec::new();
    for p in a[0].split(',') {
        let l = p.to_ascii_lowercase();
        match HEADERS
            .iter()
            .find(|(n, al)| *n == l || al.contains(&l.as_str()))
        {
            Some((n, _)) => out.push(*n),
            None => return Err(("E0320", format!("unknown extension header `{p}`"))),
        }
    }
    Ok(Val::Word(out.join(",")))
}
fn flag(_: &[&str], _: Family) -> Result<Val, ValErr> {
    Ok(Val::Flag)
}

static HEADER_OPTS: [OptDef; 2] = [
    OptDef::new("header", Arity::One, true, header),
    OptDef::new("soft", Arity::Zero, false, flag),
];

fn header_check(i: &Inst, _: &RuleCtx) -> CheckResult {
    need_one(i, &["header"])
}

pub static IPV6HEADER: Ext = Ext {
    name: "ipv6header",
    target: false,
    family: Some(Family::V6),
    protos: &[],
    tables: &[],
    hooks: &[],
    opts: &HEADER_OPTS,
    check: header_check,
    save: save_in_order,
};
