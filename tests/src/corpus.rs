//! The shared test corpus: `tests/corpus/*.yaml`, one file per case (a ruleset, frames, and what must
//! happen to each), run by every engine — `interp` and `sim` always, the kernel when root
//! (`tests/tests/corpus.rs`). Every regression case goes here.
//!
//! A case file:
//! ```yaml
//! about: why the case exists (the bug, the iptables behaviour it pins)
//! ruleset: |            # iptables-save text (or YAML with `format: yaml`)
//!   *filter
//!   :INPUT DROP [0:0]
//!   -A INPUT -p tcp --dport 22 -j ACCEPT
//!   COMMIT
//! packets:
//!   - packet: tcp 192.0.2.1:40000 -> 10.0.0.1:22
//!     expect: accept rule INPUT 1
//! ```
//! `datapath: false` marks a ruleset the datapath cannot compile yet (only `interp` runs it).
//! `packet`: `PROTO SRC[:SPORT] -> DST[:DPORT]` then any of `frag OFFSET` (8-byte units),
//! `truncate N` (transport header cut to N bytes), `options WORDS` (IP options), `ethertype 0xNNNN`,
//! `ihl N`, `pad` (Ethernet padding to 60 bytes), `vlan 0xTPID[:VID]` (a VLAN tag before the EtherType;
//! repeat for more, outermost first), and `FIELD VALUE` for a header field of the field table
//! the frame does not choose otherwise (`length 1500`: written by `packet::write_value`). PROTO is `tcp`,
//! `udp`, `icmp`, `icmpv6` or a number.
//! IPv6 addresses make an IPv6 frame (`tcp [2001:db8::1]:40000 -> [2001:db8::2]:22`, brackets around an
//! address with a port); there `ext NAME` adds an extension header in order before the upper-layer
//! header (`hop`, `routing`, `dest`, `ah`, `frag0`: a first fragment; `frag OFFSET` adds a non-first
//! fragment header), `truncate N` and `pad` work as for IPv4, `cut N` ends the packet (frame and
//! payload length) N bytes after the IPv6 header, and `FIELD VALUE` as for IPv4 (`icmp_type 33024`).
//! `logs` (optional): the LOG/NFLOG rules that report the packet, in walk order, as `[CHAIN POSITION, …]`.
//! `expect`: `VERDICT rule CHAIN POSITION`, `VERDICT policy CHAIN`, `drop hotdrop CHAIN POSITION`,
//! `accept not_ipv4`, `accept other_family`, `drop malformed`, `drop fail_closed` — compared with the
//! [`Outcome`]'s verdict, reason, chain name and position.
use anyhow::{bail, Context, Result};
use std::net::{IpAddr, Ipv6Addr};
use std::path::{Path, PathBuf};
use tailwall_compiler::diag::SourceFile;
use tailwall_compiler::ir::{Field, Ruleset};
use tailwall_compiler::outcome::{Decided, Outcome};
use tailwall_compiler::packet::{
    build_frame, build_frame_v6, ipv4_checksum, ipv6_ext_header, l4_header, write_value, ETH_HLEN,
    IPV6_HLEN, NEXTHDR_AUTH, NEXTHDR_DEST, NEXTHDR_FRAGMENT, NEXTHDR_HOP, NEXTHDR_ROUTING,
};

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    about: String,
    #[serde(default)]
    format: Option<String>,
    /// `false`: the datapath cannot compile this ruleset yet (only `interp` runs it); the runner
    /// fails when that changes, so the flag is removed then.
    #[serde(default = "yes")]
    datapath: bool,
    ruleset: String,
    packets: Vec<PacketFile>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PacketFile {
    packet: String,
    expect: String,
    /// The LOG/NFLOG rules that report the packet, in walk order, as `CHAIN POSITION`.
    #[serde(default)]
    logs: Option<Vec<String>>,
}

/// One frame of a case and what must happen to it.
#[derive(Clone, Debug)]
pub struct Probe {
    /// The `packet:` line, for reports.
    pub spec: String,
    pub frame: Vec<u8>,
    /// The `expect:` line.
    pub expect: String,
    /// The `logs:` list (`CHAIN POSITION` of each LOG/NFLOG rule that reports the packet, in walk
    /// order); `None`: not checked.
    pub logs: Option<Vec<String>>,
}

/// One corpus file, parsed: its ruleset lowered by the front end, its frames built.
#[derive(Debug)]
pub struct Case {
    pub path: PathBuf,
    pub about: String,
    /// The datapath compiles the ruleset (the `datapath:` key, default true).
    pub datapath: bool,
    pub ruleset: Ruleset,
    pub probes: Vec<Probe>,
}

/// The corpus directory (`tests/corpus`).
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

/// Every case of the corpus, sorted by file name.
///
/// # Errors
/// A file that cannot be read or parsed, a ruleset the front end refuses, a malformed packet line.
pub fn load_all() -> Result<Vec<Case>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir())
        .context("reading tests/corpus")?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    paths.retain(|p| p.extension().is_some_and(|e| e == "yaml"));
    paths.sort();
    paths.iter().map(|p| load(p)).collect()
}

/// One case file.
///
/// # Errors
/// As [`load_all`].
pub fn load(path: &Path) -> Result<Case> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    let file: CaseFile =
        serde_saphyr::from_str(&text).with_context(|| format!("{}", path.display()))?;
    let name = match file.format.as_deref() {
        None | Some("iptables") => "ruleset.rules",
        Some("yaml") => "ruleset.yaml",
        Some(other) => bail!("{}: unknown format `{other}`", path.display()),
    };
    let src = SourceFile::new(name, file.ruleset);
    let lowered = tailwall_compiler::frontend::load(&src).map_err(|ds| {
        anyhow::anyhow!(
            "{}: the front end refuses the ruleset: {}",
            path.display(),
            ds.iter()
                .map(|d| d.message.clone())
                .collect::<Vec<_>>()
                .join("; ")
        )
    })?;
    let probes = file
        .packets
        .into_iter()
        .map(|p| {
            Ok(Probe {
                frame: frame(&p.packet)
                    .with_context(|| format!("{}: packet `{}`", path.display(), p.packet))?,
                spec: p.packet,
                expect: p.expect,
                logs: p.logs,
            })
        })
        .collect::<Result<_>>()?;
    Ok(Case {
        path: path.to_path_buf(),
        about: file.about,
        datapath: file.datapath,
        ruleset: lowered.ruleset,
        probes,
    })
}

/// `ADDR`, `ADDR:PORT` (IPv4), `V6ADDR` or `[V6ADDR]:PORT`.
fn endpoint(s: &str) -> Result<(IpAddr, u16)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (a, p) = rest.split_once("]:").context("`[ADDR]:PORT`")?;
        return Ok((IpAddr::V6(a.parse()?), p.parse()?));
    }
    if s.matches(':').count() > 1 {
        return Ok((IpAddr::V6(s.parse()?), 0));
    }
    match s.split_once(':') {
        Some((a, p)) => Ok((IpAddr::V4(a.parse()?), p.parse()?)),
        None => Ok((IpAddr::V4(s.parse()?), 0)),
    }
}

/// The IPv6 frame of a `packet:` line: extension headers (`ext NAME`, `frag OFFSET`) in order, then
/// the upper-layer header.
fn frame_v6(
    proto: u8,
    (s, sport): (Ipv6Addr, u16),
    (d, dport): (Ipv6Addr, u16),
    rest: &[&str],
) -> Result<Vec<u8>> {
    let mut exts: Vec<(u8, u16, bool)> = Vec::new();
    let (mut truncate, mut pad, mut cut) = (None, false, None);
    let mut header: Vec<(Field, u32)> = Vec::new();
    let mut it = rest.iter();
    while let Some(w) = it.next() {
        let mut arg = || it.next().context("missing value");
        match *w {
            "ext" => exts.push(match *arg()? {
                "hop" => (NEXTHDR_HOP, 0, false),
                "routing" => (NEXTHDR_ROUTING, 0, false),
                "dest" => (NEXTHDR_DEST, 0, false),
                "ah" => (NEXTHDR_AUTH, 0, false),
                "frag0" => (NEXTHDR_FRAGMENT, 0, true),
                other => bail!("unknown extension header `{other}`"),
            }),
            "frag" => exts.push((NEXTHDR_FRAGMENT, arg()?.parse()?, false)),
            "truncate" => truncate = Some(arg()?.parse::<usize>()?),
            "cut" => cut = Some(arg()?.parse::<usize>()?),
            "pad" => pad = true,
            name => match Field::from_name(name) {
                Some(f) => header.push((f, arg()?.parse()?)),
                None => bail!("unknown word `{name}` for an IPv6 packet"),
            },
        }
    }
    let mut upper = if proto == 6 || proto == 17 {
        l4_header(proto, sport, dport, b"")
    } else if proto == 58 {
        vec![128, 0, 0, 0, 0, 0, 0, 0]
    } else {
        vec![0; 8]
    };
    if let Some(n) = truncate {
        upper.truncate(n);
    }
    let mut payload = Vec::new();
    for (i, &(kind, off, more)) in exts.iter().enumerate() {
        let next = exts.get(i + 1).map_or(proto, |e| e.0);
        payload.extend(ipv6_ext_header(kind, next, off, more));
    }
    payload.extend(upper);
    let first = exts.first().map_or(proto, |e| e.0);
    let mac = [2, 0, 0, 0, 0, 1];
    let mut f = build_frame_v6(mac, mac, s, d, first, &payload);
    for (field, v) in header {
        if !write_value(&mut f, field, v) {
            bail!("`{field} {v}` cannot be written into this frame");
        }
    }
    if let Some(n) = cut {
        f.truncate(ETH_HLEN + IPV6_HLEN + n);
        f[ETH_HLEN + 4..ETH_HLEN + 6].copy_from_slice(&(n as u16).to_be_bytes());
    }
    if pad && f.len() < 60 {
        f.resize(60, 0);
    }
    Ok(f)
}

/// Build the frame of a `packet:` line (see the module docs).
///
/// # Errors
/// A line that does not follow the grammar.
pub fn frame(spec: &str) -> Result<Vec<u8>> {
    let words: Vec<&str> = spec.split_whitespace().collect();
    let [proto, src, arrow, dst, rest @ ..] = words.as_slice() else {
        bail!("expected `PROTO SRC -> DST [...]`");
    };
    if *arrow != "->" {
        bail!("expected `->` between source and destination");
    }
    let proto: u8 = match *proto {
        "tcp" => 6,
        "udp" => 17,
        "icmp" => 1,
        "icmpv6" => 58,
        n => n.parse().context("protocol")?,
    };
    let ((s, sport), (d, dport)) = match (endpoint(src)?, endpoint(dst)?) {
        ((IpAddr::V4(s), sp), (IpAddr::V4(d), dp)) => ((s, sp), (d, dp)),
        ((IpAddr::V6(s), sp), (IpAddr::V6(d), dp)) => {
            return frame_v6(proto, (s, sp), (d, dp), rest)
        }
        _ => bail!("source and destination of different families"),
    };
    let (mut frag, mut truncate, mut options, mut ethertype, mut ihl, mut pad) =
        (0u16, None, 0u8, None, None, false);
    let mut header: Vec<(Field, u32)> = Vec::new();
    let mut vlans: Vec<(u16, u16)> = Vec::new();
    let mut it = rest.iter();
    while let Some(w) = it.next() {
        let mut arg = || it.next().context("missing value");
        match *w {
            "frag" => frag = arg()?.parse()?,
            "truncate" => truncate = Some(arg()?.parse::<usize>()?),
            "options" => options = arg()?.parse()?,
            "ethertype" => {
                ethertype = Some(u16::from_str_radix(arg()?.trim_start_matches("0x"), 16)?)
            }
            "ihl" => ihl = Some(arg()?.parse::<u8>()?),
            "pad" => pad = true,
            "vlan" => {
                let v = arg()?;
                let (tpid, vid) = v.split_once(':').unwrap_or((v, "0"));
                vlans.push((
                    u16::from_str_radix(tpid.trim_start_matches("0x"), 16)?,
                    vid.parse()?,
                ));
            }
            name => match Field::from_name(name) {
                Some(f) => header.push((f, arg()?.parse()?)),
                None => bail!("unknown word `{name}`"),
            },
        }
    }
    let mut payload = if proto == 6 || proto == 17 {
        l4_header(proto, sport, dport, b"")
    } else if proto == 1 {
        vec![8, 0, 0, 0, 0, 0, 0, 0]
    } else {
        vec![0; 8]
    };
    if let Some(n) = truncate {
        payload.truncate(n);
    }
    let mac = [2, 0, 0, 0, 0, 1];
    let mut f = build_frame(mac, mac, s, d, proto, frag, &payload);
    if options > 0 {
        let at = ETH_HLEN + 20;
        let n = options as usize * 4;
        let mut opt = vec![1u8; n];
        opt[n - 1] = 0;
        f.splice(at..at, opt);
        f[ETH_HLEN] = 0x40 | (5 + options);
        let tot = u16::from_be_bytes([f[ETH_HLEN + 2], f[ETH_HLEN + 3]]) + n as u16;
        f[ETH_HLEN + 2..ETH_HLEN + 4].copy_from_slice(&tot.to_be_bytes());
    }
    if let Some(v) = ihl {
        f[ETH_HLEN] = 0x40 | (v & 0x0f);
    }
    let hlen = ((f[ETH_HLEN] & 0x0f) as usize * 4).clamp(20, f.len() - ETH_HLEN);
    f[ETH_HLEN + 10..ETH_HLEN + 12].fill(0);
    let c = ipv4_checksum(&f[ETH_HLEN..ETH_HLEN + hlen]);
    f[ETH_HLEN + 10..ETH_HLEN + 12].copy_from_slice(&c.to_be_bytes());
    for (field, v) in header {
        if !write_value(&mut f, field, v) {
            bail!("`{field} {v}` cannot be written into this frame");
        }
    }
    if let Some(et) = ethertype {
        f[12..14].copy_from_slice(&et.to_be_bytes());
    }
    let tags: Vec<u8> = vlans
        .iter()
        .flat_map(|(tpid, vid)| [tpid.to_be_bytes(), (vid & 0x0fff).to_be_bytes()].concat())
        .collect();
    f.splice(12..12, tags);
    if pad && f.len() < 60 {
        f.resize(60, 0);
    }
    Ok(f)
}

/// Does `o` (on `rs`) match the `expect:` line? `Err` explains the difference.
///
/// # Errors
/// The outcome differs, or the line does not follow the grammar.
pub fn check(rs: &Ruleset, expect: &str, o: &Outcome) -> Result<()> {
    let chain = o.chain().and_then(|c| rs.chain(c)).map(|c| c.name.as_str());
    let got = match (o.decided, chain) {
        (Decided::Rule { position, .. }, Some(c)) => {
            format!("{} rule {c} {position}", o.verdict.as_str())
        }
        (Decided::Policy { .. }, Some(c)) => format!("{} policy {c}", o.verdict.as_str()),
        (Decided::Hotdrop { position, .. }, Some(c)) => {
            format!("{} hotdrop {c} {position}", o.verdict.as_str())
        }
        _ => format!("{} {}", o.verdict.as_str(), o.reason()),
    };
    let want = expect.split_whitespace().collect::<Vec<_>>().join(" ");
    if got != want {
        bail!("expected `{want}`, got `{got}` ({o:?})");
    }
    Ok(())
}
