"""plan(): one pure planning pass over the whole cluster, as a list of named passes.

    spec + observed + memory + now
      -> Context (read-only: less the machines the operator forgot)
      -> passes.PASSES, each (Context, Draft) -> (Draft, events):
         rejections, forgotten, liveness, autoscale, assignment, releases, rollouts,
         drains, peers, documents, provisioning
      -> new memory, events, status

Determinism: every iteration is over sorted names; no clock, no randomness, no I/O. The
cyclic garbage collector is paused while a plan runs (`collector_paused`): a speed matter
only, the results do not depend on it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace

from controller.planner.blindness import silence_allowed as silence_allowed
from controller.planner.draft import Context, Draft
from controller.planner.model import ClusterSpec, Event, Memory, Observed, Plan
from controller.planner.passes import PASSES
from controller.planner.status import build_status
from controller.spec.graph import topo_order


def plan(spec: ClusterSpec, observed: Observed, memory: Memory, now: float, *, fence: int) -> Plan:
    """Compute every machine's next desired document; see the module docstring."""
    with collector_paused():
        ctx = context(spec, observed, memory, now, fence)
        draft = Draft(spec=spec)
        events: list[Event] = []
        for step in PASSES:
            draft, more = step(ctx, draft)
            events.extend(more)
        return conclude(ctx, draft, tuple(events))


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while the planner runs, as it was after.

    A plan makes no reference cycles (frozen values, dicts and tuples, freed by reference
    counting as always), but it allocates several objects per machine, and every few
    hundred thousand allocations the collector walks the caller's whole heap (a controller
    holds millions of objects at 100,000 machines) to find nothing of the plan's to free:
    0.6-0.7 s of a first plan at 100,000 machines. The results do not depend on it."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def context(
    spec: ClusterSpec, observed: Observed, memory: Memory, now: float, fence: int
) -> Context:
    """The plan's read-only inputs. Machines the operator forgot (gone for good, not
    reporting) are as if never seen."""
    timeout = spec.settings.heartbeat_timeout

    def reporting(m: str) -> bool:
        obs = observed.machines.get(m)  # type: ignore[call-overload]
        return obs is not None and now - obs.accepted_at <= silence_allowed(timeout, obs)

    forgotten = tuple(
        m
        for m in spec.forget
        if not reporting(m) and (m in observed.machines or m in memory.machines)
    )
    if forgotten:
        gone = set(forgotten)
        observed = replace(
            observed, machines={k: v for k, v in observed.machines.items() if k not in gone}
        )
        memory = replace(
            memory, machines={k: v for k, v in memory.machines.items() if k not in gone}
        )
    # (merged: the fleet comes sorted, so the sort has little to do; the observed machine
    # ids first, so the new memory's ids are the very objects the shell's `observed` uses
    # next cycle and the lookups between them compare identities, not characters)
    seen, remembered = observed.machines, memory.machines
    if remembered.keys() <= seen.keys():  # every remembered machine observed (most cycles)
        every: Iterable[str] = seen
    else:
        every = {**seen, **remembered}  # type: ignore[dict-item]
    return Context(
        spec=spec,
        observed=observed,
        memory=memory,
        now=now,
        fence=fence,
        order=topo_order({n: s.depends_on for n, s in spec.services.items()}),
        known=tuple(sorted(every)),
        forgotten=forgotten,
    )


def conclude(ctx: Context, d: Draft, events: tuple[Event, ...]) -> Plan:
    """The plan of the passes' final draft: its new memory and status."""
    rel = d.releases
    memory = Memory(
        fence=ctx.fence,
        spec_revision=d.spec.revision,
        cycle=ctx.memory.cycle + 1,
        machines=dict(d.machines),
        services=dict(rel.services),
        selections=dict(rel.selections),
        rollouts=dict(d.rollouts),
        scale=dict(d.scale),
        provisions=dict(d.flight),
        holds=d.blind.memory,
        evictions=d.evictions.records,
    )
    events = _as_done(events, memory)
    status = build_status(d.spec, d.work, rel, memory, ctx.observed, ctx.now, d.healthy)
    if d.blind.holds or d.evictions.records:
        status = replace(status, holds=d.blind.holds, evicted=d.evictions.records)
    return Plan(d.writes, d.skips, memory, events, status, d.provisions, ctx.forgotten)


def _as_done(events: tuple[Event, ...], memory: Memory) -> tuple[Event, ...]:
    """The events, less the assignment's `machine.scaled_down` of a machine that a later pass
    kept active in the same service (the top-up takes back a machine the count trimmed when
    the one it kept must drain, and holds it on its release: it was never scaled down)."""
    machines = memory.machines
    return tuple(
        e
        for e in events
        if e.kind != "machine.scaled_down"
        or e.machine is None
        or (kept := machines.get(e.machine)) is None
        or kept.mode != "active"
        or kept.service != e.service
    )
