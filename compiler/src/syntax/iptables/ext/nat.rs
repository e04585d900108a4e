//! NAT targets of the `nat` table: `SNAT --to-source`, `DNAT --to-destination` (`ADDR[-ADDR][:PORT[-PORT]
//! [/BASE]]`, ports only with `-p` tcp, udp, dccp, sctp (and icmp in IPv4): iptables 1.8.9 checks the
//! protocol number only, so `! -p tcp` with ports is accepted and `-p udplite` is not), `MASQUERADE --to-ports`, `REDIRECT --to-ports`,
//! and `--random`, `--random-fully`, `--persistent`.
use super::*;
use crate::syntax::iptables::values::fmt_ip;
use std::net::IpAddr;

/// The protocols iptables 1.8.9's NAT targets allow ports with ("Need TCP, UDP, SCTP or DCCP with port
/// specification"; the IPv4 targets also take ICMP, whose "port" is the query id); the `!` of `-p` is not
/// looked at.
const PORT_PROTOS: [u8; 4] = [6, 17, 33, 132];

fn ports(s: &str, allow_base: bool) -> Result<String, ValErr> {
    let bad = || {
        (
            "E0320",
            format!("invalid port range `{s}` (PORT[-PORT], ports 0-65535)"),
        )
    };
    let (range, base) = match s.split_once('/') {
        Some((r, b)) if allow_base => (r, Some(b)),
        Some(_) => return Err(bad()),
        None => (s, None),
    };
    // A service name stands alone (`ftp-data`); a range is numeric.
    let (lo, hi) = match (port_or_service(range), range.split_once('-')) {
        (Some(p), _) => (p, p),
        (None, Some((a, b))) => (
            uint(a, 65535).ok_or_else(bad)?,
            uint(b, 65535).ok_or_else(bad)?,
        ),
        (None, None) => return Err(bad()),
    };
    if lo > hi {
        return Err(("E0305", format!("invalid port range `{s}` (min > max)")));
    }
    let mut out = if lo == hi {
        lo.to_string()
    } else {
        format!("{lo}-{hi}")
    };
    if let Some(b) = base {
        let b = port_or_service(b).filter(|&b| b > 0).ok_or_else(bad)?;
        out.push_str(&format!("/{b}"));
    }
    Ok(out)
}

fn to_addr(a: &[&str], f: Family) -> Result<Val, ValErr> {
    let s = a[0];
    let bad = |m: String| ("E0320", m);
    // IPv6: `[addr]:port` or a bare address.
    let (addrs, port) = if f == Family::V6 {
        // libxt_NAT's `parse_to` looks for the `[` with strchr: whatever comes before it is ignored.
        if let Some(rest) = s.find('[').map(|at| &s[at + 1..]) {
            let (ad, p) = rest
                .split_once(']')
                .ok_or_else(|| bad(format!("invalid address `{s}`")))?;
            (ad, p.strip_prefix(':'))
        } else {
            (s, None)
        }
    } else {
        match s.split_once(':') {
            Some((ad, p)) => (ad, Some(p)),
            None => (s, None),
        }
    };
    // libxt_NAT reads each address with inet_pton: four decimal octets without leading zeros (no
    // `1.1.01.10`, `0x1.1.1.1` or blanks, which -s/-d accept), or an IPv6 address.
    let pton = |a: &str| -> Option<IpAddr> {
        match f {
            Family::V4 => a.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4),
            Family::V6 => a.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6),
        }
    };
    if addrs.is_empty() && port.is_none() {
        return Err(bad(format!("invalid address `{s}` (Bad IP address)")));
    }
    let mut out = String::new();
    if !addrs.is_empty() {
        let (lo, hi) = match addrs.split_once('-') {
            Some((x, y)) => (x, Some(y)),
            None => (addrs, None),
        };
        let lo = pton(lo).ok_or_else(|| bad(format!("invalid address `{lo}`")))?;
        out.push_str(&fmt_ip(lo));
        if let Some(hi) = hi {
            let hi = pton(hi).ok_or_else(|| bad(format!("invalid address `{hi}`")))?;
            out.push('-');
            out.push_str(&fmt_ip(hi));
        }
        if f == Family::V6 && port.is_some() {
            out = format!("[{out}]");
        }
    }
    if let Some(p) = port {
        out.push(':');
        out.push_str(&ports(p, true)?);
    }
    Ok(Val::Word(out))
}

fn to_ports(a: &[&str], _: Family) -> Result<Val, ValErr> {
    Ok(Val::Word(ports(a[0], false)?))
}
fn flag(_: &[&str], _: Family) -> Result<Val, ValErr> {
    Ok(Val::Flag)
}

fn needs_ports_proto(
    i: &Inst,
    ctx: &RuleCtx,
    opt: &'static str,
) -> Result<(), (String, Option<&'static str>)> {
    let has_port = match i.get(opt).map(|g| &g.val) {
        Some(Val::Word(w)) if opt.starts_with("to-ports") => !w.is_empty(),
        // `addr:port` (IPv4) or `[addr]:port` (IPv6); a bare IPv6 address has several colons.
        Some(Val::Word(w)) => w.starts_with('[') || w.matches(':').count() == 1,
        _ => false,
    };
    // libxt_NAT allows ports with protocol 1 (`icmp`) in both families: ip6tables' `-p icmp` is 1 too.
    if has_port && !PORT_PROTOS.contains(&ctx.proto.0) && ctx.proto.0 != 1 {
        return Err((
            "ports need `-p tcp`, `udp`, `dccp`, `sctp` or `icmp`".into(),
            Some(opt),
        ));
    }
    Ok(())
}

static SNAT_OPTS: [OptDef; 4] = [
    OptDef::new("to-source", Arity::One, false, to_addr),
    OptDef::new("random", Arity::Zero, false, flag),
    OptDef::new("random-fully", Arity::Zero, false, flag),
    OptDef::new("persistent", Arity::Zero, false, flag),
];
static DNAT_OPTS: [OptDef; 4] = [
    OptDef::new("to-destination", Arity::One, false, to_addr),
    OptDef::new("random", Arity::Zero, false, flag),
    OptDef::new("random-fully", Arity::Zero, false, flag),
    OptDef::new("persistent", Arity::Zero, false, flag),
];
static MASQ_OPTS: [OptDef; 3] = [
    OptDef::new("to-ports", Arity::One, false, to_ports),
    OptDef::new("random", Arity::Zero, false, flag),
    OptDef::new("random-fully", Arity::Zero, false, flag),
];
static REDIRECT_OPTS: [OptDef; 2] = [
    OptDef::new("to-ports", Arity::One, false, to_ports),
    OptDef::new("random", Arity::Zero, false, flag),
];

fn snat_check(i: &Inst, ctx: &RuleCtx) -> Result<(), (String, Option<&'static str>)> {
    need_one(i, &["to-source"])?;
    needs_ports_proto(i, ctx, "to-source")
}
fn dnat_check(i: &Inst, ctx: &RuleCtx) -> Result<(), (String, Option<&'static str>)> {
    need_one(i, &["to-destination"])?;
    needs_ports_proto(i, ctx, "to-destination")
}
fn ports_check(i: &Inst, ctx: &RuleCtx) -> Result<(), (String, Option<&'static str>)> {
    needs_ports_proto(i, ctx, "to-ports")
}

pub static SNAT: Ext = Ext {
    name: "SNAT",
    target: true,
    family: None,
    protos: &[],
    tables: &["nat"],
    hooks: &["POSTROUTING", "INPUT"],
    opts: &SNAT_OPTS,
    check: snat_check,
    save: save_in_order,
};
pub static DNAT: Ext = Ext {
    name: "DNAT",
    target: true,
    family: None,
    protos: &[],
    tables: &["nat"],
    hooks: &["PREROUTING", "OUTPUT"],
    opts: &DNAT_OPTS,
    check: dnat_check,
    save: save_in_order,
};
pub static MASQUERADE: Ext = Ext {
    name: "MASQUERADE",
    target: true,
    family: None,
    protos: &[],
    tables: &["nat"],
    hooks: &["POSTROUTING"],
    opts: &MASQ_OPTS,
    check: ports_check,
    save: save_in_order,
};
pub static REDIRECT: Ext = Ext {
    name: "REDIRECT",
    target: true,
    family: None,
    protos: &[],
    tables: &["nat"],
    hooks: &["PREROUTING", "OUTPUT"],
    opts: &REDIRECT_OPTS,
    check: ports_check,
    save: save_in_order,
};
