#!/usr/bin/env bash
# Consent at scale (issue 28's figures), each against a baseline from the same run:
# - in process (StoreBenchmark --consent N): a current lookup against one entry read, a
#   point-in-time answer for a subject with 100 events against `query --subject` for it, and a
#   list of every allowed subject against reading every grant;
# - over the socket: consent questions from 4 pipelining clients against pings, interleaved rounds;
# - `stele consent list` over every subject, as a user runs it, against `stele query --kind
#   consent.granted` on the same store.
# Usage: Tools/bench-consent.sh [entries (default 1000000)] [seconds per socket run (default 5)]
set -euo pipefail
cd "$(dirname "$0")/.."
entries="${1:-1000000}"
seconds="${2:-5}"
rounds="${STELE_BENCH_ROUNDS:-3}"
Tools/setup.sh
swift build -c release >/dev/null
swift build -c release --package-path Tools/LoadGenerator >/dev/null
swift build -c release --package-path Tools/StoreBenchmark >/dev/null
stele="$PWD/.build/release/stele"
work=$(mktemp -d)
daemon=""
trap '[ -n "$daemon" ] && kill "$daemon" 2>/dev/null; rm -rf "$work"' EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB"
serve() {
    [ -e "$work/data/data.mdb" ] || (cd "$work" && "$stele" init --data "$work/data" --origin bench.example/consent >/dev/null)
    (cd "$work" && exec "$stele" serve --data "$work/data" --origin bench.example/consent 2>"$work/serve.log") &
    daemon=$!
    for _ in $(seq 300); do [ -S "$work/data/stele.sock" ] && break; sleep 0.1; done
    [ -S "$work/data/stele.sock" ] || { echo "the daemon did not start: $(cat "$work/serve.log")" >&2; exit 1; }
}
# The daemon creates the store and its key; the benchmark then fills the store directly.
serve
kill -TERM "$daemon"; wait "$daemon" || true; daemon=""
Tools/StoreBenchmark/.build/release/StoreBenchmark --consent "$entries" --keep "$work/data"
serve
rate() {  # rate OP: requests/s of one run; fails on any error reply
    local out
    out=$(Tools/LoadGenerator/.build/release/LoadGenerator --socket "$work/data/stele.sock" --op "$1" --clients 4 --seconds "$seconds")
    echo "$out" | grep -q ' errors=0' || { echo "errors in run: $out" >&2; exit 1; }
    echo "$out" | sed -E 's/.*events\/s=([0-9]+).*/\1/'
}
consent=(); ping=()
for _ in $(seq "$rounds"); do
    consent+=("$(rate consent)")
    ping+=("$(rate ping)")
done
kill -TERM "$daemon"; wait "$daemon" || true; daemon=""
median() { printf '%s\n' "$@" | sort -g | sed -n "$(( ($# + 1) / 2 ))p"; }
mc=$(median "${consent[@]}"); mp=$(median "${ping[@]}")
awk -v c="$mc" -v p="$mp" -v rc="${consent[*]}" -v rp="${ping[*]}" 'BEGIN {
    printf "socket, 4 pipelining clients, median of rounds (consent: %s | ping: %s)\n", rc, rp
    printf "  consent questions: %.0f/s, pings: %.0f/s, ratio %.2f (goal >= 0.5)\n", c, p, c / p
}'
timed() {  # timed COMMAND...: seconds, output discarded
    local start end
    start=$(date +%s.%N); "$@" >/dev/null; end=$(date +%s.%N)
    awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }'
}
list=(); query=()
for _ in $(seq "$rounds"); do
    list+=("$(timed "$stele" consent list --purpose marketing.email --data "$work/data")")
    query+=("$(timed "$stele" query --kind consent.granted --data "$work/data")")
done
allowed=$("$stele" consent list --purpose marketing.email --data "$work/data" | wc -l)
ml=$(median "${list[@]}"); mq=$(median "${query[@]}")
awk -v l="$ml" -v q="$mq" -v n="$allowed" -v rl="${list[*]}" -v rq="${query[*]}" 'BEGIN {
    printf "stele consent list --purpose marketing.email: %d subjects in %.2f s (goal < 2 s); stele query --kind consent.granted: %.2f s; ratio %.2f (s: %s | %s)\n", n, l, q, l / q, rl, rq
}'
