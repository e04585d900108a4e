//! Ask the kernel, not the records: which link is pinned for the interface, whether it is still on
//! the interface, which program it runs, and which generation that program belongs to. Every
//! command starts here, and repairs what a crash or an outside change left behind:
//! - a link pin whose link is no longer on the interface (device deleted or re-created, namespace
//!   gone) is removed, with every generation of the interface;
//! - generations numbered above the live one never went live (a crash before the flip) or were rolled
//!   back: removed;
//! - a generation with pins and no record (cannot happen by construction: records are written
//!   first) or a record without pins is removed.
use std::os::fd::{AsFd as _, OwnedFd};

use super::paths::{remove_file, Paths};
use crate::{error::IfaceError, sys};

/// What the kernel says about the interface's pinned link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LinkState {
    /// No link pin.
    Absent,
    /// A pinned link on no device any more (the device was deleted; a device re-created with the
    /// same name or index is another device).
    Defunct,
    /// The link is on device `ifindex` and runs `prog_id`. `ifindex` differs from the interface's
    /// current index when the device was renamed (the filter follows the device, not the name).
    Live {
        link_id: u32,
        prog_id: u32,
        ifindex: u32,
    },
}

/// The reconciled view of one interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct View {
    pub link: LinkState,
    /// The generation whose entry program the link runs.
    pub live: Option<u64>,
    /// Complete generations (pins and record) below the live one, ascending: rollback targets.
    pub previous: Vec<u64>,
    /// What was repaired (for `status`).
    pub repaired: Vec<String>,
}

fn link_err(paths: &Paths, op: &'static str) -> impl FnOnce(std::io::Error) -> IfaceError {
    let iface = paths.iface.clone();
    move |source| IfaceError::Link { iface, op, source }
}

/// A fresh fd of the pinned link (None: no pin).
pub(crate) fn open_link(paths: &Paths) -> Result<Option<OwnedFd>, IfaceError> {
    if std::fs::symlink_metadata(&paths.link).is_err() {
        return Ok(None);
    }
    match sys::obj_get(&paths.link) {
        Ok(fd) => Ok(Some(fd)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(link_err(paths, "BPF_OBJ_GET")(e)),
    }
}

/// The state of the pinned link, from a fresh handle: only the kernel decides that a link is defunct
/// (its device is gone: `ifindex` 0), never a name lookup.
pub(crate) fn link_state(paths: &Paths) -> Result<LinkState, IfaceError> {
    let Some(fd) = open_link(paths)? else {
        return Ok(LinkState::Absent);
    };
    let info = sys::link_info(fd.as_fd()).map_err(link_err(paths, "BPF_OBJ_GET_INFO_BY_FD"))?;
    if info.link_type != sys::BPF_LINK_TYPE_XDP || info.xdp_ifindex == 0 {
        return Ok(LinkState::Defunct);
    }
    Ok(LinkState::Live {
        link_id: info.id,
        prog_id: info.prog_id,
        ifindex: info.xdp_ifindex,
    })
}

/// The kernel id of generation `n`'s pinned entry program (None: not pinned).
pub(crate) fn entry_prog_id(paths: &Paths, n: u64) -> Option<u32> {
    let fd = sys::obj_get(&paths.gen_dir(n).join(super::PIN_ENTRY)).ok()?;
    sys::prog_id(fd.as_fd()).ok()
}

/// Reconcile the interface's pins and records with the kernel (see the module docs). Call it with
/// the interface lock held.
pub(crate) fn reconcile(paths: &Paths) -> Result<View, IfaceError> {
    let mut repaired = Vec::new();
    let link = link_state(paths)?;
    let gens = paths.generations()?;
    let live = match link {
        LinkState::Live { prog_id, .. } => gens
            .iter()
            .copied()
            .find(|&n| entry_prog_id(paths, n) == Some(prog_id)),
        _ => None,
    };
    if link == LinkState::Defunct {
        remove_file(&paths.link)?;
        repaired.push(format!(
            "removed the pin of a link no longer on {}",
            paths.iface
        ));
    }
    let mut previous = Vec::new();
    for n in gens {
        let complete = entry_prog_id(paths, n).is_some() && paths.record(n).exists();
        let keep = match live {
            Some(l) if n == l => true,
            Some(l) => n < l && complete,
            // Nothing of ours runs (no link, or it runs a program we have no pins for): the link pin
            // (if any) is all there is to keep.
            None => false,
        };
        if keep {
            if Some(n) != live {
                previous.push(n);
            }
            continue;
        }
        paths.remove_generation(n)?;
        repaired.push(format!(
            "removed generation {n} (not live, not a rollback target)"
        ));
    }
    Ok(View {
        link,
        live,
        previous,
        repaired,
    })
}

/// The XDP mode the kernel shows on device `ifindex` (rtnetlink `RTM_GETLINK`, attribute `IFLA_XDP`
/// → `IFLA_XDP_ATTACHED`: `XDP_ATTACHED_DRV` native, `XDP_ATTACHED_SKB` generic; include/uapi/linux/
/// if_link.h). `None`: no XDP program, or another kind (offloaded, several). Used when a generation's
/// record — which names the mode — is lost.
pub(crate) fn kernel_mode(ifindex: u32) -> std::io::Result<Option<crate::Mode>> {
    use std::os::fd::{AsRawFd as _, FromRawFd as _};
    const RTM_GETLINK: u16 = 18;
    const NLM_F_REQUEST: u16 = 1;
    const NLMSG_ERROR: u16 = 2;
    const IFLA_XDP: u16 = 43;
    const IFLA_XDP_ATTACHED: u16 = 2;
    const NLA_TYPE_MASK: u16 = 0x3fff;
    // SAFETY: socket(2) with constant arguments; the fd is owned below.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh fd nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // struct nlmsghdr (16 bytes) + struct ifinfomsg (16 bytes).
    let mut req = [0u8; 32];
    req[0..4].copy_from_slice(&32u32.to_ne_bytes());
    req[4..6].copy_from_slice(&RTM_GETLINK.to_ne_bytes());
    req[6..8].copy_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    req[8..12].copy_from_slice(&1u32.to_ne_bytes());
    req[16] = libc::AF_UNSPEC as u8;
    req[20..24].copy_from_slice(&(ifindex as i32).to_ne_bytes());
    // SAFETY: send(2) of a buffer owned by this frame on an fd owned by `sock`.
    if unsafe { libc::send(sock.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut buf = vec![0u8; 64 * 1024];
    // SAFETY: recv(2) into a buffer owned by this frame.
    let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let buf = &buf[..n as usize];
    let u16_at = |b: &[u8], o: usize| u16::from_ne_bytes([b[o], b[o + 1]]);
    if buf.len() < 32 {
        return Err(std::io::Error::other("short rtnetlink reply"));
    }
    if u16_at(buf, 4) == NLMSG_ERROR {
        let errno = i32::from_ne_bytes(buf[16..20].try_into().expect("4 bytes"));
        return Err(std::io::Error::from_raw_os_error(-errno));
    }
    let len = (u32::from_ne_bytes(buf[0..4].try_into().expect("4 bytes")) as usize).min(buf.len());
    // Walk the rtattrs (4-byte aligned: len u16, type u16, payload).
    let attrs = |b: &[u8]| {
        let mut out = Vec::new();
        let mut o = 0;
        while o + 4 <= b.len() {
            let l = u16_at(b, o) as usize;
            if l < 4 || o + l > b.len() {
                break;
            }
            out.push((u16_at(b, o + 2) & NLA_TYPE_MASK, b[o + 4..o + l].to_vec()));
            o += (l + 3) & !3;
        }
        out
    };
    let Some((_, xdp)) = attrs(&buf[32..len])
        .into_iter()
        .find(|(t, _)| *t == IFLA_XDP)
    else {
        return Ok(None);
    };
    let attached = attrs(&xdp)
        .into_iter()
        .find(|(t, _)| *t == IFLA_XDP_ATTACHED)
        .and_then(|(_, v)| v.first().copied());
    Ok(match attached {
        Some(1) => Some(crate::Mode::Native),
        Some(2) => Some(crate::Mode::Generic),
        _ => None,
    })
}
