"""`bosun controller once|run`, `bosun doctor` and operator reads as real processes on SeaweedFS."""

from __future__ import annotations

import signal
import time

import orjson

from controller.shell.lease import LeaseDoc, LeaseSettings
from controller.spec.load import load_yaml
from controller.spec.revisions import apply
from tests.integration.controller.conftest import BIN, MASTER, Bucket, stop, wait_for
from tests.support.fixtures import fresh_bucket
from tests.support.leaserace import lease_race
from tests.unit.controller.sim import SPEC_YAML, SimAgent
from wire.layout import LEASE
from wire.store import StoredObject


def test_doctor_accepts_seaweedfs(bucket: Bucket) -> None:
    """bosun doctor probes SeaweedFS's conditional requests (incl. the 20-writer races) and accepts it."""
    result = bucket.bosun("doctor")
    assert "store is fit for controllers" in result.stdout
    assert "MISSING" not in result.stdout


def test_once_processes_converge_and_operators_read(bucket: Bucket) -> None:
    """Cron-style `once` processes converge a fleet; dry-run writes nothing; reads work."""
    b = bucket
    apply(b.store, load_yaml(SPEC_YAML), now=time.time())
    fleet = [SimAgent(b.store, MASTER, f"web-{i}", eligible=("web", "lb")) for i in range(4)]
    for a in fleet:
        a.report()
    common = ["--master-key", str(b.master_file), "--state-dir", str(b.tmp / "st"), "--id", "cron"]
    dry = b.bosun("controller", "once", "--dry-run", *common)
    assert "plan desired/web-0.json generation 1" in dry.stdout
    assert not list(b.store.list("desired/")) and not list(b.store.list("control/"))
    for _ in range(4):
        out = orjson.loads(b.bosun("controller", "once", "-o", "json", *common).stdout)
        assert out["lease"]["acting"]
        for a in fleet:
            a.pull()
            a.report()
    b.bosun("controller", "once", *common)
    last = orjson.loads(b.bosun("controller", "once", "-o", "json", *common).stdout)
    assert last["written"] == [] and last["lease"]["token"] == 1  # renewed, nothing else
    rows = orjson.loads(b.bosun("machines", "-o", "json").stdout)
    assert {r["status"] for r in rows} == {"running"} and len(rows) == 4
    xml = b.bosun("machines", "-o", "xml", "--service", "web").stdout
    assert xml.count("<machine ") == 2
    assert "services" in b.bosun("status").stdout
    assert "desired.written" in b.bosun("events", "--since", "10m").stdout


def test_run_stops_cleanly_on_sigterm_and_releases_the_lease(bucket: Bucket) -> None:
    """SIGTERM: the daemon finishes its cycle, releases the lease and exits 0."""
    b = bucket
    proc = b.spawn(
        [
            str(BIN / "bosun"),
            "controller",
            "run",
            "--every",
            "1s",
            "--skip-probe",
            "--master-key",
            str(b.master_file),
            "--state-dir",
            str(b.tmp / "st"),
            "--id",
            "daemon",
        ],
        "daemon",
    )
    wait_for("a lease", lambda: isinstance(b.store.get(LEASE), StoredObject), 30)
    started = time.monotonic()
    assert stop(proc, signal.SIGTERM, timeout=20) == 0, b.log("daemon")
    assert time.monotonic() - started < 10
    got = b.store.get(LEASE)
    assert isinstance(got, StoredObject) and LeaseDoc.decode(got.body).released


def test_three_controllers_on_seaweedfs_never_share_a_token(bucket: Bucket) -> None:
    """Lease over SeaweedFS with random pauses: one holder per token, fences never decrease (docs/security.md#one-leader)."""
    prefix = bucket.store.prefix.rstrip("/")
    race = lease_race(
        lambda: fresh_bucket(bucket.server, prefix=prefix),
        LeaseSettings(duration=0.8, renew_deadline=0.5),
        seconds=6.0, pause_chance=0.3, pause=(0.6, 1.6), idle=0.15,
    )  # fmt: skip
    assert all(len(names) == 1 for names in race.holders.values()), race.holders
    assert race.committed == sorted(race.committed) and race.committed
    assert len(race.holders) >= 2, "pauses should have caused a takeover"


def test_run_follows_the_spec_controller_interval(bucket: Bucket) -> None:
    """Without --every the daemon cycles at the applied spec's settings.controller_interval,
    and follows it when a new revision changes it (a setting that does something)."""
    b = bucket
    fast = SPEC_YAML.replace("controller_interval: 10s", "controller_interval: 500ms")
    assert "controller_interval: 500ms" in fast
    apply(b.store, load_yaml(fast), now=time.time())
    keys = ["--master-key", str(b.master_file), "--state-dir", str(b.tmp / "st"), "--id", "d"]
    proc = b.spawn(
        [str(BIN / "bosun"), "--log-level", "info", "controller", "run", "--skip-probe", *keys],
        "daemon",
    )

    def full_log() -> str:
        return (b.tmp / "daemon.log").read_text(errors="replace")

    def cycles() -> int:
        return full_log().count("cycle.done")

    wait_for("a first cycle", lambda: cycles() >= 1, 30)
    t0, n0 = time.monotonic(), cycles()
    wait_for("four cycles at 500ms", lambda: cycles() >= n0 + 4, 15)
    assert time.monotonic() - t0 < 8  # at the 10 s default, four cycles take 40 s
    apply(b.store, load_yaml(SPEC_YAML), now=time.time())  # back to 10s
    wait_for("the 10s interval taken", lambda: "-> 10s (spec)" in full_log(), 15)
    n1 = cycles()
    time.sleep(3)
    assert cycles() <= n1 + 1, b.log("daemon")
    assert stop(proc, signal.SIGTERM, timeout=20) == 0, b.log("daemon")
