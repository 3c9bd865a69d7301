"""plan(): the cluster logic (work in progress: see model.py for the contract)."""

from __future__ import annotations

from controller.planner.model import ClusterSpec, Memory, Observed, Plan


def plan(spec: ClusterSpec, observed: Observed, memory: Memory, now: float, *, fence: int) -> Plan:
    raise NotImplementedError("planner not written yet")
