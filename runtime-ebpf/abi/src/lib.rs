//! The kernel/user contract of tailwall's datapath, compiled by both the eBPF program crate and userspace.
//!
//! Guarantees:
//! - every type shared through a map is `repr(C)`, has no padding holes, and its size/alignment is pinned
//!   by a compile-time assertion below;
//! - every numeric code (action, flag, reason slot, stage id) is explicit and is never reused for another
//!   meaning: retired codes stay reserved;
//! - every kernel-visible name is at most 15 characters and starts with `tw_` (maps) or `TW_` (globals).
//!
//! Changing the layout or meaning of anything here bumps [`ABI_VERSION`].
#![no_std]
#![warn(missing_docs)]

/// Bumped on every incompatible change to this file.
pub const ABI_VERSION: u32 = 6;

/// 64-bit words in one bit-vector chunk; one chunk covers 512 rules.
pub const CHUNK_WORDS: usize = 8;
/// Rules covered by one chunk.
pub const CHUNK_BITS: usize = CHUNK_WORDS * 64;
/// Upper bound on chunks per vector the datapath will walk (the verifier needs a constant bound).
/// 256 chunks = 131072 rules.
pub const MAX_CHUNKS: u32 = 256;
/// Entries of an interface table (`tw_t_in_iface`, `tw_t_out_iface`): the devices of the network
/// namespace plus ifindex 0 ("no device"). A namespace with more devices is refused at load.
pub const MAX_IFACES: u32 = 16384;
/// Upper bound on field stages per generation.
pub const MAX_STAGES: u32 = 16;
/// VLAN tags (802.1Q `0x8100` / 802.1ad `0x88a8`) the entry program skips to reach the inner
/// EtherType: 2 covers QinQ. A frame with more tags is dropped and counted in [`REASON_BOUND`].
pub const MAX_VLAN_TAGS: usize = 2;

/// One 512-rule slice of a rule bit-vector. Bit `i` of word `w` of chunk `c` is rule `c*512 + w*64 + i`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Chunk {
    /// The chunk's words, rule `c*512 + w*64 + i` at bit `i` (least significant first) of word `w`.
    pub w: [u64; CHUNK_WORDS],
}

/// Key of the IPv4 LPM tries (`bpf_lpm_trie_key` layout): prefix length, then the address in network
/// byte order.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LpmV4Key {
    /// Prefix length in bits, 0..=32 (for a lookup: 32).
    pub prefix_len: u32,
    /// The address, network byte order.
    pub addr: [u8; 4],
}

/// Key of the IPv6 LPM tries (`bpf_lpm_trie_key` layout): prefix length, then the address in network
/// byte order.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LpmV6Key {
    /// Prefix length in bits, 0..=128 (for a lookup: 128).
    pub prefix_len: u32,
    /// The address, network byte order.
    pub addr: [u8; 16],
}

/// Port-table index used when the packet carries no ports for the rules to test: a non-first fragment,
/// or a protocol without ports. Rules that constrain the field never match it.
pub const PORT_ABSENT: u32 = 65536;
/// Port-table index used for a TCP/UDP first fragment whose transport header is cut short. A rule that
/// reaches its port test with such a packet drops it (iptables' "hotdrop").
pub const PORT_TRUNCATED: u32 = 65537;
/// Entries of a port table: every port, then [`PORT_ABSENT`] and [`PORT_TRUNCATED`].
pub const PORT_TABLE_ENTRIES: u32 = 65538;
/// Entries of the protocol table: one per IP protocol number.
pub const PROTO_TABLE_ENTRIES: u32 = 256;

/// Per-packet state handed from the entry program through the stages (per-CPU, one entry).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PktCtx {
    /// Source address, network byte order as read from the header.
    pub src_ip: [u8; 4],
    /// Destination address, network byte order.
    pub dst_ip: [u8; 4],
    /// IP protocol number.
    pub proto: u32,
    /// Port-table index: the port, or [`PORT_ABSENT`] / [`PORT_TRUNCATED`].
    pub src_port: u32,
    /// Port-table index of the destination port, as `src_port`.
    pub dst_port: u32,
    /// IPv4 total length, the byte count iptables' counters use.
    pub ip_len: u32,
    /// Index of the next program in the prog array. Inside `tw_final` (no next program) it holds the
    /// index of the first non-zero scratch word while the final program reads it back; after a
    /// REJECT decision, the reply's kind (`RuleMeta::next`) for `tw_reject`.
    pub step: u32,
    /// 0 until the first field stage has written the scratch vector.
    pub started: u32,
    /// The netfilter hook the packet is judged at ([`HOOK_INPUT`], [`HOOK_FORWARD`], [`HOOK_OUTPUT`]):
    /// at XDP ingress decided by `bpf_fib_lookup` as the kernel's routing would (see `prog/src/hook.rs`).
    pub hook: u32,
    /// Interface the packet arrived on (`ingress_ifindex`), 0 at OUTPUT.
    pub in_ifindex: u32,
    /// Interface the packet leaves by: at FORWARD the FIB result's `ifindex` ([`IFINDEX_UNKNOWN`]
    /// when the route's device is not reported), at OUTPUT the device the skb leaves by; 0 at INPUT
    /// (iptables has no output device there).
    pub out_ifindex: u32,
    /// Table index of the TCP flags byte (header byte 13: CWR ECE URG ACK PSH RST SYN FIN): the
    /// byte, [`PORT_ABSENT`] (not TCP, or a non-first fragment) or [`PORT_TRUNCATED`] (TCP header
    /// shorter than 20 bytes).
    pub tcp_flags: u32,
    /// IPv4 time to live (header byte 8), as the hook sees it.
    pub ttl: u32,
    /// The region the packet is judged in (`tw_regions` index, `hook * 2 + family`, see
    /// [`REGION_INPUT_V4`]); written by the entry program.
    pub region: u32,
    /// `tw_final` only: the walk's current position, parked here so that the verifier sees a fresh
    /// unknown value at each read instead of a register narrowed by every comparison.
    pub walk: u32,
    /// 1 for a non-first fragment (fragment offset ≠ 0), else 0: what iptables' `-f` tests.
    pub fragment: u32,
    /// Table index of the ICMP (IPv4 protocol 1) or ICMPv6 (IPv6 protocol 58) type and code,
    /// `type << 8 | code`: the value, [`PORT_ABSENT`] (another protocol, or a non-first fragment) or
    /// [`PORT_TRUNCATED`] (fewer than the 8 bytes of the ICMP header, which `-m icmp` hotdrops).
    pub icmp_type: u32,
    /// IPv6 source address, network byte order (all zero for an IPv4 packet).
    pub src_ip6: [u8; 16],
    /// IPv6 destination address, network byte order (all zero for an IPv4 packet).
    pub dst_ip6: [u8; 16],
    /// 1 while the XDP chain judges the reply a REJECT built in place, at OUTPUT (`tw_reject`
    /// re-enters the stages with it: the reply is a locally generated packet, as in iptables); else
    /// 0. Decides which `tw_decision` slot records the decision.
    pub reply: u32,
    /// Offset of the IPv4 / IPv6 header from the frame's first byte (after Ethernet and VLAN tags).
    pub l3_off: u32,
    /// Offset of the transport header from the frame's first byte (IPv6: after the extension
    /// headers); 0 for a non-first fragment. Read by `tw_reject`.
    pub l4_off: u32,
    /// The connection-tracking state the packet gets from conntrack at PREROUTING / OUTPUT: one of
    /// [`CT_INVALID`], [`CT_NEW`], [`CT_ESTABLISHED`], [`CT_RELATED`], [`CT_UNTRACKED`] (written only
    /// when the generation tests `ct_state`, [`GLOBAL_CT`]; else [`CT_INVALID`]).
    pub ct_state: u32,
}

/// netfilter's `NF_INET_LOCAL_IN`: the packet is delivered to this host.
pub const HOOK_INPUT: u32 = 0;
/// `NF_INET_FORWARD`: the packet is routed through this host.
pub const HOOK_FORWARD: u32 = 1;
/// `NF_INET_LOCAL_OUT`: the packet was sent by this host.
pub const HOOK_OUTPUT: u32 = 2;

/// `ct_state` value: conntrack has no valid entry for the packet and would create none (`xt_conntrack`'s
/// `INVALID`: a packet conntrack refused, e.g. a stray SYN-ACK, an ICMP error quoting no connection).
pub const CT_INVALID: u32 = 0;
/// `ct_state` value: the first packet(s) of a connection (`IP_CT_NEW`).
pub const CT_NEW: u32 = 1;
/// `ct_state` value: a packet of a connection that has seen traffic both ways (`IP_CT_ESTABLISHED`,
/// `IP_CT_ESTABLISHED_REPLY`).
pub const CT_ESTABLISHED: u32 = 2;
/// `ct_state` value: a packet related to a tracked connection (`IP_CT_RELATED`: an ICMP error quoting
/// it).
pub const CT_RELATED: u32 = 3;
/// `ct_state` value: a packet conntrack deliberately leaves untracked (`IP_CT_UNTRACKED`: IPv6
/// neighbour discovery and MLD, `-j NOTRACK`).
pub const CT_UNTRACKED: u32 = 4;
/// Number of `ct_state` values (the `ct_state` table's used entries).
pub const CT_STATES: u32 = 5;

/// Placeholder helper ids the eBPF object calls instead of the conntrack kfuncs (Rust/LLVM cannot
/// emit a kfunc call, `src_reg = BPF_PSEUDO_KFUNC_CALL`, and aya 0.14 cannot relocate one): the
/// loader rewrites each `call KFUNC_*` instruction into the kfunc call with the function's BTF id in
/// `/sys/kernel/btf/vmlinux` (`loader/src/kfunc.rs`, `docs/decisions/0014`). Far above every real
/// helper id, so never confused with one.
pub const KFUNC_XDP_CT_LOOKUP: u32 = 0x7f7f_0001;
/// Placeholder for `bpf_skb_ct_lookup` (tc programs), as [`KFUNC_XDP_CT_LOOKUP`].
pub const KFUNC_SKB_CT_LOOKUP: u32 = 0x7f7f_0002;
/// Placeholder for `bpf_ct_release`, as [`KFUNC_XDP_CT_LOOKUP`].
pub const KFUNC_CT_RELEASE: u32 = 0x7f7f_0003;

/// Per-position metadata, indexed by position (the flattened chains' numbering: bit and counter slot).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RuleMeta {
    /// One of the `ACTION_*` codes.
    pub action: u32,
    /// `RULE_F_*` bits.
    pub flags: u32,
    /// [`ACTION_CONTINUE`]: the walk continues at the first set bit at or after this position (always
    /// greater than the position's own index, within its region). 0 for the other actions.
    pub next: u32,
}

/// `RuleMeta::action` / `Decision::action`: the packet is accepted (`XDP_PASS`, `TC_ACT_OK`).
pub const ACTION_ACCEPT: u32 = 1;
/// `RuleMeta::action` / `Decision::action`: the packet is dropped (`XDP_DROP`, `TC_ACT_SHOT`).
pub const ACTION_DROP: u32 = 2;
/// Jump, goto, RETURN, goto fall-off: count the position and continue the walk at `RuleMeta::next`.
pub const ACTION_CONTINUE: u32 = 3;
/// `RuleMeta::action` / `Decision::action`: the packet is dropped and its sender answered
/// (`-j REJECT`); `RuleMeta::next` holds the reply's kind ([`REJECT_TCP_RESET`], or
/// [`REJECT_ICMP`]` | type << 8 | code`). The XDP chain builds the reply in place (`tw_reject`),
/// judges it at OUTPUT and sends it back (`XDP_TX`) when OUTPUT accepts it; the tc chain never
/// holds one (the compiler refuses REJECT in OUTPUT) and drops it if it did.
pub const ACTION_REJECT: u32 = 4;
/// Reject kind: a TCP RST as `nf_send_reset` builds it.
pub const REJECT_TCP_RESET: u32 = 1;
/// Reject kind flag: an ICMP (IPv4) or ICMPv6 (IPv6) error, `type << 8 | code` in the low bits, as
/// `icmp_send` / `icmp6_send` build it.
pub const REJECT_ICMP: u32 = 1 << 16;

/// Bytes of [`ReplyBuf`]: the largest reply (Ethernet, two VLAN tags, IPv6 and ICMPv6 headers,
/// 1,232 quoted bytes = 1,302) plus room for a 512-byte checksum chunk read from any offset up to it.
pub const REPLY_BUF_LEN: usize = 4096;

/// `tw_reply_buf`'s value: a REJECT's reply frame being assembled.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplyBuf {
    /// The frame's bytes from the Ethernet header on.
    pub b: [u8; REPLY_BUF_LEN],
}

/// Bounds of one region of positions (`tw_regions`, indexed by `hook * 2 + family`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RegionMeta {
    /// First position of the region, or [`NO_RULE`]: the generation has no such region (the packet
    /// is dropped, `REASON_NO_REGION`).
    pub first: u32,
    /// The region's policy position (its last): the walk visits it when no position before it in the
    /// region is set.
    pub policy: u32,
}

/// Entries of `tw_regions`: hooks INPUT, FORWARD, OUTPUT times families IPv4, IPv6.
pub const MAX_REGIONS: u32 = 6;
/// Region of IPv4 packets at INPUT (`hook 0 * 2 + family 0`).
pub const REGION_INPUT_V4: u32 = 0;
/// Upper bound on the positions one walk visits (`TW_NVISITS`, set per generation to the ruleset's
/// exact bound, is at most this).
pub const MAX_VISITS: u32 = 64;
/// Upper bound on `TW_NVISITS * TW_NCHUNKS`: the verifier walks every visit's scan of every chunk
/// (about 1,000 instructions per visit and chunk measured on 6.18: 62 visits over 10 chunks verified
/// in 632,851 instructions), and refuses a program above 1,000,000 instructions.
pub const MAX_WALK_WORK: u32 = 800;

/// The rule tests a transport-header field (it carries a `-m tcp`/`-m udp` match): a packet whose
/// transport header is truncated is dropped when this rule is the first candidate.
pub const RULE_F_NEEDS_L4: u32 = 1;
/// The position is a LOG or NFLOG rule (action [`ACTION_CONTINUE`], `next` = the position after it):
/// when the walk visits it, the packet is reported (`docs/decisions/0014-log-ring-buffer.md`).
pub const RULE_F_LOG: u32 = 2;

/// Packet and byte counter (per-CPU).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Counter {
    /// Packets counted.
    pub packets: u64,
    /// Bytes counted: the IP datagram's length as iptables counts it (`PktCtx::ip_len`).
    pub bytes: u64,
}

/// The last decision taken on this CPU (per-CPU, one entry): read after BPF_PROG_TEST_RUN.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Decision {
    /// The deciding position (a rule's, or the region's policy position), or [`NO_RULE`].
    pub rule: u32,
    /// A `REASON_*` slot, or [`REASON_RULE`] when a rule decided.
    pub reason: u32,
    /// `ACTION_*` code of the verdict.
    pub action: u32,
    /// Incremented on every decision.
    pub seq: u32,
}
/// `tw_decision` slot of the decision on the packet the program was given.
pub const DECISION_PACKET: u32 = 0;
/// `tw_decision` slot of the decision on the reply a REJECT built (judged at OUTPUT).
pub const DECISION_REPLY: u32 = 1;
/// "No position": [`Decision::rule`] when no rule or policy decided; a `RegionMeta` of a region the
/// generation does not hold.
pub const NO_RULE: u32 = u32::MAX;

// Slots of `tw_reasons` (per-CPU `Counter`s). Explicit, never reused.
/// A rule decided (not a slot of `tw_reasons`; used only in [`Decision::reason`]).
pub const REASON_RULE: u32 = u32::MAX;
/// The hook's policy decided (also counted on the region's policy position).
pub const REASON_POLICY: u32 = 0;
/// Neither IPv4 nor IPv6 (ARP, …): passed untouched.
pub const REASON_NOT_IPV4: u32 = 1;
/// IPv4 header that cannot be parsed (short, IHL < 5, total length inconsistent): dropped.
pub const REASON_MALFORMED: u32 = 2;
/// A tail call failed: dropped (fail closed).
pub const REASON_TAIL_CALL: u32 = 3;
/// A loop, stage or walk bound was hit (also: more than [`MAX_VLAN_TAGS`] VLAN tags, an IPv6 packet
/// with more than [`MAX_EXT_HEADERS`] extension headers): dropped (fail closed).
pub const REASON_BOUND: u32 = 4;
/// Truncated transport header reached a rule that tests it: dropped, as iptables' hotdrop.
pub const REASON_HOTDROP: u32 = 5;
/// A map lookup that must succeed failed: dropped (fail closed).
pub const REASON_MAP: u32 = 6;
/// The packet's region (hook, family) is not compiled in this generation: dropped (fail closed).
pub const REASON_NO_REGION: u32 = 7;
/// An IPv4 or IPv6 frame of an address family the generation has no ruleset for: passed, as an
/// empty iptables / ip6tables filter table (ACCEPT policies) passes it.
pub const REASON_OTHER_FAMILY: u32 = 8;
/// The packet's input or output interface index is not in the generation's `tw_t_in_iface` /
/// `tw_t_out_iface` table (a device created after the generation was built: its name, hence its
/// class, is unknown): dropped (fail closed), never guessed. `compile --attach`/`apply` refresh the
/// tables.
pub const REASON_NO_IFACE: u32 = 9;
/// The [`PktCtx::out_ifindex`] of a forwarded packet whose route's device `bpf_fib_lookup` does not
/// report (`BPF_FIB_LKUP_RET_UNSUPP_LWT`). No device has it (the kernel allocates ifindexes as
/// positive `int`s) and the loader never writes it, so an `out_iface` stage misses and drops the
/// packet (`REASON_NO_IFACE`) rather than judge it as "no device" (`-o eth0` would then never match).
pub const IFINDEX_UNKNOWN: u32 = u32::MAX;
/// A REJECT for which the kernel sends no reply (an ICMP error, a non-first fragment, a link-layer
/// or IP broadcast/multicast, a RST, a source that is not a unicast address): dropped, as REJECT
/// drops, without a reply; the packet is counted on its rule as well.
pub const REASON_REJECT_SILENT: u32 = 10;
/// A REJECT whose reply could not be built (the frame cannot be resized, no route back for the
/// reply's source address): dropped without a reply (fail closed); counted on its rule as well.
pub const REASON_REJECT_FAIL: u32 = 11;
/// A REJECT's reply that OUTPUT accepted and the XDP program sent back out of the interface the
/// rejected packet came in on (`XDP_TX`). A reply OUTPUT drops is counted on OUTPUT's deciding
/// rule or policy position.
pub const REASON_REPLY_SENT: u32 = 12;
/// The generation tests `ct_state` and the conntrack lookup failed in a way that leaves the packet's
/// state unknown (the kfunc reported an error other than "no entry"): dropped (fail closed).
pub const REASON_CT: u32 = 13;
/// Number of reason slots.
pub const REASON_SLOTS: u32 = 14;

/// Bytes of the ring buffer `tw_log` (a power-of-2 multiple of the page size, as
/// `BPF_MAP_TYPE_RINGBUF` requires): about 1,400 [`LogRecord`]s (each takes its size plus the
/// kernel's 8-byte header). A full ring buffer drops the record, never the packet, and counts it in
/// `tw_log_lost`.
pub const LOG_RING_BYTES: u32 = 256 * 1024;
/// Bytes of the frame a [`LogRecord`] carries at most (from the Ethernet header): Ethernet, two VLAN
/// tags, a 60-byte IPv4 header with options and a 60-byte TCP header with options fit, as the LOG
/// target's `--log-ip-options`/`--log-tcp-options` need; an IPv6 header with extension headers
/// is cut beyond it.
pub const LOG_SNAPLEN: u32 = 160;
/// [`LogRecord::kind`]: a LOG or NFLOG rule (`RULE_F_LOG`) was visited.
pub const LOG_KIND_RULE: u32 = 0;
/// [`LogRecord::kind`]: a decision streamed for `tailwall monitor` ([`MonitorCfg`]).
pub const LOG_KIND_DECISION: u32 = 1;
/// Slots of `tw_log_lost` (per-CPU `u64`, indexed by [`LogRecord::kind`]): records dropped because
/// the ring buffer was full.
pub const LOG_LOST_SLOTS: u32 = 2;

/// One record of the ring buffer `tw_log`: a LOG/NFLOG rule's packet, or a decision for
/// `tailwall monitor`. Fixed size; userspace resolves `position` through the generation's record
/// (rule, chain, log prefix, level and flags).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogRecord {
    /// `bpf_ktime_get_ns()`: CLOCK_MONOTONIC nanoseconds.
    pub ts_ns: u64,
    /// [`LOG_KIND_RULE`] or [`LOG_KIND_DECISION`].
    pub kind: u32,
    /// The hook ([`HOOK_INPUT`], [`HOOK_FORWARD`], [`HOOK_OUTPUT`]).
    pub hook: u32,
    /// The region (`hook * 2 + family`).
    pub region: u32,
    /// The LOG rule's position, or the deciding position ([`NO_RULE`] when none).
    pub position: u32,
    /// [`LOG_KIND_DECISION`]: the `REASON_*` slot or [`REASON_RULE`]; else 0.
    pub reason: u32,
    /// [`LOG_KIND_DECISION`]: the `ACTION_*` code of the verdict; else 0.
    pub action: u32,
    /// [`PktCtx::in_ifindex`].
    pub in_ifindex: u32,
    /// [`PktCtx::out_ifindex`].
    pub out_ifindex: u32,
    /// Length of the whole frame in bytes.
    pub frame_len: u32,
    /// Bytes of `data` holding the frame (at most [`LOG_SNAPLEN`]).
    pub cap_len: u32,
    /// The frame's first `cap_len` bytes, from the Ethernet header.
    pub data: [u8; LOG_SNAPLEN as usize],
}

/// The monitor's switch (`tw_monitor`, one entry, written by `tailwall monitor`): read once per
/// packet at the end of the walk; `enabled == 0` costs that one lookup and nothing else.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct MonitorCfg {
    /// 0: off (the default); otherwise every decision of the walk that passes the filters below is
    /// written to `tw_log` ([`LOG_KIND_DECISION`]).
    pub enabled: u32,
    /// Bit `1 << ACTION_*` per verdict streamed; 0: every verdict.
    pub verdicts: u32,
    /// Stream one decision in `sample` (chosen by `bpf_get_prandom_u32`); 0 or 1: every one.
    pub sample: u32,
    /// Reserved, 0.
    pub pad: u32,
}

/// Most IPv6 extension headers the entry program walks to find the upper-layer protocol; one more is
/// dropped (`REASON_BOUND`). The same bound as `tailwall_compiler::packet::MAX_EXT_HEADERS`.
pub const MAX_EXT_HEADERS: u32 = 8;

// Map names (kernel-visible, <= 15 chars).
/// Prog array of the tail-call chain: entry, one stage per field of the generation, final.
pub const MAP_PROGS: &str = "tw_progs";
/// Per-CPU [`PktCtx`], one entry: the packet's state handed from stage to stage.
pub const MAP_PKT: &str = "tw_pkt";
/// Per-CPU scratch rule vector, one entry: the running AND of the stages' class vectors.
pub const MAP_SCRATCH: &str = "tw_scratch";
/// Array of `RuleMeta`, one per position: action, flags, next.
pub const MAP_RULES: &str = "tw_rules";
/// Per-CPU [`Counter`] per position.
pub const MAP_RULE_CNT: &str = "tw_rule_cnt";
/// Per-CPU [`Counter`] per `REASON_*` slot.
pub const MAP_REASONS: &str = "tw_reasons";
/// Ring buffer (`BPF_MAP_TYPE_RINGBUF`, [`LOG_RING_BYTES`]) of [`LogRecord`]s.
pub const MAP_LOG: &str = "tw_log";
/// Per-CPU `u64` per [`LogRecord::kind`]: records lost to a full ring buffer.
pub const MAP_LOG_LOST: &str = "tw_log_lost";
/// Array of one [`MonitorCfg`]: the monitor's switch.
pub const MAP_MONITOR: &str = "tw_monitor";
/// Per-CPU [`ReplyBuf`], one entry: where `tw_reject` assembles a REJECT's reply before writing it
/// over the frame.
pub const MAP_REPLY_BUF: &str = "tw_reply_buf";
/// Per-CPU [`Decision`], two entries: [`DECISION_PACKET`], the last decision on a packet on this
/// CPU, and [`DECISION_REPLY`], the last decision on a REJECT's reply at OUTPUT.
pub const MAP_DECISION: &str = "tw_decision";
/// Array of `RegionMeta`, indexed by `hook * 2 + family`.
pub const MAP_REGIONS: &str = "tw_regions";
/// The prog array of the tc chain ([`PROG_EGRESS`], the `tw_c_<field>` stages, [`PROG_FINAL_TC`]):
/// a prog array holds programs of one type, so the tc programs have their own; every other map is
/// shared by the XDP and the tc chain of a generation.
pub const MAP_PROGS_TC: &str = "tw_progs_tc";

// Load-time constants (read-only globals set by the loader).
/// TTL of the IPv4 replies REJECT builds (`net.ipv4.ip_default_ttl`, read by the loader).
pub const GLOBAL_REPLY_TTL: &str = "TW_REPLY_TTL";
/// Hop limit of the IPv6 replies REJECT builds (`net.ipv6.conf.default.hop_limit`, read by the
/// loader).
pub const GLOBAL_REPLY_HL: &str = "TW_REPLY_HL";
/// Chunks per rule vector in this generation.
pub const GLOBAL_NCHUNKS: &str = "TW_NCHUNKS";
/// Field stages in this generation; the final program sits at prog-array index `TW_NSTAGES`.
pub const GLOBAL_NSTAGES: &str = "TW_NSTAGES";
/// Positions in this generation (every region's, policy positions included).
pub const GLOBAL_NRULES: &str = "TW_NRULES";
/// Most positions one walk visits in this generation (1..=[`MAX_VISITS`]): the walk's loop bound.
pub const GLOBAL_NVISITS: &str = "TW_NVISITS";
/// 1 when the generation tests `ct_state` (the entry programs then ask conntrack), else 0.
pub const GLOBAL_CT: &str = "TW_CT";
/// Byte offset of `status` (`unsigned long`, `IPS_*` bits) in the kernel's `struct nf_conn`, read from
/// the running kernel's BTF by the loader.
pub const GLOBAL_CT_STATUS: &str = "TW_CT_STATUS";

// Program names (the eBPF functions; kernel shows the first 15 chars).
/// The XDP entry program: parses the frame, decides the hook (FIB lookup), fills [`PktCtx`].
pub const PROG_ENTRY: &str = "tw_entry";
/// The entry program with the hook fixed to INPUT instead of asked from the FIB: for
/// BPF_PROG_TEST_RUN (self-test, the kernel engine), whose frames have no real ingress.
pub const PROG_ENTRY_INPUT: &str = "tw_entry_in";
/// The entry program with the hook fixed to FORWARD (test-run, as [`PROG_ENTRY_INPUT`]).
pub const PROG_ENTRY_FORWARD: &str = "tw_entry_fwd";
/// The final program: the walk over the region's positions, the verdict, the counters.
pub const PROG_FINAL: &str = "tw_final";
/// An empty XDP program (returns `XDP_PASS`): the benchmark's baseline.
pub const PROG_PASS: &str = "tw_pass";
/// The tc entry program attached at tcx egress: judges locally generated packets by the OUTPUT
/// region of their family (`docs/decisions/0012`).
pub const PROG_EGRESS: &str = "tw_egress";
/// The XDP program at prog-array index `TW_NSTAGES + 1`: builds a REJECT's reply in place of the
/// rejected frame and re-enters the stages (index 0) to judge it at OUTPUT.
pub const PROG_REJECT: &str = "tw_reject";
/// `tw_final` as a tc program: the last program of the tc chain.
pub const PROG_FINAL_TC: &str = "tw_final_tc";

/// `TCX_NEXT` (`enum tcx_action_base` in `include/uapi/linux/bpf.h`): what the tc programs return for
/// an accept (the next tcx program, if any, then the stack).
pub const TCX_NEXT: i32 = -1;
/// `TC_ACT_SHOT` (`include/uapi/linux/pkt_cls.h`): what the tc programs return for a drop.
pub const TC_ACT_SHOT: i32 = 2;

/// `XDP_DROP` (`enum xdp_action` in `include/uapi/linux/bpf.h`): what the programs return for a drop.
pub const XDP_DROP: u32 = 1;
/// `XDP_TX` (`enum xdp_action`): what `tw_final` returns for a REJECT's reply OUTPUT accepted.
pub const XDP_TX: u32 = 3;
/// `XDP_PASS` (`enum xdp_action` in `include/uapi/linux/bpf.h`): what the programs return for a pass.
pub const XDP_PASS: u32 = 2;

const _: () = {
    assert!(core::mem::size_of::<Chunk>() == 64);
    assert!(core::mem::align_of::<Chunk>() == 8);
    assert!(core::mem::size_of::<LpmV4Key>() == 8);
    assert!(core::mem::size_of::<PktCtx>() == 116);
    assert!(core::mem::size_of::<LpmV6Key>() == 20);
    // The entry program zeroes the IPv6 addresses with 4-byte word stores.
    assert!(core::mem::align_of::<PktCtx>() == 4);
    assert!(core::mem::offset_of!(PktCtx, src_ip6) % 4 == 0);
    assert!(core::mem::offset_of!(PktCtx, dst_ip6) % 4 == 0);
    assert!(core::mem::size_of::<RuleMeta>() == 12);
    assert!(core::mem::size_of::<RegionMeta>() == 8);
    assert!(core::mem::size_of::<Counter>() == 16);
    assert!(core::mem::size_of::<Decision>() == 16);
    assert!(core::mem::size_of::<LogRecord>() == 48 + LOG_SNAPLEN as usize);
    assert!(core::mem::align_of::<LogRecord>() == 8);
    assert!(core::mem::size_of::<MonitorCfg>() == 16);
};

pub mod field;
pub use field::*;

#[cfg(feature = "user")]
mod user {
    use super::*;
    // SAFETY: all types are repr(C), Copy, and made only of integers with no padding (asserted above).
    unsafe impl aya::Pod for Chunk {}
    unsafe impl aya::Pod for LpmV4Key {}
    unsafe impl aya::Pod for LpmV6Key {}
    unsafe impl aya::Pod for PktCtx {}
    unsafe impl aya::Pod for RuleMeta {}
    unsafe impl aya::Pod for RegionMeta {}
    unsafe impl aya::Pod for Counter {}
    unsafe impl aya::Pod for Decision {}
    unsafe impl aya::Pod for MonitorCfg {}
    unsafe impl aya::Pod for ReplyBuf {}
}
