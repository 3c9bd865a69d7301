"""The controller's Prometheus metrics over a real cycle: the exposition parses with the
client library's parser and agrees with what the cycle wrote to the bucket."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from controller.shell.cycle import Controller
from controller.shell.lease import LeaseSettings
from controller.shell.metrics import ControllerMetrics
from tests.support.simfleet import SimFleet
from wire.layout import STATUS_CLUSTER
from wire.store import DirectoryStore, StoredObject

MASTER = bytes(range(32))


def _samples(metrics: ControllerMetrics) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    text = generate_latest(metrics.registry).decode()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def test_metrics_follow_the_cycles(tmp_path: Path) -> None:
    """Cycles, phases, bucket requests by kind and answer, machines by service/mode/health
    and the rollout's step, state and gate numbers, as the bucket's status says."""
    store = DirectoryStore(tmp_path / "bucket")
    clock = [time.time() - 100]
    metrics = ControllerMetrics()
    ctl = Controller(metrics.store(store), MASTER, holder="ctl", lease=LeaseSettings(30, 20),
                     wall=lambda: clock[0], clock=lambda: clock[0])  # fmt: skip
    fleet = SimFleet.build(store, MASTER)
    fleet.apply("1.0", clock[0])
    for i in range(30):
        if i == 6:
            fleet.apply("2.0", clock[0])
        metrics.observe(ctl, ctl.cycle())
        fleet.round(clock[0])
        clock[0] += 0.5
    metrics.failed("failed")
    s = _samples(metrics)
    cycles = {labels["result"]: v for labels, v in s["bosun_controller_cycles_total"]}
    assert cycles["acted"] == 30 and cycles["failed"] == 1 and cycles["follower"] == 0
    assert (
        dict(s["bosun_controller_leader"][0][0]) == {} and s["bosun_controller_leader"][0][1] == 1
    )
    phases = {x["phase"] for x, _ in s["bosun_controller_cycle_phase_duration_seconds_count"]}
    assert {"lease", "intake", "plan", "publish", "records"} <= phases
    requests = {(x["kind"], x["answer"]): v for x, v in s["bosun_controller_store_requests_total"]}
    assert requests[("list", "ok")] >= 30 and requests[("put", "ok")] > 0
    assert requests[("get", "ok")] > 0
    got = store.get(STATUS_CLUSTER)
    assert isinstance(got, StoredObject)
    status = orjson.loads(got.body)
    expected: dict[tuple[str, str, str], int] = {}
    for m in status["machines"].values():
        key = (m["service"] or "", m["mode"], m["health"])
        expected[key] = expected.get(key, 0) + 1
    machines = {(x["service"], x["mode"], x["health"]): v for x, v in s["bosun_machines"]}
    assert machines == expected
    rollout = status["rollouts"]["web"]
    assert s["bosun_rollout_step"] == [({"service": "web"}, rollout["step"])]
    states = {x["state"]: v for x, v in s["bosun_rollout_state"] if x["service"] == "web"}
    assert states[rollout["state"]] == 1 and sum(states.values()) == 1
    gate = {x["measure"]: v for x, v in s["bosun_rollout_gate"]}
    assert gate["new_error_rate"] == rollout["gate"]["new_error_rate"]
    limits = {x["threshold"]: v for x, v in s["bosun_rollout_gate_threshold"]}
    assert limits["max_error_rate"] == 0.05
    assert {x["service"]: v for x, v in s["bosun_machines_held"]} == {"web": 0, "lb": 0}
