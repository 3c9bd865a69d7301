"""A killed backend leaves the balancer's peers well before its heartbeat runs out (real
processes: `bosun-agent` daemons, the example balancer and app, `bosun controller run`).

lb-1's agent has a `backends` probe reading the example balancer's `--report-file`
(docs/agent.md#backends). Heartbeat 10 s, heartbeat_timeout 30 s: a machine is lost after
30 s of silence. web-1 is killed (its agent and its app, a machine dying): the balancer's
checks see it at once, the agent reports it, the controller evicts it, and lb-1's peers file
lists it under `evicted`, not `backends`, within a few seconds; web-1 is not yet lost (not
replaced), and is lost only when its own window runs out (not waited for here).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from controller.spec.load import from_value
from controller.spec.revisions import apply
from devkit.demo import fleet
from devkit.demo.fleet import Timing
from tests.support.procfleet import ProcessFleet, build, web_roles

TIMING = Timing(
    every=1.0,
    poll=1.0,
    heartbeat=10.0,
    heartbeat_timeout=30.0,
    dwell=1.0,
    rate=20.0,
    bake=2.0,
    phase_timeout=30.0,
)
WEB = ("web-1", "web-2", "web-3")


def _add_backends_probe(f: ProcessFleet) -> Path:
    """lb-1: the balancer writes its report file, the agent reads it."""
    m = f.machines["lb-1"]
    report = m.home / "lb-backends.json"
    cfg = yaml.safe_load(m.config_path.read_text())
    lb = cfg["services"]["lb"]
    lb["process"]["command"] += ["--report-file", str(report), "--check-seconds", "0.5"]
    lb["backends"] = {"file": str(report)}
    m.config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return report


@pytest.fixture(scope="module")
def lb_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcessFleet]:
    f = ProcessFleet(**build(tmp_path_factory.mktemp("lb-observed"), web_roles(WEB), TIMING))
    _add_backends_probe(f)
    value = fleet.spec_value(TIMING, f.run_dir, web_count=3)
    apply(f.store, from_value(value, source="test"), now=time.time())
    try:
        f.start("ctl-test")

        def converged() -> bool:
            f.poll_records()
            web = f.cluster().get("services", {}).get("web", {})
            backends = {b["machine"] for b in f.peers().get("backends", [])}
            return web.get("healthy") == 3 and backends == set(WEB)

        f.wait("web: 3 healthy backends in lb-1's peers", converged, 60)
        yield f
    finally:
        f.stop()


def test_a_killed_backend_leaves_the_peers_long_before_its_heartbeat_runs_out(
    lb_fleet: ProcessFleet,
) -> None:
    f = lb_fleet
    f.poll_records()
    killed_at = time.time()
    f.book.kill_now("agent-web-1")
    f.book.popens.pop("agent-web-1")  # dead on purpose: not a crash for f.wait to report
    for t in f.book.running():
        if t.name.startswith("web-1/"):
            f.book.kill_tracked(t)

    def evicted() -> bool:
        peers = f.peers()
        return {b["machine"] for b in peers.get("backends", [])} == {"web-2", "web-3"} and [
            e["machine"] for e in peers.get("evicted", [])
        ] == ["web-1"]

    f.wait("web-1 out of lb-1's backends", evicted, timeout=15)
    took = time.time() - killed_at
    window = max(TIMING.heartbeat_timeout, 2 * TIMING.heartbeat)
    assert took < window / 3, f"evicted after {took:.1f}s; the liveness window is {window:g}s"
    status = f.cluster()
    assert status["machines"]["web-1"]["lost"] is False  # not replaced: its heartbeat decides
    assert status["evicted"]["lb/web-1"]["observers"] == ["lb-1"]
    [event] = f.events(killed_at, "peer.evicted")
    assert event["machine"] == "web-1" and event["data"]["everywhere"] is True
    print(f"web-1 evicted {took:.1f}s after it was killed (liveness window {window:g}s)")
