"""Health, metrics and sessions probes against a real local HTTP server, files and commands."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from agent.config import ProbeSpec
from agent.probes import health, metrics_from, read_json, sessions_from
from tests.unit.agent.kit import Machine, desired, make_agent, publish, report
from wire.store import DirectoryStore

METRICS = {
    "version": "2.3",
    "requests": 120,
    "errors": 3,
    "latency_ms": 12.5,
    "sessions": {"voice": 4, "sms": 0},
}


class _App(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return

    def do_GET(self) -> None:
        routes = {
            "/health": (200, b"ok"),
            "/sick": (503, b"no"),
            "/metrics": (200, json.dumps(METRICS).encode()),
            "/bare": (200, b'{"voice": 2, "video": 1}'),
            "/junk": (200, b"<html>"),
        }
        status, body = routes.get(self.path, (404, b""))
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def app() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _App)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


FIELDS = {
    "port": "0",
    "service": "web",
    "version": "1",
    "mode": "active",
    "machine": "m",
    "generation": "1",
    "state_dir": "/",
}


def test_health_http_tcp_command(app: str) -> None:
    """HTTP 2xx, a TCP connect and a command exiting 0 are healthy; their failures are unhealthy."""
    assert health(ProbeSpec(http=f"http://{app}/health"), FIELDS, {}) == "healthy"
    assert health(ProbeSpec(http=f"http://{app}/sick"), FIELDS, {}) == "unhealthy"
    assert health(ProbeSpec(tcp=app), FIELDS, {}) == "healthy"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    assert health(ProbeSpec(tcp=f"127.0.0.1:{closed}", timeout=0.5), FIELDS, {}) == "unhealthy"
    assert (
        health(ProbeSpec(command="test $BOSUN_MODE = active"), FIELDS, {"BOSUN_MODE": "active"})
        == "healthy"
    )
    assert health(ProbeSpec(command=("false",)), FIELDS, {}) == "unhealthy"


def test_metrics_and_sessions_formats(app: str, tmp_path: Path) -> None:
    """Metrics JSON gives counters and version; sessions come over HTTP at a key, bare, from a file or a command."""
    raw = read_json(ProbeSpec(http=f"http://{app}/metrics"), FIELDS, {})
    assert metrics_from(raw) == {"requests": 120, "errors": 3, "latency_ms": 12.5, "version": "2.3"}
    assert sessions_from(raw, "sessions") == {"voice": 4, "sms": 0}
    assert sessions_from(read_json(ProbeSpec(http=f"http://{app}/bare"), FIELDS, {}), None) == {
        "voice": 2,
        "video": 1,
    }
    (tmp_path / "s.json").write_text('{"live": {"voice": 7}}')
    assert sessions_from(
        read_json(ProbeSpec(file=str(tmp_path / "s.json")), FIELDS, {}), "live"
    ) == {"voice": 7}
    out = read_json(ProbeSpec(command=("echo", '{{"sessions": {{"sms": 5}}}}')), FIELDS, {})
    assert sessions_from(out, "sessions") == {"sms": 5}
    assert read_json(ProbeSpec(http=f"http://{app}/junk"), FIELDS, {}) is None


def test_probes_reach_the_snapshot(app: str, tmp_path: Path, bucket: DirectoryStore) -> None:
    """A running service's health, counters, latency, version and sessions are in the report."""
    services = {
        "web": {
            "port": 8080,
            "process": {"command": ["sleep", "60"], "stop_timeout": 1},
            "health": {"http": f"http://{app}/health"},
            "metrics": {"http": f"http://{app}/metrics"},
        }
    }
    m = Machine(tmp_path / "m", bucket.url, services=services).write()
    publish(bucket, desired(generation=1))
    agent = make_agent(m)
    agent.cycle()
    snap = report(bucket)
    web = snap.services["web"]
    assert (web.state, web.health, web.requests, web.errors, web.latency_ms, web.version) == (
        "running",
        "healthy",
        120,
        3,
        12.5,
        "2.3",
    )
    assert snap.sessions == {"voice": 4, "sms": 0}
    agent.applier.procs.stop("web", None)
