//! The kernel's LOG line for a frame: what `net/netfilter/nf_log_syslog.c` prints for an IPv4
//! (`dump_ipv4_packet`) or IPv6 (`dump_ipv6_packet`) packet logged by `-j LOG`, written again from
//! the frame a log record carries, so `tailwall log` prints lines a syslog parser made for iptables
//! reads unchanged (`docs/decisions/0014-log-ring-buffer.md`).
//!
//! Kept from the kernel: field order and spelling (`IN= OUT= MAC= SRC= DST= LEN= TOS= PREC= TTL= ID=
//! [CE] [DF] [MF] [FRAG:] [OPT (…)] PROTO= SPT= DPT= [SEQ= ACK=] WINDOW= RES= flags URGP= [OPT (…)]`;
//! IPv6: `LEN= TC= HOPLIMIT= FLOWLBL=`, extension headers, `%pI6` addresses with every zero), the
//! trailing space, `--log-tcp-sequence`, `--log-tcp-options`, `--log-ip-options`, ICMP/ICMPv6 bodies
//! with the quoted packet of an error in `[…]` (once), `INCOMPLETE [N bytes]`.
//!
//! Differences (documented in `docs/conformance.md`): `MAC=` prints the frame's first 14 bytes (the
//! kernel prints the device's hardware header; with VLAN offload the tag is not in it, at XDP it is
//! in the frame after the 14 bytes); `UID=`/`GID=` (`--log-uid`) and `MARK=` are never printed: no
//! socket and no mark exist at XDP ingress; a header beyond the record's captured bytes
//! (`tailwall_abi::LOG_SNAPLEN`) prints `TRUNCATED` where the kernel would read on.
use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::ir::{LOG_IPOPT, LOG_TCPOPT, LOG_TCPSEQ};

/// What one line is printed from.
#[derive(Clone, Debug)]
pub struct LogInput<'a> {
    /// `--log-prefix` / `--nflog-prefix`, printed first, as given.
    pub prefix: &'a str,
    /// The input device's name (`None`: no input device, OUTPUT; then no `MAC=` either).
    pub in_iface: Option<&'a str>,
    /// The output device's name (`None`: INPUT).
    pub out_iface: Option<&'a str>,
    /// The frame's first bytes, from the Ethernet header.
    pub frame: &'a [u8],
    /// The whole frame's length (`>= frame.len()`), for `INCOMPLETE [N bytes]`.
    pub frame_len: usize,
    /// `LOG_*` flags of the rule.
    pub flags: u8,
}

/// Bytes of `f` at `at..at+n`, or `None` past the captured bytes.
fn get(f: &[u8], at: usize, n: usize) -> Option<&[u8]> {
    f.get(at..at.checked_add(n)?)
}
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The kernel LOG line of `i` (without the syslog level; with the kernel's trailing space).
pub fn line(i: &LogInput<'_>) -> String {
    let mut m = String::new();
    let _ = write!(
        m,
        "{}IN={} OUT={} ",
        i.prefix,
        i.in_iface.unwrap_or(""),
        i.out_iface.unwrap_or("")
    );
    let f = i.frame;
    if i.in_iface.is_some() {
        m.push_str("MAC=");
        match get(f, 0, 14) {
            Some(h) => {
                let v: Vec<String> = h.iter().map(|b| format!("{b:02x}")).collect();
                let _ = write!(m, "{} ", v.join(":"));
            }
            None => m.push(' '),
        }
    }
    // The network header after up to two VLAN tags (as the entry program skips them).
    let mut at = 12;
    let mut ethertype = get(f, at, 2).map_or(0, |b| be16(b, 0));
    for _ in 0..2 {
        if ethertype == 0x8100 || ethertype == 0x88a8 {
            at += 4;
            ethertype = get(f, at, 2).map_or(0, |b| be16(b, 0));
        }
    }
    let l3 = at + 2;
    let l3_len = i.frame_len.saturating_sub(l3);
    match ethertype {
        0x0800 => ipv4(&mut m, f, l3, l3_len, i.flags, true),
        0x86dd => ipv6(&mut m, f, l3, l3_len, i.flags, true),
        _ => m.push_str("TRUNCATED"),
    }
    m
}

/// `dump_ipv4_packet` at `off`; `len` bytes of the packet from `off` exist (captured or not).
fn ipv4(m: &mut String, f: &[u8], off: usize, len: usize, flags: u8, outer: bool) {
    let Some(ih) = get(f, off, 20) else {
        m.push_str("TRUNCATED");
        return;
    };
    let tot = be16(ih, 2) as usize;
    // The kernel trims the skb to the total length (`ip_rcv_core`).
    let len = if outer { len.min(tot) } else { len };
    let _ = write!(
        m,
        "SRC={} DST={} ",
        Ipv4Addr::new(ih[12], ih[13], ih[14], ih[15]),
        Ipv4Addr::new(ih[16], ih[17], ih[18], ih[19])
    );
    let _ = write!(
        m,
        "LEN={} TOS=0x{:02X} PREC=0x{:02X} TTL={} ID={} ",
        tot,
        ih[1] & 0x1e,
        ih[1] & 0xe0,
        ih[8],
        be16(ih, 4)
    );
    let frag = be16(ih, 6);
    if frag & 0x8000 != 0 {
        m.push_str("CE ");
    }
    if frag & 0x4000 != 0 {
        m.push_str("DF ");
    }
    if frag & 0x2000 != 0 {
        m.push_str("MF ");
    }
    let offset = frag & 0x1fff;
    if offset != 0 {
        let _ = write!(m, "FRAG:{offset} ");
    }
    let ihl = usize::from(ih[0] & 15) * 4;
    if flags & LOG_IPOPT != 0 && ihl > 20 {
        match get(f, off + 20, ihl - 20) {
            Some(op) => {
                m.push_str("OPT (");
                op.iter().for_each(|b| {
                    let _ = write!(m, "{b:02X}");
                });
                m.push_str(") ");
            }
            None => {
                m.push_str("TRUNCATED");
                return;
            }
        }
    }
    let l4 = off + ihl;
    let l4_len = len.saturating_sub(ihl);
    let fragment = offset != 0;
    match ih[9] {
        // The kernel returns early when the header is incomplete, skipping only `UID=`/`MARK=`,
        // which tailwall never prints.
        6 => {
            tcp(m, f, l4, l4_len, fragment, flags);
        }
        17 | 136 => {
            udp(m, f, ih[9], l4, l4_len, fragment);
        }
        1 => {
            m.push_str("PROTO=ICMP ");
            if fragment {
                return;
            }
            if l4_len < 8 {
                let _ = write!(m, "INCOMPLETE [{l4_len} bytes] ");
                return;
            }
            let Some(ic) = get(f, l4, 8) else {
                m.push_str("TRUNCATED");
                return;
            };
            let (t, c) = (ic[0], ic[1]);
            let _ = write!(m, "TYPE={t} CODE={c} ");
            let required = match t {
                0 | 8 => 4,
                3 | 4 | 5 | 11 | 12 => 8 + 20,
                13 | 14 => 20,
                17 | 18 => 12,
                _ => 0,
            };
            if required > 0 && l4_len < required {
                let _ = write!(m, "INCOMPLETE [{l4_len} bytes] ");
                return;
            }
            match t {
                0 | 8 => {
                    let _ = write!(m, "ID={} SEQ={} ", be16(ic, 4), be16(ic, 6));
                }
                12 => {
                    let _ = write!(m, "PARAMETER={} ", ic[4]);
                }
                3 | 4 | 5 | 11 => {
                    if t == 5 {
                        let _ = write!(m, "GATEWAY={} ", Ipv4Addr::new(ic[4], ic[5], ic[6], ic[7]));
                    }
                    if outer {
                        m.push('[');
                        ipv4(m, f, l4 + 8, l4_len - 8, flags, false);
                        m.push_str("] ");
                    }
                    if t == 3 && c == 4 {
                        let _ = write!(m, "MTU={} ", be16(ic, 6));
                    }
                }
                _ => {}
            }
        }
        51 | 50 => {
            let _ = write!(m, "PROTO={} ", if ih[9] == 51 { "AH" } else { "ESP" });
            if fragment {
                return;
            }
            let spi_at = if ih[9] == 51 { 4 } else { 0 };
            match get(f, l4, spi_at + 4).filter(|_| l4_len >= spi_at + 4) {
                Some(h) => {
                    let _ = write!(m, "SPI=0x{:x} ", be32(h, spi_at));
                }
                None => {
                    let _ = write!(m, "INCOMPLETE [{l4_len} bytes] ");
                }
            }
        }
        p => {
            let _ = write!(m, "PROTO={p} ");
        }
    }
}

/// `nf_log_dump_tcp_header`; true when the line ends here (the kernel's return 1).
fn tcp(m: &mut String, f: &[u8], off: usize, len: usize, fragment: bool, flags: u8) -> bool {
    m.push_str("PROTO=TCP ");
    if fragment {
        return false;
    }
    if len < 20 {
        let _ = write!(m, "INCOMPLETE [{len} bytes] ");
        return true;
    }
    let Some(th) = get(f, off, 20) else {
        m.push_str("TRUNCATED");
        return true;
    };
    let _ = write!(m, "SPT={} DPT={} ", be16(th, 0), be16(th, 2));
    if flags & LOG_TCPSEQ != 0 {
        let _ = write!(m, "SEQ={} ACK={} ", be32(th, 4), be32(th, 8));
    }
    let _ = write!(m, "WINDOW={} ", be16(th, 14));
    let _ = write!(m, "RES=0x{:02x} ", (be32(th, 12) & 0x0F00_0000) >> 22);
    for (bit, name) in [
        (0x80, "CWR"),
        (0x40, "ECE"),
        (0x20, "URG"),
        (0x10, "ACK"),
        (0x08, "PSH"),
        (0x04, "RST"),
        (0x02, "SYN"),
        (0x01, "FIN"),
    ] {
        if th[13] & bit != 0 {
            let _ = write!(m, "{name} ");
        }
    }
    let _ = write!(m, "URGP={} ", be16(th, 18));
    let doff = usize::from(th[12] >> 4) * 4;
    if flags & LOG_TCPOPT != 0 && doff > 20 {
        match get(f, off + 20, doff - 20).filter(|_| len >= doff) {
            Some(op) => {
                m.push_str("OPT (");
                op.iter().for_each(|b| {
                    let _ = write!(m, "{b:02X}");
                });
                m.push_str(") ");
            }
            None => {
                m.push_str("OPT (TRUNCATED)");
                return true;
            }
        }
    }
    false
}

/// `nf_log_dump_udp_header`; true when the line ends here.
fn udp(m: &mut String, f: &[u8], proto: u8, off: usize, len: usize, fragment: bool) -> bool {
    m.push_str(if proto == 17 {
        "PROTO=UDP "
    } else {
        "PROTO=UDPLITE "
    });
    if fragment {
        return false;
    }
    if len < 8 {
        let _ = write!(m, "INCOMPLETE [{len} bytes] ");
        return true;
    }
    let Some(uh) = get(f, off, 8) else {
        m.push_str("TRUNCATED");
        return true;
    };
    let _ = write!(
        m,
        "SPT={} DPT={} LEN={} ",
        be16(uh, 0),
        be16(uh, 2),
        be16(uh, 4)
    );
    false
}

/// `%pI6`: eight groups of four hex digits, nothing compressed.
fn ip6_full(b: &[u8]) -> String {
    let a = Ipv6Addr::from(<[u8; 16]>::try_from(b).unwrap_or([0; 16]));
    let s: Vec<String> = a.segments().iter().map(|g| format!("{g:04x}")).collect();
    s.join(":")
}

/// `dump_ipv6_packet` at `off` (`recurse`: the outer packet, whose ICMPv6 error body is quoted).
fn ipv6(m: &mut String, f: &[u8], off: usize, len: usize, flags: u8, recurse: bool) {
    let Some(ih) = get(f, off, 40) else {
        m.push_str("TRUNCATED");
        return;
    };
    let _ = write!(
        m,
        "SRC={} DST={} ",
        ip6_full(&ih[8..24]),
        ip6_full(&ih[24..40])
    );
    let w = be32(ih, 0);
    let _ = write!(
        m,
        "LEN={} TC={} HOPLIMIT={} FLOWLBL={} ",
        usize::from(be16(ih, 4)) + 40,
        (w & 0x0ff0_0000) >> 20,
        ih[7],
        w & 0x000f_ffff
    );
    let len = if recurse {
        len.min(usize::from(be16(ih, 4)) + 40)
    } else {
        len
    };
    let ipopt = flags & LOG_IPOPT != 0;
    let mut fragment = false;
    let mut ptr = off + 40;
    let mut cur = ih[6];
    // nf_ip6_ext_hdr: hop-by-hop, routing, fragment, ESP, AH, destination options (not NONE).
    while matches!(cur, 0 | 43 | 44 | 50 | 51 | 60) {
        let Some(hp) = get(f, ptr, 2) else {
            m.push_str("TRUNCATED");
            return;
        };
        if ipopt {
            m.push_str("OPT ( ");
        }
        let hdrlen = match cur {
            44 => {
                m.push_str("FRAG:");
                let Some(fh) = get(f, ptr, 8) else {
                    m.push_str("TRUNCATED ");
                    return;
                };
                let fo = be16(fh, 2);
                let _ = write!(m, "{} ", fo & 0xfff8);
                if fo & 1 != 0 {
                    m.push_str("INCOMPLETE ");
                }
                let _ = write!(m, "ID:{:08x} ", be32(fh, 4));
                if fo & 0xfff8 != 0 {
                    fragment = true;
                }
                8
            }
            0 | 43 | 60 => {
                if fragment {
                    if ipopt {
                        m.push(')');
                    }
                    return;
                }
                (usize::from(hp[1]) + 1) * 8
            }
            51 => {
                if ipopt {
                    m.push_str("AH ");
                    if fragment {
                        m.push(')');
                        return;
                    }
                    match get(f, ptr, 12) {
                        Some(ah) => {
                            let _ = write!(m, "SPI=0x{:x} ", be32(ah, 4));
                        }
                        None => {
                            let _ = write!(
                                m,
                                "INCOMPLETE [{} bytes] )",
                                (off + len).saturating_sub(ptr)
                            );
                            return;
                        }
                    }
                }
                (usize::from(hp[1]) + 2) * 4
            }
            _ => {
                // ESP: the rest is encrypted.
                if ipopt {
                    m.push_str("ESP ");
                    if fragment {
                        m.push(')');
                        return;
                    }
                    match get(f, ptr, 4) {
                        Some(eh) => {
                            let _ = write!(m, "SPI=0x{:x} )", be32(eh, 0));
                        }
                        None => {
                            let _ = write!(
                                m,
                                "INCOMPLETE [{} bytes] )",
                                (off + len).saturating_sub(ptr)
                            );
                        }
                    }
                }
                return;
            }
        };
        if ipopt {
            m.push_str(") ");
        }
        cur = hp[0];
        ptr += hdrlen;
    }
    let rest = (off + len).saturating_sub(ptr);
    match cur {
        6 => {
            tcp(m, f, ptr, rest, fragment, flags);
        }
        17 | 136 => {
            udp(m, f, cur, ptr, rest, fragment);
        }
        58 => {
            m.push_str("PROTO=ICMPv6 ");
            if fragment {
                return;
            }
            if rest < 8 {
                let _ = write!(m, "INCOMPLETE [{rest} bytes] ");
                return;
            }
            let Some(ic) = get(f, ptr, 8) else {
                m.push_str("TRUNCATED");
                return;
            };
            let (t, c) = (ic[0], ic[1]);
            let _ = write!(m, "TYPE={t} CODE={c} ");
            match t {
                128 | 129 => {
                    let _ = write!(m, "ID={} SEQ={} ", be16(ic, 4), be16(ic, 6));
                }
                130..=132 => {}
                1..=4 => {
                    if t == 4 {
                        let _ = write!(m, "POINTER={:08x} ", be32(ic, 4));
                    }
                    if recurse {
                        m.push('[');
                        ipv6(m, f, ptr + 8, rest - 8, flags, false);
                        m.push_str("] ");
                    }
                    if t == 2 {
                        let _ = write!(m, "MTU={} ", be32(ic, 4));
                    }
                }
                _ => {}
            }
        }
        p => {
            let _ = write!(m, "PROTO={p} ");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames and the lines the kernel printed for them (`tests/fixtures/log/kernel-lines.txt`).
    fn fixtures() -> Vec<(Vec<u8>, String)> {
        let text = include_str!("../../tests/fixtures/log/kernel-lines.txt");
        let mut out = Vec::new();
        let mut frame = None;
        for l in text.lines() {
            if let Some(h) = l.strip_prefix("frame ") {
                frame = Some(
                    (0..h.len())
                        .step_by(2)
                        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
                        .collect::<Vec<u8>>(),
                );
            } else if let Some(line) = l.strip_prefix("line ") {
                out.push((frame.take().unwrap(), line.to_string()));
            }
        }
        out
    }

    #[test]
    fn log_line_equals_what_the_kernel_printed() {
        let fx = fixtures();
        assert_eq!(fx.len(), 9);
        for (frame, want) in fx {
            let prefix = &want[..want.find("IN=").unwrap()];
            let flags = match prefix {
                "twfx-tcp: " => LOG_TCPSEQ | LOG_TCPOPT | LOG_IPOPT,
                "twfx-tcp6: " => LOG_TCPSEQ | LOG_TCPOPT,
                "twfx-udpopt: " => LOG_IPOPT,
                _ => 0,
            };
            let got = line(&LogInput {
                prefix,
                in_iface: Some("vb"),
                out_iface: None,
                frame: &frame,
                frame_len: frame.len(),
                flags,
            });
            assert_eq!(got, want);
        }
    }

    #[test]
    fn log_line_flags_and_truncation() {
        let (frame, _) = fixtures().remove(2);
        let at = |flags, n: usize| {
            line(&LogInput {
                prefix: "p ",
                in_iface: None,
                out_iface: Some("eth0"),
                frame: &frame[..n],
                frame_len: frame.len(),
                flags,
            })
        };
        insta::assert_snapshot!(
            [at(0, frame.len()), at(LOG_TCPOPT, 60), at(0, 40), at(0, 20)].join("\n"),
            @r"
        p IN= OUT=eth0 SRC=10.77.0.1 DST=10.77.0.2 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=63487 DF PROTO=TCP SPT=34050 DPT=22 WINDOW=64240 RES=0x00 SYN URGP=0 
        p IN= OUT=eth0 SRC=10.77.0.1 DST=10.77.0.2 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=63487 DF PROTO=TCP SPT=34050 DPT=22 WINDOW=64240 RES=0x00 SYN URGP=0 OPT (TRUNCATED)
        p IN= OUT=eth0 SRC=10.77.0.1 DST=10.77.0.2 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=63487 DF PROTO=TCP TRUNCATED
        p IN= OUT=eth0 TRUNCATED
        "
        );
    }
}
