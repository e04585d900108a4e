//! `-m addrtype --src-type LIST --dst-type LIST --limit-iface-in|--limit-iface-out` (revision 1).
use super::*;

/// libxt_addrtype's `rtn_names`, bit = 1 << RTN_*.
pub(crate) const TYPES: [(&str, u32); 12] = [
    ("UNSPEC", 1),
    ("UNICAST", 2),
    ("LOCAL", 4),
    ("BROADCAST", 8),
    ("ANYCAST", 16),
    ("MULTICAST", 32),
    ("BLACKHOLE", 64),
    ("UNREACHABLE", 128),
    ("PROHIBIT", 256),
    ("THROW", 512),
    ("NAT", 1024),
    ("XRESOLVE", 2048),
];

fn types(a: &[&str], _: Family) -> Result<Val, ValErr> {
    Ok(Val::Bits(parse_bits(a[0], &TYPES, "address type")?))
}
fn flag(_: &[&str], _: Family) -> Result<Val, ValErr> {
    Ok(Val::Flag)
}

static OPTS: [OptDef; 4] = [
    OptDef::new("src-type", Arity::One, true, types),
    OptDef::new("dst-type", Arity::One, true, types),
    OptDef::new("limit-iface-in", Arity::Zero, false, flag),
    OptDef::new("limit-iface-out", Arity::Zero, false, flag),
];

fn check(i: &Inst, ctx: &RuleCtx) -> Result<(), (String, Option<&'static str>)> {
    need_one(i, &["src-type", "dst-type"])?;
    exclusive(i, &["limit-iface-in", "limit-iface-out"])?;
    if let Some(h) = ctx.hook {
        if i.has("limit-iface-in") && !matches!(h, "PREROUTING" | "INPUT" | "FORWARD") {
            return Err((
                format!("`--limit-iface-in` is not valid in chain {h}"),
                Some("limit-iface-in"),
            ));
        }
        if i.has("limit-iface-out") && !matches!(h, "POSTROUTING" | "OUTPUT" | "FORWARD") {
            return Err((
                format!("`--limit-iface-out` is not valid in chain {h}"),
                Some("limit-iface-out"),
            ));
        }
    }
    Ok(())
}

fn save(i: &Inst, out: &mut String) {
    for def in &OPTS {
        if let Some(g) = i.get(def.name) {
            opt_head(out, g);
            if let Val::Bits(b) = g.val {
                out.push(' ');
                out.push_str(&fmt_bits(b, &TYPES));
            }
        }
    }
}

pub static EXT: Ext = Ext {
    name: "addrtype",
    target: false,
    family: None,
    protos: &[],
    tables: &[],
    hooks: &[],
    opts: &OPTS,
    check,
    save,
};
