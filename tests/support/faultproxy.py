"""A fault-injecting HTTP proxy between S3 clients and a real S3 server (tests only).

It binds 127.0.0.1, forwards each request on its own upstream connection
(`Connection: close` both ways, so every request is seen and can be faulted), and can:

- add latency to every response (`latency`),
- answer the next N requests with 503 SlowDown (or another status) without forwarding,
- drop the next N connections (close without answering),
- truncate the next N responses after a number of bytes,
- go fully down for a set time: `outage(seconds)` closes connections at once, or with
  `blackhole=True` holds them silently (the client's read timeout ends them).

It counts requests by method and by the first path segment under the bucket
(`GET reports`, `PUT desired`, ...), which is how tests and benchmarks count S3 requests.
No toxiproxy is packaged for this machine, and toxiproxy cannot answer HTTP 503s.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

SLOWDOWN_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)
_MAX_HEAD = 64 * 1024


@dataclass
class _Faults:
    latency: float = 0.0
    status_next: int = 0
    status_code: int = 503
    drop_next: int = 0
    truncate_next: int = 0
    truncate_after: int = 0
    outage_until: float = 0.0
    blackhole: bool = False
    ignore_conditions: bool = False
    counts: Counter[str] = field(default_factory=Counter)
    heads: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        """`upstream` is http://host:port of the real server."""
        hostport = upstream.split("://", 1)[-1].rstrip("/")
        host, _, port = hostport.partition(":")
        self.upstream = (host, int(port or 80))
        self._faults = _Faults()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        self._thread = threading.Thread(
            target=self._loop.run_forever, daemon=True, name="faultproxy"
        )
        self.port = 0

    # ---- lifecycle ------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        future.result(timeout=10)
        return self

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            # a connection accepted while closing starts its handler a moment later: cancel
            # and await rounds until none is left, so no handler is destroyed pending (its
            # `finally` would then ignore GeneratorExit at garbage collection, in a later test)
            for _ in range(20):
                tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                if not tasks:
                    break
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                await asyncio.sleep(0)
            if self._server is not None:
                await self._server.wait_closed()
            await asyncio.sleep(0.05)  # let the transports' close callbacks run: no leaked socket

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # ---- controls (thread-safe) -----------------------------------------------------------

    def set_latency(self, seconds: float) -> None:
        with self._lock:
            self._faults.latency = seconds

    def fail_next(self, n: int, status: int = 503) -> None:
        """Answer the next `n` requests with `status` (503 gives an S3 SlowDown body)."""
        with self._lock:
            self._faults.status_next, self._faults.status_code = n, status

    def drop_next(self, n: int) -> None:
        with self._lock:
            self._faults.drop_next = n

    def truncate_next(self, n: int, after_bytes: int = 100) -> None:
        with self._lock:
            self._faults.truncate_next, self._faults.truncate_after = n, after_bytes

    def outage(self, seconds: float, *, blackhole: bool = False) -> None:
        with self._lock:
            self._faults.outage_until = time.monotonic() + seconds
            self._faults.blackhole = blackhole

    def ignore_conditions(self, on: bool = True) -> None:
        """Drop If-Match / If-None-Match from every request: a store that ignores
        conditional requests (only meaningful upstream of a server that does not check
        signatures, such as moto)."""
        with self._lock:
            self._faults.ignore_conditions = on

    def heal(self) -> None:
        """Remove every fault (counters are kept)."""
        with self._lock:
            counts = self._faults.counts
            self._faults = _Faults(counts=counts)

    def counts(self) -> Counter[str]:
        with self._lock:
            return Counter(self._faults.counts)

    def heads(self) -> list[tuple[str, str, dict[str, str]]]:
        """(method, target, lower-cased request headers) of every request passed on."""
        with self._lock:
            return list(self._faults.heads)

    def reset_counts(self) -> None:
        with self._lock:
            self._faults.counts.clear()

    # ---- the proxy ------------------------------------------------------------------------

    def _take(self) -> tuple[str, float, int, int]:
        """Decide this connection's fault; returns (kind, latency, status, truncate_after)."""
        with self._lock:
            f = self._faults
            if time.monotonic() < f.outage_until:
                return ("blackhole" if f.blackhole else "drop"), 0.0, 0, 0
            if f.drop_next > 0:
                f.drop_next -= 1
                return "drop", 0.0, 0, 0
            if f.status_next > 0:
                f.status_next -= 1
                return "status", f.latency, f.status_code, 0
            if f.truncate_next > 0:
                f.truncate_next -= 1
                return "truncate", f.latency, 0, f.truncate_after
            return "pass", f.latency, 0, 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._serve_one(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await writer.wait_closed()

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        kind, latency, status, cut = self._take()
        if kind == "drop":
            return
        if kind == "blackhole":
            with self._lock:
                until = self._faults.outage_until
            await asyncio.sleep(max(0.0, until - time.monotonic()))
            return
        head = await reader.readuntil(b"\r\n\r\n")
        if len(head) > _MAX_HEAD:
            return
        lines = head.decode("latin-1").split("\r\n")
        method, target = ([*lines[0].split(" "), "", ""])[:2]
        length = 0
        expect_continue = False
        kept = [lines[0]]
        with self._lock:
            careless = self._faults.ignore_conditions
        for line in lines[1:]:
            name = line.split(":", 1)[0].strip().lower()
            if careless and name in ("if-match", "if-none-match"):
                continue
            if name == "content-length":
                length = int(line.split(":", 1)[1])
            if name == "expect":  # answered here, so upstream never sends an interim 100
                expect_continue = "100-continue" in line.lower()
                continue
            if name in ("connection", "keep-alive") or not line:
                continue
            kept.append(line)
        if expect_continue and kind != "status":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await writer.drain()
        body = (
            await reader.readexactly(length)
            if length and not (expect_continue and kind == "status")
            else b""
        )
        path = target.split("?", 1)[0].strip("/").split("/")
        section = path[1] if len(path) > 1 else ("(bucket)" if path[0] else "(root)")
        with self._lock:
            self._faults.counts[f"{method} {section}"] += 1
            self._faults.counts[method] += 1
            self._faults.heads.append(
                (
                    method,
                    target,
                    {
                        ln.split(":", 1)[0].strip().lower(): ln.split(":", 1)[1].strip()
                        for ln in lines[1:]
                        if ":" in ln
                    },
                )
            )
        if latency:
            await asyncio.sleep(latency)
        if kind == "status":
            payload = SLOWDOWN_BODY if status == 503 else b""
            writer.write(
                f"HTTP/1.1 {status} Injected\r\nContent-Type: application/xml\r\n"
                f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
            return
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        try:
            up_writer.write(
                ("\r\n".join(kept) + "\r\nConnection: close\r\n\r\n").encode("latin-1") + body
            )
            await up_writer.drain()
            resp_head = await up_reader.readuntil(b"\r\n\r\n")
            resp_lines = resp_head.decode("latin-1").split("\r\n")
            headers = {
                ln.split(":", 1)[0].strip().lower(): ln.split(":", 1)[1].strip()
                for ln in resp_lines[1:]
                if ":" in ln
            }
            code = int(resp_lines[0].split(" ")[1])
            with self._lock:  # what upstream answered: "PUT desired 200", "PUT desired 412"
                self._faults.counts[f"{method} {section} {code}"] += 1
            kept_resp = [
                ln
                for ln in resp_lines
                if ln and ln.split(":", 1)[0].strip().lower() not in ("connection", "keep-alive")
            ]
            out = ("\r\n".join(kept_resp) + "\r\nConnection: close\r\n\r\n").encode("latin-1")
            if method == "HEAD" or code in (204, 304) or 100 <= code < 200:
                remaining: int | None = 0
            elif "content-length" in headers:
                remaining = int(headers["content-length"])
            else:
                remaining = None  # chunked or close-delimited: until the terminator or EOF
            budget = cut if kind == "truncate" else None
            sent = 0
            chunk = out
            tail = b""
            while chunk:
                if budget is not None and sent + len(chunk) > budget:
                    writer.write(chunk[: max(0, budget - sent)])
                    await writer.drain()
                    return
                writer.write(chunk)
                await writer.drain()
                sent += len(chunk)
                if remaining == 0:
                    return
                if remaining is None and headers.get("transfer-encoding") == "chunked":
                    tail = (tail + chunk)[-7:]
                    if tail.endswith(b"0\r\n\r\n") and chunk is not out:
                        return
                chunk = await up_reader.read(65536 if remaining is None else min(65536, remaining))
                if remaining is not None:
                    remaining -= len(chunk)
        finally:
            up_writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await up_writer.wait_closed()
