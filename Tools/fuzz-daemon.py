#!/usr/bin/env python3
"""Mutation fuzzing of a running `stele serve` over its socket, standard library only.

Usage: Tools/fuzz-daemon.py [--stele PATH] [SECONDS] [SEED]
       Tools/fuzz-daemon.py --socket SOCKET --i-know-this-writes-junk [SECONDS] [SEED]

By default it starts its own daemon (`stele init` and `stele serve`, PATH default
.build/debug/stele) on a temporary directory, fuzzes it, verifies the store and removes it: the
fuzzer appends thousands of junk entries, so it is pointed at another daemon's socket only with
--i-know-this-writes-junk.

Sends pipelined batches of requests made by mutating valid ones (inserted JSON tokens, lone
surrogates, NULs, invalid UTF-8, deep nesting, huge numbers, odd timestamps, deleted and
duplicated spans, flipped bytes) and checks the daemon's promise for bad input: exactly one reply
line per request, in order, each either {"ok":true,...,"seq":N} or {"ok":false,"error":{"code":C,
"message":M}} with a documented code, and the connection stays open. Exits 1 at the first broken
promise (a closed connection, a missing or malformed reply, an unknown code), 0 otherwise, printing
how many requests got each outcome.
"""
import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time

# The error codes of Specs/protocol.md.
CODES = {
    "malformed_json", "not_an_object", "unknown_op", "unknown_kind", "missing_field", "invalid_field",
    "invalid_identifier", "forbidden_kind", "line_too_long", "too_large", "rate_limited",
    "idempotency_conflict", "unauthorized", "too_many_connections", "storage_full", "unavailable",
    "no_checkpoint_yet", "line_timeout", "shutting_down", "unknown_purpose", "forbidden_purpose", "not_operator",
    "future_time",
}
# What a successful reply carries, by op.
RESULTS = ("seq", "op", "stats", "checkpoint", "consent", "consistency", "prune", "hold", "released", "accessed")

VALID = [
    '{"id":"f1","kind":"login.succeeded","actor":"user:1","subject":"user:1","attrs":{"ip":"203.0.113.9","method":"password"}}',
    '{"kind":"consent.granted","actor":"user:2","subject":"user:2","occurred":"2026-11-01T10:00:00Z",'
    '"attrs":{"purpose":"marketing.email","notice":"privacy-2026-03","method":"checkbox","jurisdiction":"EU"}}',
    '{"kind":"data.changed","actor":"user:3","subject":"user:3","attrs":{"entity":"profile","fields":["a","b"],"op":"update"}}',
    '{"kind":"admin.action","actor":"admin:7","subject":"user:4","attrs":{"action":"reset_mfa","target":"user:4","reason":"t"}}',
    '{"op":"ping"}', '{"op":"stats"}', '{"op":"checkpoint"}',
    '{"op":"consent","id":"c1","subject":"user:2","purpose":"marketing.email"}',
    '{"op":"consistency","from":1,"to":2}',
    '{"op":"prune","dry_run":true,"request":"FUZZ","reason":"fuzz","now":"2026-01-01T00:00:00Z"}',
    '{"op":"release_hold","hold":999999999,"request":"FUZZ","reason":"fuzz"}',
    '{"op":"accessed","command":"query","query":{"subject":"user:1"},"reason":"fuzz","disclosed":1}',
]

TOKENS = [
    "{", "}", "[", "]", '"', ":", ",", "\\", "\\u", "\\ud800", "\\udc00", "\\u0000", "1e999", "-0", "1.5e-400",
    "99999999999999999999999", "null", "true", "false", "\x00", "\xff", "\xc3", "\xed\xa0\x80", "é", "\U0001F600",
    " ", "\t", "\r", '{"a":' * 50, "]" * 50, '"' * 3, '"kind"', '"attrs"', '"id"', '"receipt":true',
    '"occurred":"9999-12-31T23:59:59.999999Z"', '"occurred":"0000-01-01T00:00:00Z"', '"occurred":"2026-02-30T00:00:00Z"',
    '"occurred":"2026-11-01T10:00:00+14:00"', '"ledger.redacted"', '"op":"append"', '"op":"consent"', '"op":"prune"',
    '"purpose":"marketing.email"', '"purpose":"x"', '"from":-1', '"to":99999999999', '"dry_run":false', '"hold":-3',
]


def mutate(rng, text):
    data = text.encode("utf-8", "surrogatepass")
    for _ in range(rng.randint(1, 4)):
        choice = rng.random()
        at = rng.randint(0, len(data))
        if choice < 0.3:
            data = data[:at] + rng.choice(TOKENS).encode("utf-8", "surrogatepass") + data[at:]
        elif choice < 0.5 and data:
            data = data[:at] + data[min(len(data), at + rng.randint(1, 10)):]
        elif choice < 0.7 and data:
            i = rng.randrange(len(data))
            data = data[:i] + bytes([rng.randrange(256)]) + data[i + 1:]
        elif choice < 0.85 and data:
            i, j = sorted((rng.randrange(len(data)), rng.randrange(len(data))))
            data = data[:i] + data[i:j] + data[i:]
        else:
            number = rng.choice([0, -1, 2**63, 2**64, -2**63 - 1, 1e308, 3.14])
            data = data[:at] + str(number).encode() + data[at:]
    return data.replace(b"\n", b" ")


def check(reply):
    """None if `reply` is a well-formed reply line, else what is wrong with it."""
    try:
        value = json.loads(reply)
    except ValueError:
        return "not JSON"
    if value.get("ok") is True:
        return None if isinstance(value.get("seq"), int) or any(k in value for k in RESULTS[1:]) else "ok without a result"
    error = value.get("error")
    if value.get("ok") is not False or not isinstance(error, dict) or not isinstance(error.get("message"), str):
        return "neither ok nor an error"
    return None if error.get("code") in CODES else "undocumented code %r" % error.get("code")


def fuzz(path, seconds, seed):
    rng = random.Random(seed)
    outcomes = {}
    sent = 0
    end = time.time() + seconds
    while time.time() < end:
        lines = [mutate(rng, rng.choice(VALID)) for _ in range(200)]
        with socket.socket(socket.AF_UNIX) as connection:
            connection.connect(path)
            connection.sendall(b"\n".join(lines) + b"\n")
            replies = connection.makefile("rb")
            for line in lines:
                reply = replies.readline()
                problem = "the connection closed" if not reply.endswith(b"\n") else check(reply)
                if problem:
                    print("after %d requests: %s; request %r, reply %r" % (sent, problem, line[:300], reply[:300]))
                    return 1
                value = json.loads(reply)
                outcome = "ok" if value["ok"] else value["error"]["code"]
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
                sent += 1
    print("%d requests, every one answered in order: %s" % (sent, json.dumps(outcomes, sort_keys=True)))
    return 0


def main():
    parser = argparse.ArgumentParser(description="Mutation fuzzing of stele serve.")
    parser.add_argument("seconds", nargs="?", type=float, default=30)
    parser.add_argument("seed", nargs="?", type=int, default=1)
    parser.add_argument("--stele", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".build", "debug", "stele"))
    parser.add_argument("--socket", help="fuzz this running daemon instead of one of its own")
    parser.add_argument("--i-know-this-writes-junk", dest="junk", action="store_true",
                        help="confirm that the daemon behind --socket may receive thousands of junk entries")
    args = parser.parse_args()
    if args.socket:
        if not args.junk:
            sys.exit("--socket writes thousands of junk entries into that daemon's log; add --i-know-this-writes-junk if that is what you want")
        sys.exit(fuzz(args.socket, args.seconds, args.seed))
    root = tempfile.mkdtemp(prefix="stele-fuzz-")
    files = ["--data", root + "/data", "--key", root + "/key/signing.key", "--checkpoints", root + "/checkpoints"]
    try:
        subprocess.run([args.stele, "init", *files, "--origin", "fuzz.example/log"], check=True, stdout=subprocess.DEVNULL)
        log = open(root + "/serve.log", "wb")
        daemon = subprocess.Popen([args.stele, "serve", *files], stderr=log)
        for _ in range(300):
            if os.path.exists(root + "/data/stele.sock"):
                break
            time.sleep(0.02)
        status = fuzz(root + "/data/stele.sock", args.seconds, args.seed)
        daemon.terminate()
        if daemon.wait() != 0:
            print("the daemon exited with %d" % daemon.returncode)
            status = 1
        verify = subprocess.run([args.stele, "verify", "--data", root + "/data"], capture_output=True, text=True)
        print(verify.stdout.strip())
        sys.exit(status or (0 if verify.returncode == 0 else 1))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
