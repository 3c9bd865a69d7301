"""The example balancer's health checks as a real process: a killed backend is reported
failing within a few check rounds, an evicted peer is checked and never sent traffic."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

Spawn = Callable[..., Any]
WaitUntil = Callable[..., None]


def _peer(app: Any, machine: str) -> dict[str, Any]:
    return {"machine": machine, "address": "127.0.0.1", "port": app.port, "weight": 100}


def test_a_killed_backend_is_reported_failing_within_a_second(
    spawn: Spawn, tmp_path: Path, wait_until: WaitUntil
) -> None:
    a = spawn("app", "--machine", "a")
    b = spawn("app", "--machine", "b")
    c = spawn("app", "--machine", "c")
    peers, report = tmp_path / "peers.json", tmp_path / "backends.json"
    doc = {"backends": [_peer(a, "a"), _peer(b, "b")], "evicted": [_peer(c, "c")]}
    peers.write_text(json.dumps(doc))
    lb = spawn(
        "lb", "--peers-file", str(peers), "--check-seconds", "0.2", "--fall", "2",
        "--report-file", str(report),
    )  # fmt: skip
    wait_until(lambda: report.exists(), "the report file")
    b.popen.kill()
    b.popen.wait(timeout=5)

    def failing() -> dict[str, Any]:
        return {m: v["failing_since"] for m, v in lb.json("/_lb/backends")["backends"].items()}

    wait_until(lambda: failing()["b"] is not None, "b reported failing", timeout=3.0)
    assert failing()["a"] is None and failing()["c"] is None  # c: evicted, still checked
    wait_until(
        lambda: json.loads(report.read_text())["backends"]["b"]["failing_since"] is not None,
        "the report file to say so",
        timeout=3.0,
    )
    for _ in range(10):  # never routed to c (evicted) nor to the dead b
        status, headers, _ = lb.get("/")
        assert status == 200 and headers["X-Bosun-Backend"] == "a"
    assert os.path.getsize(report) < 4096
