//! Fault tests of the lifecycle on a veth pair (kernel tier, root):
//! - 1,000 swaps between two rulesets under live traffic: nothing both accept is lost, no packet is
//!   decided by a mix of generations, nothing fails closed, the counters sum to the packets sent, and
//!   no program, map, link or pin leaks;
//! - kill -9 at every fault point of an apply (first attach and swap): the interface enforces exactly
//!   the old or the new generation, and the next apply, `status`, `rollback` and `detach` work;
//! - a renamed interface: a clear error, the old filter still enforcing, nothing left behind;
//! - a program the kernel refuses while applying (seccomp stands for the verifier): the old filter
//!   still decides real traffic, nothing of the new generation is left.
//!
//! `TW_SWAPS` overrides the swap count (default 1,000) for local runs.
use std::{
    collections::BTreeSet,
    net::UdpSocket,
    os::fd::AsRawFd,
    os::unix::process::ExitStatusExt as _,
    process::Command,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use tailwall_compiler::{
    artifact::{self, Artifact},
    diag::SourceFile,
    ir::Hook,
    packet::{build_frame, l4_header, IPPROTO_UDP},
};
use tailwall_loader::{iface, object_ids, IfaceError, Mode, ObjectKind};
use tailwall_tests::netns::{require_root_or_skip, VethPair};

/// R1 drops udp 7000:7001, R2 accepts udp 7001:7002; A = [R1, R2], B = [R2, R1], policy ACCEPT.
/// Port 7000 is dropped (R1) and 7002 accepted (R2) by both; 7001 is dropped by A, accepted by B; 7100
/// is accepted by both policies. Both have the same rules, so every counter follows its rule.
const R1: &str = "-A INPUT -p udp -m udp --dport 7000:7001 -j DROP";
const R2: &str = "-A INPUT -p udp -m udp --dport 7001:7002 -j ACCEPT";

fn rules(order: [&str; 2]) -> String {
    format!(
        "*filter\n:INPUT ACCEPT [0:0]\n{}\n{}\nCOMMIT\n",
        order[0], order[1]
    )
}

fn compile(text: &str) -> Artifact {
    let src = SourceFile::new("fault.rules", text.to_string());
    let rs = tailwall_compiler::frontend::load(&src)
        .unwrap_or_else(|d| panic!("{d:?}"))
        .ruleset;
    artifact::build(&rs, Hook::Input).expect("build")
}

fn a() -> Artifact {
    compile(&rules([R1, R2]))
}

fn b() -> Artifact {
    compile(&rules([R2, R1]))
}

const PORTS: [u16; 4] = [7000, 7001, 7002, 7100];

fn frame(pair: &VethPair, port: u16) -> Vec<u8> {
    build_frame(
        pair.host_mac,
        pair.peer_mac,
        pair.peer_ip,
        pair.host_ip,
        IPPROTO_UDP,
        0,
        &l4_header(IPPROTO_UDP, 40000, port, b"tw"),
    )
}

/// UDP sockets on the host for every port, with big receive buffers.
fn sockets(pair: &VethPair) -> Vec<UdpSocket> {
    let host = pair.host_ip;
    PORTS
        .iter()
        .map(|&p| {
            let s = pair
                .host
                .run(move || UdpSocket::bind((host, p)))
                .expect("setns")
                .expect("bind");
            let size: libc::c_int = 16 << 20;
            // SAFETY: setsockopt on a socket we own with a c_int option value.
            unsafe {
                libc::setsockopt(
                    s.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_RCVBUFFORCE,
                    (&size as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as u32,
                );
            }
            s.set_read_timeout(Some(Duration::from_millis(100)))
                .expect("timeout");
            s
        })
        .collect()
}

fn drain(s: &UdpSocket) -> u64 {
    let mut buf = [0u8; 64];
    let mut n = 0;
    s.set_nonblocking(true).expect("nonblocking");
    while s.recv(&mut buf).is_ok() {
        n += 1;
    }
    s.set_nonblocking(false).expect("blocking");
    n
}

fn in_host<T: Send>(pair: &VethPair, f: impl FnOnce() -> T + Send) -> T {
    pair.host.run(f).expect("setns")
}

fn attach(pair: &VethPair, art: &Artifact) -> Result<iface::AttachOutcome, IfaceError> {
    let (i, art) = (pair.host_if.clone(), art.clone());
    in_host(pair, move || iface::attach(&i, &art, Mode::Generic, false))
}

fn cleanup(pair: &VethPair) {
    let i = pair.host_if.clone();
    let _ = in_host(pair, move || iface::detach(&i));
    let key = in_host(pair, iface::netns_key).expect("key");
    let _ = std::fs::remove_dir_all(format!("/sys/fs/bpf/tailwall/{key}"));
    let _ = std::fs::remove_dir_all(format!("/run/tailwall/{key}"));
}

fn ids() -> [BTreeSet<u32>; 3] {
    [ObjectKind::Program, ObjectKind::Map, ObjectKind::Link]
        .map(|k| object_ids(k).expect("object ids").into_iter().collect())
}

/// Packets of the rule with verdict `verdict` (R1 is the only drop rule, R2 the only accept rule).
fn counter(s: &tailwall_loader::Stats, verdict: &str) -> u64 {
    s.rules
        .iter()
        .find(|r| r.rule.verdict == verdict)
        .map_or(0, |r| r.packets)
}

/// Sets the flag when dropped (also while unwinding from a panic).
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[test]
fn thousand_swaps_under_live_traffic_lose_nothing() {
    if !require_root_or_skip("lifecycle") {
        return;
    }
    let swaps: usize = std::env::var("TW_SWAPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let pair = VethPair::new().expect("veth pair");
    pair.wait_carrier(Duration::from_secs(5)).expect("carrier");
    let before = ids();
    let socks = sockets(&pair);
    let (art_a, art_b) = (a(), b());
    attach(&pair, &art_a).expect("first attach");

    let sender = pair.sender().expect("sender");
    let frames: Vec<Vec<u8>> = PORTS.iter().map(|&p| frame(&pair, p)).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let sent: Arc<[AtomicU64; 4]> = Arc::new(Default::default());
    let received: Arc<[AtomicU64; 4]> = Arc::new(Default::default());
    let start = Instant::now();
    let mut swap_times = Vec::with_capacity(swaps);
    std::thread::scope(|s| {
        // Receivers: one per port, blocking reads.
        for (i, sock) in socks.iter().enumerate() {
            let (stop, received) = (stop.clone(), received.clone());
            s.spawn(move || {
                let mut buf = [0u8; 64];
                loop {
                    match sock.recv(&mut buf) {
                        Ok(_) => {
                            received[i].fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) if stop.load(Ordering::Relaxed) => break,
                        Err(_) => {}
                    }
                }
            });
        }
        // Sender: round robin over the four flows, paced (one ms pause every 8 frames: a few thousand per second).
        {
            let (stop, sent, frames, sender) = (stop.clone(), sent.clone(), &frames, &sender);
            s.spawn(move || {
                let mut k = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let i = k % 4;
                    sender.send(&frames[i]).expect("send");
                    sent[i].fetch_add(1, Ordering::Relaxed);
                    k += 1;
                    if k.is_multiple_of(8) {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            });
        }
        // A failing swap unwinds out of this closure: stop the sender and receivers on the way out so
        // the scope ends and the test fails with its message instead of waiting forever.
        let _stop_on_unwind = StopOnDrop(&stop);
        for n in 0..swaps {
            let art = if n % 2 == 0 { &art_b } else { &art_a };
            let t = Instant::now();
            let out = attach(&pair, art).expect("swap");
            swap_times.push(t.elapsed());
            if n < 3 {
                eprintln!("lifecycle: swap {n} timings {:?}", out.timings);
            }
            assert!(out.swapped && !out.unchanged, "swap {n}: {out:?}");
        }
        // Let the last packets land, then stop everything.
        std::thread::sleep(Duration::from_millis(200));
        stop.store(true, Ordering::Relaxed);
    });
    let elapsed = start.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    for (i, s) in socks.iter().enumerate() {
        received[i].fetch_add(drain(s), Ordering::Relaxed);
    }
    let sent: Vec<u64> = sent.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    let got: Vec<u64> = received.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    let i = pair.host_if.clone();
    let st = in_host(&pair, move || iface::stats(&i)).expect("stats");
    let (r1, r2) = (counter(&st, "drop"), counter(&st, "accept"));
    let reason = |name: &str| {
        st.reasons
            .iter()
            .find(|r| r.name == name)
            .map_or(0, |r| r.packets)
    };
    let fail_closed: u64 = st
        .reasons
        .iter()
        .filter(|r| r.name != "policy" && r.name != "not_ipv4" && r.name != "other_family")
        .map(|r| r.packets)
        .sum();
    let total_sent: u64 = sent.iter().sum();
    let both_accept_lost = (sent[2] - got[2]) + (sent[3] - got[3]);
    // 7001 packets counted by R2 (accept, generation B) must be exactly those delivered; R1 counts the
    // rest of 7001 and all of 7000.
    let mixed = (r2 as i64 - sent[2] as i64 - got[1] as i64).unsigned_abs()
        + (r1 as i64 - sent[0] as i64 - (sent[1] - got[1]) as i64).unsigned_abs()
        + got[0];
    swap_times.sort();
    let p = |q: f64| swap_times[((swap_times.len() - 1) as f64 * q) as usize];
    eprintln!(
        "lifecycle: {swaps} swaps in {elapsed:.1?} (per swap median {:?}, p99 {:?}, max {:?}); \
         sent {total_sent} packets (7000 {}, 7001 {}, 7002 {}, 7100 {}), delivered 7001 {} 7002 {} 7100 {}; \
         lost of those both accept: {both_accept_lost}; decided by a mix: {mixed}; fail-closed: {fail_closed}; \
         counters R1 {r1} R2 {r2} policy {} (IPv6 of the link itself passed: {})",
        p(0.5),
        p(0.99),
        p(1.0),
        sent[0],
        sent[1],
        sent[2],
        sent[3],
        got[1],
        got[2],
        got[3],
        reason("policy"),
        reason("not_ipv4") + reason("other_family")
    );
    assert_eq!(
        both_accept_lost, 0,
        "packets both rulesets accept were lost"
    );
    assert_eq!(
        fail_closed, 0,
        "fail-closed drops (missed tail calls) {st:#?}"
    );
    assert_eq!(
        r1 + r2 + reason("policy"),
        total_sent,
        "counters must sum to the packets sent"
    );
    assert_eq!(mixed, 0, "packets decided by a mix of generations");
    assert!(
        got[1] > 0 && got[1] < sent[1],
        "port 7001 saw both generations"
    );

    let i = pair.host_if.clone();
    in_host(&pair, move || iface::detach(&i)).expect("detach");
    let key = in_host(&pair, iface::netns_key).expect("key");
    assert!(!std::path::Path::new(&format!("/sys/fs/bpf/tailwall/{key}")).exists());
    // Programs and maps are freed after an RCU grace period and a workqueue pass: wait for them.
    let leaked = |before: &[BTreeSet<u32>; 3]| {
        let after = ids();
        let mut out = Vec::new();
        for (k, (b, a)) in ["programs", "maps", "links"]
            .iter()
            .zip(before.iter().zip(after.iter()))
        {
            let l: Vec<_> = a.difference(b).collect();
            if !l.is_empty() {
                out.push(format!("{k}: {l:?}"));
            }
        }
        out
    };
    let t = Instant::now();
    while !leaked(&before).is_empty() && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let l = leaked(&before);
    assert!(l.is_empty(), "leaked kernel objects: {l:?}");
    cleanup(&pair);
}

// ---------------------------------------------------------------------------------------------------
// kill -9 at every fault point.

/// What the interface enforces, by probing: port 7000 (dropped by A and B) and 7001 (dropped by A only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Enforced {
    A,
    B,
    Nothing,
}

fn enforced(
    pair: &VethPair,
    socks: &[UdpSocket],
    sender: &tailwall_tests::netns::FrameSender,
) -> Enforced {
    for s in socks {
        drain(s);
    }
    let mut got = [false; 2];
    for (k, port) in [7000u16, 7001].into_iter().enumerate() {
        sender.send(&frame(pair, port)).expect("send");
        let mut buf = [0u8; 64];
        got[k] = socks[k].recv(&mut buf).is_ok();
    }
    match got {
        [true, true] => Enforced::Nothing,
        [false, true] => Enforced::B,
        [false, false] => Enforced::A,
        [true, false] => panic!("port 7000 passed, 7001 dropped: neither A nor B nor nothing"),
    }
}

/// The child of the kill -9 tests: applies `TW_FAULT_RULES` to `TW_FAULT_IFACE` in the namespace
/// `TW_FAULT_NETNS` with `TAILWALL_FAULT_POINT` set (it dies there). Run by the parent only.
#[test]
#[ignore = "helper: run by kill_9_at_every_fault_point_of_an_apply"]
fn fault_child() {
    let (Ok(ns), Ok(i), Ok(text)) = (
        std::env::var("TW_FAULT_NETNS"),
        std::env::var("TW_FAULT_IFACE"),
        std::env::var("TW_FAULT_RULES"),
    ) else {
        return;
    };
    let art = compile(&text);
    let r =
        tailwall_tests::netns::in_netns(&ns, move || iface::attach(&i, &art, Mode::Generic, false))
            .expect("setns");
    panic!("the fault point did not fire: {r:?}");
}

#[test]
fn kill_9_at_every_fault_point_of_an_apply() {
    if !require_root_or_skip("lifecycle") {
        return;
    }
    let pair = VethPair::new().expect("veth pair");
    pair.wait_carrier(Duration::from_secs(5)).expect("carrier");
    let socks = sockets(&pair);
    let sender = pair.sender().expect("sender");
    let (art_a, art_b) = (a(), b());
    let exe = std::env::current_exe().expect("test binary");
    let (mut injected, mut survived) = (0, 0);
    for first in [true, false] {
        for point in iface::FAULT_POINTS {
            cleanup(&pair);
            assert_eq!(enforced(&pair, &socks, &sender), Enforced::Nothing);
            if !first {
                attach(&pair, &art_a).expect("attach A");
                assert_eq!(enforced(&pair, &socks, &sender), Enforced::A);
            }
            let status = Command::new(&exe)
                .args(["--ignored", "--exact", "fault_child", "--nocapture"])
                .env("TW_FAULT_NETNS", pair.host.path())
                .env("TW_FAULT_IFACE", &pair.host_if)
                .env("TW_FAULT_RULES", rules([R2, R1]))
                .env("TAILWALL_FAULT_POINT", point)
                .status()
                .expect("child");
            assert_eq!(
                status.signal(),
                Some(9),
                "{point}: the child was not killed: {status:?}"
            );
            injected += 1;
            let flipped = matches!(point, "after-xdp-flip" | "after-flip" | "after-state-write");
            let want = match (flipped, first) {
                (true, _) => Enforced::B,
                (false, true) => Enforced::Nothing,
                (false, false) => Enforced::A,
            };
            let what = format!("first attach: {first}, killed {point}");
            assert_eq!(enforced(&pair, &socks, &sender), want, "{what}");
            // status agrees with the kernel.
            let i = pair.host_if.clone();
            let st = in_host(&pair, move || iface::status(&i));
            match want {
                Enforced::Nothing => assert!(
                    matches!(st, Err(IfaceError::NotAttached { .. }))
                        || st.as_ref().is_ok_and(|s| !s.attached),
                    "{what}: {st:?}"
                ),
                Enforced::A => assert_eq!(
                    st.expect("status").digest,
                    Some(art_a.digest.clone()),
                    "{what}"
                ),
                Enforced::B => assert_eq!(
                    st.expect("status").digest,
                    Some(art_b.digest.clone()),
                    "{what}"
                ),
            }
            // The next apply of what runs says "unchanged" only if it does run; then A, B, rollback, detach.
            let again = attach(&pair, &art_b).expect("apply B");
            assert_eq!(again.unchanged, want == Enforced::B, "{what}: {again:?}");
            assert_eq!(enforced(&pair, &socks, &sender), Enforced::B, "{what}");
            attach(&pair, &art_a).expect("apply A");
            assert_eq!(enforced(&pair, &socks, &sender), Enforced::A, "{what}");
            let i = pair.host_if.clone();
            in_host(&pair, move || iface::rollback(&i, None)).expect("rollback");
            assert_eq!(
                enforced(&pair, &socks, &sender),
                Enforced::B,
                "{what}: rollback"
            );
            let i = pair.host_if.clone();
            in_host(&pair, move || iface::detach(&i)).expect("detach");
            assert_eq!(
                enforced(&pair, &socks, &sender),
                Enforced::Nothing,
                "{what}: detach"
            );
            survived += 1;
        }
    }
    eprintln!("lifecycle: kill -9 faults injected {injected}, survived {survived}");
    cleanup(&pair);
}

// ---------------------------------------------------------------------------------------------------
// Refused changes leave the old filter enforcing.

#[test]
fn renamed_interface_keeps_the_old_filter() {
    if !require_root_or_skip("lifecycle") {
        return;
    }
    let pair = VethPair::new().expect("veth pair");
    pair.wait_carrier(Duration::from_secs(5)).expect("carrier");
    let socks = sockets(&pair);
    let sender = pair.sender().expect("sender");
    let art_a = a();
    attach(&pair, &art_a).expect("attach A");

    let i = pair.host_if.clone();
    let st = in_host(&pair, move || iface::status(&i)).expect("status");
    assert_eq!(
        (st.generation, st.digest),
        (Some(1), Some(art_a.digest.clone()))
    );

    // Rename the interface: the filter follows the device; the old name is unknown, the new name is
    // busy (the old link is on it) with a hint, and the old filter keeps enforcing.
    let host = &pair.host;
    host.exec(
        "ip",
        ["link", "set", "dev", &pair.host_if, "name", "tw-renamed"],
    )
    .expect("rename");
    let r = attach(&pair, &b());
    assert!(
        matches!(r, Err(IfaceError::UnknownInterface { .. })),
        "{r:?}"
    );
    let art_b = b();
    let r = in_host(&pair, move || {
        iface::attach("tw-renamed", &art_b, Mode::Generic, false)
    });
    match r {
        Err(IfaceError::Attach { hint, .. }) => assert!(hint.contains("tailwall status"), "{hint}"),
        other => panic!("attach on the renamed device: {other:?}"),
    }
    assert_eq!(
        enforced(&pair, &socks, &sender),
        Enforced::A,
        "after the rename"
    );
    let i = pair.host_if.clone();
    let st = in_host(&pair, move || iface::status(&i)).expect("status of the old name");
    assert!(st.attached, "{st:?}");
    let i = pair.host_if.clone();
    in_host(&pair, move || iface::detach(&i)).expect("detach by the old name");
    assert_eq!(enforced(&pair, &socks, &sender), Enforced::Nothing);
    let key = in_host(&pair, iface::netns_key).expect("key");
    assert!(!std::path::Path::new(&format!("/sys/fs/bpf/tailwall/{key}/tw-renamed")).exists());
    cleanup(&pair);
}

/// Make every later `bpf(BPF_PROG_LOAD, …)` of the calling thread fail with `errno` (seccomp,
/// x86_64), as the kernel answers when its verifier refuses a program. Irreversible: run it in a child.
fn refuse_program_loads(errno: i32) {
    const BPF_PROG_LOAD: u32 = 5;
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;
    let f = |code: u16, jt: u8, jf: u8, k: u32| libc::sock_filter { code, jt, jf, k };
    // seccomp_data: nr at 0, arch at 4, args[0] at 16 (low half first on little endian).
    let prog = [
        f(LD_W_ABS, 0, 0, 4),
        f(JEQ_K, 0, 5, AUDIT_ARCH_X86_64),
        f(LD_W_ABS, 0, 0, 0),
        f(JEQ_K, 0, 3, libc::SYS_bpf as u32),
        f(LD_W_ABS, 0, 0, 16),
        f(JEQ_K, 0, 1, BPF_PROG_LOAD),
        f(RET_K, 0, 0, 0x0005_0000 | errno as u32),
        f(RET_K, 0, 0, 0x7fff_0000),
    ];
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: prctl(2) with a filter that outlives the call.
    let ok = unsafe {
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
            && libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &fprog as *const libc::sock_fprog,
            ) == 0
    };
    assert!(ok, "seccomp: {}", std::io::Error::last_os_error());
}

/// The child of `a_program_the_kernel_refuses_changes_nothing_live`: loads once (aya probes the
/// kernel's features with BPF_PROG_LOAD itself, and caches them), then refuses every program load
/// and applies B to `TW_REFUSE_IFACE` in `TW_REFUSE_NETNS`. Run by the parent only.
#[test]
#[ignore = "helper: run by a_program_the_kernel_refuses_changes_nothing_live"]
fn refused_program_child() {
    let (Ok(ns), Ok(i)) = (
        std::env::var("TW_REFUSE_NETNS"),
        std::env::var("TW_REFUSE_IFACE"),
    ) else {
        return;
    };
    let r = tailwall_tests::netns::in_netns(&ns, move || {
        drop(tailwall_loader::Generation::load(&a()).expect("probing load"));
        refuse_program_loads(libc::EACCES);
        iface::attach(&i, &b(), Mode::Generic, false)
    })
    .expect("setns");
    match r {
        Err(IfaceError::Load(tailwall_loader::LoadError::Verifier { program, .. })) => {
            println!("REFUSED {program}");
        }
        other => panic!("expected the verifier's refusal: {other:?}"),
    }
}

/// A program the kernel refuses while applying (what a verifier rejection returns: the load fails
/// with an errno): `LoadError::Verifier` naming the program (the CLI's exit 3), and nothing live
/// changes — the old generation keeps deciding real traffic, no new generation is left pinned.
#[test]
fn a_program_the_kernel_refuses_changes_nothing_live() {
    if !require_root_or_skip("lifecycle") || std::env::consts::ARCH != "x86_64" {
        return;
    }
    let pair = VethPair::new().expect("veth pair");
    pair.wait_carrier(Duration::from_secs(5)).expect("carrier");
    let socks = sockets(&pair);
    let sender = pair.sender().expect("sender");
    let art_a = a();
    attach(&pair, &art_a).expect("attach A");
    assert_eq!(enforced(&pair, &socks, &sender), Enforced::A);
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--ignored",
            "--exact",
            "refused_program_child",
            "--nocapture",
        ])
        .env("TW_REFUSE_NETNS", pair.host.path())
        .env("TW_REFUSE_IFACE", &pair.host_if)
        .output()
        .expect("child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("REFUSED tw_"),
        "child: {out:?}"
    );
    assert_eq!(
        enforced(&pair, &socks, &sender),
        Enforced::A,
        "after the refusal"
    );
    let i = pair.host_if.clone();
    let st = in_host(&pair, move || iface::status(&i)).expect("status");
    assert_eq!(
        (st.generation, st.digest),
        (Some(1), Some(art_a.digest.clone()))
    );
    let key = in_host(&pair, iface::netns_key).expect("key");
    for left in [
        format!("/sys/fs/bpf/tailwall/{key}/{}/gen-2", pair.host_if),
        format!("/run/tailwall/{key}/{}/gen-2.json", pair.host_if),
    ] {
        assert!(!std::path::Path::new(&left).exists(), "{left} left behind");
    }
    cleanup(&pair);
}
