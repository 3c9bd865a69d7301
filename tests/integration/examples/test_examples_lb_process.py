"""The example load balancer as a real process in front of real example apps."""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.servers import free_port

Spawn = Callable[..., Any]
WaitUntil = Callable[..., None]


def peer(app: Any, machine: str, weight: int = 100) -> dict[str, Any]:
    return {"machine": machine, "address": "127.0.0.1", "port": app.port, "weight": weight}


def write_peers(
    path: Path, backends: list[dict[str, Any]], mirror: list[dict[str, Any]] | None = None
) -> None:
    """Write like the agent's files driver does: a temporary file renamed over the old one."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"backends": backends, "mirror": mirror or []}))
    os.replace(tmp, path)


def served_by(lb: Any, count: int, path: str = "/") -> Counter[str]:
    """Send `count` requests through the LB; all must succeed; count the answering machines."""
    seen: Counter[str] = Counter()
    for _ in range(count):
        status, headers, body = lb.get(path)
        assert status == 200, body
        assert headers["X-Bosun-Backend"] == body["machine"]
        seen[body["machine"]] += 1
    return seen


def test_balances_by_weight(spawn: Spawn, tmp_path: Path) -> None:
    """Weights 3:1 send three quarters of 200 requests to the heavier backend."""
    a = spawn("app", "--version", "1", "--machine", "a")
    b = spawn("app", "--version", "1", "--machine", "b")
    peers = tmp_path / "peers.json"
    write_peers(peers, [peer(a, "a", 75), peer(b, "b", 25)])
    lb = spawn("lb", "--peers-file", str(peers))
    seen = served_by(lb, 200)
    assert abs(seen["a"] - 150) <= 6 and abs(seen["b"] - 50) <= 6
    status = lb.json("/_lb/status")
    assert {x["machine"]: x["served"] for x in status["backends"]} == dict(seen)
    assert lb.json("/metrics")["requests"] == 200


def test_follows_a_changed_peers_file_without_restart(
    spawn: Spawn, tmp_path: Path, wait_until: WaitUntil
) -> None:
    """Replacing the peers file moves all traffic to the new backend set within a second."""
    a = spawn("app", "--version", "1", "--machine", "a")
    b = spawn("app", "--version", "2", "--machine", "b")
    peers = tmp_path / "peers.json"
    write_peers(peers, [peer(a, "a")])
    lb = spawn("lb", "--peers-file", str(peers))
    assert served_by(lb, 10) == {"a": 10}
    write_peers(peers, [peer(b, "b")])
    wait_until(lambda: lb.json("/_lb/status")["reloads"] == 2, "the LB to reload", timeout=5)
    assert served_by(lb, 10) == {"b": 10}
    assert lb.popen.poll() is None  # same process throughout


def test_sighup_reloads_even_when_mtime_is_unchanged(
    spawn: Spawn, tmp_path: Path, wait_until: WaitUntil
) -> None:
    """SIGHUP forces a reload that the mtime poll cannot see (same size, mtime put back)."""
    a = spawn("app", "--machine", "a")
    b = spawn("app", "--machine", "b")
    peers = tmp_path / "peers.json"
    peers.write_text(json.dumps({"backends": [peer(a, "a", 1), peer(b, "b", 0)]}))
    lb = spawn("lb", "--peers-file", str(peers))
    before = peers.stat()
    peers.write_text(json.dumps({"backends": [peer(a, "a", 0), peer(b, "b", 1)]}))
    os.utime(peers, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert peers.stat().st_size == before.st_size
    assert served_by(lb, 5) == {"a": 5}  # the poll did not notice
    lb.popen.send_signal(signal.SIGHUP)
    wait_until(lambda: lb.json("/_lb/status")["reloads"] == 2, "the LB to reload on SIGHUP")
    assert served_by(lb, 5) == {"b": 5}


def test_mirrors_to_shadows_whose_answers_never_reach_clients(
    spawn: Spawn, tmp_path: Path, wait_until: WaitUntil
) -> None:
    """Two v2 shadows (one failing everything) get every request; clients only see v1 answers."""
    sink, shadow_sink = tmp_path / "prod.jsonl", tmp_path / "shadow.jsonl"
    config = {"BOSUN_CONFIG": json.dumps({"sink": str(sink), "shadow_sink": str(shadow_sink)})}
    v1 = [spawn("app", "--version", "1", "--machine", m, env=config) for m in ("a", "b")]
    shadow_env = {**config, "BOSUN_MODE": "shadow"}
    s1 = spawn("app", "--version", "2", "--machine", "s1", env=shadow_env)
    s2 = spawn("app", "--version", "2", "--machine", "s2", "--fail-rate", "1", env=shadow_env)
    peers = tmp_path / "peers.json"
    write_peers(peers, [peer(v1[0], "a"), peer(v1[1], "b")], [peer(s1, "s1"), peer(s2, "s2")])
    lb = spawn("lb", "--peers-file", str(peers), script=True)
    for i in range(40):
        status, headers, body = lb.get("/") if i % 2 else lb.post("/records", b"order-%d" % i)
        assert status == 200, body
        assert body["version"] == "1" and headers["X-Bosun-Backend"] in {"a", "b"}
    for shadow in (s1, s2):
        wait_until(lambda s=shadow: s.json("/metrics")["requests"] == 40, "40 mirrored requests")
    assert s2.json("/metrics")["errors"] == 40  # it failed every one and no client noticed
    assert lb.json("/metrics")["errors"] == 0

    def mirror_counts() -> list[tuple[str, int, int]]:
        return [(m["machine"], m["sent"], m["failed"]) for m in lb.json("/_lb/status")["mirror"]]

    wait_until(lambda: mirror_counts() == [("s1", 40, 0), ("s2", 40, 0)], "LB mirror counts")
    prod = [json.loads(line) for line in sink.read_text().splitlines()]
    assert len(prod) == 20 and {r["version"] for r in prod} == {"1"}
    shadow_writes = [json.loads(line) for line in shadow_sink.read_text().splitlines()]
    assert len(shadow_writes) == 20 and {r["machine"] for r in shadow_writes} == {"s1"}


def test_retries_once_on_another_backend_when_one_is_dead(spawn: Spawn, tmp_path: Path) -> None:
    """A backend that refuses connections costs clients nothing: each request is retried."""
    a = spawn("app", "--machine", "a")
    peers = tmp_path / "peers.json"
    dead = {"machine": "dead", "address": "127.0.0.1", "port": free_port(), "weight": 100}
    write_peers(peers, [dead, peer(a, "a")])
    lb = spawn("lb", "--peers-file", str(peers), "--eject-seconds", "0")
    assert served_by(lb, 20) == {"a": 20}
    status = lb.json("/_lb/status")
    by_machine = {x["machine"]: x for x in status["backends"]}
    assert by_machine["dead"]["failures"] >= 5  # it was really tried, not silently skipped
    assert by_machine["dead"]["served"] == 0
    assert lb.json("/metrics")["errors"] == 0


def test_two_backends_restarting_at_once_cost_clients_nothing(spawn: Spawn, tmp_path: Path) -> None:
    """Two of three backends refusing connections (restarting for a new version): every request is served."""
    a = spawn("app", "--machine", "a")
    peers = tmp_path / "peers.json"
    dead = [
        {"machine": f"d{i}", "address": "127.0.0.1", "port": free_port(), "weight": 100}
        for i in (1, 2)
    ]
    write_peers(peers, [*dead, peer(a, "a")])
    lb = spawn("lb", "--peers-file", str(peers), "--eject-seconds", "0")
    assert served_by(lb, 30) == {"a": 30}
    assert lb.json("/metrics")["errors"] == 0


def test_a_backend_killed_mid_traffic_is_skipped_without_client_errors(
    spawn: Spawn, tmp_path: Path
) -> None:
    """After SIGKILL of a busy backend, requests keep succeeding and it is ejected after 1 try."""
    a = spawn("app", "--machine", "a")
    b = spawn("app", "--machine", "b")
    peers = tmp_path / "peers.json"
    write_peers(peers, [peer(a, "a"), peer(b, "b")])
    lb = spawn("lb", "--peers-file", str(peers), "--eject-seconds", "30")
    assert served_by(lb, 10) == {"a": 5, "b": 5}  # pooled connections to both now exist
    b.popen.kill()
    b.popen.wait(timeout=5)
    assert served_by(lb, 20) == {"a": 20}
    by_machine = {x["machine"]: x for x in lb.json("/_lb/status")["backends"]}
    assert by_machine["b"]["ejected"] is True
    assert by_machine["b"]["failures"] == 1  # one try (retried on a), then skipped
    assert lb.json("/metrics")["errors"] == 0


def test_all_backends_dead_answers_502_and_no_peers_answers_503(
    spawn: Spawn, tmp_path: Path
) -> None:
    """No live backend gives 502 naming every tried backend; no backend at all gives 503."""
    peers = tmp_path / "peers.json"
    dead = [{"machine": f"d{i}", "address": "127.0.0.1", "port": free_port()} for i in (1, 2, 3)]
    write_peers(peers, dead)
    lb = spawn("lb", "--peers-file", str(peers))
    status, _, body = lb.get("/")
    assert status == 502
    assert (
        body["error"].startswith("every backend tried failed")
        and body["error"].count("ClientConnectorError") == 3
    )
    write_peers(peers, [])
    empty = spawn("lb", "--peers-file", str(peers))
    status, _, body = empty.get("/")
    assert status == 503 and "no backend" in body["error"] and str(peers) in body["error"]
    assert empty.json("/metrics")["errors"] == 1


def test_invalid_peers_file_keeps_the_last_good_backends(
    spawn: Spawn, tmp_path: Path, wait_until: WaitUntil
) -> None:
    """A broken peers file is reported in /_lb/status while the last good backends serve."""
    a = spawn("app", "--machine", "a")
    peers = tmp_path / "peers.json"
    write_peers(peers, [peer(a, "a")])
    lb = spawn("lb", "--peers-file", str(peers))
    peers.write_text('{"backends": [{"address": "127.0.0.1", "port": "eighty"}]}')
    wait_until(lambda: lb.json("/_lb/status")["last_error"] is not None, "the error to show")
    error = lb.json("/_lb/status")["last_error"]
    assert "backends[0].port must be a port number" in error and "keeping the last good" in error
    assert served_by(lb, 3) == {"a": 3}


def test_a_slow_shadow_does_not_slow_clients_and_sigterm_stops_cleanly(
    spawn: Spawn, tmp_path: Path
) -> None:
    """Mirroring to a shadow that takes 400 ms adds no client latency; SIGTERM exits 0."""
    a = spawn("app", "--machine", "a")
    slow = spawn("app", "--machine", "slow", "--mode", "shadow", "--latency-ms", "400")
    peers = tmp_path / "peers.json"
    write_peers(peers, [peer(a, "a")], [peer(slow, "slow")])
    lb = spawn("lb", "--peers-file", str(peers))
    start = time.monotonic()
    assert served_by(lb, 10) == {"a": 10}
    assert time.monotonic() - start < 2.0  # 10 x 400 ms would be 4 s if mirrors blocked
    status, _, body = lb.post("/sessions/open?channel=video")  # path and query reach the app
    assert status == 200 and body["channel"] == "video"
    assert a.json("/metrics")["sessions"]["video"] == 1
    assert lb.stop() == 0
    assert "lb.stopping" in lb.log.read_text()
