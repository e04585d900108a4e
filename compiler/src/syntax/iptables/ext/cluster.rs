//! `-m cluster --cluster-total-nodes N --cluster-local-node K | --cluster-local-nodemask M
//! --cluster-hash-seed S` (all required; printed as iptables-save does: the node as a mask first).
use super::*;

fn nodes(a: &[&str], _: Family) -> Result<Val, ValErr> {
    match uint(a[0], 32) {
        Some(n) if n >= 1 => Ok(Val::Num(n)),
        _ => Err(("E0320", format!("invalid node count `{}` (1-32)", a[0]))),
    }
}
fn u32v(a: &[&str], _: Family) -> Result<Val, ValErr> {
    parse_uint(a, u32::MAX as u64, "value")
}

static OPTS: [OptDef; 4] = [
    OptDef::new("cluster-total-nodes", Arity::One, false, nodes),
    OptDef::new("cluster-local-node", Arity::One, true, nodes),
    OptDef::new("cluster-local-nodemask", Arity::One, true, u32v),
    OptDef::new("cluster-hash-seed", Arity::One, false, u32v),
];

fn num(i: &Inst, n: &str) -> Option<u64> {
    match i.get(n)?.val {
        Val::Num(v) => Some(v),
        _ => None,
    }
}

fn check(i: &Inst, _: &RuleCtx) -> CheckResult {
    need_one(i, &["cluster-total-nodes"])?;
    need_one(i, &["cluster-local-node", "cluster-local-nodemask"])?;
    exclusive(i, &["cluster-local-node", "cluster-local-nodemask"])?;
    need_one(i, &["cluster-hash-seed"])?;
    let total = num(i, "cluster-total-nodes").unwrap_or(0);
    if let Some(k) = num(i, "cluster-local-node") {
        if k > total {
            return Err((
                format!("node {k} is outside a cluster of {total}"),
                Some("cluster-local-node"),
            ));
        }
    }
    Ok(())
}

fn save(i: &Inst, out: &mut String) {
    let (mask, neg) = match (i.get("cluster-local-node"), i.get("cluster-local-nodemask")) {
        (Some(g), _) => (
            1u64 << (num(i, "cluster-local-node").unwrap_or(1).saturating_sub(1)),
            g.neg,
        ),
        (_, Some(g)) => (num(i, "cluster-local-nodemask").unwrap_or(0), g.neg),
        _ => (0, false),
    };
    if neg {
        out.push_str(" !");
    }
    out.push_str(&format!(" --cluster-local-nodemask 0x{mask:08x}"));
    out.push_str(&format!(
        " --cluster-total-nodes {}",
        num(i, "cluster-total-nodes").unwrap_or(0)
    ));
    out.push_str(&format!(
        " --cluster-hash-seed 0x{:08x}",
        num(i, "cluster-hash-seed").unwrap_or(0)
    ));
}

pub static EXT: Ext = Ext {
    name: "cluster",
    target: false,
    family: None,
    protos: &[],
    tables: &[],
    hooks: &[],
    opts: &OPTS,
    check,
    save,
};
