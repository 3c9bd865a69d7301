"""Heartbeats alone (new seq and sent_at, the same substance) rewrite status/cluster.json and
control/intake.json at most once per `heartbeats_every`; anything else is written in the
cycle it happens; a restarted controller loses nothing it needs and demotes no one
(docs/controller.md#heartbeats-between-writes)."""

from __future__ import annotations

from pathlib import Path

from controller.shell.cycle import Controller, heartbeats_every
from controller.shell.intake_state import IntakeState
from controller.shell.lease import LeaseSettings
from controller.spec.model import Settings
from controller.status_document import ClusterStatus
from tests.unit.controller.conftest import MASTER, Clock, on_a_clock
from tests.unit.controller.sim import SimAgent
from tests.unit.controller.stores import Recording
from wire.layout import INTAKE, STATUS_CLUSTER
from wire.store import StoredObject

EVERY = 7.5  # SPEC_YAML's heartbeat_timeout (30 s) / 4


def settled(root: Path) -> tuple[Recording, Clock, Controller, list[SimAgent]]:
    """Four machines placed and running what they were told; nothing left to write."""
    store, clock, ctl, fleet = on_a_clock(root)
    for _ in range(4):
        clock.t += 1
        for a in fleet:
            a.pull()
            a.report(now=clock.t)
        ctl.cycle()
    return store, clock, ctl, fleet


def beat(store: Recording, clock: Clock, ctl: Controller, fleet: list[SimAgent]) -> set[str]:
    """One second later, machine 0 heartbeats and a cycle runs: the objects it wrote."""
    clock.t += 1
    fleet[0].report(now=clock.t)
    store.reset()
    report = ctl.cycle()
    assert report.accepted == 1 and not report.failed
    return set(store.puts())


def intake_seq(store: Recording, machine: str) -> int:
    got = store.inner.get(INTAKE, max_bytes=1 << 30)
    assert isinstance(got, StoredObject)
    return IntakeState.from_json(got.body).reports[machine].seq


def status_seen(store: Recording, machine: str) -> int:
    got = store.inner.get(STATUS_CLUSTER, max_bytes=1 << 30)
    assert isinstance(got, StoredObject)
    return ClusterStatus.from_json(got.body, where=STATUS_CLUSTER).seen[machine].seq


def test_the_interval_is_a_quarter_of_the_heartbeat_timeout_at_most_a_minute() -> None:
    """A reader judging staleness from `seen` sees a machine at most a quarter of its
    liveness window older than it is."""
    assert heartbeats_every(Settings(heartbeat_timeout=30)) == EVERY
    assert heartbeats_every(Settings(heartbeat_timeout=3600)) == 60.0


def test_heartbeats_wait_for_the_interval_then_both_objects_are_written(tmp_path: Path) -> None:
    """Within the interval a heartbeat writes neither object; the first cycle past it
    writes both, showing the latest seq; a quiet cycle after writes nothing."""
    store, clock, ctl, fleet = settled(tmp_path)
    clock.t += EVERY  # the last writes are now an interval old
    assert {STATUS_CLUSTER, INTAKE} <= beat(store, clock, ctl, fleet)
    first = fleet[0].seq
    wrote = [beat(store, clock, ctl, fleet) for _ in range(5)]  # 5 s: within the interval
    assert all(STATUS_CLUSTER not in w and INTAKE not in w for w in wrote), wrote
    assert intake_seq(store, "web-0") == first and status_seen(store, "web-0") == first
    clock.t += EVERY
    assert {STATUS_CLUSTER, INTAKE} <= beat(store, clock, ctl, fleet)
    assert intake_seq(store, "web-0") == fleet[0].seq == status_seen(store, "web-0")
    store.reset()
    ctl.cycle()
    assert store.puts() == ["control/lease.json"]


def test_pending_heartbeats_are_saved_by_a_quiet_cycle_past_the_interval(tmp_path: Path) -> None:
    """Heartbeats waiting when the fleet goes quiet are saved once the interval passes,
    without a new report."""
    store, clock, ctl, fleet = settled(tmp_path)
    clock.t += EVERY
    beat(store, clock, ctl, fleet)
    assert INTAKE not in beat(store, clock, ctl, fleet)
    clock.t += EVERY
    store.reset()
    ctl.cycle()
    assert INTAKE in store.puts()
    assert intake_seq(store, "web-0") == fleet[0].seq


def test_anything_but_a_heartbeat_is_written_in_its_cycle(tmp_path: Path) -> None:
    """A health change (substance) and a refused report are written at once, with the
    heartbeats waiting before them."""
    store, clock, ctl, fleet = settled(tmp_path)
    clock.t += EVERY
    beat(store, clock, ctl, fleet)
    beat(store, clock, ctl, fleet)  # waits
    clock.t += 1
    fleet[1].healthy = False
    fleet[1].report(now=clock.t)
    store.reset()
    ctl.cycle()
    assert {STATUS_CLUSTER, INTAKE} <= set(store.puts())
    assert intake_seq(store, "web-0") == fleet[0].seq == status_seen(store, "web-0")
    beat(store, clock, ctl, fleet)  # waits again
    clock.t += 1
    fleet[2].report(now=clock.t - 7200)  # clock skew: refused
    store.reset()
    ctl.cycle()
    assert {STATUS_CLUSTER, INTAKE} <= set(store.puts())
    assert intake_seq(store, "web-0") == fleet[0].seq


def test_a_restarted_controller_takes_the_waiting_heartbeats_from_the_bucket(
    tmp_path: Path,
) -> None:
    """A controller that crashed with heartbeats unsaved: the next one reads the reports
    whose ETag differs from the saved records, accepts them (their seq is above the saved
    one), and plans nothing new: no machine demoted, no document rewritten."""
    store, clock, ctl, fleet = settled(tmp_path)
    clock.t += EVERY
    beat(store, clock, ctl, fleet)
    for _ in range(3):
        beat(store, clock, ctl, fleet)  # waiting, then the process dies
    assert intake_seq(store, "web-0") < fleet[0].seq
    clock.t += 1
    after = Controller(
        store, MASTER, holder="ctl", lease=LeaseSettings(300, 200), wall=clock
    )  # the same holder: it takes its own lease back at once
    store.reset()
    report = after.cycle()
    assert report.plan is not None and not report.plan.writes
    assert not [k for k in store.puts() if k.startswith("desired/")]
    machines = report.plan.status.machines
    assert all(not machines[a.machine].lost for a in fleet)
    assert intake_seq(store, "web-0") == fleet[0].seq  # saved: a new process saves at once


def test_a_clean_stop_saves_the_waiting_heartbeats(tmp_path: Path) -> None:
    """`flush` (the daemon's last act before releasing the lease) saves them."""
    store, clock, ctl, fleet = settled(tmp_path)
    clock.t += EVERY
    beat(store, clock, ctl, fleet)
    beat(store, clock, ctl, fleet)
    assert intake_seq(store, "web-0") < fleet[0].seq
    ctl.flush()
    assert intake_seq(store, "web-0") == fleet[0].seq
    store.reset()
    ctl.flush()  # nothing waiting: nothing written
    assert store.puts() == []
    clock.t += 1
    fleet[0].report(now=clock.t)
    store.reset()
    ctl.cycle()  # the saved state is the one the next cycle starts from
    assert "control/lease.json" in store.puts()
