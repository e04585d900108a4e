//! One rule's columns and the `print` text of its matches and target, as iptables-legacy 1.8.9's
//! `print_firewall` writes them under `-v -x -n` (source: iptables `xshared.c` and the `print` function
//! of each `extensions/libxt_*.c`, `libipt_*.c`, `libip6t_*.c`; measured against iptables-legacy 1.8.9 by
//! `tests/tests/listing.rs`).
use super::ListedRule;
use crate::syntax::iptables::ext::addrtype::TYPES as ADDR_TYPES;
use crate::syntax::iptables::ext::conntrack::{STATES as CT_STATES, STATUS as CT_STATUS};
use crate::syntax::iptables::ext::simple_targets::CT_EVENTS;
use crate::syntax::iptables::ext::{Given, Inst, Val};
use crate::syntax::iptables::rule::{save_rule, Module, Target, TypedRule};
use crate::syntax::iptables::{Family, IpNet};
use std::fmt::Write as _;

/// The columns and text of `r` in `chain` (counters, position, rule id and line left for the caller).
pub(super) fn rule(family: Family, chain: &str, r: &TypedRule) -> ListedRule {
    let target = match r.target.as_ref().map(|t| &t.0) {
        None => String::new(),
        Some(Target::Verdict(v) | Target::Jump(v) | Target::Goto(v)) => v.clone(),
        // NOTRACK is the CT target with its alias flag: the kernel's entry names CT.
        Some(Target::Ext(i)) if i.ext.name == "NOTRACK" => "CT".to_string(),
        Some(Target::Ext(i)) => i.ext.name.to_string(),
        Some(Target::Generic { name, .. }) => name.clone(),
    };
    let prot = match &r.proto {
        None => "0".to_string(),
        Some(p) => format!("{}{}", if p.negated { "!" } else { "" }, p.value),
    };
    let opt = match (family, &r.fragment) {
        (Family::V6, _) | (Family::V4, None) => "--",
        (Family::V4, Some(f)) if f.negated => "!f",
        (Family::V4, Some(_)) => "-f",
    }
    .to_string();
    let iface = |i: &Option<crate::syntax::iptables::rule::Neg<String>>| match i {
        None => "*".to_string(),
        Some(i) => format!("{}{}", if i.negated { "!" } else { "" }, i.value),
    };
    let addr = |a: &Option<crate::syntax::iptables::rule::Neg<IpNet>>| match a {
        None => match family {
            Family::V4 => "0.0.0.0/0".to_string(),
            Family::V6 => "::/0".to_string(),
        },
        Some(a) => format!(
            "{}{}",
            if a.negated { "!" } else { "" },
            numeric_net(&a.value)
        ),
    };
    let mut extra = String::new();
    let mut exact = true;
    if matches!(r.target.as_ref().map(|t| &t.0), Some(Target::Goto(_))) {
        extra.push_str("[goto] ");
    }
    for m in &r.matches {
        match m {
            Module::Typed(i) if print_match(family, r, i, &mut extra) => {}
            _ => {
                exact = false;
                let _ = write!(extra, " [no listing for -m {}]", m.name());
            }
        }
    }
    match r.target.as_ref().map(|t| &t.0) {
        Some(Target::Ext(i)) if !print_target(family, i, &mut extra) => {
            exact = false;
            let _ = write!(extra, " [no listing for -j {}]", i.ext.name);
        }
        Some(Target::Generic { name, .. }) => {
            exact = false;
            let _ = write!(extra, " [no listing for -j {name}]");
        }
        _ => {}
    }
    ListedRule {
        position: 0,
        packets: 0,
        bytes: 0,
        target,
        prot,
        opt,
        in_iface: iface(&r.in_iface),
        out_iface: iface(&r.out_iface),
        source: addr(&r.src),
        destination: addr(&r.dst),
        extra,
        iptables: save_rule(chain, r),
        rule: None,
        line: None,
        exact,
    }
}

/// `xtables_ipaddr_to_numeric` + `xtables_ipmask_to_numeric` (and the IPv6 twins): the address, then
/// nothing for a full mask, `/LEN` for a prefix, `/MASK` for any other mask.
pub(super) fn numeric_net(n: &IpNet) -> String {
    match (n, n.prefix_len()) {
        (IpNet::V4 { addr, .. }, Some(32)) => addr.to_string(),
        (IpNet::V6 { addr, .. }, Some(128)) => addr.to_string(),
        (IpNet::V4 { addr, .. }, Some(l)) => format!("{addr}/{l}"),
        (IpNet::V6 { addr, .. }, Some(l)) => format!("{addr}/{l}"),
        (IpNet::V4 { addr, mask }, None) => format!("{addr}/{}", std::net::Ipv4Addr::from(*mask)),
        (IpNet::V6 { addr, mask }, None) => format!("{addr}/{}", std::net::Ipv6Addr::from(*mask)),
    }
}

fn inv(g: &Given) -> &'static str {
    if g.neg {
        "!"
    } else {
        ""
    }
}

fn range(v: &Val) -> Option<(u64, u64)> {
    match *v {
        Val::Range(a, b) => Some((a, b)),
        Val::Num(n) => Some((n, n)),
        _ => None,
    }
}

fn num(v: &Val) -> Option<u64> {
    match *v {
        Val::Num(n) => Some(n),
        _ => None,
    }
}

fn word(v: &Val) -> Option<&str> {
    match v {
        Val::Word(w) | Val::Text(w) => Some(w),
        _ => None,
    }
}

/// libxt_tcp/udp `print_ports`: ` spt:22`, ` dpts:!1:2`; a full range that is not negated is left out.
fn ports(out: &mut String, name: &str, g: Option<&Given>) {
    let Some(g) = g else { return };
    let Some((lo, hi)) = range(&g.val) else {
        return;
    };
    if lo == 0 && hi == 65535 && !g.neg {
        return;
    }
    if lo == hi {
        let _ = write!(out, " {name}:{}{lo}", inv(g));
    } else {
        let _ = write!(out, " {name}s:{}{lo}:{hi}", inv(g));
    }
}

/// The names of the set bits, in table order, joined with `sep`.
fn bit_names(bits: u32, names: &[(&str, u32)], sep: &str) -> String {
    let mut v = Vec::new();
    for &(n, b) in names {
        if b != 0 && bits & b == b {
            v.push(n);
        }
    }
    v.join(sep)
}

/// libxt_tcp `print_tcpf` under `-n` is not used: `print_flags` prints hex when numeric.
fn tcp_flags(out: &mut String, g: &Given) {
    if let Val::Pair(m, c) = &g.val {
        if let (Val::Bits(m), Val::Bits(c)) = (&**m, &**c) {
            if *m != 0 || g.neg {
                let _ = write!(out, " flags:{}0x{:02X}/0x{:02X}", inv(g), m, c);
            }
        }
    }
}

/// Append the match's `print` text; false when this file has no printer for the module.
fn print_match(family: Family, r: &TypedRule, i: &Inst, out: &mut String) -> bool {
    match i.ext.name {
        "tcp" => {
            out.push_str(" tcp");
            ports(out, "spt", i.get("sport"));
            ports(out, "dpt", i.get("dport"));
            if let Some(g) = i.get("tcp-option") {
                let _ = write!(out, " option={}{}", inv(g), num(&g.val).unwrap_or(0));
            }
            if let Some(g) = i.get("tcp-flags").or(i.get("syn")) {
                tcp_flags(out, g);
            }
        }
        "udp" => {
            out.push_str(" udp");
            ports(out, "spt", i.get("sport"));
            ports(out, "dpt", i.get("dport"));
        }
        "multiport" => {
            let Some(g) = i.given.first() else {
                return false;
            };
            let dir = match g.name {
                "sports" => "sports",
                "dports" => "dports",
                _ => "ports",
            };
            let _ = write!(out, " multiport {dir} ");
            if g.neg {
                out.push_str(" !");
            }
            if let Val::Ranges(rs) = &g.val {
                let v: Vec<String> = rs
                    .iter()
                    .map(|&(a, b)| {
                        if a == b {
                            a.to_string()
                        } else {
                            format!("{a}:{b}")
                        }
                    })
                    .collect();
                out.push_str(&v.join(","));
            }
        }
        "comment" => {
            let c = i.get("comment").and_then(|g| word(&g.val)).unwrap_or("");
            let _ = write!(out, " /* {c} */");
        }
        "state" => {
            let Some(g) = i.get("state") else {
                return false;
            };
            if g.neg {
                out.push_str(" !");
            }
            let Val::Bits(b) = g.val else { return false };
            let _ = write!(out, " state {}", bit_names(b, &CT_STATES, ","));
        }
        "conntrack" => return conntrack(family, i, out),
        "icmp" | "icmp6" => {
            let Some(g) = i.given.first() else {
                return false;
            };
            let Val::Pair(t, c) = &g.val else {
                return false;
            };
            let (Some(t), Some((a, b))) = (num(t), range(c)) else {
                return false;
            };
            out.push_str(if i.ext.name == "icmp" {
                " icmp"
            } else {
                " ipv6-icmp"
            });
            if g.neg {
                out.push_str(" !");
            }
            let _ = write!(out, "type {t}");
            if a == b {
                let _ = write!(out, " code {a}");
            } else if a != 0 || b != 255 {
                let _ = write!(out, " codes {a}-{b}");
            }
        }
        "mark" | "connmark" => {
            let Some(g) = i.get("mark") else {
                return false;
            };
            let Val::Masked(v, m) = g.val else {
                return false;
            };
            if i.ext.name == "mark" {
                out.push_str(" mark match");
                if g.neg {
                    out.push_str(" !");
                }
            } else {
                out.push_str(" connmark match ");
                if g.neg {
                    out.push('!');
                }
            }
            mark_mask(out, v, m);
        }
        "owner" => {
            for (name, label) in [
                ("socket-exists", "owner socket exists"),
                ("uid-owner", "owner UID match"),
                ("gid-owner", "owner GID match"),
                ("suppl-groups", "incl. suppl. groups"),
            ] {
                let Some(g) = i.get(name) else { continue };
                if g.neg {
                    out.push_str(" !");
                }
                let _ = write!(out, " {label}");
                if let Some((a, b)) = range(&g.val) {
                    if a == b {
                        let _ = write!(out, " {a}");
                    } else {
                        let _ = write!(out, " {a}-{b}");
                    }
                }
            }
        }
        "limit" => {
            let rate = i
                .get("limit")
                .and_then(|g| num(&g.val))
                .unwrap_or(10000 * 3600 / 3);
            let burst = i.get("limit-burst").and_then(|g| num(&g.val)).unwrap_or(5);
            let _ = write!(
                out,
                " limit: avg {} burst {burst}",
                crate::syntax::iptables::ext::fmt_limit_rate(rate)
            );
        }
        "set" => {
            let Some(g) = i.get("match-set") else {
                return false;
            };
            let Val::Pair(n, f) = &g.val else {
                return false;
            };
            let (Some(n), Some(f)) = (word(n), word(f)) else {
                return false;
            };
            let _ = write!(out, "{} match-set {n} {f}", if g.neg { " !" } else { "" });
            if i.has("return-nomatch") {
                out.push_str(" return-nomatch");
            }
            for (name, text) in [
                ("update-counters", "update-counters"),
                ("update-subcounters", "update-subcounters"),
            ] {
                if i.get(name).is_some_and(|g| g.neg) {
                    let _ = write!(out, " ! {text}");
                }
            }
            for c in ["packets", "bytes"] {
                for op in ["eq", "lt", "gt"] {
                    if let Some(g) = i.get(&format!("{c}-{op}")) {
                        let _ = write!(
                            out,
                            " {}{c}-{op} {}",
                            if g.neg { "! " } else { "" },
                            num(&g.val).unwrap_or(0)
                        );
                    }
                }
            }
        }
        "statistic" => {
            let Some(mode) = i.get("mode").and_then(|g| word(&g.val)) else {
                return false;
            };
            out.push_str(" statistic");
            if mode == "random" {
                let Some(g) = i.get("probability") else {
                    return false;
                };
                let p = num(&g.val).unwrap_or(0);
                let _ = write!(
                    out,
                    " mode random{} probability {:.11}",
                    if g.neg { " !" } else { "" },
                    p as f64 / 2147483648.0
                );
            } else {
                let Some(g) = i.get("every") else {
                    return false;
                };
                let _ = write!(
                    out,
                    " mode nth{} every {}",
                    if g.neg { " !" } else { "" },
                    num(&g.val).unwrap_or(0)
                );
                let p = i.get("packet").and_then(|g| num(&g.val)).unwrap_or(0);
                if p != 0 {
                    let _ = write!(out, " packet {p}");
                }
            }
        }
        "physdev" => {
            out.push_str(" PHYSDEV match");
            for name in [
                "physdev-is-in",
                "physdev-in",
                "physdev-is-out",
                "physdev-out",
                "physdev-is-bridged",
            ] {
                let Some(g) = i.get(name) else { continue };
                let _ = write!(out, "{} --{name}", if g.neg { " !" } else { "" });
                if let Some(w) = word(&g.val) {
                    let _ = write!(out, " {w}");
                }
            }
        }
        "addrtype" => {
            out.push_str(" ADDRTYPE match");
            for (name, label) in [("src-type", "src-type"), ("dst-type", "dst-type")] {
                if let Some(g) = i.get(name) {
                    if let Val::Bits(b) = g.val {
                        let _ =
                            write!(out, " {label} {}{}", inv(g), bit_names(b, &ADDR_TYPES, ","));
                    }
                }
            }
            if i.has("limit-iface-in") {
                out.push_str(" limit-in");
            }
            if i.has("limit-iface-out") {
                out.push_str(" limit-out");
            }
        }
        "mac" => {
            let Some(g) = i.get("mac-source") else {
                return false;
            };
            let _ = write!(
                out,
                " MAC {}{}",
                if g.neg { "! " } else { "" },
                word(&g.val).unwrap_or("")
            );
        }
        "length" => {
            let Some(g) = i.get("length") else {
                return false;
            };
            let Some((a, b)) = range(&g.val) else {
                return false;
            };
            let _ = write!(out, " length {}", inv(g));
            if a == b {
                let _ = write!(out, "{a}");
            } else {
                let _ = write!(out, "{a}:{b}");
            }
        }
        "pkttype" => {
            let Some(g) = i.get("pkt-type") else {
                return false;
            };
            let name = match word(&g.val).unwrap_or("") {
                "unicast" | "host" => "unicast",
                "broadcast" => "broadcast",
                "multicast" => "multicast",
                "otherhost" => "otherhost",
                "outgoing" => "4",
                "loopback" => "5",
                _ => return false,
            };
            let _ = write!(out, " PKTTYPE {}= {name}", inv(g));
        }
        "iprange" => {
            for (name, label) in [
                ("src-range", "source IP range"),
                ("dst-range", "destination IP range"),
            ] {
                if let Some(g) = i.get(name) {
                    let _ = write!(
                        out,
                        " {label}{} {}",
                        if g.neg { " !" } else { "" },
                        word(&g.val).unwrap_or("")
                    );
                }
            }
        }
        "ttl" | "hl" => {
            let p = i.ext.name;
            let Some(g) = i.given.first() else {
                return false;
            };
            let op = match (g.name.rsplit('-').next(), g.neg) {
                (Some("eq"), false) => "==",
                (Some("eq"), true) => "!=",
                (Some("lt"), _) => "<",
                (Some("gt"), _) => ">",
                _ => return false,
            };
            let v = num(&g.val).unwrap_or(0);
            let up = p.to_ascii_uppercase();
            let _ = write!(out, " {up} match {up} {op} {v}");
        }
        "tos" => {
            let Some(g) = i.get("tos") else {
                return false;
            };
            let Val::Masked(v, m) = g.val else {
                return false;
            };
            let _ = write!(out, " tos match{}0x{v:02x}/0x{m:02x}", inv(g));
        }
        "dscp" => {
            let Some(g) = i.given.first() else {
                return false;
            };
            let _ = write!(
                out,
                " DSCP match {}0x{:02x}",
                inv(g),
                num(&g.val).unwrap_or(0)
            );
        }
        "ecn" => {
            out.push_str(" ECN match");
            if let Some(g) = i.get("ecn-tcp-ece") {
                let _ = write!(out, " {}ECE", inv(g));
            }
            if let Some(g) = i.get("ecn-tcp-cwr") {
                let _ = write!(out, " {}CWR", inv(g));
            }
            if let Some(g) = i.get("ecn-ip-ect") {
                let _ = write!(out, " {}ECT={}", inv(g), num(&g.val).unwrap_or(0));
            }
        }
        "frag" => {
            out.push_str(" frag ");
            if let Some(g) = i.get("fragid") {
                if let Some((a, b)) = range(&g.val) {
                    if a != 0 || b != u64::from(u32::MAX) || g.neg {
                        if a == b {
                            let _ = write!(out, "id:{}{a}", inv(g));
                        } else {
                            let _ = write!(out, "ids:{}{a}:{b}", inv(g));
                        }
                    }
                }
            }
            if let Some(g) = i.get("fraglen") {
                let _ = write!(out, " length:{}{}", inv(g), num(&g.val).unwrap_or(0));
            }
            for (name, text) in [
                ("fragres", " reserved"),
                ("fragfirst", " first"),
                ("fragmore", " more"),
                ("fraglast", " last"),
            ] {
                if i.has(name) {
                    out.push_str(text);
                }
            }
        }
        "ah" | "esp" | "ipcomp" => {
            let (label, opt) = match i.ext.name {
                "ah" => (" ah ", "ahspi"),
                "esp" => (" esp", "espspi"),
                _ => (" comp ", "ipcompspi"),
            };
            out.push_str(label);
            if let Some(g) = i.get(opt) {
                if let Some((a, b)) = range(&g.val) {
                    if a != 0 || b != u64::from(u32::MAX) || g.neg {
                        let sep = if i.ext.name == "esp" { " " } else { "" };
                        if a == b {
                            let _ = write!(out, "{sep}spi:{}{a}", inv(g));
                        } else {
                            let _ = write!(out, "{sep}spis:{}{a}:{b}", inv(g));
                        }
                    }
                }
            }
            if let Some(g) = i.get("ahlen") {
                let v = num(&g.val).unwrap_or(0);
                if v != 0 || g.neg {
                    let _ = write!(out, "length:{}{v}", inv(g));
                }
            }
            if i.has("ahres") || i.has("compres") {
                out.push_str(" reserved");
            }
        }
        "tcpmss" => {
            let Some(g) = i.get("mss") else {
                return false;
            };
            let Some((a, b)) = range(&g.val) else {
                return false;
            };
            let _ = write!(out, " tcpmss match {}", inv(g));
            if a == b {
                let _ = write!(out, "{a}");
            } else {
                let _ = write!(out, "{a}:{b}");
            }
        }
        "cpu" => {
            let Some(g) = i.get("cpu") else {
                return false;
            };
            let _ = write!(
                out,
                " cpu {}{}",
                if g.neg { "! " } else { "" },
                num(&g.val).unwrap_or(0)
            );
        }
        "quota" => {
            let q = i.get("quota").and_then(|g| num(&g.val)).unwrap_or(0);
            let _ = write!(out, " quota: {q} bytes");
        }
        "sctp" | "dccp" => {
            if i.has("chunk-types") {
                return false;
            }
            let _ = write!(out, " {}", i.ext.name);
            // Unlike tcp/udp, a given full range is printed (these modules print what was set).
            for (opt, name) in [("sport", "spt"), ("dport", "dpt")] {
                let Some(g) = i.get(opt) else { continue };
                let Some((lo, hi)) = range(&g.val) else {
                    return false;
                };
                if lo != 0 || hi != 65535 || g.neg {
                    if lo == hi {
                        let _ = write!(out, " {name}:{}{lo}", inv(g));
                    } else {
                        let _ = write!(out, " {name}s:{}{lo}:{hi}", inv(g));
                    }
                }
            }
            if let Some(g) = i.get("dccp-types") {
                let Val::Bits(mut b) = g.val else {
                    return false;
                };
                // libxt_dccp's parser makes INVALID every type bit (`typemask = ~0`, 16 bits kept).
                if b & 1024 != 0 {
                    b = 0xffff;
                }
                if g.neg {
                    out.push_str(" !");
                }
                let v: Vec<String> = (0..16)
                    .filter(|k| b & (1 << k) != 0)
                    .map(|k| k.to_string())
                    .collect();
                let _ = write!(out, " {}", v.join(","));
            }
            if let Some(g) = i.get("dccp-option") {
                let _ = write!(out, " option={}{}", inv(g), num(&g.val).unwrap_or(0));
            }
        }
        "connlimit" => {
            let (n, le) = match (i.get("connlimit-upto"), i.get("connlimit-above")) {
                (Some(g), _) => (num(&g.val).unwrap_or(0), !g.neg),
                (_, Some(g)) => (num(&g.val).unwrap_or(0), g.neg),
                _ => return false,
            };
            let full = if family == Family::V4 { 32 } else { 128 };
            let mask = i
                .get("connlimit-mask")
                .and_then(|g| num(&g.val))
                .unwrap_or(full);
            let dir = if i.has("connlimit-daddr") {
                "dst"
            } else {
                "src"
            };
            let _ = write!(
                out,
                " #conn {dir}/{mask} {} {n}",
                if le { "<=" } else { ">" }
            );
        }
        "connbytes" => {
            let Some(g) = i.get("connbytes") else {
                return false;
            };
            let Some((lo, hi)) = range(&g.val) else {
                return false;
            };
            if g.neg {
                out.push_str(" !");
            }
            let _ = write!(out, " connbytes {lo}");
            if hi != 0 && hi != u64::MAX {
                let _ = write!(out, ":{hi}");
            }
            let w = |n: &str| i.get(n).and_then(|g| word(&g.val)).unwrap_or("unknown");
            let _ = write!(
                out,
                " connbytes mode {} connbytes direction {}",
                w("connbytes-mode"),
                w("connbytes-dir")
            );
        }
        "helper" => {
            let Some(g) = i.get("helper") else {
                return false;
            };
            let _ = write!(
                out,
                " helper match {}\"{}\"",
                if g.neg { "! " } else { "" },
                word(&g.val).unwrap_or("")
            );
        }
        "connlabel" => {
            let Some(g) = i.get("label") else {
                return false;
            };
            let Some(n) = num(&g.val) else {
                return false;
            };
            if i.has("set") {
                return false;
            }
            let _ = write!(out, " connlabel{} {n}", if g.neg { " !" } else { "" });
        }
        "rpfilter" => {
            out.push_str(" rpfilter");
            for f in ["loose", "validmark", "accept-local", "invert"] {
                if i.has(f) {
                    let _ = write!(out, " {f}");
                }
            }
        }
        "socket" => {
            out.push_str(" socket");
            for f in ["transparent", "nowildcard", "restore-skmark"] {
                if i.has(f) {
                    let _ = write!(out, " --{f}");
                }
            }
        }
        _ => {
            let _ = r;
            return false;
        }
    }
    true
}

/// `xtables_print_mark_mask`: ` 0xV` or ` 0xV/0xM`.
fn mark_mask(out: &mut String, v: u64, m: u64) {
    if m == 0xffff_ffff {
        let _ = write!(out, " 0x{v:x}");
    } else {
        let _ = write!(out, " 0x{v:x}/0x{m:x}");
    }
}

/// libxt_conntrack `conntrack_dump` (revision 3) under `-n`.
fn conntrack(_family: Family, i: &Inst, out: &mut String) -> bool {
    let neg = |g: &Given, out: &mut String| {
        if g.neg {
            out.push_str(" !");
        }
    };
    if let Some(g) = i.get("ctstate") {
        neg(g, out);
        let Val::Bits(b) = g.val else { return false };
        let _ = write!(out, " ctstate {}", bit_names(b, &CT_STATES, ","));
    }
    if let Some(g) = i.get("ctproto") {
        neg(g, out);
        let _ = write!(out, " ctproto {}", num(&g.val).unwrap_or(0));
    }
    for name in ["ctorigsrc", "ctorigdst", "ctreplsrc", "ctrepldst"] {
        if let Some(g) = i.get(name) {
            neg(g, out);
            let _ = write!(out, " {name} {}", word(&g.val).unwrap_or(""));
        }
    }
    for name in [
        "ctorigsrcport",
        "ctorigdstport",
        "ctreplsrcport",
        "ctrepldstport",
    ] {
        if let Some(g) = i.get(name) {
            neg(g, out);
            let Some((a, b)) = range(&g.val) else {
                return false;
            };
            if a == b {
                let _ = write!(out, " {name} {a}");
            } else {
                let _ = write!(out, " {name} {a}:{b}");
            }
        }
    }
    if let Some(g) = i.get("ctstatus") {
        neg(g, out);
        let Val::Bits(b) = g.val else { return false };
        if b == 0 {
            out.push_str(" ctstatus NONE");
        } else {
            let _ = write!(out, " ctstatus {}", bit_names(b, &CT_STATUS, ","));
        }
    }
    if let Some(g) = i.get("ctexpire") {
        neg(g, out);
        let Some((a, b)) = range(&g.val) else {
            return false;
        };
        if a == b {
            let _ = write!(out, " ctexpire {a}");
        } else {
            let _ = write!(out, " ctexpire {a}:{b}");
        }
    }
    if let Some(g) = i.get("ctdir") {
        let _ = write!(out, " ctdir {}", word(&g.val).unwrap_or(""));
    }
    true
}

/// Append the target's `print` text; false when this file has no printer for the target.
fn print_target(family: Family, i: &Inst, out: &mut String) -> bool {
    match i.ext.name {
        "LOG" => {
            let level = i.get("log-level").and_then(|g| num(&g.val)).unwrap_or(4);
            let mut flags = 0;
            for (name, bit) in [
                ("log-tcp-sequence", 1),
                ("log-tcp-options", 2),
                ("log-ip-options", 4),
                ("log-uid", 8),
                ("log-macdecode", 32),
            ] {
                if i.has(name) {
                    flags |= bit;
                }
            }
            let _ = write!(out, " LOG flags {flags} level {level}");
            if let Some(p) = i.get("log-prefix").and_then(|g| word(&g.val)) {
                if !p.is_empty() {
                    let _ = write!(out, " prefix \"{p}\"");
                }
            }
        }
        "REJECT" => {
            let with = i
                .get("reject-with")
                .and_then(|g| word(&g.val))
                .unwrap_or(match family {
                    Family::V4 => "icmp-port-unreachable",
                    Family::V6 => "icmp6-port-unreachable",
                });
            let _ = write!(out, " reject-with {with}");
        }
        "MARK" => {
            let Some((v, m)) = crate::syntax::iptables::ext::mark_xmark(i) else {
                return false;
            };
            if v == 0 {
                let _ = write!(out, " MARK and 0x{:x}", !m & 0xffff_ffff);
            } else if v == m {
                let _ = write!(out, " MARK or 0x{v:x}");
            } else if m == 0 {
                let _ = write!(out, " MARK xor 0x{v:x}");
            } else if m == 0xffff_ffff {
                let _ = write!(out, " MARK set 0x{v:x}");
            } else {
                let _ = write!(out, " MARK xset 0x{v:x}/0x{m:x}");
            }
        }
        "TCPMSS" => match i.get("set-mss").and_then(|g| num(&g.val)) {
            Some(m) => {
                let _ = write!(out, " TCPMSS set {m}");
            }
            None => out.push_str(" TCPMSS clamp to PMTU"),
        },
        "NFLOG" => {
            if let Some(p) = i.get("nflog-prefix").and_then(|g| word(&g.val)) {
                if !p.is_empty() {
                    out.push_str(" nflog-prefix");
                    crate::syntax::iptables::ext::save_string(out, p);
                }
            }
            let n = |name: &str| i.get(name).and_then(|g| num(&g.val));
            if let Some(g) = n("nflog-group").filter(|&g| g != 0) {
                let _ = write!(out, " nflog-group {g}");
            }
            if let Some(s) = n("nflog-size") {
                let _ = write!(out, " nflog-size {s}");
            } else if let Some(s) = n("nflog-range").filter(|&s| s != 0) {
                let _ = write!(out, " nflog-range {s}");
            }
            if let Some(t) = n("nflog-threshold").filter(|&t| t != 0) {
                let _ = write!(out, " nflog-threshold {t}");
            }
        }
        "SNAT" | "DNAT" => {
            let opt = if i.ext.name == "SNAT" {
                "to-source"
            } else {
                "to-destination"
            };
            let Some(w) = i.get(opt).and_then(|g| word(&g.val)) else {
                return false;
            };
            let _ = write!(out, " to:{w}");
            nat_flags(i, out);
        }
        "MASQUERADE" => {
            if let Some(p) = i.get("to-ports").and_then(|g| word(&g.val)) {
                let _ = write!(out, " masq ports: {p}");
            }
            nat_flags(i, out);
        }
        "REDIRECT" => {
            if let Some(p) = i.get("to-ports").and_then(|g| word(&g.val)) {
                let _ = write!(out, " redir ports {p}");
            }
            nat_flags(i, out);
        }
        "NOTRACK" => out.push_str(" NOTRACK"),
        "TRACE" => {}
        "CHECKSUM" => out.push_str(" CHECKSUM fill"),
        "CT" => {
            out.push_str(" CT");
            if i.has("notrack") {
                out.push_str(" notrack");
            }
            for name in ["helper", "timeout"] {
                if let Some(w) = i.get(name).and_then(|g| word(&g.val)) {
                    let _ = write!(out, " {name} {w}");
                }
            }
            for (name, table) in [("ctevents", &CT_EVENTS[..]), ("expevents", &CT_EVENTS[..1])] {
                if let Some(w) = i.get(name).and_then(|g| word(&g.val)) {
                    let given: Vec<&str> = w.split(',').collect();
                    let v: Vec<&str> = table
                        .iter()
                        .copied()
                        .filter(|e| given.contains(e))
                        .collect();
                    let _ = write!(out, " {name} {}", v.join(","));
                }
            }
            for name in ["zone", "zone-orig", "zone-reply"] {
                if let Some(z) = i.get(name).and_then(|g| num(&g.val)) {
                    let _ = write!(out, " {name} {z}");
                }
            }
        }
        "TTL" | "HL" => {
            let Some(g) = i.given.first() else {
                return false;
            };
            let what = match g.name.rsplit('-').next() {
                Some("set") => "set to",
                Some("inc") => "increment by",
                Some("dec") => "decrement by",
                _ => return false,
            };
            let _ = write!(out, " {} {what} {}", i.ext.name, num(&g.val).unwrap_or(0));
        }
        "DSCP" => {
            let Some(g) = i.given.first() else {
                return false;
            };
            let _ = write!(out, " DSCP set 0x{:02x}", num(&g.val).unwrap_or(0));
        }
        "TOS" => {
            let Some(g) = i.given.first() else {
                return false;
            };
            let (v, m) = match (g.name, &g.val) {
                ("set-tos", Val::Masked(v, m)) => (*v, *m),
                ("and-tos", Val::Num(v)) => (0, !*v & 0xff),
                ("or-tos", Val::Num(v)) => (*v, *v),
                ("xor-tos", Val::Num(v)) => (*v, 0),
                _ => return false,
            };
            let _ = write!(out, " TOS set 0x{v:02x}/0x{m:02x}");
        }
        "NFQUEUE" => {
            match i.get("queue-balance").map(|g| &g.val) {
                Some(Val::Range(a, b)) => {
                    let _ = write!(out, " NFQUEUE balance {a}:{b}");
                }
                _ => {
                    let n = i.get("queue-num").and_then(|g| num(&g.val)).unwrap_or(0);
                    let _ = write!(out, " NFQUEUE num {n}");
                }
            }
            if i.has("queue-bypass") {
                out.push_str(" bypass");
            }
            if i.has("queue-cpu-fanout") {
                out.push_str(" cpu-fanout");
            }
        }
        "AUDIT" => {
            let Some(t) = i.get("type").and_then(|g| word(&g.val)) else {
                return false;
            };
            let _ = write!(out, " AUDIT {t}");
        }
        "CLASSIFY" => {
            let Some(w) = i.get("set-class").and_then(|g| word(&g.val)) else {
                return false;
            };
            let Some((ma, mi)) = w.split_once(':') else {
                return false;
            };
            let hex = |s: &str| u32::from_str_radix(s, 16).unwrap_or(0);
            let _ = write!(out, " CLASSIFY set {:x}:{:x}", hex(ma), hex(mi));
        }
        "TEE" => {
            let Some(gw) = i.get("gateway").and_then(|g| word(&g.val)) else {
                return false;
            };
            let _ = write!(out, " TEE gw:{gw}");
            if let Some(o) = i.get("oif").and_then(|g| word(&g.val)) {
                let _ = write!(out, " oif={o}");
            }
        }
        "NETMAP" => {
            let Some(to) = i.get("to").and_then(|g| word(&g.val)) else {
                return false;
            };
            let _ = write!(out, " to:{to}");
        }
        "IDLETIMER" => {
            let Some(t) = i.get("timeout") else {
                return false;
            };
            let t = match &t.val {
                Val::Num(n) => n.to_string(),
                Val::Word(w) => w.clone(),
                _ => return false,
            };
            let label = i.get("label").and_then(|g| word(&g.val)).unwrap_or("");
            let _ = write!(out, " timeout:{t} label:{label}");
            if i.has("alarm") {
                out.push_str(" alarm");
            }
        }
        "TCPOPTSTRIP" => {
            let Some(Val::Ranges(rs)) = i.get("strip-options").map(|g| &g.val) else {
                return false;
            };
            let mut opts: Vec<u64> = rs.iter().flat_map(|&(a, b)| a..=b).collect();
            opts.sort_unstable();
            opts.dedup();
            if !opts.is_empty() {
                let v: Vec<String> = opts.iter().map(u64::to_string).collect();
                let _ = write!(out, " TCPOPTSTRIP options {}", v.join(","));
            }
        }
        _ => return false,
    }
    true
}

/// The NAT targets' ` random`, ` random-fully`, ` persistent`.
fn nat_flags(i: &Inst, out: &mut String) {
    for f in ["random", "random-fully", "persistent"] {
        if i.has(f) {
            let _ = write!(out, " {f}");
        }
    }
}
