"""A small client for Stele's Unix-socket protocol (Specs/protocol.md), standard library only.

    from stele_client import SteleClient
    with SteleClient("/run/stele/stele.sock") as stele:
        future = stele.append({"kind": "login.succeeded", "actor": "user:1", "subject": "user:1"})
        print(future.result(timeout=10)["seq"])

Requests are pipelined: `append` sends at once and returns a future; a reader thread matches
replies, which come in request order. Each append gets an `id` (a UUID) unless it has one, so when
the connection breaks (the daemon restarts, is killed) every unanswered request is sent again on
a new connection with the same id, and the daemon answers a retry of a stored event with that
event (`"duplicate": true`) instead of storing it twice. At most `max_in_flight` requests wait for
replies; `append` blocks beyond that, which keeps both sides' buffers bounded.

`SteleLogHandler` ships `logging` records that carry an audit event (`extra={"stele": {...}}`).
"""
import collections
import concurrent.futures
import json
import logging
import socket
import threading
import time
import uuid

__all__ = ["SteleClient", "SteleError", "SteleLogHandler"]


class SteleError(Exception):
    """A request the daemon refused: `code` is its error code (Specs/protocol.md, "Errors")."""

    def __init__(self, code, message, reply):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.reply = reply


class SteleClient:
    def __init__(self, path, max_in_flight=1024, reconnect_seconds=60.0):
        self._path = path
        self._reconnect_seconds = reconnect_seconds
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._lock = threading.Condition()
        self._write_lock = threading.Lock()  # one writer at a time: lines never interleave
        self._pending = collections.deque()  # (line bytes, future), in send order
        self._sock = None
        self._generation = 0
        self._closed = False
        self._connect()
        self._reader = threading.Thread(target=self._read_loop, name="stele-client-reader", daemon=True)
        self._reader.start()

    # -- public ----------------------------------------------------------------------------

    def append(self, event):
        """Sends an event; returns a future of its reply (`seq`, `leaf`, ...), or of a SteleError."""
        event = dict(event)
        event.setdefault("id", str(uuid.uuid4()))
        return self._send(event)

    def request(self, obj, timeout=30.0):
        """Sends any request (`{"op": "consent", ...}`) and waits for its reply."""
        return self._send(dict(obj)).result(timeout=timeout)

    def allowed(self, subject, purpose, timeout=30.0):
        """Whether processing `purpose` for `subject` is allowed now (op consent)."""
        return self.request({"op": "consent", "subject": subject, "purpose": purpose}, timeout)["consent"]["allowed"]

    def flush(self, timeout=None):
        """Waits until every request sent so far has its reply."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while self._pending:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"{len(self._pending)} requests still unanswered")
                self._lock.wait(remaining)

    def close(self):
        with self._lock:
            self._closed = True
            sock, self._sock = self._sock, None
            for _, future in self._pending:
                if not future.done():
                    future.set_exception(ConnectionError("the client was closed"))
            self._pending.clear()
            self._lock.notify_all()
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        try:
            if exc[0] is None:
                self.flush(timeout=60)
        finally:
            self.close()

    # -- internals ---------------------------------------------------------------------------

    def _send(self, obj):
        line = (json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n").encode()
        future = concurrent.futures.Future()
        self._slots.acquire()
        future.add_done_callback(lambda _: self._slots.release())
        with self._lock:
            if self._closed:
                future.set_exception(ConnectionError("the client is closed"))
                return future
            self._pending.append((line, future))
            sock = self._sock
        if sock is not None:
            with self._write_lock:
                try:
                    sock.sendall(line)
                except OSError:
                    pass  # the reader notices the broken connection and resends everything unanswered
        return future

    def _connect(self):
        """Connects (retrying with backoff until `reconnect_seconds` pass) and sends everything
        unanswered again; a connection that breaks during that resend is retried too."""
        deadline = time.monotonic() + self._reconnect_seconds
        delay = 0.05
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(self._path)
                # Everything unanswered goes again, in order, with the same ids, before anything
                # new: the write lock is taken before the new socket is visible to senders.
                with self._write_lock:
                    with self._lock:
                        self._sock = sock
                        self._generation += 1
                        unanswered = [line for line, _ in self._pending]
                    for line in unanswered:
                        sock.sendall(line)
                return
            except OSError:
                sock.close()
                with self._lock:
                    if self._sock is sock:
                        self._sock = None
                if time.monotonic() > deadline or self._closed:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    def _read_loop(self):
        while True:
            with self._lock:
                if self._closed:
                    return
                sock = self._sock
            try:
                reader = sock.makefile("rb")
                for raw in reader:
                    reply = json.loads(raw)
                    with self._lock:
                        if not self._pending:
                            continue
                        _, future = self._pending.popleft()
                        self._lock.notify_all()
                    if reply.get("ok"):
                        future.set_result(reply)
                    else:
                        error = reply.get("error") or {}
                        future.set_exception(SteleError(error.get("code"), error.get("message"), reply))
            except (OSError, ValueError):
                pass
            with self._lock:
                if self._closed:
                    return
            try:
                self._connect()
            except OSError as error:
                with self._lock:
                    for _, future in self._pending:
                        if not future.done():
                            future.set_exception(ConnectionError(f"the daemon did not come back: {error}"))
                    self._pending.clear()
                    self._closed = True
                    self._lock.notify_all()
                return


class SteleLogHandler(logging.Handler):
    """Ships each record that carries `extra={"stele": event}` as that event; ignores the rest.

        log = logging.getLogger("audit")
        log.addHandler(SteleLogHandler(client))
        log.info("admin reset MFA", extra={"stele": {"kind": "admin.action", "actor": "staff:7",
                 "subject": "user:42", "attrs": {"action": "reset_mfa", "target": "user:42"}}})
    """

    def __init__(self, client, level=logging.NOTSET):
        super().__init__(level)
        self.client = client

    def emit(self, record):
        event = getattr(record, "stele", None)
        if not isinstance(event, dict):
            return
        try:
            self.client.append(event)
        except Exception:
            self.handleError(record)
