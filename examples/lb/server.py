"""Example load balancer for Bosun: weighted backends and mirrored shadows from a peers file.

Run it from the repository root (it needs only aiohttp):

    python -m examples.lb --port 8080 --peers-file /tmp/peers.json
    python examples/lb/server.py --port 8080 --peers-file /tmp/peers.json

The peers file is what the Bosun agent's `files` driver writes from the desired
document's `peers`:

    {"backends": [{"machine": "web-1", "address": "127.0.0.1", "port": 8081, "weight": 100},
                  {"machine": "web-2", "address": "127.0.0.1", "port": 8082, "weight": 5}],
     "mirror":   [{"machine": "web-3", "address": "127.0.0.1", "port": 8083}]}

- Each request goes to one backend chosen by smooth weighted round robin (nginx's
  algorithm: with weights 100 and 5, exactly 5 of every 105 requests go to web-2).
  A backend with weight 0 gets nothing.
- A refused or broken connection is retried on the next backend, up to every backend once
  (a backend restarting for a new version must not cost clients an error), and the
  failed backend is skipped for `--eject-seconds`. Other failures (after the request was
  sent) are retried only for GET, HEAD and OPTIONS, which are safe to repeat.
- Every request is also sent to each mirror target in the background; their answers are
  read and thrown away, so a shadow's response never reaches a client.
- The file is re-read when it changes (checked every 0.5 s) and on SIGHUP. A missing or
  invalid file keeps the last good peers and shows the problem in /_lb/status.
- With no usable backend, clients get 503 with a body that says why.

Own endpoints: `GET /_lb/status` (backends, counts, mirrors, last error), `GET /health`,
`GET /metrics` (same keys as the example app: requests and errors as clients saw them),
`GET /_lb/backends` (what the health checks observe per peer: checks.py).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import logging
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

try:
    from examples.lb.checks import Checks
    from examples.lb.peers import Peers, SmoothWeighted, Target, parse_peers
except ModuleNotFoundError:  # run as a file (python examples/lb/server.py): peers.py is beside it
    from checks import Checks  # type: ignore[import-not-found,no-redef]
    from peers import Peers, SmoothWeighted, Target, parse_peers  # type: ignore[import-not-found,no-redef]

log = logging.getLogger("examples.lb")

POLL_SECONDS = 0.5
MIRROR_MAX_IN_FLIGHT = 64  # per mirror target; beyond this, mirrored copies are dropped
LATENCY_WINDOW = 100
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Headers about one connection, not the request: never forwarded (Host is set per backend).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)


@dataclass(slots=True)
class Stats:
    requests: int = 0
    errors: int = 0
    latencies: collections.deque[float] = field(
        default_factory=lambda: collections.deque(maxlen=LATENCY_WINDOW)
    )
    served: collections.Counter[str] = field(default_factory=collections.Counter)
    failures: collections.Counter[str] = field(default_factory=collections.Counter)
    mirrored: collections.Counter[str] = field(default_factory=collections.Counter)
    mirror_failed: collections.Counter[str] = field(default_factory=collections.Counter)
    mirror_dropped: collections.Counter[str] = field(default_factory=collections.Counter)


class Balancer:
    def __init__(
        self,
        peers_file: Path,
        *,
        version: str,
        timeout: float,
        eject: float,
        default_port: int | None = None,
        checks: Checks | None = None,
    ) -> None:
        self.peers_file = peers_file
        self.checks = checks or Checks()
        self.default_port = default_port
        self.version = version
        self.eject_seconds = eject
        self.timeout = aiohttp.ClientTimeout(total=timeout, connect=min(2.0, timeout))
        self.mirror_timeout = aiohttp.ClientTimeout(total=min(5.0, timeout))
        self.peers = Peers()
        self.rr = SmoothWeighted(())
        self.stats = Stats()
        self.ejected: dict[str, float] = {}  # machine -> monotonic time it may be tried again
        self.in_flight: collections.Counter[str] = collections.Counter()
        self.loaded_at: float | None = None
        self.reloads = 0
        self.last_error: str | None = None
        self._seen: tuple[int, int, int] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None

    # -- peers --

    def reload(self, *, force: bool = False) -> None:
        """Re-read the peers file if it changed (or always with force); keep the last good."""
        try:
            st = self.peers_file.stat()
        except FileNotFoundError:
            self._problem(f"peers file {self.peers_file} does not exist")
            return
        seen = (st.st_mtime_ns, st.st_size, st.st_ino)
        if seen == self._seen and not force:
            return
        self._seen = seen
        try:
            raw = self.peers_file.read_bytes()
            peers = parse_peers(raw, source=str(self.peers_file), default_port=self.default_port)
        except (OSError, ValueError) as exc:
            self._problem(str(exc))
            return
        self.peers, self.rr = peers, SmoothWeighted(peers.backends)
        self.checks.track(t.machine for t in (*peers.backends, *peers.evicted))
        self.ejected.clear()
        self.loaded_at, self.last_error = time.time(), None
        self.reloads += 1
        log.info(
            "lb.peers_loaded backends=%s mirror=%s",
            ",".join(f"{t.machine}:{t.weight}" for t in peers.backends) or "-",
            ",".join(t.machine for t in peers.mirror) or "-",
        )

    def _problem(self, message: str) -> None:
        if self.loaded_at is not None:
            message += f"; keeping the last good peers ({len(self.peers.backends)} backends)"
        if message != self.last_error:
            log.warning("lb.peers_problem %s", message)
        self.last_error = message

    async def watch(self) -> None:
        while True:
            self.reload()
            await asyncio.sleep(POLL_SECONDS)

    async def check(self, interval: float) -> None:
        """Active health checks of every backend and evicted peer (checks.py)."""
        while True:
            targets = (*self.peers.backends, *self.peers.evicted)
            await self.checks.check((t.machine, t.address, t.port) for t in targets)
            await asyncio.sleep(interval)

    # -- proxying --

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(auto_decompress=False)
        return self._session

    def _pick(self, tried: set[str]) -> Target | None:
        now = time.monotonic()
        ejected = {m for m, until in self.ejected.items() if until > now}
        # Skip ejected backends while others remain; if all are ejected, try them anyway.
        return self.rr.pick(frozenset(tried | ejected)) or self.rr.pick(frozenset(tried))

    async def handle(self, request: web.Request) -> web.StreamResponse:
        start = time.monotonic()
        body = await request.read()
        headers = _forward_headers(request)
        path = request.raw_path  # as the client sent it, query string included
        self._mirror(request.method, path, headers, body)
        response = await self._proxy(request.method, path, headers, body)
        self.stats.requests += 1
        self.stats.errors += int(response.status >= 500)
        self.stats.latencies.append((time.monotonic() - start) * 1000.0)
        return response

    async def _proxy(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> web.Response:
        tried: set[str] = set()
        problems: list[str] = []
        for _attempt in range(max(2, len(self.peers.backends))):
            target = self._pick(tried)
            if target is None:
                break
            tried.add(target.machine)
            try:
                async with self.session.request(
                    method,
                    target.url + path,
                    headers=headers,
                    data=body,
                    timeout=self.timeout,
                    allow_redirects=False,
                ) as upstream:
                    payload = await upstream.read()
                    self.stats.served[target.machine] += 1
                    out = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP}
                    out["X-Bosun-Backend"] = target.machine
                    return web.Response(status=upstream.status, body=payload, headers=out)
            except (aiohttp.ClientError, TimeoutError) as exc:
                self.stats.failures[target.machine] += 1
                problems.append(f"{target.machine} ({target.url}): {type(exc).__name__} {exc}")
                timeout = isinstance(exc, TimeoutError)
                broken = isinstance(exc, aiohttp.ClientConnectionError) and not timeout
                if broken:  # refused, reset or closed: skip this backend for a while
                    self.ejected[target.machine] = time.monotonic() + self.eject_seconds
                    self.checks.observe(target.machine, False)
                # Retry when nothing reached the backend, or when repeating is harmless.
                if _was_sent(exc) and not (broken and method in SAFE_METHODS):
                    return _lb_error(504 if timeout else 502, f"backend failed: {problems[-1]}")
        if not problems:
            return _lb_error(
                503,
                f"no backends: {self.last_error}"
                if self.last_error
                else f"no backends: {self.peers_file} lists no backend with weight > 0",
            )
        return _lb_error(502, "every backend tried failed: " + "; ".join(problems))

    # -- mirroring --

    def _mirror(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        for target in self.peers.mirror:
            if self.in_flight[target.machine] >= MIRROR_MAX_IN_FLIGHT:
                self.stats.mirror_dropped[target.machine] += 1
                continue
            self.in_flight[target.machine] += 1
            task = asyncio.create_task(self._mirror_one(target, method, path, headers, body))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _mirror_one(
        self, target: Target, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> None:
        try:
            async with self.session.request(
                method,
                target.url + path,
                data=body,
                headers={**headers, "X-Bosun-Mirror": "1"},
                timeout=self.mirror_timeout,
                allow_redirects=False,
            ) as resp:
                await resp.read()  # read and discard: a shadow never answers a client
            self.stats.mirrored[target.machine] += 1
        except (aiohttp.ClientError, TimeoutError):
            self.stats.mirror_failed[target.machine] += 1
        finally:
            self.in_flight[target.machine] -= 1

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    # -- own endpoints --

    def status(self) -> dict[str, Any]:
        now, s = time.monotonic(), self.stats
        return {
            "peers_file": str(self.peers_file),
            "loaded_at": self.loaded_at,
            "reloads": self.reloads,
            "last_error": self.last_error,
            "requests": s.requests,
            "errors": s.errors,
            "backends": [
                {
                    **t.describe(),
                    "served": s.served[t.machine],
                    "failures": s.failures[t.machine],
                    "ejected": self.ejected.get(t.machine, 0.0) > now,
                }
                for t in self.peers.backends
            ],
            "mirror": [
                {
                    **t.describe(),
                    "sent": s.mirrored[t.machine],
                    "failed": s.mirror_failed[t.machine],
                    "dropped": s.mirror_dropped[t.machine],
                }
                for t in self.peers.mirror
            ],
            "served": dict(s.served),  # every backend ever used, also ones since removed
            "mirrored": dict(s.mirrored),
        }

    def metrics(self) -> dict[str, Any]:
        lat = self.stats.latencies
        return {
            "version": self.version,
            "requests": self.stats.requests,
            "errors": self.stats.errors,
            "latency_ms": round(sum(lat) / len(lat), 3) if lat else 0.0,
            "sessions": {},
        }


def _was_sent(exc: BaseException) -> bool:
    """False when the connection was never made, so the backend cannot have seen anything."""
    return not isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError)


def _forward_headers(request: web.Request) -> dict[str, str]:
    headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
    peer = request.remote or ""
    prior = request.headers.get("X-Forwarded-For")
    headers["X-Forwarded-For"] = f"{prior}, {peer}" if prior else peer
    headers["X-Forwarded-Host"] = request.host
    return headers


def _lb_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message, "from": "examples.lb"}, status=status)


def build_app(balancer: Balancer) -> web.Application:
    async def status(_: web.Request) -> web.Response:
        return web.json_response(balancer.status())

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "backends": len(balancer.peers.backends)})

    async def metrics(_: web.Request) -> web.Response:
        return web.json_response(balancer.metrics())

    app = web.Application(client_max_size=8 * 1024 * 1024)

    async def backends(_: web.Request) -> web.Response:
        return web.json_response(balancer.checks.report())

    app.router.add_get("/_lb/status", status)
    app.router.add_get("/_lb/backends", backends)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    app.router.add_route("*", "/{tail:.*}", balancer.handle)
    return app


async def serve(args: argparse.Namespace) -> None:
    """Serve until SIGTERM or SIGINT; SIGHUP re-reads the peers file."""
    balancer = Balancer(
        Path(args.peers_file),
        version=args.version,
        timeout=args.backend_timeout,
        eject=args.eject_seconds,
        default_port=args.default_port,
        checks=Checks(
            fall=args.fall,
            timeout=min(2.0, args.backend_timeout),
            report_file=Path(args.report_file) if args.report_file else None,
        ),
    )
    balancer.reload()
    runner = web.AppRunner(build_app(balancer), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, args.host, args.port).start()
    watcher = asyncio.create_task(balancer.watch())
    checker = (
        asyncio.create_task(balancer.check(args.check_seconds)) if args.check_seconds else None
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: balancer.reload(force=True))
    log.info("lb.listening url=http://%s:%d peers_file=%s", args.host, args.port, args.peers_file)
    await stop.wait()
    log.info("lb.stopping requests=%d errors=%d", balancer.stats.requests, balancer.stats.errors)
    for task in (watcher, checker):
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    await runner.cleanup()
    await balancer.close()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m examples.lb", description=__doc__.split("\n")[0])
    p.add_argument("--peers-file", required=True, help="JSON peers file written by the agent")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    p.add_argument("--version", default="lb", help="version shown in /metrics")
    p.add_argument("--default-port", type=int, help="backend port for peers listed without one")
    p.add_argument(
        "--backend-timeout",
        type=float,
        default=10.0,
        help="seconds a backend may take to answer (default 10)",
    )
    p.add_argument(
        "--eject-seconds",
        type=float,
        default=2.0,
        help="how long a backend that refused a connection is skipped (default 2)",
    )
    p.add_argument(
        "--check-seconds",
        type=float,
        default=1.0,
        help="seconds between TCP health checks of every peer (default 1; 0: none)",
    )
    p.add_argument("--fall", type=int, default=2, help="failures before a peer is failing")
    p.add_argument("--report-file", help="also write the /_lb/backends report to this file")
    p.add_argument("--log-level", default="INFO")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(message)s")
    if args.backend_timeout <= 0:
        print("examples.lb: --backend-timeout must be > 0", file=sys.stderr)
        sys.exit(2)
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
