"""Snapshot acceptance by the controller (docs/security.md#snapshot-replay, #hostile-input): replay, binding, hostile input."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from controller.shell.cycle import Controller
from controller.shell.intake_state import IntakeState
from controller.shell.key_epochs import bump_epoch
from controller.shell.lease import LeaseSettings
from tests.unit.controller.conftest import MASTER, agents
from tests.unit.controller.sim import SimAgent
from tests.unit.controller.stores import Recording
from wire.documents import MAX_DOCUMENT_BYTES
from wire.layout import INTAKE, STATUS_CLUSTER, report_key
from wire.store import StoredObject


def controller(store: Recording, **kw: Any) -> Controller:
    return Controller(store, MASTER, holder="ctl", lease=LeaseSettings(30, 20), **kw)


def status(store: Recording) -> dict[str, Any]:
    got = store.inner.get(STATUS_CLUSTER)
    assert isinstance(got, StoredObject)
    value: dict[str, Any] = orjson.loads(got.body)
    return value


def intake(store: Recording) -> IntakeState:
    got = store.inner.get(INTAKE)
    assert isinstance(got, StoredObject)
    return IntakeState.from_json(got.body)


def settled(store: Recording) -> tuple[Controller, list[SimAgent]]:
    fleet = agents(store)
    for a in fleet:
        a.report()
    ctl = controller(store)
    assert ctl.cycle().accepted == 4
    return ctl, fleet


def put_report(store: Recording, machine: str, raw: bytes) -> None:
    store.inner.put(report_key(machine), raw)


def mutated(raw: bytes, i: int) -> bytes:
    b = bytearray(raw)
    b[i] = ord("A") if b[i] != ord("A") else ord("B")
    return bytes(b)


def test_a_valid_snapshot_is_accepted_and_observed(spec_store: Recording) -> None:
    """A correctly signed, fresh snapshot is accepted and its seq becomes the high-water mark."""
    _ctl, fleet = settled(spec_store)
    assert intake(spec_store).reports["web-0"].seq == fleet[0].seq
    assert status(spec_store)["rejected"] == {}


@pytest.mark.parametrize("where", ["sig", "body", "kid", "truncate", "append", "empty-sig"])
def test_tampered_snapshots_are_rejected_and_counted(spec_store: Recording, where: str) -> None:
    """Any change to a signed snapshot is refused, counted, an event, and shown in status (docs/security.md#snapshot-replay, #hostile-input)."""
    ctl, fleet = settled(spec_store)
    raw = fleet[1].sealed(fleet[1].snapshot(eligible=("web",), status="stopping"))
    text = raw.decode()
    bad = {
        "sig": lambda: mutated(raw, text.index('"sig": "') + 10),
        "body": lambda: text.replace('"stopping"', '"running"').encode(),
        "kid": lambda: text.replace('"web-1@0"', '"web-2@0"').encode(),
        "truncate": lambda: raw[: len(raw) // 2],
        "append": lambda: raw + b"{}",
        "empty-sig": lambda: orjson.dumps({**orjson.loads(raw), "sig": ""}),
    }[where]()
    put_report(spec_store, "web-1", bad)
    before = intake(spec_store).reports["web-1"]
    machine_before = {
        k: v for k, v in status(spec_store)["machines"]["web-1"].items() if k != "age"
    }
    report = ctl.cycle()
    assert report.rejected == 1 and report.accepted == 0
    after = intake(spec_store).reports["web-1"]
    assert after.seq == before.seq and after.accepted_etag == before.accepted_etag
    st = status(spec_store)
    assert sum(st["rejected"]["web-1"]["counts"].values()) == 1
    machine_after = {k: v for k, v in st["machines"]["web-1"].items() if k != "age"}
    assert machine_after == machine_before  # nothing else about that machine changed


def test_another_machines_snapshot_copied_is_a_binding_refusal(spec_store: Recording) -> None:
    """Machine A's valid snapshot placed at reports/B.json is refused (docs/security.md#snapshot-replay)."""
    ctl, fleet = settled(spec_store)
    put_report(spec_store, "web-2", fleet[1].sealed(fleet[1].snapshot()))
    ctl.cycle()
    assert status(spec_store)["rejected"]["web-2"]["counts"] == {"binding": 1}


def test_body_naming_another_machine_is_refused(spec_store: Recording) -> None:
    """A snapshot signed with A's key whose body names B is refused at A's key (docs/security.md#snapshot-replay)."""
    ctl, fleet = settled(spec_store)
    put_report(spec_store, "web-1", fleet[1].sealed(fleet[1].snapshot(machine="web-3")))
    ctl.cycle()
    assert status(spec_store)["rejected"]["web-1"]["counts"] == {"binding": 1}


def test_replayed_and_restored_old_snapshots_are_refused(spec_store: Recording) -> None:
    """An old snapshot restored (a noncurrent version) is ignored, also by a new controller process (docs/security.md#snapshot-replay)."""
    ctl, fleet = settled(spec_store)
    old = spec_store.inner.get(report_key("web-0"))
    assert isinstance(old, StoredObject)
    fleet[0].report()
    assert ctl.cycle().accepted == 1
    put_report(spec_store, "web-0", old.body + b" ")  # same seq, new ETag
    assert ctl.cycle().rejected == 1
    put_report(spec_store, "web-0", fleet[0].sealed(fleet[0].snapshot(seq=5)))  # far lower seq
    fresh = controller(spec_store)  # a restarted controller remembers through intake.json
    assert fresh.cycle().rejected == 1
    assert status(spec_store)["rejected"]["web-0"]["counts"] == {"replayed_seq": 2}


def test_snapshot_outside_the_skew_window_is_refused(spec_store: Recording) -> None:
    """sent_at too far from controller time (either way) is refused with the fix named (docs/security.md#snapshot-replay)."""
    ctl, fleet = settled(spec_store)
    fleet[0].report(now=time.time() + 3600)
    fleet[1].report(now=time.time() - 3600)
    assert ctl.cycle().rejected == 2
    st = status(spec_store)
    assert st["rejected"]["web-0"]["counts"] == {"clock_skew": 1}
    assert "NTP" in st["rejected"]["web-1"]["last"]["detail"]


def test_revoked_key_is_refused_without_trying_others(spec_store: Recording) -> None:
    """After `bosun revoke` the old epoch's kid is unknown; the new epoch verifies."""
    ctl, fleet = settled(spec_store)
    assert bump_epoch(spec_store.inner, MASTER, "web-3") == 1
    fleet[3].report()
    assert ctl.cycle().rejected == 1
    assert status(spec_store)["rejected"]["web-3"]["counts"] == {"unknown_kid": 1}
    fleet[3].epoch = 1
    fleet[3].report()
    assert ctl.cycle().accepted == 1


def test_hostile_inputs_are_refused_and_others_still_processed(spec_store: Recording) -> None:
    """Oversized, non-JSON, deep or huge-list snapshots are refused; the good ones are accepted (docs/security.md#hostile-input)."""
    ctl, fleet = settled(spec_store)
    put_report(spec_store, "web-0", b"{" * 10 + b"x" * (MAX_DOCUMENT_BYTES + 10))
    put_report(spec_store, "web-1", b"\xff\xfe not json")
    deep: Any = {}
    for _ in range(200):
        deep = {"a": deep}
    raw = orjson.loads(fleet[2].sealed(fleet[2].snapshot()))
    raw["body"]["capacity"] = deep
    put_report(spec_store, "web-2", orjson.dumps(raw))
    fleet[3].report()
    report = ctl.cycle()
    assert (report.rejected, report.accepted) == (3, 1)
    counts = status(spec_store)["rejected"]
    assert counts["web-0"]["counts"] == {"too_large": 1}
    assert counts["web-1"]["counts"] == {"invalid_document": 1}
    assert list(counts["web-2"]["counts"]) in (["invalid_document"], ["bad_signature"])


def test_a_refused_object_is_neither_refetched_nor_counted_twice(spec_store: Recording) -> None:
    """An unchanged bad object costs one GET and one count, not one per cycle."""
    ctl, _fleet = settled(spec_store)
    put_report(spec_store, "web-1", b"garbage")
    ctl.cycle()
    spec_store.reset()
    ctl.cycle()
    assert ("GET", "reports/web-1.json") not in spec_store.calls
    assert status(spec_store)["rejected"]["web-1"]["counts"] == {"invalid_document": 1}


def test_agent_refusal_counters_are_surfaced_in_status(spec_store: Recording) -> None:
    """What agents refused (their counters and last reason) shows in status/cluster.json (docs/security.md#attack-reporting)."""
    from wire.documents import Refusal

    ctl, fleet = settled(spec_store)
    fleet[2].report(
        refusals={"bad_signature": 3},
        last_refusal=Refusal("bad_signature", "desired/web-2.json mutated", 1.0),
        verify_failures=3,
    )
    ctl.cycle()
    got = status(spec_store)["agent_refusals"]["web-2"]
    assert got["counts"] == {"bad_signature": 3} and got["last"]["reason"] == "bad_signature"
    assert got["verify_failures"] == 3


def test_objects_naming_no_machine_are_refused_once_and_shown(spec_store: Recording) -> None:
    """A report at a key that is no machine id is an event once per version and listed in status (docs/security.md#hostile-input)."""
    ctl, _fleet = settled(spec_store)
    spec_store.inner.put("reports/..evil.json", b"{}")
    spec_store.inner.put("reports/UPPER.json", b"{}")
    ctl.cycle()
    assert status(spec_store)["foreign_reports"] == ["reports/..evil.json", "reports/UPPER.json"]
    spec_store.reset()
    ctl.cycle()
    assert spec_store.puts() == ["control/lease.json"]  # not counted again
