#!/usr/bin/env bash
# Compares the daemon of this checkout with the daemon of another commit by CPU time per appended
# event, both driven at the same time by the same load, so that both run on the same host in the
# same phase (this kind of VM changes speed by half within minutes: two daemons measured one after
# the other compare the minutes, not the builds).
#
# Usage: Tools/bench-pair.sh BASE_COMMIT [ROUNDS] [SECONDS] [LOAD GENERATOR OPTIONS...]
#   Builds BASE_COMMIT in a temporary worktree, starts both daemons on temporary directories, and
#   runs ROUNDS (default 5) rounds of SECONDS (default 10): in each, one load generator per daemon
#   (default `--clients 4`: pipelining), started together. For each daemon it prints the CPU time
#   the whole process used per event appended (user + system, all threads, from /proc, over the
#   middle of the round, events counted from the daemon's own `stats` over the same window) and
#   the load generator's summary; then, per round and over all rounds, the ratio head/base.
#   Each daemon gets about half the machine, so events/s here is not what one daemon alone does.
set -euo pipefail
cd "$(dirname "$0")/.."
base="${1:?usage: Tools/bench-pair.sh BASE_COMMIT [ROUNDS] [SECONDS] [LOAD GENERATOR OPTIONS...]}"
rounds="${2:-5}"
seconds="${3:-10}"
shift $(( $# < 3 ? $# : 3 ))
options=("$@")
[ ${#options[@]} -gt 0 ] || options=(--clients 4)
[ "$seconds" -ge 4 ] || { echo "SECONDS must be at least 4" >&2; exit 2; }
Tools/setup.sh
work=$(mktemp -d)
daemons=()
cleanup() {
    kill "${daemons[@]}" 2>/dev/null || true
    git worktree remove --force "$work/base-tree" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
quietly() {  # quietly COMMAND...: its output only if it fails
    "$@" >"$work/step.log" 2>&1 || { cat "$work/step.log" >&2; exit 1; }
}
git worktree add --detach "$work/base-tree" "$base" >/dev/null 2>&1
quietly swift build -c release --product stele
quietly swift build -c release --package-path "$work/base-tree" --product stele
quietly swift build -c release --package-path Tools/LoadGenerator
cp .build/release/stele "$work/head-stele"
cp "$work/base-tree/.build/release/stele" "$work/base-stele"
load=Tools/LoadGenerator/.build/release/LoadGenerator

start() {  # start NAME: the NAME build's daemon, all of its files under $work/NAME
    mkdir -p "$work/$1"
    # Builds from before `stele init` create their log at first start.
    (cd "$work/$1" && { ! "$work/$1-stele" init --help >/dev/null 2>&1 || "$work/$1-stele" init >/dev/null; } && exec "$work/$1-stele" serve 2>"$work/$1/serve.log") &
    daemons+=($!)
    echo $! >"$work/$1/pid"
    for _ in $(seq 100); do [ -S "$work/$1/stele-data/stele.sock" ] && return; sleep 0.1; done
    echo "the $1 daemon did not start: $(cat "$work/$1/serve.log")" >&2; exit 1
}
cpuTicks() {  # cpuTicks PID: user + system clock ticks of the whole process
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}
appends() {  # appends NAME: entries the NAME daemon has appended since it started
    "$work/head-stele" status --socket "$work/$1/stele-data/stele.sock" | sed -E 's/.*"appends":([0-9]+).*/\1/'
}
settle() {  # waits until both daemons' stores are idle (tree_size still for 0.5 s; 20 s at most)
    local name last now
    for name in head base; do
        last=""
        for _ in $(seq 40); do
            now=$("$work/head-stele" status --socket "$work/$name/stele-data/stele.sock" | sed -E 's/.*"tree_size":([0-9]+).*/\1/')
            [ "$now" = "$last" ] && break
            last=$now
            sleep 0.5
        done
    done
}

start head
start base
tick=$(getconf CLK_TCK)
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB"
echo "head: $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo ' (with uncommitted changes)'); base: $(git -C "$work/base-tree" rev-parse --short HEAD); load: ${options[*]}, $rounds rounds of $seconds s"
ratios=()
for round in $(seq "$rounds"); do
    settle
    generators=()
    for name in head base; do
        "$load" --socket "$work/$name/stele-data/stele.sock" --seconds "$seconds" "${options[@]}" >"$work/$name.load" &
        generators+=($!)
    done
    sleep 1  # both generators connected and at speed
    declare -A cpu0 events0
    for name in head base; do cpu0[$name]=$(cpuTicks "$(cat "$work/$name/pid")"); events0[$name]=$(appends "$name"); done
    sleep $(( seconds - 2 ))
    declare -A perEvent
    for name in head base; do
        cpu=$(( $(cpuTicks "$(cat "$work/$name/pid")") - cpu0[$name] ))
        events=$(( $(appends "$name") - events0[$name] ))
        perEvent[$name]=$(awk -v c="$cpu" -v t="$tick" -v e="$events" 'BEGIN { printf "%.2f", (e > 0 ? c / t * 1e6 / e : 0) }')
    done
    wait "${generators[@]}"
    for name in head base; do
        echo "round $round $name: cpu=${perEvent[$name]}us/event  $(sed -E 's/^op=.*seconds=[0-9]+ +//' "$work/$name.load")"
    done
    ratio=$(awk -v a="${perEvent[head]}" -v b="${perEvent[base]}" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')
    ratios+=("$ratio")
    echo "round $round cpu per event head/base: $ratio"
done
printf '%s\n' "${ratios[@]}" | sort -g | awk '{ r[NR] = $1 } END { printf "cpu per event head/base: median %s, range %s to %s over %d rounds\n", r[int((NR + 1) / 2)], r[1], r[NR], NR }'
