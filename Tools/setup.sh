#!/usr/bin/env bash
# Installs the Debian packages Stele builds against, if any is missing. Idempotent.
# With --test, also what the tests use: strace (the sync-order test), a C compiler (the torn-write
# shim), Python 3 with cryptography (the independent bundle verifier, Tools/verify-bundle.py) and
# the openssl tool (a bundle's checkpoint checked with it alone).
set -euo pipefail
packages=(liblmdb-dev libssl-dev libjemalloc-dev pkg-config)
[ "${1:-}" = "--test" ] && packages+=(strace gcc libc6-dev python3 python3-cryptography openssl)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing: ${missing[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v swift >/dev/null || { echo "swift is not on PATH (Swift 6.1 or later is required)" >&2; exit 2; }
