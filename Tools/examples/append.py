#!/usr/bin/env python3
"""Appending to Stele from Python with only the standard library.

Usage: python3 Tools/examples/append.py [SOCKET]   (default ./stele-data/stele.sock)

Each request is one JSON object on one line; each reply is one line, in request order. Exit 0 when
every request succeeded, 1 when one was refused, 2 when the daemon closed before answering all.
A reply with "ok": true means the event is durable. Retrying with the same "id" is safe:
the daemon returns the original receipt instead of appending twice.
"""
import json
import socket
import sys
import uuid

path = sys.argv[1] if len(sys.argv) > 1 else "./stele-data/stele.sock"

events = [
    {"kind": "login.succeeded", "actor": "user:1234", "subject": "user:1234",
     "attrs": {"ip": "203.0.113.7", "method": "password"}},
    {"kind": "consent.granted", "actor": "user:1234", "subject": "user:1234",
     "attrs": {"purpose": "marketing.email", "notice": "privacy-2026-03", "method": "checkbox"}},
    {"kind": "processing.performed", "actor": "service:mailer", "subject": "user:1234",
     "attrs": {"purpose": "marketing.email"}},
]

with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
    s.connect(path)
    stream = s.makefile("rwb")
    # Pipeline: send everything, then read one reply per request.
    for event in events:
        event["id"] = str(uuid.uuid4())  # store it with your request so a retry reuses it
        stream.write(json.dumps(event).encode() + b"\n")
    stream.flush()
    failed = False
    for answered, event in enumerate(events):
        try:
            line = stream.readline()
        except ConnectionResetError:  # the daemon closed with requests of ours unread
            line = b""
        if not line:
            # The daemon stopped (or dropped us) before answering the rest: they were not taken.
            # Send them again, with the same ids, once it is back.
            print(f"{len(events) - answered} requests unanswered; retry them with the same ids", file=sys.stderr)
            sys.exit(2)
        reply = json.loads(line)
        print(json.dumps(reply))
        if not reply["ok"]:
            failed = True
            print(f"{event['kind']}: {reply['error']['code']}: {reply['error']['message']}", file=sys.stderr)
sys.exit(1 if failed else 0)
