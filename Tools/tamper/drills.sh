#!/usr/bin/env bash
# Every tamper drill (Tools/tamper) on its own copy of one store, and what `stele verify` says about
# it, with the log's pinned key and a checkpoint held outside the store (`Specs/threat-model.md`).
# Exit 1 if any drill goes unnoticed. Usage: Tools/tamper/drills.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
Tools/setup.sh
swift build -c release >/dev/null
swift build -c release --package-path Tools/tamper >/dev/null
stele="$PWD/.build/release/stele"
tamper="$PWD/Tools/tamper/.build/release/Tamper"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The store: 3000 logins, a consent granted and withdrawn, all logins pruned (test mode: a cutoff
# in the future), and a checkpoint signed and kept outside the store.
{
    for i in $(seq 0 2999); do echo "{\"kind\":\"login.succeeded\",\"subject\":\"user:$((i % 40))\",\"actor\":\"user:$((i % 40))\",\"attrs\":{\"ip\":\"192.0.2.$((i % 200))\"}}"; done
    echo '{"kind":"notice.published","attrs":{"notice":"n1","sha256":"ab","purposes":["marketing.email"],"language":"en"}}'
    echo '{"kind":"consent.granted","subject":"user:7","attrs":{"purpose":"marketing.email","notice":"n1","method":"form"}}'
    echo '{"kind":"consent.withdrawn","subject":"user:7","attrs":{"purpose":"marketing.email","method":"link"}}'
} | "$stele" ingest --data "$work/store" --test-mode --origin drills.example/log --batch 1000 >/dev/null
"$stele" prune --data "$work/store" --now 2028-01-01T00:00:00Z --request DRILL --reason "drills" >/dev/null
mkdir -p "$work/key" && chmod 700 "$work/key"
openssl genpkey -algorithm ed25519 -out "$work/key/signing.key" 2>/dev/null && chmod 600 "$work/key/signing.key"
openssl genpkey -algorithm ed25519 -out "$work/key/forger.key" 2>/dev/null && chmod 600 "$work/key/forger.key"
"$stele" checkpoint --data "$work/store" --key "$work/key/signing.key" --checkpoints "$work/held" --sign >/dev/null
key=$("$stele" key show --data "$work/store" --key "$work/key/signing.key" | sed -n 1p)
missed=0
drill() {  # drill NAME [ARG]: the attack on a copy, then verify's verdict
    rm -rf "$work/copy" && cp -r "$work/store" "$work/copy"
    "$tamper" "$1" --data "$work/copy" ${2:+"$2"} >/dev/null
    local out
    out=$("$stele" verify --data "$work/copy" --key "$key" --checkpoints "$work/held" 2>&1) && status=0 || status=$?
    if [ "$status" -eq 1 ]; then
        printf '%-14s %-28s caught: %s\n' "$1" "${2:-}" "$(echo "$out" | awk '/^FAIL/ && !f { print substr($0, 1, 150); f = 1 }')"
    else
        printf '%-14s %-28s MISSED (exit %s)\n' "$1" "${2:-}" "$status"
        missed=1
    fi
}
untouched=$("$stele" verify --data "$work/store" --key "$key" --checkpoints "$work/held" 2>&1) || { echo "the untouched store does not verify: $untouched" >&2; exit 1; }
echo "untouched: $(echo "$untouched" | tail -1 | cut -c1-120)"
drill body-byte 3001
drill header-byte 1500
drill delete 1500
drill swap 1500
drill subtree 42
drill drop-receipt
drill consent-state
drill truncate 2000
drill resign "$work/key/forger.key"
exit "$missed"
