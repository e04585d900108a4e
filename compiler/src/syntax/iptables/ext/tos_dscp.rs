//! `-m tos --tos V[/M]|NAME`, `-j TOS --set-tos|--and-tos|--or-tos|--xor-tos`, `-m dscp --dscp N|--dscp-class C`
//! and `-j DSCP --set-dscp N|--set-dscp-class C` (mangle). Printed as iptables-save does: `0xVV/0xMM` for
//! TOS, `0xNN` for DSCP.
use super::*;

const TOS_NAMES: [(&str, u64); 5] = [
    ("Minimize-Delay", 0x10),
    ("Maximize-Throughput", 0x08),
    ("Maximize-Reliability", 0x04),
    ("Minimize-Cost", 0x02),
    ("Normal-Service", 0x00),
];

const DSCP_CLASSES: [(&str, u64); 22] = [
    ("CS0", 0x00),
    ("CS1", 0x08),
    ("CS2", 0x10),
    ("CS3", 0x18),
    ("CS4", 0x20),
    ("CS5", 0x28),
    ("CS6", 0x30),
    ("CS7", 0x38),
    ("BE", 0x00),
    ("AF11", 0x0a),
    ("AF12", 0x0c),
    ("AF13", 0x0e),
    ("AF21", 0x12),
    ("AF22", 0x14),
    ("AF23", 0x16),
    ("AF31", 0x1a),
    ("AF32", 0x1c),
    ("AF33", 0x1e),
    ("AF41", 0x22),
    ("AF42", 0x24),
    ("AF43", 0x26),
    ("EF", 0x2e),
];

/// `V[/M]` (mask 0xff by default) or a symbolic name (mask 0x3f).
fn tos_value(s: &str) -> Result<(u64, u64), ValErr> {
    if let Some(&(_, v)) = TOS_NAMES.iter().find(|(n, _)| n.eq_ignore_ascii_case(s)) {
        return Ok((v, 0x3f));
    }
    let bad = || {
        (
            "E0320",
            format!(
                "invalid TOS value `{s}` (VALUE[/MASK], 0-255, or a name such as Minimize-Delay)"
            ),
        )
    };
    match s.split_once('/') {
        Some((v, m)) => Ok((uint(v, 255).ok_or_else(bad)?, uint(m, 255).ok_or_else(bad)?)),
        None => Ok((uint(s, 255).ok_or_else(bad)?, 0xff)),
    }
}

fn p_tos(a: &[&str], _: Family) -> Result<Val, ValErr> {
    let (v, m) = tos_value(a[0])?;
    Ok(Val::Masked(v, m))
}
fn p_byte(a: &[&str], _: Family) -> Result<Val, ValErr> {
    parse_uint(a, 255, "TOS bits")
}

fn save_masked8(out: &mut String, g: &Given, name: &str) {
    if let Val::Masked(v, m) = g.val {
        if g.neg {
            out.push_str(" !");
        }
        out.push_str(&format!(" --{name} 0x{v:02x}/0x{m:02x}"));
    }
}

static TOS_OPTS: [OptDef; 1] = [OptDef::new("tos", Arity::One, true, p_tos)];

fn tos_check(i: &Inst, _: &RuleCtx) -> CheckResult {
    need_one(i, &["tos"])
}

fn tos_save(i: &Inst, out: &mut String) {
    if let Some(g) = i.get("tos") {
        save_masked8(out, g, "tos");
    }
}

pub static TOS_MATCH: Ext = Ext {
    name: "tos",
    target: false,
    family: None,
    protos: &[],
    tables: &[],
    hooks: &[],
    opts: &TOS_OPTS,
    check: tos_check,
    save: tos_save,
};

static TOS_TARGET_OPTS: [OptDef; 4] = [
    OptDef::new("set-tos", Arity::One, false, p_tos),
    OptDef::new("and-tos", Arity::One, false, p_byte),
    OptDef::new("or-tos", Arity::One, false, p_byte),
    OptDef::new("xor-tos", Arity::One, false, p_byte),
];
const TOS_TARGET_NAMES: [&str; 4] = ["set-tos", "and-tos", "or-tos", "xor-tos"];

fn tos_target_check(i: &Inst, _: &RuleCtx) -> CheckResult {
    need_one(i, &TOS_TARGET_NAMES)?;
    exclusive(i, &TOS_TARGET_NAMES)
}

fn tos_target_save(i: &Inst, out: &mut String) {
    let Some(g) = i.given.first() else { return };
    let (v, m) = match (g.name, &g.val) {
        ("set-tos", Val::Masked(v, m)) => (*v, *m),
        ("and-tos", Val::Num(v)) => (0, !*v & 0xff),
        ("or-tos", Val::Num(v)) => (*v, *v),
        ("xor-tos", Val::Num(v)) => (*v, 0),
        _ => return,
    };
    out.push_str(&format!(" --set-tos 0x{v:02x}/0x{m:02x}"));
}

pub static TOS_TARGET: Ext = Ext {
    name: "TOS",
    target: true,
    family: None,
    protos: &[],
    tables: &["mangle"],
    hooks: &[],
    opts: &TOS_TARGET_OPTS,
    check: tos_target_check,
    save: tos_target_save,
};

fn p_dscp(a: &[&str], _: Family) -> Result<Val, ValErr> {
    parse_uint(a, 0x3f, "DSCP value")
}
/// libxtables' `class_to_dscp` (libxt_dscp_helper.c): the first class whose name, case-insensitively, starts
/// the text (`strncasecmp` over the class name's length), so `ef`, `CS000` and `BE x` are EF, CS0 and BE.
fn p_class(a: &[&str], _: Family) -> Result<Val, ValErr> {
    let text = a[0].as_bytes();
    match DSCP_CLASSES
        .iter()
        .find(|(n, _)| text.len() >= n.len() && text[..n.len()].eq_ignore_ascii_case(n.as_bytes()))
    {
        Some(&(_, v)) => Ok(Val::Num(v)),
        None => Err((
            "E0320",
            format!("unknown DSCP class `{}` (CS0-CS7, BE, AFxy, EF)", a[0]),
        )),
    }
}

fn dscp_save_as(i: &Inst, out: &mut String, name: &str) {
    if let Some(g) = i.given.first() {
        if let Val::Num(v) = g.val {
            if g.neg {
                out.push_str(" !");
            }
            out.push_str(&format!(" --{name} 0x{v:02x}"));
        }
    }
}

static DSCP_OPTS: [OptDef; 2] = [
    OptDef::new("dscp", Arity::One, true, p_dscp),
    OptDef::new("dscp-class", Arity::One, true, p_class),
];

fn dscp_check(i: &Inst, _: &RuleCtx) -> CheckResult {
    need_one(i, &["dscp", "dscp-class"])?;
    exclusive(i, &["dscp", "dscp-class"])
}

fn dscp_save(i: &Inst, out: &mut String) {
    dscp_save_as(i, out, "dscp");
}

pub static DSCP_MATCH: Ext = Ext {
    name: "dscp",
    target: false,
    family: None,
    protos: &[],
    tables: &[],
    hooks: &[],
    opts: &DSCP_OPTS,
    check: dscp_check,
    save: dscp_save,
};

static DSCP_TARGET_OPTS: [OptDef; 2] = [
    OptDef::new("set-dscp", Arity::One, false, p_dscp),
    OptDef::new("set-dscp-class", Arity::One, false, p_class),
];

fn dscp_target_check(i: &Inst, _: &RuleCtx) -> CheckResult {
    need_one(i, &["set-dscp", "set-dscp-class"])?;
    exclusive(i, &["set-dscp", "set-dscp-class"])
}

fn dscp_target_save(i: &Inst, out: &mut String) {
    dscp_save_as(i, out, "set-dscp");
}

pub static DSCP_TARGET: Ext = Ext {
    name: "DSCP",
    target: true,
    family: None,
    protos: &[],
    tables: &["mangle"],
    hooks: &[],
    opts: &DSCP_TARGET_OPTS,
    check: dscp_target_check,
    save: dscp_target_save,
};
