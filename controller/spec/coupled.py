"""The `coupled:` section: services whose version changes are released as one unit.

    coupled:
      router-media-3:
        services: [router, media]

When the spec changes the versions of several members (router 3.0 needs media 2.1), their
rollouts start in the same cycle and move in lockstep (planner/coupled.py): every member
is at the same step, a step is left only when every member may leave it, a member failing
its gates or deadline reverts them all (dependents first). The versions are the services'
own (`services.router.version`); the section only says which changes go together.

Rules, each reported with its path: at least two members, each a defined service in at most
one coupled release, each with a rollout strategy; their strategies have the same steps
(kinds, in order; counts, bakes and gates may differ), the same `on_failure`, and `watch`
either set for all or for none. Members are kept in dependency order (`depends_on`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from controller.spec.checks import Problems, got, names_field, suggest, unknown_keys
from controller.spec.graph import topo_order
from controller.spec.model import ClusterSpec, Coupled, RolloutSpec
from wire.errors import SpecError
from wire.layout import SERVICE_NAME_PATTERN

COUPLED_KEYS = ("services",)


def parse_coupled(p: Problems, raw: object) -> dict[str, Coupled]:
    """The section's shape (names, lists); the cross-service rules are `check_coupled`."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        p.add(
            "coupled", f"expected a mapping of release name to {{services: [...]}}, got {got(raw)}"
        )
        return {}
    out: dict[str, Coupled] = {}
    for name in sorted(raw, key=str):
        path = f"coupled.{name}"
        if not isinstance(name, str) or not SERVICE_NAME_PATTERN.fullmatch(name):
            p.add(path, "release names use 1-63 of a-z, 0-9, '.', '_', '-' (e.g. 'router-media-3')")
            continue
        body = raw[name]
        if not isinstance(body, dict):
            p.add(path, f"expected a mapping with services, got {got(body)}")
            continue
        unknown_keys(p, path, body, COUPLED_KEYS)
        if "services" not in body:
            p.add(f"{path}.services", "missing: list the services released together")
            continue
        members = names_field(p, f"{path}.services", body["services"])
        if members is not None:
            out[name] = Coupled(members)
    return out


def check_coupled(p: Problems, spec: ClusterSpec, raw: Any) -> ClusterSpec:
    """Cross-service rules (module docstring); the spec with each release's members in
    dependency order."""
    names = set(spec.services) | {n for n in raw if isinstance(n, str)}
    owner: dict[str, str] = {}
    ordered: dict[str, Coupled] = {}
    for name, group in sorted(spec.coupled.items()):
        path = f"coupled.{name}.services"
        ok = True
        if len(group.services) < 2:
            p.add(
                path, f"a coupled release needs at least two services, got {list(group.services)}"
            )
            ok = False
        for svc in group.services:
            if svc not in names:
                p.add(path, f"unknown service {svc!r}{suggest(svc, names)}")
                ok = False
            elif svc in owner:
                p.add(path, f"{svc!r} is already in coupled release {owner[svc]!r}; "
                      "a service belongs to at most one")  # fmt: skip
                ok = False
            elif svc in spec.services and spec.rollout_of(svc) is None:
                p.add(path, f"{svc!r} has no rollout strategy; give it services.{svc}.rollout "
                      "(or set the top-level rollout)")  # fmt: skip
                ok = False
            owner.setdefault(svc, name)
        if ok:
            ok = _compatible(p, path, spec, group.services)
        ordered[name] = Coupled(_in_dependency_order(spec, group.services)) if ok else group
    return _with(spec, ordered)


def _compatible(p: Problems, path: str, spec: ClusterSpec, members: tuple[str, ...]) -> bool:
    strategies: list[tuple[str, RolloutSpec]] = []
    for svc in members:
        strategy = spec.rollout_of(svc)
        if strategy is not None:
            strategies.append((svc, strategy))
    first, ref = strategies[0]
    kinds = [s.kind for s in ref.steps]
    ok = True
    for svc, strategy in strategies[1:]:
        other = [s.kind for s in strategy.steps]
        if other != kinds:
            p.add(path, f"{svc!r} has steps {other} but {first!r} has {kinds}; members move in "
                  "lockstep, so give them the same kinds of steps in the same order")  # fmt: skip
            ok = False
        if strategy.on_failure != ref.on_failure:
            p.add(path, f"{svc!r} has on_failure {strategy.on_failure} but {first!r} has "
                  f"{ref.on_failure}; a coupled release fails as one")  # fmt: skip
            ok = False
        if (strategy.watch > 0) != (ref.watch > 0):
            p.add(path, f"rollout.watch is set for one of {first!r}, {svc!r} and not the other; "
                  "set it for every member or for none")  # fmt: skip
            ok = False
    return ok


def _in_dependency_order(spec: ClusterSpec, members: tuple[str, ...]) -> tuple[str, ...]:
    deps = {n: list(s.depends_on) for n, s in spec.services.items()}
    try:
        order = topo_order(deps)
    except SpecError:  # a cycle: reported by check_semantics
        return members
    rank = {n: i for i, n in enumerate(order)}
    return tuple(sorted(members, key=lambda n: (rank.get(n, len(rank)), n)))


def _with(spec: ClusterSpec, coupled: dict[str, Coupled]) -> ClusterSpec:
    if coupled == spec.coupled:
        return spec
    return replace(spec, coupled=coupled)


__all__ = ["check_coupled", "parse_coupled"]
