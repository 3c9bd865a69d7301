"""What each machine's desired document says: config references, load-balancer peers.

- `{"$instances": "media"}` anywhere in a service's config is replaced by the sorted list
  of `address:port` of the healthy active machines of `media` (recomputed every cycle, so a
  dependent's config follows its dependency's machines).
- A `loadbalancer` service's active machines get `peers.backends`: the healthy active
  machines of the service it balances (address from the snapshot's `addresses.internal`,
  port from the reported port or the spec's, weight from the balanced service's spec),
  less the backends the balancers report unreachable (evict.py), listed in `evicted`.
"""

from __future__ import annotations

from collections.abc import Mapping

from controller.planner.assign import Assignment, is_healthy
from controller.planner.model import MachineObservation
from controller.planner.release import Releases
from controller.spec.model import ClusterSpec
from controller.spec.refs import INSTANCES, references
from wire.codec import JsonValue
from wire.documents import Peer, Peers


def restarting(spec: ClusterSpec, work: Assignment, rel: Releases) -> frozenset[str]:
    """Active machines whose reported version is not their planned one: restarting, they
    leave the peers until they report it (pure in the observation, so planning twice gives
    the same peers). Only services that are balanced or referenced by `$instances` have
    peers."""
    unready: set[str] = set()
    for name in sorted(peered(spec) & set(work.actives)):
        for m in work.actives[name]:
            obs = work.live.get(m)
            if obs is None:
                continue
            release = rel.of(spec, name, m)
            state = obs.snapshot.services.get(name)
            if release is not None and (state is None or state.version != release.version):
                unready.add(m)
    return frozenset(unready)


def peered(spec: ClusterSpec) -> set[str]:
    """The services that have peers: balanced by a load balancer or referenced by
    `$instances` in a config (the others' healthy machines are only counted, in status)."""
    wanted = {s.balances for s in spec.services.values() if s.balances is not None}
    for s in spec.services.values():
        wanted |= references(s.config)
        for ov in s.overrides:
            wanted |= references(ov.config)
    return wanted & set(spec.services)


def serving(
    spec: ClusterSpec, work: Assignment, healthy: Mapping[str, tuple[str, ...]]
) -> dict[str, tuple[Peer, ...]]:
    """Per service that a load balancer balances or a config references: its healthy
    active machines that have an address, as peers."""
    out: dict[str, tuple[Peer, ...]] = {}
    for name in sorted(peered(spec)):
        svc = spec.services[name]
        live, mode = work.live, work.mode
        out[name] = tuple(
            _peer(m, live[m], name, svc.port, work.weights.get(m, svc.weight), mode[m])
            for m in healthy.get(name, ())
            if live[m].snapshot.addresses.internal
        )
    return out


def mirrors(spec: ClusterSpec, work: Assignment) -> dict[str, tuple[Peer, ...]]:
    """Per balanced service: its live, healthy shadow machines (mirrored traffic only)."""
    out: dict[str, tuple[Peer, ...]] = {}
    for name, shadows in sorted(work.mirrors.items()):
        svc = spec.services[name]
        out[name] = tuple(
            _peer(m, work.live[m], name, svc.port, svc.weight, "shadow")
            for m in shadows
            if m in work.live
            and work.mode.get(m) == "shadow"
            and is_healthy(work.live[m], name)
            and work.live[m].snapshot.addresses.internal
        )
    return out


def _peer(
    m: str, obs: MachineObservation, service: str, port: int | None, weight: int, mode: str
) -> Peer:
    state = obs.snapshot.services.get(service)
    reported = state.port if state is not None else None
    return Peer(
        machine=m,
        address=obs.snapshot.addresses.internal,
        port=reported if reported is not None else port,
        weight=weight,
        mode=mode,
    )


def lb_peers(
    spec: ClusterSpec,
    name: str,
    serving: Mapping[str, tuple[Peer, ...]],
    mirror: Mapping[str, tuple[Peer, ...]],
    out: frozenset[str] = frozenset(),
) -> Peers:
    """A balancer's peers; `out`: backends its balancers cannot reach (evict.py), moved
    from `backends` to `evicted` (health-checked, sent nothing)."""
    target = spec.services[name].balances
    if target is None:
        return Peers()
    backends = serving.get(target, ())
    if not out:
        return Peers(service=target, backends=backends, mirror=mirror.get(target, ()))
    return Peers(
        service=target,
        backends=tuple(p for p in backends if p.machine not in out),
        mirror=mirror.get(target, ()),
        evicted=tuple(p for p in backends if p.machine in out),
    )


def fill_references(value: JsonValue, serving: Mapping[str, tuple[Peer, ...]]) -> JsonValue:
    """A copy of `value` with every `{"$instances": NAME}` replaced by address:port strings."""
    if isinstance(value, dict):
        if set(value) == {INSTANCES} and isinstance(value[INSTANCES], str):
            return [
                f"{p.address}:{p.port}" if p.port is not None else p.address
                for p in serving.get(value[INSTANCES], ())
            ]
        return {k: fill_references(v, serving) for k, v in value.items()}
    if isinstance(value, list):
        return [fill_references(v, serving) for v in value]
    return value
