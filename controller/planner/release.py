"""Which release (version + config) each machine runs: dependency gating and sub-groups.

Dependency gating: when the spec asks a service for a new release (version or config) and
one of its `depends_on` services is not converged (every active machine was told to run
its expected release actively in an earlier cycle, applied that document and reports the
version healthy, with at least one active when its count is above zero), the service keeps its previous release and is `held`. A service with no previous
release waits as warm `standby` until its dependencies are converged. Services are
visited in dependency order, so a chain router -> media -> db moves one link at a time.

Sub-groups (`bosun update`): each override's selection is resolved once and remembered in
memory under `<service>/<id>`: `id=` and `version=` selections are fixed sets, sized
selections (`count`, `percent`, `max`, `min`) keep their members and are topped up from the
service's active machines in id order. Selected machines run the override's version and
config merged over the service's; the others keep the service's release.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from controller.planner.assign import ACTIVE_MODES, Assignment
from controller.planner.model import Event, MachineMemory, ServiceMemory
from controller.spec.model import ClusterSpec, ServiceSpec
from controller.spec.selector import parse_selector
from wire.codec import JsonValue


@dataclass(frozen=True, slots=True)
class Release:
    version: str
    config: dict[str, JsonValue]


@dataclass(frozen=True, slots=True)
class Releases:
    """Each service's release this pass, and the machines that run another one."""

    base: Mapping[str, Release | None] = field(default_factory=dict)  # None: waits (new)
    variants: Mapping[str, tuple[int, ...]] = field(default_factory=dict)  # machine -> ids
    selections: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    services: Mapping[str, ServiceMemory] = field(default_factory=dict)
    # service -> (old release, new release): the spec moved the version, a rollout decides
    rolling: Mapping[str, tuple[Release, Release]] = field(default_factory=dict)
    pinned: Mapping[str, Release] = field(default_factory=dict)  # machine -> release
    # memo of `of` for machines that are not pinned: derived from the fields above, which
    # never change (a new value starts with an empty memo)
    _merged: dict[tuple[str, tuple[int, ...]], Release | None] = field(
        default_factory=dict, compare=False, repr=False
    )

    def with_base(self, service: str, release: Release | None, memory: ServiceMemory) -> Releases:
        """These releases with a service's release changed (a rollout moved or completed it)."""
        return replace(
            self,
            base={**self.base, service: release},
            services={**self.services, service: memory},
            _merged={},
        )

    def with_pins(self, pins: Mapping[str, Release]) -> Releases:
        """These releases with these machines pinned to a release (rollouts, drains)."""
        if not pins:
            return self
        return replace(self, pinned={**self.pinned, **pins}, _merged=self._merged)

    def key(self, machine: str) -> tuple[tuple[int, ...], str | None]:
        """What, beyond service and mode, makes this machine's document differ from others."""
        pin = self.pinned.get(machine)
        return self.variants.get(machine, ()), (pin.version if pin is not None else None)

    def of(self, spec: ClusterSpec, service: str, machine: str) -> Release | None:
        pin = self.pinned.get(machine)
        if pin is not None:
            return pin
        ids = self.variants.get(machine, ())
        key = (service, ids)
        merged = self._merged
        if key in merged:
            return merged[key]
        base = self.base.get(service)
        rel = base
        if base is not None and ids:
            version, config = base.version, base.config
            for ov in spec.services[service].overrides:
                if ov.id in ids:
                    version = ov.version or version
                    config = deep_merge(config, ov.config)
            rel = Release(version, config)
        merged[key] = rel
        return rel


def deep_merge(base: dict[str, JsonValue], over: Mapping[str, JsonValue]) -> dict[str, JsonValue]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


@dataclass(slots=True)
class _Resolving:
    """What `resolve` has decided so far (private to one call)."""

    base: dict[str, Release | None] = field(default_factory=dict)
    variants: dict[str, tuple[int, ...]] = field(default_factory=dict)
    selections: dict[str, tuple[str, ...]] = field(default_factory=dict)
    services: dict[str, ServiceMemory] = field(default_factory=dict)
    rolling: dict[str, tuple[Release, Release]] = field(default_factory=dict)
    converged: dict[str, bool] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)

    def releases(self) -> Releases:
        return Releases(self.base, self.variants, self.selections, self.services, self.rolling)


def resolve(
    spec: ClusterSpec,
    order: tuple[str, ...],
    work: Assignment,
    machines: Mapping[str, MachineMemory],
    services_memory: Mapping[str, ServiceMemory],
    selections: Mapping[str, tuple[str, ...]],
) -> tuple[Releases, tuple[Event, ...]]:
    """Each service's release (dependency gating, sub-groups) and the events. A new
    service held for its dependencies has no release (`base` None); the assignment gave it
    no machine (`new_services_wait`)."""
    out = _Resolving()
    for name in order:
        svc = spec.services[name]
        _select(name, svc, work, machines, selections, out)
        _gate(spec, name, svc, work, services_memory.get(name), machines, out)
    return out.releases(), tuple(out.events)


def may_wait(spec: ClusterSpec, services_memory: Mapping[str, ServiceMemory]) -> frozenset[str]:
    """New services (no release yet) with dependencies: each waits, and takes no machine,
    while a dependency has not converged."""
    return frozenset(
        name
        for name, svc in spec.services.items()
        if svc.depends_on and ((prev := services_memory.get(name)) is None or prev.version is None)
    )


def new_services_wait(
    spec: ClusterSpec,
    order: tuple[str, ...],
    machines: Mapping[str, MachineMemory],
    services_memory: Mapping[str, ServiceMemory],
    selections: Mapping[str, tuple[str, ...]],
) -> Callable[[str, Assignment], bool]:
    """`waits(name, work)` for the assignment's fill: does the new service `name` wait for
    its dependencies, given `work` (in which the services before it are filled)? The same
    gate `resolve` applies, over the services up to `name` only."""

    def waits(name: str, work: Assignment) -> bool:
        upto = order[: order.index(name) + 1]
        rel, _ = resolve(spec, upto, work, machines, services_memory, selections)
        return rel.base.get(name) is None

    return waits


def _gate(
    spec: ClusterSpec,
    name: str,
    svc: ServiceSpec,
    work: Assignment,
    prev: ServiceMemory | None,
    machines: Mapping[str, MachineMemory],
    out: _Resolving,
) -> None:
    wanted = Release(svc.version, svc.config)
    if prev is not None and prev.rebuilt:  # recovered after memory loss: config unknown
        prev = replace(prev, config=wanted.config, rebuilt=False)
    if prev is not None and prev.version == wanted.version and prev.config == wanted.config:
        out.base[name] = wanted
        out.services[name] = ServiceMemory(svc.version, svc.config, prev.revision)
        return
    # a coupled peer is not waited for: they roll out together (planner/lockstep.py)
    group = spec.coupled_of(name)
    peers = spec.coupled[group].services if group is not None else ()
    waiting = [
        d
        for d in svc.depends_on
        if d in spec.services and d not in peers and not _is_converged(spec, d, work, machines, out)
    ]
    if (
        not waiting
        and prev is not None
        and prev.version is not None
        and prev.version != wanted.version
        and spec.rollout_of(name) is not None
    ):
        # a version change under a rollout strategy: the rollout moves machines over
        old = Release(prev.version, prev.config)
        out.base[name] = old
        out.services[name] = ServiceMemory(prev.version, prev.config, prev.revision)
        out.rolling[name] = (old, wanted)
        return
    if not waiting:
        out.base[name] = wanted
        out.services[name] = ServiceMemory(svc.version, svc.config, spec.revision)
        if prev is not None:
            out.events.append(
                Event(
                    "service.release",
                    f"{name} moves to version {svc.version}"
                    + (" after its dependencies converged" if prev.held else ""),
                    service=name,
                    data={"from": prev.version, "to": svc.version, "revision": spec.revision},
                )
            )
        return
    reason = "waiting for " + ", ".join(waiting) + " to run their new release healthy"
    if prev is None or prev.version is None:
        out.base[name] = None  # a brand-new service: its machines wait as warm standby
        out.services[name] = ServiceMemory(None, {}, 0, held=reason)
    else:
        out.base[name] = Release(prev.version, prev.config)
        out.services[name] = ServiceMemory(prev.version, prev.config, prev.revision, held=reason)
    if prev is None or prev.held != reason:
        out.events.append(
            Event(
                "service.held",
                reason,
                service=name,
                data={"wanted": svc.version, "waiting_for": list(waiting)},
            )
        )


def _is_converged(
    spec: ClusterSpec,
    name: str,
    work: Assignment,
    machines: Mapping[str, MachineMemory],
    out: _Resolving,
) -> bool:
    hit = out.converged.get(name)
    if hit is None:
        hit = out.converged[name] = _converged(spec, name, work, machines, out)
    return hit


def _converged(
    spec: ClusterSpec,
    name: str,
    work: Assignment,
    machines: Mapping[str, MachineMemory],
    out: _Resolving,
) -> bool:
    """Every active machine was already told to run the spec's release (or its override)
    actively in an earlier cycle, has applied that document, and reports it healthy."""
    base = out.base.get(name)
    svc = spec.services[name]
    if base is None or base.version != svc.version or base.config != svc.config:
        return False
    actives = work.actives.get(name, ())
    if not actives:
        return svc.count == 0
    healthy = work.healthy(name)
    if len(healthy) != len(actives):
        return False
    live = work.live
    releases = out.releases()
    for m in healthy:
        rel = releases.of(spec, name, m)
        mm = machines.get(m)
        snap = live[m].snapshot
        if (
            rel is None
            or mm is None
            or mm.service != name
            or mm.mode not in ACTIVE_MODES
            or mm.version != rel.version
            or snap.applied.generation < mm.generation
            or snap.services[name].version != rel.version
        ):
            return False
    return True


def _select(
    name: str,
    svc: ServiceSpec,
    work: Assignment,
    machines: Mapping[str, MachineMemory],
    selections: Mapping[str, tuple[str, ...]],
    out: _Resolving,
) -> None:
    if not svc.overrides:
        return
    actives = work.actives.get(name, ())
    for ov in sorted(svc.overrides, key=lambda o: o.id):
        key = f"{name}/{ov.id}"
        sel = parse_selector(ov.select, where=f"services.{name}.overrides[{ov.id}].select")
        prev = selections.get(key)
        if sel.kind == "id":
            members = [m for m in sel.ids if work.service.get(m) == name]
        elif sel.kind == "version":
            if prev is None:
                members = [m for m in actives if _version(machines, m) == sel.version]
            else:
                members = [m for m in prev if work.service.get(m) == name]
        else:
            n = sel.size(len(actives))
            active_set = set(actives)
            members = [m for m in prev or () if m in active_set][:n]
            chosen = set(members)
            for m in actives:
                if len(members) >= n:
                    break
                if m not in chosen:
                    members.append(m)
                    chosen.add(m)
        members.sort()
        out.selections[key] = tuple(members)
        if prev is None or tuple(prev) != out.selections[key]:
            out.events.append(
                Event(
                    "selection.resolved",
                    f"{ov.select} -> {len(members)} machines",
                    service=name,
                    data={"override": ov.id, "machines": members},
                )
            )
        for m in members:
            out.variants[m] = (*out.variants.get(m, ()), ov.id)


def _version(machines: Mapping[str, MachineMemory], m: str) -> str | None:
    mm = machines.get(m)
    return mm.version if mm else None
