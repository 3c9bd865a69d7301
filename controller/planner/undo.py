"""Undo (`bosun rollout undo`): back to an earlier release, in one cycle when its machines
are warm.

`bosun rollout undo` sets a service's version and config back to those of an earlier spec
revision and records `services.<name>.undo: {id, to_revision, version, from_version}`. The
version change starts a rollout from `from_version` back to `version`; the planner reads the
record once (its id), when that rollout starts:

- warm: the service's last rollout went from `version` to `from_version`, completed less
  than `keep_warm` ago, and its previous machines (`RolloutMemory.previous`) are live, run
  `version` with the same config, report it healthy and are as many as the service's
  actives. They become the actives in this cycle, the balancers get them in the same plan
  (they already answer), and the actives they replace step down `warm` on `from_version`:
  the undo's own previous machines, so it can be undone in turn. Complete at once.
- otherwise: the rollout goes through the strategy's stages, as any version change.

Either way the status document says which (`undo: {revision, to_revision, warm}`).
"""

from __future__ import annotations

from dataclasses import replace

from controller.planner.assign import ACTIVE_MODES, Assignment, is_healthy
from controller.planner.cohorts import warm_after
from controller.planner.model import Event, RolloutMemory
from controller.planner.release import Release
from controller.spec.model import ClusterSpec, RolloutSpec, Undo
from wire.documents import Mode


def undo_of(
    spec: ClusterSpec, name: str, r: RolloutMemory | None, old: Release, new: Release
) -> Undo | None:
    """The undo record that asked for this version change, if it was not acted on yet."""
    u = spec.services[name].undo
    if u is None or u.version != new.version or u.from_version != old.version:
        return None
    if r is not None and u.id <= r.undo_id:
        return None
    return u


def warm_machines(
    name: str,
    strategy: RolloutSpec | None,
    work: Assignment,
    r: RolloutMemory | None,
    old: Release,
    new: Release,
    now: float,
) -> tuple[str, ...]:
    """The machines an undo to `new` can activate at once (empty: none, or too few)."""
    if (
        r is None
        or r.state != "complete"
        or (r.from_version, r.to_version) != (new.version, old.version)
        or r.from_config != new.config
        or not warm_after(strategy, r, now)
    ):
        return ()
    live = work.live
    ready = [
        m
        for m in r.previous
        if m in live
        and work.service.get(m) == name
        and work.mode.get(m) not in ACTIVE_MODES
        and work.can_activate(m, name)
        and is_healthy(live[m], name)
        and live[m].snapshot.services[name].version == new.version
    ]
    need = len(work.actives.get(name, ())) or work.services[name].count
    return tuple(sorted(ready)[:need]) if len(ready) >= need else ()


def undo_warm(
    spec: ClusterSpec,
    name: str,
    work: Assignment,
    started: RolloutMemory,
    back: tuple[str, ...],
    now: float,
    events: list[Event],
) -> tuple[RolloutMemory, Assignment]:
    """The undo done in this cycle: `back` (warm on the old release) active, the actives
    warm on the release they ran (the undo's previous machines); complete at once."""
    actives = tuple(work.actives.get(name, ()))
    leaving = tuple(m for m in actives if m not in back)
    strategy = spec.rollout_of(name)
    steps = len(strategy.steps) if strategy is not None else 0
    reason = f"undo: {len(back)} warm machines on {started.to_version} serve again in one cycle"
    r = replace(
        started,
        state="complete",
        step=max(steps - 1, -1),
        cohort=back,
        previous=leaving,
        finished_at=now,
        reason=reason,
        undo_warm=True,
    )
    events.append(Event("rollout.undo", reason, service=name, data={
        "warm": True, "revision": r.undo_id, "to_revision": r.undo_to_revision,
        "from": r.from_version, "to": r.to_version, "machines": list(back),
    }))  # fmt: skip
    events.append(Event("rollout.completed", reason, service=name,
                        data={"from": r.from_version, "to": r.to_version}))  # fmt: skip
    modes: dict[str, Mode] = {m: "active" for m in back}
    modes.update((m, "warm") for m in leaving)
    return r, work.moved(modes, {name: back})


def undo_staged(name: str, r: RolloutMemory, events: list[Event]) -> RolloutMemory:
    """The undo goes through the rollout's stages: its previous machines are not warm."""
    events.append(Event("rollout.undo", f"undo through the rollout's stages: no warm machines "
                        f"on {r.to_version} (keep_warm passed, or too few of them)", service=name,
                        data={"warm": False, "revision": r.undo_id,
                              "to_revision": r.undo_to_revision, "from": r.from_version,
                              "to": r.to_version}))  # fmt: skip
    return replace(r, undo_warm=False)
