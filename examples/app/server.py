"""Example service for Bosun: a small HTTP application whose version shows in every answer.

Run it from the repository root (it needs only aiohttp):

    python -m examples.app --port 8081 --version 1.0
    python examples/app/server.py --port 8082 --version 2.0 --fail-rate 0.3

Endpoints:

    GET  /                     {"version", "machine", "mode"}          (traffic: counted)
    POST /records              a write: one JSON line appended to the sink (traffic: counted)
    GET  /health               200 {"status": "ok", ...} while it serves
    GET  /metrics              {"version", "requests", "errors", "latency_ms", "sessions"}
    POST /sessions/open?channel=voice      -> {"id": "voice-1", "channel": "voice"}
    POST /sessions/close?id=voice-1
    POST /sessions/close-all

Settings: command-line options win, then the desired file (`--desired-file`, JSON with
`mode` and `config`, as the agent's `files` driver writes it with `source: desired`; it is
re-read within 0.5 s of a change, so a mode or config change needs no restart), then the
environment the agent's `process` driver sets: BOSUN_CONFIG (the desired `config` as a
JSON object), BOSUN_MODE, BOSUN_VERSION, BOSUN_MACHINE; then defaults. Config keys:
`fail_rate`, `latency_ms`, `sink`, `shadow_sink`.

Modes: in `shadow` mode the application receives mirrored copies of live requests, so it
must never change production state: writes go to `shadow_sink` (or nowhere), never to
`sink`. Every other mode writes to `sink` (or nowhere when none is configured).

Failures: `fail_rate` (0..1) is the share of traffic requests answered 500, spread evenly
(request n fails when floor(n * rate) grows), so any window of k requests holds k * rate
errors, give or take one. In BOSUN_CONFIG it may also be an object by version, for example
`{"fail_rate": {"2.0-bad": 0.3}}` (key `"*"` for every other version).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

log = logging.getLogger("examples.app")

MODES = ("active", "canary", "shadow", "standby", "warm", "draining", "deactivated")
CHANNELS = ("voice", "sms", "video")  # always present in /metrics, others when opened
CONTROL_PATHS = ("/health", "/metrics", "/sessions/")  # not counted as traffic
LATENCY_WINDOW = 100  # /metrics latency_ms is the mean over this many recent requests
POLL_SECONDS = 0.5  # how often the desired file is checked for changes
PPM = 1_000_000


@dataclass(frozen=True, slots=True)
class Settings:
    host: str
    port: int
    version: str
    machine: str
    mode: str
    fail_rate: float
    latency_ms: float
    sink: Path | None  # where writes go in this mode; None: they are dropped


def resolve_settings(
    args: argparse.Namespace,
    env: Mapping[str, str] | None = None,
    desired: Mapping[str, Any] | None = None,
) -> Settings:
    """Merge options, the desired file and BOSUN_* variables; raise ValueError on bad input."""
    env = os.environ if env is None else env
    desired = desired or {}
    if "config" in desired:
        config = desired["config"] or {}
        if not isinstance(config, dict):
            raise ValueError("the desired file's 'config' must be a JSON object")
    else:
        config = _load_config(env.get("BOSUN_CONFIG", ""))
    version = args.version or env.get("BOSUN_VERSION") or "0.0.0"
    mode = args.mode or desired.get("mode") or env.get("BOSUN_MODE") or "active"
    if mode not in MODES:
        raise ValueError(f"mode {mode!r} is not one of {', '.join(MODES)}")
    fail_rate = args.fail_rate
    if fail_rate is None:
        fail_rate = _rate_for_version(config.get("fail_rate", 0.0), version)
    if not 0.0 <= fail_rate <= 1.0:
        raise ValueError(f"fail rate {fail_rate} must be between 0 and 1")
    latency = args.latency_ms if args.latency_ms is not None else config.get("latency_ms", 0.0)
    if isinstance(latency, bool) or not isinstance(latency, int | float) or latency < 0:
        raise ValueError(f"latency_ms {latency!r} must be a number >= 0")
    # A shadow never falls back to the production sink: no shadow sink means no writes.
    if mode == "shadow":
        sink = args.shadow_sink or config.get("shadow_sink")
    else:
        sink = args.sink or config.get("sink")
    if sink is not None and not isinstance(sink, str):
        raise ValueError(f"sink {sink!r} must be a file path")
    return Settings(
        host=args.host,
        port=args.port,
        version=version,
        machine=args.machine or env.get("BOSUN_MACHINE") or socket.gethostname(),
        mode=mode,
        fail_rate=float(fail_rate),
        latency_ms=float(latency),
        sink=Path(sink) if sink else None,
    )


def _load_config(raw: str) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"BOSUN_CONFIG is not valid JSON ({exc}); pass a JSON object") from exc
    if not isinstance(value, dict):
        raise ValueError('BOSUN_CONFIG must be a JSON object, for example {"fail_rate": 0.1}')
    return value


def read_desired(path: Path) -> dict[str, Any] | None:
    """The desired file's JSON object, or None when it does not exist (yet)."""
    try:
        value = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ValueError(f"desired file {path} is unreadable ({exc})") from exc
    if not isinstance(value, dict):
        raise ValueError(f"desired file {path} must hold a JSON object with mode and config")
    return value


def _rate_for_version(value: Any, version: str) -> float:
    if isinstance(value, dict):
        value = value.get(version, value.get("*", 0.0))
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"fail_rate {value!r} must be a number or an object by version")
    return float(value)


class FailureSchedule:
    """Fails exactly `rate` of the calls, spread evenly (integer arithmetic, no drift)."""

    def __init__(self, rate: float) -> None:
        self._ppm = round(rate * PPM)
        self._calls = 0

    def next_fails(self) -> bool:
        self._calls += 1
        return (self._calls * self._ppm) // PPM > ((self._calls - 1) * self._ppm) // PPM


class Service:
    """The live state: settings (replaced when the desired file changes), counters, sessions."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.failures = FailureSchedule(settings.fail_rate)
        self.requests = 0
        self.errors = 0
        self.latencies: collections.deque[float] = collections.deque(maxlen=LATENCY_WINDOW)
        self.sessions: dict[str, str] = {}  # id -> channel
        self.next_session = 0

    def reconfigure(self, settings: Settings) -> None:
        if settings == self.settings:
            return
        if settings.fail_rate != self.settings.fail_rate:
            self.failures = FailureSchedule(settings.fail_rate)
        self.settings = settings
        log.info(
            "app.reconfigured mode=%s fail_rate=%s latency_ms=%s sink=%s",
            settings.mode,
            settings.fail_rate,
            settings.latency_ms,
            settings.sink,
        )

    def record(self, status: int, seconds: float) -> None:
        self.requests += 1
        if status >= 500:
            self.errors += 1
        self.latencies.append(seconds * 1000.0)

    def session_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(CHANNELS, 0)
        for channel in self.sessions.values():
            counts[channel] = counts.get(channel, 0) + 1
        return counts


SERVICE = web.AppKey("service", Service)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def traffic(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count traffic requests, add the configured latency and the configured failures."""
    if request.path.startswith(CONTROL_PATHS):
        return await handler(request)
    svc = request.app[SERVICE]
    settings = svc.settings
    start = time.monotonic()
    status = 500
    try:
        if settings.latency_ms:
            await asyncio.sleep(settings.latency_ms / 1000.0)
        if svc.failures.next_fails():
            return _error(500, f"injected failure (fail rate {settings.fail_rate})", settings)
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        svc.record(status, time.monotonic() - start)


def _error(status: int, message: str, settings: Settings) -> web.Response:
    body = {"error": message, "version": settings.version, "machine": settings.machine}
    return web.json_response(body, status=status)


async def index(request: web.Request) -> web.Response:
    s = request.app[SERVICE].settings
    return web.json_response({"version": s.version, "machine": s.machine, "mode": s.mode})


async def write_record(request: web.Request) -> web.Response:
    """A write. Shadows write to their shadow sink (or nowhere), never to production."""
    svc = request.app[SERVICE]
    s = svc.settings
    text = await request.text()
    if s.sink is None:
        return web.json_response({"written": False, "version": s.version, "mode": s.mode})
    line = json.dumps({"machine": s.machine, "version": s.version, "mode": s.mode, "body": text})
    with s.sink.open("a", encoding="utf-8") as out:  # one small append: atomic enough here
        out.write(line + "\n")
    return web.json_response({"written": True, "version": s.version, "mode": s.mode})


async def health(request: web.Request) -> web.Response:
    s = request.app[SERVICE].settings
    return web.json_response({"status": "ok", "version": s.version, "mode": s.mode})


async def metrics(request: web.Request) -> web.Response:
    svc = request.app[SERVICE]
    s = svc.settings
    latency = sum(svc.latencies) / len(svc.latencies) if svc.latencies else 0.0
    return web.json_response(
        {
            "version": s.version,
            "requests": svc.requests,
            "errors": svc.errors,
            "latency_ms": round(latency, 3),
            "sessions": svc.session_counts(),
        }
    )


async def open_session(request: web.Request) -> web.Response:
    svc = request.app[SERVICE]
    channel = request.query.get("channel", "voice")
    if not channel.isidentifier():
        return _error(400, f"channel {channel!r} must be a word like voice", svc.settings)
    svc.next_session += 1
    session_id = f"{channel}-{svc.next_session}"
    svc.sessions[session_id] = channel
    return web.json_response({"id": session_id, "channel": channel})


async def close_session(request: web.Request) -> web.Response:
    svc = request.app[SERVICE]
    session_id = request.query.get("id", "")
    if svc.sessions.pop(session_id, None) is None:
        message = f"no open session {session_id!r}; GET /metrics shows the open sessions"
        return _error(404, message, svc.settings)
    return web.json_response({"closed": session_id})


async def close_all_sessions(request: web.Request) -> web.Response:
    svc = request.app[SERVICE]
    closed = len(svc.sessions)
    svc.sessions.clear()
    return web.json_response({"closed": closed})


def build_app(service: Service) -> web.Application:
    app = web.Application(middlewares=[traffic])
    app[SERVICE] = service
    app.router.add_get("/", index)
    app.router.add_post("/records", write_record)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/sessions/open", open_session)
    app.router.add_post("/sessions/close", close_session)
    app.router.add_post("/sessions/close-all", close_all_sessions)
    return app


async def watch_desired(service: Service, args: argparse.Namespace, path: Path) -> None:
    """Apply mode and config changes from the desired file without a restart."""
    seen: tuple[int, int, int] | None = None
    while True:
        await asyncio.sleep(POLL_SECONDS)
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        if (st.st_mtime_ns, st.st_size, st.st_ino) == seen:
            continue
        seen = (st.st_mtime_ns, st.st_size, st.st_ino)
        try:
            service.reconfigure(resolve_settings(args, desired=read_desired(path)))
        except ValueError as exc:
            log.warning("app.desired_refused %s; keeping mode=%s", exc, service.settings.mode)


async def serve(service: Service, args: argparse.Namespace) -> None:
    """Serve until SIGTERM or SIGINT, then close the listener and return."""
    settings = service.settings
    runner = web.AppRunner(build_app(service), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.host, settings.port).start()
    watcher = None
    if args.desired_file:
        watcher = asyncio.create_task(watch_desired(service, args, Path(args.desired_file)))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "app.listening url=http://%s:%d version=%s machine=%s mode=%s fail_rate=%s sink=%s",
        settings.host,
        settings.port,
        settings.version,
        settings.machine,
        settings.mode,
        settings.fail_rate,
        settings.sink,
    )
    await stop.wait()
    log.info("app.stopping version=%s machine=%s", settings.version, settings.machine)
    if watcher is not None:
        watcher.cancel()
    await runner.cleanup()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m examples.app", description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    p.add_argument("--version", help="version shown in answers (or BOSUN_VERSION)")
    p.add_argument("--machine", help="machine name shown in answers (or BOSUN_MACHINE)")
    p.add_argument("--mode", help="active, canary, shadow, ... (or BOSUN_MODE; default active)")
    p.add_argument("--fail-rate", type=float, help="share of requests answered 500 (0..1)")
    p.add_argument("--latency-ms", type=float, help="added latency per request")
    p.add_argument("--sink", help="file that receives writes (not used in shadow mode)")
    p.add_argument("--shadow-sink", help="file that receives writes in shadow mode")
    p.add_argument("--desired-file", help="JSON file with mode and config, re-read on change")
    p.add_argument("--log-level", default="INFO")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(message)s")
    try:
        desired = read_desired(Path(args.desired_file)) if args.desired_file else None
        settings = resolve_settings(args, desired=desired)
    except ValueError as exc:
        print(f"examples.app: {exc}", file=sys.stderr)
        sys.exit(2)
    asyncio.run(serve(Service(settings), args))


if __name__ == "__main__":
    main()
