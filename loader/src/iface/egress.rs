//! The interface's second link: generation N's `tw_egress` (the tc chain, OUTPUT) at tcx egress, next
//! to the XDP link (`docs/decisions/0012`).
//!
//! Pins: `<iface>/link-egress` (the tcx bpf_link), `gen-N/egress` (generation N's `tw_egress`) and
//! `gen-N/tw_progs_tc` (its tc prog array, which must outlive the loader like `tw_progs`). A generation
//! has an egress program pinned when its OUTPUT can drop or count a rule ([`output_of`],
//! [`wants_egress`]); the egress link then runs that generation's program, else there is no egress
//! link.
//!
//! Guarantees: [`sync`] makes the egress link agree with a generation — one `BPF_LINK_UPDATE` when the
//! link exists (packets see the old or the new program, never none), a new link appended after the
//! device's other tcx programs when it does not (raw `BPF_LINK_CREATE`, Linux 6.6), the link detached
//! when the generation has no egress program — and [`verify`] checks it from a fresh handle and in the
//! device's tcx list. Callers order the two links and undo the XDP flip when the egress step fails
//! (`attach_with`, `rollback_locked`); [`settle`] repairs a crash between the two flips.
use std::os::fd::{AsFd as _, OwnedFd};

use serde::Serialize;

use tailwall_compiler::{
    artifact::Artifact,
    ir::{Family, Hook, Verdict},
};

use super::paths::{remove_file, Paths};
use crate::{
    error::{file, IfaceError},
    sys,
};

/// Generation N's pinned `tw_egress` (file name inside `gen-N/`).
pub(crate) const PIN_EGRESS: &str = "egress";

/// What a generation does at OUTPUT (netfilter's hook for packets this host sends), decided from its
/// artifact by [`output_of`]; `compile --attach` and `status` report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputHook {
    /// The OUTPUT region has rules or a DROP policy: `tw_egress` enforces it at tcx egress (the
    /// interface's second link).
    Enforced,
    /// OUTPUT has no rules and policy ACCEPT (or the ruleset has no OUTPUT chain): every packet is
    /// accepted, as iptables would, with no egress link and no per-packet cost.
    AcceptsAll,
    /// OUTPUT's region was not compiled (it reaches rules the datapath cannot compile; `check` and
    /// `compile` name them): nothing filters what this host sends.
    NotCompiled,
}

impl std::fmt::Display for OutputHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OutputHook::Enforced => "OUTPUT enforced at tcx egress",
            OutputHook::AcceptsAll => {
                "OUTPUT accepts everything (no rules, policy ACCEPT): no tcx egress link"
            }
            OutputHook::NotCompiled => {
                "OUTPUT NOT enforced: its region was not compiled (see `tailwall check`)"
            }
        })
    }
}

/// What a generation of `artifact` does at OUTPUT: [`OutputHook::Enforced`] when the OUTPUT region of
/// some family can drop or count a rule (one position that is not a lone ACCEPT policy), else
/// [`OutputHook::NotCompiled`] when a family with an INPUT region has no OUTPUT region, else
/// [`OutputHook::AcceptsAll`].
pub(crate) fn output_of(artifact: &Artifact) -> OutputHook {
    let families = [Family::V4, Family::V6]
        .into_iter()
        .filter(|&f| artifact.region(Hook::Input, f).is_some());
    let mut out = OutputHook::AcceptsAll;
    for f in families {
        match artifact.region(Hook::Output, f) {
            Some(r) if r.end - r.first == 1 && r.policy == Verdict::Accept => {}
            Some(_) => return OutputHook::Enforced,
            None => out = OutputHook::NotCompiled,
        }
    }
    out
}

/// Does a generation of `artifact` need its `tw_egress` at tcx egress ([`output_of`])?
pub(crate) fn wants_egress(artifact: &Artifact) -> bool {
    output_of(artifact) == OutputHook::Enforced
}

/// What the kernel says about the pinned egress link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EgressLink {
    /// No pin.
    Absent,
    /// Pinned, on no device any more (or not a tcx link).
    Defunct,
    /// On device `ifindex`, running `prog_id`.
    Live {
        link_id: u32,
        prog_id: u32,
        ifindex: u32,
    },
}

fn link_err(paths: &Paths, op: &'static str) -> impl FnOnce(std::io::Error) -> IfaceError {
    let iface = paths.iface.clone();
    move |source| IfaceError::Link { iface, op, source }
}

/// A fresh fd of the pinned egress link (None: no pin).
fn open(paths: &Paths) -> Result<Option<OwnedFd>, IfaceError> {
    let path = paths.link_egress.clone();
    if std::fs::symlink_metadata(&path).is_err() {
        return Ok(None);
    }
    match sys::obj_get(&path) {
        Ok(fd) => Ok(Some(fd)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(link_err(paths, "tcx egress link: BPF_OBJ_GET")(e)),
    }
}

/// The state of the pinned egress link, from a fresh handle.
pub(crate) fn state(paths: &Paths) -> Result<EgressLink, IfaceError> {
    let Some(fd) = open(paths)? else {
        return Ok(EgressLink::Absent);
    };
    let info = sys::link_info(fd.as_fd())
        .map_err(link_err(paths, "tcx egress link: BPF_OBJ_GET_INFO_BY_FD"))?;
    // `struct bpf_link_info`'s `tcx.ifindex` sits where `xdp.ifindex` does.
    if info.link_type != sys::BPF_LINK_TYPE_TCX || info.xdp_ifindex == 0 {
        return Ok(EgressLink::Defunct);
    }
    Ok(EgressLink::Live {
        link_id: info.id,
        prog_id: info.prog_id,
        ifindex: info.xdp_ifindex,
    })
}

/// Generation `n`'s pinned `tw_egress`, if it has one.
fn program(paths: &Paths, n: u64) -> Option<OwnedFd> {
    sys::obj_get(&paths.gen_dir(n).join(PIN_EGRESS)).ok()
}

/// The kernel id of generation `n`'s pinned `tw_egress` (None: it has none).
pub(crate) fn prog_id(paths: &Paths, n: u64) -> Option<u32> {
    sys::prog_id(program(paths, n)?.as_fd()).ok()
}

/// Make the egress link on device `ifindex` run generation `n`'s `tw_egress` (see the module docs).
/// Returns the link id (None: generation `n` has no egress program, and no egress link is left).
pub(crate) fn sync(paths: &Paths, ifindex: u32, n: u64) -> Result<Option<u32>, IfaceError> {
    let path = paths.link_egress.clone();
    let link = state(paths)?;
    let Some(prog) = program(paths, n) else {
        if let Some(fd) = open(paths)? {
            if matches!(link, EgressLink::Live { .. }) {
                sys::link_detach(fd.as_fd())
                    .map_err(link_err(paths, "tcx egress link: BPF_LINK_DETACH"))?;
            }
        }
        remove_file(&path)?;
        return Ok(None);
    };
    match (link, open(paths)?) {
        (EgressLink::Live { ifindex: on, .. }, Some(fd)) if on == ifindex => {
            sys::link_update(fd.as_fd(), prog.as_fd(), None)
                .map_err(link_err(paths, "tcx egress link: BPF_LINK_UPDATE"))?;
        }
        (_, fd) => {
            // Absent, defunct, or on another device: a new link (the old one, if any, goes with its
            // pin).
            if let (EgressLink::Live { .. }, Some(fd)) = (link, fd) {
                sys::link_detach(fd.as_fd())
                    .map_err(link_err(paths, "tcx egress link: BPF_LINK_DETACH"))?;
            }
            remove_file(&path)?;
            let fd = sys::link_create_tcx(prog.as_fd(), ifindex, sys::BPF_TCX_EGRESS).map_err(
                |source| IfaceError::Link {
                    iface: paths.iface.clone(),
                    op: "tcx egress link: BPF_LINK_CREATE (needs Linux 6.6)",
                    source,
                },
            )?;
            // If pinning fails the fd is dropped here, which detaches the link again.
            sys::obj_pin(fd.as_fd(), &path).map_err(file(&path))?;
        }
    }
    verify(paths, ifindex, n).map(Some)
}

/// A fresh handle of the pinned egress link must show generation `n`'s `tw_egress` on `ifindex`, and
/// the device's own list of tcx egress programs (BPF_PROG_QUERY) must hold it. Returns the link id.
pub(crate) fn verify(paths: &Paths, ifindex: u32, n: u64) -> Result<u32, IfaceError> {
    let expected = prog_id(paths, n).unwrap_or(0);
    match state(paths)? {
        EgressLink::Live {
            link_id,
            prog_id,
            ifindex: on,
        } if prog_id == expected && expected != 0 && on == ifindex => {
            let on_device = sys::tcx_egress_programs(ifindex)
                .map_err(link_err(paths, "tcx egress link: BPF_PROG_QUERY"))?;
            if on_device.contains(&prog_id) {
                Ok(link_id)
            } else {
                Err(IfaceError::NotEnforcing {
                    iface: paths.iface.clone(),
                    expected,
                    found: None,
                })
            }
        }
        EgressLink::Live { prog_id, .. } => Err(IfaceError::NotEnforcing {
            iface: paths.iface.clone(),
            expected,
            found: Some(prog_id),
        }),
        _ => Err(IfaceError::NotEnforcing {
            iface: paths.iface.clone(),
            expected,
            found: None,
        }),
    }
}

/// Detach and unpin the egress link, if any (detach, gc, the undo of a first attach).
pub(crate) fn remove(paths: &Paths) -> Result<(), IfaceError> {
    if let Some(fd) = open(paths)? {
        if matches!(state(paths)?, EgressLink::Live { .. }) {
            sys::link_detach(fd.as_fd())
                .map_err(link_err(paths, "tcx egress link: BPF_LINK_DETACH"))?;
        }
    }
    remove_file(&paths.link_egress)
}

/// Is the egress link in agreement with generation `n` (its program when it has one, no link when it
/// has none)?
pub(crate) fn agrees(paths: &Paths, ifindex: u32, n: u64) -> Result<bool, IfaceError> {
    Ok(match (prog_id(paths, n), state(paths)?) {
        (
            Some(want),
            EgressLink::Live {
                prog_id,
                ifindex: on,
                ..
            },
        ) => want == prog_id && on == ifindex,
        (Some(_), _) => false,
        (None, EgressLink::Absent) => true,
        (None, _) => false,
    })
}

/// After `reconcile`: make the egress link agree with what the XDP link says is live, and say what
/// was repaired. An apply or a rollback that died between its two flips (`after-xdp-flip`) left the
/// egress link on the other generation: it follows the XDP link's generation now (the XDP link is the
/// one `reconcile` trusts). An egress link with no live generation beside it (the XDP link is gone or
/// runs nothing of ours) is removed, as `reconcile` removes that generation's pins. A repair the
/// kernel refuses is reported, not raised: `status` then shows OUTPUT as not running, and the next
/// apply retries it and fails loudly if it still cannot.
pub(crate) fn settle(
    paths: &Paths,
    live: Option<(u64, u32)>,
    repaired: &mut Vec<String>,
) -> Result<(), IfaceError> {
    match live {
        Some((n, ifindex)) => {
            if agrees(paths, ifindex, n)? {
                return Ok(());
            }
            match sync(paths, ifindex, n) {
                Ok(Some(_)) => repaired.push(format!(
                    "the tcx egress link did not run generation {n}'s OUTPUT program (an apply or rollback stopped between its two links): it does now"
                )),
                Ok(None) => repaired.push(format!(
                    "removed a tcx egress link: generation {n} has no OUTPUT program"
                )),
                Err(e) => repaired.push(format!(
                    "the tcx egress link does not run generation {n}'s OUTPUT program and could not be made to: {e}"
                )),
            }
        }
        None => {
            if state(paths)? != EgressLink::Absent {
                remove(paths)?;
                repaired.push(
                    "removed a tcx egress link with no live xdp link of tailwall beside it".into(),
                );
            }
        }
    }
    Ok(())
}
