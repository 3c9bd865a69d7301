"""Balancers' reports of unreachable backends (controller/planner/evict.py).

The case harness cannot express `ServiceState.backends`, so these cycles build the
observations with the harness and then add the balancers' reports by hand.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from controller.planner import Memory, Observed, Plan, plan
from controller.planner.model import MachineObservation
from tests.unit.planner.harness import invariants, observed_from, spec_from
from wire.documents import BackendState, Desired
from wire.layout import MachineId

SPEC = spec_from(
    {
        "services": {
            "web": {"version": "1", "count": 3, "port": 8000},
            "lb": {"kind": "loadbalancer", "balances": "web", "version": "1", "count": 3},
        }
    },
    1,
)
MACHINES: dict[str, dict[str, Any]] = {
    **{f"l{i}": {"eligible": ["lb"]} for i in (1, 2, 3)},
    **{f"w{i}": {"eligible": ["web"]} for i in (1, 2, 3)},
}
Reports = dict[str, dict[str, float | None]]  # balancer -> backend -> failing_since


class Cluster:
    """Cycles over one spec; the documents last written to each machine."""

    def __init__(self) -> None:
        self.memory = Memory()
        self.docs: dict[str, Desired] = {}
        self.now = 1000.0
        for _ in range(2):  # assign, then the balancers see healthy backends
            self.step()

    def observed(self, reports: Reports, machines: dict[str, dict[str, Any]]) -> Observed:
        obs = observed_from(machines, self.memory, self.now)
        out = dict(obs.machines)
        for b, seen in reports.items():
            o = out[MachineId(b)]
            lb = o.snapshot.services["lb"]
            backends = {m: BackendState(failing_since=s) for m, s in seen.items()}
            services = {**o.snapshot.services, "lb": replace(lb, backends=backends)}
            out[MachineId(b)] = MachineObservation(
                replace(o.snapshot, services=services), o.accepted_at
            )
        return replace(obs, machines=out)

    def step(self, reports: Reports | None = None, machines: Any = None) -> Plan:
        self.now += 10
        observed = self.observed(reports or {}, machines or MACHINES)
        p = plan(SPEC, observed, self.memory, self.now, fence=1)
        assert not invariants(SPEC, observed, p, self.now)
        again = plan(SPEC, observed, p.memory, self.now, fence=1)  # idempotent
        assert again.writes == () and again.memory.evictions == p.memory.evictions
        self.memory = p.memory
        self.docs.update({w.machine: w.desired for w in p.writes})
        return p

    def backends(self, b: str) -> list[str]:
        return [p.machine for p in self.docs[b].peers.backends]

    def evicted(self, b: str) -> list[str]:
        return [p.machine for p in self.docs[b].peers.evicted]


def test_a_majority_evicts_from_every_balancer_and_liveness_is_unchanged() -> None:
    c = Cluster()
    assert all(c.backends(b) == ["w1", "w2", "w3"] for b in ("l1", "l2", "l3"))
    p = c.step({"l1": {"w1": 1005.0}, "l2": {"w1": 1007.0}})
    for b in ("l1", "l2", "l3"):
        assert c.backends(b) == ["w2", "w3"] and c.evicted(b) == ["w1"]
    [event] = [e for e in p.events if e.kind == "peer.evicted"]
    assert event.machine == "w1" and event.data["observers"] == ["l1", "l2"]
    assert event.data["everywhere"] is True
    assert p.status.evicted["lb/w1"].voters == 3
    # w1 is not replaced: its own heartbeat decides that, and it still reports
    assert p.memory.machines["w1"].mode == "active" and not p.memory.machines["w1"].lost
    assert c.step({"l1": {"w1": 1005.0}, "l2": {"w1": 1007.0}}).writes == ()


def test_a_minority_evicts_only_from_its_own_peers() -> None:
    c = Cluster()
    p = c.step({"l1": {"w2": 1005.0}})
    assert c.backends("l1") == ["w1", "w3"] and c.evicted("l1") == ["w2"]
    assert {w.machine for w in p.writes} == {"l1"}  # the others keep the shared peers
    assert c.backends("l2") == c.backends("l3") == ["w1", "w2", "w3"]
    assert p.status.evicted["lb/w2"].everywhere is False


def test_a_backend_that_recovers_returns() -> None:
    c = Cluster()
    c.step({"l1": {"w1": 1005.0}, "l2": {"w1": 1005.0}, "l3": {"w1": 1005.0}})
    assert c.evicted("l3") == ["w1"]
    p = c.step({"l1": {"w1": None}})  # failing_since cleared (or no longer listed)
    lbs = ("l1", "l2", "l3")
    assert all(c.backends(b) == ["w1", "w2", "w3"] and not c.evicted(b) for b in lbs)
    assert [e.machine for e in p.events if e.kind == "peer.restored"] == ["w1"]
    assert p.memory.evictions == {} and p.status.evicted == {}


def test_a_balancer_reaching_nothing_evicts_nothing() -> None:
    c = Cluster()
    p = c.step({"l1": {"w1": 1.0, "w2": 1.0, "w3": 1.0}})
    assert p.writes == () and not p.status.evicted


def test_never_the_last_backend() -> None:
    """Each backend has a majority against it: the tier would route to nothing, so none
    is evicted everywhere; each balancer still leaves out what it cannot reach itself."""
    c = Cluster()
    p = c.step(
        {"l1": {"w1": 1.0, "w2": 1.0}, "l2": {"w2": 1.0, "w3": 1.0}, "l3": {"w1": 1.0, "w3": 1.0}}
    )
    assert (c.backends("l1"), c.backends("l2"), c.backends("l3")) == (["w3"], ["w1"], ["w2"])
    assert not any(e.everywhere for e in p.status.evicted.values())


def test_fail_static_wins_no_eviction_while_held() -> None:
    c = Cluster()
    silent = {**MACHINES, **{f"w{i}": {"eligible": ["web"], "age": 61} for i in (2, 3)}}
    p = c.step({"l1": {"w1": 1005.0}, "l2": {"w1": 1005.0}}, silent)
    assert "web" in p.status.holds
    assert not p.status.evicted and not [e for e in p.events if e.kind == "peer.evicted"]
    assert all("w1" in c.backends(b) for b in ("l1", "l2", "l3"))
