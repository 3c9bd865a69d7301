"""The example application as a real process: counters, failures, sessions, modes, SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

Spawn = Callable[..., Any]

METRICS_KEYS = {"version", "requests", "errors", "latency_ms", "sessions"}


def test_root_shows_version_machine_and_mode(spawn: Spawn) -> None:
    """GET / answers with the configured version, machine name and mode."""
    app = spawn("app", "--version", "1.4", "--machine", "web-1")
    assert app.json("/") == {"version": "1.4", "machine": "web-1", "mode": "active"}


def test_metrics_count_requests_and_the_configured_share_of_errors(spawn: Spawn) -> None:
    """With --fail-rate 0.25, 200 requests give 50 errors (±1), all counted in /metrics."""
    app = spawn("app", "--version", "2.0", "--fail-rate", "0.25")
    statuses = [app.get("/")[0] for _ in range(200)]
    assert set(statuses) == {200, 500}
    assert abs(statuses.count(500) - 50) <= 1
    app.get("/health")  # control endpoints are not traffic
    metrics = app.json("/metrics")
    assert set(metrics) == METRICS_KEYS
    assert metrics["version"] == "2.0"
    assert metrics["requests"] == 200
    assert metrics["errors"] == statuses.count(500)
    assert isinstance(metrics["latency_ms"], float)


def test_fail_rate_and_latency_come_from_bosun_config_by_version(spawn: Spawn) -> None:
    """BOSUN_CONFIG's fail_rate may name versions: the listed bad version fails, others do not."""
    config = json.dumps({"fail_rate": {"2.0-bad": 1.0, "*": 0.0}, "latency_ms": 20})
    bad = spawn("app", "--version", "2.0-bad", env={"BOSUN_CONFIG": config})
    good = spawn("app", "--version", "2.0", env={"BOSUN_CONFIG": config})
    assert [bad.get("/")[0] for _ in range(5)] == [500] * 5
    assert [good.get("/")[0] for _ in range(5)] == [200] * 5
    assert bad.json("/metrics")["errors"] == 5
    assert good.json("/metrics")["latency_ms"] >= 20.0


def test_sessions_open_close_and_close_all_show_in_metrics(spawn: Spawn) -> None:
    """Opened sessions count per channel in /metrics until closed one by one or all at once."""
    app = spawn("app", "--version", "1")
    ids = [app.post("/sessions/open?channel=voice")[2]["id"] for _ in range(3)]
    video = app.post("/sessions/open?channel=video")[2]
    assert video["channel"] == "video"
    assert app.json("/metrics")["sessions"] == {"voice": 3, "sms": 0, "video": 1}
    assert app.post(f"/sessions/close?id={ids[0]}")[0] == 200
    status, _, body = app.post(f"/sessions/close?id={ids[0]}")
    assert status == 404 and "no open session" in body["error"]
    assert app.json("/metrics")["sessions"] == {"voice": 2, "sms": 0, "video": 1}
    assert app.post("/sessions/close-all")[2] == {"closed": 3}
    metrics = app.json("/metrics")
    assert metrics["sessions"] == {"voice": 0, "sms": 0, "video": 0}
    assert metrics["requests"] == 0  # session control is not traffic


def test_shadow_mode_writes_only_to_the_shadow_sink(spawn: Spawn, tmp_path: Path) -> None:
    """In shadow mode (BOSUN_MODE) writes go to shadow_sink and never to the production sink."""
    sink, shadow_sink = tmp_path / "prod.jsonl", tmp_path / "shadow.jsonl"
    config = json.dumps({"sink": str(sink), "shadow_sink": str(shadow_sink)})
    active = spawn("app", "--version", "1", env={"BOSUN_CONFIG": config})
    shadow = spawn("app", "--version", "2", env={"BOSUN_CONFIG": config, "BOSUN_MODE": "shadow"})
    assert shadow.json("/")["mode"] == "shadow"
    assert active.post("/records", b"order-1")[2]["written"] is True
    assert shadow.post("/records", b"order-2")[2]["written"] is True
    assert [json.loads(x)["body"] for x in sink.read_text().splitlines()] == ["order-1"]
    assert [json.loads(x)["version"] for x in shadow_sink.read_text().splitlines()] == ["2"]


def test_shadow_without_shadow_sink_writes_nowhere(spawn: Spawn, tmp_path: Path) -> None:
    """A shadow with only a production sink configured drops its writes instead of using it."""
    sink = tmp_path / "prod.jsonl"
    shadow = spawn("app", "--mode", "shadow", "--sink", str(sink), script=True)
    assert shadow.post("/records", b"x")[2]["written"] is False
    assert not sink.exists()


def test_sigterm_stops_cleanly(spawn: Spawn) -> None:
    """SIGTERM ends the process with exit code 0 within a few seconds."""
    app = spawn("app", "--version", "1", script=True)
    app.popen.send_signal(signal.SIGTERM)
    start = time.monotonic()
    assert app.popen.wait(timeout=10) == 0
    assert time.monotonic() - start < 5
    assert "app.stopping" in app.log.read_text()


def test_mode_and_config_follow_the_desired_file_without_restart(
    spawn: Spawn, tmp_path: Path, wait_until: Callable[..., None]
) -> None:
    """Rewriting the desired file moves a shadow to canary live: writes switch to production."""
    sink, shadow_sink, desired = tmp_path / "p.jsonl", tmp_path / "s.jsonl", tmp_path / "d.json"
    config = {"sink": str(sink), "shadow_sink": str(shadow_sink)}
    desired.write_text(json.dumps({"mode": "shadow", "config": config}))
    app = spawn(
        "app", "--version", "2", "--desired-file", str(desired), env={"BOSUN_MODE": "active"}
    )
    assert app.json("/")["mode"] == "shadow"
    app.post("/records", b"while-shadow")
    tmp = desired.with_suffix(".tmp")
    tmp.write_text(json.dumps({"mode": "canary", "config": {**config, "fail_rate": 1.0}}))
    tmp.replace(desired)
    wait_until(lambda: app.json("/health")["mode"] == "canary", "the mode change", timeout=5)
    assert app.get("/")[0] == 500  # the new config applies too
    desired.write_text(json.dumps({"mode": "canary", "config": config}))
    wait_until(lambda: app.post("/records", b"while-canary")[0] == 200, "fail_rate back to 0")
    assert [json.loads(x)["body"] for x in shadow_sink.read_text().splitlines()] == ["while-shadow"]
    assert [json.loads(x)["mode"] for x in sink.read_text().splitlines()] == ["canary"]
    assert app.popen.poll() is None


def test_bad_settings_exit_2_with_one_clear_line(tmp_path: Path) -> None:
    """An invalid fail rate stops the app at start with exit code 2 and the reason."""
    proc = subprocess.run(
        [sys.executable, "-m", "examples.app", "--fail-rate", "2"],
        cwd=Path(__file__).resolve().parents[3],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == "examples.app: fail rate 2.0 must be between 0 and 1"
