"""Draining sustained sessions and the disruption budget, pure.

Runs once per pass, after assignment, releases and rollouts have proposed each machine's
next (service, mode, release), and before peers are computed. For every live machine that
serves now (active, canary, shadow or draining) it compares the proposal with what the
machine was last told:

- A change is *disruptive* when the machine leaves its service or serving mode
  (scale-down, reassignment, deactivation, a rollout moving it), changes version, or
  changes config while its service has `sessions.config_disruptive`.
- A disruptive change of a machine that reports sessions (sum of `snapshot.sessions`)
  first moves it to `draining`: same service, version and config, no load-balancer peer,
  `drain: {reason, since, deadline = since + sessions.drain_timeout}`. The change is
  applied when the sessions reach zero (`machine.drained`) or the deadline passes
  (`machine.drain_timeout`, with the number of sessions cut).
- `max_unavailable` of the machine's service bounds the machines unavailable at once:
  draining for a change of its own (version, config), active but not (yet) reporting
  healthy at its planned version, or missing (lost and not replaced). An in-place change beyond the budget is held:
  the machine keeps what it runs now (`service.budget` event). Machines with the fewest
  sessions are disrupted first. A machine leaving its service (scale-down, reassignment)
  drains without using the budget: the service keeps its count of serving machines, so
  a scale-down is never slowed down to `max_unavailable` drains at a time.
- A machine whose planned version differs from the version it reports is left out of
  load-balancer peers and `$instances` (it is restarting; render.restarting, in the peers
  pass); it comes back once it reports the new version healthy.

Held and draining machines keep their old release through `Releases.pinned` (the
`drain_pass` result carries the assignment and releases with them); the places they
leave are filled from standby in the same plan by the `top_up` pass (passes.py).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from controller.planner.assign import ACTIVE_MODES, Assignment
from controller.planner.model import Event, Memory
from controller.planner.release import Release, Releases
from controller.spec.model import ClusterSpec, ServiceSpec
from controller.spec.scale import DEFAULT_BUDGET, budget_of
from wire.codec import JsonValue
from wire.documents import Drain, Mode
from wire.signing import digest

SERVING = frozenset({"active", "canary", "shadow"})
CONFIG_CHANGE = "disruptive config change"
_WAS_SERVING = SERVING | {"draining"}


@dataclass(frozen=True, slots=True)
class DrainResult:
    work: Assignment  # with held and draining machines kept where they were
    releases: Releases  # with their old releases pinned
    events: tuple[Event, ...]
    drains: Mapping[str, Drain]  # machine -> drain (draining ones)
    kept: Mapping[str, dict[str, JsonValue]]  # held: old config
    configs: Mapping[str, str]  # machine -> release config digest, before the holds


def sessions_of(work: Assignment, m: str) -> int:
    obs = work.live.get(m)
    if obs is None:
        return 0
    return sum(v for v in obs.snapshot.sessions.values() if v > 0)


@dataclass(slots=True)
class _Holds:
    """The machines `drain_pass` keeps where they were (private to one call)."""

    work: Assignment
    modes: dict[str, Mode] = field(default_factory=dict)
    services: dict[str, str | None] = field(default_factory=dict)
    actives: dict[str, list[str]] = field(default_factory=dict)  # services whose list changed
    pins: dict[str, Release] = field(default_factory=dict)
    kept: dict[str, dict[str, JsonValue]] = field(default_factory=dict)
    drains: dict[str, Drain] = field(default_factory=dict)
    freed: bool = False  # an active place was given up: fill it

    def actives_of(self, service: str) -> list[str]:
        hit = self.actives.get(service)
        if hit is None:
            hit = self.actives[service] = list(self.work.actives.get(service, ()))
        return hit


def drain_pass(
    spec: ClusterSpec,
    work: Assignment,
    rel: Releases,
    memory: Memory,
    now: float,
    reverting: Collection[str] = (),
) -> DrainResult:
    """`reverting`: services whose rollout reverts (no default budget for going back)."""
    events: list[Event] = []
    holds = _Holds(work)
    mem = memory.machines
    services = spec.services
    configs = config_digests(spec, work, rel)
    limits = {n: budget_of(budget_value(s, n in reverting), s.count) for n, s in services.items()}
    held: dict[str, int] = {}
    candidates: list[tuple[int, str]] = []
    draining: list[str] = []
    service_of, mode_of = work.service.get, work.mode.get
    extras = bool(rel.pinned or rel.variants)
    # each service's release version (no override, pin or config change this pass: most)
    plain = None if configs or extras else {n: r.version for n, r in rel.base.items() if r}
    remembered = mem.get
    for m in work.live:  # fast pass: most machines keep what they run
        mm = remembered(m)
        if mm is None or mm.mode not in _WAS_SERVING or mm.service is None:
            continue
        if mm.drain is not None:
            draining.append(m)
            continue
        old = mm.service
        if service_of(m) == old and mode_of(m) == mm.mode:
            if plain is not None:
                version = plain.get(old)
                if version is None or version == mm.version:
                    continue  # same service, mode and version: nothing disruptive
            elif not configs:
                release = rel.of(spec, old, m)
                if release is None or release.version == mm.version:
                    continue
        if _disruption(spec, work, rel, m, old, mm.version, mm.config, configs):
            candidates.append((sessions_of(work, m), m))
    # the budget in use matters only to a disruptive change (most cycles have none)
    used = _unavailable(spec, work, memory, draining, reverting) if candidates else {}
    # Each machine below is visited once and its hold changes only itself (and the active
    # lists it leaves or joins), so reading `work` for it sees what the assignment proposed.
    for m in sorted(draining):  # draining already: finish, continue or undrain
        mm = mem[m]
        old = mm.service or ""
        reason = _disruption(spec, work, rel, m, old, mm.version, mm.config, configs)
        if mm.drain is not None:
            n = sessions_of(work, m)
            if old not in services:
                reason = reason or "service left the spec"
            if not reason:
                events.append(Event("machine.undrained", "needed again as it was", m, old))
            elif n == 0:
                events.append(
                    Event("machine.drained", f"sessions ended; {reason}", m, old,
                          data={"sessions_cut": 0, "drained_for": round(now - mm.drain.since, 3)})
                )  # fmt: skip
            elif now >= mm.drain.deadline or old not in services:
                events.append(
                    Event("machine.drain_timeout",
                          f"{n} sessions cut after {now - mm.drain.since:g}s; {reason}", m, old,
                          data={"sessions_cut": n, "drained_for": round(now - mm.drain.since, 3)})
                )  # fmt: skip
            else:
                _hold(holds, rel, memory, spec, m, "draining")
                holds.drains[m] = mm.drain
    for n, m in sorted(candidates):  # fewest sessions first
        mm = mem[m]
        old = mm.service or ""
        reason = _disruption(spec, work, rel, m, old, mm.version, mm.config, configs)
        limit = limits.get(old)
        leaving = work.service.get(m) != old or work.mode.get(m) not in SERVING
        costs = not leaving  # an in-place change (or its drain) takes capacity from the service
        if old not in services:
            if n:
                events.append(
                    Event("machine.drain_timeout", f"{n} sessions cut: {old} left the spec",
                          m, old, data={"sessions_cut": n, "drained_for": 0.0})
                )  # fmt: skip
            continue
        if costs and limit is not None and used.get(old, 0) >= limit:
            _hold(holds, rel, memory, spec, m, mm.mode)
            held[old] = held.get(old, 0) + 1
            continue
        if costs:
            used[old] = used.get(old, 0) + 1
        if n > 0:
            timeout = services[old].sessions.drain_timeout
            drain = Drain(reason=reason, since=now, deadline=now + timeout)
            holds.drains[m] = drain
            _hold(holds, rel, memory, spec, m, "draining")
            events.append(
                Event("machine.draining", f"{n} sessions; {reason}; deadline in {timeout:g}s",
                      m, old, data={"sessions": n, "deadline": drain.deadline})
            )  # fmt: skip
    events += _budget_events(spec, held, used)
    work = work.moved(holds.modes, holds.actives, holds.services)
    rel = rel.with_pins(holds.pins)
    return DrainResult(work, rel, tuple(events), holds.drains, holds.kept, configs)


def hold_switches(
    spec: ClusterSpec,
    before: Assignment,
    work: Assignment,
    rel: Releases,
    memory: Memory,
    drains: Mapping[str, Drain],
    reverting: Collection[str],
) -> tuple[Assignment, Releases, dict[str, dict[str, JsonValue]], tuple[Event, ...]]:
    """A machine the last passes made active again (`before` -> `work`: the top-up) that
    served the same service at another version or config would switch in place: a
    disruption like any other, so it is held on what it runs while the service's budget is
    spent by this cycle's in-place drains (the next plan's drain pass, seeing it active on
    its old release, holds it the same way until the budget frees)."""
    if work is before:  # the top-up took nobody (most cycles)
        return work, rel, {}, ()
    mem = memory.machines
    configs = config_digests(spec, work, rel)
    switching: list[tuple[str, str]] = []
    for m, mode in work.mode.items():
        if mode not in ACTIVE_MODES or before.mode.get(m) in ACTIVE_MODES:
            continue
        mm, svc = mem.get(m), work.service.get(m)
        if mm is None or svc is None or mm.service != svc or mm.mode not in SERVING:
            continue
        if _disruption(spec, work, rel, m, svc, mm.version, mm.config, configs):
            switching.append((svc, m))
    if not switching:
        return work, rel, {}, ()
    used: dict[str, int] = {}
    for m, drain in drains.items():
        svc = work.service.get(m)
        if svc is not None and in_place(drain.reason):
            used[svc] = used.get(svc, 0) + 1
    holds = _Holds(work)
    held: dict[str, int] = {}
    for svc, m in sorted(switching):
        limit = budget_of(
            budget_value(spec.services[svc], svc in reverting), spec.services[svc].count
        )
        if limit is not None and used.get(svc, 0) >= limit:
            _hold(holds, rel, memory, spec, m, "active")
            held[svc] = held.get(svc, 0) + 1
        else:
            used[svc] = used.get(svc, 0) + 1
    work = work.moved(holds.modes, holds.actives, holds.services)
    return work, rel.with_pins(holds.pins), holds.kept, tuple(_budget_events(spec, held, used))


def _budget_events(
    spec: ClusterSpec, held: Mapping[str, int], used: Mapping[str, int]
) -> list[Event]:
    """`service.budget` for each service with changes held (`held`: how many)."""
    return [
        Event("service.budget",
              f"{count} disruptive changes wait: max_unavailable "
              f"{budget_value(spec.services[name], False)} reached ({used.get(name, 0)} unavailable)",
              service=name, data={"waiting": count, "unavailable": used.get(name, 0)})
        for name, count in sorted(held.items())
    ]  # fmt: skip


def in_place(reason: str) -> bool:
    """Is a drain for a change of the machine itself (version, config), not a move away?"""
    return reason.startswith("version ") or reason == CONFIG_CHANGE


def _disruption(
    spec: ClusterSpec,
    work: Assignment,
    rel: Releases,
    m: str,
    old: str,
    version: str | None,
    config: str,
    configs: Mapping[str, str],
) -> str:
    """Why the proposed change of `m` disrupts it ("" when it does not)."""
    svc, mode = work.service.get(m), work.mode.get(m, "standby")
    if svc != old:
        return f"moving to {svc}" if svc else "deactivated"
    if mode not in SERVING:
        return f"to {mode}"
    release = rel.of(spec, svc, m)
    if release is not None and release.version != version:
        return f"version {version} -> {release.version}"
    new_config = configs.get(m, "")
    if config and new_config and new_config != config:
        return CONFIG_CHANGE
    return ""


def _hold(
    holds: _Holds, rel: Releases, memory: Memory, spec: ClusterSpec, m: str, mode: Mode
) -> None:
    """Keep `m` on its current service and release, in `mode` (`holds.freed` when an
    active place was given up). The release config it keeps is remembered
    (`MachineMemory.kept`): the service's own release moves on in memory while the machine
    still runs the old one."""
    mm = memory.machines[m]
    old = mm.service
    assert old is not None
    work = holds.work
    svc_now = work.service.get(m)
    if (
        svc_now is not None
        and m in holds.actives_of(svc_now)
        and (svc_now != old or mode not in ACTIVE_MODES)
    ):
        holds.actives_of(svc_now).remove(m)
        holds.freed = True
    holds.services[m] = old
    holds.modes[m] = mode
    if mode in ACTIVE_MODES and m not in holds.actives_of(old):
        holds.actives_of(old).append(m)
    if mm.version is not None:
        config = mm.kept if mm.kept is not None else _old_config(spec, rel, memory, old, mm.version)
        holds.pins[m] = Release(mm.version, config)
        holds.kept[m] = config


def _old_config(
    spec: ClusterSpec, rel: Releases, memory: Memory, service: str, version: str
) -> dict[str, JsonValue]:
    sm = memory.services.get(service)
    if sm is not None and sm.version == version and not sm.rebuilt:
        return sm.config
    base = rel.base.get(service)
    if base is not None:
        return base.config
    return spec.services[service].config if service in spec.services else {}


def budget_value(service: ServiceSpec, reverting: bool) -> str | None:
    """The service's disruption budget: its `max_unavailable`, else the default (25%), except
    while its rollout reverts: going back to the version that ran is never paced by default."""
    if service.max_unavailable is not None:
        return service.max_unavailable
    return None if reverting else DEFAULT_BUDGET


def _unavailable(
    spec: ClusterSpec,
    work: Assignment,
    memory: Memory,
    draining: Collection[str],
    reverting: Collection[str] = (),
) -> dict[str, int]:
    """Per service with a budget: machines draining for a change of their own, active but
    not (yet) healthy at their planned version, and machines the service lacks (lost and
    not replaced: its count minus the live machines it has). A lost machine that was
    replaced no longer counts, so a dead machine never blocks the budget for good.
    `draining`: the live machines memory has serving and draining."""
    used: dict[str, int] = {}
    present: dict[str, int] = {}
    budgeted = {n for n, s in spec.services.items() if budget_value(s, n in reverting) is not None}
    if not budgeted:
        return used
    # The machines this pass plans active (not the last pass's): planning again over the
    # applied result must count the same machines, or a change held in one pass goes
    # ahead in the next (a replacement activated this pass is part of the service).
    remembered = memory.machines.get
    for m in draining:
        mm = memory.machines[m]
        svc = mm.service
        if svc in budgeted and mm.drain is not None and in_place(mm.drain.reason):
            used[svc] = used.get(svc, 0) + 1  # part of the service, unavailable
            present[svc] = present.get(svc, 0) + 1
    live, mode = work.live.get, work.mode.get
    for name in budgeted:
        n_present = n_used = 0
        for m in work.actives.get(name, ()):
            obs = live(m)
            if obs is None or mode(m) not in ACTIVE_MODES:
                continue
            last = remembered(m)
            told = None
            if last is not None:
                if last.drain is not None:
                    continue  # counted above
                if last.service == name:
                    told = last.version
            n_present += 1
            state = obs.snapshot.services.get(name)
            if state is None or state.health != "healthy" or state.version != told:
                n_used += 1
        if n_present:
            present[name] = present.get(name, 0) + n_present
        if n_used:
            used[name] = used.get(name, 0) + n_used
    for name in budgeted:
        missing = spec.services[name].count - present.get(name, 0)
        if missing > 0:
            used[name] = used.get(name, 0) + missing
    return used


def config_digests(spec: ClusterSpec, work: Assignment, rel: Releases) -> dict[str, str]:
    """Release config digest of each machine of a service with `config_disruptive`."""
    wanted = {n for n, s in spec.services.items() if s.sessions.config_disruptive}
    if not wanted:
        return {}
    cache: dict[int, str] = {}
    configs: dict[str, str] = {}
    for m, svc in work.service.items():
        if svc not in wanted:
            continue
        release = rel.of(spec, svc, m)
        if release is None:
            continue
        key = id(release)
        hit = cache.get(key)
        if hit is None:
            hit = cache[key] = digest({"config": release.config})
        configs[m] = hit
    return configs


__all__ = ["DrainResult", "config_digests", "drain_pass", "sessions_of"]
