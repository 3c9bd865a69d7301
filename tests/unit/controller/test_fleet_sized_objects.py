"""Everything the controller writes about the whole fleet is read back past 10,000 machines
(the item cap of agents' documents) and past 16 MiB (the cap of a pretty control object):
by a restarted controller, `bosun status`, `bosun machines`, the dashboard's reader and its
API, `bosun rollout`'s memory read (docs/security.md#fleet-sized-objects).

10,500 machines run with the unit tier; 100,000 with --heavy (a build of ~30 s on a
loaded 2-core host, shared by the tests of a module)."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from controller.cli import cli
from controller.cli.rollout_view import load_memory
from controller.planner.event import Event
from controller.read_trust import anchor, check_status
from controller.shell import control_objects, records
from controller.shell.cycle import Controller
from controller.web import api
from controller.web.reader import FleetReader
from tests.unit.controller.conftest import MASTER
from tests.unit.controller.fleet_objects import FENCE, Written, write_fleet
from wire import codec
from wire.control import MAX_PRETTY_CONTROL_BYTES
from wire.layout import INTAKE, MEMORY, STATUS_CLUSTER
from wire.pubkeys import controller_seed, public_of
from wire.store import DirectoryStore

SIZES = [
    pytest.param(10_500, id="10.5k"),
    pytest.param(100_000, id="100k", marks=pytest.mark.heavy),
]


@pytest.fixture(scope="module", params=SIZES)
def fleet(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[DirectoryStore, Written]:
    store = DirectoryStore(tmp_path_factory.mktemp("fleet") / "bucket")
    return store, write_fleet(store, MASTER, request.param)


def test_the_objects_are_as_large_as_the_fleet(fleet: tuple[DirectoryStore, Written]) -> None:
    """The fixture is what the tests claim: an entry per machine (past 10,000), and at
    100,000 machines control objects past 16 MiB (written compact)."""
    store, w = fleet
    assert len(w.plan.memory.machines) == len(w.intake.reports) == w.n
    if w.n >= 100_000:
        assert min(w.sizes.values()) > MAX_PRETTY_CONTROL_BYTES  # 16 MiB
        for key in (INTAKE, MEMORY):
            head = (store.root / key).read_bytes()[:8]
            assert head == b'{"body":', key


def test_a_restarted_controller_reads_its_own_intake_and_memory(
    fleet: tuple[DirectoryStore, Written],
) -> None:
    store, w = fleet
    ctl = Controller(store, MASTER, holder="ctl-after-restart")  # no cache, no marks
    now = time.time()
    intake = control_objects.load_intake(store, ctl.guard, now, ctl.control_cache)
    memory, _ = control_objects.load_memory(
        store, ctl.keys, intake.value, ctl.guard, now, ctl.control_cache
    )
    assert ctl.guard.refused == {}
    assert not intake.recovered and not memory.recovered
    assert codec.encode(intake.value) == codec.encode(w.intake)  # times as stored (ms)
    assert codec.encode(memory.value) == codec.encode(w.plan.memory)
    assert ctl._token_floor() == FENCE  # what a controller creating the lease starts above


def test_a_restarted_controller_cycle_keeps_what_it_wrote(
    fleet: tuple[DirectoryStore, Written],
) -> None:
    """The whole cycle of a new process (dry run: nothing written): its memory is the one
    in the bucket, not rebuilt, and no control object is refused."""
    store, w = fleet
    ctl = Controller(store, MASTER, holder="ctl-after-restart")
    report = ctl.cycle(dry_run=True)
    assert ctl.guard.refused == {}
    assert not report.recovered_memory
    assert report.plan is not None and report.plan.memory.machines.keys() == (
        w.plan.memory.machines.keys()
    )


def bosun(store: DirectoryStore, *args: str) -> str:
    result = CliRunner().invoke(cli, [*args, "--store", f"file://{store.root}"])
    assert result.exit_code == 0, result.output[-2000:]
    return result.stdout


def test_bosun_status_and_machines_read_the_fleet(fleet: tuple[DirectoryStore, Written]) -> None:
    """`bosun status` (its signature verified against the pinned controller key: a
    pinned key that did not sign it is an error) and `bosun machines`."""
    store, w = fleet
    pinned = public_of(controller_seed(MASTER))
    raw = (store.root / STATUS_CLUSTER).read_bytes()
    assert check_status(raw, anchor(store, pinned)).ok is True
    doc = orjson.loads(bosun(store, "status", "-o", "json", "--controller-key", pinned))
    assert len(doc["machines"]) == len(doc["seen"]) == w.n
    rows = orjson.loads(bosun(store, "machines", "-o", "json"))
    assert len(rows) == w.n
    assert {r["machine"] for r in rows} == set(w.intake.reports)


def test_the_dashboard_and_its_api_read_the_fleet(fleet: tuple[DirectoryStore, Written]) -> None:
    store, w = fleet
    view = FleetReader(store).fleet()
    assert len(view.rows) == w.n
    rows = orjson.loads(api.machines_body(view, view.rows, "json"))["machines"]
    assert len(rows) == w.n
    assert len(api.status_value(view)["status"]["machines"]) == w.n


def test_rollout_commands_read_the_memory(fleet: tuple[DirectoryStore, Written]) -> None:
    store, w = fleet
    memory = load_memory(store)
    assert memory is not None and codec.encode(memory) == codec.encode(w.plan.memory)


def test_bosun_events_reads_a_cycle_that_changed_every_machine(
    fleet: tuple[DirectoryStore, Written],
) -> None:
    """The first cycle's events (one a machine: ~20 MB at 100,000) in `bosun events` and
    the dashboard's events API."""
    store, w = fleet
    rows = orjson.loads(bosun(store, "events", "--since", "1h", "-o", "json"))
    assert len(rows) == w.n
    assert len(FleetReader(store).events(w.now - 3600, w.now + 60)) == w.n


def test_the_status_document_is_one_an_old_reader_parses(
    fleet: tuple[DirectoryStore, Written], tmp_path: Path
) -> None:
    """status/cluster.json stays one pretty JSON object at any size (aws s3 cp, jq)."""
    store, w = fleet
    raw = (store.root / STATUS_CLUSTER).read_bytes()
    assert raw.startswith(b'{\n  "agent_refusals"')
    assert len(orjson.loads(raw)["machines"]) == w.n


def test_a_cycles_events_cost_their_bytes_not_4_kib_each() -> None:
    """The events of a cycle that changes 20,000 machines are built in one buffer: Python
    allocations under three times the file's size (the buffer grows, then is copied once).
    Holding each line's orjson answer until a join took ~4 KiB an event: 29x the file."""
    events = [
        Event("machine.assigned", "spec", machine=f"m{i:06d}", service="web", data={"n": i})
        for i in range(20_000)
    ]
    tracemalloc.start()
    try:
        lines = records.event_lines(events, now=time.time(), cycle=7, fence=3)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert lines.count(b"\n") == 20_000 and orjson.loads(lines.splitlines()[-1])["data"] == {
        "n": 19_999
    }
    assert peak < 3 * len(lines), (peak, len(lines))
