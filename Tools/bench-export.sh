#!/usr/bin/env bash
# Evidence at scale (issue 31's figures), on an N-entry ledger (default 1,000,000) where user:a has
# one entry in every 1,000 and user:b one in every 100:
# - `stele export` of user:a's 1,000 entries (goal < 1 s), against `stele query --reason` reading
#   the same entries without proofs, in the same run;
# - `stele verify-bundle` and `Tools/verify-bundle.py` on the export of user:b's 10,000 entries.
# Usage: Tools/bench-export.sh [entries (default 1000000)]
set -euo pipefail
cd "$(dirname "$0")/.."
entries="${1:-1000000}"
Tools/setup.sh --test
swift build -c release >/dev/null
stele="$PWD/.build/release/stele"
work=$(mktemp -d)
trap 'rm -rf "$work" "${shm:-}"' EXIT
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB"
awk -v n="$entries" 'BEGIN {
    for (i = 0; i < n; i++) {
        s = (i % 1000 == 0) ? "user:a" : (i % 100 == 50) ? "user:b" : "user:" (i % 50000)
        printf "{\"kind\":\"login.succeeded\",\"actor\":\"%s\",\"subject\":\"%s\",\"attrs\":{\"ip\":\"203.0.113.%d\",\"method\":\"password\"}}\n", s, s, i % 250
    }
}' | "$stele" ingest --data "$work/data" --batch 1000 --origin bench.example/log >/dev/null
"$stele" checkpoint --sign --data "$work/data" --key "$work/key/signing.key" --checkpoints "$work/checkpoints" >/dev/null
time_of() { local s e; s=$(date +%s.%N); "$@" >/dev/null; e=$(date +%s.%N); awk -v a="$s" -v b="$e" 'BEGIN { printf "%.3f", b - a }'; }
key=(--key "$work/key/signing.key")
query=$(time_of "$stele" query --data "$work/data" --subject user:a --reason bench)
export=$(time_of "$stele" export --data "$work/data" "${key[@]}" --subject user:a --reason bench --out "$work/a")
count=$(wc -l <"$work/a/entries.jsonl")
# The same export into memory (tmpfs): the bundle's 1,000 proof files cost the disk's file creation.
shm=$(mktemp -d -p /dev/shm)
memory=$(time_of "$stele" export --data "$work/data" "${key[@]}" --subject user:a --reason bench --out "$shm/a")
awk -v q="$query" -v x="$export" -v m="$memory" -v c="$count" -v n="$entries" 'BEGIN {
    printf "stele export of %d entries from a %d-entry ledger: %.3f s to disk, %.3f s to tmpfs (goal < 1 s); stele query --reason of the same entries: %.3f s; ratios %.2f and %.2f\n", c, n, x, m, q, x / q, m / q }'
"$stele" export --data "$work/data" "${key[@]}" --subject user:b --reason bench --out "$work/b" --archive >/dev/null
count=$(wc -l <"$work/b/entries.jsonl")
verifier=$("$stele" key show --data "$work/data" "${key[@]}" | sed -n 1p)
for form in "$work/b" "$work/b.tar"; do
    swift=$(time_of "$stele" verify-bundle "$form" --key "$verifier")
    python=$(time_of python3 Tools/verify-bundle.py "$form" --key "$verifier")
    awk -v s="$swift" -v p="$python" -v c="$count" -v f="$([ -d "$form" ] && echo directory || echo tar)" 'BEGIN {
        printf "verify-bundle of %d entries (%s): stele %.3f s (%.0f entries/s); Tools/verify-bundle.py %.3f s (%.0f entries/s); python/swift %.2f\n", c, f, s, c / s, p, c / p, p / s }'
done
