"""The cluster summary written to status/cluster.json after each cycle."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from controller.planner import clocks
from controller.planner.approval import approval_status
from controller.planner.assign import ACTIVE_MODES, Assignment, is_healthy
from controller.planner.model import (
    STATUS_FORMAT,
    MachineObservation,
    MachineStatus,
    Memory,
    Observed,
    RolloutMemory,
    RolloutStatus,
    ScaleMemory,
    ScaleStatus,
    ServiceStatus,
    Status,
)
from controller.planner.release import Releases
from controller.spec.model import ClusterSpec, ScaleSpec
from wire.codec import JsonValue

_STANDBY = frozenset({"standby", "warm"})


def build_status(
    spec: ClusterSpec,
    work: Assignment,
    rel: Releases,
    memory: Memory,
    observed: Observed,
    now: float,
    healthy: Mapping[str, tuple[str, ...]],
) -> Status:
    """`healthy`: the healthy planned actives (Assignment.healthy) of the services that have
    peers (render.peered); the others' are counted here, in the walk over the fleet."""
    machines: dict[str, MachineStatus] = {}
    # per service: the versions its live machines report, its live standby/warm machines,
    # its healthy planned actives (counted once at the end: this loop runs over the whole
    # fleet every cycle, so it reads each machine once, through local names)
    reported: dict[str, list[str]] = {}
    standby_of: list[str] = []
    healthy_of: list[str] = []
    # accepted_at -> age: the shell stamps every snapshot a cycle accepts with that cycle's
    # time, so a few values cover the fleet (round() is slow)
    ages: dict[float, float] = {}
    observations: Mapping[str, MachineObservation] = observed.machines  # type: ignore[assignment]
    seen = observations.get
    live_get = work.live.get
    standby_add, healthy_add = standby_of.append, healthy_of.append
    # a machine's status fields -> one value shared by the machines that have the same:
    # most of a fleet's entries repeat (same service, version, generation, age), and
    # looking one up costs a fifth of building it (and of the memory it would take)
    shared: dict[tuple[object, ...], MachineStatus] = {}
    for m, mm in memory.machines.items():
        obs = seen(m)
        live = live_get(m)
        svc = mm.service
        mode = mm.mode
        if obs is None or live is not obs:  # not observed, or kept by fail static
            if live is not None and svc is not None:
                if mode in _STANDBY:
                    standby_add(svc)
                elif mode in ACTIVE_MODES and is_healthy(live, svc):
                    healthy_add(svc)
            if obs is None:
                machines[m] = MachineStatus(
                    svc, mode, mm.version, None, "unknown" if live is not None else "lost",
                    None, live is None, mm.generation, 0, None,
                )  # fmt: skip
                continue
        snap = obs.snapshot
        running = None
        health = "lost" if live is None else "unknown"
        if svc is not None:
            state = snap.services.get(svc)
            if state is not None:
                running = state.version
            if live is obs:  # live, with this snapshot (every machine but those above)
                if mode in _STANDBY:
                    standby_add(svc)
                elif (
                    mode in ACTIVE_MODES
                    and state is not None
                    and state.health == "healthy"
                    and state.state != "failed"
                ):
                    healthy_add(svc)
            if state is not None and live is not None:
                health = state.health
                if running is not None:
                    got = reported.get(svc)
                    if got is None:
                        reported[svc] = [running]
                    else:
                        got.append(running)
        applied = snap.applied
        at = obs.accepted_at
        age = ages.get(at)
        if age is None:
            age = ages[at] = round(now - at, 3)
        key = (
            svc, mode, mm.version, running, health, age, live is None, mm.generation,
            applied.generation,
            None if applied.result != "failed" else (applied.error or "failed (no error given)")[:500],
        )  # fmt: skip
        entry = shared.get(key)
        if entry is None:
            entry = shared[key] = MachineStatus(*key)
        machines[m] = entry
    standby = Counter(standby_of)
    healthy_n = Counter(healthy_of)
    versions: dict[str, Counter[str]] = {
        name: Counter(reported.get(name, ())) for name in spec.services
    }
    services: dict[str, ServiceStatus] = {}
    for name, svc_spec in sorted(spec.services.items()):
        modes = Counter(map(work.mode.get, work.actives.get(name, ())))
        base = rel.base.get(name)
        held = rel.services.get(name)
        services[name] = ServiceStatus(
            kind=svc_spec.kind,
            count=svc_spec.count,
            active=modes["active"] + modes["canary"],
            healthy=len(healthy[name]) if name in healthy else healthy_n.get(name, 0),
            standby=standby.get(name, 0),
            version=svc_spec.version,
            target_version=base.version if base is not None else None,
            versions=dict(sorted(versions[name].items())),
            held=_held(name, svc_spec.version, held.held if held is not None else None, memory),
            scale=_scale(svc_spec.scale, memory.scale.get(name)),
        )
    rollouts = {
        name: rollout_status(spec, name, r, work, now)
        for name, r in sorted(memory.rollouts.items())
    }
    return Status(
        rollouts=rollouts,
        format=STATUS_FORMAT,
        at=now,
        spec_revision=spec.revision,
        fence=memory.fence,
        services=services,
        machines=machines,
        rejections=observed.rejections,
    )


def rollout_status(
    spec: ClusterSpec, name: str, r: RolloutMemory, work: Assignment, now: float
) -> RolloutStatus:
    strategy = spec.rollout_of(name)
    steps = strategy.steps if strategy is not None else ()
    step = steps[r.step] if 0 <= r.step < len(steps) else None
    if r.state == "watching" and strategy is not None:
        bake, kind = strategy.watch, "watch"
    elif step is not None:
        bake, kind = step.bake, step.kind
    else:
        bake, kind = 0.0, ""
    bake_left = max(0.0, bake - clocks.step_elapsed(r, now)) if r.active else 0.0
    cohort = set(r.cohort)
    old = [m for m in work.actives.get(name, []) if m not in cohort]
    return RolloutStatus(
        service=name,
        state=r.state,
        from_version=r.from_version,
        to_version=r.to_version,
        step=r.step + 1,
        steps=len(steps),
        step_kind=kind,
        started_at=r.started_at,
        # moved on by the time the step was held, so `step_started_at + bake - now` is the
        # bake left while it runs (rollout status computes it so)
        step_started_at=round(r.step_started_at + r.step_paused_for, 3),
        bake_left=round(bake_left, 3),
        cohort=len(r.cohort),
        shadow=len(r.shadow),
        old=len(old) if r.active else 0,
        previous=len(r.previous),
        gate=dict(r.gate),
        reason=r.reason,
        finished_at=r.finished_at,
        paused=r.paused,
        paused_for=round(r.paused_for + (now - r.paused_at if r.paused_at is not None else 0.0), 3),
        failure=r.failure or None,
        undo=_undo(r),
        approval=approval_status(r),
        group=r.group or None,
    )


def _undo(r: RolloutMemory) -> dict[str, JsonValue] | None:
    if r.undo_warm is None:
        return None
    return {"revision": r.undo_id, "to_revision": r.undo_to_revision, "warm": r.undo_warm}


def _held(name: str, wanted: str, held: str | None, memory: Memory) -> str | None:
    r = memory.rollouts.get(name)
    if held is None and r is not None and r.to_version == wanted:
        if r.state in ("reverted", "halted"):
            return f"rollout {r.from_version} -> {r.to_version} {r.state}: {r.reason}"
        if r.active:
            return f"rollout {r.from_version} -> {r.to_version} in progress ({r.state})"
    return held


def _scale(sc: ScaleSpec | None, state: ScaleMemory | None) -> ScaleStatus | None:
    if sc is None or state is None:
        return None
    return ScaleStatus(
        min=sc.min,
        max=sc.max,
        metric="+".join(sc.metric),
        target_per_machine=sc.target_per_machine,
        measured=state.measured,
        changed_at=state.changed_at,
        held=state.held,
    )
