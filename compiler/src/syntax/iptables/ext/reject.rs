//! `-j REJECT --reject-with TYPE` (INPUT, FORWARD, OUTPUT; `tcp-reset` only with `-p tcp`). The type is
//! always printed, `icmp-port-unreachable` / `icmp6-port-unreachable` by default.
use super::*;

const V4: [(&str, &str); 16] = [
    ("icmp-net-unreachable", "icmp-net-unreachable"),
    ("net-unreach", "icmp-net-unreachable"),
    ("icmp-host-unreachable", "icmp-host-unreachable"),
    ("host-unreach", "icmp-host-unreachable"),
    ("icmp-proto-unreachable", "icmp-proto-unreachable"),
    ("proto-unreach", "icmp-proto-unreachable"),
    ("icmp-port-unreachable", "icmp-port-unreachable"),
    ("port-unreach", "icmp-port-unreachable"),
    ("icmp-net-prohibited", "icmp-net-prohibited"),
    ("net-prohib", "icmp-net-prohibited"),
    ("icmp-host-prohibited", "icmp-host-prohibited"),
    ("host-prohib", "icmp-host-prohibited"),
    ("icmp-admin-prohibited", "icmp-admin-prohibited"),
    ("admin-prohib", "icmp-admin-prohibited"),
    ("tcp-reset", "tcp-reset"),
    ("tcp-rst", "tcp-reset"),
];

const V6: [(&str, &str); 14] = [
    ("icmp6-no-route", "icmp6-no-route"),
    ("no-route", "icmp6-no-route"),
    ("icmp6-adm-prohibited", "icmp6-adm-prohibited"),
    ("adm-prohibited", "icmp6-adm-prohibited"),
    ("icmp6-addr-unreachable", "icmp6-addr-unreachable"),
    ("addr-unreach", "icmp6-addr-unreachable"),
    ("icmp6-port-unreachable", "icmp6-port-unreachable"),
    ("port-unreach", "icmp6-port-unreachable"),
    ("icmp6-policy-fail", "icmp6-policy-fail"),
    ("policy-fail", "icmp6-policy-fail"),
    ("icmp6-reject-route", "icmp6-reject-route"),
    ("reject-route", "icmp6-reject-route"),
    ("tcp-reset", "tcp-reset"),
    ("tcp-rst", "tcp-reset"),
];

/// libipt_REJECT/libip6t_REJECT: the first type (in their table's order, name then alias) that the
/// text is a case-insensitive prefix of — `""` is the first type, `p` is proto-unreachable in IPv4 and
/// port-unreachable in IPv6, `ICMP-ADMIN` is icmp-admin-prohibited.
fn with(a: &[&str], f: Family) -> Result<Val, ValErr> {
    let table: &[(&str, &str)] = if f == Family::V4 { &V4 } else { &V6 };
    let arg = a[0].as_bytes();
    match table
        .iter()
        .find(|(n, _)| n.len() >= arg.len() && n.as_bytes()[..arg.len()].eq_ignore_ascii_case(arg))
    {
        Some((_, c)) => Ok(Val::Word(c.to_string())),
        None => Err(("E0320", format!("unknown reject type `{}`", a[0]))),
    }
}

static OPTS: [OptDef; 1] = [OptDef::new("reject-with", Arity::One, false, with)];

fn check(i: &Inst, ctx: &RuleCtx) -> Result<(), (String, Option<&'static str>)> {
    if let Some(Given {
        val: Val::Word(w), ..
    }) = i.get("reject-with")
    {
        if w == "tcp-reset" && ctx.proto != (6, false) {
            return Err((
                "`--reject-with tcp-reset` needs `-p tcp`".into(),
                Some("reject-with"),
            ));
        }
    }
    Ok(())
}

fn save(i: &Inst, out: &mut String) {
    match i.get("reject-with") {
        Some(g) => {
            opt_head(out, g);
            fmt_val(out, &g.val);
        }
        None if i.ext.family == Some(Family::V6) => {
            out.push_str(" --reject-with icmp6-port-unreachable")
        }
        None => out.push_str(" --reject-with icmp-port-unreachable"),
    }
}

pub static EXT4: Ext = Ext {
    name: "REJECT",
    target: true,
    family: Some(Family::V4),
    protos: &[],
    tables: &[],
    hooks: &["INPUT", "FORWARD", "OUTPUT"],
    opts: &OPTS,
    check,
    save,
};

pub static EXT6: Ext = Ext {
    name: "REJECT",
    target: true,
    family: Some(Family::V6),
    protos: &[],
    tables: &[],
    hooks: &["INPUT", "FORWARD", "OUTPUT"],
    opts: &OPTS,
    check,
    save,
};
