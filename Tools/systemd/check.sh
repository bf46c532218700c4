#!/usr/bin/env bash
# Checks the unit file with systemd-analyze verify, its ExecStart pointed at a built stele, and the
# sample configuration with the daemon's own parser. Usage: Tools/systemd/check.sh [path/to/stele]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
stele="$(realpath "${1:-$here/../../.build/debug/stele}")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sed "s|/usr/local/bin/stele|$stele|" "$here/stele.service" >"$work/stele.service"
out=$(systemd-analyze verify --man=no "$work/stele.service" 2>&1 || true)
[ -z "$out" ] || { echo "$out" >&2; exit 1; }
# The sample configuration parses (paths point at a directory without a log: the refusal shows it read it).
msg=$("$stele" serve --config "$here/stele.json" --data "$work/nothing" --socket "$work/s.sock" --key "$work/k" --checkpoints "$work/c" 2>&1 || true)
case "$msg" in *"no log at"*) ;; *) echo "the sample configuration did not parse: $msg" >&2; exit 1 ;; esac
echo "stele.service verifies; stele.json parses"
