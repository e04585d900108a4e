//! Where an interface's pins, records and lock live, and the safety of those places: directories and
//! files are created with explicit modes (never the umask), never through a symlink, and a directory
//! tailwall did not create (another owner, a symlink, group- or world-writable) is refused. The
//! bpffs must be the host's (one that outlives this process).
use std::{
    ffi::CString,
    fs,
    io::{self, Write as _},
    os::unix::fs::{
        DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _,
    },
    path::{Path, PathBuf},
};

use crate::error::{file, BpffsProblem, IfaceError};

/// The bpffs mount point.
pub(crate) const BPFFS: &str = "/sys/fs/bpf";
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;
/// tailwall's directory in the bpffs (pins) and in /run (records, locks).
pub(crate) const PIN_ROOT: &str = "/sys/fs/bpf/tailwall";
pub(crate) const RUN_ROOT: &str = "/run/tailwall";
/// Mode of every directory tailwall creates; records and locks are 0600.
const DIR_MODE: u32 = 0o700;
const FILE_MODE: u32 = 0o600;

/// Key of the calling thread's network namespace: the inode of `/proc/thread-self/ns/net`.
pub fn netns_key() -> Result<String, IfaceError> {
    let p = "/proc/thread-self/ns/net";
    Ok(fs::metadata(p).map_err(file(p))?.ino().to_string())
}

/// The paths of one interface in the calling thread's network namespace:
/// - `/sys/fs/bpf/tailwall/<netns>/<iface>/link` (the XDP bpf_link), `link-egress` (the tcx egress
///   bpf_link, when the live generation enforces OUTPUT) and `gen-N/` (generation N's pins);
/// - `/run/tailwall/<netns>/<iface>/gen-N.json` (generation N's record), `gen-N.carry.json` (its carried
///   counters), `confirm.json` (a pending `--confirm`); `/run/tailwall/<netns>/<iface>.lock`.
pub(crate) struct Paths {
    pub iface: String,
    pub netns: String,
    pub ns_pins: PathBuf,
    pub dir: PathBuf,
    pub link: PathBuf,
    pub link_egress: PathBuf,
    pub ns_run: PathBuf,
    pub records: PathBuf,
    pub lock: PathBuf,
}

/// Is `iface` a name the kernel could have (IFNAMSIZ, no `/`, not `.`/`..`)?
pub fn valid_iface(iface: &str) -> bool {
    !(iface.is_empty()
        || iface.len() > 15
        || iface.contains('/')
        || iface.contains('\0')
        || iface.starts_with('.'))
}

impl Paths {
    pub fn new(iface: &str) -> Result<Paths, IfaceError> {
        if !valid_iface(iface) {
            return Err(IfaceError::UnknownInterface {
                iface: iface.to_string(),
            });
        }
        Ok(Paths::in_netns(iface, netns_key()?))
    }

    pub fn in_netns(iface: &str, netns: String) -> Paths {
        let ns_pins = Path::new(PIN_ROOT).join(&netns);
        let dir = ns_pins.join(iface);
        let ns_run = Path::new(RUN_ROOT).join(&netns);
        Paths {
            iface: iface.to_string(),
            link: dir.join("link"),
            link_egress: dir.join("link-egress"),
            dir,
            records: ns_run.join(iface),
            lock: ns_run.join(format!("{iface}.lock")),
            ns_pins,
            ns_run,
            netns,
        }
    }

    pub fn gen_dir(&self, n: u64) -> PathBuf {
        self.dir.join(format!("gen-{n}"))
    }

    pub fn record(&self, n: u64) -> PathBuf {
        self.records.join(format!("gen-{n}.json"))
    }

    pub fn carry(&self, n: u64) -> PathBuf {
        self.records.join(format!("gen-{n}.carry.json"))
    }

    pub fn confirm(&self) -> PathBuf {
        self.records.join("confirm.json")
    }

    /// Create (or check) every directory this interface uses, each root-owned with mode 0700.
    pub fn prepare(&self) -> Result<(), IfaceError> {
        for d in [
            Path::new(PIN_ROOT),
            &self.ns_pins,
            &self.dir,
            Path::new(RUN_ROOT),
            &self.ns_run,
            &self.records,
        ] {
            safe_dir(d)?;
        }
        Ok(())
    }

    /// Generation numbers with a pin directory or a record, ascending.
    pub fn generations(&self) -> Result<Vec<u64>, IfaceError> {
        let mut out = Vec::new();
        for (dir, suffix) in [(&self.dir, ""), (&self.records, ".json")] {
            for name in list_dir(dir)? {
                let n = name
                    .strip_prefix("gen-")
                    .and_then(|s| s.strip_suffix(suffix))
                    .and_then(|s| s.parse().ok());
                if let Some(n) = n {
                    out.push(n);
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// Remove generation `n`: its pins (releasing its programs and maps unless the link runs it), its
    /// record and its carried counters.
    pub fn remove_generation(&self, n: u64) -> Result<(), IfaceError> {
        remove_all(&self.gen_dir(n))?;
        remove_file(&self.record(n))?;
        remove_file(&self.carry(n))
    }
}

/// File names in `dir` (none when it does not exist).
pub(crate) fn list_dir(dir: &Path) -> Result<Vec<String>, IfaceError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(file(dir)(e)),
    };
    let mut out = Vec::new();
    for e in entries {
        let e = e.map_err(file(dir))?;
        if let Some(s) = e.file_name().to_str() {
            out.push(s.to_string());
        }
    }
    out.sort();
    Ok(out)
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Is `meta` (from `symlink_metadata`) a directory we may trust: not a symlink, owned by us, not
/// writable by group or others?
fn check_dir(path: &Path, meta: &fs::Metadata) -> Result<(), IfaceError> {
    let unsafe_path = |why| {
        Err(IfaceError::UnsafePath {
            path: path.to_path_buf(),
            why,
        })
    };
    if meta.file_type().is_symlink() {
        return unsafe_path("it is a symbolic link");
    }
    if !meta.is_dir() {
        return unsafe_path("it is not a directory");
    }
    if meta.uid() != euid() {
        return unsafe_path("it is owned by another user");
    }
    if meta.mode() & 0o022 != 0 {
        return unsafe_path("it is writable by group or others");
    }
    Ok(())
}

/// Create `path` with mode 0700 (explicitly, whatever the umask), or check the existing one.
pub(crate) fn safe_dir(path: &Path) -> Result<(), IfaceError> {
    match fs::symlink_metadata(path) {
        Ok(m) => return check_dir(path, &m),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(file(path)(e)),
    }
    match fs::DirBuilder::new().mode(DIR_MODE).create(path) {
        Ok(()) => {}
        // Lost a race with another tailwall: check what is there now.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(file(path)(e)),
    }
    let m = fs::symlink_metadata(path).map_err(file(path))?;
    check_dir(path, &m)?;
    // The umask may have narrowed the mode further; the mode is ours to state (bpffs ignores it).
    if m.mode() & 0o777 != DIR_MODE {
        fs::set_permissions(path, fs::Permissions::from_mode(DIR_MODE)).map_err(file(path))?;
    }
    Ok(())
}

/// Open `path` for reading without following a symlink at its last component.
pub(crate) fn read_nofollow(path: &Path) -> Result<Option<Vec<u8>>, IfaceError> {
    use std::io::Read as _;
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path);
    let mut f = match f {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(file(path)(e)),
    };
    let mut b = Vec::new();
    f.read_to_end(&mut b).map_err(file(path))?;
    Ok(Some(b))
}

/// Write `body` to `path` atomically (a fresh `.tmp` created with O_EXCL|O_NOFOLLOW, mode 0600, synced,
/// then renamed over `path`). The directory must be one of [`Paths::prepare`]'s.
pub(crate) fn write_atomic(path: &Path, body: &[u8]) -> Result<(), IfaceError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    // A stale tmp from a killed run (removing a symlink removes the link, never its target).
    remove_file(&tmp)?;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .map_err(file(&tmp))?;
    f.write_all(body)
        .and_then(|()| f.sync_all())
        .map_err(file(&tmp))?;
    fs::rename(&tmp, path).map_err(file(path))
}

/// Open (creating, mode 0600, not through a symlink) the lock file at `path`.
pub(crate) fn open_lock(path: &Path) -> Result<fs::File, IfaceError> {
    fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(file(path))
}

pub(crate) fn remove_file(path: &Path) -> Result<(), IfaceError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(file(path)(e)),
    }
}

pub(crate) fn remove_all(path: &Path) -> Result<(), IfaceError> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(file(path)(e)),
    }
}

/// Remove `path` if it is an empty directory (best effort: a non-empty one is in use).
pub(crate) fn remove_empty_dir(path: &Path) {
    let _ = fs::remove_dir(path);
}

fn statfs_magic(path: &str) -> Option<i64> {
    let c = CString::new(path).ok()?;
    // SAFETY: statfs on a nul-terminated path into a zeroed struct owned by this frame.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    (unsafe { libc::statfs(c.as_ptr(), &mut st) } == 0).then_some(st.f_type as i64)
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid …": comm may hold spaces and parentheses; split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// The oldest process whose mount namespace we can read: pid 1 on an ordinary host (or in a
/// container), else the oldest readable ancestor of this process. `None`: none is readable.
fn reference_process() -> Option<(u32, PathBuf)> {
    let mnt = |pid: u32| fs::read_link(format!("/proc/{pid}/ns/mnt")).ok();
    if let Some(ns) = mnt(1) {
        return Some((1, ns));
    }
    let mut best = None;
    let mut pid = std::process::id();
    for _ in 0..64 {
        match parent_of(pid) {
            Some(p) if p > 1 => {
                if let Some(ns) = mnt(p) {
                    best = Some((p, ns));
                }
                pid = p;
            }
            _ => break,
        }
    }
    best
}

/// Make sure pins go to a bpffs that outlives this process: the one of the reference process (see
/// [`reference_process`]). Mounts a bpffs at /sys/fs/bpf when none is mounted and this process shares
/// the reference's mount namespace; refuses ([`IfaceError::PrivateBpffs`]) when this process runs in
/// a private mount namespace (`ip netns exec`, `unshare -m`, a unit with private mounts) whose
/// /sys/fs/bpf is not the reference's bpffs, and, with `TAILWALL_NO_BPFFS_MOUNT=1` (containers), when
/// /sys/fs/bpf is not a bpffs at all.
pub(crate) fn ensure_host_bpffs(iface: &str) -> Result<(), IfaceError> {
    let refuse = |problem| {
        Err(IfaceError::PrivateBpffs {
            iface: iface.to_string(),
            problem,
        })
    };
    let ours = fs::read_link("/proc/self/ns/mnt").map_err(file("/proc/self/ns/mnt"))?;
    let reference = reference_process();
    let shared = reference.as_ref().is_none_or(|(_, ns)| *ns == ours);
    let mounted = statfs_magic(BPFFS) == Some(BPF_FS_MAGIC);
    if mounted {
        if shared {
            return Ok(());
        }
        let (pid, _) = reference.expect("not shared implies a reference");
        let theirs = fs::metadata(format!("/proc/{pid}/root{BPFFS}")).map(|m| m.dev());
        let here = fs::metadata(BPFFS).map_err(file(BPFFS))?.dev();
        return match theirs {
            Ok(dev) if dev == here => Ok(()),
            _ => refuse(BpffsProblem::Private),
        };
    }
    // In a container the oldest visible process shares our mount namespace, and a bpffs mounted here
    // would die with the container: `TAILWALL_NO_BPFFS_MOUNT=1` (set by the DaemonSet) forbids it.
    if !shared || std::env::var_os("TAILWALL_NO_BPFFS_MOUNT").is_some_and(|v| v == "1") {
        return refuse(BpffsProblem::NotMountedPrivate);
    }
    fs::create_dir_all(BPFFS).map_err(file(BPFFS))?;
    let (path, fstype) = (
        CString::new(BPFFS).expect("no nul"),
        CString::new("bpf").expect("no nul"),
    );
    // SAFETY: mount(2) with nul-terminated strings that outlive the call and no data.
    if unsafe {
        libc::mount(
            fstype.as_ptr(),
            path.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    } != 0
    {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EPERM) {
            return Err(IfaceError::Privilege {
                op: "mounting the bpffs",
            });
        }
        return Err(file(BPFFS)(e));
    }
    Ok(())
}

/// Does the effective capability set hold CAP_NET_ADMIN and CAP_BPF (or CAP_SYS_ADMIN, which
/// implies it on older kernels)? From `CapEff` of `/proc/self/status` (capability(7)).
pub fn require_caps(op: &'static str) -> Result<(), IfaceError> {
    const CAP_NET_ADMIN: u32 = 12;
    const CAP_SYS_ADMIN: u32 = 21;
    const CAP_BPF: u32 = 39;
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    let has = |c: u32| eff & (1u64 << c) != 0;
    if has(CAP_NET_ADMIN) && (has(CAP_BPF) || has(CAP_SYS_ADMIN)) {
        Ok(())
    } else {
        Err(IfaceError::Privilege { op })
    }
}
