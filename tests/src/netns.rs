//! Throwaway network namespaces and veth pairs for the kernel and oracle tiers.
//!
//! Guarantees:
//! - every namespace this module creates is named `twt-<pid>-<n>` (or `<prefix>-<pid>-<n>`, unique per process and call) and is
//!   deleted when its [`Netns`] is dropped; a veth pair lives only inside the namespaces of its
//!   [`VethPair`], so deleting them deletes the pair — nothing is left in the caller's namespace;
//! - [`Netns::run`] executes a closure on a dedicated thread that has `setns`-ed into the namespace, so
//!   the calling thread's namespace never changes; sockets and BPF objects created there stay bound to
//!   the namespace after the closure returns;
//! - frames are only ever sent from the peer end of a pair this module created ([`FrameSender`]).
//!
//! Thrown away: the namespaces' mount view (`ip netns exec` remounts `/sys`; [`Netns::run`] does not), so
//! code inside [`Netns::run`] must address interfaces by index, not through `/sys/class/net`.
use anyhow::{anyhow, bail, Context, Result};
use std::ffi::OsStr;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// Set by CI: kernel tiers must run, and a missing privilege is a failure instead of a skip.
pub const REQUIRE_KERNEL_ENV: &str = "TAILWALL_REQUIRE_KERNEL";

/// Are we root (euid 0)?
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Is the kernel tier required (env `TAILWALL_REQUIRE_KERNEL=1`)?
pub fn kernel_required() -> bool {
    std::env::var(REQUIRE_KERNEL_ENV).is_ok_and(|v| v == "1")
}

/// `true` when the privileged `tier` can run. When not root: prints `<tier>: skipped: not root` and
/// returns `false`, unless `TAILWALL_REQUIRE_KERNEL=1`, in which case it panics (CI must not skip).
pub fn require_root_or_skip(tier: &str) -> bool {
    if is_root() {
        return true;
    }
    if kernel_required() {
        panic!("{tier}: not root, but {REQUIRE_KERNEL_ENV}=1 requires the kernel tier to run");
    }
    eprintln!("{tier}: skipped: not root");
    false
}

static NEXT_NS: AtomicU32 = AtomicU32::new(0);

fn run_checked(cmd: &mut Command) -> Result<Output> {
    let out = cmd.output().with_context(|| format!("spawning {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out)
}

/// A network namespace named `<prefix>-<pid>-<n>` (`twt-` unless chosen), deleted on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Create a fresh namespace `twt-<pid>-<n>` with its loopback up.
    pub fn new() -> Result<Netns> {
        Netns::with_prefix("twt")
    }

    /// Like [`Netns::new`], named `<prefix>-<pid>-<n>` (each test family its own prefix, so none
    /// deletes another's namespaces).
    pub fn with_prefix(prefix: &str) -> Result<Netns> {
        let n = NEXT_NS.fetch_add(1, Ordering::Relaxed);
        let name = format!("{prefix}-{}-{n}", std::process::id());
        run_checked(Command::new("ip").args(["netns", "add", &name]))?;
        let ns = Netns { name };
        ns.exec("ip", ["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/run/netns/<name>`: the namespace's bind mount (what `setns` opens).
    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    /// Run `program args…` inside the namespace (`ip netns exec`); its output, whatever the exit status.
    pub fn output<I, S>(&self, program: &str, args: I) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]).args(args);
        cmd.output().with_context(|| format!("spawning {cmd:?}"))
    }

    /// Run `program args…` inside the namespace; its stdout, or an error with stderr on failure.
    pub fn exec<I, S>(&self, program: &str, args: I) -> Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]).args(args);
        let out = run_checked(&mut cmd)?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Like [`Netns::exec`], with `stdin` fed to the program (e.g. `iptables-legacy-restore`).
    pub fn exec_stdin<I, S>(&self, program: &str, args: I, stdin: &str) -> Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().with_context(|| format!("spawning {cmd:?}"))?;
        child
            .stdin
            .take()
            .ok_or_else(|| anyhow!("no stdin pipe"))?
            .write_all(stdin.as_bytes())
            .with_context(|| format!("writing stdin of {cmd:?}"))?;
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "{cmd:?} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Run `program args…` inside the namespace with `stdin` (raw bytes) as its input; its output,
    /// whatever the exit status.
    pub fn output_stdin<I, S>(&self, program: &str, args: I, stdin: &[u8]) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().with_context(|| format!("spawning {cmd:?}"))?;
        let mut pipe = child.stdin.take().ok_or_else(|| anyhow!("no stdin pipe"))?;
        // A program that stops reading early (a refused line) closes the pipe: not an error here.
        let _ = pipe.write_all(stdin);
        drop(pipe);
        Ok(child.wait_with_output()?)
    }

    /// Write a sysctl inside the namespace (`sysctl -qw key=value`).
    pub fn sysctl(&self, key: &str, value: &str) -> Result<()> {
        self.exec("sysctl", ["-qw", &format!("{key}={value}")])
            .map(drop)
    }

    /// Run `f` on a dedicated thread that has entered the namespace with `setns(CLONE_NEWNET)`.
    pub fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send,
        F: FnOnce() -> T + Send,
    {
        in_netns(&self.path(), f)
    }

    /// Interface index of `ifname` in this namespace.
    pub fn ifindex(&self, ifname: &str) -> Result<u32> {
        let name = std::ffi::CString::new(ifname)?;
        let idx = self.run(|| {
            // SAFETY: `name` is a valid NUL-terminated string for the duration of the call.
            unsafe { libc::if_nametoindex(name.as_ptr()) }
        })?;
        if idx == 0 {
            bail!("no interface {ifname} in {}", self.name);
        }
        Ok(idx)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Interfaces inside go with it; a veth whose other end sits elsewhere is destroyed too.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// Run `f` on a fresh thread that first joins the network namespace at `ns_path` (a `/run/netns/*` or
/// `/proc/<pid>/ns/net` file). The calling thread is untouched.
pub fn in_netns<T, F>(ns_path: &str, f: F) -> Result<T>
where
    T: Send,
    F: FnOnce() -> T + Send,
{
    let file = File::open(ns_path).with_context(|| format!("opening {ns_path}"))?;
    std::thread::scope(|s| {
        s.spawn(move || -> Result<T> {
            // SAFETY: setns on a namespace fd we own; it affects only this (scoped, short-lived) thread.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            if rc != 0 {
                return Err(std::io::Error::last_os_error())
                    .with_context(|| format!("setns({ns_path})"));
            }
            Ok(f())
        })
        .join()
        .map_err(|_| anyhow!("thread in {ns_path} panicked"))?
    })
}

/// MAC address in `aa:bb:…` form.
pub fn fmt_mac(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Two fresh namespaces joined by a veth pair: `host` (the victim: filters, iptables, XDP) and `peer`
/// (the sender). Both ends are up, with fixed MACs and addresses in 192.0.2.0/24 (TEST-NET-1).
#[derive(Debug)]
pub struct VethPair {
    pub host_if: String,
    pub peer_if: String,
    pub host_mac: [u8; 6],
    pub peer_mac: [u8; 6],
    pub host_ip: std::net::Ipv4Addr,
    pub peer_ip: std::net::Ipv4Addr,
    /// ifindex of `host_if` inside `host`.
    pub host_ifindex: u32,
    /// ifindex of `peer_if` inside `peer`.
    pub peer_ifindex: u32,
    // Declared last: dropped after everything that may refer to them.
    pub host: Netns,
    pub peer: Netns,
}

impl VethPair {
    pub const HOST_MAC: [u8; 6] = [0x02, 0x74, 0x77, 0x00, 0x00, 0x01];
    pub const PEER_MAC: [u8; 6] = [0x02, 0x74, 0x77, 0x00, 0x00, 0x02];

    pub fn new() -> Result<VethPair> {
        let host = Netns::new()?;
        let peer = Netns::new()?;
        let (host_if, peer_if) = ("tw-host".to_string(), "tw-peer".to_string());
        run_checked(Command::new("ip").args([
            "link",
            "add",
            "name",
            &host_if,
            "netns",
            host.name(),
            "type",
            "veth",
            "peer",
            "name",
            &peer_if,
            "netns",
            peer.name(),
        ]))?;
        let host_ip = std::net::Ipv4Addr::new(192, 0, 2, 1);
        let peer_ip = std::net::Ipv4Addr::new(192, 0, 2, 2);
        for (ns, ifname, mac, ip) in [
            (&host, &host_if, Self::HOST_MAC, host_ip),
            (&peer, &peer_if, Self::PEER_MAC, peer_ip),
        ] {
            ns.exec(
                "ip",
                ["link", "set", "dev", ifname, "address", &fmt_mac(mac)],
            )?;
            ns.exec("ip", ["addr", "add", &format!("{ip}/24"), "dev", ifname])?;
            ns.exec("ip", ["link", "set", "dev", ifname, "up"])?;
        }
        let host_ifindex = host.ifindex(&host_if)?;
        let peer_ifindex = peer.ifindex(&peer_if)?;
        Ok(VethPair {
            host_if,
            peer_if,
            host_mac: Self::HOST_MAC,
            peer_mac: Self::PEER_MAC,
            host_ip,
            peer_ip,
            host_ifindex,
            peer_ifindex,
            host,
            peer,
        })
    }

    /// An AF_PACKET socket on the peer end: frames sent through it arrive on `host_if`.
    pub fn sender(&self) -> Result<FrameSender> {
        let ifindex = self.peer_ifindex;
        self.peer.run(|| FrameSender::open(ifindex))?
    }

    /// Wait until the peer end reports carrier (veth needs both ends up), bounded by `timeout`.
    pub fn wait_carrier(&self, timeout: std::time::Duration) -> Result<()> {
        let start = std::time::Instant::now();
        loop {
            let out = self
                .peer
                .exec("ip", ["-o", "link", "show", "dev", &self.peer_if])?;
            if out.contains("LOWER_UP") && !out.contains("NO-CARRIER") {
                return Ok(());
            }
            if start.elapsed() > timeout {
                bail!("{} has no carrier after {timeout:?}: {out}", self.peer_if);
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

/// A raw AF_PACKET socket bound to one interface: sends complete Ethernet frames (no FCS) as given.
#[derive(Debug)]
pub struct FrameSender {
    fd: OwnedFd,
    ifindex: u32,
}

impl FrameSender {
    /// Open on `ifindex` of the current thread's namespace (call it inside [`Netns::run`]).
    pub fn open(ifindex: u32) -> Result<FrameSender> {
        // Protocol 0: the socket receives nothing, it only sends.
        // SAFETY: plain socket(2) call; the fd is owned below.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(std::io::Error::last_os_error()).context("socket(AF_PACKET)");
        }
        // SAFETY: `raw` is a fresh, valid fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        Ok(FrameSender { fd, ifindex })
    }

    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Send one frame out of the interface. Frames shorter than 14 bytes are refused by the kernel.
    pub fn send(&self, frame: &[u8]) -> Result<()> {
        // SAFETY: zeroed sockaddr_ll is a valid value; fields set below.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_ifindex = self.ifindex as i32;
        sll.sll_halen = 6;
        if let Some(dst) = frame.get(..6) {
            sll.sll_addr[..6].copy_from_slice(dst);
        }
        // SAFETY: buffer and address pointers are valid for the given lengths.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if n < 0 {
            return Err(std::io::Error::last_os_error()).context("sendto(AF_PACKET)");
        }
        if n as usize != frame.len() {
            bail!("short send: {n} of {} bytes", frame.len());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netns_name_is_unique_and_deleted_on_drop() {
        if !require_root_or_skip("netns") {
            return;
        }
        let a = Netns::new().unwrap();
        let b = Netns::new().unwrap();
        assert_ne!(a.name(), b.name());
        assert!(a.name().starts_with("twt-"));
        let path = a.path();
        assert!(std::path::Path::new(&path).exists());
        drop(a);
        assert!(!std::path::Path::new(&path).exists());
    }

    #[test]
    fn veth_frames_from_peer_reach_host() {
        if !require_root_or_skip("netns") {
            return;
        }
        let pair = VethPair::new().unwrap();
        pair.wait_carrier(std::time::Duration::from_secs(5))
            .unwrap();
        let tx = pair.sender().unwrap();
        let before = rx_packets(&pair);
        let frame = tailwall_compiler::packet::build_frame(
            pair.host_mac,
            pair.peer_mac,
            pair.peer_ip,
            pair.host_ip,
            17,
            0,
            &tailwall_compiler::packet::l4_header(17, 1000, 2000, b"x"),
        );
        for _ in 0..3 {
            tx.send(&frame).unwrap();
        }
        let after = rx_packets(&pair);
        assert!(after >= before + 3, "rx_packets {before} -> {after}");
    }

    fn rx_packets(pair: &VethPair) -> u64 {
        let out = pair
            .host
            .exec("ip", ["-s", "-o", "link", "show", "dev", &pair.host_if])
            .unwrap();
        // "... RX: bytes packets ... \    <bytes> <packets> ..."
        let rx = out.split("RX:").nth(1).unwrap();
        let nums: Vec<&str> = rx.split('\\').nth(1).unwrap().split_whitespace().collect();
        nums[1].parse().unwrap()
    }
}
