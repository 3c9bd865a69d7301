"""The passes of one plan, in order. Each is `(Context, Draft) -> (Draft, events)`: it
reads the context and the draft the passes before it left, and returns a new draft and
the events of what it decided (the plan's events are theirs, in this order).

    rejections     snapshots refused at intake, as events
    forgotten      machines the operator forgot, as events
    liveness       who reported within its window; fail static keeps silent groups (blindness.py)
    autoscale      the counts of `scale:` services (scale.py)
    assignment     keep, trim, fill, standby (assign.py)
    releases       dependency gating and sub-groups (release.py); coupled releases start
                   together (lockstep.py)
    rollouts       each rollout's step shapes its service (rollout.py); a coupled
                   release's members in lockstep (lockstep.py)
    drains         disruption budget and draining (drain.py)
    top_up         machines given up since the assignment serve short services (assign.py)
    peers          balancer backends, `$instances`, mirrors, evictions (render.py, evict.py)
    documents      one desired document per machine, written where it changed (documents.py)
    provisioning   machines to ask the provisioners for (provision_needed.py)

The assignment fills every short service once, in dependency order (a new service
whose dependencies have not converged takes no machine); the passes after it only give
machines up, and `top_up` hands those to the services still short.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from controller.planner.assign import assign, fill
from controller.planner.blindness import fail_static, reporting
from controller.planner.documents import documents
from controller.planner.draft import Context, Draft, Pass
from controller.planner.drain import config_digests, drain_pass, hold_switches
from controller.planner.evict import evictions
from controller.planner.lockstep import hold_apart
from controller.planner.model import Event, RolloutMemory
from controller.planner.provision_needed import provision_pass
from controller.planner.release import may_wait, new_services_wait, resolve
from controller.planner.render import mirrors, peered, restarting, serving
from controller.planner.rollout import run_rollouts
from controller.planner.scale import autoscale as scale_counts


def rejections(ctx: Context, d: Draft) -> tuple[Draft, tuple[Event, ...]]:
    return d, tuple(
        Event("snapshot.rejected", r.reason, machine=r.machine, data={"detail": r.detail})
        for r in ctx.observed.rejections
    )


def forgotten(ctx: Context, d: Draft) -> tuple[Draft, tuple[Event, ...]]:
    return d, tuple(
        Event("machine.forgotten", "forgotten by the operator (bosun machines forget)", m)
        for m in ctx.forgotten
    )


def liveness(ctx: Context, d: Draft) -> tuple[Draft, tuple[Event, ...]]:
    now, timeout = ctx.now, ctx.spec.settings.heartbeat_timeout
    seen = ctx.observed.machines
    live = reporting(seen, timeout, now)
    blind = fail_static(ctx.spec, seen, live, ctx.memory.machines, ctx.memory.holds, now)
    if blind.keep:
        live = dict(sorted({**live, **blind.keep}.items()))
    return replace(d, live=live, blind=blind), blind.events


def autoscale(ctx: Context, d: Draft) -> tuple[Draft, tuple[Event, ...]]:
    spec, scaled, events = scale_counts(d.spec, d.live, ctx.memory, ctx.now)
    return replace(d, spec=spec, scale=scaled), tuple(events)


def assignment(ctx: Context, d: Draft) -> tuple[Draft, tuple[Event, ...]]:
    memory = ctx.memory
    reserved = reserved_by(memory.rollouts)
    work, events = assign(
        d.spec,
        d.live,
        ctx.known,
        memory.machines,
        ctx.order,
        ctx.now,
        reserved,
        frozenset(d.blind.keep),
        may_wait=may_wait(d.spec, memory.services),
        waits=new_services_wait(
            d.spec, ctx.order, memory.machines, memory.services, memory.selections
        ),
    )
    return replace(d, work=work, reserved=reserved), events


def releases(ctx: Context, d: Draft) -> tuple[Draft, tuple[Event, ...]]:
    memory = ctx.memory
    rel, events = resolve(
        d.spec, ctx.order, d.work, memory.machines, memory.services, memory.selections
    )
    rel, coupled = hold_apart(d.spec, rel, memory)
    return replace(d, releases=rel), (*events, *coupled)


def rollouts(ctx: Context, d: Draft) -> tuple[Draft, tuple[Event, ...]]:
    rolled = run_rollouts(d.spec, d.work, d.releases, ctx.memory, ctx.now)
    work, reserved = rolled.work, d.reserved
    if rolled.rollouts:
        reserved = reserved_by(rolled.rollouts)
    new = replace(
        d, work=work, reserved=reserved, releases=rolled.releases, rollouts=rolled.rollouts
    )
    return new, rolled.events


def _reverting(d: Draft) -> set[str]:
    """Services whose rollout reverts (no default disruption budget for going back)."""
    return {name for name, r in d.rollouts.items() if r.state == "reverted"}


def drains(ctx: Context, d: Draft) -> tuple[Draft, tuple[Event, ...]]:
    out = drain_pass(d.spec, d.work, d.releases, ctx.memory, ctx.now, _reverting(d))
    new = replace(
        d,
        work=out.work,
        releases=out.releases,
        drains=out.drains,
        kept=out.kept,
        configs=out.configs,
    )
    return new, out.events


def top_up(ctx: Context, d: Draft) -> tuple[Draft, tuple[Event, ...]]:
    """Machines the passes after the assignment gave up (a rollout's shadows or reverted
    cohort, the places of machines a drain keeps where they were) serve the services still
    short in this pass, as the next plan's assignment would give them (planning twice over
    the same observations must give the same plan). Not for a service whose rollout shaped
    this pass (its next pass would shape the newcomer again) nor a new service that waits
    for its dependencies; never the old-version machines a rollout keeps warm."""
    held = _held(d.spec.services, d.releases.base)
    rolling = {name for name, r in d.rollouts.items() if r.active}
    work, _ = fill(d.work, d.spec, ctx.order, d.reserved, skip=held | rolling)
    work, rel, kept, events = hold_switches(
        d.spec, d.work, work, d.releases, ctx.memory, d.drains, _reverting(d)
    )
    # what each machine runs now (held and draining ones: their old release)
    configs = config_digests(d.spec, work, rel) if d.configs else d.configs
    return replace(
        d, work=work, releases=rel, kept={**d.kept, **kept} if kept else d.kept, configs=configs
    ), events


def peers(ctx: Context, d: Draft) -> tuple[Draft, tuple[Event, ...]]:
    work = replace(d.work, unready=restarting(d.spec, d.work, d.releases))
    # the healthy planned actives of the services with peers (status counts the others')
    healthy = {name: work.healthy(name) for name in sorted(peered(d.spec))}
    serve = serving(d.spec, work, healthy)
    evict = evictions(d.spec, work, serve, d.blind.holds, ctx.memory.evictions, ctx.now)
    new = replace(
        d,
        work=work,
        healthy=healthy,
        serve=serve,
        mirror=mirrors(d.spec, work),
        evictions=evict,
    )
    return new, evict.events


def provisioning(ctx: Context, d: Draft) -> tuple[Draft, tuple[Event, ...]]:
    requests, flight, events = provision_pass(d.spec, d.work, ctx.memory, ctx.now, d.scale)
    return replace(d, provisions=tuple(requests), flight=flight), tuple(events)


PASSES: tuple[Pass, ...] = (
    rejections,
    forgotten,
    liveness,
    autoscale,
    assignment,
    releases,
    rollouts,
    drains,
    top_up,
    peers,
    documents,
    provisioning,
)


def reserved_by(rollouts: Mapping[str, RolloutMemory]) -> dict[str, str]:
    """machine -> the only service that may activate it: a rollout's kept-warm old-version
    machines, held for a revert."""
    return {
        m: name
        for name, r in rollouts.items()
        if r.active or r.state == "complete"
        for m in r.previous
    }


def _held(services: Mapping[str, object], base: Mapping[str, object]) -> set[str]:
    """New services waiting for their dependencies: no release yet."""
    return {name for name in services if base.get(name) is None}
