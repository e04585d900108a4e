//! Keeping the kernel's connection tracking active in the network namespace while a generation that
//! tests `ct_state` is attached (`docs/decisions/0014-connection-tracking.md`).
//!
//! nf_conntrack registers its netfilter hooks in a namespace only on demand (`nf_ct_netns_get`: an
//! iptables `-m conntrack`/`-m state` rule, an nftables `ct` expression, NAT, tc `act_ct`, …). With
//! none, no connection gets an entry, every lookup from XDP/tc misses and every reply would be judged
//! `NEW`/`INVALID` — closed, but useless. [`ensure_active`] installs the nftables table [`TABLE`]
//! (`inet tailwall_ct`: one base chain at PREROUTING, priority raw, policy accept, one rule
//! `ct state invalid` without a verdict — it only holds the `ct` expression that keeps conntrack's
//! hooks registered for IPv4 and IPv6; it changes no verdict) with `nft -f -`, replacing it
//! atomically when it exists. `detach` leaves it: another interface may still need it, and it costs
//! one conntrack lookup the kernel does anyway once conntrack is active.
use std::io::Write as _;
use std::process::{Command, Stdio};

/// The nftables table kept by tailwall (family and name).
pub const TABLE: &str = "inet tailwall_ct";

/// The `nft -f` script: create-or-replace [`TABLE`] in one transaction.
const SCRIPT: &str = "table inet tailwall_ct\ndelete table inet tailwall_ct\n\
table inet tailwall_ct {\n\tchain keep {\n\t\ttype filter hook prerouting priority raw; policy accept;\n\
\t\tct state invalid\n\t}\n}\n";

/// Install [`TABLE`] in the calling thread's network namespace. `Err` says why, with what to do.
pub fn ensure_active() -> Result<(), String> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            format!("cannot run nft ({e}): it keeps conntrack active in this network namespace for ct_state (install the nftables package)")
        })?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(SCRIPT.as_bytes())
        .map_err(|e| format!("nft -f -: {e}"))?;
    let out = child
        .wait_with_output()
        .map_err(|e| format!("nft -f -: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "nft could not install table {TABLE} (keeps conntrack active for ct_state): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}
