"""A small fleet of simulated agents carrying traffic, for what reads the bucket (bosun ui).

`TrafficAgent` is `tests.unit.controller.sim.SimAgent` plus cumulative request, error and
latency counters for the service it runs, per version (`PROFILES`), so a rollout's gates
measure something. `SimFleet` holds the agents and the spec; `round(now)` makes every
agent pull its desired document and report. The controller is whatever the test runs:
an in-process `Controller` with a fake clock (unit tests), or a real `bosun controller
run` process (integration tests, `SimFleet.drive` in a thread).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any

from controller.spec.load import from_value
from controller.spec.revisions import apply
from controller.spec.signature import Signer
from devkit.operator_keys import operator_signer
from tests.unit.controller.sim import SimAgent
from wire.documents import Snapshot
from wire.store import Store

# version -> (requests per second, error rate, mean latency ms)
PROFILES: dict[str, tuple[float, float, float]] = {
    "1.0": (200.0, 0.01, 10.0),
    "2.0": (200.0, 0.02, 13.0),
}
WEB = tuple(f"web-{i}" for i in range(1, 6))
LB = ("lb-1",)
ROLLOUT: dict[str, Any] = {
    "steps": [
        {"shadow": 1, "bake": "1s"},
        {"canary": 1, "weight": 50, "bake": "1s"},
        {"percent": 50, "bake": "1s"},
        {"percent": 100},
    ],
    "gates": {
        "max_error_rate": 0.05,
        "max_error_ratio": 5,
        "max_latency_ratio": 2,
        "min_requests": 100,
    },
    "on_failure": "revert",
    "keep_previous": "1m",
    "progress_deadline": "5m",
}


def spec_value(
    version: str, *, interval: str = "1s", heartbeat_timeout: str = "4s"
) -> dict[str, Any]:
    return {
        "settings": {
            "heartbeat_timeout": heartbeat_timeout,
            "desired_lifetime": "1h",
            "skew_window": "5m",
            "controller_interval": interval,
        },
        "services": {
            "web": {"version": version, "count": 2, "port": 8080, "rollout": ROLLOUT},
            "lb": {"kind": "loadbalancer", "balances": "web", "version": "1", "count": 1},
        },
    }


@dataclass
class TrafficAgent(SimAgent):
    requests: float = 0.0
    errors: float = 0.0
    last: float | None = None

    def snapshot(self, now: float | None = None, **kw: Any) -> Snapshot:
        now = time.time() if now is None else now
        snap = super().snapshot(now, **kw)
        services = dict(snap.services)
        for name, state in services.items():
            if state.state != "running":
                continue
            rps, error_rate, latency = PROFILES.get(state.version or "", (10.0, 0.0, 5.0))
            dt = 0.0 if self.last is None else max(0.0, now - self.last)
            self.requests += rps * dt
            self.errors += rps * dt * error_rate
            services[name] = replace(
                state, requests=int(self.requests), errors=int(self.errors), latency_ms=latency
            )
        self.last = now
        return replace(snap, services=services)


@dataclass
class SimFleet:
    store: Store
    master: bytes
    agents: dict[str, TrafficAgent] = field(default_factory=dict)
    silent: set[str] = field(default_factory=set)  # machines that stopped reporting
    signer: Signer | None = None

    @classmethod
    def build(cls, store: Store, master: bytes) -> SimFleet:
        fleet = cls(store, master)
        fleet.signer = operator_signer(store, master, None)  # revisions signed, as an operator's
        for name in WEB:
            fleet.agents[name] = TrafficAgent(store, master, name, eligible=("web",))
        for name in LB:
            fleet.agents[name] = TrafficAgent(store, master, name, eligible=("lb",))
        return fleet

    def apply(self, version: str, now: float, **kw: str) -> int:
        spec = from_value(spec_value(version, **kw), source="test")
        return apply(self.store, spec, now=now, signer=self.signer, message=version).revision

    def round(self, now: float | None = None) -> None:
        for name, agent in self.agents.items():
            if name in self.silent:
                continue
            agent.pull()
            agent.report(now)

    def drive(self, every: float) -> tuple[threading.Thread, threading.Event]:
        """Rounds every `every` seconds in a thread, until the event is set."""
        stop = threading.Event()

        def loop() -> None:
            while not stop.is_set():
                self.round()
                stop.wait(every)

        thread = threading.Thread(target=loop, name="simfleet", daemon=True)
        thread.start()
        return thread, stop
