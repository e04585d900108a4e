//! `--confirm`: a generation that reverts at a deadline unless `tailwall confirm` comes first
//! (iptables-apply's safety net), and what every command does about one.
//!
//! The pending confirmation is `confirm.json` in the interface's records ([`Pending`]). Its timer is a
//! detached tailwall process that holds an exclusive `flock` on `confirm-<gen>.timer` for as long as it
//! lives (the lock is taken by the arming process and inherited by the timer), so any command can ask
//! the kernel whether the timer still runs — a killed timer (kill -9, a service manager stopping its
//! unit) is noticed, and pid reuse cannot fool it.
//!
//! Every command that locks the interface settles the pending confirmation first ([`settle`]):
//! - a confirmation of a generation that is not live (a later apply or a rollback replaced it) is
//!   dropped and reported: it can no longer be confirmed, and its timer will not revert anything;
//! - a deadline that passed without `confirm` is a revert owed: if the timer is gone (or more than
//!   [`GRACE_SECS`] late), the command carries the revert out itself, as the timer would have (rollback
//!   to the newest kept generation, or detach after a first attach), and reports it.
use std::{os::fd::AsRawFd as _, os::unix::fs::OpenOptionsExt as _, path::PathBuf};

use serde::Serialize;

use super::{
    paths::{list_dir, remove_file, Paths},
    read_json,
    reconcile::View,
    write_json, Pending,
};
use crate::error::{file, IfaceError};

/// How late a running timer may be before another command carries out the revert itself.
pub const GRACE_SECS: u64 = 10;

/// Seconds since the Unix epoch.
pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `secs` (since the Unix epoch) as an ISO-8601 UTC time, `2026-11-30T16:29:09Z` (proleptic
/// Gregorian calendar; days to civil date after H. Hinnant, "chrono-Compatible Low-Level Date
/// Algorithms").
pub fn iso_utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The pending `--confirm` of an interface as `status` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PendingConfirm {
    /// The generation that reverts unless confirmed (always the live one).
    pub generation: u64,
    /// Deadline, seconds since the Unix epoch.
    pub deadline: u64,
    /// The timer process, as recorded when it was started.
    pub timer_pid: Option<u32>,
    /// The timer still holds its lock (it will revert at the deadline). `false`: it was killed;
    /// nothing reverts by itself — the next tailwall command on the interface after the deadline does.
    pub timer_running: bool,
}

fn timer_lock(paths: &Paths, generation: u64) -> PathBuf {
    paths.records.join(format!("confirm-{generation}.timer"))
}

/// Does a process hold the timer lock of `generation`'s confirmation?
pub(crate) fn timer_running(paths: &Paths, generation: u64) -> Result<bool, IfaceError> {
    let path = timer_lock(paths, generation);
    let f = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(file(&path)(e)),
    };
    // SAFETY: flock on an fd owned by `f`; the lock (if granted) is released when `f` closes.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) } == 0 {
        return Ok(false);
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(true)
    } else {
        Err(file(&path)(e))
    }
}

/// Remove the pending confirmation and every timer lock file (a live timer keeps its lock on the
/// unlinked file and exits at its next check, finding nothing pending).
pub(crate) fn clear(paths: &Paths) -> Result<(), IfaceError> {
    remove_file(&paths.confirm())?;
    for name in list_dir(&paths.records)? {
        if name.starts_with("confirm-") && name.ends_with(".timer") {
            remove_file(&paths.records.join(name))?;
        }
    }
    Ok(())
}

/// The pending confirmation of the live generation, for `status` (call after [`settle`]).
pub(crate) fn pending(paths: &Paths) -> Result<Option<PendingConfirm>, IfaceError> {
    let Some(p) = read_json::<Pending>(&paths.confirm())? else {
        return Ok(None);
    };
    Ok(Some(PendingConfirm {
        generation: p.generation,
        deadline: p.deadline,
        timer_pid: p.timer_pid,
        timer_running: timer_running(paths, p.generation)?,
    }))
}

/// What [`settle`] must do about a pending confirmation (pure: tested without a kernel).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Settle {
    /// Nothing pending, or a deadline still ahead (or a running timer within its grace).
    Keep,
    /// The pending generation is not live: drop the confirmation.
    Stale { live: Option<u64> },
    /// The deadline passed unconfirmed and the timer is gone or too late: revert now.
    Revert,
}

pub(crate) fn decide(p: &Pending, live: Option<u64>, timer_running: bool, now: u64) -> Settle {
    if live != Some(p.generation) {
        return Settle::Stale { live };
    }
    if now < p.deadline || (timer_running && now < p.deadline.saturating_add(GRACE_SECS)) {
        return Settle::Keep;
    }
    Settle::Revert
}

/// Settle the pending confirmation of a locked, reconciled interface (see the module docs). Reports
/// what it did in `view.repaired` and updates `view`.
pub(crate) fn settle(paths: &Paths, view: &mut View) -> Result<(), IfaceError> {
    let Some(p) = read_json::<Pending>(&paths.confirm())? else {
        return Ok(());
    };
    let running = timer_running(paths, p.generation)?;
    match decide(&p, view.live, running, now()) {
        Settle::Keep => Ok(()),
        Settle::Stale { live } => {
            clear(paths)?;
            view.repaired.push(match live {
                Some(l) => format!(
                    "dropped the pending --confirm of generation {}: generation {l} is live (a later apply or a rollback replaced it)",
                    p.generation
                ),
                None => format!(
                    "dropped the pending --confirm of generation {}: nothing of tailwall is live",
                    p.generation
                ),
            });
            Ok(())
        }
        Settle::Revert => {
            let why = format!(
                "the --confirm deadline of generation {} passed at {} without `tailwall confirm`{}",
                p.generation,
                iso_utc(p.deadline),
                if running {
                    " and its timer is late"
                } else {
                    " and its timer is gone"
                }
            );
            if view.previous.is_empty() {
                super::detach_locked(paths)?;
                view.repaired
                    .push(format!("{why}: detached (it was the first attach)"));
                view.live = None;
                view.link = super::reconcile::LinkState::Absent;
            } else {
                let to = super::rollback_locked(paths, view)?;
                view.repaired
                    .push(format!("{why}: reverted to generation {to}"));
                view.live = Some(to);
                view.previous.retain(|&g| g < to);
            }
            Ok(())
        }
    }
}

/// Write the pending confirmation of the live `generation` and start its timer with `timer`, which
/// inherits the timer lock (held for as long as the timer runs). Call with the interface lock held.
pub(crate) fn arm(
    paths: &Paths,
    generation: u64,
    deadline: u64,
    mut timer: std::process::Command,
) -> Result<u32, IfaceError> {
    use std::os::unix::process::CommandExt as _;
    clear(paths)?;
    write_json(
        &paths.confirm(),
        &Pending {
            generation,
            deadline,
            timer_pid: None,
        },
    )?;
    let path = timer_lock(paths, generation);
    let f = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(file(&path))?;
    // SAFETY: flock on an fd owned by `f`.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(file(&path)(std::io::Error::last_os_error()));
    }
    let fd = f.as_raw_fd();
    // SAFETY: in the child between fork and exec, only fcntl (async-signal-safe) on an fd this
    // process owns: the timer inherits the locked file description.
    unsafe {
        timer.pre_exec(move || {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = timer.spawn().map_err(|source| IfaceError::File {
        path: path.clone(),
        source: std::io::Error::new(
            source.kind(),
            format!("starting the --confirm timer: {source}"),
        ),
    })?;
    let pid = child.id();
    write_json(
        &paths.confirm(),
        &Pending {
            generation,
            deadline,
            timer_pid: Some(pid),
        },
    )?;
    // Our copy of the lock goes; the timer's stays.
    drop(f);
    Ok(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(generation: u64, deadline: u64) -> Pending {
        Pending {
            generation,
            deadline,
            timer_pid: Some(1),
        }
    }

    #[test]
    fn iso_times_are_utc_calendar_dates() {
        // Checked against Python's datetime.utcfromtimestamp.
        assert_eq!(iso_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_utc(1_796_056_149), "2026-11-30T16:29:09Z");
        assert_eq!(iso_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso_utc(4_102_444_800), "2100-01-01T00:00:00Z");
    }

    #[test]
    fn a_confirmation_of_a_generation_that_is_not_live_is_stale() {
        // Found by a tester: gen 2 pending, gen 3 applied: status showed gen 2 pending forever.
        assert_eq!(
            decide(&p(2, 100), Some(3), true, 50),
            Settle::Stale { live: Some(3) }
        );
        assert_eq!(
            decide(&p(2, 100), None, false, 50),
            Settle::Stale { live: None }
        );
    }

    #[test]
    fn a_passed_deadline_is_a_revert_owed_unless_a_running_timer_is_within_grace() {
        assert_eq!(decide(&p(2, 100), Some(2), true, 99), Settle::Keep);
        assert_eq!(decide(&p(2, 100), Some(2), false, 99), Settle::Keep);
        assert_eq!(decide(&p(2, 100), Some(2), false, 100), Settle::Revert);
        assert_eq!(decide(&p(2, 100), Some(2), true, 100), Settle::Keep);
        assert_eq!(
            decide(&p(2, 100), Some(2), true, 100 + GRACE_SECS),
            Settle::Revert
        );
        assert_eq!(
            decide(&p(2, u64::MAX), Some(2), true, u64::MAX - 1),
            Settle::Keep
        );
    }
}
