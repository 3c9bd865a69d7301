"""Honest operator views: `bosun status` / `bosun machines` judge ages at read time.

The controller runs on a clock set in the past (its `wall`), so what it wrote is as old as
it would be had it stopped then; the CLI reads with the real clock through `main()`, so
exit codes are those users get.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from controller.cli import main
from controller.planner.model import Hold
from controller.shell.control_objects import SpecRefusal
from controller.shell.cycle import Controller
from controller.shell.lease import LeaseSettings
from controller.status_document import ClusterStatus, SpecRefused
from tests.unit.controller.conftest import MASTER, agents
from tests.unit.controller.sim import SPEC_YAML, SimAgent
from tests.unit.controller.stores import Recording
from tests.unit.rollout_cli.conftest import Run
from wire import codec
from wire.documents import Applied
from wire.errors import InvalidDocument
from wire.layout import LEASE, SPEC_CURRENT, STATUS_CLUSTER
from wire.store import StoredObject

Bosun = Callable[..., Run]


@pytest.fixture
def bosun(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Bosun:
    """Run `bosun ARGS...` through `main()`: exit codes and stderr as users get them."""
    monkeypatch.setenv("COLUMNS", "200")
    for k in list(os.environ):
        if k.startswith("BOSUN_"):
            monkeypatch.delenv(k)

    def run(*args: str) -> Run:
        capsys.readouterr()
        monkeypatch.setattr(sys, "argv", ["bosun", *args])
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = int(exc.code or 0)
        got = capsys.readouterr()
        return Run(code, got.out, got.err)

    return run


class Fleet:
    """A controller and simulated agents over the directory store, on a settable clock."""

    def __init__(self, store: Recording, n: int, start: float) -> None:
        self.store = store
        self.wall = [start]
        self.agents: list[SimAgent] = agents(store, n=n)
        self.ctl = Controller(
            store, MASTER, holder="ctl", lease=LeaseSettings(30, 20), wall=lambda: self.wall[0]
        )

    def converge(self) -> None:
        for _ in range(4):
            self.ctl.cycle()
            for a in self.agents:
                a.pull()
                a.report(now=self.wall[0])
        self.ctl.cycle()

    def step(self, seconds: float, *, silent: tuple[str, ...] = ()) -> None:
        """`seconds` later every agent but `silent` reports, then one cycle."""
        self.wall[0] += seconds
        for a in self.agents:
            if a.machine not in silent:
                a.report(now=self.wall[0])
        self.ctl.cycle()

    def doc(self) -> ClusterStatus:
        got = self.store.inner.get(STATUS_CLUSTER)
        assert isinstance(got, StoredObject)
        return ClusterStatus.from_json(got.body, where=STATUS_CLUSTER)


def status_of(out: str) -> dict[str, str]:
    return {r["machine"]: r["status"] for r in orjson.loads(out)}


def test_a_stopped_controller_makes_the_view_stale_and_check_exit_2(
    spec_store: Recording, bosun: Bosun
) -> None:
    """A controller whose last cycle (the lease's renewed_at) is 10 minutes old: status says
    it is silent and when it last cycled, every machine is stale, --check exits 2."""
    fleet = Fleet(spec_store, 3, time.time() - 600)
    fleet.converge()
    out = bosun("status", "--store", spec_store.url)
    assert out.code == 0, out.err
    assert "controller ctl silent for 10m (last cycle " in out.out, out.out
    assert "this view is stale" in out.out
    machines = bosun("machines", "--store", spec_store.url, "-o", "json")
    assert set(status_of(machines.out).values()) == {"stale"}
    assert (
        "silent for 10m" in machines.err
    )  # machine output stays parseable; the warning goes to stderr
    check = bosun("status", "--check", "--store", spec_store.url)
    assert check.code == 2, check.out
    assert check.out.splitlines()[0].startswith("stale: controller ctl silent for 10m")
    assert "stale: 3 machines stale" in check.out


def test_no_lease_means_no_controller_cycle_yet(spec_store: Recording, bosun: Bosun) -> None:
    """Without control/lease.json the view says no controller cycle ran and --check is 2."""
    fleet = Fleet(spec_store, 2, time.time())
    fleet.converge()
    spec_store.inner.delete(LEASE)
    assert "no controller cycle yet" in bosun("status", "--store", spec_store.url).out
    assert bosun("status", "--check", "--store", spec_store.url).code == 2


def test_a_machine_silent_past_its_window_is_stale(spec_store: Recording, bosun: Bosun) -> None:
    """The controller cycled 20 s ago and judged web-1 live then; its report is now 40 s
    old, past heartbeat_timeout (30 s): `stale` in machines, in --status stale, in status
    and --check (degraded: the next cycle judges it). web-2's agent heartbeats every 25 s,
    so its window is 50 s (silence_allowed) and its 40 s old report is not stale."""
    fleet = Fleet(spec_store, 4, time.time() - 60)
    fleet.agents[2].extra["heartbeat_interval"] = 25.0
    fleet.converge()
    fleet.step(20)  # now - 40: the last report of web-1 and web-2
    fleet.step(20, silent=("web-1", "web-2"))  # now - 20: the last cycle
    assert fleet.doc().seen["web-2"].heartbeat_interval == 25.0
    statuses = status_of(bosun("machines", "--store", spec_store.url, "-o", "json").out)
    assert statuses["web-1"] == "stale"
    assert statuses["web-2"] != "stale" and statuses["web-0"] != "stale"
    stale = bosun("machines", "--status", "stale", "--store", spec_store.url, "-o", "json")
    assert [r["machine"] for r in orjson.loads(stale.out)] == ["web-1"]
    table = bosun("machines", "--status", "stale", "--store", spec_store.url).out
    # the clock is real: a loaded machine may take a second between the writes and the reads
    assert "web-1" in table and re.search(r"\b4[012]s\b", table) and "silent" not in table
    status = bosun("status", "--store", spec_store.url).out
    assert "controller ctl: last cycle " in status and re.search(r", 2[012]s ago", status)
    check = bosun("status", "--check", "--store", spec_store.url)
    assert re.search(r"degraded: web-1: stale: last report 4[012]s ago", check.out), check.out
    assert check.code == 1, check.out


def test_a_hold_is_shown_with_its_reason_and_check_exits_2(
    spec_store: Recording, bosun: Bosun
) -> None:
    """A service the planner holds static (blind) is shown with its reason; --check is 2."""
    fleet = Fleet(spec_store, 3, time.time())
    fleet.converge()
    doc = fleet.doc()
    hold = Hold("3 of 3 machines went silent together", since=time.time() - 120, silent=3, total=3)
    held = replace(doc, status=replace(doc.status, holds={"web": hold}))
    spec_store.inner.put(STATUS_CLUSTER, held.to_json())
    out = bosun("status", "--store", spec_store.url).out
    assert "web held static (service, 2m): 3 of 3 machines went silent together" in out
    check = bosun("status", "--check", "--store", spec_store.url)
    assert check.code == 2
    assert "blind: web: held static for 2m (service): 3 of 3 machines went silent" in check.out


def test_a_healthy_cluster_checks_0(spec_store: Recording, bosun: Bosun) -> None:
    """Every service has its healthy machines and every report is fresh: exit 0, one line."""
    fleet = Fleet(spec_store, 4, time.time() - 10)
    fleet.converge()
    fleet.step(10)
    check = bosun("status", "--check", "--store", spec_store.url)
    assert check.code == 0, check.out
    assert check.out.startswith("healthy: 2 services, 4 machines; controller ctl: last cycle")
    assert set(
        status_of(bosun("machines", "--store", spec_store.url, "-o", "json").out).values()
    ) <= {"running"}


def test_a_degraded_cluster_checks_1(spec_store: Recording, bosun: Bosun) -> None:
    """An unhealthy machine (web has 1 healthy of 2) and a lost one: exit 1, one line each."""
    fleet = Fleet(spec_store, 5, time.time() - 32)
    fleet.converge()
    fleet.agents[2].healthy = False
    fleet.step(31, silent=("web-4",))
    check = bosun("status", "--check", "--store", spec_store.url)
    assert check.code == 1, check.out
    lines = check.out.splitlines()
    assert "degraded: web: 1 healthy of 2 asked" in lines
    # the clock is real: a loaded machine may take a second or two before the read
    assert any(re.fullmatch(r"degraded: web-4: lost \(last report 3[234]s ago\)", x) for x in lines)
    assert all(line.startswith(("degraded: ", "warning: ")) for line in lines)
    assert "warning: spec revisions are not signed" in check.out  # no operator key listed


@pytest.mark.parametrize(
    "body, says",
    [
        (b"{not json", "not valid JSON"),
        (b'{"format": "bosun.status/1"}', "missing required field"),
        (b"[]", "expected a JSON object"),
    ],
)
def test_a_malformed_status_is_a_clear_error(
    spec_store: Recording, bosun: Bosun, body: bytes, says: str
) -> None:
    """A status/cluster.json that does not decode: one line naming the object, exit 2."""
    fleet = Fleet(spec_store, 2, time.time())
    fleet.converge()
    spec_store.inner.put(STATUS_CLUSTER, body)
    for args in (("status",), ("status", "--check"), ("machines",)):
        run = bosun(*args, "--store", spec_store.url)
        assert run.code == 2 and run.out == ""
        assert run.err.startswith("bosun: ") and "status/cluster.json" in run.err, run.err
        assert says in run.err and "not a status document this bosun can read" in run.err


def test_a_mistyped_field_is_named(spec_store: Recording, bosun: Bosun) -> None:
    """Strict decoding names the field that is wrong, not just the object."""
    fleet = Fleet(spec_store, 2, time.time())
    fleet.converge()
    value = fleet.doc().encode()
    value["seen"]["web-0"]["accepted_at"] = "yesterday"
    spec_store.inner.put(STATUS_CLUSTER, orjson.dumps(value))
    run = bosun("status", "--store", spec_store.url)
    assert run.code == 2 and "seen.web-0.accepted_at: expected a UTC time" in run.err


def test_the_written_status_round_trips_through_its_type(spec_store: Recording) -> None:
    """What a controller cycle writes decodes strictly and encodes to the same bytes; the
    shell's SpecRefusal (set by the cycle over the encoded document) decodes as SpecRefused."""
    fleet = Fleet(spec_store, 3, time.time())
    fleet.converge()
    got = spec_store.inner.get(STATUS_CLUSTER)
    assert isinstance(got, StoredObject)
    doc = ClusterStatus.from_json(got.body, where=STATUS_CLUSTER)
    written = orjson.loads(got.body)
    assert set(written.pop("signature")) == {"key", "sig"}  # the controller's, beside the type
    assert doc.encode() == written
    assert set(doc.seen) == {"web-0", "web-1", "web-2"}
    refusal = SpecRefusal("spec/current.json: not valid JSON", "etag-1", 3, "invalid", 2)
    assert codec.decode(SpecRefused, codec.encode(refusal), "x") == SpecRefused(
        refusal.detail, refusal.etag, refusal.planning_with, "invalid", 2
    )
    value = doc.encode()
    value["surprise"] = 1
    with pytest.raises(InvalidDocument, match="unknown field 'surprise'"):
        ClusterStatus.decode(value, STATUS_CLUSTER)


def test_status_json_is_the_typed_document(spec_store: Recording, bosun: Bosun) -> None:
    """`bosun status -o json` prints the document as its type encodes it."""
    fleet = Fleet(spec_store, 2, time.time())
    fleet.converge()
    out = orjson.loads(bosun("status", "--store", spec_store.url, "-o", "json").out)
    assert out == fleet.doc().encode()


def test_a_refused_spec_still_reads_and_checks_degraded(
    spec_store: Recording, bosun: Bosun
) -> None:
    """A damaged spec/current.json: the view reads the settings of the revision the
    controller plans with, shows the refusal, and --check counts it as degraded."""
    fleet = Fleet(spec_store, 4, time.time() - 10)
    fleet.converge()
    spec_store.inner.put(SPEC_CURRENT, b"{damaged")
    fleet.step(10)
    assert fleet.doc().spec_refused is not None
    out = bosun("status", "--store", spec_store.url)
    assert out.code == 0 and "spec/current.json refused" in out.out, out.err
    check = bosun("status", "--check", "--store", spec_store.url)
    assert check.code == 1, check.out
    assert check.out.startswith("degraded: spec/current.json refused: ")


@pytest.mark.parametrize(
    ("agents_say", "why"),
    [
        ("unknown", "no active machine reports health: their agent config has no health probe (services.web.health)"),
        ("unhealthy", "every active machine's health probe fails"),
    ],
)  # fmt: skip
def test_a_service_that_can_never_be_healthy_is_named(
    spec_store: Recording, bosun: Bosun, tmp_path: Path, agents_say: str, why: str
) -> None:
    """No probe (health unknown) or a probe that always fails: status, --check and spec
    validate/apply name the service and why its balancer gets no peer."""
    fleet = Fleet(spec_store, 4, time.time() - 10)
    for a in fleet.agents:
        a.probe = agents_say != "unknown"
        a.healthy = agents_say == "healthy"
    fleet.converge()
    fleet.step(10)
    assert fleet.doc().status.services["web"].active == 2
    status = bosun("status", "--store", spec_store.url)
    assert f"web: {why}" in " ".join(status.out.split()), status.out
    check = bosun("status", "--check", "--store", spec_store.url)
    assert check.code == 1, check.out
    assert any(line.startswith(f"degraded: web: {why}") for line in check.out.splitlines())
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC_YAML)
    validated = bosun("spec", "validate", str(spec), "--store", spec_store.url)
    assert validated.code == 0, validated.err
    assert validated.err.startswith(f"warning: services.web is balanced by lb; {why}")
    assert bosun("spec", "validate", str(spec)).err == ""  # without a store: nothing observed


def test_healthy_services_get_no_never_healthy_warning(
    spec_store: Recording, bosun: Bosun, tmp_path: Path
) -> None:
    """A service with healthy machines is not named; spec validate --store says nothing more."""
    fleet = Fleet(spec_store, 4, time.time() - 10)
    fleet.converge()
    fleet.step(10)
    assert "can become healthy" not in bosun("status", "--store", spec_store.url).out
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC_YAML)
    assert bosun("spec", "validate", str(spec), "--store", spec_store.url).err == ""


def test_machines_that_have_not_applied_yet_are_not_called_probe_less(
    spec_store: Recording, bosun: Bosun
) -> None:
    """Right after the first assignment no machine has started the service, so all report
    health unknown: status does not yet say their config lacks a probe; once they applied
    their documents (still without a probe), it does."""
    fleet = Fleet(spec_store, 4, time.time() - 10)
    for a in fleet.agents:
        a.probe = False
        a.report(now=fleet.wall[0])
    fleet.ctl.cycle()
    assert fleet.doc().status.services["web"].active == 2
    assert "no active machine reports health" not in bosun("status", "--store", spec_store.url).out
    fleet.converge()
    out = " ".join(bosun("status", "--store", spec_store.url).out.split())
    assert "web: no active machine reports health" in out


def test_a_failed_apply_is_shown_and_degrades(spec_store: Recording, bosun: Bosun) -> None:
    """An agent whose last apply failed (here a balancer config its check refused) keeps
    running the older generation and says why; status shows it, machines -o json carries it,
    and --check is degraded rather than healthy."""
    fleet = Fleet(spec_store, 4, time.time() - 10)
    fleet.converge()
    a = fleet.agents[1]
    assert a.desired is not None
    error = "haproxy.cfg: check refused it (exit 1): [ALERT] parsing [haproxy.cfg:12]"
    a.extra["applied"] = Applied(
        generation=a.desired.generation, fence=a.desired.fence, result="failed", error=error
    )
    fleet.step(10)
    out = bosun("status", "--store", spec_store.url).out
    assert f"{a.machine}: applying generation " in out and error in out, out
    rows = {r["machine"]: r for r in orjson.loads(
        bosun("machines", "--store", spec_store.url, "-o", "json").out)}  # fmt: skip
    assert rows[a.machine]["apply_error"] == error
    assert all(r["apply_error"] is None for m, r in rows.items() if m != a.machine)
    check = bosun("status", "--check", "--store", spec_store.url)
    assert check.code == 1, check.out
    assert any(x.startswith(f"degraded: {a.machine}: applying generation") for x in
               check.out.splitlines()), check.out  # fmt: skip
