"""A store so slow that one cycle cannot publish every desired document before the renew
deadline (a cold start of a large fleet, or a high-latency store): the controller stops
writing at the deadline (docs/security.md#stop-on-lease-loss), and the following cycles must still make progress
until the fleet converges."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from controller.shell.cycle import Controller
from controller.shell.lease import LeaseSettings
from tests.faults.kit import MASTER, agents, memory, start_spec
from tests.unit.controller.stores import Recording
from wire.layout import DESIRED
from wire.store import DirectoryStore


class SlowClock:
    """Simulated time: every store request costs `cost` seconds."""

    def __init__(self, cost: float) -> None:
        self.t, self.cost = 1000.0, cost

    def __call__(self) -> float:
        return self.t

    def tick(self, _op: str, _key: str, _kw: dict[str, Any]) -> None:
        self.t += self.cost


def slow_controller(tmp_path: Path, n: int, cost: float) -> tuple[Recording, Controller, SlowClock]:
    store = Recording(DirectoryStore(tmp_path / "bucket"))
    start_spec(store.inner)
    for a in agents(store.inner, [f"m-{i:03d}" for i in range(n)]):
        a.report()
    clock = SlowClock(cost)
    store.faults.append(clock.tick)
    ctl = Controller(store, MASTER, holder="ctl", lease=LeaseSettings(30, 20), clock=clock)
    ctl.publish_threads = 1
    return store, ctl, clock


def test_a_cycle_cut_at_the_renew_deadline_stops_writing(tmp_path: Path) -> None:
    """Cold start of 40 machines at 0.4 s per request, and every lease renewal lost: the
    first cycle publishes only part of its plan and writes nothing after the renew deadline
    (docs/security.md#stop-on-lease-loss: no write after the deadline without a successful renew)."""
    store, ctl, _clock = slow_controller(tmp_path, 40, 0.4)
    store.faults.append(renewals_lost(store))
    report = ctl.cycle()
    written = sum(1 for _ in store.inner.list(DESIRED))
    assert 0 < written < 40, report.summary()
    assert "renew deadline" in report.note or report.failed, report.summary()


def renewals_lost(store: Recording) -> Any:
    """A fault: after the lease is first written, every lease write fails (outcome unknown)."""
    from wire.errors import StoreUnavailable
    from wire.layout import LEASE

    def fault(op: str, key: str, _kw: dict[str, Any]) -> None:
        if op == "PUT" and key == LEASE and LEASE in store.puts()[:-1]:
            raise StoreUnavailable("lease write lost")

    return fault


def test_cycles_cut_at_the_renew_deadline_still_converge(tmp_path: Path) -> None:
    """Cold start of 40 machines at 0.4 s per request (longer than the 20 s renew deadline):
    the controller renews its lease during the long cycle, and within 15 cycles every
    machine has a desired document and the memory is saved."""
    store, ctl, clock = slow_controller(tmp_path, 40, 0.4)
    for _ in range(15):
        ctl.cycle()
        clock.t += 10
    written = sum(1 for _ in store.inner.list(DESIRED))
    assert written == 40
    assert memory(store.inner) is not None
