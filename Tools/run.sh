#!/usr/bin/env bash
# Installs what is missing, builds a release binary and runs the daemon on the embedded defaults:
# data ./stele-data, socket ./stele-data/stele.sock, key ./stele-key/signing.key, checkpoints ./stele-checkpoints.
set -euo pipefail
Tools_dir="$(cd "$(dirname "$0")" && pwd)"
"$Tools_dir/setup.sh"
swift build -c release --package-path "$Tools_dir/.."
exec "$Tools_dir/../.build/release/stele" serve "$@"
