"""Backends the balancers cannot reach leave their peers at once (pure).

A dead backend used to stay in its balancers' peers until its own heartbeat ran out (two
heartbeats by default), although the balancers stop reaching it at once. A balancer whose
agent has a `backends` probe reports, for the service it balances, the peers it fails to
reach (`ServiceState.backends`, `failing_since`). This pass turns those reports into
peers, every cycle, from what is observed only (so planning twice gives the same plan):

- a majority of the live balancers routing to a backend report it failing: it leaves the
  peers of every balancer of that service (`everywhere`);
- a minority does: it leaves only the reporting balancers' own peers, so one broken
  balancer (its network, its health check) can never evict healthy backends from the
  others;
- an evicted backend stays in `peers.evicted`: the balancers keep health-checking it and
  send it nothing; once they reach it again (`failing_since` cleared) it returns;
- a backend is replaced only when its own heartbeat runs out: liveness is unchanged;
- never the last backend: when the reports would leave a balancer with no backend at all
  the balancer (or the whole tier) is the likelier fault, and nothing is evicted for it
  (Envoy's panic threshold, as docs/security.md#fail-static argues for silence);
- fail static wins (docs/security.md#fail-static): while the balanced service or the
  balancer service is held, no new eviction is made and the evictions in force stay as
  they were (the peers stay static).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from controller.planner.assign import ACTIVE_MODES, Assignment
from controller.planner.model import Event, Eviction
from controller.spec.model import ClusterSpec
from wire.documents import Peer

NONE: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Evictions:
    everywhere: dict[str, frozenset[str]]  # balancer service -> out of all its machines' peers
    own: dict[str, frozenset[str]]  # balancer machine -> out of its own peers only (more)
    records: dict[str, Eviction]  # "<balancer service>/<machine>" -> why
    events: tuple[Event, ...]


def evictions(
    spec: ClusterSpec,
    work: Assignment,
    serve: Mapping[str, tuple[Peer, ...]],
    held: Collection[str],
    previous: Mapping[str, Eviction],
    now: float,
) -> Evictions:
    """Which backends leave which balancers' peers this cycle; see the module docstring.
    `serve`: the balanced services' peers (render.serving); `held`: the services fail static
    holds this cycle; `previous`: the evictions of the last plan (memory)."""
    records: dict[str, Eviction] = {}
    for name, svc in sorted(spec.services.items()):
        target = svc.balances
        if target is None:
            continue
        peers = {p.machine for p in serve.get(target, ())}
        balancers = [b for b in work.actives.get(name, []) if work.mode.get(b) in ACTIVE_MODES]
        if name in held or target in held:  # static: what was evicted stays so, nothing more
            records.update(
                (k, e)
                for k, e in previous.items()
                if e.balancer == name and k.partition("/")[2] in peers
            )
            continue
        if not peers or not balancers:
            continue
        live = work.live
        failing: dict[str, set[str]] = {}
        for b in balancers:
            obs = live.get(b)
            state = obs.snapshot.services.get(name) if obs is not None else None
            if state is None or not state.backends:
                continue
            seen = {m for m, s in state.backends.items() if s.failing_since is not None}
            if seen & peers and not peers <= seen:  # reaching none: the balancer's fault
                failing[b] = seen & peers
        voters = len(balancers)
        votes: dict[str, list[str]] = {}
        for b, ms in failing.items():
            for m in ms:
                votes.setdefault(m, []).append(b)
        majority = {m for m, bs in votes.items() if 2 * len(bs) > voters}
        if majority >= peers:
            majority = set()  # the tier would route to nothing: never evict the last backend
        for b, ms in failing.items():
            if peers <= majority | ms:  # this balancer would be left with no backend
                for m in ms - majority:
                    votes[m].remove(b)
        for m, bs in sorted(votes.items()):
            if not bs:
                continue
            key = f"{name}/{m}"
            prev = previous.get(key)
            records[key] = Eviction(
                service=target,
                balancer=name,
                observers=tuple(sorted(bs)),
                voters=voters,
                everywhere=m in majority,
                since=prev.since if prev is not None else now,
            )
    return _result(records, previous, now)


def _result(
    records: dict[str, Eviction], previous: Mapping[str, Eviction], now: float
) -> Evictions:
    everywhere: dict[str, set[str]] = {}
    own: dict[str, set[str]] = {}
    events: list[Event] = []
    for key, e in records.items():
        machine = key.partition("/")[2]
        if e.everywhere:
            everywhere.setdefault(e.balancer, set()).add(machine)
        else:
            for b in e.observers:
                own.setdefault(b, set()).add(machine)
        prev = previous.get(key)
        if prev is None or prev.everywhere != e.everywhere:
            scope = "every balancer" if e.everywhere else "the reporting balancers only"
            events.append(
                Event(
                    "peer.evicted",
                    f"{len(e.observers)} of {e.voters} {e.balancer} balancers cannot reach "
                    f"it: out of the peers of {scope} until they reach it again or its "
                    "heartbeat runs out",
                    machine,
                    e.service,
                    data={
                        "balancer": e.balancer,
                        "observers": list(e.observers),
                        "voters": e.voters,
                        "everywhere": e.everywhere,
                    },
                )
            )
    for key, e in sorted(previous.items()):
        if key not in records:
            events.append(
                Event(
                    "peer.restored",
                    f"back in the {e.balancer} peers: its balancers reach it again "
                    "(or it is no longer a peer)",
                    key.partition("/")[2],
                    e.service,
                    data={"balancer": e.balancer, "evicted_for": round(now - e.since, 3)},
                )
            )
    return Evictions(
        everywhere={k: frozenset(v) for k, v in sorted(everywhere.items())},
        own={b: frozenset(v) for b, v in sorted(own.items())},
        records=dict(sorted(records.items())),
        events=tuple(events),
    )
