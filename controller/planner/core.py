"""plan(): one pure planning pass over the whole cluster, as a list of named passes.

    spec + observed + memory + now
      -> Context (read-only: less the machines the operator forgot)
      -> passes.PASSES, each (Context, Draft) -> (Draft, events):
         rejections, forgotten, liveness, autoscale, assignment, releases, rollouts,
         drains, peers, documents, provisioning
      -> new memory, events, status

Determinism: every iteration is over sorted names; no clock, no randomness, no I/O.
"""

from __future__ import annotations

from dataclasses import replace

from controller.planner.blindness import silence_allowed as silence_allowed
from controller.planner.draft import Context, Draft
from controller.planner.model import ClusterSpec, Event, Memory, Observed, Plan
from controller.planner.passes import PASSES
from controller.planner.status import build_status
from controller.spec.graph import topo_order


def plan(spec: ClusterSpec, observed: Observed, memory: Memory, now: float, *, fence: int) -> Plan:
    """Compute every machine's next desired document; see the module docstring."""
    ctx = context(spec, observed, memory, now, fence)
    draft = Draft(spec=spec)
    events: list[Event] = []
    for step in PASSES:
        draft, more = step(ctx, draft)
        events.extend(more)
    return conclude(ctx, draft, tuple(events))


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
    return Context(
        spec=spec,
        observed=observed,
        memory=memory,
        now=now,
        fence=fence,
        order=topo_order({n: s.depends_on for n, s in spec.services.items()}),
        known=tuple(sorted(set(observed.machines) | set(memory.machines))),
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
    status = build_status(d.spec, d.work, rel, memory, ctx.observed, ctx.now, d.healthy)
    if d.blind.holds or d.evictions.records:
        status = replace(status, holds=d.blind.holds, evicted=d.evictions.records)
    return Plan(d.writes, d.skips, memory, events, status, d.provisions, ctx.forgotten)
