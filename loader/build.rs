//! Builds the eBPF object (`runtime-ebpf/prog`, crate `tailwall-ebpf`) with the nightly toolchain and
//! bpf-linker through aya-build, into `OUT_DIR/tailwall-ebpf`, which `src/object.rs` embeds.
//!
//! The eBPF crate is its own workspace (excluded from ours), so cargo is started from its directory.
//! Any change under `runtime-ebpf/` (program sources or the ABI crate) rebuilds it.
use std::path::PathBuf;

use anyhow::Context as _;

/// `TAILWALL_COMMIT` for `--version`: the short commit of the checkout (`+dirty` with uncommitted
/// changes), or `unknown` outside a git checkout.
fn commit(manifest_dir: &std::path::Path) {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(manifest_dir)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let id = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    println!(
        "cargo:rustc-env=TAILWALL_COMMIT={id}{}",
        if dirty { "+dirty" } else { "" }
    );
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        // logs/HEAD is appended on every commit, checkout and rebase of this worktree.
        println!("cargo:rerun-if-changed={dir}/logs/HEAD");
        println!("cargo:rerun-if-changed={dir}/HEAD");
    }
}

fn main() -> anyhow::Result<()> {
    let manifest_dir =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").context("CARGO_MANIFEST_DIR not set")?);
    let runtime = manifest_dir
        .join("../runtime-ebpf")
        .canonicalize()
        .context("runtime-ebpf/ not found")?;
    commit(&manifest_dir);
    let prog = runtime.join("prog");
    for watched in [
        "prog/src",
        "prog/Cargo.toml",
        "prog/Cargo.lock",
        "abi/src",
        "abi/Cargo.toml",
    ] {
        println!("cargo:rerun-if-changed={}", runtime.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=TAILWALL_NIGHTLY");
    let prog_dir = prog
        .to_str()
        .context("runtime-ebpf/prog path is not UTF-8")?
        .to_owned();
    // aya-build runs `cargo build --package tailwall-ebpf` in the current directory.
    std::env::set_current_dir(&prog).context("cannot enter runtime-ebpf/prog")?;
    // aya-build relays the nested cargo's stderr as build-script warnings; keep only real diagnostics.
    std::env::set_var("CARGO_TERM_QUIET", "true");
    let nightly = std::env::var("TAILWALL_NIGHTLY").ok();
    let toolchain = match nightly.as_deref() {
        Some(t) if !t.is_empty() => aya_build::Toolchain::Custom(t),
        _ => aya_build::Toolchain::Nightly,
    };
    aya_build::build_ebpf(
        [aya_build::Package { name: "tailwall-ebpf", root_dir: &prog_dir, ..Default::default() }],
        toolchain,
    )
    .context("building the eBPF object (needs the nightly toolchain with rust-src and bpf-linker: run scripts/setup.sh)")
}
