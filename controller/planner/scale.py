"""Autoscaling per service, pure: how many machines each `scale:` service runs.

Runs first in a pass and returns the spec with each scaled service's `count` replaced by
the scaler's decision, so assignment, draining and status all work on that number.

For a service with `scale: {min, max, metric, target_per_machine, up, down, cooldown}`:
- its *members* are the machines planned active (or canary) in the last pass; the
  *fresh* ones are those whose snapshot was accepted within `fresh` (default: three
  controller intervals or 1.5 times the heartbeat the machine's agent reports, whichever
  is longer: a quiet agent reports only at its heartbeat). With fewer than `min_fresh` of
  the members fresh, the scaler
  holds the count and says why (`scale.held`, once per reason).
- the measured total is the metric summed over the fresh members (terms of a pooled
  service's metric are added: `sessions.voice+sessions.sms`), extrapolated to all members.
- without thresholds the wanted count is ceil(total / target_per_machine); with `up`
  and `down` the count moves only when the utilisation (total / (members x target))
  leaves [down, up], to the count that puts it in the middle of the band.
- the wanted count is clamped to [min, max]. Scaling up happens at once; scaling down
  waits until `cooldown` has passed since the last change (`scale.held` says so); the
  scaler's first pass counts as a change, so a new service keeps its `count` that long.
  Scaling up activates warm standby machines first (assignment's first tier); scaling
  down steps machines down (fewest sessions first), draining those with sessions.

State (count, last change, the measurement behind it) lives in planner memory (`Memory.scale`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace

from controller.planner.assign import ACTIVE_MODES
from controller.planner.model import Event, EventKind, MachineObservation, Memory, ScaleMemory
from controller.spec.model import ClusterSpec, ScaleSpec, ServiceSpec
from wire.documents import Snapshot


def metric_value(snapshot: Snapshot, terms: tuple[str, ...]) -> float:
    """The sum of a machine's metric terms (missing fields count as 0)."""
    total = 0.0
    for term in terms:
        group, _, name = term.partition(".")
        values: dict[str, float] | dict[str, int] = (
            snapshot.sessions if group == "sessions" else snapshot.load
        )
        if name:
            total += float(values.get(name, 0) or 0)
        else:
            total += float(sum(v for v in values.values() if isinstance(v, int | float)))
    return total


def autoscale(
    spec: ClusterSpec,
    observed: Mapping[str, MachineObservation],
    memory: Memory,
    now: float,
) -> tuple[ClusterSpec, dict[str, ScaleMemory], list[Event]]:
    """(spec with scaled counts, new scale memory, events)."""
    scaled = {n: s for n, s in spec.services.items() if s.scale is not None}
    if not scaled:
        return spec, {}, []
    members: dict[str, list[str]] = {n: [] for n in scaled}
    for m, mm in memory.machines.items():
        if mm.service in members and mm.mode in ACTIVE_MODES and not mm.lost:
            members[mm.service].append(m)
    window_default = 3 * spec.settings.controller_interval
    services = dict(spec.services)
    state: dict[str, ScaleMemory] = {}
    events: list[Event] = []
    for name in sorted(scaled):
        svc = scaled[name]
        sc = svc.scale
        assert sc is not None
        prev = memory.scale.get(name)
        if prev is None:  # first pass (or memory lost): from what runs, else the start count
            have = len(members[name])
            prev = ScaleMemory(count=have or sc.start, changed_at=now)  # cooldown from here
        prev = replace(prev, count=min(max(prev.count, sc.min), sc.max))
        new = _decide(name, sc, prev, sorted(members[name]), observed, now, window_default)
        if new.count != prev.count:
            kind: EventKind = "scale.up" if new.count > prev.count else "scale.down"
            events.append(
                Event(kind,
                      f"{prev.count} -> {new.count} machines: {'+'.join(sc.metric)} "
                      f"= {new.measured:g} for target {sc.target_per_machine:g} per machine",
                      service=name,
                      data={"from": prev.count, "to": new.count, "measured": new.measured})
            )  # fmt: skip
        elif new.held and _kind(new.held) != _kind(prev.held):
            events.append(Event("scale.held", new.held, service=name, data={"count": new.count}))
        state[name] = new
        services[name] = _with_count(svc, new.count)
    return replace(spec, services=services), state, events


def _decide(
    name: str,
    sc: ScaleSpec,
    prev: ScaleMemory,
    members: list[str],
    observed: Mapping[str, MachineObservation],
    now: float,
    window_default: float,
) -> ScaleMemory:
    if not members:  # nothing serves yet: nothing to measure
        return replace(prev, held="")

    def window(obs: MachineObservation) -> float:
        # by default a machine is as fresh as its agent's heartbeat allows: a quiet agent
        # reports only then, and holding until every machine reports faster never ends
        return sc.fresh or max(window_default, 1.5 * obs.snapshot.heartbeat_interval)

    fresh = [
        observed[m]
        for m in members
        if m in observed and now - observed[m].accepted_at <= window(observed[m])
    ]
    need = max(1, math.ceil(sc.min_fresh * len(members) - 1e-9))
    if len(fresh) < need:
        return replace(
            prev,
            held=f"stale: only {len(fresh)} of {len(members)} {name} machines reported within "
            f"{_window_text(sc.fresh, window_default)} (need {need}); holding {prev.count} machines",
        )
    total = sum(metric_value(o.snapshot, sc.metric) for o in fresh)
    estimate = total * len(members) / len(fresh)
    target = sc.target_per_machine or 1.0
    want = prev.count
    if sc.up is not None and sc.down is not None:
        util = estimate / (len(members) * target)
        if util > sc.up or util < sc.down:
            mid = (sc.up + sc.down) / 2
            want = math.ceil(estimate / (target * mid) - 1e-9)
    else:
        want = math.ceil(estimate / target - 1e-9)
    want = min(max(want, sc.min), sc.max)
    measured = round(estimate, 3)
    if want > prev.count:
        return ScaleMemory(count=want, changed_at=now, measured=measured)
    if want < prev.count:
        left = prev.changed_at + sc.cooldown - now
        if left > 0:
            return replace(
                prev,
                held=f"cooldown: {want} machines would do, scaling down waits {left:g}s more",
            )
        return ScaleMemory(count=want, changed_at=now, measured=measured)
    return replace(prev, held="")  # measured is kept from the last change: memory stays still


def _kind(held: str) -> str:
    return held.split(":", 1)[0]


def _with_count(svc: ServiceSpec, count: int) -> ServiceSpec:
    return svc if svc.count == count else replace(svc, count=count)


def _window_text(fresh: float | None, default: float) -> str:
    if fresh:
        return f"{fresh:g}s"
    return f"{default:g}s or 1.5 heartbeats"


__all__ = ["autoscale", "metric_value"]
