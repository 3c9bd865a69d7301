"""The cluster summary written to status/cluster.json after each cycle."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from controller.planner.assign import Assignment
from controller.planner.model import (
    STATUS_FORMAT,
    MachineObservation,
    MachineStatus,
    Memory,
    Observed,
    ServiceStatus,
    Status,
)
from controller.planner.release import Releases
from controller.spec.model import ClusterSpec


def build_status(
    spec: ClusterSpec,
    work: Assignment,
    rel: Releases,
    memory: Memory,
    observed: Observed,
    now: float,
) -> Status:
    machines: dict[str, MachineStatus] = {}
    standby: Counter[str] = Counter()
    versions: dict[str, Counter[str]] = {name: Counter() for name in spec.services}
    seen: Mapping[str, MachineObservation] = observed.machines  # type: ignore[assignment]
    live_map = work.live
    for m, mm in memory.machines.items():
        obs = seen.get(m)
        is_live = m in live_map
        svc = mm.service
        running = None
        health = "unknown" if is_live else "lost"
        age = None
        applied = 0
        if obs is not None:
            age = round(now - obs.accepted_at, 3)
            applied = obs.snapshot.applied.generation
            if svc is not None:
                state = obs.snapshot.services.get(svc)
                if state is not None:
                    running = state.version
                    if is_live:
                        health = state.health
                        if running is not None and svc in versions:
                            versions[svc][running] += 1
        if is_live and svc is not None and mm.mode == "standby":
            standby[svc] += 1
        machines[m] = MachineStatus(
            svc, mm.mode, mm.version, running, health, age, not is_live, mm.generation, applied
        )
    services: dict[str, ServiceStatus] = {}
    for name, svc_spec in sorted(spec.services.items()):
        actives = [
            m for m in work.actives.get(name, []) if work.mode.get(m) in ("active", "canary")
        ]
        healthy = len(work.healthy(name))
        base = rel.base.get(name)
        held = rel.services.get(name)
        services[name] = ServiceStatus(
            kind=svc_spec.kind,
            count=svc_spec.count,
            active=len(actives),
            healthy=healthy,
            standby=standby[name],
            version=svc_spec.version,
            target_version=base.version if base is not None else None,
            versions=dict(sorted(versions[name].items())),
            held=held.held if held is not None else None,
        )
    return Status(
        format=STATUS_FORMAT,
        at=now,
        spec_revision=spec.revision,
        fence=memory.fence,
        services=services,
        machines=machines,
        rejections=observed.rejections,
    )
