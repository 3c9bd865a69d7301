"""A rollout's shape in this pass: which machines run the new version, in which mode (pure).

Called by rollout.py once a rollout's state for the pass is decided. New-version capacity
comes from the service's warm standby machines first (an old active then steps down to
standby with the old version still installed, so a revert is a mode change); without
standby machines, old actives are switched in place. Shadow machines come from standby
only. Cohort and shadow machines are pinned to the new release, everything else of the
service runs the old one until complete; old machines stepped down stay warm in standby
on the old version for `keep_previous` after completion.
"""

from __future__ import annotations

from dataclasses import replace

from controller.planner.assign import Assignment
from controller.planner.measure import mark_of
from controller.planner.model import Event, RolloutMemory, ServiceMemory
from controller.planner.release import Release, Releases
from controller.spec.model import ClusterSpec, RolloutSpec
from controller.spec.selector import parse_selector
from wire.documents import Mode


def shape(
    spec: ClusterSpec,
    name: str,
    strategy: RolloutSpec | None,
    work: Assignment,
    rel: Releases,
    r: RolloutMemory,
    now: float,
    events: list[Event],
) -> tuple[RolloutMemory, Assignment, Releases]:
    old = Release(r.from_version, r.from_config)
    new = Release(r.to_version, r.to_config)
    svc = spec.services[name]
    if r.state in ("reverted", "superseded"):
        return r, work, rel
    if r.state == "complete":
        if spec.services[name].version == r.to_version:
            rel = rel.with_base(name, new, ServiceMemory(new.version, new.config, r.revision))
        keep = strategy.keep_previous if strategy is not None else 0.0
        if r.previous and r.finished_at is not None and now - r.finished_at >= keep:
            events.append(Event("rollout.previous_released", f"keep_previous {keep:g}s "
                                "passed; old-version standby machines move on",
                                service=name, data={"machines": list(r.previous)}))  # fmt: skip
            return replace(r, previous=()), work, rel
        kept = [m for m in r.previous if work.service.get(m) == name and work.mode.get(m) in _KEPT]
        # for keep_warm their process runs (out of the balancer), then they only keep the version
        mode: Mode = "warm" if warm_after(strategy, r, now) else "standby"
        work = work.moved({m: mode for m in kept})
        return r, work, rel.with_pins({m: old for m in kept})
    # an active rollout: the service's release stays the old one until complete
    prior = rel.services.get(name)
    rel = rel.with_base(
        name, old, ServiceMemory(old.version, old.config, prior.revision if prior else 0)
    )
    actives = list(work.actives.get(name, ()))
    active_set = set(actives)
    live = work.live
    previous = [m for m in r.previous if work.service.get(m) == name]
    cohort_now = [m for m in r.cohort if m in active_set]
    shadow_now = [
        m for m in r.shadow if m in live and work.service.get(m) == name and m not in active_set
    ]
    mode2: Mode
    if r.state == "halted":
        n2, n_shadow, mode2, weight = len(cohort_now), len(shadow_now), _mode_of(r), None
    else:
        n2, n_shadow, mode2, weight = _targets(strategy, r, svc.count, len(actives))
    prev_set = set(previous)
    former_shadow = set(r.shadow)
    standbys = sorted(
        (m for m in live
         if work.service.get(m) == name and work.mode.get(m) == "standby" and m not in prev_set
         and work.can_activate(m, name)),
        key=lambda m: (m not in former_shadow, m),
    )  # fmt: skip
    # shadow machines first (standby only), then the cohort
    shadow_now = shadow_now[:n_shadow]
    for m in standbys:
        if len(shadow_now) >= n_shadow:
            break
        if m not in shadow_now:
            shadow_now.append(m)
    standbys = [m for m in standbys if m not in shadow_now]
    cohort_now = cohort_now[:n2]

    def calls(m: str) -> int:
        return sum(live[m].snapshot.sessions.values()) if m in live else 0

    modes: dict[str, Mode] = {}
    # batches take the machines with the fewest sessions first (they drain soonest)
    old_actives = sorted(
        (m for m in actives if m not in set(cohort_now)), key=lambda m: (calls(m), m)
    )
    while len(cohort_now) < n2 and old_actives:
        if standbys:
            incoming = standbys.pop(0)
            # fewest sessions steps down, warm on the old version (ties: the highest id)
            outgoing = max(old_actives, key=lambda m: (-calls(m), m))
            old_actives.remove(outgoing)
            active_set.discard(outgoing)
            active_set.add(incoming)
            modes[outgoing] = "warm"  # its process runs on: a revert is a mode change
            previous.append(outgoing)
            cohort_now.append(incoming)
        else:
            cohort_now.append(old_actives.pop(0))  # switched in place
    for m in sorted(former_shadow - set(shadow_now)):
        if work.mode.get(m) == "shadow":
            modes[m] = "standby"
    # the old machines stepped down stay warm while the rollout runs (Nomad keeps the old
    # allocations until promotion, Argo the old ReplicaSet): a revert needs no start
    modes.update((m, "warm") for m in previous if m not in modes and work.mode.get(m) in _KEPT)
    modes.update((m, "shadow") for m in shadow_now)
    modes.update((m, mode2) for m in cohort_now)
    weights = dict(work.weights)
    if mode2 == "canary":
        weights.update((m, weight if weight is not None else svc.weight) for m in cohort_now)
    work = work.moved(modes, {name: active_set})
    work = replace(work, weights=weights, mirrors={**work.mirrors, name: tuple(sorted(shadow_now))})
    rel = rel.with_pins({m: new for m in (*shadow_now, *cohort_now)})
    # a machine's window starts when it joins (or leaves) the new-version cohort
    marks = dict(r.marks)
    was_new = {*r.cohort, *r.shadow}
    for m in [*cohort_now, *shadow_now, *work.actives[name]]:
        if (m in was_new) != (m in cohort_now or m in shadow_now) and m in live:
            marks[m] = mark_of(live[m], name)
    r = replace(
        r, cohort=tuple(sorted(cohort_now)), shadow=tuple(sorted(shadow_now)),
        previous=tuple(sorted(set(previous))), marks=marks,
    )  # fmt: skip
    return r, work, rel


_KEPT = frozenset({"standby", "warm"})


def warm_after(strategy: RolloutSpec | None, r: RolloutMemory, now: float) -> bool:
    """After completion, are the previous machines still within `keep_warm`?"""
    keep_warm = strategy.keep_warm if strategy is not None else 0.0
    return r.finished_at is not None and now - r.finished_at < keep_warm


def _mode_of(r: RolloutMemory) -> Mode:
    return "canary" if r.state == "canary" else "active"


def _targets(
    strategy: RolloutSpec | None, r: RolloutMemory, count: int, actives: int
) -> tuple[int, int, Mode, int | None]:
    """(new-version actives, shadow machines, their mode, canary weight) for the state."""
    if strategy is None or r.state == "watching" or r.step < 0:
        return actives, 0, "active", None
    index = r.step
    while index >= 0 and strategy.steps[index].kind == "approve":
        index -= 1  # an approval step keeps the machines as the step before left them
    if index < 0:
        return 0, 0, "active", None
    step = strategy.steps[index]
    size = max(count, actives)
    if step.kind == "shadow":
        return 0, int(step.number), "active", None
    if step.kind == "canary":
        return min(size, int(step.number)), 0, "canary", step.weight
    if step.kind == "percent":
        return parse_selector(f"percent={step.number:g}").size(size), 0, "active", None
    return parse_selector(step.select).size(size), 0, "active", None
