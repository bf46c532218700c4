#!/usr/bin/env bash
# Measures `stele verify` decoding entries on every processor against one thread doing everything
# (`--threads 1`, the baseline), on the same store in the same run. The store is filled by the
# daemon with the load generator's mix. Usage: Tools/bench-verify.sh [seconds of load to store]
#
# Each variant runs STELE_BENCH_ROUNDS times (default 3), interleaved; the medians are compared.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-4}"
rounds="${STELE_BENCH_ROUNDS:-3}"
Tools/setup.sh
swift build -c release >/dev/null
swift build -c release --package-path Tools/LoadGenerator >/dev/null
stele="$PWD/.build/release/stele"
work=$(mktemp -d)
daemon=""
trap '[ -n "$daemon" ] && kill "$daemon" 2>/dev/null; rm -rf "$work"' EXIT
(cd "$work" && "$stele" init >/dev/null && exec "$stele" serve 2>"$work/serve.log") &
daemon=$!
for _ in $(seq 100); do [ -S "$work/stele-data/stele.sock" ] && break; sleep 0.1; done
[ -S "$work/stele-data/stele.sock" ] || { echo "the daemon did not start: $(cat "$work/serve.log")" >&2; exit 1; }
Tools/LoadGenerator/.build/release/LoadGenerator --socket "$work/stele-data/stele.sock" --seconds "$seconds" >/dev/null
kill -TERM "$daemon"; wait "$daemon" || true; daemon=""
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB"
run() {  # run THREADS: prints seconds; fails unless the store verifies
    local start end
    start=$(date +%s.%N)
    "$stele" verify --data "$work/stele-data" --threads "$1" >"$work/verify.out" || { cat "$work/verify.out" >&2; exit 1; }
    end=$(date +%s.%N)
    awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }'
}
one=(); all=()
for _ in $(seq "$rounds"); do
    one+=("$(run 1)")
    all+=("$(run "$(nproc)")")
done
entries=$(sed -E 's/^OK: ([0-9]+) entries.*/\1/' "$work/verify.out")
median() { printf '%s\n' "$@" | sort -g | sed -n "$(( ($# + 1) / 2 ))p"; }
m1=$(median "${one[@]}"); mn=$(median "${all[@]}")
awk -v e="$entries" -v a="$m1" -v b="$mn" -v n="$(nproc)" -v r1="${one[*]}" -v rn="${all[*]}" 'BEGIN {
    printf "stele verify of %d entries, median of rounds (s: %s | %s)\n", e, r1, rn
    printf "  --threads 1 (baseline): %.2f s, %.0f entries/s\n", a, e / a
    printf "  --threads %d:            %.2f s, %.0f entries/s, %.2fx the baseline\n", n, b, e / b, a / b
}'
