"""Tests of stele_client.py against a real daemon: STELE=/path/to/stele python3 test_stele_client.py"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stele_client import SteleClient, SteleError, SteleLogHandler  # noqa: E402

STELE = os.environ.get("STELE", "stele")


class Daemon:
    def __init__(self, root):
        self.root = root
        self.args = ["--data", f"{root}/data", "--key", f"{root}/key/signing.key", "--checkpoints", f"{root}/checkpoints"]
        self.socket = f"{root}/data/stele.sock"
        if not os.path.exists(f"{root}/data"):
            subprocess.run([STELE, "init", *self.args], check=True, stdout=subprocess.DEVNULL)
        self.process = None

    def start(self):
        self.log = open(f"{self.root}/serve.log", "ab")
        self.process = subprocess.Popen([STELE, "serve", *self.args], stderr=self.log)
        for _ in range(300):
            if os.path.exists(self.socket):
                return
            time.sleep(0.02)
        raise RuntimeError("the daemon did not start")

    def stop(self, sig=signal.SIGTERM):
        self.process.send_signal(sig)
        self.process.wait()
        self.log.close()

    def ids(self):
        out = subprocess.run([STELE, "query", "--data", f"{self.root}/data", "--json", "--reason", "client test"],
                             check=True, capture_output=True, text=True).stdout
        return [json.loads(line)["body"].get("id") for line in out.splitlines() if json.loads(line)["body"]]


def login(n):
    return {"kind": "login.succeeded", "actor": f"user:{n % 7}", "subject": f"user:{n % 7}", "attrs": {"method": "password"}}


class ClientTests(unittest.TestCase):
    def test_pipelined_appends_and_refusals(self):
        with tempfile.TemporaryDirectory() as root:
            daemon = Daemon(root)
            daemon.start()
            try:
                with SteleClient(daemon.socket) as client:
                    futures = [client.append(login(n)) for n in range(5000)]
                    seqs = [f.result(timeout=60)["seq"] for f in futures]
                    self.assertEqual(seqs, sorted(seqs))
                    self.assertEqual(len(set(seqs)), 5000)
                    with self.assertRaises(SteleError) as caught:
                        client.append({"kind": "no.such.kind"}).result(timeout=10)
                    self.assertEqual(caught.exception.code, "unknown_kind")
                    self.assertFalse(client.allowed("user:1", "marketing.email"))
            finally:
                daemon.stop()

    def test_killed_mid_stream_every_event_stored_exactly_once(self):
        with tempfile.TemporaryDirectory() as root:
            daemon = Daemon(root)
            daemon.start()
            client = SteleClient(daemon.socket, max_in_flight=512)
            total = 6000
            futures = []
            sender = threading.Thread(target=lambda: futures.extend(client.append(login(n)) for n in range(total)))
            sender.start()
            while sum(1 for f in list(futures) if f.done()) < 500:
                time.sleep(0.005)
            daemon.stop(signal.SIGKILL)  # unanswered requests are in flight
            daemon.start()
            sender.join()
            client.flush(timeout=120)
            replies = [f.result(timeout=1) for f in futures]
            client.close()
            daemon.stop()
            ids = [i for i in daemon.ids() if i is not None]
            self.assertEqual(len(ids), total, "every event stored")
            self.assertEqual(len(set(ids)), total, "none twice")
            self.assertEqual(len({r["seq"] for r in replies}), total)

    def test_log_handler_ships_audit_records_only(self):
        import logging
        with tempfile.TemporaryDirectory() as root:
            daemon = Daemon(root)
            daemon.start()
            try:
                with SteleClient(daemon.socket) as client:
                    log = logging.getLogger("audit-test")
                    log.setLevel(logging.INFO)
                    log.addHandler(SteleLogHandler(client))
                    log.info("plain message")
                    log.info("mfa reset", extra={"stele": {"kind": "admin.action", "actor": "staff:7", "subject": "user:42",
                                                           "attrs": {"action": "reset_mfa", "target": "user:42"}}})
                    client.flush(timeout=10)
            finally:
                daemon.stop()
            out = subprocess.run([STELE, "query", "--data", f"{root}/data", "--kind", "admin.action", "--json"],
                                 check=True, capture_output=True, text=True).stdout
            self.assertEqual(len(out.splitlines()), 1)


if __name__ == "__main__":
    unittest.main()
