"""The cluster summary written to status/cluster.json after each cycle."""

from __future__ import annotations

from collections import Counter

from controller.planner.assign import Assignment, is_healthy
from controller.planner.model import (
    STATUS_FORMAT,
    MachineStatus,
    Memory,
    Observed,
    ServiceStatus,
    Status,
)
from controller.planner.release import Releases
from controller.spec.model import ClusterSpec
from wire.layout import MachineId


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
    for m, mm in memory.machines.items():
        obs = observed.machines.get(MachineId(m))
        live = work.live.get(m)
        svc = mm.service
        running = None
        health = "lost" if live is None else "unknown"
        if obs is not None and svc is not None:
            state = obs.snapshot.services.get(svc)
            if state is not None:
                running = state.version
                if live is not None:
                    health = state.health
                if running is not None and live is not None and svc in versions:
                    versions[svc][running] += 1
        if svc is not None and mm.mode == "standby" and live is not None:
            standby[svc] += 1
        machines[m] = MachineStatus(
            service=svc,
            mode=mm.mode,
            version=mm.version,
            running=running,
            health=health,
            age=round(now - obs.accepted_at, 3) if obs is not None else None,
            lost=live is None,
            generation=mm.generation,
            applied_generation=obs.snapshot.applied.generation if obs is not None else 0,
        )
    services: dict[str, ServiceStatus] = {}
    for name, svc_spec in sorted(spec.services.items()):
        actives = [
            m for m in work.actives.get(name, []) if work.mode.get(m) in ("active", "canary")
        ]
        healthy = sum(1 for m in actives if m in work.live and is_healthy(work.live[m], name))
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
