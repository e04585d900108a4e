//! The values of iptables options, parsed exactly as libxtables parses them: numbers (`strtoul` with base 0:
//! decimal, `0x` hex, leading-`0` octal — `022` is 18), IPv4/IPv6 addresses with their masks, protocols and
//! ports (numbers or service names). The layer below both the rule builder ([`super::rule`]) and the
//! extension registry ([`super::ext`]); it imports neither.
//!
//! Deliberate differences from iptables: host names are not resolved (iptables asks DNS; the result would
//! depend on the machine and the moment), so an address that is not numeric is a located error; service
//! names are resolved in the services database tailwall embeds ([`SERVICES_DB`], Debian netbase 6.4's
//! `/etc/services`), not the machine's, so a ruleset means the same on every machine.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

pub use crate::ir::Family;

/// libxtables' `xtables_strtoul` with base 0: optional leading blanks and `+`, then `0x`/`0X` and hex
/// digits, `0` and octal digits, or decimal digits; the whole text must be consumed; at most `max`. `-` is
/// refused (strtoul would wrap it). `None` for anything else (`0080`, `0x`, ``, `1e3`, overflow).
pub fn strtoul(s: &str, max: u64) -> Option<u64> {
    match strtoul_prefix(s)? {
        (v, "") if v <= max => Some(v),
        _ => None,
    }
}

/// [`strtoul`] with an end pointer (`xtables_strtoul(s, &end, …)`): the number at the start of `s` and
/// the text after it (`5kb` is `(5, "kb")`; `0x` reads as `(0, "x")`, as strtoumax does). `None` when no
/// digit starts it, for a `-`, or on overflow.
pub fn strtoul_prefix(s: &str) -> Option<(u64, &str)> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let t = t.strip_prefix('+').unwrap_or(t);
    let (digits, radix, zero) =
        if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
            (h, 16, Some(&t[1..]))
        } else if t.len() > 1 && t.starts_with('0') {
            (&t[1..], 8, Some(&t[1..]))
        } else {
            (t, 10, None)
        };
    let len = digits
        .bytes()
        .take_while(|b| (*b as char).is_digit(radix))
        .count();
    match (len, zero) {
        // Only the leading `0` is a number (`0x`, `09`).
        (0, Some(rest)) => Some((0, rest)),
        (0, None) => None,
        _ => Some((
            u64::from_str_radix(&digits[..len], radix).ok()?,
            &digits[len..],
        )),
    }
}

/// glibc's `atoll` (`strtoll(s, NULL, 10)`): leading blanks, an optional `+`/`-`, then the longest run
/// of decimal digits, whatever follows ignored; saturates at `i64::MIN`/`i64::MAX` (ERANGE); 0 when no
/// digit follows. libxt_limit and libxt_hashlimit read a rate's count this way, so iptables takes
/// `10é00/day` as 10/day and `4294968296/hour` (through `atoi`'s cast to `int`) as 1000/hour.
pub fn atoll(s: &str) -> i64 {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (neg, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let mut v: i64 = 0;
    for b in t.bytes().take_while(u8::is_ascii_digit) {
        let d = i64::from(b - b'0');
        v = match v.checked_mul(10).and_then(|v| {
            if neg {
                v.checked_sub(d)
            } else {
                v.checked_add(d)
            }
        }) {
            Some(v) => v,
            None if neg => return i64::MIN,
            None => return i64::MAX,
        };
    }
    v
}

/// glibc's `atoi`: `(int) strtol(s, NULL, 10)` on a 64-bit `long`, i.e. [`atoll`] cut to its low 32 bits.
pub fn atoi(s: &str) -> i32 {
    atoll(s) as i32
}

/// An address with its mask (host bits cleared, as the kernel stores it): the value of `-s`/`-d` and of
/// every address option of the extensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IpNet {
    /// An IPv4 network.
    V4 {
        /// The address, host bits cleared (`addr & mask == addr`).
        addr: Ipv4Addr,
        /// The netmask, host order (may be non-contiguous, e.g. `/255.0.255.0`).
        mask: u32,
    },
    /// An IPv6 network.
    V6 {
        /// The address, host bits cleared.
        addr: Ipv6Addr,
        /// The netmask, host order (may be non-contiguous).
        mask: u128,
    },
}

/// The IPv4 netmask of a prefix length (`len` 0-32): the one place the mask is computed.
pub fn mask_v4(len: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(len.min(32)))
        .unwrap_or(0)
}

/// The IPv6 netmask of a prefix length (`len` 0-128).
pub fn mask_v6(len: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(len.min(128)))
        .unwrap_or(0)
}

impl IpNet {
    /// Prefix length when the mask is contiguous.
    pub fn prefix_len(&self) -> Option<u8> {
        match *self {
            IpNet::V4 { mask, .. } => {
                let l = mask.leading_ones() as u8;
                (mask_v4(l) == mask).then_some(l)
            }
            IpNet::V6 { mask, .. } => {
                let l = mask.leading_ones() as u8;
                (mask_v6(l) == mask).then_some(l)
            }
        }
    }
    /// Matches every address (mask 0).
    pub fn is_any(&self) -> bool {
        match *self {
            IpNet::V4 { mask, .. } => mask == 0,
            IpNet::V6 { mask, .. } => mask == 0,
        }
    }
}

/// Why an address did not parse; `Display` is the diagnostic's message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AddrError {
    /// A name where iptables would call the resolver; tailwall never resolves (the text as written).
    #[error("`{0}` is not a numeric address (host names are not resolved)")]
    Hostname(String),
    /// Numeric but malformed for the family.
    #[error("invalid {family} address `{text}`")]
    BadAddress {
        /// `IPv4` or `IPv6`.
        family: &'static str,
        /// The address as written.
        text: String,
    },
    /// The part after `/` is neither a prefix length within the family's width nor a dotted/colon mask
    /// (the text as written).
    #[error("invalid prefix length or mask `{0}`")]
    BadMask(String),
}

/// libxtables' `__numeric_to_ipaddr`: up to four dot-separated `strtoul` base-0 bytes; an address with
/// fewer parts is completed with zeros (`10.1` is 10.1.0.0), a mask needs all four. The text is cut to 19
/// bytes first, as libxtables copies it into a 20-byte buffer.
pub fn numeric_ipv4(s: &str, is_mask: bool) -> Option<Ipv4Addr> {
    let s = s.get(..s.len().min(19)).unwrap_or(s);
    let mut octets = [0u8; 4];
    let mut parts = s.splitn(4, '.');
    for (i, o) in octets.iter_mut().enumerate() {
        let Some(p) = parts.next() else {
            return (!is_mask && i > 0).then(|| Ipv4Addr::from(octets));
        };
        *o = strtoul(p, 255)? as u8;
    }
    Some(Ipv4Addr::from(octets))
}

/// A numeric address of the family (`inet_pton` for IPv6, [`numeric_ipv4`] for IPv4).
pub fn parse_ip(s: &str, f: Family) -> Option<IpAddr> {
    match f {
        Family::V4 => numeric_ipv4(s, false).map(IpAddr::V4),
        Family::V6 => s.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
    }
}

/// An address as iptables-save prints it.
pub fn fmt_ip(a: IpAddr) -> String {
    a.to_string()
}

/// `ADDR[/LEN|/MASK]` as `xtables_ipparse_any`/`xtables_ip6parse_any` read it: the mask after the last
/// `/` is a dotted (or IPv6) mask or a base-0 prefix length; mask 0 ignores the address (`any/0`); host
/// bits are cleared.
///
/// # Errors
/// [`AddrError::Hostname`] for a name (never resolved), [`AddrError::BadAddress`] for a malformed
/// address of the family, [`AddrError::BadMask`] for a bad length or mask.
pub fn parse_addr_any(s: &str, f: Family) -> Result<IpNet, AddrError> {
    let (host, mask) = match s.rsplit_once('/') {
        Some((h, m)) => (h, Some(m)),
        None => (s, None),
    };
    let bad_mask = || AddrError::BadMask(mask.unwrap_or_default().to_string());
    let looks_name = |h: &str| {
        !h.is_empty()
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
            && h.bytes().any(|b| b.is_ascii_alphabetic())
    };
    match f {
        Family::V4 => {
            let m = match mask {
                None => u32::MAX,
                Some(m) => match numeric_ipv4(m, true) {
                    Some(a) => u32::from(a),
                    None => mask_v4(strtoul(m, 32).ok_or_else(bad_mask)? as u8),
                },
            };
            if m == 0 {
                return Ok(IpNet::V4 {
                    addr: Ipv4Addr::UNSPECIFIED,
                    mask: 0,
                });
            }
            let addr = numeric_ipv4(host, false).ok_or_else(|| {
                if looks_name(host) && !host.contains(':') {
                    AddrError::Hostname(host.to_string())
                } else {
                    AddrError::BadAddress {
                        family: "IPv4",
                        text: host.to_string(),
                    }
                }
            })?;
            Ok(IpNet::V4 {
                addr: Ipv4Addr::from(u32::from(addr) & m),
                mask: m,
            })
        }
        Family::V6 => {
            let m = match mask {
                None => u128::MAX,
                Some(m) => match m.parse::<Ipv6Addr>() {
                    Ok(a) => u128::from(a),
                    Err(_) => mask_v6(strtoul(m, 128).ok_or_else(bad_mask)? as u8),
                },
            };
            if m == 0 {
                return Ok(IpNet::V6 {
                    addr: Ipv6Addr::UNSPECIFIED,
                    mask: 0,
                });
            }
            let addr: Ipv6Addr = host.parse().map_err(|_| {
                if looks_name(host) {
                    AddrError::Hostname(host.to_string())
                } else {
                    AddrError::BadAddress {
                        family: "IPv6",
                        text: host.to_string(),
                    }
                }
            })?;
            Ok(IpNet::V6 {
                addr: Ipv6Addr::from(u128::from(addr) & m),
                mask: m,
            })
        }
    }
}

/// `addr/len`, or `addr/mask` for a non-contiguous mask (iptables-save's form).
pub fn fmt_addr(n: &IpNet) -> String {
    match (n, n.prefix_len()) {
        (IpNet::V4 { addr, .. }, Some(l)) => format!("{addr}/{l}"),
        (IpNet::V4 { addr, mask }, None) => format!("{addr}/{}", Ipv4Addr::from(*mask)),
        (IpNet::V6 { addr, .. }, Some(l)) => format!("{addr}/{l}"),
        (IpNet::V6 { addr, mask }, None) => format!("{addr}/{}", Ipv6Addr::from(*mask)),
    }
}

/// `-p` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    /// `all` or `0`: no constraint.
    All,
    /// An IP protocol number 1-255 (IANA "Assigned Internet Protocol Numbers").
    Number(u8),
}

/// TCP's IP protocol number (RFC 9293).
pub const PROTO_TCP: u8 = 6;
/// UDP's IP protocol number (RFC 768).
pub const PROTO_UDP: u8 = 17;

/// Protocol names `-p` accepts, lowercase: iptables resolves a name with `getprotobyname` (netbase's
/// `/etc/protocols`, copied here with its aliases so the result does not depend on the machine), then its
/// own table (`icmpv6`, `ipv6-mh`, `mh`). Names that map to 0 (`ip`, `hopopt`) mean "all". Note that
/// `ipip` is 94 (IP-within-IP), not 4 (`ipencap`).
pub const PROTO_NAMES: [(&str, u8); 64] = [
    ("ip", 0),
    ("hopopt", 0),
    ("icmp", 1),
    ("igmp", 2),
    ("ggp", 3),
    ("ipencap", 4),
    ("ip-encap", 4),
    ("st", 5),
    ("tcp", 6),
    ("egp", 8),
    ("igp", 9),
    ("pup", 12),
    ("udp", 17),
    ("hmp", 20),
    ("xns-idp", 22),
    ("rdp", 27),
    ("iso-tp4", 29),
    ("dccp", 33),
    ("xtp", 36),
    ("ddp", 37),
    ("idpr-cmtp", 38),
    ("ipv6", 41),
    ("ipv6-route", 43),
    ("ipv6-frag", 44),
    ("idrp", 45),
    ("rsvp", 46),
    ("gre", 47),
    ("esp", 50),
    ("ipsec-esp", 50),
    ("ah", 51),
    ("ipsec-ah", 51),
    ("skip", 57),
    ("ipv6-icmp", 58),
    ("ipv6-nonxt", 59),
    ("ipv6-opts", 60),
    ("rspf", 73),
    ("cphb", 73),
    ("vmtp", 81),
    ("eigrp", 88),
    ("ospf", 89),
    ("ospfigp", 89),
    ("ax.25", 93),
    ("ipip", 94),
    ("etherip", 97),
    ("encap", 98),
    ("pim", 103),
    ("ipcomp", 108),
    ("vrrp", 112),
    ("l2tp", 115),
    ("isis", 124),
    ("sctp", 132),
    ("fc", 133),
    ("mobility-header", 135),
    ("udplite", 136),
    ("mpls-in-ip", 137),
    ("manet", 138),
    ("hip", 139),
    ("shim6", 140),
    ("wesp", 141),
    ("rohc", 142),
    ("ethernet", 143),
    ("icmpv6", 58),
    ("ipv6-mh", 135),
    ("mh", 135),
];

/// Parse a `-p` value as `xtables_parse_protocol` does after iptables lowercased it: a base-0 number
/// 0-255, `all`, or a protocol name.
///
/// # Errors
/// "unknown protocol `s`" (the diagnostic's message) for a name not in [`PROTO_NAMES`] nor a number.
pub fn parse_proto(s: &str) -> Result<Proto, String> {
    let lower = s.to_ascii_lowercase();
    if let Some(n) = strtoul(&lower, 255) {
        return Ok(if n == 0 {
            Proto::All
        } else {
            Proto::Number(n as u8)
        });
    }
    if lower == "all" {
        return Ok(Proto::All);
    }
    match PROTO_NAMES.iter().find(|(n, _)| *n == lower) {
        Some((_, 0)) => Ok(Proto::All),
        Some(&(_, n)) => Ok(Proto::Number(n)),
        None => Err(format!("unknown protocol `{s}`")),
    }
}

/// The name netbase's `/etc/protocols` gives a protocol number, if it has one.
pub fn proto_name(n: u8) -> Option<&'static str> {
    PROTO_NAMES
        .iter()
        .find(|(_, v)| *v == n)
        .map(|&(name, _)| name)
}

/// The protocol name iptables-save prints (as iptables 1.8.11 prints them).
pub fn proto_save_name(n: u8) -> String {
    match n {
        135 => "mobility-header".into(),
        58 => "ipv6-icmp".into(),
        _ => proto_name(n)
            .filter(|&s| s != "ip" && s != "hopopt")
            .map(str::to_string)
            .unwrap_or_else(|| n.to_string()),
    }
}

/// Where service names are looked up: Debian netbase 6.4's `/etc/services`, embedded at build time
/// (`compiler/data/services`), so a ruleset's meaning does not depend on the machine.
pub const SERVICES_DB: &str = "netbase 6.4 /etc/services (embedded)";

/// (name or alias, port, protocol) of every line of the embedded services database, in file order.
fn services() -> &'static [(String, u16, String)] {
    static DB: OnceLock<Vec<(String, u16, String)>> = OnceLock::new();
    DB.get_or_init(|| {
        let mut out = Vec::new();
        for line in include_str!("../../../data/services").lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut words = line.split_whitespace();
            let (Some(name), Some(pp)) = (words.next(), words.next()) else {
                continue;
            };
            let Some((port, proto)) = pp.split_once('/') else {
                continue;
            };
            let Ok(port) = port.parse::<u16>() else {
                continue;
            };
            for n in std::iter::once(name).chain(words) {
                out.push((n.to_string(), port, proto.to_string()));
            }
        }
        out
    })
}

/// `getservbyname(name, proto)` over [`SERVICES_DB`]: the first entry with that name or alias (exact,
/// case-sensitive) and, when given, that protocol.
pub fn service_port(name: &str, proto: Option<&str>) -> Option<u16> {
    services()
        .iter()
        .find(|(n, _, p)| n == name && proto.is_none_or(|want| want == p))
        .map(|&(_, port, _)| port)
}

/// The services-database protocol name of an IP protocol number (the ones that have ports).
pub fn port_proto_name(proto: u8) -> Option<&'static str> {
    match proto {
        6 => Some("tcp"),
        17 => Some("udp"),
        33 => Some("dccp"),
        132 => Some("sctp"),
        136 => Some("udplite"),
        _ => None,
    }
}

/// `xtables_parse_port`: a base-0 number 0-65535, else a service name of `proto` (any protocol when
/// `None`). The error is the diagnostic's message.
///
/// # Errors
/// The message for a number above 65535 or an unknown service name.
pub fn parse_port(s: &str, proto: Option<&str>) -> Result<u16, String> {
    if let Some(n) = strtoul(s, 65535) {
        return Ok(n as u16);
    }
    service_port(s, proto).ok_or_else(|| {
        let numeric = s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'x' || b == b'X');
        if numeric && !s.is_empty() {
            format!("invalid port `{s}` (a number 0-65535: decimal, 0x hex or 0-prefixed octal)")
        } else {
            format!(
                "invalid port/service `{s}`: not a number 0-65535 and not a{} service in {SERVICES_DB}",
                proto.map(|p| format!(" {p}")).unwrap_or_default()
            )
        }
    })
}

/// libxtables' `xtables_getportbyname`, behind iptables 1.8.9's xtopt port types (`XTTYPE_PORT`,
/// `XTTYPE_PORTRC`: `-m udp`, `-m dccp`, `-m conntrack --ct{orig,repl}{src,dst}port`). It calls glibc's
/// `getaddrinfo(NULL, s, NULL)`, so unlike [`parse_port`] a number is **decimal** (`022` is 22, `0x16`
/// is no number), leading blanks and a sign are allowed (`-0` is 0; a number whose `int` is negative,
/// `-5` or `2147483648`, is looked up as a name and fails), the value is taken modulo 65536 because it is
/// stored in a 16-bit `sin_port` (`70000` is 4464, `65536` is 0), an empty text is port 0, and a name is a service of any protocol
/// (`-p dccp --dport https` is 443). Checked against `iptables-legacy-restore` 1.8.9.
///
/// # Errors
/// iptables' "Port \"s\" does not resolve to anything" for a text that is neither a decimal number nor
/// a known service.
pub fn parse_port_getaddrinfo(s: &str) -> Result<u16, String> {
    // glibc's getaddrinfo reads a numeric service with strtoul (blanks, a sign, decimal digits, all of
    // the text), keeps it in an `int` and looks a negative one up by name; the port is its low 16 bits.
    // So `-0` is port 0 and `-5` is a (missing) service name.
    // An empty service is no service at all for getaddrinfo (`service[0] == '\0'`): port 0.
    if s.is_empty() {
        return Ok(0);
    }
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        let v = digits.parse::<u64>().unwrap_or(u64::MAX);
        let num = if neg { v.wrapping_neg() } else { v } as i32;
        if num >= 0 {
            return Ok(num as u16);
        }
    }
    service_port(s, None).ok_or_else(|| {
        format!("Port \"{s}\" does not resolve to anything (a decimal number or a service in {SERVICES_DB})")
    })
}

/// The tcp/udp/sctp/dccp modules' `--sport`/`--dport`: `N`, `A:B`, `:B` (from 0), `A:` (to 65535); the
/// error is `(code, message)`: `E0305` for min > max, else `E0304`.
///
/// # Errors
/// `E0304` for an end that is not a port ([`parse_port`]), `E0305` for min > max.
pub fn parse_port_range(
    s: &str,
    proto: Option<&str>,
) -> Result<(u16, u16), (&'static str, String)> {
    port_range_with(s, |x| parse_port(x, proto))
}

/// [`parse_port_range`] for the xtopt port options, each end read by [`parse_port_getaddrinfo`].
///
/// # Errors
/// As [`parse_port_range`].
pub fn parse_port_range_getaddrinfo(s: &str) -> Result<(u16, u16), (&'static str, String)> {
    port_range_with(s, parse_port_getaddrinfo)
}

fn port_range_with(
    s: &str,
    port: impl Fn(&str) -> Result<u16, String>,
) -> Result<(u16, u16), (&'static str, String)> {
    let p = |x: &str| port(x).map_err(|m| ("E0304", m));
    match s.split_once(':') {
        None => p(s).map(|v| (v, v)),
        Some((a, b)) => {
            let lo = if a.is_empty() { 0 } else { p(a)? };
            let hi = if b.is_empty() { 65535 } else { p(b)? };
            if lo > hi {
                return Err(("E0305", format!("invalid port range `{s}` (min > max)")));
            }
            Ok((lo, hi))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> Result<String, AddrError> {
        parse_addr_any(s, Family::V4).map(|n| fmt_addr(&n))
    }

    #[test]
    fn xtopt_ports_are_decimal_and_wrap_as_iptables_1_8_9() {
        // Each value checked with iptables-legacy-restore 1.8.9 + iptables-legacy-save (`-p udp --dport`).
        assert_eq!(parse_port_getaddrinfo("022"), Ok(22));
        assert_eq!(parse_port_getaddrinfo("0080"), Ok(80));
        assert_eq!(parse_port_getaddrinfo("+22"), Ok(22));
        assert_eq!(parse_port_getaddrinfo("65535"), Ok(65535));
        assert_eq!(parse_port_getaddrinfo("65536"), Ok(0));
        assert_eq!(parse_port_getaddrinfo("70000"), Ok(4464));
        assert_eq!(parse_port_getaddrinfo("ssh"), Ok(22));
        assert_eq!(parse_port_getaddrinfo("https"), Ok(443));
        // `""` is no service (port 0) and `-0` is 0 (`-p udp --sport ""` and `-p dccp --sport -0`
        // printed back as 0 by iptables-legacy-save 1.8.9); `-1` is a negative int, looked up by name.
        assert_eq!(parse_port_getaddrinfo(""), Ok(0));
        assert_eq!(parse_port_getaddrinfo("-0"), Ok(0));
        for bad in ["0x16", "-1", "-5", "1e1", "+"] {
            assert!(parse_port_getaddrinfo(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_port_range_getaddrinfo("010:020"), Ok((10, 20)));
        assert_eq!(parse_port_range_getaddrinfo(":022"), Ok((0, 22)));
        assert_eq!(parse_port_range_getaddrinfo("22:"), Ok((22, 65535)));
        // tcp, sctp, multiport and the targets keep strtoul base 0: `022` is 18 there.
        assert_eq!(parse_port("022", Some("tcp")), Ok(18));
    }

    #[test]
    fn strtoul_reads_base_zero() {
        assert_eq!(strtoul("22", 65535), Some(22));
        assert_eq!(strtoul("022", 65535), Some(18));
        assert_eq!(strtoul("0x50", 65535), Some(80));
        assert_eq!(strtoul("0X1f", 65535), Some(31));
        assert_eq!(strtoul("0", 65535), Some(0));
        assert_eq!(strtoul("+7", 65535), Some(7));
        assert_eq!(strtoul("0080", 65535), None);
        assert_eq!(strtoul("099", 65535), None);
        assert_eq!(strtoul("0x", 65535), None);
        assert_eq!(strtoul("-1", 65535), None);
        assert_eq!(strtoul("", 65535), None);
        assert_eq!(strtoul("65536", 65535), None);
        assert_eq!(strtoul("99999999999999999999999", u64::MAX), None);
    }

    #[test]
    fn addresses_follow_libxtables() {
        assert_eq!(v4("192.168.001.010").unwrap(), "192.168.1.8/32");
        assert_eq!(v4("0x0a.0.0.1").unwrap(), "10.0.0.1/32");
        assert_eq!(v4("10.1").unwrap(), "10.1.0.0/32");
        assert_eq!(v4("10").unwrap(), "10.0.0.0/32");
        assert_eq!(v4("10.1.2.3/8").unwrap(), "10.0.0.0/8");
        assert_eq!(v4("10.0.0.0/010").unwrap(), "10.0.0.0/8");
        assert_eq!(v4("10.0.0.0/0x18").unwrap(), "10.0.0.0/24");
        assert_eq!(v4("10.0.0.0/255.255.0.0").unwrap(), "10.0.0.0/16");
        assert_eq!(v4("10.0.0.0/255.0.255.0").unwrap(), "10.0.0.0/255.0.255.0");
        assert_eq!(v4("anything/0").unwrap(), "0.0.0.0/0");
        assert!(matches!(
            v4("10.000.000.099"),
            Err(AddrError::BadAddress { .. })
        ));
        assert!(matches!(
            v4("0080.1.1.1"),
            Err(AddrError::BadAddress { .. })
        ));
        assert!(matches!(v4("256.1.1.1"), Err(AddrError::BadAddress { .. })));
        assert!(matches!(v4("1.2.3.4.5"), Err(AddrError::BadAddress { .. })));
        assert!(matches!(v4("example.com"), Err(AddrError::Hostname(_))));
        assert!(matches!(v4("1.2.3.4/33"), Err(AddrError::BadMask(_))));
        assert!(matches!(v4("1.2.3.4/"), Err(AddrError::BadMask(_))));
        assert!(matches!(v4("1.2.3.4/255.255"), Err(AddrError::BadMask(_))));
        let six = |s| parse_addr_any(s, Family::V6).map(|n| fmt_addr(&n));
        assert_eq!(six("2001:db8::1/0x20").unwrap(), "2001:db8::/32");
        assert_eq!(six("::1").unwrap(), "::1/128");
        assert!(six("2001:db8::/129").is_err());
    }

    #[test]
    fn masks_are_computed_in_one_place() {
        assert_eq!(mask_v4(0), 0);
        assert_eq!(mask_v4(8), 0xff00_0000);
        assert_eq!(mask_v4(32), u32::MAX);
        assert_eq!(mask_v6(0), 0);
        assert_eq!(mask_v6(128), u128::MAX);
    }

    #[test]
    fn protocols_are_numbers_or_names() {
        assert_eq!(parse_proto("tcp"), Ok(Proto::Number(6)));
        assert_eq!(parse_proto("TCP"), Ok(Proto::Number(6)));
        assert_eq!(parse_proto("0x11"), Ok(Proto::Number(17)));
        assert_eq!(parse_proto("06"), Ok(Proto::Number(6)));
        assert_eq!(parse_proto("all"), Ok(Proto::All));
        assert_eq!(parse_proto("0"), Ok(Proto::All));
        assert_eq!(parse_proto("ipip"), Ok(Proto::Number(94)));
        assert_eq!(parse_proto("icmpv6"), Ok(Proto::Number(58)));
        assert_eq!(parse_proto("ip"), Ok(Proto::All));
        assert!(parse_proto("256").is_err());
        assert!(parse_proto("tcpx").is_err());
        assert!(parse_proto("").is_err());
        assert_eq!(proto_save_name(58), "ipv6-icmp");
    }

    #[test]
    fn ports_are_numbers_or_services() {
        assert_eq!(parse_port_range("22", Some("tcp")), Ok((22, 22)));
        assert_eq!(parse_port_range("022", Some("tcp")), Ok((18, 18)));
        assert_eq!(parse_port_range("0x50", Some("tcp")), Ok((80, 80)));
        assert_eq!(parse_port_range("ssh", Some("tcp")), Ok((22, 22)));
        assert_eq!(parse_port_range("ssh:https", Some("tcp")), Ok((22, 443)));
        assert_eq!(parse_port_range(":1023", Some("tcp")), Ok((0, 1023)));
        assert_eq!(parse_port_range("1024:", Some("tcp")), Ok((1024, 65535)));
        assert_eq!(parse_port_range(":", Some("tcp")), Ok((0, 65535)));
        assert_eq!(
            parse_port_range("0080", Some("tcp")).unwrap_err().0,
            "E0304"
        );
        assert_eq!(parse_port_range("2:1", Some("tcp")).unwrap_err().0, "E0305");
        assert_eq!(
            parse_port_range("1:2:3", Some("tcp")).unwrap_err().0,
            "E0304"
        );
        assert_eq!(
            parse_port_range("65536", Some("tcp")).unwrap_err().0,
            "E0304"
        );
        // netbase lists ssh for tcp only; domain for both.
        assert!(parse_port("ssh", Some("udp")).is_err());
        assert_eq!(parse_port("domain", Some("udp")), Ok(53));
        assert_eq!(parse_port("ssh", None), Ok(22));
        assert!(parse_port("SSH", Some("tcp")).is_err());
    }
}
