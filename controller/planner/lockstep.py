"""Coupled releases in the rollouts pass: members move as one unit (pure).

A coupled release (spec `coupled:`) names services whose version changes go together
(router 3.0 needs media 2.1). The releases pass starts their rollouts in the same cycle
(`hold_apart`: none of them while an outside dependency holds any); each rollout carries
the release's name (`group`) in memory, status and events. Here, each cycle:

- every member is measured as a lone rollout would be, its move computed and kept aside
  (rollout helpers return the rollout and the assignment, so a proposal can be dropped);
- a member failing its gates or deadline, or aborted by the operator, fails them all: each
  is reverted (or halted, as `on_failure` says) in reverse dependency order, dependents
  first, the others with the reason "coupled release X: M failed: ...";
- otherwise the release takes the lowest step any member may take: when every member may
  leave its step they all move (in dependency order); when one may not (bake left, too few
  requests, paused, waiting for approval), the others are measured but stay;
- in the cycle an undo takes the release back (`bosun rollout undo` sets every member back
  in one revision), the members' rollouts are cancelled or started back dependents first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from controller.planner.assign import Assignment
from controller.planner.model import Event, Memory, RolloutMemory
from controller.planner.release import Releases
from controller.planner.undo import undo_of
from controller.spec.model import ClusterSpec

Step = Callable[..., tuple[RolloutMemory, Assignment]]
Revert = Callable[
    [str, Assignment, RolloutMemory, float, str, "list[Event] | None"],
    tuple[RolloutMemory, Assignment],
]


def units(spec: ClusterSpec, names: Sequence[str]) -> list[tuple[str, ...]]:
    """The rollouts of the pass as units: a coupled release's members together (dependency
    order, at the place of its first member), every other service alone."""
    out: list[tuple[str, ...]] = []
    seen: set[str] = set()
    wanted = set(names)
    for name in names:
        if name in seen:
            continue
        group = spec.coupled_of(name)
        members = spec.coupled[group].services if group is not None else (name,)
        unit = tuple(m for m in members if m in wanted)
        seen.update(unit)
        out.append(unit)
    return out


def decide_order(
    spec: ClusterSpec, unit: tuple[str, ...], rel: Releases, memory: Memory
) -> tuple[str, ...]:
    """The order the pass decides a unit's rollouts in (starts, cancellations, undos):
    dependencies first, but dependents first in the cycle an undo takes a coupled release
    back (`bosun rollout undo` records one for each member), as a revert does."""
    if len(unit) > 1 and any(_undoing(spec, n, rel, memory.rollouts.get(n)) for n in unit):
        return unit[::-1]
    return unit


def _undoing(spec: ClusterSpec, name: str, rel: Releases, r: RolloutMemory | None) -> bool:
    """Does an undo record take `name` back in this pass (cancel its rollout, or start the
    one back)?"""
    u = spec.services[name].undo
    if u is None or u.version != spec.services[name].version:
        return False
    if r is not None and r.active:
        return r.to_version == u.from_version and u.id > r.undo_id
    wanted = rel.rolling.get(name)
    return wanted is not None and undo_of(spec, name, r, *wanted) is not None


def advance(
    spec: ClusterSpec,
    unit: tuple[str, ...],
    decided: Mapping[str, tuple[RolloutMemory, bool]],
    work: Assignment,
    memory: Memory,
    now: float,
    events: list[Event],
    *,
    step: Step,
    revert: Revert,
) -> tuple[dict[str, RolloutMemory], Assignment]:
    """Each member's rollout after measuring and moving (module docstring). `step` is
    rollout.advance_one, `revert` rollout._revert_now."""
    rs = {name: r for name, (r, _) in decided.items()}
    group = _group(unit, rs)
    if group is None:  # alone (or a member whose peers are not rolling): as ever
        for name, (r, promote) in decided.items():
            rs[name], work = step(spec, name, work, r, now, events, promote=promote)
        return rs, work
    members = [n for n in unit if n in rs and rs[n].group == group and _moving(memory, rs[n], n)]
    for name, (r, promote) in decided.items():
        if name not in members:  # finished, or started before it was coupled: alone
            rs[name], work = step(spec, name, work, r, now, events, promote=promote)
    tried: dict[str, RolloutMemory] = {}
    for name in members:
        r, promote = decided[name]
        tried[name], _ = step(spec, name, work, r, now, [], promote=promote)
    failed = [n for n in members if _failed(memory.rollouts.get(n), rs[n], tried[n])]
    if failed:
        return _fail_all(spec, group, members, failed[0], decided, tried, work, now, events,
                         step=step, revert=revert)  # fmt: skip
    moving = [n for n in members if _rank(tried[n]) > _rank(rs[n])]
    hold = bool(moving) and len(moving) < len(members)
    for name in members:
        r, promote = decided[name]
        rs[name], work = step(spec, name, work, r, now, events, promote=promote, hold=hold)
    return rs, work


def _fail_all(
    spec: ClusterSpec,
    group: str,
    members: list[str],
    first: str,
    decided: Mapping[str, tuple[RolloutMemory, bool]],
    tried: Mapping[str, RolloutMemory],
    work: Assignment,
    now: float,
    events: list[Event],
    *,
    step: Step,
    revert: Revert,
) -> tuple[dict[str, RolloutMemory], Assignment]:
    cause = tried[first]
    why = f"coupled release {group}: {first} failed: {cause.reason}"
    halt = cause.state == "halted"
    out: dict[str, RolloutMemory] = {}
    for name in reversed(members):  # dependents first
        r, promote = decided[name]
        if not r.active:  # aborted by the operator in this pass: reverted already
            out[name] = r
            continue
        if name == first:
            out[name], work = step(spec, name, work, r, now, events, promote=promote)
            continue
        measured, work = step(spec, name, work, r, now, [], promote=promote, hold=True)
        measured = replace(measured, failure=cause.failure)
        if halt or not measured.active:
            if measured.state != "halted":
                events.append(Event("rollout.halted", why, service=name, data=dict(measured.gate)))
                measured = replace(measured, state="halted", finished_at=now, reason=why)
            out[name] = measured
            continue
        out[name], work = revert(name, work, measured, now, why, events)
    return {n: out[n] for n in members}, work


def _moving(memory: Memory, r: RolloutMemory, name: str) -> bool:
    """Active, or was at the start of this pass (an operator's abort just ended it)."""
    before = memory.rollouts.get(name)
    return r.active or (before is not None and before.active and r.failure == "abort")


def _failed(before: RolloutMemory | None, decided: RolloutMemory, tried: RolloutMemory) -> bool:
    """Did this member fail in this pass (gates, deadline, or an operator's abort)?"""
    if decided.failure == "abort" and (before is None or before.active):
        return decided.state == "reverted"
    return decided.active and tried.state in ("reverted", "halted")


def _rank(r: RolloutMemory) -> tuple[int, int]:
    """How far a rollout has gone: its step, then watching, then complete."""
    order = {"watching": 1, "complete": 2}
    return order.get(r.state, 0), r.step


def _group(unit: tuple[str, ...], rs: Mapping[str, RolloutMemory]) -> str | None:
    """The coupled release whose rollouts this unit moves together (two or more of them)."""
    groups = [rs[n].group for n in unit if n in rs and rs[n].group and rs[n].active]
    return groups[0] if groups else None


def tagged(events: list[Event], rollouts: Mapping[str, RolloutMemory]) -> tuple[Event, ...]:
    """The events, each of a coupled member's rollout carrying `group` in its data."""
    out: list[Event] = []
    for e in events:
        r = rollouts.get(e.service) if e.service is not None else None
        if r is not None and r.group and e.kind.startswith("rollout.") and "group" not in e.data:
            e = replace(e, data={**e.data, "group": r.group})
        out.append(e)
    return tuple(out)


def hold_apart(
    spec: ClusterSpec, rel: Releases, memory: Memory
) -> tuple[Releases, tuple[Event, ...]]:
    """The releases pass's coupling: a coupled release's members start rolling together, or
    none of them while an outside dependency holds any (each then stays on its release)."""
    rolling = dict(rel.rolling)
    services = dict(rel.services)
    events: list[Event] = []
    for group, coupled in sorted(spec.coupled.items()):
        starting = [
            n for n in coupled.services
            if n in rolling and not ((r := memory.rollouts.get(n)) is not None and r.active)
        ]  # fmt: skip
        held = [
            n for n in coupled.services
            if (s := services.get(n)) is not None and s.held and s.version is not None
        ]  # fmt: skip
        if not starting or not held:
            continue
        reason = f"coupled release {group} waits: {', '.join(held)} held for its dependencies"
        for n in starting:
            del rolling[n]
            prior, remembered = services[n], memory.services.get(n)
            if remembered is None or remembered.held != reason:
                events.append(Event("service.held", reason, service=n,
                                    data={"group": group, "waiting_for": list(held)}))  # fmt: skip
            services[n] = replace(prior, held=reason)
    if rolling == rel.rolling:
        return rel, ()
    return replace(rel, rolling=rolling, services=services), tuple(events)
