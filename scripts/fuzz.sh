#!/usr/bin/env bash
# tailwall: run the cargo-fuzz targets (fuzz/) on nightly. Installs cargo-fuzz on demand.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     default: 300 seconds each, every target
#
# Seeds: examples/rulesets/*, compiler/tests/fixtures/**, and ../shared/corpus dumps (when present),
# copied into fuzz/corpus/<target>/ (kept between runs; not in git). Crashes land in
# fuzz/artifacts/<target>/; reproduce one with `cargo +nightly fuzz run <target> <file>`.
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${1:-300}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then targets=(iptables_parse yaml_parse); fi
NIGHTLY="${TAILWALL_NIGHTLY:-nightly}"

if ! cargo +"$NIGHTLY" fuzz --version >/dev/null 2>&1; then
  echo "fuzz: cargo install cargo-fuzz --locked" >&2
  cargo install cargo-fuzz --locked
fi

seed() {
  local target=$1 dir=fuzz/corpus/$1 f out
  mkdir -p "$dir"
  case $target in
    iptables_parse)
      cp -n examples/rulesets/*.rules "$dir"/ 2>/dev/null || true
      find compiler/tests/fixtures -type f ! -name '*.yaml' -exec cp -n {} "$dir"/ \; 2>/dev/null || true
      for d in ../shared/corpus/dumps ../shared/corpus/iptables-testsuite/shell-dumps; do
        [ -d "$d" ] && cp -n "$d"/* "$dir"/ 2>/dev/null || true
      done
      # One seed per iptables test file: every rule of it appended to INPUT.
      for f in ../shared/corpus/iptables-testsuite/extensions/*.t; do
        [ -f "$f" ] || continue
        out="$dir/t-$(basename "$f" .t).rules"
        [ -f "$out" ] && continue
        { echo '*filter'; echo ':INPUT ACCEPT [0:0]'
          grep -v '^[:*#@%]' "$f" | cut -d';' -f1 | grep -v '^$' | sed 's/^/-A INPUT /'
          echo 'COMMIT'; } > "$out"
      done ;;
    yaml_parse)
      cp -n examples/rulesets/*.yaml "$dir"/ 2>/dev/null || true
      find compiler/tests/fixtures -type f -name '*.yaml' -exec cp -n {} "$dir"/ \; 2>/dev/null || true ;;
  esac
}

for t in "${targets[@]}"; do
  seed "$t"
  echo "fuzz: $t for ${secs}s" >&2
  cargo +"$NIGHTLY" fuzz run "$t" "fuzz/corpus/$t" -- -max_total_time="$secs" -max_len=8192 -print_final_stats=1
done
