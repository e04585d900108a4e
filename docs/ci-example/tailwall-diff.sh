#!/usr/bin/env bash
# Compare the firewall rules of a pull request's base and head, as a CI step any runner can execute.
#
#   tailwall-diff.sh RULES_PATH [BASE_REF] [HEAD_REF]
#
# RULES_PATH is the rules file in the repository (iptables-save or .yaml/.yml; base and head may
# differ in format if the file was migrated: pass BASE_PATH=... to name the base's file).
# BASE_REF defaults to $GITHUB_BASE_REF (origin/<base>), HEAD_REF to HEAD.
#
# Exit-code contract (tailwall diff's, passed through):
#   0  equivalent: every packet, at every hook, gets the same verdict from base and head
#   1  different: the report (stdout, and $REPORT_DIR/diff.txt, diff.json, counterexamples.pcap)
#      lists one counterexample packet per difference, with the deciding rule on each side
#   2  a rules file does not parse (or cannot be read); 3: it is not valid (semantic error)
# Needs no root and no kernel: the comparison is done by the compiler's analysis engine.
set -euo pipefail
rules=${1:?usage: tailwall-diff.sh RULES_PATH [BASE_REF] [HEAD_REF]}
base_ref=${2:-origin/${GITHUB_BASE_REF:-main}}
head_ref=${3:-HEAD}
base_path=${BASE_PATH:-$rules}
report=${REPORT_DIR:-tailwall-report}
tailwall=${TAILWALL:-tailwall}

mkdir -p "$report"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Keep the extension: it selects the front end (YAML or iptables-save).
old="$work/base-$(basename "$base_path")"
new="$work/head-$(basename "$rules")"
git show "$base_ref:$base_path" > "$old"
git show "$head_ref:$rules" > "$new"

set +e
"$tailwall" diff "$old" "$new" --limit 20 --pcap-out "$report/counterexamples.pcap" | tee "$report/diff.txt"
code=${PIPESTATUS[0]}
"$tailwall" diff "$old" "$new" --limit 20 -o json > "$report/diff.json"
set -e

case $code in
  0) echo "tailwall: no packet is treated differently by $head_ref" ;;
  1) echo "tailwall: $head_ref changes the verdict of the packets above (see $report/)" ;;
  *) echo "tailwall: the rules do not load (exit $code); see the diagnostics above" ;;
esac
# Where the runner can comment on the pull request (GitHub Actions: `gh` and GITHUB_TOKEN), post it.
if [ "$code" = 1 ] && [ -n "${PR_NUMBER:-}" ] && command -v gh >/dev/null; then
  { echo '### Firewall behaviour changes (`tailwall diff`)'; echo '```'; cat "$report/diff.txt"; echo '```'; } \
    | gh pr comment "$PR_NUMBER" --body-file - || echo "tailwall: could not post the comment" >&2
fi
exit "$code"
