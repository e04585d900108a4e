//! Typed values of the options tailwall understands: IPv4 address specs (`-s`/`-d`), protocols (`-p`) and
//! port specs (`--sport`/`--dport`), parsed the way iptables' libxtables parses them, minus name lookups
//! (hostnames, `/etc/services`), which depend on the machine and are rejected with a hint.
use std::net::Ipv4Addr;

/// `-s`/`-d` value: an address and a prefix length, exactly as written (host bits may be set; see
/// [`AddrSpec::network`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddrSpec {
    pub addr: Ipv4Addr,
    pub len: u8,
}

impl AddrSpec {
    /// The network iptables stores: the address with host bits cleared.
    pub fn network(self) -> u32 {
        u32::from(self.addr) & prefix_mask(self.len)
    }
    /// The address as written has bits set below the prefix (iptables masks them silently).
    pub fn has_host_bits(self) -> bool {
        self.network() != u32::from(self.addr)
    }
}

fn prefix_mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - len as u32)
    }
}

/// `-p` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    /// `all` or `0`: no constraint.
    All,
    Number(u8),
}

pub const PROTO_TCP: u8 = 6;
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

/// `--sport`/`--dport` value: an inclusive range (`lo == hi` for a single port).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortSpec {
    pub lo: u16,
    pub hi: u16,
}

/// Why a value could not be parsed. Each variant maps to one diagnostic code in `lower`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("`{0}` is not a numeric IPv4 address")]
    Hostname(String),
    #[error("invalid IPv4 address `{0}`")]
    BadAddress(String),
    #[error("address lists (`{0}`) are not supported yet")]
    AddressList(String),
    #[error("invalid prefix length or mask `{0}`")]
    BadMask(String),
    #[error("non-contiguous netmask `{0}` is not supported yet")]
    NonContiguousMask(String),
    #[error("unknown protocol `{0}`")]
    BadProto(String),
    #[error("invalid port `{0}`")]
    BadPort(String),
    #[error("port `{0}` is a service name")]
    ServiceName(String),
    #[error("port `{0}` is out of range (0-65535)")]
    PortOutOfRange(String),
    #[error("invalid portrange (min > max): `{0}`")]
    PortRangeReversed(String),
}

/// Exactly four decimal octets.
pub fn parse_dotted(s: &str) -> Option<Ipv4Addr> {
    // Exactly four decimal octets: iptables-save always prints this form; shorter inet_aton forms are
    // ambiguous to readers and rejected.
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    let mut octets = [0u8; 4];
    for (o, p) in octets.iter_mut().zip(parts) {
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *o = p.parse().ok()?;
    }
    Some(Ipv4Addr::from(octets))
}

/// Parse `a.b.c.d`, `a.b.c.d/len` or `a.b.c.d/m.m.m.m`.
pub fn parse_addr(s: &str) -> Result<AddrSpec, ValueError> {
    if s.contains(',') {
        return Err(ValueError::AddressList(s.to_string()));
    }
    let (host, mask) = match s.split_once('/') {
        Some((h, m)) => (h, Some(m)),
        None => (s, None),
    };
    let addr = match parse_dotted(host) {
        Some(a) => a,
        None => {
            let looks_numeric = host.bytes().all(|b| b.is_ascii_digit() || b == b'.');
            let looks_name = !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
                && host.bytes().any(|b| b.is_ascii_alphabetic());
            return Err(if looks_name && !looks_numeric {
                ValueError::Hostname(host.to_string())
            } else {
                ValueError::BadAddress(s.to_string())
            });
        }
    };
    let len = match mask {
        None => 32,
        Some(m) if !m.is_empty() && m.len() <= 2 && m.bytes().all(|b| b.is_ascii_digit()) => {
            let len: u8 = m.parse().map_err(|_| ValueError::BadMask(m.to_string()))?;
            if len > 32 {
                return Err(ValueError::BadMask(m.to_string()));
            }
            len
        }
        Some(m) => {
            let mask = parse_dotted(m).ok_or_else(|| ValueError::BadMask(m.to_string()))?;
            let bits = u32::from(mask);
            let len = bits.leading_ones();
            if prefix_mask(len as u8) != bits {
                return Err(ValueError::NonContiguousMask(m.to_string()));
            }
            len as u8
        }
    };
    Ok(AddrSpec { addr, len })
}

/// Parse a `-p` value: a number 0-255 or a protocol name (case-insensitive, as iptables lowercases it).
pub fn parse_proto(s: &str) -> Result<Proto, ValueError> {
    let lower = s.to_ascii_lowercase();
    if lower == "all" {
        return Ok(Proto::All);
    }
    if !lower.is_empty() && lower.bytes().all(|b| b.is_ascii_digit()) {
        return match lower.parse::<u8>() {
            Ok(0) => Ok(Proto::All),
            Ok(n) => Ok(Proto::Number(n)),
            Err(_) => Err(ValueError::BadProto(s.to_string())),
        };
    }
    match PROTO_NAMES.iter().find(|(n, _)| *n == lower) {
        Some((_, 0)) => Ok(Proto::All),
        Some(&(_, n)) => Ok(Proto::Number(n)),
        None => Err(ValueError::BadProto(s.to_string())),
    }
}

/// The name iptables-save prints for a protocol number, if it has one.
pub fn proto_name(n: u8) -> Option<&'static str> {
    PROTO_NAMES
        .iter()
        .find(|(_, v)| *v == n)
        .map(|&(name, _)| name)
}

fn parse_port(s: &str, whole: &str) -> Result<u16, ValueError> {
    if s.is_empty() {
        return Err(ValueError::BadPort(whole.to_string()));
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return match s.parse::<u32>() {
            Ok(n) if n <= 65535 => Ok(n as u16),
            _ => Err(ValueError::PortOutOfRange(s.to_string())),
        };
    }
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && s.bytes().any(|b| b.is_ascii_alphabetic())
    {
        return Err(ValueError::ServiceName(s.to_string()));
    }
    Err(ValueError::BadPort(whole.to_string()))
}

/// Parse `N`, `a:b`, `:b` (= `0:b`) or `a:` (= `a:65535`).
pub fn parse_ports(s: &str) -> Result<PortSpec, ValueError> {
    match s.split_once(':') {
        None => {
            let p = parse_port(s, s)?;
            Ok(PortSpec { lo: p, hi: p })
        }
        Some((a, b)) => {
            if b.contains(':') {
                return Err(ValueError::BadPort(s.to_string()));
            }
            let lo = if a.is_empty() { 0 } else { parse_port(a, s)? };
            let hi = if b.is_empty() {
                65535
            } else {
                parse_port(b, s)?
            };
            if lo > hi {
                return Err(ValueError::PortRangeReversed(s.to_string()));
            }
            Ok(PortSpec { lo, hi })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addr_parses_plain_cidr_and_mask() {
        assert_eq!(
            parse_addr("10.1.2.3").unwrap(),
            AddrSpec {
                addr: Ipv4Addr::new(10, 1, 2, 3),
                len: 32
            }
        );
        assert_eq!(parse_addr("10.0.0.0/8").unwrap().len, 8);
        assert_eq!(parse_addr("0.0.0.0/0").unwrap().len, 0);
        assert_eq!(parse_addr("192.168.1.0/255.255.255.0").unwrap().len, 24);
        assert_eq!(parse_addr("1.2.3.4/255.255.255.255").unwrap().len, 32);
        assert_eq!(parse_addr("1.2.3.4/0.0.0.0").unwrap().len, 0);
    }

    #[test]
    fn addr_host_bits_are_reported_and_masked() {
        let a = parse_addr("10.1.2.3/8").unwrap();
        assert!(a.has_host_bits());
        assert_eq!(Ipv4Addr::from(a.network()), Ipv4Addr::new(10, 0, 0, 0));
        assert!(!parse_addr("10.0.0.0/8").unwrap().has_host_bits());
        assert_eq!(parse_addr("255.255.255.255/0").unwrap().network(), 0);
    }

    #[test]
    fn addr_rejects_bad_forms() {
        assert!(matches!(
            parse_addr("example.com"),
            Err(ValueError::Hostname(_))
        ));
        assert!(matches!(
            parse_addr("localhost"),
            Err(ValueError::Hostname(_))
        ));
        assert!(matches!(
            parse_addr("10.0.0"),
            Err(ValueError::BadAddress(_))
        ));
        assert!(matches!(
            parse_addr("256.1.1.1"),
            Err(ValueError::BadAddress(_))
        ));
        assert!(matches!(parse_addr("::1"), Err(ValueError::BadAddress(_))));
        assert!(matches!(
            parse_addr("1.2.3.4/33"),
            Err(ValueError::BadMask(_))
        ));
        assert!(matches!(
            parse_addr("1.2.3.4/"),
            Err(ValueError::BadMask(_))
        ));
        assert!(matches!(
            parse_addr("1.2.3.4/255.0.255.0"),
            Err(ValueError::NonContiguousMask(_))
        ));
        assert!(matches!(
            parse_addr("1.1.1.1,2.2.2.2"),
            Err(ValueError::AddressList(_))
        ));
    }

    #[test]
    fn proto_parses_names_numbers_and_all() {
        assert_eq!(parse_proto("tcp"), Ok(Proto::Number(6)));
        assert_eq!(parse_proto("TCP"), Ok(Proto::Number(6)));
        assert_eq!(parse_proto("17"), Ok(Proto::Number(17)));
        assert_eq!(parse_proto("all"), Ok(Proto::All));
        assert_eq!(parse_proto("0"), Ok(Proto::All));
        assert_eq!(parse_proto("255"), Ok(Proto::Number(255)));
        assert_eq!(parse_proto("gre"), Ok(Proto::Number(47)));
        assert_eq!(parse_proto("ipip"), Ok(Proto::Number(94)));
        assert_eq!(parse_proto("ipencap"), Ok(Proto::Number(4)));
        assert_eq!(parse_proto("IPv6-ICMP"), Ok(Proto::Number(58)));
        assert_eq!(parse_proto("icmpv6"), Ok(Proto::Number(58)));
        assert_eq!(parse_proto("mobility-header"), Ok(Proto::Number(135)));
        assert_eq!(parse_proto("ip"), Ok(Proto::All));
        assert!(parse_proto("256").is_err());
        assert!(parse_proto("tcpx").is_err());
        assert!(parse_proto("").is_err());
        assert_eq!(proto_name(6), Some("tcp"));
    }

    #[test]
    fn ports_parse_single_ranges_and_open_ranges() {
        assert_eq!(parse_ports("22"), Ok(PortSpec { lo: 22, hi: 22 }));
        assert_eq!(
            parse_ports("1000:2000"),
            Ok(PortSpec { lo: 1000, hi: 2000 })
        );
        assert_eq!(parse_ports(":1023"), Ok(PortSpec { lo: 0, hi: 1023 }));
        assert_eq!(
            parse_ports("1024:"),
            Ok(PortSpec {
                lo: 1024,
                hi: 65535
            })
        );
        assert_eq!(parse_ports(":"), Ok(PortSpec { lo: 0, hi: 65535 }));
        assert_eq!(parse_ports("0"), Ok(PortSpec { lo: 0, hi: 0 }));
        assert_eq!(
            parse_ports("65535"),
            Ok(PortSpec {
                lo: 65535,
                hi: 65535
            })
        );
    }

    #[test]
    fn ports_reject_bad_values() {
        assert!(matches!(
            parse_ports("65536"),
            Err(ValueError::PortOutOfRange(_))
        ));
        assert!(matches!(
            parse_ports("2000:1000"),
            Err(ValueError::PortRangeReversed(_))
        ));
        assert!(matches!(
            parse_ports("ssh"),
            Err(ValueError::ServiceName(_))
        ));
        assert!(matches!(
            parse_ports("1:ssh"),
            Err(ValueError::ServiceName(_))
        ));
        assert!(matches!(parse_ports("22,80"), Err(ValueError::BadPort(_))));
        assert!(matches!(parse_ports("1:2:3"), Err(ValueError::BadPort(_))));
        assert!(matches!(parse_ports(""), Err(ValueError::BadPort(_))));
        assert!(matches!(parse_ports("-1"), Err(ValueError::BadPort(_))));
    }
}
