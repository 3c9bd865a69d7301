"""A controller that cannot see acts on nothing (docs/security.md#cold-start, #wrong-key, #fail-static)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from controller.shell.cycle import Controller
from controller.shell.intake import WrongMasterKey
from controller.shell.lease import LeaseSettings
from tests.unit.controller.conftest import MASTER, Clock, agents
from tests.unit.controller.stores import Recording
from tests.unit.controller.test_cycle import open_doc, round_trip
from wire.errors import StoreUnavailable


def controller(store: Recording, key: bytes = MASTER, **kw: Any) -> Controller:
    return Controller(store, key, holder="ctl", lease=LeaseSettings(30, 20), **kw)


def _serving(store: Recording, machines: list[str]) -> dict[str, tuple[str, str | None]]:
    return {m: (open_doc(store, m).mode, open_doc(store, m).service) for m in machines}


def test_a_cold_controller_whose_report_reads_fail_loses_no_machine(spec_store: Recording) -> None:
    """A new controller (no process cache) that gets a store error on every report GET learns
    nothing about those machines: it plans nothing, writes no desired document, and the
    next cycle with working reads changes nothing either."""
    wall = Clock(2_000_000_000.0)
    fleet = agents(spec_store, n=5)
    round_trip(spec_store, controller(spec_store, wall=wall), fleet, now=wall.t)
    machines = [a.machine for a in fleet]
    before = _serving(spec_store, machines)
    assert sum(mode == "active" for mode, _ in before.values()) == 3

    def reports_unavailable(op: str, key: str, kw: dict[str, Any]) -> None:
        if op == "GET" and key.startswith("reports/"):
            raise StoreUnavailable(f"GET {key}: 503 SlowDown (injected)")

    spec_store.faults.append(reports_unavailable)
    cold = controller(spec_store, wall=wall)  # a standby taking over: empty process cache
    spec_store.reset()
    report = cold.cycle()
    assert report.unread == tuple(sorted(machines))
    assert "could not be read" in report.note and report.plan is None
    assert not [k for k in spec_store.puts() if k.startswith("desired/")]
    spec_store.faults.clear()
    spec_store.reset()
    report = cold.cycle()
    assert report.unread == () and report.plan is not None
    assert not [k for k in spec_store.puts() if k.startswith("desired/")]
    assert _serving(spec_store, machines) == before


def test_one_failed_read_of_a_lost_machine_does_not_stop_the_cycle(spec_store: Recording) -> None:
    """Only machines the plan counted live matter: an unreadable report of a machine already
    lost does not hold the cycle back."""
    wall = Clock(2_000_000_000.0)
    fleet = agents(spec_store, n=5)
    ctl = controller(spec_store, wall=wall)
    round_trip(spec_store, ctl, fleet, now=wall.t)
    ctl.cycle()
    victim = next(a for a in fleet if a.desired and a.desired.mode == "active")
    wall.t += 31
    for a in fleet:
        if a is not victim:
            a.report(now=wall.t)
    ctl.cycle()  # the victim is lost
    assert open_doc(spec_store, victim.machine).mode == "standby"
    victim.report(now=wall.t)  # it writes a report again, which cannot be read

    def victim_unavailable(op: str, key: str, kw: dict[str, Any]) -> None:
        if op == "GET" and key == f"reports/{victim.machine}.json":
            raise StoreUnavailable("injected")

    spec_store.faults.append(victim_unavailable)
    report = ctl.cycle()
    assert report.unread == () and report.plan is not None


def test_a_controller_with_another_master_key_writes_nothing_and_says_so(
    spec_store: Recording,
) -> None:
    """Every report fails its signature check: no plan, no write, a clear error (exit 2 in
    `controller once`), and the same again on the next cycle; with the right key the fleet
    is found exactly as it was."""
    wall = Clock(2_000_000_000.0)
    fleet = agents(spec_store, n=5)
    round_trip(spec_store, controller(spec_store, wall=wall), fleet, now=wall.t)
    machines = [a.machine for a in fleet]
    before = _serving(spec_store, machines)
    wrong = controller(spec_store, key=bytes(reversed(MASTER)), wall=wall)
    for _ in range(2):
        spec_store.reset()
        with pytest.raises(WrongMasterKey, match="master key is probably wrong"):
            wrong.cycle()
        assert [k for k in spec_store.puts() if k != "control/lease.json"] == []
    right = controller(spec_store, wall=wall)
    spec_store.reset()
    report = right.cycle()
    assert report.plan is not None and report.rejected == 0
    assert not [k for k in spec_store.puts() if k.startswith("desired/")]
    assert _serving(spec_store, machines) == before


def _healed(spec_store: Recording, change: Any) -> tuple[Any, Any, Any]:
    """Converge, change one active machine's document behind the controller's back, run one
    cycle: (the document before, the cycle's report, the document after)."""
    wall = Clock(2_000_000_000.0)
    fleet = agents(spec_store, n=5)
    ctl = controller(spec_store, wall=wall)
    round_trip(spec_store, ctl, fleet, now=wall.t)
    ctl.cycle()
    victim = next(a for a in fleet if a.desired and a.desired.mode == "active")
    before = open_doc(spec_store, victim.machine)
    change(victim.machine, before)
    spec_store.reset()
    report = ctl.cycle()
    return before, report, open_doc(spec_store, victim.machine)


@pytest.mark.parametrize("how", ["deleted", "tampered", "older_copy", "crash_left"])
def test_a_desired_document_not_as_last_written_is_rewritten_in_one_cycle(
    spec_store: Recording, how: str
) -> None:
    """docs/security.md#crash-windows: deleted, tampered, an older valid copy put back, or a
    newer one with other content left by a crash before the memory save: the next cycle
    rewrites the planned document, at a generation above any found, and says so."""
    from wire.documents import seal
    from wire.layout import desired_key
    from wire.signing import derive_machine_key, format_kid

    def change(machine: str, doc: Any) -> None:
        key = desired_key(machine)
        sign = derive_machine_key(MASTER, machine, 0)
        if how == "deleted":
            spec_store.inner.delete(key)
        elif how == "tampered":
            body = spec_store.inner.get(key).body  # type: ignore[union-attr]
            spec_store.inner.put(key, body.replace(b'"active"', b'"standby"'))
        elif how == "older_copy":
            old = replace(doc, generation=doc.generation - 1, mode="standby")
            spec_store.inner.put(
                key, seal(old, key=sign, kid=format_kid(machine, 0), object_key=key)
            )
        else:  # crash_left: written by us at a higher generation, memory never saved
            left = replace(
                doc,
                generation=doc.generation + 1,
                peers=replace(doc.peers, backends=()),
                mode="standby",
            )
            spec_store.inner.put(
                key, seal(left, key=sign, kid=format_kid(machine, 0), object_key=key)
            )

    before, report, after = _healed(spec_store, change)
    assert report.repaired == (before.machine,)
    assert after.mode == before.mode == "active" and after.service == before.service
    floor = before.generation + (1 if how == "crash_left" else 0)
    assert after.generation == floor + 1
    assert f"desired/{before.machine}.json" in report.written


def test_a_stale_etag_record_of_our_own_document_is_learned_not_rewritten(
    spec_store: Recording,
) -> None:
    """The same document re-put (new ETag, same bytes: a restore, a copy): nothing to repair."""

    def change(machine: str, doc: Any) -> None:
        key = f"desired/{machine}.json"
        body = spec_store.inner.get(key).body  # type: ignore[union-attr]
        spec_store.inner.delete(key)
        spec_store.inner.put(key, body)

    before, report, after = _healed(spec_store, change)
    assert report.repaired == ()
    assert after == before
    assert not [k for k in spec_store.puts() if k.startswith("desired/")]


def test_a_machine_gone_for_good_is_forgotten_by_the_operator(spec_store: Recording) -> None:
    """`bosun machines forget NAME` refuses a machine that reports and an unknown one; for a
    lost one it records a spec revision, and the next cycle deletes its desired document and
    report and drops it from memory and status."""
    from click.testing import CliRunner

    from controller.cli import cli
    from controller.operations.views import load_status
    from controller.planner.model import Memory
    from wire.layout import MEMORY, desired_key, report_key
    from wire.store import Missing, StoredObject

    wall = Clock(2_000_000_000.0)
    fleet = agents(spec_store, n=5)
    ctl = controller(spec_store, wall=wall)
    round_trip(spec_store, ctl, fleet, now=wall.t)
    ctl.cycle()
    url = spec_store.inner.url
    victim = fleet[-1]

    def forget(*names: str) -> Any:
        return CliRunner().invoke(cli, ["machines", "forget", *names, "--yes", "--store", url])

    refused = forget(victim.machine)  # it still reports
    assert refused.exit_code != 0 and "counts lost" in str(refused.exception)
    unknown = forget("web-99")
    assert unknown.exit_code != 0 and "no machine web-99" in str(unknown.exception)
    wall.t += 31
    for a in fleet[:-1]:
        a.report(now=wall.t)
    ctl.cycle()  # the victim is lost now
    assert load_status(spec_store.inner).status.machines[victim.machine].lost
    done = forget(victim.machine)
    assert done.exit_code == 0, done.output
    assert "forget " + victim.machine in done.output
    report = ctl.cycle()
    assert report.forgotten == (victim.machine,)
    assert isinstance(spec_store.inner.get(desired_key(victim.machine)), Missing)
    assert isinstance(spec_store.inner.get(report_key(victim.machine)), Missing)
    got = spec_store.inner.get(MEMORY)
    assert isinstance(got, StoredObject)
    assert victim.machine not in Memory.from_json(got.body).machines
    assert victim.machine not in load_status(spec_store.inner).status.machines
    spec_store.reset()
    again = ctl.cycle()  # nothing left to forget or write
    assert again.forgotten == () and not [k for k in spec_store.puts() if k.startswith("desired/")]
    victim.report(now=wall.t)  # it was not dead after all: a machine again
    ctl.cycle()
    assert victim.machine in load_status(spec_store.inner).status.machines
