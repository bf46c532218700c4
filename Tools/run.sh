#!/usr/bin/env bash
# Installs what is missing, builds a release binary and runs the daemon on the embedded defaults:
# data ./stele-data, socket ./stele-data/stele.sock, key ./stele-key/signing.key, checkpoints ./stele-checkpoints
# (created by `stele init` on the first run with no arguments).
set -euo pipefail
Tools_dir="$(cd "$(dirname "$0")" && pwd)"
"$Tools_dir/setup.sh"
swift build -c release --package-path "$Tools_dir/.."
stele="$Tools_dir/../.build/release/stele"
# The embedded default's log is created on first run; any other --data must be made with stele init.
if [ $# -eq 0 ] && [ ! -e ./stele-data/data.mdb ] && [ ! -e ./stele-checkpoints ]; then "$stele" init; fi
exec "$stele" serve "$@"
