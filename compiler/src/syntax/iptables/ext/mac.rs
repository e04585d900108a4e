//! `-m mac --mac-source XX:XX:XX:XX:XX:XX` (PREROUTING, INPUT and FORWARD only).
use super::*;

fn parse(a: &[&str], _: Family) -> Result<Val, ValErr> {
    let parts: Vec<&str> = a[0].split(':').collect();
    let ok = parts.len() == 6
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
    if !ok {
        return Err((
            "E0320",
            format!(
                "invalid MAC address `{}` (six hex bytes XX:XX:XX:XX:XX:XX)",
                a[0]
            ),
        ));
    }
    let bytes: Vec<String> = parts
        .iter()
        // iptables prints MAC bytes in lower case (xtables_print_mac: "%02x").
        .map(|p| format!("{:02x}", u8::from_str_radix(p, 16).unwrap_or(0)))
        .collect();
    Ok(Val::Word(bytes.join(":")))
}

static OPTS: [OptDef; 1] = [OptDef::new("mac-source", Arity::One, true, parse)];

fn check(i: &Inst, _: &RuleCtx) -> Result<(), (String, Option<&'static str>)> {
    need_one(i, &["mac-source"])
}

pub static EXT: Ext = Ext {
    name: "mac",
    target: false,
    family: None,
    protos: &[],
    tables: &[],
    hooks: &["PREROUTING", "INPUT", "FORWARD"],
    opts: &OPTS,
    check,
    save: save_in_order,
};
