//! `-m bpf --bytecode "N,c t f k,…" | --object-pinned PATH` (the bytecode's instruction count and shape
//! are checked; printed double-quoted).
use super::*;

fn bytecode(a: &[&str], _: Family) -> Result<Val, ValErr> {
    let bad = || {
        (
            "E0320",
            format!("invalid BPF bytecode `{}` (N,code jt jf k,…)", a[0]),
        )
    };
    let mut parts = a[0].split(',');
    let n: usize = parts
        .next()
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(bad)?;
    let insns: Vec<&str> = parts.collect();
    if n == 0 || n > 64 || insns.len() != n {
        return Err(bad());
    }
    for ins in insns {
        let f: Vec<&str> = ins.split_whitespace().collect();
        if f.len() != 4 || f.iter().any(|x| x.parse::<u64>().is_err()) {
            return Err(bad());
        }
    }
    Ok(Val::Word(a[0].to_string()))
}
fn pinned(a: &[&str], _: Family) -> Result<Val, ValErr> {
    Ok(Val::Text(a[0].to_string()))
}

static OPTS: [OptDef; 2] = [
    OptDef::new("bytecode", Arity::One, false, bytecode),
    OptDef::new("object-pinned", Arity::One, false, pinned),
];

fn check(i: &Inst, _: &RuleCtx) -> CheckResult {
    need_one(i, &["bytecode", "object-pinned"])?;
    exclusive(i, &["bytecode", "object-pinned"])
}

fn save(i: &Inst, out: &mut String) {
    if let Some(Given {
        val: Val::Word(w), ..
    }) = i.get("bytecode")
    {
        out.push_str(&format!(" --bytecode \"{w}\""));
    }
    if let Some(g) = i.get("object-pinned") {
        opt_head(out, g);
        fmt_val(out, &g.val);
    }
}

pub static EXT: Ext = Ext {
    name: "bpf",
    target: false,
    family: None,
    protos: &[],
    tables: &[],
    hooks: &[],
    opts: &OPTS,
    check,
    save,
};
