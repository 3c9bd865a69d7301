"""Planner memory lost mid-drain or scaled up: rebuilt from desired/, nothing is cut or shrunk."""

from __future__ import annotations

from typing import Any

from controller.planner import Memory, Plan, plan
from tests.unit.planner.harness import observed_from, spec_from
from wire.documents import Desired


def _run(spec: Any, machines: dict[str, dict[str, Any]], memory: Memory, now: float,
         docs: dict[str, Desired]) -> Plan:  # fmt: skip
    p = plan(spec, observed_from(machines, memory, now), memory, now, fence=1)
    docs.update({w.machine: w.desired for w in p.writes})
    return p


def test_memory_lost_mid_drain_keeps_the_drain_and_the_scaled_count() -> None:
    """After memory loss, a draining machine stays draining with its deadline and old
    release, and a scaled-up service keeps its machines instead of falling back to `count`."""
    voice = {"version": "1", "count": 1, "sessions": {"drain_timeout": "5m"},
             "scale": {"min": 1, "max": 4, "metric": "sessions.voice", "target_per_machine": 10,
                       "cooldown": "1m"}}  # fmt: skip
    spec1 = spec_from({"services": {"voice": voice}}, 1)
    machines: dict[str, dict[str, Any]] = {f"v{i}": {"eligible": ["voice"]} for i in range(4)}
    docs: dict[str, Desired] = {}
    memory, now = Memory(), 1000.0
    memory = _run(spec1, machines, memory, now, docs).memory
    machines["v0"]["sessions"] = {"voice": 35}
    memory = _run(spec1, machines, memory, now + 10, docs).memory  # scale up to 4
    assert memory.scale["voice"].count == 4
    for m in machines:
        machines[m]["sessions"] = {"voice": 9}
    spec2 = spec_from({"services": {"voice": {**voice, "version": "2"}}}, 2)
    p = _run(spec2, machines, memory, now + 20, docs)  # every machine carries calls: all drain
    draining = {m for m, mm in p.memory.machines.items() if mm.mode == "draining"}
    assert draining, "machines with calls should drain before the version change"
    deadlines = {m: p.memory.machines[m].drain for m in draining}
    rebuilt = Memory.rebuild(docs.values())
    again = _run(spec2, machines, rebuilt, now + 30, docs)
    for m in draining:
        mm = again.memory.machines[m]
        assert mm.mode == "draining" and mm.version == "1", f"{m}: {mm}"
        assert mm.drain == deadlines[m]
    active = [m for m, mm in again.memory.machines.items() if mm.mode in ("active", "draining")]
    assert len(active) == 4, f"the scaled-up service shrank after memory loss: {active}"
