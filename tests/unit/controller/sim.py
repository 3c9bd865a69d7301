"""Simulated agents for controller tests: sign snapshots with the machine key, apply desired.

Not the real agent (that lives in `agent/`): just enough of its wire behaviour to drive the
controller: seq = max(last + 1, unix ms), the applied generation follows the last desired
document that verifies, and services are reported as the real agent reports them
(tests/integration/agent/test_agent_conformance.py checks it against a real `bosun-agent`):

    every service it is eligible for (the agent reports every configured one)
    the desired service in active, canary, shadow, draining: running, healthy (or
        unhealthy), the desired version
    the desired service in standby: stopped, health unknown, the desired version (the
        process driver stops the process; nothing is probed)
    any other service, deactivated, or no document yet: stopped, unknown, no version
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass, field, replace
from typing import Any

from agent.config import RUNNING_MODES
from wire.documents import (
    Addresses,
    Applied,
    Desired,
    ServiceState,
    Snapshot,
    open_desired,
    seal,
)
from wire.errors import BosunError
from wire.layout import desired_key, report_key
from wire.signing import derive_machine_key, format_kid
from wire.store import Store, StoredObject

SPEC_YAML = """
settings:
  heartbeat_timeout: 30s
  desired_lifetime: 1h
  skew_window: 5m
  controller_interval: 10s
services:
  web:
    version: "1.0"
    count: 2
    port: 8080
  lb:
    kind: loadbalancer
    balances: web
    version: "2.0"
    count: 1
    port: 80
"""


@dataclass
class SimAgent:
    store: Store
    master: bytes
    machine: str
    eligible: tuple[str, ...] = ("web",)
    epoch: int = 0
    seq: int = 0
    desired: Desired | None = None
    healthy: bool = True
    probe: bool = True  # False: no health probe configured, running services report unknown
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> bytes:
        return derive_machine_key(self.master, self.machine, self.epoch)

    def snapshot(self, now: float | None = None, **kw: Any) -> Snapshot:
        now = time.time() if now is None else now
        self.seq = max(self.seq + 1, int(now * 1000))
        services = {
            name: ServiceState(version=None, state="stopped", health="unknown", port=8080)
            for name in self.eligible
        }
        applied = Applied()
        d = self.desired
        if d is not None:
            applied = Applied(
                generation=d.generation, fence=d.fence, digest="x", result="ok", at=d.issued_at
            )
            if d.service and d.mode in RUNNING_MODES:
                services[d.service] = ServiceState(
                    version=d.version,
                    state="running",
                    health=("healthy" if self.healthy else "unhealthy")
                    if self.probe
                    else "unknown",
                    port=8080,
                )
            elif d.service and d.mode == "standby":
                services[d.service] = ServiceState(
                    version=d.version, state="stopped", health="unknown", port=8080
                )
        base = Snapshot(
            machine=self.machine,
            seq=self.seq,
            sent_at=now,
            boot_id="boot-1",
            agent_version="sim",
            addresses=Addresses(internal=f"10.0.0.{zlib.crc32(self.machine.encode()) % 250 + 1}"),
            eligible=self.eligible,
            services=services,
            applied=applied,
        )
        return replace(base, **{**self.extra, **kw})

    def sealed(self, snap: Snapshot) -> bytes:
        return seal(
            snap,
            key=self.key,
            kid=format_kid(self.machine, self.epoch),
            object_key=report_key(self.machine),
        )

    def report(self, now: float | None = None, **kw: Any) -> bytes:
        raw = self.sealed(self.snapshot(now, **kw))
        self.store.put(report_key(self.machine), raw)
        return raw

    def pull(self) -> Desired | None:
        got = self.store.get(desired_key(self.machine))
        if isinstance(got, StoredObject):
            kid = format_kid(self.machine, self.epoch)
            try:
                _env, doc = open_desired(
                    got.body, desired_key(self.machine), lambda k: self.key if k == kid else None
                )
            except BosunError:
                return self.desired
            if self.desired is None or doc.generation > self.desired.generation:
                self.desired = doc
        return self.desired
