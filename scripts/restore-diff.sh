#!/usr/bin/env bash
# The differential test of the iptables front end against iptables-legacy-restore, for longer than CI:
#   scripts/restore-diff.sh SEED SECONDS
# generates restore files from SEED (u64) for SECONDS seconds (tests/tests/restore_diff.rs; the files are
# described in tests/src/restore_gen.rs), and prints every difference with its kind and a summary line
# ("restore_diff: seed …, N rules generated, …"). Exit status non-zero when a difference is unexplained.
# Root; takes the shared kernel-test lock (/tmp/tailwall-kernel.lock) so it never runs beside another
# engineer's kernel tests.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -ne 2 ]; then
    echo "usage: $0 SEED SECONDS" >&2
    exit 2
fi
export TAILWALL_RESTORE_DIFF_SEED="$1"
export TAILWALL_RESTORE_DIFF_SECONDS="$2"
export TAILWALL_REQUIRE_KERNEL=1
cargo test -p tailwall-tests --test restore_diff --no-run -q
exec flock /tmp/tailwall-kernel.lock \
    cargo test -p tailwall-tests --test restore_diff -q -- --nocapture
