"""Fail static: silence of many machines at once is blindness, not death (pure).

docs/security.md#fail-static. A machine whose report is older than its liveness window is
normally lost: demoted, dropped from its balancers' peers, replaced. When a large share of a
service, or of the fleet, goes quiet *together*, the likelier cause is that the controller
or the bucket cannot see (the machines lost their route to the bucket, the bucket throttles
their PUTs, a region hiccup). Acting on that silence would turn an outage of the bucket into
an outage of the service, so the planner holds instead: the silent machines keep their last
report as if it were current (their assignment, their place in the balancers' peers), and
the hold is lifted by itself once reports return. The same idea as Envoy's panic threshold,
AWS load balancers failing open and Kubernetes' `--unhealthy-zone-threshold`.

"Together" is measured, not guessed: agents report at least once per heartbeat, and a
machine is lost only after two heartbeats (or `heartbeat_timeout`), so when the first of a
group that went quiet at once crosses its window, every other member is already overdue by
most of a heartbeat. A service is held when at least one member is silent past its window
and the overdue members (at least two) are `blind_threshold` or more of its members;
the fleet is held when the same holds over every machine. Machines silent for more than
two windows before any hold began are long gone and never make one.

An operator who knows the machines are gone sets the threshold `off` for that service (or
the cluster) in the spec; the next plan treats the silent machines as lost.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from controller.planner.assign import Eligibility
from controller.planner.model import Event, Hold, HoldMemory, MachineMemory, MachineObservation
from controller.spec.model import ClusterSpec
from wire.layout import MachineId

OVERDUE = 0.8  # of the agent's heartbeat: a report at least this old is overdue
MIN_OVERDUE = 2  # one quiet machine is a machine, never blindness


def silence_allowed(heartbeat_timeout: float, obs: MachineObservation) -> float:
    """How long a machine may be silent before it is lost: `heartbeat_timeout`, or twice
    the heartbeat its agent reports if that is longer. A quiet agent (nothing changed)
    reports only at its heartbeat, so a shorter timeout would mark it lost, replace it and
    take it back at every heartbeat."""
    return max(heartbeat_timeout, 2.0 * obs.snapshot.heartbeat_interval)


def reporting(
    observed: Mapping[MachineId, MachineObservation], heartbeat_timeout: float, now: float
) -> dict[str, MachineObservation]:
    """The machines whose last report is within `silence_allowed` (computed inline: this
    runs over the whole fleet every cycle)."""
    return {
        m: o
        for m, o in observed.items()
        if now - o.accepted_at <= heartbeat_timeout
        or now - o.accepted_at <= 2.0 * o.snapshot.heartbeat_interval
    }


def overdue_after(
    heartbeat_timeout: float, controller_interval: float, obs: MachineObservation
) -> float:
    """How old a report must be to count as overdue, for the "together" test.

    When the first of a group that went quiet at once crosses its window W, the others
    reported at most one heartbeat h later (accepted up to a controller interval c after
    that), so each is at least W - h - c old. A healthy machine's report is at most about
    h + c old. Overdue is therefore the later of 0.8 h and W - h - 2c: every member of a
    quiet group is overdue, few healthy machines are. An agent that does not report its
    heartbeat is taken to beat twice per window."""
    window = silence_allowed(heartbeat_timeout, obs)
    beat = obs.snapshot.heartbeat_interval or window / 2
    return max(OVERDUE * beat, window - beat - 2 * controller_interval)


@dataclass(frozen=True, slots=True)
class Blindness:
    holds: dict[str, Hold]  # service -> why it is held
    memory: dict[str, HoldMemory]  # what the next plan needs to know of them
    keep: dict[str, MachineObservation]  # silent machines kept as live with their last report
    events: tuple[Event, ...]


@dataclass(slots=True)
class _Tally:
    members: int = 0
    overdue: int = 0
    silent: int = 0

    def add(self, overdue: bool, silent: bool) -> None:
        self.members += 1
        self.overdue += overdue
        self.silent += silent

    def blind(self, threshold: float | None) -> bool:
        return (
            threshold is not None
            and self.silent >= 1
            and self.overdue >= MIN_OVERDUE
            and self.overdue >= threshold * self.members
        )


def _fraction(threshold: float | str | None) -> float | None:
    return None if threshold is None or isinstance(threshold, str) else threshold  # "off"


def fail_static(
    spec: ClusterSpec,
    observed: Mapping[MachineId, MachineObservation],
    live: Mapping[str, MachineObservation],
    assigned: Mapping[str, MachineMemory],
    held: Mapping[str, HoldMemory],
    now: float,
) -> Blindness:
    """Which services are held, and the silent machines the plan keeps as they were.

    `observed`: every machine with an accepted report; `live`: those inside their liveness
    window; `assigned`: what the last plan decided for each machine (its service); `held`: the last plan's
    holds. A held service keeps the silent machines assigned to it, exactly as they were
    (the assignment never makes a kept machine active anew). The members of a service are the observed
    machines eligible for it; the fleet's, those eligible for any service. Only what was
    observed decides (never what this plan assigns), so planning again over the plan's own
    memory holds exactly the same services: the plan stays idempotent. Without a hold in
    force, machines silent for more than two windows are long gone and not members; while
    a hold is in force they stay members, so a long outage keeps its hold.

    A hold ends in two steps. Reports come back spread over a poll interval, so the first
    cycle in which too few machines are overdue is not the end of the blindness for those
    still quiet: each keeps its last report for one more liveness window counted from that
    cycle (`clearing`), and only then is a machine that is still silent lost. The hold is
    lifted when none of its machines is still kept.
    """
    if not held and len(live) == len(observed):  # nobody silent, no hold: nothing to decide
        return Blindness({}, {}, {}, ())
    elig = Eligibility(spec)
    timeout, interval = spec.settings.heartbeat_timeout, spec.settings.controller_interval
    per: dict[str, _Tally] = {}
    fleet = _Tally()
    silent_of: dict[str, list[str]] = {}
    for m, obs in observed.items():
        direct, pooled = elig.of(obs.snapshot.eligible)
        services = direct + pooled
        if not services:
            continue
        silent = m not in live
        age = now - obs.accepted_at
        gone = silent and age > 2 * silence_allowed(timeout, obs)
        overdue = silent or age >= overdue_after(timeout, interval, obs)
        if not (gone and not held):
            fleet.add(overdue, silent)
        for svc in services:
            if gone and svc not in held:
                continue
            per.setdefault(svc, _Tally()).add(overdue, silent)
            if silent:
                silent_of.setdefault(svc, []).append(m)
    fleet_blind = fleet.blind(_fraction(spec.settings.blind_threshold))
    holds: dict[str, Hold] = {}
    memory: dict[str, HoldMemory] = {}
    keep: dict[str, MachineObservation] = {}
    events: list[Event] = []
    for svc in sorted(per):
        tally = per[svc]
        if tally.silent == 0:
            continue
        own_threshold = spec.services[svc].health.blind_threshold
        if own_threshold == "off":
            continue  # the operator turned fail static off for this service
        own = tally.blind(_fraction(own_threshold or spec.settings.blind_threshold))
        prev = held.get(svc)
        quiet = [observed[MachineId(m)] for m in silent_of[svc]]
        if own or fleet_blind:
            clearing = None
        elif prev is not None:  # reports are returning: the rest get one window from here
            clearing = prev.clearing if prev.clearing is not None else now
            quiet = [o for o in quiet if now < clearing + silence_allowed(timeout, o)]
            if not quiet:
                continue
        else:
            continue
        scope: Literal["service", "fleet"] = "service" if own or not fleet_blind else "fleet"
        t = fleet if scope == "fleet" else tally
        since = prev.since if prev is not None else now
        if clearing is None:
            reason = (
                f"{t.overdue} of {t.members} machines of "
                f"{'the fleet' if scope == 'fleet' else svc} stopped reporting together "
                f"({tally.silent} of {svc} past their liveness window): holding static "
                "(no demotion, peers kept) until reports return"
            )
        else:
            reason = (
                f"reports are returning: the {len(quiet)} machines of {svc} still silent keep "
                "their last report for one liveness window from then, and are lost after it"
            )
        holds[svc] = Hold(reason, since, tally.silent, tally.members, scope, clearing)
        memory[svc] = HoldMemory(since, clearing)
        for o in quiet:
            last = assigned.get(o.snapshot.machine)
            if last is not None and last.service == svc:
                keep[o.snapshot.machine] = o
        if prev is None:
            events.append(Event("service.held", reason, service=svc, data={"scope": scope}))
    for svc in sorted(held):
        if svc not in holds:
            events.append(
                Event(
                    "service.hold_lifted",
                    "reports returned (or the operator turned fail static off): planning "
                    "with what is observed again",
                    service=svc,
                    data={"held_for": round(now - held[svc].since, 3)},
                )
            )
    return Blindness(holds, memory, dict(sorted(keep.items())), tuple(events))
