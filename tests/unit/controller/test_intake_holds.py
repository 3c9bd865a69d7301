"""What intake keeps between and within cycles: one copy of values many machines report,
the signed bytes only of snapshots to archive, last cycle's observations for unchanged
machines, and the records in machine order."""

from __future__ import annotations

from controller.shell.intake import in_order
from tests.unit.controller.conftest import agents, controller
from tests.unit.controller.stores import Recording


def test_equal_eligible_lists_are_one_object(spec_store: Recording) -> None:
    """Machines reporting the same `eligible` list share one tuple (and its strings)."""
    fleet = agents(spec_store)
    for a in fleet:
        a.report()
    ctl = controller(spec_store)
    ctl.cycle()
    lists = [snap.eligible for _, snap in ctl.cache.entries.values()]
    assert len(lists) == 4 and lists[0] == ("web", "lb")
    assert all(e is lists[0] for e in lists)


def test_a_heartbeat_keeps_no_signed_bytes_and_unchanged_machines_keep_their_observation(
    spec_store: Recording,
) -> None:
    """A report that changed only liveness fields is accepted without its bytes (nothing to
    archive), says so (`liveness_only`), and the other machines' observations are the very
    objects of the cycle before."""
    fleet = agents(spec_store)
    for a in fleet:
        a.report()
    ctl = controller(spec_store)
    ctl.cycle()
    state = ctl.control_cache["control/intake.json"][1]
    before = ctl.intake.collect(state, fleet[0].seq / 1000, 300.0)
    fleet[0].report()
    got = ctl.intake.collect(before.state, fleet[0].seq / 1000, 300.0)
    assert [a.machine for a in got.accepted] == ["web-0"]
    assert got.accepted[0].raw == b"" and not got.accepted[0].substantive
    assert got.liveness_only
    for m in ("web-1", "web-2", "web-3"):
        assert got.observed.machines[m] is before.observed.machines[m]  # type: ignore[index]
    assert got.observed.machines["web-0"] is not before.observed.machines["web-0"]  # type: ignore[index]
    assert list(got.state.reports) == sorted(got.state.reports)


def test_a_new_machine_is_not_liveness_only_and_is_placed_in_order(spec_store: Recording) -> None:
    """A machine seen for the first time is news; the records stay sorted by machine."""
    fleet = agents(spec_store, n=3)
    for a in fleet[1:]:
        a.report()
    ctl = controller(spec_store)
    ctl.cycle()
    state = ctl.control_cache["control/intake.json"][1]
    fleet[0].report()
    got = ctl.intake.collect(state, fleet[0].seq / 1000, 300.0)
    assert not got.liveness_only and got.accepted[0].raw
    assert list(got.state.reports) == ["web-0", "web-1", "web-2"]
    assert list(got.observed.machines) == ["web-0", "web-1", "web-2"]


def test_in_order() -> None:
    """Sorted keys, and not."""
    assert in_order({}) and in_order({"a": 1}) and in_order({"a": 1, "b": 2})
    assert not in_order({"b": 1, "a": 2})
