"""Health, metrics and sessions probes, and the machine facts of a snapshot.

- health: HTTP 2xx, TCP connect, or a command exiting 0;
- metrics: an HTTP (or command/file) JSON object `{"version", "requests", "errors",
  "latency_ms", "sessions": {...}}` with cumulative counters;
- sessions: an object channel -> active sustained sessions, read over HTTP, from a
  command's stdout or from a file, at `key` (default "sessions"; a top-level object of
  integers is also accepted).
- backends (a load balancer): `{"backends": {machine: {"failing_since": float | null}}}`
  (at `key`, default "backends"), what it observes of its peers; only the failing peers
  of the running document are kept.

Every probe has a timeout and reads at most 64 KiB; a failing probe yields "unhealthy" or
no numbers, never an exception out of the cycle.
"""

from __future__ import annotations

import math
import os
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from agent.config import AddressConfig, ProbeSpec
from agent.drivers.commands import argv_for, child_env
from wire.documents import BackendState
from wire.logs import Log

if TYPE_CHECKING:
    import http.client

# http.client (with ssl and email), socket and subprocess are imported where a probe needs
# them: a machine without probes never pays for them in its cron cycle
log = Log(__name__)

PROBE_CAP = 64 * 1024


class ProbeFailed(Exception):
    pass


def _http(url: str, timeout: float) -> tuple[int, bytes]:
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ProbeFailed(f"not an http(s) URL: {url}")
    cls: type[http.client.HTTPConnection] = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    conn = cls(parts.netloc, timeout=timeout)
    try:
        conn.request("GET", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
        resp = conn.getresponse()
        return resp.status, resp.read(PROBE_CAP + 1)
    except (OSError, http.client.HTTPException) as exc:
        raise ProbeFailed(f"GET {url}: {exc.__class__.__name__}: {exc}") from None
    finally:
        conn.close()


def _command(
    spec: ProbeSpec, fields: Mapping[str, str], env: Mapping[str, str]
) -> tuple[int, bytes]:
    import subprocess

    assert spec.command is not None
    try:
        done = subprocess.run(
            argv_for(spec.command, fields),
            env=child_env(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=spec.timeout,
        )
    except (OSError, subprocess.TimeoutExpired, KeyError, ValueError) as exc:
        raise ProbeFailed(f"probe command: {exc}") from None
    return done.returncode, done.stdout[: PROBE_CAP + 1]


def health(spec: ProbeSpec, fields: Mapping[str, str], env: Mapping[str, str]) -> str:
    try:
        if spec.http is not None:
            status, _ = _http(spec.http.format_map(fields), spec.timeout)
            return "healthy" if 200 <= status < 300 else "unhealthy"
        if spec.tcp is not None:
            import socket

            host, _, port = spec.tcp.format_map(fields).rpartition(":")
            with socket.create_connection((host or "127.0.0.1", int(port)), timeout=spec.timeout):
                return "healthy"
        code, _ = _command(spec, fields, env)
        return "healthy" if code == 0 else "unhealthy"
    except (ProbeFailed, OSError, ValueError) as exc:
        log.debug("probe.health_failed %s", exc)
        return "unhealthy"


def read_json(
    spec: ProbeSpec, fields: Mapping[str, str], env: Mapping[str, str]
) -> dict[str, Any] | None:
    """The JSON object a metrics or sessions probe returns, or None."""
    try:
        if spec.http is not None:
            status, data = _http(spec.http.format_map(fields), spec.timeout)
            if not 200 <= status < 300:
                raise ProbeFailed(f"{spec.http} answered {status}")
        elif spec.file is not None:
            with open(spec.file.format_map(fields), "rb") as fh:
                data = fh.read(PROBE_CAP + 1)
        else:
            code, data = _command(spec, fields, env)
            if code != 0:
                raise ProbeFailed(f"probe command exited with {code}")
        if len(data) > PROBE_CAP:
            raise ProbeFailed(f"probe answer over {PROBE_CAP} bytes")
        value = orjson.loads(data)
    except (ProbeFailed, OSError, orjson.JSONDecodeError) as exc:
        log.debug("probe.read_failed %s", exc)
        return None
    return value if isinstance(value, dict) else None


def sessions_from(value: Mapping[str, Any] | None, key: str | None) -> dict[str, int]:
    if value is None:
        return {}
    inner = value.get(key or "sessions", value if key is None else None)
    if not isinstance(inner, dict):
        return {}
    return {
        str(k): int(v)
        for k, v in inner.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0
    }


def backends_from(
    value: Mapping[str, Any] | None, key: str | None, peers: Collection[str]
) -> dict[str, BackendState]:
    """The peers a balancer reports failing: only machines in `peers` (what it was given,
    so the report is never longer than its peers), with a finite `failing_since`."""
    inner = value.get(key or "backends") if value is not None else None
    if not isinstance(inner, dict):
        return {}
    out: dict[str, BackendState] = {}
    for machine in sorted(set(inner) & set(peers)):
        entry = inner[machine]
        since = entry.get("failing_since") if isinstance(entry, dict) else None
        if isinstance(since, bool) or not isinstance(since, (int, float)):
            continue  # reachable (null), or not a time
        if math.isfinite(since) and since >= 0:
            out[machine] = BackendState(failing_since=float(since))
    return out


def metrics_from(value: Mapping[str, Any] | None) -> dict[str, Any]:
    if value is None:
        return {}
    out: dict[str, Any] = {}
    for name in ("requests", "errors"):
        v = value.get(name)
        if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
            out[name] = v
    lat = value.get("latency_ms")
    if isinstance(lat, (int, float)) and not isinstance(lat, bool):
        out["latency_ms"] = float(lat)
    if isinstance(value.get("version"), str):
        out["version"] = value["version"][:200]
    return out


# ---- machine facts ------------------------------------------------------------------------


def _route_address(target: str) -> str:
    """The local address of the route to `target` (UDP connect sends no packet). Through
    `_socket`, the C module `socket` wraps: importing the wrapper (its enums, `selectors`)
    would cost a cron cycle more than the probe itself."""
    import _socket

    try:
        s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    except OSError:
        return ""
    try:
        s.connect((target, 9))
        return str(s.getsockname()[0])
    except OSError:
        return ""
    finally:
        s.close()


def addresses(cfg: AddressConfig) -> tuple[str, str]:
    internal = cfg.internal if cfg.internal != "auto" else _route_address("10.255.255.255")
    if cfg.external != "auto":
        return internal, cfg.external
    routed = _route_address("192.0.2.1")
    import ipaddress

    try:
        public = routed and ipaddress.ip_address(routed).is_global
    except ValueError:
        public = False
    return internal, routed if public else ""


def load() -> dict[str, float]:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return {"cpus": float(os.cpu_count() or 1)}
    return {"load1": one, "load5": five, "load15": fifteen, "cpus": float(os.cpu_count() or 1)}


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"
