#!/usr/bin/env bash
# tailwall: one-shot, idempotent machine set-up (fast when everything is already there).
# Installs: nightly rust-src (eBPF build), bpf-linker (LLVM 22 from nightly's libLLVM),
# iptables (legacy + nft), iproute2, tcpdump-free pcap tooling is not needed (we write pcaps ourselves).
set -euo pipefail

log() { printf 'setup: %s\n' "$*" >&2; }
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# --- Debian packages --------------------------------------------------------------------------
need_pkgs=()
command -v iptables-legacy-restore >/dev/null 2>&1 || need_pkgs+=(iptables)
command -v ip >/dev/null 2>&1 || need_pkgs+=(iproute2)
command -v nft >/dev/null 2>&1 || need_pkgs+=(nftables)
command -v ping >/dev/null 2>&1 || need_pkgs+=(iputils-ping)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "apt-get install ${need_pkgs[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

# --- Rust toolchains --------------------------------------------------------------------------
NIGHTLY="${TAILWALL_NIGHTLY:-nightly}"
if ! rustup toolchain list | grep -q "^${NIGHTLY}"; then
  log "rustup toolchain install $NIGHTLY"
  rustup toolchain install "$NIGHTLY" --profile minimal
fi
if ! rustup component list --toolchain "$NIGHTLY" --installed 2>/dev/null | grep -q '^rust-src'; then
  log "rustup component add rust-src --toolchain $NIGHTLY"
  rustup component add rust-src --toolchain "$NIGHTLY"
fi

# --- bpf-linker against nightly's own LLVM 22 -------------------------------------------------
# bpf-linker records the libLLVM path it was linked against, so the prefix must be a stable path.
LLVM_PREFIX="${LLVM_PREFIX:-/opt/tailwall-llvm}"
sysroot="$(rustc +"$NIGHTLY" --print sysroot)"
libllvm="$(ls "$sysroot"/lib/libLLVM.so.22.1-rust-* 2>/dev/null | head -n1 || true)"
if [ -z "$libllvm" ]; then
  echo "setup: nightly toolchain at $sysroot has no libLLVM.so.22.1-rust-*; cannot build bpf-linker" >&2
  exit 1
fi
$SUDO mkdir -p "$LLVM_PREFIX/lib"
# libLLVM.so for the build (llvm-sys), and the soname itself for the runtime loader (rpath below).
for name in libLLVM.so "$(basename "$libllvm")"; do
  if [ "$(readlink "$LLVM_PREFIX/lib/$name" 2>/dev/null)" != "$libllvm" ]; then
    $SUDO ln -sfn "$libllvm" "$LLVM_PREFIX/lib/$name"
  fi
done
BPF_LINKER_VERSION="0.13"
if ! bpf-linker --version 2>/dev/null | grep -q "bpf-linker ${BPF_LINKER_VERSION}"; then
  log "cargo install bpf-linker ${BPF_LINKER_VERSION} (LLVM 22 from $libllvm)"
  LLVM_PREFIX="$LLVM_PREFIX" RUSTFLAGS="-C link-arg=-Wl,-rpath,$LLVM_PREFIX/lib" cargo +"$NIGHTLY" install bpf-linker --locked --version "~${BPF_LINKER_VERSION}" \
    --no-default-features --features llvm-22 --force
fi
log "ok: $(bpf-linker --version), $(rustc +"$NIGHTLY" --version), $(iptables-legacy --version)"
