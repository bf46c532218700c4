#!/usr/bin/env python3
"""Appending to Stele from Python, with clients/python/stele_client.py (standard library only).

Usage: python3 Tools/examples/append.py [SOCKET]   (default ./stele-data/stele.sock)

The client pipelines (a reader thread takes replies while requests go out, so large batches never
stall), gives each event an id, and retries unanswered requests with the same ids after a
reconnect, so a daemon restart loses nothing and stores nothing twice. A reply means durable.
Exit 0 when every event was stored, 1 when one was refused.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients", "python"))
from stele_client import SteleClient, SteleError  # noqa: E402

path = sys.argv[1] if len(sys.argv) > 1 else "./stele-data/stele.sock"

events = [
    {"kind": "login.succeeded", "actor": "user:1234", "subject": "user:1234",
     "attrs": {"ip": "203.0.113.7", "method": "password"}},
    {"kind": "consent.granted", "actor": "user:1234", "subject": "user:1234",
     "attrs": {"purpose": "marketing.email", "notice": "privacy-2026-03", "method": "checkbox"}},
    {"kind": "processing.performed", "actor": "service:mailer", "subject": "user:1234",
     "attrs": {"purpose": "marketing.email"}},
]

refused = 0
with SteleClient(path) as stele:
    for event, future in [(event, stele.append(event)) for event in events]:
        try:
            reply = future.result(timeout=30)
            print(f"{event['kind']}: stored at seq {reply['seq']}")
        except SteleError as error:
            refused += 1
            print(f"{event['kind']}: refused ({error})")
    print("may we email user:1234?", stele.allowed("user:1234", "marketing.email"))
sys.exit(1 if refused else 0)
