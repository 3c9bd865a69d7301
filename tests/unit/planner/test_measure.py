"""Gate measurement from cumulative counters, across service restarts."""

from __future__ import annotations

import pytest

from controller.planner.measure import cohort, sticky_marks
from controller.planner.model import MachineObservation, Mark
from wire.documents import ServiceState, Snapshot


def live(requests: int, errors: int) -> dict[str, MachineObservation]:
    snap = Snapshot(
        machine="web-1",
        seq=1,
        sent_at=0.0,
        boot_id="b",
        agent_version="t",
        services={"web": ServiceState(version="2", requests=requests, errors=errors)},
    )
    return {"web-1": MachineObservation(snap, 0.0)}


def rate(requests: int, errors: int, mark: Mark) -> float:
    c = cohort(["web-1"], live(requests, errors), {"web-1": mark}, "web")
    return c.errors / c.requests


def test_deltas_since_the_mark() -> None:
    """Without a restart, the window is current minus mark."""
    assert rate(600, 30, Mark(500, 0)) == pytest.approx(0.3)


def test_more_new_errors_than_new_requests_is_a_restart() -> None:
    """A restart whose new counters passed the old mark is still seen when the deltas are
    impossible (180 new errors for 100 new requests): both count from zero."""
    assert rate(600, 180, Mark(500, 0)) == pytest.approx(0.3)


def test_a_reset_seen_once_sticks() -> None:
    """Counters below the mark move it to (0, 0), so later cycles count from the restart."""
    marks = sticky_marks(["web-1"], live(5, 1), {"web-1": Mark(20, 0)}, "web")
    assert marks["web-1"] == Mark(0, 0)
    assert rate(40, 12, marks["web-1"]) == pytest.approx(0.3)
    assert sticky_marks(["web-1"], live(40, 12), marks, "web")["web-1"] == Mark(0, 0)


def test_marks_of_machines_without_reset_are_kept() -> None:
    """A healthy counter keeps its mark."""
    marks = sticky_marks(["web-1"], live(600, 30), {"web-1": Mark(500, 0)}, "web")
    assert marks["web-1"] == Mark(500, 0)
