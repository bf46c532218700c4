#!/usr/bin/env bash
# Counts instructions with valgrind's callgrind instead of timing, so that a change to the append
# path can be measured on a VM whose speed swings by a third within minutes. Counts are repeatable
# to about 0.1% for the same binary and input, whatever else the machine is doing.
#
# Usage: Tools/count-instructions.sh [BASE_COMMIT] [REQUESTS] [DAEMON_SECONDS]
#   Measures this checkout and, given BASE_COMMIT, the same for that commit (built in a temporary
#   worktree), and prints the ratio head/base for each row:
#   - the request path on one thread (StoreBenchmark --requests REQUESTS, 5 rounds): instructions per
#     request to decode, prepare and reply, and JSONSerialization parsing the same lines (the
#     baseline: it does not change between the two builds);
#   - with DAEMON_SECONDS > 0, the whole daemon under callgrind while the load generator drives it
#     with 4 pipelining clients for that long: instructions per appended event over every thread
#     (start-up included; batches are larger than at full speed, as callgrind runs one thread at a
#     time, so compare two builds by this row, not with the request path's).
#
# Caveat: under valgrind the CPU reports no SHA extensions, so SHA-256 runs libcrypto's generic code
# and Stele's 8-lane AVX2 code; hashing is counted at several times what the real CPU executes.
# Valgrind 3.19 cannot read the DWARF of Swift 6.3 binaries: the binaries are measured with their
# debug information stripped (`strip -g`), which leaves the symbol names.
set -euo pipefail
cd "$(dirname "$0")/.."
base="${1:-}"
requests="${2:-2000}"
daemon_seconds="${3:-0}"
Tools/setup.sh
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
work=$(mktemp -d)
cleanup() {
    pkill -f "$work/" 2>/dev/null || true
    [ -n "$base" ] && git worktree remove --force "$work/base" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

quietly() {  # quietly COMMAND...: its output only if it fails
    "$@" >"$work/step.log" 2>&1 || { cat "$work/step.log" >&2; exit 1; }
}

build() {  # build LABEL TREE: stripped copies of the store benchmark and the daemon
    quietly swift build -c release --package-path "$2" --product stele
    quietly swift build -c release --package-path "$2/Tools/StoreBenchmark"
    strip -g -o "$work/$1-bench" "$2/Tools/StoreBenchmark/.build/release/StoreBenchmark"
    strip -g -o "$work/$1-stele" "$2/.build/release/stele"
}

inclusive() {  # inclusive FILE PATTERN: the largest inclusive count of a function matching PATTERN
    callgrind_annotate --inclusive=yes "$1" 2>/dev/null | grep -E "$2" | head -1 | awk '{gsub(",", "", $1); print $1}'
}

requestPath() {  # requestPath LABEL: decode prepare reply baseline, instructions per request
    local out="$work/$1.requests.cg"
    valgrind --tool=callgrind --callgrind-out-file="$out" "$work/$1-bench" --requests "$requests" >/dev/null 2>&1
    local calls=$((requests * 5))
    local decode prepare reply baseline
    decode=$(inclusive "$out" 'RequestDecoderV6decode4line6source')
    prepare=$(inclusive "$out" 'EventPreparerC7prepareyAA08PreparedC0CAA0C0VKF')
    reply=$(inclusive "$out" 'ReplyO7okBytes2id7receipt13includeHeader')
    baseline=$(inclusive "$out" 'JSONSerializationC10jsonObject4with7options')
    echo "$((decode / calls)) $((prepare / calls)) $((reply / calls)) $((baseline / calls))"
}

daemon() {  # daemon LABEL: instructions per appended event, every thread of the daemon
    local dir="$work/$1-daemon"
    mkdir -p "$dir"
    (cd "$dir" && { ! "$work/$1-stele" init --help >/dev/null 2>&1 || "$work/$1-stele" init >/dev/null; } && exec valgrind --tool=callgrind --callgrind-out-file="$dir/cg.out" "$work/$1-stele" serve 2>"$dir/serve.log") &
    local pid=$!
    for _ in $(seq 600); do [ -S "$dir/stele-data/stele.sock" ] && break; sleep 0.2; done
    Tools/LoadGenerator/.build/release/LoadGenerator --socket "$dir/stele-data/stele.sock" --clients 4 --seconds "$daemon_seconds" >"$dir/load.txt"
    sleep 2
    local appended
    appended=$(.build/release/stele status --socket "$dir/stele-data/stele.sock" | python3 -c 'import json, sys; print(json.load(sys.stdin)["appends"])')
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null || true
    local total
    total=$(callgrind_annotate "$dir/cg.out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
    echo "$((total / appended)) $appended"
}

ratio() { python3 -c "print(f'{$1 / $2:.3f}')"; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(valgrind --version)"
quietly swift build -c release --package-path Tools/LoadGenerator
build head .
if [ -n "$base" ]; then
    git worktree add --detach "$work/base" "$base" >/dev/null 2>&1
    build base "$work/base"
fi

read -r hd hp hr hb <<<"$(requestPath head)"
echo "request path, instructions per request ($requests lines of the load generator's mix, 5 rounds):"
echo "  head $(git describe --always --dirty): decode $hd  prepare $hp  reply $hr  (JSONSerialization on the same lines: $hb)"
if [ -n "$base" ]; then
    read -r bd bp br bb <<<"$(requestPath base)"
    echo "  base $base: decode $bd  prepare $bp  reply $br  (JSONSerialization on the same lines: $bb)"
    echo "  head/base: decode $(ratio "$hd" "$bd")  prepare $(ratio "$hp" "$bp")  reply $(ratio "$hr" "$br")  decode+prepare+reply $(ratio $((hd + hp + hr)) $((bd + bp + br)))  JSONSerialization $(ratio "$hb" "$bb")"
fi
if [ "$daemon_seconds" -gt 0 ]; then
    read -r hi hn <<<"$(daemon head)"
    echo "whole daemon under load, instructions per appended event:"
    echo "  head: $hi ($hn events)"
    if [ -n "$base" ]; then
        read -r bi bn <<<"$(daemon base)"
        echo "  base: $bi ($bn events)"
        echo "  head/base: $(ratio "$hi" "$bi")"
    fi
fi
