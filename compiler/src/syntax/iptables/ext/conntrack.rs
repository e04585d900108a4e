//! `-m state --state LIST` and `-m conntrack --ctstate/--ctproto/--ctorig*/--ctrepl*/--ctstatus/--ctexpire/
//! --ctdir` (libxt_state, libxt_conntrack revision 3).
use super::*;
use crate::syntax::iptables::values::{fmt_addr, parse_addr_any};

/// libxt_conntrack's state names and bits (`state_tbl`); `-m state` takes the first five.
pub const STATES: [(&str, u32); 7] = [
    ("INVALID", 1),
    ("NEW", 2),
    ("RELATED", 4),
    ("ESTABLISHED", 8),
    ("UNTRACKED", 16),
    ("SNAT", 32),
    ("DNAT", 64),
];

/// libxt_conntrack's `--ctstatus` names and bits (`status_tbl`).
pub(crate) const STATUS: [(&str, u32); 5] = [
    ("NONE", 0),
    ("EXPECTED", 1),
    ("SEEN_REPLY", 2),
    ("ASSURED", 4),
    ("CONFIRMED", 8),
];

fn parse_state(a: &[&str], _: Family) -> Result<Val, ValErr> {
    Ok(Val::Bits(parse_bits(
        a[0],
        &STATES[..5],
        "connection state",
    )?))
}
fn parse_ctstate(a: &[&str], _: Family) -> Result<Val, ValErr> {
    Ok(Val::Bits(parse_bits(a[0], &STATES, "connection state")?))
}
fn parse_status(a: &[&str], _: Family) -> Result<Val, ValErr> {
    Ok(Val::Bits(parse_bits(a[0], &STATUS, "connection status")?))
}
fn parse_proto(a: &[&str], _: Family) -> Result<Val, ValErr> {
    match crate::syntax::iptables::values::parse_proto(a[0]) {
        Ok(crate::syntax::iptables::values::Proto::Number(n)) => Ok(Val::Num(n as u64)),
        Ok(_) => Err((
            "E0320",
            "`--ctproto 0` never matches; iptables rejects it".into(),
        )),
        Err(e) => Err(("E0303", e.to_string())),
    }
}
fn parse_addr(a: &[&str], f: Family) -> Result<Val, ValErr> {
    let n = parse_addr_any(a[0], f).map_err(|e| ("E0301", e.to_string()))?;
    // A host address is printed without its full-length prefix.
    let full = matches!(n.prefix_len(), Some(32) if f == Family::V4)
        || matches!(n.prefix_len(), Some(128) if f == Family::V6);
    let s = fmt_addr(&n);
    Ok(Val::Word(if full {
        s.split('/').next().unwrap_or(&s).to_string()
    } else {
        s
    }))
}
/// `--ct{orig,repl}{src,dst}port`: libxt_conntrack's `XTTYPE_PORTRC`, decimal (`022` is 22, `0x10` refused).
fn parse_port(a: &[&str], f: Family) -> Result<Val, ValErr> {
    xtopt_port_range(a, f)
}
fn parse_expire(a: &[&str], _: Family) -> Result<Val, ValErr> {
    let (lo, hi) = parse_range(a[0], 0xffff_ffff, ':', "expire time")?;
    Ok(Val::Range(lo, hi))
}
fn parse_dir(a: &[&str], _: Family) -> Result<Val, ValErr> {
    match a[0].to_ascii_uppercase().as_str() {
        "ORIGINAL" => Ok(Val::Word("ORIGINAL".into())),
        "REPLY" => Ok(Val::Word("REPLY".into())),
        _ => Err((
            "E0320",
            format!("unknown direction `{}` (ORIGINAL or REPLY)", a[0]),
        )),
    }
}

static STATE_OPTS: [OptDef; 1] = [OptDef::new("state", Arity::One, true, parse_state)];

fn state_check(i: &Inst, _: &RuleCtx) -> Result<(), (String, Option<&'static str>)> {
    need_one(i, &["state"])
}

fn save_states(out: &mut String, g: &Given, names: &[(&str, u32)]) {
    if let Val::Bits(b) = g.val {
        opt_head(out, g);
        out.push(' ');
        out.push_str(&fmt_bits(b, names));
    }
}

fn state_save(i: &Inst, out: &mut String) {
    if let Some(g) = i.get("state") {
        save_states(out, g, &STATES);
    }
}

pub static STATE: Ext = Ext {
    name: "state",
    target: false,
    family: None,
    protos: &[],
    tables: &[],
    hooks: &[],
    opts: &STATE_OPTS,
    check: state_check,
    save: state_save,
};

static OPTS: [OptDef; 13] = [
    OptDef::new("ctstate", Arity::One, true, parse_ctstate),
    OptDef::new("ctproto", Arity::One, true, parse_proto),
    OptDef::new("ctorigsrc", Arity::One, true, parse_addr),
    OptDef::new("ctorigdst", Arity::One, true, parse_addr),
    OptDef::new("ctreplsrc", Arity::One, true, parse_addr),
    OptDef::new("ctrepldst", Arity::One, true, parse_addr),
    OptDef::new("ctorigsrcport", Arity::One, true, parse_port),
    OptDef::new("ctorigdstport", Arity::One, true, parse_port),
    OptDef::new("ctreplsrcport", Arity::One, true, parse_port),
    OptDef::new("ctrepldstport", Arity::One, true, parse_port),
    OptDef::new("ctstatus", Arity::One, true, parse_status),
    OptDef::new("ctexpire", Arity::One, true, parse_expire),
    OptDef::new("ctdir", Arity::One, false, parse_dir),
];

fn check(i: &Inst, _: &RuleCtx) -> Result<(), (String, Option<&'static str>)> {
    if i.given.is_empty() {
        return Err(("`conntrack` needs at least one option".into(), None));
    }
    Ok(())
}

fn save(i: &Inst, out: &mut String) {
    for def in &OPTS {
        let Some(g) = i.get(def.name) else { continue };
        match (def.name, &g.val) {
            ("ctstate", _) => save_states(out, g, &STATES),
            ("ctstatus", Val::Bits(b)) => {
                opt_head(out, g);
                out.push(' ');
                if *b == 0 {
                    out.push_str("NONE");
                } else {
                    out.push_str(&fmt_bits(*b, &STATUS[1..]));
                }
            }
            _ => {
                opt_head(out, g);
                fmt_val(out, &g.val);
            }
        }
    }
}

pub static EXT: Ext = Ext {
    name: "conntrack",
    target: false,
    family: None,
    protos: &[],
    tables: &[],
    hooks: &[],
    opts: &OPTS,
    check,
    save,
};
