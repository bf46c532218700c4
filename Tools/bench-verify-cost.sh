#!/usr/bin/env bash
# The background verification's cost: append throughput (4 pipelining clients) of one daemon with
# its scheduled re-verification running (verify_interval_seconds 1, verify_cpu_percent 10) against
# the same daemon without it, on one store, alternating off/on/on/off ROUNDS times (default 3).
# Usage: Tools/bench-verify-cost.sh [ROUNDS] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
seconds="${2:-6}"
Tools/setup.sh
swift build -c release --product stele >/dev/null
swift build -c release --package-path Tools/LoadGenerator >/dev/null
bin="$PWD/.build/release/stele"
load="$PWD/Tools/LoadGenerator/.build/release/LoadGenerator"
work=$(mktemp -d)
trap 'pkill -P $$ 2>/dev/null || true; wait; rm -rf "$work"' EXIT
cd "$work"
echo '{"verify_interval_seconds": 0}' > off.json
echo '{"verify_interval_seconds": 1, "verify_cpu_percent": 10}' > on.json
run() {  # run CONFIG SECONDS: prints the events/s and whether a check was running meanwhile
    [ -e stele-data/data.mdb ] || "$bin" init >/dev/null
    "$bin" serve --config "$1" 2>serve.log & local pid=$!
    for _ in $(seq 600); do [ -S stele-data/stele.sock ] && break; sleep 0.1; done
    sleep 2  # the first check starts a second after serving
    local result running
    result=$("$load" --socket stele-data/stele.sock --clients 4 --seconds "$2" 2>&1 | tail -1 | sed -E 's/.*events\/s=([0-9]+).*/\1/')
    running=$( (pgrep -P "$pid" -f verify || true) | wc -l)
    kill "$pid"; wait "$pid" 2>/dev/null || true
    echo "${1%.json} events/s=$result verifier_running=$running"
}
run off.json 3 >/dev/null  # a store to verify
for _ in $(seq "$rounds"); do run off.json "$seconds"; run on.json "$seconds"; run on.json "$seconds"; run off.json "$seconds"; done | tee runs.txt
python3 - runs.txt <<'P'
import re, statistics, sys
runs = {"off": [], "on": []}
for line in open(sys.argv[1]):
    name, rate = line.split()[0], int(re.search(r"events/s=(\d+)", line).group(1))
    runs[name].append(rate)
on, off = statistics.median(runs["on"]), statistics.median(runs["off"])
print(f"median events/s: verifying {on:.0f}, not verifying {off:.0f}, ratio {on / off:.3f}")
P
