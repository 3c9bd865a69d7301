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

Steps 1-3 are here; 4-5 (the cohorts' shape and pins) are cohorts.py. Each function
returns the rollout memory and the assignment it leaves; events go to the pass's list.

A spec that changes the version again supersedes the rollout (its new-version machines go
back as in a revert; returning to the old version simply cancels it). While reverted or
halted, the same version is not retried until the spec asks for another version first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from controller.planner import approval, clocks, lockstep
from controller.planner.approval import AWAITING
from controller.planner.assign import Assignment
from controller.planner.cohorts import shape
from controller.planner.measure import Cohort, cohort, evaluate, mark_of, sticky_marks
from controller.planner.model import (
    ROLLOUT_ACTIVE,
    Event,
    Mark,
    Memory,
    RolloutMemory,
)
from controller.planner.release import Releases
from controller.planner.undo import undo_of, undo_staged, undo_warm, warm_machines
from controller.spec.model import ClusterSpec, RolloutSpec, RolloutStep
from wire.codec import JsonValue
from wire.documents import Mode


@dataclass(frozen=True, slots=True)
class Rolled:
    """What the rollouts made of one pass: their memory, the assignment and releases they
    shaped, their events."""

    rollouts: dict[str, RolloutMemory]
    work: Assignment
    releases: Releases
    events: tuple[Event, ...]


def run_rollouts(
    spec: ClusterSpec, work: Assignment, rel: Releases, memory: Memory, now: float
) -> Rolled:
    """Each rollout's step, in service order; see the module docstring."""
    out: dict[str, RolloutMemory] = {}
    events: list[Event] = []
    names = [n for n in sorted(set(rel.rolling) | set(memory.rollouts)) if n in spec.services]
    for unit in lockstep.units(spec, names):
        decided: dict[str, tuple[RolloutMemory, bool]] = {}
        for name in lockstep.decide_order(spec, unit, rel, memory):
            r, work = _decide(spec, name, work, rel, memory.rollouts.get(name), now, events)
            if r is None:
                continue
            r, promote, work = _control(spec, name, spec.rollout_of(name), work, r, now, events)
            decided[name] = (clocks.settle(r, now), promote)
        rs, work = lockstep.advance(spec, unit, decided, work, memory, now, events,
                                    step=advance_one, revert=_revert_now)  # fmt: skip
        for name, r in rs.items():
            strategy = spec.rollout_of(name)
            r = _skip_empty_shadow(strategy, name, work, r, now, events)
            r = clocks.settle(r, now)
            r, work, rel = shape(spec, name, strategy, work, rel, r, now, events)
            out[name] = r
    return Rolled(out, work, rel, lockstep.tagged(events, out))


def advance_one(
    spec: ClusterSpec,
    name: str,
    work: Assignment,
    r: RolloutMemory,
    now: float,
    events: list[Event],
    *,
    promote: bool = False,
    hold: bool = False,
) -> tuple[RolloutMemory, Assignment]:
    """One rollout's measure-and-move for this pass (nothing for a halted or finished one).
    `hold`: measure and fail as usual, but do not move on (its coupled release waits)."""
    if not r.active or r.state == "halted":
        return r, work
    strategy = spec.rollout_of(name)
    return _advance(spec, name, strategy, work, r, now, events, promote=promote, hold=hold)


# ---- start, continue, supersede --------------------------------------------------------------


def _decide(
    spec: ClusterSpec,
    name: str,
    work: Assignment,
    rel: Releases,
    r: RolloutMemory | None,
    now: float,
    events: list[Event],
) -> tuple[RolloutMemory | None, Assignment]:
    wanted = rel.rolling.get(name)
    spec_version = spec.services[name].version
    if r is not None and r.state in (*ROLLOUT_ACTIVE, "reverted") and spec_version != r.to_version:
        if r.active:
            events.append(
                Event(
                    "rollout.superseded",
                    f"the spec now asks for version {spec_version}",
                    service=name,
                    data={"from": r.from_version, "to": r.to_version, "new": spec_version},
                )
            )
            r, work = _revert_now(name, work, r, now, f"superseded by version {spec_version}", None)
            r = replace(r, failure="superseded")
        r = replace(r, state="superseded")
    if r is not None and r.active:
        return r, work  # continue (even while a dependency holds the service)
    if wanted is None:
        return r, work
    old, new = wanted
    if r is not None and r.to_version == new.version and r.state in ("reverted", "halted"):
        return r, work  # not retried until the spec changes the version
    actives = tuple(work.actives.get(name, ()))
    undo = undo_of(spec, name, r, old, new)
    started = RolloutMemory(
        from_version=old.version,
        to_version=new.version,
        from_config=old.config,
        to_config=new.config,
        revision=spec.revision,
        approval_id=r.approval_id if r is not None else 0,
        state="pending",
        started_at=now,
        step_started_at=now,
        step=-1,
        before=actives,
        # Machines kept warm on the version before the last rollout are no use for reverting
        # this one (it reverts to `old`): they become ordinary standbys, free for a shadow.
        previous=(),
        # records acted on stay acted on (a record never leaks into a later rollout)
        undo_id=undo.id if undo is not None else (r.undo_id if r is not None else 0),
        undo_to_revision=undo.to_revision if undo is not None else 0,
        group=spec.coupled_of(name) or "",
    )
    if undo is not None:
        back = warm_machines(name, spec.rollout_of(name), work, r, old, new, now)
        if back:  # the previous machines still run the old release: one cycle, no stages
            return undo_warm(spec, name, work, started, back, now, events)
        started = undo_staged(name, started, events)
    if r is not None and r.previous:
        events.append(Event("rollout.previous_released", f"a new rollout to {new.version} "
                            "starts; machines kept warm on the older version move on",
                            service=name, data={"machines": list(r.previous)}))  # fmt: skip
    events.append(
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
    return _enter_step(spec.rollout_of(name), name, work, started, 0, now, events), work


def _control(
    spec: ClusterSpec,
    name: str,
    strategy: RolloutSpec | None,
    work: Assignment,
    r: RolloutMemory,
    now: float,
    events: list[Event],
) -> tuple[RolloutMemory, bool, Assignment]:
    """Apply the operator's command once (pause, resume, promote, abort);
    (rollout, promote, assignment)."""
    ctl = spec.services[name].control
    if ctl is None or ctl.id <= r.control_id or ctl.version != r.to_version:
        return r, False, work
    r = replace(r, control_id=ctl.id)
    if not r.active:
        return r, False, work
    events.append(Event("rollout.control", f"operator: {ctl.action}", service=name,
                        data={"action": ctl.action, "revision": ctl.id}))  # fmt: skip
    if ctl.action == "pause":
        return replace(r, paused=True), False, work
    if ctl.action == "abort":
        r, work = _revert_now(name, work, r, now, "aborted by the operator", events)
        return replace(r, failure="abort"), False, work
    if ctl.action == "resume":
        r = clocks.close(replace(r, paused=False), now)  # the clocks go on where they stood
        if r.state == "halted" and strategy is not None:  # resume a halted rollout in place
            r = replace(r, finished_at=None, reason="")
            r = _enter_step(strategy, name, work, replace(r, step=-1), r.step, now, events)
        return r, False, work
    return r, r.state != "halted", work  # promote


# ---- measuring and moving on -----------------------------------------------------------------


def _advance(
    spec: ClusterSpec,
    name: str,
    strategy: RolloutSpec | None,
    work: Assignment,
    r: RolloutMemory,
    now: float,
    events: list[Event],
    *,
    promote: bool = False,
    hold: bool = False,
) -> tuple[RolloutMemory, Assignment]:
    """Measure; fail, or move on. Paused: failing gates still act, nothing moves forward.
    Promoted (operator): the current step's bake and sample minimum are skipped once.
    Held (`hold`, its coupled release waits for another member): as paused, clocks running."""
    if strategy is None:  # the rollout section was removed: finish at once
        return _complete(name, r, now, "rollout strategy removed from the spec", events), work
    live = work.live
    actives = work.actives.get(name, ())
    in_cohort = set(r.cohort)
    shadowing = r.state == "shadow" or (r.state == AWAITING and r.shadow and not r.cohort)
    new_machines = [*r.shadow] if shadowing else [m for m in actives if m in in_cohort]
    old_machines = [m for m in actives if m not in in_cohort]
    marks = sticky_marks((*new_machines, *old_machines), live, r.marks, name)
    new_c = cohort(new_machines, live, marks, name)
    old_c = cohort(old_machines, live, marks, name)
    if old_c.requests:
        r = replace(r, baseline_error_rate=old_c.error_rate, baseline_latency_ms=old_c.latency_ms,
                    baseline_requests=old_c.requests, baseline_errors=old_c.errors)  # fmt: skip
    base = old_c if old_c.requests else Cohort(0, r.baseline_requests, r.baseline_errors)
    old_latency = old_c.latency_ms if old_c.requests else r.baseline_latency_ms
    result = evaluate(strategy.gates, new_c, base if base.requests else None, old_latency)
    for m in (*new_machines, *old_machines):
        if m not in marks and m in live:
            marks[m] = mark_of(live[m], name)
    numbers: dict[str, JsonValue] = {
        **result.numbers, "verdict": result.verdict, "reason": result.reason,
        "new_machines": new_c.machines, "old_machines": old_c.machines,
    }  # fmt: skip
    r = replace(r, marks=marks, gate=numbers)
    if result.verdict == "fail":
        return _fail(name, strategy, work, replace(r, failure="gate"), now, result.reason, events)
    if r.paused:
        return r, work
    if clocks.rollout_elapsed(r, now) > strategy.progress_deadline:
        r = replace(r, failure="deadline")
        return _fail(name, strategy, work, r, now,
                     f"progress_deadline {strategy.progress_deadline:g}s passed", events)  # fmt: skip
    if hold:
        return r, work
    if r.state == AWAITING:  # left on an approval only (promote does not pass it)
        given = approval.pending(spec, name, r)
        if given is None:
            return r, work
        r = approval.approve(name, r, given, now, events)
        return _enter_step(strategy, name, work, r, r.step + 1, now, events, numbers), work
    if result.verdict != "pass" and not promote:
        return r, work
    if r.state == "watching":
        if promote or clocks.step_elapsed(r, now) >= strategy.watch:
            reason = "promoted" if promote else "watch passed"
            return _complete(name, r, now, reason, events), work
        return r, work
    step = strategy.steps[r.step]
    if clocks.step_elapsed(r, now) < step.bake and not promote:
        return r, work
    if r.step + 1 < len(strategy.steps):
        return _enter_step(strategy, name, work, r, r.step + 1, now, events, numbers), work
    if strategy.watch > 0:
        events.append(Event("rollout.watching", "at 100%; watching against the old baseline",
                            service=name, data=numbers))  # fmt: skip
        return _at_step(work, name, r, r.step, "watching", now), work
    return _complete(name, r, now, "all steps passed", events), work


def _enter_step(
    strategy: RolloutSpec | None,
    name: str,
    work: Assignment,
    r: RolloutMemory,
    index: int,
    now: float,
    events: list[Event],
    numbers: Mapping[str, JsonValue] | None = None,
) -> RolloutMemory:
    if strategy is None:
        return _complete(name, r, now, "no rollout strategy", events)
    step = strategy.steps[index]
    if r.step >= 0:
        events.append(
            Event(
                "rollout.step",
                f"step {r.step + 1} passed; now step {index + 1} ({_describe(step)})",
                service=name,
                data=dict(numbers or {}),
            )
        )
    r = _at_step(work, name, r, index, _state_of(step), now)
    return approval.waiting(name, r, now, events) if r.state == AWAITING else r


def _at_step(
    work: Assignment, name: str, r: RolloutMemory, index: int, state: str, now: float
) -> RolloutMemory:
    """The rollout at step `index` from `now`: a new window and its own clock."""
    r = clocks.close(r, now)
    return replace(
        r,
        state=state,
        step=index,
        step_started_at=now,
        step_paused_for=0.0,
        marks=_marks(work, name),
    )


def _state_of(step: RolloutStep) -> str:
    return {"shadow": "shadow", "canary": "canary", "approve": AWAITING}.get(step.kind, "steps")


def _skip_empty_shadow(
    strategy: RolloutSpec | None,
    name: str,
    work: Assignment,
    r: RolloutMemory,
    now: float,
    events: list[Event],
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
        events.append(Event("rollout.step_skipped", f"step {r.step + 1} (shadow) skipped: "
                            f"no standby machine of {name} to mirror traffic to",
                            service=name))  # fmt: skip
        r = _at_step(work, name, r, r.step + 1, _state_of(strategy.steps[r.step + 1]), now)
        if r.state == AWAITING:
            r = approval.waiting(name, r, now, events)
    return r


def _marks(work: Assignment, name: str) -> dict[str, Mark]:
    return {
        m: mark_of(obs, name)
        for m, obs in sorted(work.live.items())
        if work.service.get(m) == name and name in obs.snapshot.services
    }


def _fail(
    name: str,
    strategy: RolloutSpec,
    work: Assignment,
    r: RolloutMemory,
    now: float,
    reason: str,
    events: list[Event],
) -> tuple[RolloutMemory, Assignment]:
    if strategy.on_failure == "halt":
        events.append(Event("rollout.halted", reason, service=name, data=dict(r.gate)))
        return replace(r, state="halted", finished_at=now, reason=reason), work
    return _revert_now(name, work, r, now, reason, events)


def _complete(
    name: str, r: RolloutMemory, now: float, reason: str, events: list[Event]
) -> RolloutMemory:
    events.append(Event("rollout.completed", reason, service=name,
                        data={"from": r.from_version, "to": r.to_version}))  # fmt: skip
    return replace(r, state="complete", finished_at=now, reason=reason)


def _revert_now(
    name: str,
    work: Assignment,
    r: RolloutMemory,
    now: float,
    reason: str,
    events: list[Event] | None,
) -> tuple[RolloutMemory, Assignment]:
    """Old machines back to active, new-version machines to standby, in this cycle.
    `events`: where its event goes (None: no event, the caller said why)."""
    actives = work.actives.get(name, ())
    before = set(r.before)
    spare = [
        m for m in r.before
        if m in work.live and work.service.get(m) == name and m not in actives
        and work.can_activate(m, name)
    ]  # fmt: skip
    active_set = set(actives)
    modes: dict[str, Mode] = {}
    for m in r.cohort:
        if m in before or m not in active_set or not spare:
            continue
        back = spare.pop(0)
        active_set.discard(m)
        active_set.add(back)
        modes[m] = "standby"
    for m in r.shadow:
        if work.mode.get(m) == "shadow":
            modes[m] = "standby"
    modes.update((m, "active") for m in active_set)
    if events is not None:
        events.append(Event("rollout.reverted", reason, service=name,
                            data={**r.gate, "from": r.from_version, "to": r.to_version}))  # fmt: skip
    r = replace(
        r, state="reverted", finished_at=now, reason=reason, cohort=(), shadow=(), previous=()
    )
    return r, work.moved(modes, {name: active_set})


def _describe(step: RolloutStep) -> str:
    if step.kind == "select":
        return f"select {step.select}"
    if step.kind == "percent":
        return f"percent {step.number:g}"
    if step.kind == "approve":
        return "approve"
    return f"{step.kind} {int(step.number)}"
