"""A rolling upgrade to ISO 8601 times (docs/agent.md#times-in-documents).

Older agents decode desired documents strictly and refuse a string where they expect a
number; older controllers refuse such a snapshot. So the controller writes a machine's
desired document with ISO times only once that machine's agent says (its version) it reads
them, and an agent writes ISO times only once the desired document it holds has them.
Documents written before all this (numbers) are read by every reader.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from click.testing import CliRunner

from agent import __version__
from controller.cli import cli
from controller.shell.cycle import Controller
from controller.shell.lease import LeaseSettings
from controller.status_document import ClusterStatus
from tests.unit.agent.kit import Machine, desired, make_agent, publish
from tests.unit.controller.conftest import MASTER
from tests.unit.controller.sim import SimAgent
from tests.unit.controller.stores import Recording
from wire import codec
from wire.control import open_control, seal_control
from wire.documents import Desired, Snapshot, seal
from wire.layout import (
    EVENTS,
    INTAKE,
    LEASE,
    MEMORY,
    SPEC_CURRENT,
    STATUS_CLUSTER,
    desired_key,
    report_key,
)
from wire.signing import derive_control_key, format_kid
from wire.store import DirectoryStore, StoredObject

DESIRED_TIMES = ("issued_at", "expires_at")


@dataclass
class OldAgent(SimAgent):
    """An agent from before ISO times: version 0.1.0, numbers in its snapshots, and its
    strict decoder refuses a desired document whose times are strings."""

    refused: int = 0

    def sealed(self, snap: Snapshot) -> bytes:
        return seal(
            snap,
            key=self.key,
            kid=format_kid(self.machine, self.epoch),
            object_key=report_key(self.machine),
            times="epoch",
        )

    def pull(self) -> Desired | None:
        got = self.store.get(desired_key(self.machine))
        if isinstance(got, StoredObject):
            body = orjson.loads(got.body)["body"]
            if not all(isinstance(body[k], int | float) for k in DESIRED_TIMES):
                self.refused += 1  # "expected number, got string": nothing applied
                return self.desired
        return super().pull()


def body(store: DirectoryStore, key: str) -> dict[str, Any]:
    got = store.get(key, max_bytes=64 * 1024 * 1024)
    assert isinstance(got, StoredObject), key
    value: dict[str, Any] = orjson.loads(got.body)
    return value


def test_a_mixed_fleet_converges_each_agent_reading_its_own_times(spec_store: Recording) -> None:
    """A new controller over one older and two newer agents: the older one gets numbers
    (and never refuses a document), the newer ones ISO times; every machine runs what it
    was told; the bucket's controller documents carry ISO times."""
    store = spec_store.inner
    old = OldAgent(store, MASTER, "web-0", eligible=("web", "lb"), extra={"agent_version": "0.1.0"})
    new = [
        SimAgent(store, MASTER, f"web-{i}", eligible=("web", "lb"),
                 extra={"agent_version": __version__})
        for i in (1, 2)
    ]  # fmt: skip
    fleet: list[SimAgent] = [old, *new]
    ctl = Controller(spec_store, MASTER, holder="ctl", lease=LeaseSettings(30, 20))
    for _ in range(4):
        ctl.cycle()
        for a in fleet:
            a.pull()
            a.report()
    ctl.cycle()
    assert old.refused == 0
    old_doc = body(store, desired_key("web-0"))["body"]
    assert all(isinstance(old_doc[k], float) for k in DESIRED_TIMES), old_doc
    for a in new:
        doc = body(store, desired_key(a.machine))["body"]
        assert all(isinstance(doc[k], str) and doc[k].endswith("Z") for k in DESIRED_TIMES), doc
    status = ClusterStatus.from_json(orjson.dumps(body(store, STATUS_CLUSTER)), where="status")
    for a in fleet:
        m = status.status.machines[a.machine]
        assert a.desired is not None and m.applied_generation == a.desired.generation > 0, m
    assert status.status.services["web"].healthy == 2 and status.status.services["lb"].healthy == 1
    raw = body(store, STATUS_CLUSTER)
    assert isinstance(raw["at"], str) and isinstance(raw["seen"]["web-0"]["sent_at"], str)
    assert isinstance(body(store, SPEC_CURRENT)["applied_at"], str)
    lease = body(store, LEASE)["body"]["value"]
    assert lease["renewed_at"].endswith("Z")


def test_the_real_agent_writes_iso_times_once_its_desired_document_has_them(
    tmp_path: Path,
) -> None:
    """While the desired document it holds has numbers (an older controller, or a new one
    that does not know the agent yet), the agent's snapshot has numbers; from the first
    document with ISO times on, the snapshot has them too."""
    store = DirectoryStore(tmp_path / "bucket")
    m = Machine(tmp_path / "m", store.url, name="web-1", services={"web": {"port": 8080}}).write()
    agent = make_agent(m, store)
    assert agent.cycle(force_report=True).ok
    first = body(store, report_key("web-1"))["body"]
    assert isinstance(first["sent_at"], float), first  # nothing held yet: numbers
    publish(store, desired("web-1", 5), times="epoch")
    assert agent.cycle(force_report=True).ok
    snap = body(store, report_key("web-1"))["body"]
    assert isinstance(snap["sent_at"], float) and isinstance(snap["applied"]["at"], float), snap
    assert snap["agent_version"] == __version__
    publish(store, desired("web-1", 6))
    assert agent.cycle(force_report=True).ok
    snap = body(store, report_key("web-1"))["body"]
    assert snap["applied"]["generation"] == 6
    assert snap["sent_at"].endswith("Z") and snap["applied"]["at"].endswith("Z"), snap


def rewrite_with_numbers(store: DirectoryStore) -> None:
    """Every controller-written object as a controller from before ISO times wrote it."""
    status = ClusterStatus.from_json(orjson.dumps(body(store, STATUS_CLUSTER)), where="s")
    value = codec.encode(status.status, times="epoch")
    for name in ("controller", "rejected", "agent_refusals", "seen", "control_refused"):
        value[name] = codec.encode(getattr(status, name), times="epoch")
    store.put(STATUS_CLUSTER, orjson.dumps(value))
    control = derive_control_key(MASTER)
    for key in (MEMORY, INTAKE, LEASE):
        got = store.get(key, max_bytes=64 * 1024 * 1024)
        assert isinstance(got, StoredObject)
        sealed = open_control(got.body, key, control)
        plain = _numbers(sealed.value)
        store.put(
            key, seal_control(control, key, plain, version=sealed.version, marks=sealed.marks)
        )
    spec = body(store, SPEC_CURRENT)
    spec["applied_at"] = _seconds(spec["applied_at"])
    store.put(SPEC_CURRENT, orjson.dumps(spec))
    for info in store.list(EVENTS):
        got = store.get(info.key)
        assert isinstance(got, StoredObject)
        lines = [orjson.loads(line) for line in got.body.splitlines()]
        store.put(info.key, b"\n".join(orjson.dumps({**e, "t": _seconds(e["t"])}) for e in lines))


def _seconds(text: str) -> float:
    from wire.times import parse_time

    return parse_time(text, "test")


def _numbers(value: Any) -> Any:
    """Every ISO time inside `value` as Unix seconds."""
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    if isinstance(value, str) and len(value) == 24 and value.endswith("Z") and value[10] == "T":
        return _seconds(value)
    return value


def test_documents_written_before_iso_times_are_read(spec_store: Recording) -> None:
    """A bucket whose status, memory, intake, lease, spec and events carry numbers (an
    older controller's) is read by the new controller, which carries on, and by `bosun`."""
    store = spec_store.inner
    fleet = [SimAgent(store, MASTER, f"web-{i}", eligible=("web", "lb")) for i in range(3)]
    ctl = Controller(spec_store, MASTER, holder="ctl", lease=LeaseSettings(30, 20))
    for _ in range(3):
        ctl.cycle()
        for a in fleet:
            a.pull()
            a.report()
    ctl.cycle()
    rewrite_with_numbers(store)
    assert isinstance(body(store, STATUS_CLUSTER)["at"], float)
    runner = CliRunner()
    for args in (["status"], ["machines"], ["events", "--since", "1h"], ["spec", "show"]):
        result = runner.invoke(cli, [*args, "--store", spec_store.url], env={"COLUMNS": "200"})
        assert result.exit_code == 0, (args, result.output)
    events = runner.invoke(
        cli, ["events", "--since", "1h", "-o", "json", "--store", spec_store.url]
    )
    assert events.exit_code == 0 and all(
        e["t"] > time.time() - 3600 for e in orjson.loads(events.output)
    )
    for a in fleet:
        a.report()
    report = ctl.cycle()  # takes its memory and intake back, renews its lease
    assert report.note == "" and report.accepted == 3, report.summary()
    assert isinstance(body(store, STATUS_CLUSTER)["at"], str)
    assert body(store, LEASE)["body"]["value"]["renewed_at"].endswith("Z")
