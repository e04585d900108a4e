#!/usr/bin/env bash
# tailwall's whole test suite: set-up, then unit + snapshot + proptest tiers, then the kernel and oracle
# tiers (root; with TAILWALL_REQUIRE_KERNEL=1 a non-root run fails instead of skipping).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -q -- -D warnings
# Userspace tiers (no root needed).
cargo test --workspace --exclude tailwall-tests
# Kernel and oracle tiers: one thread, fresh netns per test. The oracle's summary lines
# ("oracle: 20 rulesets x 200 frames: 4000 compared, 0 mismatches ...") are shown.
cargo test -p tailwall-tests -- --test-threads=1 --skip oracle_ --skip generated_files_agree_with
# The differential test against iptables-legacy-restore (seeded; its summary and every difference's kind).
cargo test -p tailwall-tests --test restore_diff -- --show-output
cargo test -p tailwall-tests --test oracle -- --test-threads=1 --show-output
# The oracle at every hook (INPUT, FORWARD, OUTPUT) against iptables-legacy and iptables-nft, and the
# named iptables-nft departures; summary lines per hook and flavor ("oracle FORWARD iptables-nft: ...").
# The live test there runs target/debug/tailwall (built by the loader's tests above; a no-op then).
cargo build -p tailwall-loader --bin tailwall
cargo test -p tailwall-tests --test oracle_hooks -- --test-threads=1 --show-output
