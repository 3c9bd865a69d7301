"""What the controller writes about a fleet of N machines, built by its own writers.

The planner plans N reporting machines once; the memory, `control/intake.json` and
`status/cluster.json` are then written as a cycle writes them (`ControlGuard.seal` and a
conditional save, `encode_intake`, `StatusWriter.write`), without N signed reports to
verify: a 100,000-machine fleet takes seconds, not the minutes of a cold cycle.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from controller.planner import MachineObservation, Memory, Observed, plan
from controller.planner.model import Plan
from controller.shell import control_objects, records
from controller.shell.cycle import Controller
from controller.shell.encoding import Reuse, encode_intake
from controller.shell.intake_state import IntakeState, ReportRecord
from controller.spec.load import from_value
from controller.spec.revisions import apply
from wire import codec
from wire.documents import Addresses, Applied, ServiceState, Snapshot
from wire.layout import INTAKE, MEMORY, MachineId
from wire.store import Store

FENCE = 3


def spec_value(n: int) -> dict[str, object]:
    return {
        "services": {
            "db": {"version": "14", "count": 3, "port": 5432},
            "media": {"version": "3", "count": int(n * 0.4), "port": 7000},
            "router": {"version": "2", "count": max(2, min(2000, n // 50)), "port": 5060},
            "lb": {"kind": "loadbalancer", "balances": "router", "version": "1", "count": 4},
            "worker": {"version": "5", "count": int(n * 0.35)},
        }
    }


def name(i: int) -> str:
    return f"m{i:06d}"


def eligible(i: int) -> tuple[str, ...]:
    if i < 8:
        return ("lb",)
    if i < 16:
        return ("db",)
    return (("router", "media"), ("media",), ("worker",), ("worker", "media"))[i % 4]


def observe(n: int, memory: Memory, now: float) -> Observed:
    out = {}
    for i in range(n):
        m = name(i)
        mm = memory.machines.get(m)
        services = {}
        if mm is not None and mm.service is not None:
            services[mm.service] = ServiceState(
                version=mm.version, state="running", health="healthy"
            )
        snap = Snapshot(
            machine=m,
            seq=1_796_669_825_646 + i,
            sent_at=now - 1,
            boot_id=f"boot-{i}",
            agent_version="0.9.0",
            addresses=Addresses(internal=f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}"),
            eligible=eligible(i),
            services=services,
            applied=Applied(generation=mm.generation if mm else 0),
        )
        out[MachineId(m)] = MachineObservation(snap, now)
    return Observed(machines=out)


def intake_of(observed: Observed, now: float) -> IntakeState:
    reports: dict[str, ReportRecord] = {
        str(m): ReportRecord(
            etag=f'"{i:032x}"',
            seq=obs.snapshot.seq,
            accepted_etag=f'"{i:032x}"',
            accepted_at=now,
            sent_at=obs.snapshot.sent_at,
            substance=f"{i:064x}",
        )
        for i, (m, obs) in enumerate(observed.machines.items())
    }
    return IntakeState(
        fence=FENCE,
        cycle=2,
        reports=reports,
        desired={m: f'"d{i:031x}"' for i, m in enumerate(reports)},
        signed=dict.fromkeys(reports, 0),
    )


@dataclass(frozen=True)
class Written:
    n: int
    now: float
    plan: Plan
    intake: IntakeState
    sizes: dict[str, int]  # of memory, intake and the first cycle's events


def write_fleet(store: Store, master: bytes, n: int) -> Written:
    """Plan N machines and write the spec, memory, intake and status as a cycle does."""
    now = time.time()
    spec = from_value(spec_value(n))
    apply(store, spec, now=now)
    first = plan(spec, observe(n, Memory(), now), Memory(), now, fence=FENCE)
    observed = observe(n, first.memory, now)  # the machines run what they were told
    second = plan(spec, observed, first.memory, now, fence=FENCE)
    events = records.event_lines(first.events, now=now - 10, cycle=1, fence=FENCE)
    records.write_events(store, events, now=now - 10, cycle=1)
    intake = intake_of(observed, now)
    writer = Controller(store, master, holder="ctl-before-restart")
    sizes: dict[str, int] = {"events": len(events)}
    body, version = writer.guard.seal(MEMORY, codec.encode(second.memory))
    control_objects.save(store, MEMORY, body, None)
    writer.guard.saved(MEMORY, version)
    sizes[MEMORY] = len(body)
    body, version = writer.guard.seal(INTAKE, encode_intake(intake, Reuse()))
    control_objects.save(store, INTAKE, body, None)
    writer.guard.saved(INTAKE, version)
    sizes[INTAKE] = len(body)
    written: list[str] = []
    writer.status.write(
        second.status,
        observed,
        intake,
        token=FENCE,
        cycle=2,
        sections=writer.trust.status_sections(None, writer.spec_cache, second.status.spec_revision),
        rollouts=False,
        can_act=lambda: True,
        written=written,
    )
    assert written == ["status/cluster.json"], written
    return Written(n, now, second, intake, sizes)
