#!/usr/bin/env bash
# Measures `stele serve` with the load generator, and the store benchmark's raw LMDB baseline in the
# same run. Builds everything in release mode first. Usage: Tools/bench-daemon.sh [seconds per scenario]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-8}"
Tools/setup.sh
swift build -c release >/dev/null
swift build -c release --package-path Tools/LoadGenerator >/dev/null
swift build -c release --package-path Tools/StoreBenchmark >/dev/null
load=Tools/LoadGenerator/.build/release/LoadGenerator
work=$(mktemp -d)
trap 'kill $daemon 2>/dev/null || true; rm -rf "$work"' EXIT
(cd "$work" && exec "$OLDPWD/.build/release/stele" serve 2>"$work/serve.log") &
daemon=$!
for _ in $(seq 100); do [ -S "$work/stele-data/stele.sock" ] && break; sleep 0.1; done
socket="$work/stele-data/stele.sock"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB"
eps() { sed -E 's/.*events\/s=([0-9]+).*/\1/'; }
# Each scenario twice: pings (the same socket, framing, decoder and reply path with no store behind
# them: what this machine's transport allows) and appends, with their ratio.
scenario() {
    local ping append
    ping=$("$load" --socket "$socket" --op ping --seconds "$seconds" "$@")
    append=$("$load" --socket "$socket" --seconds "$seconds" "$@")
    echo "$ping"
    echo "$append"
    echo "  appends/pings = $(awk -v a="$(echo "$append" | eps)" -v p="$(echo "$ping" | eps)" 'BEGIN { printf "%.3f", a / p }')"
    last=$append
}
scenario --clients 4
rate=$(echo "$last" | eps)
"$load" --socket "$socket" --clients 4 --seconds "$seconds" --rate $((rate / 2))
for clients in 1 8 32; do scenario --clients "$clients" --mode wait; done
kill -TERM $daemon; wait $daemon || true
echo "store benchmark (raw LMDB baseline in the same run):"
STELE_BENCH_SCALE=0.5 Tools/StoreBenchmark/.build/release/StoreBenchmark
