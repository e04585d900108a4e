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
