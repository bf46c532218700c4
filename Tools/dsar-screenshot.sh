#!/usr/bin/env bash
# Renders a sample data-subject access report in headless Chromium: a throwaway daemon, a few
# events for user:1, `stele dsar --format html`, then a PNG. Usage: Tools/dsar-screenshot.sh [OUT.png]
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(realpath -m "${1:-dsar.png}")"
command -v chromium >/dev/null || { echo "needs chromium (apt-get install chromium)" >&2; exit 2; }
swift build -q
stele="$PWD/.build/debug/stele"
work="$(mktemp -d)"
trap 'kill "$daemon" 2>/dev/null || true; rm -rf "$work"' EXIT
"$stele" init --data "$work/d" --key "$work/k/signing.key" --checkpoints "$work/c" --origin example.com/ledger >/dev/null
"$stele" serve --data "$work/d" --key "$work/k/signing.key" --checkpoints "$work/c" 2>"$work/log" &
daemon=$!
for _ in $(seq 50); do [ -S "$work/d/stele.sock" ] && break; sleep 0.1; done
python3 - "$work/d/stele.sock" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); f = s.makefile("rwb")
def send(o):
    f.write((json.dumps(o) + "\n").encode()); f.flush(); assert json.loads(f.readline())["ok"]
send({"kind": "notice.published", "attrs": {"notice": "privacy-2026-11", "sha256": "ab" * 32, "purposes": ["marketing.email"], "language": "en"}})
send({"kind": "consent.granted", "subject": "user:1", "actor": "user:1", "attrs": {"purpose": "marketing.email", "notice": "privacy-2026-11", "method": "checkbox"}})
for _ in range(3):
    send({"kind": "login.succeeded", "subject": "user:1", "actor": "user:1", "attrs": {"method": "password", "ip": "203.0.113.7"}})
send({"kind": "consent.withdrawn", "subject": "user:1", "actor": "user:1", "attrs": {"purpose": "marketing.email", "method": "settings"}})
send({"kind": "data.changed", "subject": "user:1", "actor": "staff:9", "attrs": {"entity": "profile", "fields": ["email"], "op": "update"}})
send({"kind": "data.accessed", "subject": "user:1", "actor": "support:3", "attrs": {"entity": "profile", "purpose": "support ticket 88"}})
send({"kind": "data.disclosed", "subject": "user:1", "actor": "svc:billing", "attrs": {"recipient": "PaymentCo Ltd", "legal_basis": "contract", "reference": "INV-9"}})
send({"kind": "rights.requested", "subject": "user:1", "actor": "user:1", "attrs": {"request": "DSAR-1", "right": "access"}})
PY
"$stele" dsar user:1 --data "$work/d" --request DSAR-1 --reason "sample report" --format html --out "$work/dsar.html"
chromium --headless --no-sandbox --disable-gpu --window-size=1100,1500 --screenshot="$out" "file://$work/dsar.html" 2>/dev/null
echo "wrote $out"
