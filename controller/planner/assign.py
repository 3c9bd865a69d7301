"""Liveness, eligibility and the assignment of machines to services (pure).

Rules, in order:
1. A machine whose last accepted snapshot is older than heartbeat_timeout, or twice its
   agent's heartbeat if that is longer (blindness.silence_allowed), or that has none, is
   lost: it keeps its service as a warm `standby` and is never counted active.
2. A live active machine stays where it is (no reshuffling) unless it is no longer
   eligible, its service left the spec, or its service is reported failed/unhealthy after
   the health grace (then it is replaced and quarantined).
3. Extra actives above `count` step down to standby (unhealthy first, then pool machines,
   then the most recently assigned).
4. Missing actives are filled in the same cycle, services in dependency order, from:
   the service's own standbys, then unassigned directly-eligible machines, then standbys
   of other services that are directly eligible, then pool machines; never a machine in
   quarantine or one already reporting that service failed/unhealthy. A new service
   whose dependencies have not converged takes none (release.new_services_wait): what it
   would take stays its standby, for the short services after it.
5. Every other live machine is a warm standby (of its previous service when still
   eligible, else of the first service it is eligible for), or `deactivated` when it is
   eligible for nothing in the spec.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from itertools import filterfalse
from types import MappingProxyType
from typing import Never

from controller.planner.model import Event, MachineMemory, MachineObservation
from controller.spec.model import ClusterSpec, ServiceSpec
from wire.documents import Mode

ACTIVE_MODES = frozenset({"active", "canary"})
EMPTY: Mapping[str, Never] = MappingProxyType({})  # an empty mapping of any value type
_EMPTY = MachineMemory()


@dataclass(frozen=True, slots=True)
class Assignment:
    """Which service and mode every known machine is planned in: a value that the passes of
    one plan hand on (each pass that moves machines returns a new one, see `moved`).

    `live`, `memory`, `services`, `now` and `frozen` are the read-only inputs the
    assignment was made from, kept beside it so that its questions (`healthy`,
    `can_activate`) need nothing else."""

    live: Mapping[str, MachineObservation]
    lost: tuple[str, ...]
    service: Mapping[str, str | None]  # every known machine
    mode: Mapping[str, Mode]
    actives: Mapping[str, tuple[str, ...]]  # service -> sorted machines
    failed: Mapping[str, float] = field(default_factory=dict)  # machine -> failed_at
    memory: Mapping[str, MachineMemory] = field(default_factory=dict)
    services: Mapping[str, ServiceSpec] = field(default_factory=dict)
    now: float = 0.0
    weights: Mapping[str, int] = field(default_factory=dict)  # canary load-balancer weights
    # service -> its shadow machines (mirrored traffic only)
    mirrors: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    unready: frozenset[str] = frozenset()  # restarting to a new version: no peer
    frozen: frozenset[str] = frozenset()  # silent, kept by fail static: never newly activated

    def healthy(self, service: str) -> tuple[str, ...]:
        """The service's planned active machines that are live and report it healthy."""
        live, mode, unready = self.live, self.mode.get, self.unready
        out = []
        for m in self.actives.get(service, ()):
            obs = live.get(m)
            if obs is None or m in unready or mode(m) not in ACTIVE_MODES:
                continue
            state = obs.snapshot.services.get(service)  # is_healthy, inline: fleet-wide
            if state is not None and state.health == "healthy" and state.state != "failed":
                out.append(m)
        return tuple(out)

    def can_activate(self, m: str, name: str) -> bool:
        """Live, running, not in quarantine and not reporting `name` broken; never a silent
        machine fail static keeps as it was."""
        obs = self.live.get(m)
        if obs is None or name not in self.services or m in self.frozen:
            return False
        mm = self.memory.get(m, _EMPTY)
        failed_at = self.failed.get(m, mm.failed_at)
        return activatable(obs, name, failed_at, self.services[name], self.now, mm)

    def moved(
        self,
        modes: Mapping[str, Mode] = EMPTY,
        actives: Mapping[str, Collection[str]] = EMPTY,
        services: Mapping[str, str | None] = EMPTY,
    ) -> Assignment:
        """A new assignment with these machines' modes and services and these services'
        active machines (sorted here) replaced."""
        if not modes and not actives and not services:
            return self
        return replace(
            self,
            mode={**self.mode, **modes} if modes else self.mode,
            service={**self.service, **services} if services else self.service,
            actives={**self.actives, **{n: tuple(sorted(ms)) for n, ms in actives.items()}}
            if actives
            else self.actives,
        )


class Eligibility:
    """Which spec services a snapshot's `eligible` list allows (direct, then via pools)."""

    def __init__(self, spec: ClusterSpec) -> None:
        self._services = spec.services
        self._pools: dict[str, list[str]] = {}
        for name in sorted(spec.services):
            for pool in spec.services[name].pools:
                self._pools.setdefault(pool, []).append(name)
        self._cache: dict[tuple[str, ...], tuple[tuple[str, ...], tuple[str, ...]]] = {}
        # eligible -> `allowed(eligible)`, for loops over the fleet to read first
        self.seen_allowed: dict[tuple[str, ...], frozenset[str]] = {}

    def of(self, eligible: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        hit = self._cache.get(eligible)
        if hit is not None:
            return hit
        direct = tuple(sorted({t for t in eligible if t in self._services}))
        pooled = tuple(
            sorted({s for t in eligible for s in self._pools.get(t, ()) if s not in direct})
        )
        self._cache[eligible] = (direct, pooled)
        return direct, pooled

    def allows(self, eligible: tuple[str, ...], service: str) -> bool:
        return service in self.allowed(eligible)

    def allowed(self, eligible: tuple[str, ...]) -> frozenset[str]:
        """Every service `eligible` allows, directly or through a pool."""
        hit = self.seen_allowed.get(eligible)
        if hit is None:
            direct, pooled = self.of(eligible)
            hit = self.seen_allowed[eligible] = frozenset(direct + pooled)
        return hit


def activatable(
    obs: MachineObservation,
    name: str,
    failed_at: float | None,
    service: ServiceSpec,
    now: float,
    mm: MachineMemory = _EMPTY,
) -> bool:
    """May this machine start serving `name` now? (shared by assignment and rollouts)"""
    if obs.snapshot.status != "running" or judged_failing(obs, name, mm, service, now):
        return False
    return failed_at is None or now - failed_at >= service.health.quarantine


def is_failing(obs: MachineObservation, service: str) -> bool:
    """Reports `service` failed or unhealthy (whatever its grace: see `judged_failing`)."""
    state = obs.snapshot.services.get(service)
    return state is not None and (state.state == "failed" or state.health == "unhealthy")


def judged_failing(
    obs: MachineObservation, name: str, mm: MachineMemory, service: ServiceSpec, now: float
) -> bool:
    """The one health judgement: reports `name` failed or unhealthy past `health.grace` of
    its assignment to `name` (a machine told to run `name`, in any mode, within the grace is
    starting: its first reports, sent before the process answers, do not count against it)."""
    if not is_failing(obs, name):
        return False
    return mm.service != name or now - mm.assigned_at >= service.health.grace


def is_healthy(obs: MachineObservation, service: str) -> bool:
    state = obs.snapshot.services.get(service)
    return state is not None and state.health == "healthy" and state.state != "failed"


Waits = Callable[[str, Assignment], bool]  # does a new service wait for its dependencies?


def assign(
    spec: ClusterSpec,
    live: Mapping[str, MachineObservation],
    known: Collection[str],
    memory: Mapping[str, MachineMemory],
    order: tuple[str, ...],
    now: float,
    reserved: Mapping[str, str] = EMPTY,
    frozen: frozenset[str] = frozenset(),
    *,
    may_wait: Collection[str] = (),
    waits: Waits | None = None,
) -> tuple[Assignment, tuple[Event, ...]]:
    """The assignment of every known machine (rules 1-5) and its events. `reserved`:
    machine -> the only service that may activate it (a rollout keeps its old-version
    standby machines warm for a revert; other services may not take them)."""
    services = spec.services
    elig = Eligibility(spec)
    lost = tuple(filterfalse(live.__contains__, known))
    events: list[Event] = []
    service_of: dict[str, str | None] = {}
    mode_of: dict[str, Mode] = {}
    failed: dict[str, float] = {}
    actives: dict[str, list[str]] = {name: [] for name in services}

    # 1-2: lost machines and kept actives
    for m in lost:
        mm = memory.get(m, _EMPTY)
        service_of[m] = mm.service if mm.service in services else None
        mode_of[m] = "standby"
        if mm.mode in ACTIVE_MODES and not mm.lost:
            events.append(
                Event(
                    "machine.lost",
                    "no accepted snapshot within heartbeat_timeout (or 2 heartbeats)",
                    machine=m,
                    service=mm.service,
                )
            )
    allowed, seen_allowed = elig.allowed, elig.seen_allowed
    remembered = memory.get
    rest: list[tuple[str, MachineObservation, MachineMemory]] = []  # not kept active
    for m, obs in live.items():
        mm = remembered(m, _EMPTY)
        if mm.lost:
            events.append(Event("machine.returned", "accepted snapshot again", machine=m))
        svc = mm.service
        if svc is None or mm.mode not in ACTIVE_MODES:
            rest.append((m, obs, mm))
            continue
        snap = obs.snapshot
        ok = seen_allowed.get(snap.eligible)
        if ok is None:
            ok = allowed(snap.eligible)
        if svc not in ok:  # (every service `ok` allows is in the spec)
            why = "service left the spec" if svc not in services else "no longer eligible"
            events.append(Event("machine.released", why, m, svc))
            rest.append((m, obs, mm))
            continue
        state = snap.services.get(svc)
        if (
            state is not None
            and (state.state == "failed" or state.health == "unhealthy")
            and judged_failing(obs, svc, mm, services[svc], now)
        ):
            failed[m] = now
            events.append(
                Event(
                    "machine.unhealthy",
                    f"reported {state.state}/{state.health} after the health grace; replacing it",
                    m,
                    svc,
                )
            )
            rest.append((m, obs, mm))
            continue
        actives[svc].append(m)

    # 3: trim extras
    trimmed = False
    for name in order:
        keep = actives[name]
        count = services[name].count
        if len(keep) > count:
            ranked = sorted(
                keep,
                key=lambda m: (
                    not is_healthy(live[m], name),
                    name not in elig.of(live[m].snapshot.eligible)[0],  # pool machines go first
                    -sum(live[m].snapshot.sessions.values()),  # those with fewest sessions go
                    memory.get(m, _EMPTY).assigned_at,
                    m,
                ),
            )
            for m in ranked[count:]:
                events.append(Event("machine.scaled_down", f"{name} count is {count}", m, name))
            actives[name] = ranked[:count]
            trimmed = True
        actives[name].sort()

    # 5 (before 4, which only activates): everyone else is standby (or deactivated)
    for name, ms in actives.items():
        service_of.update(dict.fromkeys(ms, name))
        mode_of.update(dict.fromkeys(ms, "active"))
    if trimmed:  # the machines trimmed join the rest, in the same (live) order
        rest = [(m, obs, remembered(m, _EMPTY)) for m, obs in live.items() if m not in mode_of]
    # (eligible, previous service) -> the service it is standby of: a few cover the fleet
    standby_for: dict[tuple[tuple[str, ...], str | None], str | None] = {}
    for m, obs, mm in rest:
        key = (obs.snapshot.eligible, mm.service)
        if key in standby_for:
            standby_of = standby_for[key]
        else:
            direct, pooled = elig.of(key[0])
            if mm.service in direct or mm.service in pooled:
                standby_of = mm.service
            else:
                standby_of = direct[0] if direct else (pooled[0] if pooled else None)
            standby_for[key] = standby_of
        service_of[m] = standby_of
        mode_of[m] = "standby" if standby_of else "deactivated"
    work = Assignment(
        live=live,
        lost=lost,
        service=service_of,
        mode=mode_of,
        actives={n: tuple(ms) for n, ms in actives.items()},
        failed=failed,
        memory=memory,
        services=services,
        now=now,
        frozen=frozen,
    )
    # 4: fill
    work, short = fill(
        work, spec, order, reserved, elig, free_shadows=False, may_wait=may_wait, waits=waits
    )
    return work, (*events, *short)


def fill(
    work: Assignment,
    spec: ClusterSpec,
    order: tuple[str, ...],
    reserved: Mapping[str, str],
    elig: Eligibility | None = None,
    *,
    free_shadows: bool = True,
    skip: Collection[str] = (),
    may_wait: Collection[str] = (),
    waits: Waits | None = None,
) -> tuple[Assignment, tuple[Event, ...]]:
    """Activate free machines (neither active, canary, shadow nor draining) for every
    service below its count (rule 4), except `skip`, in dependency order; `service.short`
    events for those still short. `free_shadows`: a machine the last plan made a shadow
    counts as free unless this assignment still has it in shadow (the assignment's fill
    does not take them: their rollout decides first).

    A service of `may_wait` for which `waits(name, assignment so far)` (its dependencies,
    filled before it, have not converged: release.py) takes no machine: its actives and
    the machines it would have taken stay its warm standby, and the services after it
    that are still short take them, after their own candidates."""
    services = spec.services
    actives = work.actives
    short = {n: services[n].count - len(actives.get(n, ())) for n in order if n not in skip}
    if not any(v > 0 for v in short.values()) and not may_wait:
        return work, ()
    mode_of = work.mode
    busy = {m for m, mode in mode_of.items() if mode in _BUSY}
    live = (
        {m: o for m, o in work.live.items() if m not in work.frozen} if work.frozen else work.live
    )
    elig = elig or Eligibility(spec)

    def candidates(
        among: Mapping[str, MachineObservation], wanted: Mapping[str, int]
    ) -> dict[str, tuple[list[str], list[str], list[str], list[str]]]:
        return _candidates(
            services,
            among,
            work.memory,
            busy,
            work.failed,
            elig,
            wanted,
            work.now,
            reserved,
            mode_of if free_shadows else EMPTY,
        )

    tiers = candidates(live, short)
    events: list[Event] = []
    grown: dict[str, list[str]] = {}
    modes: dict[str, Mode] = {}
    moved: dict[str, str | None] = {}
    waiting: list[str] = []  # machines services that wait gave up: their standby for now

    def take(name: str, need: int, tiers_of: Iterable[list[str]], mode: Mode) -> int:
        joined = grown.get(name)
        if joined is None and mode == "active" and need > 0:
            joined = grown[name] = list(actives.get(name, ()))
        for tier in tiers_of:
            for m in tier:
                if need == 0:
                    return 0
                if m in busy:
                    continue
                busy.add(m)
                moved[m] = name
                modes[m] = mode
                if joined is not None and mode == "active":
                    joined.append(m)
                else:
                    waiting.append(m)
                need -= 1
        return need

    for name in order:
        need = short.get(name, 0)
        waits_now = (
            name in may_wait and waits is not None and waits(name, work.moved(modes, grown, moved))
        )
        if waits_now:
            for m in actives.get(name, ()):
                modes[m] = "standby"
                waiting.append(m)
            grown[name] = []
            need = take(name, max(need, 0), tiers.get(name, ()), "standby")
        elif need > 0:
            need = take(name, need, tiers.get(name, ()), "active")
        else:
            continue
        if need:
            events.append(short_event(name, need, services[name].count))
        if need and not waits_now:
            free = [m for m in waiting if moved.get(m) != name and modes.get(m) == "standby"]
            if free:
                busy.difference_update(free)
                among = {m: live[m] for m in sorted(free) if m in live}
                take(name, need, candidates(among, {name: need}).get(name, ()), "active")
                busy.update(free)
    return work.moved(modes, grown, moved), tuple(events)


def short_event(name: str, missing: int, count: int) -> Event:
    return Event(
        "service.short",
        f"{missing} of {count} machines missing: no eligible live standby or pool machine",
        service=name,
        data={"missing": missing, "count": count},
    )


_BUSY = frozenset({"active", "canary", "shadow", "warm", "draining"})


def _candidates(
    services: Mapping[str, ServiceSpec],
    live: Mapping[str, MachineObservation],
    memory: Mapping[str, MachineMemory],
    busy: set[str],
    failed_now: Mapping[str, float],
    elig: Eligibility,
    short: Mapping[str, int],
    now: float,
    reserved: Mapping[str, str],
    mode_of: Mapping[str, str],
) -> dict[str, tuple[list[str], list[str], list[str], list[str]]]:
    """Per short service, four tiers of free machines in preference order (ids sorted)."""
    tiers: dict[str, tuple[list[str], list[str], list[str], list[str]]] = {
        n: ([], [], [], []) for n, v in short.items() if v > 0
    }
    for m in sorted(live):
        if m in busy:
            continue
        obs = live[m]
        direct, pooled = elig.of(obs.snapshot.eligible)
        mm = memory.get(m, _EMPTY)
        if mode_of.get(m, mm.mode) == "shadow":  # serving a rollout's mirrored traffic
            continue
        fa = failed_now.get(m, mm.failed_at)
        only = reserved.get(m)
        for name in direct + pooled:
            t = tiers.get(name)
            if t is None or not activatable(obs, name, fa, services[name], now, mm):
                continue
            if only is not None and only != name:
                continue
            if mm.service == name:
                t[0].append(m)
            elif name in pooled:
                t[3].append(m)
            elif mm.service is None or mm.service not in services:
                t[1].append(m)
            else:
                t[2].append(m)
    for name, t in tiers.items():
        # of the service's own machines, those already on its version first: taking one that
        # served another version means switching it in place, a disruption that no
        # max_unavailable counted (docs/spec.md#draining-autoscaling-provisioning)
        version = services[name].version
        t[0].sort(key=lambda m: (memory.get(m, _EMPTY).version != version, m))
    return tiers
