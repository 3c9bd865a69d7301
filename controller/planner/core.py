"""plan(): one pure planning pass over the whole cluster.

    spec + observed + memory + now
      -> liveness and assignment   (assign.py)
      -> releases per machine      (release.py: dependency gating, sub-group overrides)
      -> documents per machine     (render.py: config references, load-balancer peers)
      -> writes only where content changed or the document is past half its lifetime
      -> new memory, events, status

Determinism: every iteration is over sorted names; no clock, no randomness, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import cast

from controller.planner.assign import ACTIVE_MODES, Assignment, assign, fill
from controller.planner.blindness import fail_static
from controller.planner.blindness import silence_allowed as silence_allowed
from controller.planner.drain import drain_pass
from controller.planner.evict import NONE, evictions
from controller.planner.model import (
    ClusterSpec,
    Event,
    MachineMemory,
    MachineObservation,
    Memory,
    Observed,
    Plan,
    PutDesired,
    RolloutMemory,
    Skip,
    machine_digest,
    variant_digest,
)
from controller.planner.provision_needed import provision_pass
from controller.planner.release import Release, resolve
from controller.planner.render import fill_references, lb_peers, mirrors, serving
from controller.planner.rollout import run_rollouts
from controller.planner.scale import autoscale
from controller.planner.status import build_status
from controller.spec.graph import topo_order
from wire import codec
from wire.codec import JsonValue
from wire.documents import Desired, Mode, Peer, Peers
from wire.layout import MachineId

_EMPTY = MachineMemory()
_NO_PEERS = Peers()
_PLAIN: tuple[tuple[int, ...], str | None] = ((), None)


def _reserved(rollouts: Mapping[str, RolloutMemory]) -> dict[str, str]:
    """machine -> the only service that may activate it: a rollout's kept-warm old-version
    machines, held for a revert."""
    return {
        m: name
        for name, r in rollouts.items()
        if r.active or r.state == "complete"
        for m in r.previous
    }


def _busy(work: Assignment) -> set[str]:
    return {m for m, mode in work.mode.items() if mode in ACTIVE_MODES or mode == "shadow"}


def plan(spec: ClusterSpec, observed: Observed, memory: Memory, now: float, *, fence: int) -> Plan:
    """Compute every machine's next desired document; see the module docstring."""
    settings = spec.settings
    order = topo_order({n: s.depends_on for n, s in spec.services.items()})
    live: dict[str, MachineObservation] = {
        m: o
        for m, o in observed.machines.items()
        if now - o.accepted_at <= silence_allowed(settings.heartbeat_timeout, o)
    }
    # machines the operator forgot (gone for good, not reporting): as if never seen
    forgotten = tuple(
        m for m in spec.forget if m not in live and (m in observed.machines or m in memory.machines)
    )
    if forgotten:
        gone = set(forgotten)
        observed = replace(
            observed, machines={k: v for k, v in observed.machines.items() if k not in gone}
        )
        memory = replace(
            memory, machines={k: v for k, v in memory.machines.items() if k not in gone}
        )
    # fail static: machines that went silent together keep their last report (blindness.py)
    assigned = {m: mm.service for m, mm in memory.machines.items()}
    blind = fail_static(spec, observed.machines, live, assigned, memory.holds, now)
    if blind.keep:
        live = dict(sorted({**live, **blind.keep}.items()))
    spec, scaled, scale_events = autoscale(spec, live, memory, now)  # counts of scale: services
    known = sorted(set(observed.machines) | set(memory.machines))
    reserved = _reserved(memory.rollouts)
    work = assign(spec, live, known, memory.machines, order, now, reserved, frozenset(blind.keep))
    had = {name: len(ms) for name, ms in work.actives.items()}
    rel = resolve(spec, order, work, memory.machines, memory.services, memory.selections)
    # A new service held for its dependencies has no release: its machines wait as
    # standby (resolve just demoted them) and it takes none; other short services may use
    # them in this pass, as the next pass would (planning twice must give the same plan).
    held = {name for name in spec.services if rel.base.get(name) is None}
    if any(had.get(name) for name in held):
        fill(work, spec, order, _busy(work), reserved, report_short=False, skip=held)
    rollouts = run_rollouts(spec, work, rel, memory, now)
    if rollouts:  # a rollout may have freed machines (shadow or reverted ones): use them now
        # but not the old-version machines it just kept warm: the next pass reserves them
        # (from the memory saved now), so this one must too; and not for a service whose
        # rollout already shaped this pass (its next pass would shape the newcomer again)
        reserved = _reserved(rollouts)
        rolling = {name for name, r in rollouts.items() if r.active}
        fill(work, spec, order, _busy(work), reserved, report_short=False, skip=held | rolling)
    reverting = {name for name, r in rollouts.items() if r.state == "reverted"}
    drained = drain_pass(spec, work, rel, memory, now, order, reserved, reverting)  # budget
    drains, configs, kept = drained.drains, drained.configs, drained.kept
    serve = serving(spec, work)
    mirror = mirrors(spec, work)
    # backends the balancers report unreachable leave their peers (evict.py)
    evict = evictions(spec, work, serve, blind.holds, memory.evictions, now)
    out_of, own = evict.everywhere, evict.own
    events: list[Event] = [
        Event("snapshot.rejected", r.reason, machine=r.machine, data={"detail": r.detail})
        for r in observed.rejections
    ]
    events.extend(
        Event("machine.forgotten", "forgotten by the operator (bosun machines forget)", m)
        for m in forgotten
    )
    events.extend(blind.events)
    events.extend(scale_events)
    events.extend(work.events)
    events.extend(evict.events)

    # one rendering per (service, mode, override variant); machines share it
    Key = tuple[str | None, str, tuple[tuple[int, ...], str | None]]
    variants: dict[Key, tuple[str, Template]] = {}
    # a balancer with evictions of its own (a minority report) has its own peers
    own_variants: dict[tuple[Key, frozenset[str]], tuple[str, Template]] = {}
    writes: list[PutDesired] = []
    skips: list[Skip] = []
    machines: dict[str, MachineMemory] = {}
    half_life = settings.desired_lifetime / 2
    mem_machines = memory.machines
    failed = work.failed
    drift = observed.drift
    service_of, mode_of = work.service, work.mode
    extras = bool(rel.variants or rel.pinned)  # any override or rollout pin this pass
    for m in known:
        svc, mode = service_of[m], mode_of[m]
        key = (svc, mode, rel.key(m) if extras and svc is not None else _PLAIN)
        extra = own.get(m) if own else None
        if extra is None:
            hit = variants.get(key)
            if hit is None:
                release = rel.of(spec, svc, m) if svc else None
                out = out_of.get(svc, NONE) if out_of and svc is not None else NONE
                hit = _render(spec, svc, mode, release, serve, mirror, out)
                variants[key] = hit
        else:
            hit = own_variants.get((key, extra))
            if hit is None:
                release = rel.of(spec, svc, m) if svc else None
                out = out_of.get(svc, NONE) | extra if svc is not None else extra
                hit = _render(spec, svc, mode, release, serve, mirror, out)
                own_variants[(key, extra)] = hit
        vdigest, template = hit
        mm = mem_machines.get(m)
        obs = live.get(m)
        lost = obs is None
        drain = drains.get(m)
        if (
            mm is not None
            and mm.variant == vdigest
            and mm.lost == lost
            and mm.drain == drain
            and mm.kept == kept.get(m)
            and m not in failed
            and m not in drift
            and (lost or now < mm.issued_at + half_life)
        ):  # fast path: nothing about this machine changed
            skips.append(Skip(MachineId(m), "lost" if lost else "unchanged"))
            machines[m] = mm
            continue
        if mm is None:
            mm = _EMPTY
        content = machine_digest(m, vdigest, codec.encode(drain) if drain else None)
        moved = svc != mm.service or mode != mm.mode or template.version != mm.version
        if moved and not lost:
            events.append(
                Event(
                    "machine.assigned",
                    f"{_placed(mm.mode, mm.service, mm.version)} -> "
                    f"{_placed(mode, svc, template.version)}",
                    m,
                    svc,
                    data={"version": template.version, "from_version": mm.version},
                )
            )
        generation, issued_at = mm.generation, mm.issued_at
        reason = ""
        if m in drift:
            reason = "repair"  # the bucket's document is not the one memory records
        elif content != mm.digest:
            reason = "new" if not mm.digest else "changed"
        elif not lost and now >= mm.issued_at + half_life:
            reason = "refresh"
        if reason:
            applied = obs.snapshot.applied.generation if obs is not None else 0
            previous = max(mm.generation, applied, drift.get(m, 0))
            generation, issued_at = previous + 1, now
            doc = Desired(
                machine=m,
                generation=generation,
                fence=fence,
                issued_at=now,
                expires_at=now + settings.desired_lifetime,
                spec_revision=spec.revision,
                mode=template.mode,
                service=template.service,
                version=template.version,
                config=template.config,
                peers=template.peers,
                drain=drain,
            )
            writes.append(PutDesired(MachineId(m), doc, previous, reason))
        else:
            skips.append(Skip(MachineId(m), "lost" if lost else "unchanged"))
        new = MachineMemory(
            generation=generation,
            digest=content,
            variant=vdigest,
            issued_at=issued_at,
            service=svc,
            mode=template.mode,
            version=template.version,
            assigned_at=now if moved else mm.assigned_at,
            failed_at=failed.get(m, mm.failed_at),
            lost=lost,
            drain=drain,
            config=configs.get(m, mm.config),
            kept=kept.get(m),
        )
        machines[m] = mm if new == mm else new

    provisions, flight, provision_events = provision_pass(spec, work, memory, now, scaled)
    events.extend(provision_events)
    new_memory = Memory(
        fence=fence,
        spec_revision=spec.revision,
        cycle=memory.cycle + 1,
        machines=machines,
        services=rel.services,
        selections=rel.selections,
        rollouts=rollouts,
        scale=scaled,
        provisions=flight,
        holds=blind.memory,
        evictions=evict.records,
    )
    status = build_status(spec, work, rel, new_memory, observed, now)
    if blind.holds or evict.records:
        status = replace(status, holds=blind.holds, evicted=evict.records)
    return Plan(
        tuple(writes),
        tuple(skips),
        new_memory,
        tuple(events),
        status,
        tuple(provisions),
        forgotten,
    )


@dataclass(frozen=True, slots=True)
class Template:
    """The machine-independent part of a desired document, shared by every machine of the
    same (service, mode, override variant); each machine's document adds its own header."""

    mode: Mode
    service: str | None = None
    version: str | None = None
    config: dict[str, JsonValue] = field(default_factory=dict)
    peers: Peers = _NO_PEERS


def _render(
    spec: ClusterSpec,
    svc: str | None,
    mode: str,
    release: Release | None,
    serve: Mapping[str, tuple[Peer, ...]],
    mirror: Mapping[str, tuple[Peer, ...]],
    out: frozenset[str] = NONE,
) -> tuple[str, Template]:
    """The shared part of a document (machine-independent) and its digest; `out`: the
    backends a balancer's peers leave out (evict.py)."""
    if svc is None:
        template = Template(mode="deactivated")
    else:
        s = spec.services[svc]
        version = release.version if release is not None else s.version
        config = release.config if release is not None else s.config
        peers = lb_peers(spec, svc, serve, mirror, out) if mode in ACTIVE_MODES else _NO_PEERS
        filled = fill_references(config, serve)
        template = Template(
            mode=cast(Mode, mode),
            service=svc,
            version=version,
            config=filled if isinstance(filled, dict) else {},
            peers=peers,
        )
    vd = variant_digest(
        service=template.service,
        mode=template.mode,
        version=template.version,
        config=template.config,
        peers=codec.encode(template.peers),
    )
    return vd, template


def _placed(mode: str, service: str | None, version: str | None) -> str:
    """`active/web@1.0`; a machine with no service yet is just its mode (`standby`)."""
    if service is None:
        return mode
    return f"{mode}/{service}" + (f"@{version}" if version is not None else "")
