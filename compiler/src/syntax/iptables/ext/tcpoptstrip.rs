//! `-j TCPOPTSTRIP [--strip-options LIST]` (mangle, needs `-p tcp`; options 0 and 1, end-of-list and
//! no-op, cannot be stripped).
use super::*;

const NAMES: [(&str, u64); 6] = [
    ("mss", 2),
    ("wscale", 3),
    ("sack-permitted", 4),
    ("sack", 5),
    ("timestamp", 8),
    ("md5", 19),
];

fn options(a: &[&str], _: Family) -> Result<Val, ValErr> {
    let mut v = Vec::new();
    for part in a[0].split(',') {
        let n = NAMES
            .iter()
            .find(|(n, _)| *n == part)
            .map(|&(_, n)| n)
            .or_else(|| uint(part, 255))
            .filter(|&n| n >= 2)
            .ok_or_else(|| {
                (
                    "E0320",
                    format!("invalid TCP option `{part}` (2-255 or a name such as mss)"),
                )
            })?;
        // libxt_TCPOPTSTRIP keeps a bitmap: an option named twice is refused.
        if v.contains(&(n, n)) {
            return Err((
                "E0320",
                format!("TCP option `{part}` ({n}) already specified"),
            ));
        }
        v.push((n, n));
    }
    Ok(Val::Ranges(v))
}

static OPTS: [OptDef; 1] = [OptDef::new("strip-options", Arity::One, false, options)];

pub static EXT: Ext = Ext {
    name: "TCPOPTSTRIP",
    target: true,
    family: None,
    protos: &[6],
    tables: &["mangle"],
    hooks: &[],
    opts: &OPTS,
    check: no_check,
    save: save_in_order,
};
