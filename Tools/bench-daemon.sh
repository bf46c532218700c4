#!/usr/bin/env bash
# Measures `stele serve` with the load generator, and the store benchmark's raw LMDB baseline in the
# same run. Builds everything in release mode first. Usage: Tools/bench-daemon.sh [seconds per scenario]
#
# Daemons run side by side on temporary directories: the default one (batches acknowledged from
# the journal, the store queue committing them to LMDB every 10 ms). Each scenario runs pings
# (the same socket, framing, decoder and reply path with no store behind them: what this machine's
# transport allows) and appends, with the ratio of the medians over STELE_BENCH_ROUNDS interleaved
# rounds (default 3). One more keeps every written store page cached (`store_keep_written_pages`),
# measured against the default. To compare with another build, use Tools/bench-pair.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-8}"
Tools/setup.sh
swift build -c release >/dev/null
swift build -c release --package-path Tools/LoadGenerator >/dev/null
swift build -c release --package-path Tools/StoreBenchmark >/dev/null
load=Tools/LoadGenerator/.build/release/LoadGenerator
work=$(mktemp -d)
daemons=()
trap 'kill "${daemons[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT
start() {  # start DIR [config]: a daemon whose files are all under DIR
    mkdir -p "$1"
    local args=()
    if [ -n "${2:-}" ]; then echo "$2" >"$1/config.json"; args=(--config "$1/config.json"); fi
    (cd "$1" && "$OLDPWD/.build/release/stele" init >/dev/null && exec "$OLDPWD/.build/release/stele" serve "${args[@]}" 2>"$1/serve.log") &
    daemons+=($!)
    for _ in $(seq 100); do [ -S "$1/stele-data/stele.sock" ] && return; sleep 0.1; done
    echo "daemon in $1 did not start: $(cat "$1/serve.log")" >&2; exit 1
}
start "$work/journal"
start "$work/keep" '{"store_keep_written_pages": true}'
socket="$work/journal/stele-data/stele.sock"
keep="$work/keep/stele-data/stele.sock"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB"
# The scheduling floor, measured while the daemons are idle: every acknowledgement takes several
# thread wake-ups, each at least this late (WakeLateness.swift).
Tools/StoreBenchmark/.build/release/StoreBenchmark --wakeups 20000
# Runs the load generator once all daemons are idle: after a pipelined run a store thread still has
# seconds of journaled entries to commit, and a run started meanwhile would share the two cores with
# it (a daemon's store is idle once its tree_size holds still for 0.2 s; at most 10 s is waited).
measure() {
    local sock last now
    for sock in "$socket" "$keep"; do
        last=""
        for _ in $(seq 50); do
            now=$(.build/release/stele status --socket "$sock" | sed -E 's/.*"tree_size":([0-9]+).*/\1/')
            [ "$now" = "$last" ] && break
            last=$now
            sleep 0.2
        done
    done
    # Each line ends with the shares of the machine's CPU time (from /proc/stat) that its hypervisor
    # took back meanwhile (steal: on a shared VM, runs with much of it measure the host, not Stele)
    # and that no thread used (idle, iowait included: near 0 when the two cores are the limit).
    local before
    before=$(head -1 /proc/stat)
    echo "$("$load" "$@")  $(shares "$before" "$(head -1 /proc/stat)")"
}
shares() {  # shares "cpu …" "cpu …": steal and idle percent of the CPU time between two /proc/stat lines
    awk -v a="$1" -v b="$2" 'BEGIN { split(a, x); split(b, y); for (i = 2; i <= 9; i++) t += y[i] - x[i]; if (t == 0) t = 1
        printf "steal=%.0f%% idle=%.0f%%", 100 * (y[9] - x[9]) / t, 100 * (y[5] - x[5] + y[6] - x[6]) / t }'
}
stat_of() {  # stat_of NAME: the default daemon's counter NAME from `stats`
    .build/release/stele status --socket "$socket" | sed -E "s/.*\"$1\":([0-9]+).*/\\1/"
}
eps() { sed -E 's/.*events\/s=([0-9]+).*/\1/'; }
ratio() { awk -v a="$(echo "$1" | eps)" -v b="$(echo "$2" | eps)" 'BEGIN { printf "%.3f", a / b }'; }
# Each measurement runs STELE_BENCH_ROUNDS times (default 3), the variants interleaved, and the median
# run is printed: on a shared VM one disk or CPU hiccup otherwise decides a whole scenario.
rounds="${STELE_BENCH_ROUNDS:-3}"
median() {  # median KEY LINE...: the line with the median events/s (KEY eps) or p99 (KEY p99)
    local key=$1; shift
    local pattern='events/s=([0-9.]+)'
    [ "$key" = p99 ] && pattern=' p99=([0-9.]+)'
    printf '%s\n' "$@" | sed -E "s|^(.*${pattern}.*)$|\2\t\1|" | sort -g | sed -n "$(( ($# + 1) / 2 ))p" | cut -f2-
}
values() {  # values KEY LINE...: each run's events/s or p99, in order
    local pattern='events/s=([0-9.]+)'
    [ "$1" = p99 ] && pattern=' p99=([0-9.]+)'
    shift
    printf '%s\n' "$@" | sed -E "s|.*${pattern}.*|\1|" | xargs
}
scenario() {
    local pings=() appends=() ping append
    for _ in $(seq "$rounds"); do
        pings+=("$(measure --socket "$socket" --op ping --seconds "$seconds" "$@")")
        appends+=("$(measure --socket "$socket" --seconds "$seconds" "$@")")
    done
    ping=$(median eps "${pings[@]}"); append=$(median eps "${appends[@]}")
    echo "pings:                      $ping"
    echo "appends:                    $append"
    echo "  appends/pings = $(ratio "$append" "$ping")   (medians of $rounds)"
    echo "  rounds, events/s: pings $(values eps "${pings[@]}"); appends $(values eps "${appends[@]}")"
    last=$append
}
half() {  # half LABEL RATE ARGS...: the median p99 of the rounds at RATE events/s from 4 paced
    # clients, appends and (the baseline: the same socket, pacing and client with no store behind
    # them) pings, interleaved.
    # Each line ends with how late the generator itself wrote its requests (late_p50, late_p99): a
    # request's latency counts from when it was due, so that much of it is the generator's own.
    # The line after them gives the journal writes per second the appends took (the default daemon's
    # `batches`), the rate at which the disk probe below is run.
    # And the daemon's own share of each round's p99 (`ack_us`: from reading a request line to its
    # reply being ready; its last 65,536 appends), which leaves out the socket and the generator.
    local label=$1 pace=$2 runs=() pings=() acks=() before batches=0
    shift 2
    for _ in $(seq "$rounds"); do
        pings+=("$(measure --socket "$socket" --op ping --clients 4 --seconds "$seconds" --rate "$pace" "$@")")
        before=$(stat_of batches)
        runs+=("$(measure --socket "$socket" --clients 4 --seconds "$seconds" --rate "$pace" "$@")")
        batches=$((batches + $(stat_of batches) - before))
        acks+=("$(.build/release/stele status --socket "$socket" | python3 -c 'import json, sys; a = json.load(sys.stdin)["ack_us"]; print("%.3f/%.3f" % (a["p50"] / 1000, a["p99"] / 1000))')")
    done
    echo "$label$(median p99 "${runs[@]}")"
    echo "  pings at the same rate:   $(median p99 "${pings[@]}")"
    echo "  journal writes: $((batches / rounds / seconds))/s; the daemon's own ack p50/p99 by round, ms: ${acks[*]}"
    echo "  rounds, p99 ms: appends $(values p99 "${runs[@]}"); pings $(values p99 "${pings[@]}")"
}
scenario --clients 4
rate=$(echo "$last" | eps)
# The page-cache release (store.md, "Processes") against a daemon that keeps every written page
# cached, as the kernel would: 4 pipelining clients, interleaved.
released=(); kept=()
for _ in $(seq "$rounds"); do
    released+=("$(measure --socket "$socket" --clients 4 --seconds "$seconds")")
    kept+=("$(measure --socket "$keep" --clients 4 --seconds "$seconds")")
done
echo "written store pages released: $(median eps "${released[@]}")"
echo "written store pages kept:     $(median eps "${kept[@]}")"
echo "  released/kept = $(ratio "$(median eps "${released[@]}")" "$(median eps "${kept[@]}")")   (medians of $rounds)"
echo "  rounds, events/s: released $(values eps "${released[@]}"); kept $(values eps "${kept[@]}")"
# Half load twice: half the pipelined rate just measured, and 50,000/s, half the 100,000/s the
# daemon is required to sustain (the first depends on how fast this VM ran that minute).
half "half load:                  " $((rate / 2))
half "half load, 1 ms send queue: " $((rate / 2)) --flush-us 1000
half "50,000/s:                   " 50000
# The disk's own floor under those p99s, measured while the daemons are idle: one synchronous
# journal-sized write at about the journal-write rate above, and back to back (every acknowledgement
# waits for at least one such write; SyncWriteLatency.swift).
(cd "$work" && "$OLDPWD/Tools/StoreBenchmark/.build/release/StoreBenchmark" --sync-writes 1000)
for clients in 1 8 32; do scenario --clients "$clients" --mode wait; done
# The same 32 waiting clients sharing one polling thread of the generator instead of a blocking
# thread each: the generator takes less of the two cores, so more of them measure the daemon.
scenario --clients 32 --mode wait --threads 1
dirs=(journal keep)
for i in "${!dirs[@]}"; do  # a benchmark must notice if its subject died
    dir=${dirs[$i]}; pid=${daemons[$i]}
    kill -0 "$pid" 2>/dev/null || { echo "the $dir daemon died: $(tail -5 "$work/$dir/serve.log")" >&2; exit 1; }
done
# The default daemon's own view at the end: its batches over all scenarios, and how long its last
# batches (the latency windows hold the newest samples) took to be durable
# (journal write) and its store commits, from `stats`.
echo "default daemon at the end (latencies: its newest batches and store commits): $(.build/release/stele status --socket "$socket" --json 2>/dev/null \
    | python3 -c 'import json, sys; s = json.load(sys.stdin); s = s.get("stats", s); print("batches", s["batches"], "largest", s["largest_batch"], "sizes", json.dumps(s["batch_sizes"]), "journal write us", json.dumps(s["commit_us"]), "store commit us", json.dumps(s["store_commit_us"]), "ack us", json.dumps(s["ack_us"]))' 2>/dev/null || echo unavailable)"
kill -TERM "${daemons[@]}"; wait "${daemons[@]}" || true
echo "store benchmark (raw LMDB baseline in the same run):"
STELE_BENCH_SCALE=0.5 Tools/StoreBenchmark/.build/release/StoreBenchmark
Tools/StoreBenchmark/.build/release/StoreBenchmark --requests 100000
