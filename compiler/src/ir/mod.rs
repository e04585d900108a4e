//! The IR: one definition of a ruleset for both front ends (iptables-save, YAML).
//!
//! A [`Ruleset`] holds the `filter` table's built-in chains (`hook = Some`, `policy = Some`) and user
//! chains (`hook = None`, `policy = None`), in order of declaration, plus the named sets its rules
//! referenced. Semantics (implemented by [`crate::interp`]) are iptables': rules are tried in order; a
//! rule matches when every match holds; a match holds when some of its tests contains the packet's value,
//! XOR `negated`; `Jump` pushes a return point and continues in a user chain, `Goto` continues without
//! pushing, `Return` or the end of a user chain pops, `Return` or the end of a built-in chain applies its
//! policy.
//!
//! Guarantees (checked by [`verify`], which tests and debug builds run after every pass):
//! 1. rule ids are `r0..rN` in order of appearance across all chains; chain ids are `c0..cM` in order;
//! 2. each rule's `position` is its 1-based index in its chain (as `iptables -L --line-numbers` shows);
//! 3. every test fits its field: prefixes only on address fields, without host bits, `len` at most the
//!    field's width (32 for `src_ip`/`dst_ip`, 128 for `src_ip6`/`dst_ip6`);
//!    exact values and ranges (`lo <= hi`) within the field's width, never on interface fields;
//!    [`Test::Iface`] only on interface fields, its spelling (`eth0`, `eth+`, `+`) at most 15 bytes
//!    (IFNAMSIZ - 1), the name empty only with the wildcard (`+`: any interface);
//! 4. a rule matches each field at most once, matches sorted by field; every match has at least one test;
//! 5. a rule with a transport field (`src_port`, `dst_port`, `tcp_flags`, `icmp_type`) also matches
//!    `proto`, not negated, with only the tests of [`Field::l4_protos_in`] the ruleset's family (tcp
//!    and udp for ports, tcp for the flags, icmp / ipv6-icmp for the ICMP type) — the
//!    `-m tcp`/`-m udp`/`-m multiport`/`-m icmp`/`-m icmp6` modules require it;
//! 6. a chain has a hook iff it has a policy; at most one chain per hook; chain names are unique;
//! 7. jump and goto targets exist and are user chains; the chain graph (jump and goto edges) has no
//!    cycle and no path longer than [`MAX_CALL_DEPTH`] edges (iptables rejects loops with ELOOP);
//! 8. a match with `set: Some(name)` names a set of [`Ruleset::sets`] whose elements are exactly the
//!    match's tests and whose kind fits the field; set names are unique and sets are non-empty;
//! 9. the built-in INPUT chain does not test `out_iface`, OUTPUT does not test `in_iface` (iptables:
//!    "Can't use -o with INPUT");
//! 10. address fields belong to the ruleset's family ([`Field::family`]): an IPv4 ruleset tests
//!     `src_ip`/`dst_ip` only, an IPv6 one `src_ip6`/`dst_ip6` only;
//! 11. a `Log(id)` action names an entry of [`Ruleset::logs`] within iptables' limits (level 0..=7,
//!     known `LOG_*` flags, prefix at most [`MAX_LOG_PREFIX`] / [`MAX_NFLOG_PREFIX`] bytes);
//! 12. a `Reject` action's kind answers the ruleset's family (`tcp-reset`: both) and `tcp-reset`
//!     only on a rule matching `proto` exactly tcp, not negated (the REJECT targets' checkentry);
//!     no policy is `Reject`.
//!
//! Thrown away relative to the source: token order, spelling of options, `-m` module names (kept only as
//! the field constraints they impose), counters (kept in `Rule::counters` for reports only).
pub mod field;
pub mod graph;

pub use field::{Field, FieldInfo, Lookup, FIELDS};

use crate::diag::Span;
use serde::Serialize;
use std::fmt::{self, Write as _};
use std::net::{Ipv4Addr, Ipv6Addr};
use tailwall_abi as abi;

/// Deepest nesting of jumps/gotos a ruleset may have: the longest path of jump and goto edges between
/// chains. iptables itself bounds the call stack by the number of chains; 32 keeps interp's stack and
/// any future datapath inlining small.
pub const MAX_CALL_DEPTH: usize = 32;

/// Longest interface name (IFNAMSIZ 16 with the NUL).
pub const MAX_IFACE_LEN: usize = 15;

/// Longest `--log-prefix` (`struct xt_log_info.prefix[30]` with the NUL).
pub const MAX_LOG_PREFIX: usize = 29;
/// Longest `--nflog-prefix` (`struct xt_nflog_info.prefix[64]` with the NUL).
pub const MAX_NFLOG_PREFIX: usize = 63;

/// A rule's identity within one [`Ruleset`]: its index in order of appearance across all chains
/// (invariant 1), printed `r0`, `r1`, …; the key of counters and reports (the datapath's positions
/// map back to it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct RuleId(pub u32);
/// A chain's identity within one [`Ruleset`]: its index in [`Ruleset::chains`] (invariant 1),
/// printed `c0`, `c1`, ….
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ChainId(pub u32);

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r{}", self.0)
    }
}
impl fmt::Display for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}", self.0)
    }
}

/// A log target's parameters within one [`Ruleset`]: its index in [`Ruleset::logs`], printed `l0`,
/// `l1`, …. The datapath's records carry the LOG rule's position instead; the generation's record
/// maps it to the rule and its parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct LogId(pub u32);

impl fmt::Display for LogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "l{}", self.0)
    }
}

/// `XT_LOG_TCPSEQ` (`include/uapi/linux/netfilter/xt_LOG.h`): `--log-tcp-sequence`.
pub const LOG_TCPSEQ: u8 = 0x01;
/// `XT_LOG_TCPOPT`: `--log-tcp-options`.
pub const LOG_TCPOPT: u8 = 0x02;
/// `XT_LOG_IPOPT`: `--log-ip-options` (IPv4 options; IPv6 extension headers with ip6tables).
pub const LOG_IPOPT: u8 = 0x04;
/// `XT_LOG_UID`: `--log-uid` (the socket's owner; no socket is known at XDP: documented, never
/// printed there).
pub const LOG_UID: u8 = 0x08;
/// `XT_LOG_MACDECODE`: `--log-macdecode` (`MACSRC= MACDST= MACPROTO=` instead of `MAC=`).
pub const LOG_MACDECODE: u8 = 0x20;
/// Every `LOG_*` flag bit.
pub const LOG_FLAGS: u8 = LOG_TCPSEQ | LOG_TCPOPT | LOG_IPOPT | LOG_UID | LOG_MACDECODE;

/// Which target reports the packet, with its own options.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase", tag = "target")]
pub enum LogKind {
    /// `-j LOG` (`xt_LOG.c`): a kernel log line at a syslog level.
    Log {
        /// `--log-level`, the syslog level 0 (emerg) ..= 7 (debug); iptables' default 4 (warning).
        level: u8,
        /// `LOG_*` bits (`--log-tcp-sequence`, `--log-tcp-options`, `--log-ip-options`, `--log-uid`,
        /// `--log-macdecode`).
        flags: u8,
    },
    /// `-j NFLOG` (`xt_NFLOG.c`): the packet to the nfnetlink_log group (tailwall: its ring buffer,
    /// printed in LOG's format; there is no nfnetlink_log socket).
    Nflog {
        /// `--nflog-group`, 0..=65535.
        group: u16,
        /// `--nflog-range`/`--nflog-size`: bytes of the packet to copy (0: the whole packet).
        range: u32,
        /// `--nflog-threshold`: packets the kernel queues before sending (no meaning for a ring
        /// buffer: kept for printing).
        threshold: u16,
    },
}

/// One log target's parameters ([`Ruleset::logs`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub struct LogSpec {
    /// `LOG` or `NFLOG` and their options.
    #[serde(flatten)]
    pub kind: LogKind,
    /// `--log-prefix` (at most 29 bytes) / `--nflog-prefix` (at most 63): printed first on the line.
    pub prefix: String,
}

impl LogSpec {
    /// `-j LOG` with iptables' defaults (level 4, no flags, no prefix).
    pub fn log(prefix: &str) -> LogSpec {
        LogSpec {
            kind: LogKind::Log { level: 4, flags: 0 },
            prefix: prefix.to_string(),
        }
    }
    /// The syslog level the line is printed at. NFLOG has none (nfnetlink_log sends the packet to a
    /// netlink group): its lines are printed at 4 (warning), LOG's default.
    pub fn level(&self) -> u8 {
        match self.kind {
            LogKind::Log { level, .. } => level,
            LogKind::Nflog { .. } => 4,
        }
    }
    /// The `LOG_*` flags (NFLOG: none).
    pub fn flags(&self) -> u8 {
        match self.kind {
            LogKind::Log { flags, .. } => flags,
            LogKind::Nflog { .. } => 0,
        }
    }
}

/// The address family a ruleset filters: an iptables (IPv4) or an ip6tables (IPv6) ruleset. Part of the
/// ruleset in both languages (the iptables-save header / `family:` in YAML), so an IPv6 ruleset never
/// becomes an IPv4 one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Family {
    /// IPv4 (`iptables`, `*filter` of `iptables-save`); the default.
    #[default]
    #[serde(rename = "ipv4")]
    V4,
    /// IPv6 (`ip6tables`, `*filter` of `ip6tables-save`).
    #[serde(rename = "ipv6")]
    V6,
}

impl Family {
    /// `ipv4` / `ipv6`, as the dump and YAML write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::V4 => "ipv4",
            Family::V6 => "ipv6",
        }
    }
    /// The iptables tool of the family (`iptables` / `ip6tables`).
    pub fn tool(self) -> &'static str {
        match self {
            Family::V4 => "iptables",
            Family::V6 => "ip6tables",
        }
    }
}

/// Netfilter hook a built-in chain of the `filter` table is attached to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Hook {
    /// NF_INET_LOCAL_IN: packets addressed to this host (chain `INPUT`; input interface only).
    Input,
    /// NF_INET_FORWARD: packets routed through this host (chain `FORWARD`; both interfaces).
    Forward,
    /// NF_INET_LOCAL_OUT: packets generated by this host (chain `OUTPUT`; output interface only).
    Output,
}

impl Hook {
    /// The three hooks of the `filter` table, in netfilter's hook order (INPUT, FORWARD, OUTPUT).
    pub const ALL: [Hook; 3] = [Hook::Input, Hook::Forward, Hook::Output];

    /// The built-in chain's name (`INPUT`, `FORWARD`, `OUTPUT`).
    pub fn chain_name(self) -> &'static str {
        match self {
            Hook::Input => "INPUT",
            Hook::Forward => "FORWARD",
            Hook::Output => "OUTPUT",
        }
    }
    /// Lower-case spelling (`input`, …), as the dump and YAML write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Hook::Input => "input",
            Hook::Forward => "forward",
            Hook::Output => "output",
        }
    }
    /// The hook whose built-in chain is called `name` (`INPUT`, `FORWARD`, `OUTPUT`, case-sensitive as
    /// in iptables); `None` for any other name (a user chain).
    pub fn from_chain_name(name: &str) -> Option<Hook> {
        Hook::ALL.into_iter().find(|h| h.chain_name() == name)
    }
    /// Whether packets at this hook have an input / output interface (INPUT: in only, OUTPUT: out
    /// only, FORWARD: both).
    pub fn has_iface(self, field: Field) -> bool {
        matches!(
            (self, field),
            (Hook::Input, Field::InIface)
                | (Hook::Output, Field::OutIface)
                | (Hook::Forward, Field::InIface | Field::OutIface)
        )
    }
}

/// A final decision on a packet: a built-in chain's policy or the effect of an `ACCEPT`/`DROP`/
/// `REJECT` rule. A policy is never `Reject` (iptables' policies are ACCEPT and DROP).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Let the packet through (NF_ACCEPT; XDP_PASS / TC_ACT_OK in the datapath).
    Accept,
    /// Discard the packet silently (NF_DROP; XDP_DROP / TC_ACT_SHOT in the datapath).
    Drop,
    /// Discard the packet and answer its sender with the kind's reply (`-j REJECT`; the reply is a
    /// locally generated packet that itself traverses OUTPUT, `docs/decisions/0015-reject.md`).
    Reject(RejectWith),
}

impl Verdict {
    /// Lower-case spelling (`accept`, `drop`, `reject icmp-port-unreachable`, `reject tcp-reset`),
    /// as the dump, the JSON outputs and `diff` write it: two reject kinds are different verdicts.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Accept => "accept",
            Verdict::Drop => "drop",
            Verdict::Reject(k) => match k {
                RejectWith::IcmpNetUnreachable => "reject icmp-net-unreachable",
                RejectWith::IcmpHostUnreachable => "reject icmp-host-unreachable",
                RejectWith::IcmpProtoUnreachable => "reject icmp-proto-unreachable",
                RejectWith::IcmpPortUnreachable => "reject icmp-port-unreachable",
                RejectWith::IcmpNetProhibited => "reject icmp-net-prohibited",
                RejectWith::IcmpHostProhibited => "reject icmp-host-prohibited",
                RejectWith::IcmpAdminProhibited => "reject icmp-admin-prohibited",
                RejectWith::Icmp6NoRoute => "reject icmp6-no-route",
                RejectWith::Icmp6AdmProhibited => "reject icmp6-adm-prohibited",
                RejectWith::Icmp6AddrUnreachable => "reject icmp6-addr-unreachable",
                RejectWith::Icmp6PortUnreachable => "reject icmp6-port-unreachable",
                RejectWith::Icmp6PolicyFail => "reject icmp6-policy-fail",
                RejectWith::Icmp6RejectRoute => "reject icmp6-reject-route",
                RejectWith::TcpReset => "reject tcp-reset",
            },
        }
    }
    /// iptables' target name (`ACCEPT`, `DROP`, `REJECT`).
    pub fn target(self) -> &'static str {
        match self {
            Verdict::Accept => "ACCEPT",
            Verdict::Drop => "DROP",
            Verdict::Reject(_) => "REJECT",
        }
    }
    /// Whether the packet itself goes on (only `Accept`; `Drop` and `Reject` discard it).
    pub fn passes(self) -> bool {
        self == Verdict::Accept
    }
    /// A distinct bit per verdict (accept 0, drop 1, reject kinds 2..16), for sets of verdicts.
    pub fn bit(self) -> u32 {
        match self {
            Verdict::Accept => 1,
            Verdict::Drop => 2,
            Verdict::Reject(k) => 4 << k.index(),
        }
    }
}

impl Serialize for Verdict {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The reply a `-j REJECT` rule sends (`--reject-with`, `ipt_REJECT.h` / `ip6t_REJECT.h`): an ICMP or
/// ICMPv6 destination-unreachable error of one code, or a TCP reset. Part of the verdict, so that two
/// rules rejecting with different replies behave differently (`diff`), and of the datapath's
/// `RuleMeta` ([`RejectWith::abi`]).
///
/// Source: `iptables-extensions(8)` REJECT, `net/ipv4/netfilter/ipt_REJECT.c`,
/// `net/ipv6/netfilter/ip6t_REJECT.c`; codes from `include/uapi/linux/icmp.h` and `icmpv6.h`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectWith {
    /// `icmp-net-unreachable`: ICMP type 3 code 0 (IPv4).
    IcmpNetUnreachable,
    /// `icmp-host-unreachable`: ICMP type 3 code 1 (IPv4).
    IcmpHostUnreachable,
    /// `icmp-proto-unreachable`: ICMP type 3 code 2 (IPv4).
    IcmpProtoUnreachable,
    /// `icmp-port-unreachable`: ICMP type 3 code 3 (IPv4); iptables' default.
    IcmpPortUnreachable,
    /// `icmp-net-prohibited`: ICMP type 3 code 9 (IPv4).
    IcmpNetProhibited,
    /// `icmp-host-prohibited`: ICMP type 3 code 10 (IPv4).
    IcmpHostProhibited,
    /// `icmp-admin-prohibited`: ICMP type 3 code 13 (IPv4).
    IcmpAdminProhibited,
    /// `icmp6-no-route`: ICMPv6 type 1 code 0 (IPv6).
    Icmp6NoRoute,
    /// `icmp6-adm-prohibited`: ICMPv6 type 1 code 1 (IPv6).
    Icmp6AdmProhibited,
    /// `icmp6-addr-unreachable`: ICMPv6 type 1 code 3 (IPv6).
    Icmp6AddrUnreachable,
    /// `icmp6-port-unreachable`: ICMPv6 type 1 code 4 (IPv6); ip6tables' default.
    Icmp6PortUnreachable,
    /// `icmp6-policy-fail`: ICMPv6 type 1 code 5 (IPv6).
    Icmp6PolicyFail,
    /// `icmp6-reject-route`: ICMPv6 type 1 code 6 (IPv6).
    Icmp6RejectRoute,
    /// `tcp-reset`: a TCP RST (both families; only on a rule matching `-p tcp`, as the targets'
    /// checkentry requires).
    TcpReset,
}

impl RejectWith {
    /// Every kind, in ABI-code order.
    pub const ALL: [RejectWith; 14] = [
        RejectWith::IcmpNetUnreachable,
        RejectWith::IcmpHostUnreachable,
        RejectWith::IcmpProtoUnreachable,
        RejectWith::IcmpPortUnreachable,
        RejectWith::IcmpNetProhibited,
        RejectWith::IcmpHostProhibited,
        RejectWith::IcmpAdminProhibited,
        RejectWith::Icmp6NoRoute,
        RejectWith::Icmp6AdmProhibited,
        RejectWith::Icmp6AddrUnreachable,
        RejectWith::Icmp6PortUnreachable,
        RejectWith::Icmp6PolicyFail,
        RejectWith::Icmp6RejectRoute,
        RejectWith::TcpReset,
    ];

    /// The canonical spelling `iptables-save`/`ip6tables-save` print (`icmp-port-unreachable`,
    /// `tcp-reset`, …); also the YAML `with:` value.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectWith::IcmpNetUnreachable => "icmp-net-unreachable",
            RejectWith::IcmpHostUnreachable => "icmp-host-unreachable",
            RejectWith::IcmpProtoUnreachable => "icmp-proto-unreachable",
            RejectWith::IcmpPortUnreachable => "icmp-port-unreachable",
            RejectWith::IcmpNetProhibited => "icmp-net-prohibited",
            RejectWith::IcmpHostProhibited => "icmp-host-prohibited",
            RejectWith::IcmpAdminProhibited => "icmp-admin-prohibited",
            RejectWith::Icmp6NoRoute => "icmp6-no-route",
            RejectWith::Icmp6AdmProhibited => "icmp6-adm-prohibited",
            RejectWith::Icmp6AddrUnreachable => "icmp6-addr-unreachable",
            RejectWith::Icmp6PortUnreachable => "icmp6-port-unreachable",
            RejectWith::Icmp6PolicyFail => "icmp6-policy-fail",
            RejectWith::Icmp6RejectRoute => "icmp6-reject-route",
            RejectWith::TcpReset => "tcp-reset",
        }
    }

    /// The kind spelled `name` in a ruleset of `family`: the canonical spellings of that family and
    /// the aliases the iptables/ip6tables extensions accept (`port-unreach`, `tcp-rst`, `no-route`,
    /// …, `libipt_REJECT.c` / `libip6t_REJECT.c`). `None` for a name of the other family or unknown.
    pub fn from_name(name: &str, family: Family) -> Option<RejectWith> {
        let alias = match (family, name) {
            (_, "tcp-rst") => "tcp-reset",
            (Family::V4, "net-unreach") => "icmp-net-unreachable",
            (Family::V4, "host-unreach") => "icmp-host-unreachable",
            (Family::V4, "proto-unreach") => "icmp-proto-unreachable",
            (Family::V4, "port-unreach") => "icmp-port-unreachable",
            (Family::V4, "net-prohib") => "icmp-net-prohibited",
            (Family::V4, "host-prohib") => "icmp-host-prohibited",
            (Family::V4, "admin-prohib") => "icmp-admin-prohibited",
            (Family::V6, "no-route") => "icmp6-no-route",
            (Family::V6, "adm-prohibited") => "icmp6-adm-prohibited",
            (Family::V6, "addr-unreach") => "icmp6-addr-unreachable",
            (Family::V6, "port-unreach") => "icmp6-port-unreachable",
            (Family::V6, "policy-fail") => "icmp6-policy-fail",
            (Family::V6, "reject-route") => "icmp6-reject-route",
            (_, n) => n,
        };
        RejectWith::ALL
            .into_iter()
            .find(|k| k.as_str() == alias && k.family().is_none_or(|f| f == family))
    }

    /// The family whose packets the reply answers: `None` for `tcp-reset` (both).
    pub fn family(self) -> Option<Family> {
        match self {
            RejectWith::TcpReset => None,
            k if (k as u8) < RejectWith::Icmp6NoRoute as u8 => Some(Family::V4),
            _ => Some(Family::V6),
        }
    }

    /// The default of a family (`--reject-with` omitted): port unreachable.
    pub fn default_for(family: Family) -> RejectWith {
        match family {
            Family::V4 => RejectWith::IcmpPortUnreachable,
            Family::V6 => RejectWith::Icmp6PortUnreachable,
        }
    }

    /// ICMP / ICMPv6 `(type, code)` of the reply; `None` for `tcp-reset`.
    pub fn icmp(self) -> Option<(u8, u8)> {
        Some(match self {
            RejectWith::IcmpNetUnreachable => (3, 0),
            RejectWith::IcmpHostUnreachable => (3, 1),
            RejectWith::IcmpProtoUnreachable => (3, 2),
            RejectWith::IcmpPortUnreachable => (3, 3),
            RejectWith::IcmpNetProhibited => (3, 9),
            RejectWith::IcmpHostProhibited => (3, 10),
            RejectWith::IcmpAdminProhibited => (3, 13),
            RejectWith::Icmp6NoRoute => (1, 0),
            RejectWith::Icmp6AdmProhibited => (1, 1),
            RejectWith::Icmp6AddrUnreachable => (1, 3),
            RejectWith::Icmp6PortUnreachable => (1, 4),
            RejectWith::Icmp6PolicyFail => (1, 5),
            RejectWith::Icmp6RejectRoute => (1, 6),
            RejectWith::TcpReset => return None,
        })
    }

    /// The datapath's code of the kind (`RuleMeta::next` of an `ACTION_REJECT` position):
    /// `tailwall_abi::REJECT_TCP_RESET` for `tcp-reset`, else `REJECT_ICMP | type << 8 | code`.
    pub fn abi(self) -> u32 {
        match self.icmp() {
            None => abi::REJECT_TCP_RESET,
            Some((t, c)) => abi::REJECT_ICMP | u32::from(t) << 8 | u32::from(c),
        }
    }

    /// The kind of a datapath code ([`RejectWith::abi`]); `None` for a code no kind has.
    pub fn from_abi(code: u32) -> Option<RejectWith> {
        RejectWith::ALL.into_iter().find(|k| k.abi() == code)
    }

    /// Index of the kind in [`RejectWith::ALL`] (0..14).
    pub fn index(self) -> u32 {
        self as u32
    }
}

impl fmt::Display for RejectWith {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for RejectWith {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// What a rule does when it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// `-j ACCEPT`: stop traversal, the packet is accepted.
    Accept,
    /// `-j DROP`: stop traversal, the packet is dropped.
    Drop,
    /// `-j REJECT --reject-with KIND`: stop traversal, the packet is dropped and its sender answered.
    Reject(RejectWith),
    /// Continue at the first rule of a user chain; its end (or `Return`) resumes after this rule.
    Jump(ChainId),
    /// Continue at the first rule of a user chain without a return point: its end (or `Return`)
    /// returns to where the current chain was entered from.
    Goto(ChainId),
    /// Leave the current chain (in a built-in chain: its policy).
    Return,
    /// `-j LOG` / `-j NFLOG`: report the packet (the parameters are [`Ruleset::logs`]`[id]`) and go on
    /// with the next rule, as the kernel's LOG and NFLOG targets return `XT_CONTINUE`. Counted on its
    /// own rule; never decides (`net/netfilter/xt_LOG.c`, `xt_NFLOG.c`).
    Log(LogId),
}

impl Action {
    /// The verdict of a terminal action; `None` for jump, goto and return.
    pub fn verdict(self) -> Option<Verdict> {
        match self {
            Action::Accept => Some(Verdict::Accept),
            Action::Drop => Some(Verdict::Drop),
            Action::Reject(k) => Some(Verdict::Reject(k)),
            Action::Jump(_) | Action::Goto(_) | Action::Return | Action::Log(_) => None,
        }
    }
    /// The chain a jump or goto continues in.
    pub fn target(self) -> Option<ChainId> {
        match self {
            Action::Jump(c) | Action::Goto(c) => Some(c),
            _ => None,
        }
    }
}

impl From<Verdict> for Action {
    fn from(v: Verdict) -> Action {
        match v {
            Verdict::Accept => Action::Accept,
            Verdict::Drop => Action::Drop,
            Verdict::Reject(k) => Action::Reject(k),
        }
    }
}

/// One test a match applies to its field's value.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Test {
    /// The top `len` bits of the field's value equal those of `addr` (host bits of `addr` are zero).
    /// One prefix type for both families: the width is the field's ([`Field::bits`]: 32 for
    /// `src_ip`/`dst_ip`, whose `addr` is the IPv4 address zero-extended, 128 for `src_ip6`/`dst_ip6`).
    Prefix {
        /// The network address, host bits zero (IPv4 in the low 32 bits).
        addr: u128,
        /// Prefix length in bits, at most the field's width.
        len: u8,
    },
    /// The value equals.
    Exact(u32),
    /// `lo <= value <= hi`.
    Range {
        /// Lowest value included.
        lo: u32,
        /// Highest value included (`lo <= hi`).
        hi: u32,
    },
    /// The interface is `name`, or (`wildcard`, iptables' `eth+`) its name starts with `name`. `+`
    /// (empty name, wildcard) matches every interface, and an unknown one too (iptables compares the
    /// empty name then).
    Iface {
        /// The interface name or, with `wildcard`, its prefix; at most [`MAX_IFACE_LEN`] bytes.
        name: String,
        /// iptables' trailing `+`: compare only the first `name.len()` bytes.
        wildcard: bool,
    },
}

impl Test {
    /// Does a present numeric value of a `bits`-wide field pass the (non-negated) test? Always false
    /// for [`Test::Iface`].
    pub fn contains(&self, bits: u8, v: u128) -> bool {
        self.bounds(bits).is_some_and(|(lo, hi)| lo <= v && v <= hi)
    }
    /// Does an interface name pass the (non-negated) test? Always false for numeric tests.
    pub fn contains_iface(&self, iface: &str) -> bool {
        match self {
            Test::Iface {
                name,
                wildcard: false,
            } => iface == name,
            Test::Iface {
                name,
                wildcard: true,
            } => iface.starts_with(name.as_str()),
            _ => false,
        }
    }
    /// The inclusive value interval of a numeric test on a `bits`-wide field (`None` for
    /// [`Test::Iface`]). A prefix covers `addr` with its low `bits - len` bits anything.
    pub fn bounds(&self, bits: u8) -> Option<(u128, u128)> {
        match *self {
            Test::Prefix { addr, len } => {
                let host = (u128::MAX >> (128 - u32::from(bits.min(128))))
                    .checked_shr(u32::from(len))
                    .unwrap_or(0);
                Some((addr & !host, addr | host))
            }
            Test::Exact(x) => Some((x.into(), x.into())),
            Test::Range { lo, hi } => Some((lo.into(), hi.into())),
            Test::Iface { .. } => None,
        }
    }
}

/// One field constraint of a rule.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Match {
    /// The packet field the tests apply to.
    pub field: Field,
    /// Non-empty; the match holds when ANY test contains the value (XOR `negated`).
    pub tests: Vec<Test>,
    /// `!`: the rule matches values outside every test. For transport fields an absent value never
    /// matches, negated or not (iptables' tcp/udp/multiport matches fail on non-first fragments).
    pub negated: bool,
    /// The named set the tests were expanded from (printing only; the tests are authoritative).
    pub set: Option<String>,
    /// Where the match was written (the option and its value) in the source.
    pub span: Span,
}

impl Match {
    /// A match with one test, no set.
    pub fn single(field: Field, test: Test, negated: bool, span: Span) -> Match {
        Match {
            field,
            tests: vec![test],
            negated,
            set: None,
            span,
        }
    }
    /// Some test contains the present numeric value (negation NOT applied).
    pub fn contains(&self, v: u128) -> bool {
        let bits = self.field.bits();
        self.tests.iter().any(|t| t.contains(bits, v))
    }
    /// The inclusive intervals of the tests' values, in test order (interface tests left out).
    pub fn bounds(&self) -> impl Iterator<Item = (u128, u128)> + '_ {
        let bits = self.field.bits();
        self.tests.iter().filter_map(move |t| t.bounds(bits))
    }
    /// Some test contains the interface name (negation NOT applied).
    pub fn contains_iface(&self, iface: &str) -> bool {
        self.tests.iter().any(|t| t.contains_iface(iface))
    }
    /// The rule admits the present numeric value on this field (negation applied).
    pub fn admits(&self, v: u128) -> bool {
        self.contains(v) != self.negated
    }
    /// The match's only test, if it has exactly one.
    pub fn single_test(&self) -> Option<&Test> {
        match self.tests.as_slice() {
            [t] => Some(t),
            _ => None,
        }
    }
}

/// One rule (an `-A CHAIN …` line or a YAML rule): the conjunction of its matches and what it does
/// when they all hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rule {
    /// Position across the whole ruleset (invariant 1).
    pub id: RuleId,
    /// The chain holding the rule.
    pub chain: ChainId,
    /// 1-based index in its chain.
    pub position: u32,
    /// At most one per field, sorted by field.
    pub matches: Vec<Match>,
    /// What happens when every match holds (iptables' `-j`/`-g` target).
    pub action: Action,
    /// `-m comment --comment` text or the YAML `comment:`, if any (reports only).
    pub comment: Option<String>,
    /// `[packets:bytes]` from the dump, if any (reports only).
    pub counters: Option<(u64, u64)>,
    /// The whole rule line in the source.
    pub span: Span,
}

impl Rule {
    /// The rule's match on `field`, if it tests that field (at most one: invariant 4).
    pub fn get(&self, field: Field) -> Option<&Match> {
        self.matches.iter().find(|m| m.field == field)
    }
    /// The rule tests a transport-header field, so it needs the transport header.
    pub fn needs_l4(&self) -> bool {
        self.matches.iter().any(|m| m.field.info().transport)
    }
}

/// A chain of the `filter` table: a built-in chain attached to a hook, or a user chain reached only by
/// jumps and gotos.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Chain {
    /// Index in [`Ruleset::chains`].
    pub id: ChainId,
    /// `INPUT`/`FORWARD`/`OUTPUT` for built-in chains, the user's name otherwise (unique).
    pub name: String,
    /// `Some` for the built-in chains, `None` for user chains.
    pub hook: Option<Hook>,
    /// `Some` iff `hook` is.
    pub policy: Option<Verdict>,
    /// The chain's rules in order; `rules[i].position == i + 1`.
    pub rules: Vec<Rule>,
    /// The chain's declaration (`:NAME POLICY [p:b]` line or YAML chain key).
    pub span: Span,
}

/// What values a named set holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SetKind {
    /// Address prefixes/ranges of the ruleset's family: usable on `src_ip`, `dst_ip` (IPv4) or
    /// `src_ip6`, `dst_ip6` (IPv6).
    Addr,
    /// Ports and port ranges: usable on `src_port`, `dst_port`.
    Port,
    /// IP protocol numbers: usable on `proto`.
    Proto,
}

impl SetKind {
    /// The YAML spelling of the kind (`addr`, `port`, `proto`).
    pub fn as_str(self) -> &'static str {
        match self {
            SetKind::Addr => "addr",
            SetKind::Port => "port",
            SetKind::Proto => "proto",
        }
    }
    /// The field whose values a set of this kind holds in a ruleset of `family` (an `addr` set holds
    /// IPv4 prefixes in an IPv4 ruleset, IPv6 prefixes in an IPv6 one).
    pub fn field(self, family: Family) -> Field {
        match self {
            SetKind::Addr => Field::SrcIp.for_family(family),
            SetKind::Port => Field::DstPort,
            SetKind::Proto => Field::Proto,
        }
    }
    /// Can a match on `field` reference a set of this kind?
    pub fn fits(self, field: Field) -> bool {
        matches!(
            (self, field),
            (
                SetKind::Addr,
                Field::SrcIp | Field::DstIp | Field::SrcIp6 | Field::DstIp6
            ) | (SetKind::Port, Field::SrcPort | Field::DstPort)
                | (SetKind::Proto, Field::Proto)
        )
    }
}

/// A named set of values, defined once and referenced by matches (`src_ip @admins`). Matches carry
/// the expanded elements, so nothing downstream of lowering looks sets up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NamedSet {
    /// The set's name, referenced as `@name`; unique in the ruleset.
    pub name: String,
    /// What values the set holds, hence which fields may reference it.
    pub field_kind: SetKind,
    /// Non-empty.
    pub elements: Vec<Test>,
    /// The set's definition in the source.
    pub span: Span,
}

/// A checked ruleset: the chains of the `filter` table that tailwall enforces.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Ruleset {
    /// IPv4 (iptables) or IPv6 (ip6tables).
    pub family: Family,
    /// Built-in and user chains in order of declaration; `chains[i].id == ChainId(i)`.
    pub chains: Vec<Chain>,
    /// Named sets, in order of definition.
    pub sets: Vec<NamedSet>,
    /// The parameters of the `Log` actions, indexed by [`LogId`] (one per LOG/NFLOG rule, in rule
    /// order).
    pub logs: Vec<LogSpec>,
}

impl Ruleset {
    /// A ruleset of one built-in chain for `hook` holding `rules` in order: ids `r0..`, positions `1..`,
    /// each rule's matches sorted by field, default spans, no sets. The one-line constructor tests and
    /// generators build IR with.
    pub fn with_chain(
        hook: Hook,
        policy: Verdict,
        rules: impl IntoIterator<Item = (Vec<Match>, Action)>,
    ) -> Ruleset {
        let rules = rules
            .into_iter()
            .enumerate()
            .map(|(i, (mut matches, action))| {
                matches.sort_by_key(|m| m.field);
                Rule {
                    id: RuleId(i as u32),
                    chain: ChainId(0),
                    position: i as u32 + 1,
                    matches,
                    action,
                    comment: None,
                    counters: None,
                    span: Span::default(),
                }
            })
            .collect();
        Ruleset {
            family: Family::V4,
            chains: vec![Chain {
                id: ChainId(0),
                name: hook.chain_name().to_string(),
                hook: Some(hook),
                policy: Some(policy),
                rules,
                span: Span::default(),
            }],
            sets: vec![],
            logs: vec![],
        }
    }

    /// The parameters of a `Log` action (`None`: an id the ruleset does not hold).
    pub fn log(&self, id: LogId) -> Option<&LogSpec> {
        self.logs.get(id.0 as usize)
    }
    /// Append a log target's parameters and return the id of a `Log` action using them.
    pub fn push_log(&mut self, spec: LogSpec) -> Action {
        self.logs.push(spec);
        Action::Log(LogId(self.logs.len() as u32 - 1))
    }

    /// The built-in chain attached to `hook`, if the ruleset has one.
    pub fn hook_chain(&self, hook: Hook) -> Option<&Chain> {
        self.chains.iter().find(|c| c.hook == Some(hook))
    }
    /// The chain with id `id`; `None` if out of range.
    pub fn chain(&self, id: ChainId) -> Option<&Chain> {
        self.chains.get(id.0 as usize).filter(|c| c.id == id)
    }
    /// The chain called `name` (built-in or user).
    pub fn chain_by_name(&self, name: &str) -> Option<&Chain> {
        self.chains.iter().find(|c| c.name == name)
    }
    /// The named set called `name` (without the `@`).
    pub fn set(&self, name: &str) -> Option<&NamedSet> {
        self.sets.iter().find(|s| s.name == name)
    }
    /// Every rule of every chain, in chain order then position order (that is, in [`RuleId`] order).
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.chains.iter().flat_map(|c| c.rules.iter())
    }
    /// The rule with id `id` (a linear search).
    pub fn rule(&self, id: RuleId) -> Option<&Rule> {
        self.rules().find(|r| r.id == id)
    }
    /// The chains reachable from `hook`'s chain through jumps and gotos, the hook chain first, then in
    /// chain-id order. Empty when the ruleset has no chain for the hook.
    pub fn reachable(&self, hook: Hook) -> Vec<ChainId> {
        let Some(start) = self.hook_chain(hook) else {
            return Vec::new();
        };
        let seen = graph::ChainGraph::of(self).reachable_from(start.id.0 as usize);
        let mut out = vec![start.id];
        out.extend(
            (0..self.chains.len())
                .filter(|&i| seen[i] && i != start.id.0 as usize)
                .map(|i| ChainId(i as u32)),
        );
        out
    }

    /// Stable textual dump, one item per line: the snapshot format (an IPv6 ruleset starts with
    /// `family ipv6`).
    ///
    /// ```text
    /// set admins addr {10.0.0.0/8, 192.168.1.1/32}
    /// chain c0 INPUT hook=input policy=drop
    ///   r0 #1 src_ip 10.0.0.0/8 proto 6 dst_port 22 -> accept  # "ssh"
    ///   r1 #2 src_ip ! @admins proto 6 dst_port {80, 443, 8000-8080} -> jump web
    ///   r2 #3 in_iface eth+ -> goto web
    /// chain c1 web
    ///   r3 #1 proto 17 -> return
    /// ```
    pub fn dump(&self) -> String {
        let mut out = String::new();
        if self.family != Family::V4 {
            let _ = writeln!(out, "family {}", self.family.as_str());
        }
        for s in &self.sets {
            let _ = write!(out, "set {} {} {{", s.name, s.field_kind.as_str());
            let field = s.field_kind.field(self.family);
            for (i, t) in s.elements.iter().enumerate() {
                let sep = if i == 0 { "" } else { ", " };
                let _ = write!(out, "{sep}{}", DisplayTest(t, field));
            }
            out.push_str("}\n");
        }
        for c in &self.chains {
            let _ = write!(out, "chain {} {}", c.id, c.name);
            if let Some(h) = c.hook {
                let _ = write!(out, " hook={}", h.as_str());
            }
            if let Some(p) = c.policy {
                let _ = write!(out, " policy={}", p.as_str());
            }
            out.push('\n');
            for r in &c.rules {
                let _ = write!(out, "  {} #{}", r.id, r.position);
                for m in &r.matches {
                    let _ = write!(out, " {}", DisplayMatch(m));
                }
                let _ = write!(out, " -> {}", DisplayAction(r.action, self));
                if let Some(cm) = &r.comment {
                    let _ = write!(out, "  # {cm:?}");
                }
                out.push('\n');
            }
        }
        out
    }
}

/// An action in the dump's spelling: `accept`, `drop`, `jump web`, `goto web`, `return` (a target
/// chain missing from the ruleset prints as its id).
pub struct DisplayAction<'a>(pub Action, pub &'a Ruleset);

impl fmt::Display for DisplayAction<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = |c: ChainId| {
            self.1
                .chain(c)
                .map_or_else(|| c.to_string(), |c| c.name.clone())
        };
        match self.0 {
            Action::Accept => f.write_str("accept"),
            Action::Drop => f.write_str("drop"),
            Action::Reject(k) => write!(f, "reject {k}"),
            Action::Jump(c) => write!(f, "jump {}", name(c)),
            Action::Goto(c) => write!(f, "goto {}", name(c)),
            Action::Return => f.write_str("return"),
            Action::Log(id) => match self.1.log(id) {
                Some(spec) => write!(f, "{}", DisplayLog(spec)),
                None => write!(f, "log {id}"),
            },
        }
    }
}

/// A log target in the dump's spelling: `log level 4 prefix "x: " flags 0x1`,
/// `nflog group 2 prefix "x"` (defaults left out, the prefix always quoted).
pub struct DisplayLog<'a>(pub &'a LogSpec);

impl fmt::Display for DisplayLog<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.kind {
            LogKind::Log { level, flags } => {
                f.write_str("log")?;
                if level != 4 {
                    write!(f, " level {level}")?;
                }
                if flags != 0 {
                    write!(f, " flags {flags:#x}")?;
                }
            }
            LogKind::Nflog {
                group,
                range,
                threshold,
            } => {
                write!(f, "nflog group {group}")?;
                if range != 0 {
                    write!(f, " range {range}")?;
                }
                if threshold != 0 {
                    write!(f, " threshold {threshold}")?;
                }
            }
        }
        if !self.0.prefix.is_empty() {
            write!(f, " prefix {:?}", self.0.prefix)?;
        }
        Ok(())
    }
}

/// An address of an address field in its family's spelling: `10.0.0.1` for `src_ip`/`dst_ip`,
/// `2001:db8::1` for `src_ip6`/`dst_ip6` (the field's width decides).
pub struct DisplayAddr(pub u128, pub Field);

impl fmt::Display for DisplayAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.1.bits() > 32 {
            write!(f, "{}", Ipv6Addr::from(self.0))
        } else {
            write!(f, "{}", Ipv4Addr::from(self.0 as u32))
        }
    }
}

/// One test of a field in the dump's spelling: `10.0.0.0/8`, `2001:db8::/32`, `80`, `8000-8080`,
/// `eth0`, `eth+`, `ESTABLISHED`.
pub struct DisplayTest<'a>(pub &'a Test, pub Field);

impl fmt::Display for DisplayTest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Test::Prefix { addr, len } => write!(f, "{}/{len}", DisplayAddr(*addr, self.1)),
            // Connection states by name (`ESTABLISHED`), as iptables spells them.
            Test::Exact(v) if self.1 == Field::CtState => {
                match crate::packet::CtState::from_value((*v).into()) {
                    Some(s) => f.write_str(s.name()),
                    None => write!(f, "{v}"),
                }
            }
            Test::Exact(v) => write!(f, "{v}"),
            Test::Range { lo, hi } if lo == hi => write!(f, "{lo}"),
            Test::Range { lo, hi } => write!(f, "{lo}-{hi}"),
            Test::Iface { name, wildcard } => {
                write!(f, "{name}{}", if *wildcard { "+" } else { "" })
            }
        }
    }
}

/// `field [!] value` in the dump's spelling: one test bare, several as `{a, b, c}`, a set as `@name`.
pub struct DisplayMatch<'a>(pub &'a Match);

impl fmt::Display for DisplayMatch<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(f, "{}{} ", m.field, if m.negated { " !" } else { "" })?;
        if let Some(s) = &m.set {
            return write!(f, "@{s}");
        }
        match m.tests.as_slice() {
            [t] => write!(f, "{}", DisplayTest(t, m.field)),
            ts => {
                f.write_str("{")?;
                for (i, t) in ts.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}", DisplayTest(t, m.field))?;
                }
                f.write_str("}")
            }
        }
    }
}

/// An IR invariant that does not hold (a compiler bug, never a user error).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("IR invariant {invariant} violated at {at}: {what}")]
pub struct VerifyError {
    /// The number (1–11) of the violated invariant in the module documentation.
    pub invariant: u8,
    /// Where: a chain name, a rule id (`r3`) or a set (`@name`).
    pub at: String,
    /// What is wrong, in words.
    pub what: String,
}

/// Check the invariants listed in the module documentation.
///
/// # Errors
/// The first violated invariant found, as a [`VerifyError`]; a compiler bug, never a user error.
pub fn verify(rs: &Ruleset) -> Result<(), VerifyError> {
    let err = |invariant, at: String, what: String| {
        Err(VerifyError {
            invariant,
            at,
            what,
        })
    };
    for (i, s) in rs.sets.iter().enumerate() {
        if rs.sets[..i].iter().any(|o| o.name == s.name) {
            return err(8, format!("@{}", s.name), "set defined twice".into());
        }
        if s.elements.is_empty() {
            return err(8, format!("@{}", s.name), "empty set".into());
        }
    }
    let mut next_rule = 0;
    for (ci, c) in rs.chains.iter().enumerate() {
        if c.id != ChainId(ci as u32) {
            return err(
                1,
                c.name.clone(),
                format!("chain id {} at index {ci}", c.id),
            );
        }
        if matches!(c.policy, Some(Verdict::Reject(_))) {
            return err(12, c.name.clone(), "policy reject".into());
        }
        if c.hook.is_some() != c.policy.is_some() {
            return err(
                6,
                c.name.clone(),
                "hook without policy or policy without hook".into(),
            );
        }
        if rs.chains[..ci]
            .iter()
            .any(|o| o.name == c.name || (c.hook.is_some() && o.hook == c.hook))
        {
            return err(6, c.name.clone(), "chain name or hook repeated".into());
        }
        for (ri, r) in c.rules.iter().enumerate() {
            let at = format!("{} {}", c.name, r.id);
            if r.id != RuleId(next_rule) || r.chain != c.id {
                return err(1, at, format!("expected r{next_rule} in {}", c.id));
            }
            next_rule += 1;
            if r.position != ri as u32 + 1 {
                return err(2, at, format!("position {} at index {ri}", r.position));
            }
            for w in r.matches.windows(2) {
                if w[0].field >= w[1].field {
                    return err(4, at, format!("{} repeated or out of order", w[1].field));
                }
            }
            for m in &r.matches {
                if m.field.family().is_some_and(|f| f != rs.family) {
                    return err(
                        10,
                        at,
                        format!("{} in an {} ruleset", m.field, rs.family.as_str()),
                    );
                }
                if m.tests.is_empty() {
                    return err(4, at, format!("{} without tests", m.field));
                }
                for t in &m.tests {
                    if !test_fits(m.field, t) {
                        return err(3, at, format!("bad value {}", DisplayMatch(m)));
                    }
                }
                if let Some(name) = &m.set {
                    match rs.set(name) {
                        Some(s) if s.field_kind.fits(m.field) && s.elements == m.tests => {}
                        _ => {
                            return err(
                                8,
                                at,
                                format!(
                                    "{} @{name}: no such set of that kind, or other elements",
                                    m.field
                                ),
                            )
                        }
                    }
                }
                if let Some(h) = c.hook {
                    if m.field.info().lookup == Lookup::Iface && !h.has_iface(m.field) {
                        return err(
                            9,
                            at,
                            format!("{} in the {} chain", m.field, h.chain_name()),
                        );
                    }
                }
            }
            if let Action::Reject(k) = r.action {
                if k.family().is_some_and(|f| f != rs.family) {
                    return err(
                        11,
                        at,
                        format!("reject {k} in an {} ruleset", rs.family.as_str()),
                    );
                }
                let tcp = r
                    .matches
                    .iter()
                    .any(|m| m.field == Field::Proto && !m.negated && m.tests == [Test::Exact(6)]);
                if k == RejectWith::TcpReset && !tcp {
                    return err(12, at, "reject tcp-reset without proto tcp".into());
                }
            }
            for m in r.matches.iter().filter(|m| m.field.info().transport) {
                let protos = m.field.l4_protos_in(rs.family);
                let ok = r.get(Field::Proto).is_some_and(|p| {
                    !p.negated
                        && p.tests
                            .iter()
                            .all(|t| matches!(t, Test::Exact(v) if protos.contains(v)))
                });
                if !ok {
                    return err(
                        5,
                        at,
                        format!("transport field {} without proto {protos:?}", m.field),
                    );
                }
            }
            if let Action::Log(id) = r.action {
                match rs.log(id) {
                    Some(spec) if log_fits(spec) => {}
                    _ => return err(11, at, format!("log target {id} missing or out of range")),
                }
            }
            if let Some(t) = r.action.target() {
                match rs.chain(t) {
                    Some(tc) if tc.hook.is_none() => {}
                    _ => return err(7, at, format!("jump/goto target {t} is not a user chain")),
                }
            }
        }
    }
    for ss in &rs.sets {
        let f = ss.field_kind.field(rs.family);
        if let Some(t) = ss.elements.iter().find(|t| !test_fits(f, t)) {
            return err(
                8,
                format!("@{}", ss.name),
                format!("bad element {}", DisplayTest(t, f)),
            );
        }
    }
    if let Err(f) = graph::ChainGraph::of(rs).check() {
        let d = f.diagnostic(|c| rs.chains[c].name.clone());
        return err(7, "chain graph".into(), d.message);
    }
    Ok(())
}

/// Are a log target's parameters within iptables' limits (invariant 11)?
fn log_fits(spec: &LogSpec) -> bool {
    match spec.kind {
        LogKind::Log { level, flags } => {
            level <= 7 && flags & !LOG_FLAGS == 0 && spec.prefix.len() <= MAX_LOG_PREFIX
        }
        LogKind::Nflog { .. } => spec.prefix.len() <= MAX_NFLOG_PREFIX,
    }
}

/// Does a test fit its field (invariant 3)?
fn test_fits(field: Field, t: &Test) -> bool {
    let lookup = field.info().lookup;
    match *t {
        Test::Prefix { addr, len } => {
            lookup == Lookup::Lpm
                && len <= field.bits()
                && addr <= field.max_value()
                && t.bounds(field.bits()).is_some_and(|(lo, _)| lo == addr)
        }
        Test::Exact(v) => lookup != Lookup::Iface && u128::from(v) <= field.max_value(),
        Test::Range { lo, hi } => {
            lookup != Lookup::Iface && lo <= hi && u128::from(hi) <= field.max_value()
        }
        Test::Iface { ref name, wildcard } => {
            lookup == Lookup::Iface
                && (wildcard || !name.is_empty())
                && name.len() + wildcard as usize <= MAX_IFACE_LEN
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_contains_respects_length() {
        let t = Test::Prefix {
            addr: u32::from(Ipv4Addr::new(10, 0, 0, 0)).into(),
            len: 8,
        };
        assert!(t.contains(32, u32::from(Ipv4Addr::new(10, 200, 1, 1)).into()));
        assert!(!t.contains(32, u32::from(Ipv4Addr::new(11, 0, 0, 0)).into()));
        assert!(Test::Prefix { addr: 0, len: 0 }.contains(32, 12345));
        assert!(!Test::Prefix { addr: 0, len: 0 }.contains(32, 1 << 32));
        let net6 = u128::from("2001:db8::".parse::<Ipv6Addr>().unwrap());
        let t6 = Test::Prefix {
            addr: net6,
            len: 32,
        };
        assert!(t6.contains(128, net6 | 0xffff));
        assert!(!t6.contains(128, net6 ^ (1 << 96)));
        assert_eq!(t6.bounds(128), Some((net6, net6 | (u128::MAX >> 32))));
        assert!(test_fits(Field::SrcIp6, &t6));
        assert!(!test_fits(Field::SrcIp, &t6));
        assert!(!test_fits(
            Field::SrcIp6,
            &Test::Prefix {
                addr: net6 | 1,
                len: 64
            }
        ));
    }
}
