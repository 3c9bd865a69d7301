"""The demo's client: steady GET / through the load balancer, counted per phase.

An answer is an error when the status is >= 500 or the request fails outright (the load
balancer unreachable, a timeout). Errors answered by a version listed in `canary_versions`
(the bad release while it is being measured) are also counted apart as canary-window
errors: the only client errors the story allows.
"""

from __future__ import annotations

import contextlib
import http.client
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson


@dataclass
class Tally:
    requests: int = 0
    ok: int = 0
    errors: int = 0
    canary_errors: int = 0  # errors answered by a version in the canary window
    by_version: Counter[str] = field(default_factory=Counter)
    by_backend: Counter[str] = field(default_factory=Counter)
    last_error: str = ""


class Client(threading.Thread):
    """Sends `rate` requests per second to whatever `target()` names (a port, or None)."""

    def __init__(self, target: Callable[[], int | None], rate: float) -> None:
        super().__init__(name="demo-client", daemon=True)
        self.target = target
        self.interval = 1.0 / rate
        self.halt = threading.Event()
        self.lock = threading.Lock()
        self.phase = "idle"
        self.tallies: dict[str, Tally] = {}
        self.canary_versions: frozenset[str] = frozenset()
        self._conn: http.client.HTTPConnection | None = None
        self._port: int | None = None

    def set_phase(self, name: str) -> None:
        with self.lock:
            self.phase = name
            self.tallies.setdefault(name, Tally())

    def tally(self, name: str) -> Tally:
        with self.lock:
            return self.tallies.setdefault(name, Tally())

    def total(self) -> Tally:
        out = Tally()
        with self.lock:
            for t in self.tallies.values():
                out.requests += t.requests
                out.ok += t.ok
                out.errors += t.errors
                out.canary_errors += t.canary_errors
                out.by_version.update(t.by_version)
        return out

    def run(self) -> None:
        next_at = time.monotonic()
        while not self.halt.is_set():
            port = self.target()
            if port is None:
                self.halt.wait(0.2)
                continue
            self._one(port)
            next_at += self.interval
            delay = next_at - time.monotonic()
            if delay > 0:
                self.halt.wait(delay)
            else:
                next_at = time.monotonic()  # fell behind: do not burst to catch up
        self._close()

    def stop(self) -> None:
        self.halt.set()
        if self.is_alive():
            self.join(timeout=10)

    def _close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.close()
        self._conn = None

    def _get(self, port: int) -> http.client.HTTPResponse:
        """GET / on the kept-alive connection. A reused connection the server closed while it
        was idle (a real balancer's old worker finishing after a reload) fails before any
        answer: that GET is sent again once on a new connection, as HTTP clients do."""
        reused = self._conn is not None and self._port == port
        if not reused:
            self._close()
            self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            self._port = port
        assert self._conn is not None
        try:
            self._conn.request("GET", "/")
            return self._conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            if not reused:
                raise
            self._close()
            return self._get(port)

    def _one(self, port: int) -> None:
        status, version, backend, problem = 0, "", "", ""
        try:
            resp = self._get(port)
            body = resp.read()
            status = resp.status
            backend = resp.getheader("X-Bosun-Backend") or ""
            try:
                value = orjson.loads(body)
                version = str(value.get("version", "")) if isinstance(value, dict) else ""
                if status >= 500 and isinstance(value, dict):
                    problem = str(value.get("error", ""))[:200]
            except orjson.JSONDecodeError:
                problem = body[:200].decode(errors="replace")
            if resp.getheader("Connection", "").lower() == "close":
                self._close()
        except (OSError, http.client.HTTPException) as exc:
            problem = f"{type(exc).__name__}: {exc}"
            self._close()
        with self.lock:
            t = self.tallies.setdefault(self.phase, Tally())
            t.requests += 1
            if status and status < 500:
                t.ok += 1
                t.by_version[version or "?"] += 1
                if backend:
                    t.by_backend[backend] += 1
                return
            t.errors += 1
            t.last_error = f"{status or 'no answer'} {problem}".strip()
            if version and version in self.canary_versions:
                t.canary_errors += 1
