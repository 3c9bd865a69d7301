"""Key builders and machine-id validation."""

from __future__ import annotations

import pytest

from wire import layout
from wire.errors import InvalidMachineId


@pytest.mark.parametrize("good", ["web-1", "a", "0", "db.eu-west_2", "x" * 63])
def test_valid_machine_ids_are_accepted(good: str) -> None:
    """Ids matching the pattern pass unchanged."""
    assert layout.machine_id(good) == good


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "..",
        "a/b",
        "/etc",
        "Web-1",
        "-web",
        ".hidden",
        "a..b",
        "x" * 64,
        "é",
        "web 1",
        "a\x00",
        "../x",
    ],
)
def test_invalid_machine_ids_are_refused_with_a_clear_error(bad: str) -> None:
    """Path-like, empty, upper-case, too long and non-ASCII ids are refused, naming the rule."""
    with pytest.raises(InvalidMachineId, match="invalid machine id"):
        layout.machine_id(bad)


def test_non_string_machine_id_is_refused() -> None:
    """A number is not an id."""
    with pytest.raises(InvalidMachineId, match="must be a string"):
        layout.machine_id(7)


def test_every_key_of_the_architecture_is_built() -> None:
    """Each key in ARCHITECTURE.md has a builder producing exactly that shape."""
    assert layout.report_key("web-1") == "reports/web-1.json"
    assert layout.desired_key("web-1") == "desired/web-1.json"
    assert layout.history_key("web-1", 42) == "history/web-1/0000000000000042.json"
    assert layout.spec_history_key(3) == "spec/history/00000003.json"
    assert layout.rollout_status_key("router") == "status/rollouts/router.json"
    assert layout.events_key(2026, 1, 2, "030405", 7) == "events/2026/01/02/030405-0000000007.jsonl"
    assert (layout.SPEC_CURRENT, layout.STATUS_CLUSTER, layout.LEASE, layout.MEMORY) == (
        "spec/current.json",
        "status/cluster.json",
        "control/lease.json",
        "control/memory.json",
    )


def test_history_keys_sort_in_seq_order() -> None:
    """Zero padding makes lexicographic listing order equal numeric order."""
    keys = [layout.history_key("m", s) for s in (9, 10, 1_700_000_000_000, 2)]
    assert sorted(keys) == [layout.history_key("m", s) for s in (2, 9, 10, 1_700_000_000_000)]


@pytest.mark.parametrize("builder", [layout.report_key, layout.desired_key, layout.history_prefix])
def test_key_builders_refuse_traversal(builder: object) -> None:
    """No builder lets '..' or '/' into a key."""
    with pytest.raises(InvalidMachineId):
        builder("../control/lease")  # type: ignore[operator]


def test_machine_from_key_round_trips_and_refuses_others() -> None:
    """The machine is taken from the key; other shapes are refused."""
    assert layout.machine_from_key("reports/web-1.json", layout.REPORTS) == "web-1"
    for bad in ("reports/web-1.txt", "desired/web-1.json", "reports/../x.json", "reports/a/b.json"):
        with pytest.raises(InvalidMachineId):
            layout.machine_from_key(bad, layout.REPORTS)
