//! Counterexamples: a concrete packet (frame + interfaces) from a box of the space, its one-line
//! spelling (the packet SPEC that `diff` prints and `explain --packet` reads), and a description of the
//! box.
//!
//! SPEC grammar (whitespace-separated):
//! `PROTO SRC[:SPORT] -> DST[:DPORT] [frag@OFFSET] [truncated] [in IFACE] [out IFACE] [FIELD VALUE]…`,
//! where FIELD VALUE gives another header field of the field table its value (`length 1500`), PROTO is
//! `tcp`, `udp`, `icmp`, `icmpv6` (also `icmp6`, `ipv6-icmp`), `proto N` or a number, addresses are
//! dotted quads or IPv6 addresses (RFC 5952 text; in brackets when a port follows, as in URLs:
//! `tcp [2001:db8::1]:1024 -> [2001:db8::2]:22`; both ends of one family), OFFSET is in bytes (a
//! multiple of 8, non-zero: a non-first fragment), `truncated` (or `(truncated header)`) cuts the
//! TCP/UDP header short, `ct STATE` (`new`, `established`, `related`, `invalid`, `untracked`) the
//! connection-tracking state the packet is judged with (metadata: the frame carries only the state
//! without a conntrack entry, [`Witness::decoded`] sets it). Ports are required for tcp/udp unless
//! the packet is a fragment or truncated.
use super::set::Set;
use super::space::{Dim, Space, L4_ABSENT, L4_PRESENT, L4_TRUNCATED};
use crate::interp::Meta;
use crate::ir::{Family, Field, Lookup};
use crate::packet::{
    build_frame, build_frame_v6, decode, ipv6_ext_header, l4_header, write_value, CtState, Decoded,
    FieldValue, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, NEXTHDR_FRAGMENT,
};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// MAC addresses of generated frames (locally administered: bit 1 of the first octet, IEEE 802).
///
/// Destination MAC of every generated frame.
pub const DST_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
/// Source MAC of every generated frame.
pub const SRC_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];

/// A concrete packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Witness {
    /// IPv4 (`src`/`dst` are 32-bit addresses, zero-extended) or IPv6: the family of the rulesets
    /// compared ([`Space::family`]) or of the SPEC's addresses.
    pub family: Family,
    /// IP protocol (IPv4) / upper-layer next header (IPv6).
    pub proto: u8,
    /// Source address, host order (IPv4 in the low 32 bits).
    pub src: u128,
    /// Destination address, host order (IPv4 in the low 32 bits).
    pub dst: u128,
    /// `Some((sport, dport))` when the transport header is readable.
    pub ports: Option<(u16, u16)>,
    /// Fragment offset in bytes (non-zero: a non-first fragment).
    pub frag: u16,
    /// The first fragment's transport header is cut to 4 bytes (tcp/udp/icmp matches hotdrop it).
    pub truncated: bool,
    /// The input/output interfaces the packet is judged with.
    pub meta: Meta,
    /// The other header fields' values ([`is_header`]), in field-table order, written into the frame
    /// by [`write_value`]; a field left out keeps the value the frame is built with.
    pub header: Vec<(Field, u32)>,
}

/// A field the witness sets through [`write_value`] rather than by building the frame: every field
/// of the field table but the addresses, protocol, ports and interfaces. A new header field needs no
/// code here.
pub fn is_header(f: Field) -> bool {
    !matches!(
        f,
        Field::SrcIp
            | Field::DstIp
            | Field::SrcIp6
            | Field::DstIp6
            | Field::Proto
            | Field::SrcPort
            | Field::DstPort
            | Field::InIface
            | Field::OutIface
    )
}

/// A value of `s` that reads well: for addresses not the network address of an interval, for ports
/// not port 0 of an interval (1024, or the value after 0), else the first value.
fn pick(s: &Set, field: Option<Field>) -> u128 {
    let (lo, hi) = s.intervals().first().copied().unwrap_or((0, 0));
    match field.map(|f| f.info().lookup) {
        Some(Lookup::Lpm) if hi > lo + 1 => lo + 1,
        Some(Lookup::PortRange) if lo == 0 && hi >= 1024 => 1024,
        Some(Lookup::PortRange) if lo == 0 && hi > 0 => 1,
        _ => lo,
    }
}

impl Witness {
    /// A packet of the box `region` (one set per dimension of `space`, each non-empty). A transport
    /// header present or truncated is always TCP, UDP or the family's ICMP (the programs mark the
    /// other protocols impossible there).
    pub fn of(space: &Space, region: &[Set]) -> Witness {
        let get = |f: Field| &region[Space::field_dim(f)];
        let l4 = region[0].first().unwrap_or(L4_ABSENT);
        let protos = get(Field::Proto);
        let tcpudp = Set::from_intervals(vec![
            (IPPROTO_TCP as u128, IPPROTO_TCP as u128),
            (IPPROTO_UDP as u128, IPPROTO_UDP as u128),
        ]);
        let v6 = space.family == Family::V6;
        let icmp = if v6 { IPPROTO_ICMPV6 } else { IPPROTO_ICMP };
        let (src_field, dst_field) = if v6 {
            (Field::SrcIp6, Field::DstIp6)
        } else {
            (Field::SrcIp, Field::DstIp)
        };
        let proto = match l4 {
            // TCP/UDP first, else the family's ICMP (its type and code are a transport field).
            L4_PRESENT | L4_TRUNCATED => protos
                .intersect(&tcpudp)
                .first()
                .or_else(|| protos.contains(icmp as u128).then_some(icmp as u128))
                .unwrap_or(6) as u8,
            _ => [icmp, IPPROTO_TCP, IPPROTO_UDP]
                .into_iter()
                .find(|&p| protos.contains(p as u128))
                .unwrap_or(pick(protos, None) as u8),
        };
        let mut meta = Meta::default();
        for (d, info) in space.dims.iter().enumerate() {
            if let (Dim::Field(f), Some(atoms)) = (info.dim, &info.atoms) {
                let name = atoms.reps[pick(&region[d], None) as usize].clone();
                match f {
                    Field::InIface => meta.in_iface = name,
                    Field::OutIface => meta.out_iface = name,
                    _ => {}
                }
            }
        }
        let mut w = Witness {
            family: space.family,
            proto,
            src: pick(get(src_field), Some(src_field)),
            dst: pick(get(dst_field), Some(dst_field)),
            ports: (l4 == L4_PRESENT && proto != icmp).then(|| {
                (
                    pick(get(Field::SrcPort), Some(Field::SrcPort)) as u16,
                    pick(get(Field::DstPort), Some(Field::DstPort)) as u16,
                )
            }),
            // A first fragment of TCP, UDP or ICMP carries its transport header: absent means a
            // non-first fragment.
            frag: if l4 == L4_ABSENT && [IPPROTO_TCP, IPPROTO_UDP, icmp].contains(&proto) {
                8
            } else {
                0
            },
            truncated: l4 == L4_TRUNCATED,
            meta,
            header: Vec::new(),
        };
        // Header fields: keep the frame's own value when the box admits it, else the first value of
        // the box the frame can carry (the smallest at or above its own, for a length).
        let mut frame = w.frame();
        for f in Field::ALL.into_iter().filter(|&f| is_header(f)) {
            let set = get(f);
            let own = match decode(&frame) {
                Decoded::Ipv4(p) | Decoded::Ipv6(p) => match p.value(f) {
                    FieldValue::Value(v) => Some(v),
                    // A transport field the frame's protocol (or fragment) does not carry: the
                    // L4 dimension already decides such packets, there is no value to spell.
                    FieldValue::Absent | FieldValue::Truncated => continue,
                },
                _ => None,
            };
            if own.is_some_and(|v| set.contains(v)) {
                continue;
            }
            let candidates = set
                .intervals()
                .iter()
                .map(|&(lo, hi)| own.filter(|&v| lo <= v && v <= hi).unwrap_or(lo) as u32)
                .chain(set.intervals().iter().map(|&(_, hi)| hi as u32));
            let mut chosen = None;
            for v in candidates {
                let mut g = frame.clone();
                if write_value(&mut g, f, v) {
                    chosen = Some(v);
                    frame = g;
                    break;
                }
            }
            // No value of the box fits the frame (e.g. a length below its headers): the first one is
            // kept in the spelling, and the frame keeps its own.
            w.header
                .push((f, chosen.unwrap_or(pick(set, Some(f)) as u32)));
        }
        w
    }

    /// The Ethernet frame (IPv4 checksum filled in, transport checksums zero). An IPv6 non-first
    /// fragment carries a fragment extension header.
    pub fn frame(&self) -> Vec<u8> {
        let payload = match (self.ports, self.truncated) {
            (Some((s, d)), _) => l4_header(self.proto, s, d, b""),
            (None, true) => vec![0; 4],
            (None, false) if self.proto == IPPROTO_ICMP => vec![8, 0, 0xf7, 0xff, 0, 0, 0, 0],
            // An ICMPv6 echo request (RFC 4443 §4.1).
            (None, false) if self.proto == IPPROTO_ICMPV6 => vec![128, 0, 0, 0, 0, 0, 0, 0],
            (None, false) => vec![0; 8],
        };
        let mut f = match self.family {
            Family::V4 => build_frame(
                DST_MAC,
                SRC_MAC,
                Ipv4Addr::from(self.src as u32),
                Ipv4Addr::from(self.dst as u32),
                self.proto,
                self.frag / 8,
                &payload,
            ),
            Family::V6 if self.frag != 0 => {
                let mut p = ipv6_ext_header(NEXTHDR_FRAGMENT, self.proto, self.frag / 8, false);
                p.extend_from_slice(&payload);
                let (s, d) = (Ipv6Addr::from(self.src), Ipv6Addr::from(self.dst));
                build_frame_v6(DST_MAC, SRC_MAC, s, d, NEXTHDR_FRAGMENT, &p)
            }
            Family::V6 => {
                let (s, d) = (Ipv6Addr::from(self.src), Ipv6Addr::from(self.dst));
                build_frame_v6(DST_MAC, SRC_MAC, s, d, self.proto, &payload)
            }
        };
        for &(field, v) in &self.header {
            write_value(&mut f, field, v);
        }
        f
    }

    /// The decoded [`Witness::frame`] with the connection state the witness gives it: a frame carries
    /// only the state without a conntrack entry ([`crate::packet::CtState::without_entry`]), the
    /// others (`ct established`) are packet metadata, set here. What every offline engine judges.
    pub fn decoded(&self) -> Decoded {
        let mut d = decode(&self.frame());
        if let Some(&(_, v)) = self.header.iter().find(|(f, _)| *f == Field::CtState) {
            if let (Decoded::Ipv4(p) | Decoded::Ipv6(p), Some(s)) =
                (&mut d, CtState::from_value(v.into()))
            {
                p.ct_state = s;
            }
        }
        d
    }

    /// The SPEC spelling (see the module docs).
    pub fn spec(&self) -> String {
        let proto = match self.proto {
            IPPROTO_TCP => "tcp".to_string(),
            IPPROTO_UDP => "udp".to_string(),
            IPPROTO_ICMP => "icmp".to_string(),
            IPPROTO_ICMPV6 if self.family == Family::V6 => "icmpv6".to_string(),
            p => format!("proto {p}"),
        };
        let addr = |a: u128, port: Option<u16>| match (self.family, port) {
            (Family::V4, None) => Ipv4Addr::from(a as u32).to_string(),
            (Family::V4, Some(p)) => format!("{}:{p}", Ipv4Addr::from(a as u32)),
            (Family::V6, None) => Ipv6Addr::from(a).to_string(),
            (Family::V6, Some(p)) => format!("[{}]:{p}", Ipv6Addr::from(a)),
        };
        let (sp, dp) = self.ports.unzip();
        let mut out = format!("{proto} {} -> {}", addr(self.src, sp), addr(self.dst, dp));
        if self.frag != 0 {
            let _ = write!(out, " frag@{}", self.frag);
        }
        if self.truncated {
            out.push_str(" truncated");
        }
        if let Some(i) = &self.meta.in_iface {
            let _ = write!(out, " in {i}");
        }
        if let Some(o) = &self.meta.out_iface {
            let _ = write!(out, " out {o}");
        }
        for (f, v) in &self.header {
            match (f, CtState::from_value((*v).into())) {
                (Field::CtState, Some(s)) => {
                    let _ = write!(out, " ct {}", s.name().to_ascii_lowercase());
                }
                _ => {
                    let _ = write!(out, " {f} {v}");
                }
            }
        }
        out
    }

    /// Parse a SPEC (see the module docs).
    ///
    /// # Errors
    /// A sentence saying which token was unexpected and what was expected there (an unknown protocol,
    /// a bad address or port, ports missing for tcp/udp, a fragment offset not a multiple of 8, …).
    pub fn parse(spec: &str) -> Result<Witness, String> {
        let spec = spec.replace("(truncated header)", "truncated");
        let mut toks = spec.split_whitespace().peekable();
        let proto = match toks.next() {
            Some("tcp") => IPPROTO_TCP,
            Some("udp") => IPPROTO_UDP,
            Some("icmp") => IPPROTO_ICMP,
            Some("icmpv6" | "icmp6" | "ipv6-icmp") => IPPROTO_ICMPV6,
            Some("proto") => {
                let n = toks
                    .next()
                    .ok_or("expected a protocol number after `proto`")?;
                n.parse::<u8>()
                    .map_err(|_| format!("`{n}`: expected a protocol number 0-255"))?
            }
            Some(n) => n.parse::<u8>().map_err(|_| {
                format!("`{n}`: expected tcp, udp, icmp, icmpv6, `proto N` or a protocol number")
            })?,
            None => {
                return Err(
                    "empty packet spec: expected e.g. `tcp 10.0.0.1:1234 -> 10.0.0.2:22`".into(),
                )
            }
        };
        let endpoint = |t: Option<&str>, what: &str| -> Result<(IpAddr, Option<u16>), String> {
            let t = t.ok_or_else(|| format!("expected the {what} address"))?;
            let port = |p: &str| {
                p.parse::<u16>()
                    .map_err(|_| format!("`{p}`: expected a port 0-65535"))
            };
            // `[v6]:port`, `[v6]`, a bare IPv6 address (two colons or more), `v4:port` or `v4`.
            let (a, p) = if let Some(rest) = t.strip_prefix('[') {
                let (a, after) = rest
                    .split_once(']')
                    .ok_or_else(|| format!("`{t}`: expected `]` after the IPv6 {what} address"))?;
                match after.strip_prefix(':') {
                    Some(p) => (a, Some(port(p)?)),
                    None if after.is_empty() => (a, None),
                    None => return Err(format!("`{t}`: expected `:PORT` after `]`")),
                }
            } else if t.matches(':').count() >= 2 {
                (t, None)
            } else {
                match t.split_once(':') {
                    Some((a, p)) => (a, Some(port(p)?)),
                    None => (t, None),
                }
            };
            let a: IpAddr = a.parse().map_err(|_| {
                format!("`{a}`: expected a dotted-quad IPv4 or an IPv6 {what} address (`[ADDR]:PORT` for IPv6 with a port)")
            })?;
            Ok((a, p))
        };
        let (src, sp) = endpoint(toks.next(), "source")?;
        match toks.next() {
            Some("->") => {}
            other => return Err(format!("expected `->` after the source, found {other:?}")),
        }
        let (dst, dp) = endpoint(toks.next(), "destination")?;
        let (family, src, dst) = match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                (Family::V4, u32::from(s).into(), u32::from(d).into())
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => (Family::V6, u128::from(s), u128::from(d)),
            _ => {
                return Err("the source and destination addresses are of different families".into())
            }
        };
        let mut w = Witness {
            family,
            proto,
            src,
            dst,
            ports: None,
            frag: 0,
            truncated: false,
            meta: Meta::default(),
            header: Vec::new(),
        };
        while let Some(t) = toks.next() {
            if t == "ct" || t == "ct_state" {
                let s = toks
                    .next()
                    .and_then(CtState::from_name)
                    .ok_or_else(|| {
                        format!("expected a connection state after `{t}`: new, established, related, invalid or untracked")
                    })?;
                w.header.retain(|(g, _)| *g != Field::CtState);
                w.header.push((Field::CtState, s as u32));
                w.header.sort_unstable();
                continue;
            }
            if let Some(f) = Field::from_name(t).filter(|&f| is_header(f)) {
                let v = toks
                    .next()
                    .and_then(|v| v.parse::<u32>().ok())
                    .filter(|&v| u128::from(v) <= f.max_value())
                    .ok_or_else(|| format!("expected a value 0-{} after `{t}`", f.max_value()))?;
                w.header.retain(|(g, _)| *g != f);
                w.header.push((f, v));
                w.header.sort_unstable();
                continue;
            }
            match t {
                "truncated" => w.truncated = true,
                "in" | "out" => {
                    let name = toks
                        .next()
                        .ok_or_else(|| format!("expected an interface name after `{t}`"))?;
                    if t == "in" {
                        w.meta.in_iface = Some(name.to_string());
                    } else {
                        w.meta.out_iface = Some(name.to_string());
                    }
                }
                f if f.starts_with("frag@") => {
                    let n = f[5..]
                        .parse::<u16>()
                        .ok()
                        .filter(|n| *n % 8 == 0 && *n != 0 && *n / 8 <= 0x1fff)
                        .ok_or_else(|| {
                            format!("`{f}`: expected frag@N with N a non-zero multiple of 8")
                        })?;
                    w.frag = n;
                }
                other => {
                    return Err(format!(
                        "`{other}`: expected frag@N, truncated, in IFACE, out IFACE or a header field and its value"
                    ))
                }
            }
        }
        let l4 = proto == IPPROTO_TCP || proto == IPPROTO_UDP;
        match (sp, dp) {
            (Some(s), Some(d)) if l4 && w.frag == 0 && !w.truncated => w.ports = Some((s, d)),
            (None, None) if !l4 || w.frag != 0 || w.truncated => {}
            (None, None) => {
                return Err(
                    "tcp/udp packets need SRC:PORT -> DST:PORT (or frag@N, truncated)".into(),
                )
            }
            _ => {
                return Err(
                    "ports are given for both ends of a tcp/udp first fragment, and only then"
                        .into(),
                )
            }
        }
        Ok(w)
    }
}

/// `a.b.c.d/len` when `[lo, hi]` is one prefix, else `a.b.c.d-e.f.g.h`.
fn addr_interval(bits: u8, lo: u128, hi: u128) -> String {
    let show = |a: u128| match bits {
        32 => Ipv4Addr::from(a as u32).to_string(),
        _ => Ipv6Addr::from(a).to_string(),
    };
    // The interval is one prefix when its size is a power of two (the whole 128-bit space counts:
    // its size overflows) and its start is aligned to it.
    let host = (hi - lo).checked_add(1).map_or(128, |n| {
        if n.is_power_of_two() && lo.is_multiple_of(n) {
            n.trailing_zeros()
        } else {
            u32::MAX
        }
    });
    match host {
        0 => show(lo),
        h if h <= u32::from(bits) => format!("{}/{}", show(lo), u32::from(bits) - h),
        _ => format!("{}-{}", show(lo), show(hi)),
    }
}

/// One dimension's set in words (`None`: the whole domain).
fn describe_dim(space: &Space, region: &[Set], d: usize) -> Option<String> {
    let s = &region[d];
    let info = &space.dims[d];
    if *s == info.domain {
        return None;
    }
    // The set, or `not` its complement when that reads shorter.
    let complement = info.domain.subtract(s);
    let list = |f: &dyn Fn(u128, u128) -> String| -> String {
        let (neg, set) = if complement.intervals().len() < s.intervals().len() {
            ("not ", &complement)
        } else {
            ("", s)
        };
        let v: Vec<String> = set.intervals().iter().map(|&(lo, hi)| f(lo, hi)).collect();
        if v.len() == 1 {
            format!("{neg}{}", v[0])
        } else {
            format!("{neg}{{{}}}", v.join(", "))
        }
    };
    let num = |lo: u128, hi: u128| {
        if lo == hi {
            lo.to_string()
        } else {
            format!("{lo}-{hi}")
        }
    };
    Some(match info.dim {
        Dim::L4 => {
            let proto = &region[Space::field_dim(Field::Proto)];
            let tcpudp = proto.contains(IPPROTO_TCP as u128) || proto.contains(IPPROTO_UDP as u128);
            if *s == Set::single(L4_PRESENT) || !tcpudp {
                // Implied by a port or by the protocol: not worth a word.
                return None;
            }
            let names: Vec<&str> = [
                (L4_PRESENT, "ports present"),
                (
                    L4_ABSENT,
                    "without ports (non-first fragment or other protocol)",
                ),
                (L4_TRUNCATED, "truncated tcp/udp header"),
            ]
            .into_iter()
            .filter(|(v, _)| s.contains(*v))
            .map(|(_, n)| n)
            .collect();
            names.join(" or ")
        }
        Dim::Field(f) => match f.info().lookup {
            Lookup::Lpm => format!(
                "{} {}",
                if matches!(f, Field::SrcIp | Field::SrcIp6) {
                    "from"
                } else {
                    "to"
                },
                list(&|lo, hi| addr_interval(f.bits(), lo, hi))
            ),
            Lookup::Iface => {
                let atoms = info.atoms.as_ref()?;
                let names = |set: &Set| -> Vec<String> {
                    set.intervals()
                        .iter()
                        .flat_map(|&(lo, hi)| lo..=hi)
                        .map(|a| {
                            atoms.reps[a as usize]
                                .clone()
                                .unwrap_or_else(|| "(none)".into())
                        })
                        .collect()
                };
                let dir = if f == Field::InIface { "in" } else { "out" };
                let (yes, no) = (names(s), names(&complement));
                match (yes.len() <= no.len(), yes.len().min(no.len()) <= 4) {
                    (true, true) => format!("{dir} {}", yes.join("|")),
                    (false, true) => format!("{dir} not {}", no.join("|")),
                    _ => format!("{dir} one of {} interface classes", yes.len()),
                }
            }
            _ => {
                let name = match f {
                    Field::Proto => "proto",
                    Field::SrcPort => "sport",
                    Field::DstPort => "dport",
                    Field::IcmpType => "type",
                    _ => f.name(),
                };
                if f == Field::IcmpType {
                    // `type << 8 | code`, spelled as YAML's `icmp_type` reads it: `8` (every code),
                    // `3/1`, `3/1-3/3`, `0-8`.
                    return Some(format!(
                        "{name} {}",
                        list(&|lo, hi| crate::yaml::print::icmp_value(lo as u32, hi as u32))
                    ));
                }
                if f == Field::Proto && s.intervals().iter().all(|&(lo, hi)| lo == hi) {
                    return Some(list(&|lo, _| match lo {
                        6 => "tcp".into(),
                        17 => "udp".into(),
                        1 => "icmp".into(),
                        p => format!("proto {p}"),
                    }));
                }
                let v = if f == Field::Proto {
                    list(&|lo, hi| match (lo, hi) {
                        (6, 6) => "tcp".into(),
                        (17, 17) => "udp".into(),
                        (1, 1) => "icmp".into(),
                        _ => num(lo, hi),
                    })
                } else {
                    list(&num)
                };
                format!("{name} {v}")
            }
        },
    })
}

/// A one-line description of a box, or `None` when it is not simple (a set of more than 4 intervals on
/// some dimension).
pub fn describe(space: &Space, region: &[Set]) -> Option<String> {
    if region.iter().any(|s| s.intervals().len() > 4) {
        return None;
    }
    // Protocol first, then the other fields in field-table order, the transport state last.
    let proto = Space::field_dim(Field::Proto);
    let order = std::iter::once(proto)
        .chain((1..region.len()).filter(|&d| d != proto))
        .chain(std::iter::once(0));
    let parts: Vec<String> = order
        .filter_map(|d| describe_dim(space, region, d))
        .collect();
    Some(if parts.is_empty() {
        "every packet".into()
    } else {
        parts.join(" ")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_round_trips() {
        for s in [
            "tcp 10.0.0.1:1234 -> 10.0.0.2:22",
            "udp 1.2.3.4:53 -> 5.6.7.8:53 in eth0",
            "tcp 10.0.0.1 -> 10.0.0.2 frag@8",
            "udp 10.0.0.1 -> 10.0.0.2 truncated in lo out eth1",
            "icmp 10.0.0.1 -> 10.0.0.2",
            "proto 47 10.0.0.1 -> 10.0.0.2",
            "udp 10.0.0.1:1 -> 10.0.0.2:2 length 300",
            "tcp [2001:db8::1]:1024 -> [2001:db8::2]:22",
            "icmpv6 fe80::1 -> ff02::1",
            "udp 2001:db8::1 -> 2001:db8::2 frag@16 ttl 1",
            "tcp [::1]:1 -> [::2]:2 length 100 tcp_flags 18",
            "tcp 10.0.0.1:1234 -> 10.0.0.2:22 ct established",
        ] {
            let w = Witness::parse(s).unwrap();
            assert_eq!(w.spec(), s);
            // The frame carries what the spec says.
            let d = decode(&w.frame());
            let p = d.packet().unwrap_or_else(|| panic!("{s}: {d:?}"));
            assert_eq!(
                (p.family, p.src, p.dst, p.proto),
                (w.family, w.src, w.dst, w.proto)
            );
            for &(f, v) in &w.header {
                if f == Field::CtState {
                    // Metadata: in the decoded packet, not in the frame.
                    let p = w.decoded();
                    assert_eq!(p.packet().unwrap().value(f), FieldValue::Value(v.into()));
                    continue;
                }
                let mut g = w.frame();
                assert!(write_value(&mut g, f, v), "{s}: {f} {v}");
                assert_eq!(
                    decode(&g).packet().unwrap().value(f),
                    FieldValue::Value(v.into()),
                    "{s}"
                );
            }
        }
        assert!(Witness::parse("tcp 10.0.0.1:1 -> [::1]:2").is_err());
        assert!(Witness::parse("tcp [::1:1 -> [::1]:2").is_err());
        assert!(Witness::parse("tcp 10.0.0.1 -> 10.0.0.2").is_err());
        assert!(Witness::parse("tcp 10.0.0.1:1 10.0.0.2:2").is_err());
        assert!(Witness::parse("tcp 10.0.0.1:1 -> 10.0.0.2:2 frag@3").is_err());
    }

    #[test]
    fn icmp_types_are_described_as_type_and_code() {
        let rs = crate::lower::iptables(&crate::diag::SourceFile::new(
            "t.rules",
            "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p icmp --icmp-type 8 -j DROP\n-A INPUT -p icmp --icmp-type 3/1 -j DROP\nCOMMIT\n".to_string(),
        ))
        .unwrap()
        .ruleset;
        let space = Space::new(crate::ir::Hook::Input, &[&rs]);
        let t = Space::field_dim(Field::IcmpType);
        let mut region = space.universe();
        let describe_types = |region: &mut Vec<Set>, set: Set| {
            region[t] = set;
            describe(&space, region).unwrap()
        };
        assert_eq!(
            describe_types(&mut region, Set::range(8 << 8, 8 << 8 | 0xff)),
            "type 8"
        );
        assert_eq!(
            describe_types(&mut region, Set::single(3 << 8 | 1)),
            "type 3/1"
        );
        assert_eq!(
            describe_types(&mut region, Set::range(3 << 8 | 1, 3 << 8 | 3)),
            "type 3/1-3/3"
        );
        assert_eq!(
            describe_types(&mut region, Set::range(0, 8 << 8 | 0xff)),
            "type 0-8"
        );
        assert_eq!(
            describe_types(&mut region, Set::range(9 << 8, 0xffff)),
            "type 9-255"
        );
    }

    #[test]
    fn addr_interval_prints_prefixes() {
        assert_eq!(addr_interval(32, 0x0a00_0000, 0x0aff_ffff), "10.0.0.0/8");
        assert_eq!(addr_interval(32, 5, 5), "0.0.0.5");
        assert_eq!(addr_interval(32, 1, 6), "0.0.0.1-0.0.0.6");
        assert_eq!(addr_interval(32, 0, u32::MAX.into()), "0.0.0.0/0");
        let db8 = 0x2001_0db8_u128 << 96;
        assert_eq!(
            addr_interval(128, db8, db8 | ((1 << 96) - 1)),
            "2001:db8::/32"
        );
        assert_eq!(addr_interval(128, 0, u128::MAX), "::/0");
        assert_eq!(addr_interval(128, db8 | 1, db8 | 1), "2001:db8::1");
        assert_eq!(
            addr_interval(128, db8 | 1, db8 | 6),
            "2001:db8::1-2001:db8::6"
        );
    }
}
