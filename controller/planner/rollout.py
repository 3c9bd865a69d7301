"""The rollout state machine: moving a service from one version to the next safely.

    (spec version changes, service has a rollout strategy, dependencies converged)
      -> shadow -> canary -> steps -> [watching] -> complete
                         \\-> halted (on_failure: halt)  \\-> reverted (on_failure: revert)

Each cycle, for a service with an active rollout:
1. Measure the current window (planner/measure.py): new-version cohort vs old actives.
2. Fail (gate failed, or progress_deadline passed): revert (old machines back to active,
   new ones to standby, in this cycle) or halt (freeze where it stands).
3. Pass and the step's bake elapsed: next step (a new window), or watching, or complete.
4. Shape the cohort for the current step. New-version capacity comes from the service's
   warm standby machines first (an old active then steps down to standby with the old
   version still installed, so a revert is a mode change); without standby machines, old
   actives are switched in place. Shadow machines come from standby only; a shadow step
   with no standby is skipped (with an event).
5. Pin the versions: cohort and shadow machines run the new release, everything else of
   the service the old one, until complete. Old machines stepped down stay warm in standby
   on the old version for `keep_previous` after completion.

A spec that changes the version again supersedes the rollout (its new-version machines go
back as in a revert; returning to the old version simply cancels it). While reverted or
halted, the same version is not retried until the spec asks for another version first.
"""

from __future__ import annotations

from dataclasses import replace

from controller.planner.assign import Assignment
from controller.planner.measure import cohort, evaluate, mark_of, sticky_marks
from controller.planner.model import (
    ROLLOUT_ACTIVE,
    Event,
    Mark,
    Memory,
    RolloutMemory,
    ServiceMemory,
)
from controller.planner.release import Release, Releases
from controller.spec.model import ClusterSpec, RolloutSpec, RolloutStep
from controller.spec.selector import parse_selector


def run_rollouts(
    spec: ClusterSpec, work: Assignment, rel: Releases, memory: Memory, now: float
) -> dict[str, RolloutMemory]:
    out: dict[str, RolloutMemory] = {}
    for name in sorted(set(rel.rolling) | set(memory.rollouts)):
        if name not in spec.services:
            continue
        r = _decide(spec, name, work, rel, memory.rollouts.get(name), now)
        if r is None:
            continue
        strategy = spec.rollout_of(name)
        r, promote = _control(spec, name, strategy, work, r, now)
        if r.active and r.state != "halted":
            r = _advance(spec, name, strategy, work, rel, r, now, promote=promote)
        r = _skip_empty_shadow(strategy, name, work, r, now)
        r = _apply(spec, name, strategy, work, rel, r, now)
        out[name] = r
    return out


# ---- start, continue, supersede --------------------------------------------------------------


def _decide(
    spec: ClusterSpec,
    name: str,
    work: Assignment,
    rel: Releases,
    r: RolloutMemory | None,
    now: float,
) -> RolloutMemory | None:
    wanted = rel.rolling.get(name)
    spec_version = spec.services[name].version
    if r is not None and r.state in (*ROLLOUT_ACTIVE, "reverted") and spec_version != r.to_version:
        if r.active:
            work.events.append(
                Event(
                    "rollout.superseded",
                    f"the spec now asks for version {spec_version}",
                    service=name,
                    data={"from": r.from_version, "to": r.to_version, "new": spec_version},
                )
            )
            r = _revert_now(
                name, work, r, now, f"superseded by version {spec_version}", event=False
            )
        r = replace(r, state="superseded")
    if r is not None and r.active:
        return r  # continue (even while a dependency holds the service)
    if wanted is None:
        return r
    old, new = wanted
    if r is not None and r.to_version == new.version and r.state in ("reverted", "halted"):
        return r  # not retried until the spec changes the version
    actives = tuple(work.actives.get(name, []))
    started = RolloutMemory(
        from_version=old.version,
        to_version=new.version,
        from_config=old.config,
        to_config=new.config,
        revision=spec.revision,
        state="pending",
        started_at=now,
        step_started_at=now,
        step=-1,
        before=actives,
        # Machines kept warm on the version before the last rollout are no use for reverting
        # this one (it reverts to `old`): they become ordinary standbys, free for a shadow.
        previous=(),
    )
    if r is not None and r.previous:
        work.events.append(Event("rollout.previous_released", f"a new rollout to {new.version} "
                                 "starts; machines kept warm on the older version move on",
                                 service=name, data={"machines": list(r.previous)}))  # fmt: skip
    work.events.append(
        Event(
            "rollout.started",
            f"{name} {old.version} -> {new.version}",
            service=name,
            data={
                "from": old.version,
                "to": new.version,
                "revision": spec.revision,
                "actives": len(actives),
            },
        )
    )
    return _enter_step(spec.rollout_of(name), name, work, started, 0, now)


def _control(
    spec: ClusterSpec,
    name: str,
    strategy: RolloutSpec | None,
    work: Assignment,
    r: RolloutMemory,
    now: float,
) -> tuple[RolloutMemory, bool]:
    """Apply the operator's command once (pause, resume, promote, abort); (rollout, promote)."""
    ctl = spec.services[name].control
    if ctl is None or ctl.id <= r.control_id or ctl.version != r.to_version:
        return r, False
    r = replace(r, control_id=ctl.id)
    if not r.active:
        return r, False
    work.events.append(Event("rollout.control", f"operator: {ctl.action}", service=name,
                             data={"action": ctl.action, "revision": ctl.id}))  # fmt: skip
    if ctl.action == "pause":
        return replace(r, paused=True), False
    if ctl.action == "abort":
        return _revert_now(name, work, r, now, "aborted by the operator"), False
    if ctl.action == "resume":
        r = replace(r, paused=False)
        if r.state == "halted" and strategy is not None:  # resume a halted rollout in place
            r = replace(r, finished_at=None, reason="")
            r = _enter_step(strategy, name, work, replace(r, step=-1), r.step, now)
        return r, False
    return r, r.state != "halted"  # promote


# ---- measuring and moving on -----------------------------------------------------------------


def _advance(
    spec: ClusterSpec,
    name: str,
    strategy: RolloutSpec | None,
    work: Assignment,
    rel: Releases,
    r: RolloutMemory,
    now: float,
    *,
    promote: bool = False,
) -> RolloutMemory:
    """Measure; fail, or move on. Paused: failing gates still act, nothing moves forward.
    Promoted (operator): the current step's bake and sample minimum are skipped once."""
    if strategy is None:  # the rollout section was removed: finish at once
        return _complete(name, work, r, now, "rollout strategy removed from the spec")
    live = work.live
    actives = work.actives.get(name, [])
    in_cohort = set(r.cohort)
    new_machines = [*r.shadow] if r.state == "shadow" else [m for m in actives if m in in_cohort]
    old_machines = [m for m in actives if m not in in_cohort]
    marks = sticky_marks((*new_machines, *old_machines), live, r.marks, name)
    new_c = cohort(new_machines, live, marks, name)
    old_c = cohort(old_machines, live, marks, name)
    if old_c.requests:
        r = replace(r, baseline_error_rate=old_c.error_rate, baseline_latency_ms=old_c.latency_ms)
    old_rate = old_c.error_rate if old_c.requests else r.baseline_error_rate
    old_latency = old_c.latency_ms if old_c.requests else r.baseline_latency_ms
    result = evaluate(strategy.gates, new_c, old_rate, old_latency)
    for m in (*new_machines, *old_machines):
        if m not in marks and m in live:
            marks[m] = mark_of(live[m], name)
    numbers = {**result.numbers, "verdict": result.verdict, "reason": result.reason,
               "new_machines": new_c.machines, "old_machines": old_c.machines}  # fmt: skip
    r = replace(r, marks=marks, gate=numbers)
    if result.verdict == "fail":
        return _fail(name, strategy, work, r, now, result.reason)
    if r.paused:
        return r
    if now - r.started_at > strategy.progress_deadline:
        return _fail(name, strategy, work, r, now,
                     f"progress_deadline {strategy.progress_deadline:g}s passed")  # fmt: skip
    if result.verdict != "pass" and not promote:
        return r
    if r.state == "watching":
        if promote or now - r.step_started_at >= strategy.watch:
            return _complete(name, work, r, now, "promoted" if promote else "watch passed")
        return r
    step = strategy.steps[r.step]
    if now - r.step_started_at < step.bake and not promote:
        return r
    if r.step + 1 < len(strategy.steps):
        return _enter_step(strategy, name, work, r, r.step + 1, now, numbers)
    if strategy.watch > 0:
        work.events.append(Event("rollout.watching", "at 100%; watching against the old baseline",
                                 service=name, data=numbers))  # fmt: skip
        return replace(r, state="watching", step_started_at=now, marks=_marks(work, name))
    return _complete(name, work, r, now, "all steps passed")


def _enter_step(
    strategy: RolloutSpec | None,
    name: str,
    work: Assignment,
    r: RolloutMemory,
    index: int,
    now: float,
    numbers: dict[str, object] | None = None,
) -> RolloutMemory:
    if strategy is None:
        return _complete(name, work, r, now, "no rollout strategy")
    step = strategy.steps[index]
    state = {"shadow": "shadow", "canary": "canary"}.get(step.kind, "steps")
    if r.step >= 0:
        work.events.append(
            Event(
                "rollout.step",
                f"step {r.step + 1} passed; now step {index + 1} ({_describe(step)})",
                service=name,
                data=dict(numbers or {}),
            )
        )
    return replace(r, state=state, step=index, step_started_at=now, marks=_marks(work, name))


def _skip_empty_shadow(
    strategy: RolloutSpec | None, name: str, work: Assignment, r: RolloutMemory, now: float
) -> RolloutMemory:
    """A shadow step with no shadow machine and no standby to make one is skipped."""
    while strategy is not None and r.state == "shadow" and r.step + 1 < len(strategy.steps):
        previous = set(r.previous)
        capacity = [
            m for m in work.live
            if work.service.get(m) == name and m not in previous
            and (m in r.shadow or work.mode.get(m) == "standby")
            and work.can_activate(m, name)
        ]  # fmt: skip
        if capacity:
            break
        work.events.append(Event("rollout.step_skipped", f"step {r.step + 1} (shadow) skipped: "
                                 f"no standby machine of {name} to mirror traffic to",
                                 service=name))  # fmt: skip
        r = replace(
            r, state="steps", step=r.step + 1, step_started_at=now, marks=_marks(work, name)
        )
        step = strategy.steps[r.step]
        r = replace(r, state={"shadow": "shadow", "canary": "canary"}.get(step.kind, "steps"))
    return r


def _marks(work: Assignment, name: str) -> dict[str, Mark]:
    return {
        m: mark_of(obs, name)
        for m, obs in sorted(work.live.items())
        if work.service.get(m) == name and name in obs.snapshot.services
    }


def _fail(
    name: str, strategy: RolloutSpec, work: Assignment, r: RolloutMemory, now: float, reason: str
) -> RolloutMemory:
    if strategy.on_failure == "halt":
        work.events.append(Event("rollout.halted", reason, service=name, data=dict(r.gate)))
        return replace(r, state="halted", finished_at=now, reason=reason)
    return _revert_now(name, work, r, now, reason)


def _complete(
    name: str, work: Assignment, r: RolloutMemory, now: float, reason: str
) -> RolloutMemory:
    work.events.append(Event("rollout.completed", reason, service=name,
                             data={"from": r.from_version, "to": r.to_version}))  # fmt: skip
    return replace(r, state="complete", finished_at=now, reason=reason)


def _revert_now(
    name: str, work: Assignment, r: RolloutMemory, now: float, reason: str, *, event: bool = True
) -> RolloutMemory:
    """Old machines back to active, new-version machines to standby, in this cycle."""
    actives = work.actives.get(name, [])
    before = set(r.before)
    spare = [
        m for m in r.before
        if m in work.live and work.service.get(m) == name and m not in actives
        and work.can_activate(m, name)
    ]  # fmt: skip
    active_set = set(actives)
    for m in r.cohort:
        if m in before or m not in active_set or not spare:
            continue
        back = spare.pop(0)
        active_set.discard(m)
        active_set.add(back)
        work.mode[m] = "standby"
        work.mode[back] = "active"
    for m in r.shadow:
        if work.mode.get(m) == "shadow":
            work.mode[m] = "standby"
    work.actives[name] = sorted(active_set)
    for m in work.actives[name]:
        work.mode[m] = "active"
    if event:
        work.events.append(Event("rollout.reverted", reason, service=name,
                                 data={**r.gate, "from": r.from_version, "to": r.to_version}))  # fmt: skip
    return replace(
        r, state="reverted", finished_at=now, reason=reason, cohort=(), shadow=(), previous=()
    )


# ---- shaping the cohorts and pinning versions --------------------------------------------------


def _apply(
    spec: ClusterSpec,
    name: str,
    strategy: RolloutSpec | None,
    work: Assignment,
    rel: Releases,
    r: RolloutMemory,
    now: float,
) -> RolloutMemory:
    old = Release(r.from_version, r.from_config)
    new = Release(r.to_version, r.to_config)
    svc = spec.services[name]
    if r.state in ("reverted", "superseded"):
        return r
    if r.state == "complete":
        if spec.services[name].version == r.to_version:
            rel.set_base(name, new, ServiceMemory(new.version, new.config, r.revision))
        keep = strategy.keep_previous if strategy is not None else 0.0
        if r.previous and r.finished_at is not None and now - r.finished_at >= keep:
            work.events.append(Event("rollout.previous_released", f"keep_previous {keep:g}s "
                                     "passed; old-version standby machines move on",
                                     service=name, data={"machines": list(r.previous)}))  # fmt: skip
            return replace(r, previous=())
        for m in r.previous:
            if work.service.get(m) == name and work.mode.get(m) == "standby":
                rel.pinned[m] = old
        return r
    # an active rollout: the service's release stays the old one until complete
    prior = rel.services.get(name)
    rel.set_base(name, old, ServiceMemory(old.version, old.config, prior.revision if prior else 0))
    actives = list(work.actives.get(name, []))
    active_set = set(actives)
    live = work.live
    previous = [m for m in r.previous if work.service.get(m) == name]
    cohort_now = [m for m in r.cohort if m in active_set]
    shadow_now = [
        m for m in r.shadow if m in live and work.service.get(m) == name and m not in active_set
    ]
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
            work.mode[outgoing] = "standby"
            previous.append(outgoing)
            cohort_now.append(incoming)
        else:
            cohort_now.append(old_actives.pop(0))  # switched in place
    work.actives[name] = sorted(active_set)
    for m in shadow_now:
        work.mode[m] = "shadow"
        rel.pinned[m] = new
    for m in cohort_now:
        work.mode[m] = mode2
        rel.pinned[m] = new
        if mode2 == "canary":
            work.weights[m] = weight if weight is not None else svc.weight
    for m in sorted(former_shadow - set(shadow_now)):
        if work.mode.get(m) == "shadow":
            work.mode[m] = "standby"
    work.mirrors[name] = sorted(shadow_now)
    # a machine's window starts when it joins (or leaves) the new-version cohort
    marks = dict(r.marks)
    was_new = {*r.cohort, *r.shadow}
    for m in [*cohort_now, *shadow_now, *work.actives[name]]:
        if (m in was_new) != (m in cohort_now or m in shadow_now) and m in live:
            marks[m] = mark_of(live[m], name)
    return replace(
        r, cohort=tuple(sorted(cohort_now)), shadow=tuple(sorted(shadow_now)),
        previous=tuple(sorted(set(previous))), marks=marks,
    )  # fmt: skip


def _mode_of(r: RolloutMemory) -> str:
    return "canary" if r.state == "canary" else "active"


def _targets(
    strategy: RolloutSpec | None, r: RolloutMemory, count: int, actives: int
) -> tuple[int, int, str, int | None]:
    """(new-version actives, shadow machines, their mode, canary weight) for the state."""
    if strategy is None or r.state == "watching" or r.step < 0:
        return actives, 0, "active", None
    step = strategy.steps[r.step]
    size = max(count, actives)
    if step.kind == "shadow":
        return 0, int(step.number), "active", None
    if step.kind == "canary":
        return min(size, int(step.number)), 0, "canary", step.weight
    if step.kind == "percent":
        return parse_selector(f"percent={step.number:g}").size(size), 0, "active", None
    return parse_selector(step.select).size(size), 0, "active", None


def _describe(step: RolloutStep) -> str:
    if step.kind == "select":
        return f"select {step.select}"
    if step.kind == "percent":
        return f"percent {step.number:g}"
    return f"{step.kind} {int(step.number)}"
