#!/usr/bin/env bash
# Retention at scale (issue 29's figures):
# - prune throughput on an N-entry test-mode ledger with half its entries past retention, against
#   the rate the same run appended them at (StoreBenchmark --prune N);
# - the daemon's append throughput (4 pipelining clients) while an operator's prune of such a
#   ledger runs beside it, against the same load with no prune, in the same run.
# Usage: Tools/bench-prune.sh [entries (default 1000000)] [seconds of load (default 8)]
set -euo pipefail
cd "$(dirname "$0")/.."
entries="${1:-1000000}"
seconds="${2:-8}"
Tools/setup.sh
swift build -c release >/dev/null
swift build -c release --package-path Tools/LoadGenerator >/dev/null
swift build -c release --package-path Tools/StoreBenchmark >/dev/null
stele="$PWD/.build/release/stele"
bench=Tools/StoreBenchmark/.build/release/StoreBenchmark
load=Tools/LoadGenerator/.build/release/LoadGenerator
work=$(mktemp -d)
daemon=""
trap '[ -n "$daemon" ] && kill "$daemon" 2>/dev/null; rm -rf "$work"' EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB"
mkdir -p "$work/pruned" && "$bench" --prune "$entries" --keep "$work/pruned"
rm -rf "$work/pruned"

mkdir -p "$work/data" && chmod 700 "$work/data"
"$bench" --prune "$entries" --keep "$work/data" --build-only --key "$work/key/signing.key"
(cd "$work" && exec "$stele" serve --data "$work/data" --key "$work/key/signing.key" 2>"$work/serve.log") &
daemon=$!
for _ in $(seq 300); do [ -S "$work/data/stele.sock" ] && break; sleep 0.1; done
[ -S "$work/data/stele.sock" ] || { echo "the daemon did not start: $(cat "$work/serve.log")" >&2; exit 1; }
rate() { "$load" --socket "$work/data/stele.sock" --clients 4 --seconds "$seconds" | sed -E 's/.*events\/s=([0-9]+).*/\1/'; }
before=$(rate)
start=$(date +%s.%N)
"$stele" prune --data "$work/data" --now 2031-01-02T00:00:00Z --request bench --reason "bench-prune.sh" --json >"$work/prune.json" &
prune=$!
during=$(rate)
wait "$prune"
end=$(date +%s.%N)
after=$(rate)
kill -TERM "$daemon"; wait "$daemon" || true; daemon=""
pruned=$(sed -E 's/.*"pruned":([0-9]+).*/\1/' "$work/prune.json")
awk -v b="$before" -v d="$during" -v a="$after" -v p="$pruned" -v s="$start" -v e="$end" 'BEGIN {
    printf "daemon appends/s, 4 pipelining clients: without prune %d (before) and %d (after); during an operator prune %d: %.2fx the mean without (goal >= 0.7)\n", b, a, d, d / ((b + a) / 2)
    printf "the prune through the daemon: %d entries in %.1f s (%.0f entries/s) beside that load\n", p, e - s, p / (e - s)
}'
"$stele" verify --data "$work/data" >/dev/null && echo "the store verifies after the prune"
# Compaction of that store (daemon stopped), against copying the store file in the same run.
bytes=$(stat -c %s "$work/data/data.mdb")
start=$(date +%s.%N); cp "$work/data/data.mdb" "$work/copy.mdb"; sync "$work/copy.mdb"; end=$(date +%s.%N); rm -f "$work/copy.mdb"
copied=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
start=$(date +%s.%N)
"$stele" compact --data "$work/data" --request bench --reason "bench-prune.sh" --json >"$work/compact.json"
end=$(date +%s.%N)
awk -v a="$start" -v b="$end" -v c="$copied" -v n="$bytes" -v r="$(cat "$work/compact.json")" 'BEGIN {
    printf "stele compact of the pruned %.0f-byte store: %.2f s (a plain copy of the file with sync: %.2f s); %s\n", n, b - a, c, r
}'
"$stele" verify --data "$work/data" >/dev/null && echo "the store verifies after compaction"
