"""A counting, stoppable HTTP proxy in front of a real S3 server (127.0.0.1 only).

It forwards requests byte for byte (the Host header too, so SigV4 signatures still
verify), records (method, path, status) of each, and can be stopped and restarted on the
same port to play "bucket unreachable". `drip` mode answers slowly, one byte at a time,
to play a hostile CDN; `huge` mode sends an endless body without a length (until the connection closes).
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HUGE_BOUND = 256 * 1024 * 1024


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # quiet
        return

    def setup(self) -> None:
        super().setup()
        self.server.proxy.connections.add(self.connection)

    def finish(self) -> None:
        self.server.proxy.connections.discard(self.connection)
        super().finish()

    def _forward(self) -> None:
        proxy = self.server.proxy
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if body:
            proxy.bodies.append(body)
        if proxy.mode == "drip":
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            try:
                for _ in range(100000):
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(0.05)
            except OSError:
                pass
            proxy.record(self.command, self.path, 200)
            self.close_connection = True
            return
        if proxy.mode == "huge" and self.command == "GET":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            chunk, sent, until = b"x" * 65536, 0, time.monotonic() + 20
            try:  # endless for a client: bounded here at 256 MiB or 20 s
                while sent < HUGE_BOUND and time.monotonic() < until:
                    self.wfile.write(chunk)
                    sent += len(chunk)
            except OSError:
                pass
            with proxy._lock:
                proxy.huge_sent.append(sent)
            proxy.record(self.command, self.path, 200)
            self.close_connection = True
            return
        up = urlsplit(proxy.upstream)
        conn = http.client.HTTPConnection(up.hostname or "127.0.0.1", up.port, timeout=10)
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if proxy.mode == "ignore-conditions" and name.lower() in (
                    "if-match",
                    "if-none-match",
                ):
                    continue  # plays an endpoint that ignores conditional requests
                conn.putheader(name, value)
            conn.endheaders(body or None)
            resp = conn.getresponse()
            data = resp.read()
            self.send_response(resp.status)
            for name, value in resp.getheaders():
                if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            proxy.record(self.command, self.path, resp.status)
        finally:
            conn.close()

    do_GET = do_PUT = do_DELETE = do_HEAD = do_POST = _forward


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    proxy: CountingProxy


class CountingProxy:
    def __init__(self, upstream: str, port: int) -> None:
        self.upstream = upstream
        self.port = port
        self.mode = "pass"
        self.requests: list[tuple[str, str, int]] = []
        self.bodies: list[bytes] = []  # every request body seen (PUTs)
        self.huge_sent: list[int] = []  # bytes written per `huge` answer before the client left
        self.connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def record(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self.requests.append((method, path, status))

    def take(self) -> list[tuple[str, str, int]]:
        with self._lock:
            out, self.requests = self.requests, []
        return out

    def start(self) -> CountingProxy:
        server = _Server(("127.0.0.1", self.port), _Handler)
        server.proxy = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        for conn in list(self.connections):  # kept-alive clients lose their connection too
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def is_refusing(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
        except OSError:
            return True
        return False
