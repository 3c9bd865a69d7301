"""Real `bosun controller` processes under faults: `kill -9` between the desired writes and
the memory save, and a leader paused (SIGSTOP) past its lease while a second controller
takes over, then resumed (SIGCONT). A stale writer never overwrites newer documents:
generations and fences never go backwards in `desired/`, and no generation is reused."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.kit import (
    MASTER,
    Watcher,
    agents,
    assert_converged,
    memory,
    open_doc,
    start_spec,
    wait_for,
)
from tests.support.faultproxy import FaultProxy
from tests.support.fixtures import fresh_bucket
from tests.support.servers import S3Server
from tests.unit.controller.sim import SimAgent
from wire.control import open_control
from wire.layout import LEASE
from wire.signing import write_key_file
from wire.store import StoredObject
from wire.store.s3 import S3Store

BOSUN = str(Path(sys.executable).parent / "bosun")


@pytest.fixture
def own(seaweedfs: S3Server) -> S3Store:
    """A bucket of its own with no prefix, so the proxy counts `PUT desired` by section."""
    return fresh_bucket(seaweedfs, own_bucket=True, prefix="")


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for p in started:
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGCONT)
                os.killpg(p.pid, signal.SIGKILL)
        p.wait(timeout=10)


def env(server: S3Server) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BOSUN_"))}
    return {**base, **server.credentials_env(), "PYTHONDONTWRITEBYTECODE": "1"}


def url(store: S3Store, endpoint: str) -> str:
    prefix = f"/{store.prefix.strip('/')}" if store.prefix.strip("/") else ""
    return f"s3://{store.bucket}{prefix}?endpoint={endpoint}&region=us-east-1"


def controller_args(tmp: Path, name: str, store_url: str, *rest: str) -> list[str]:
    key = tmp / "master.key"
    if not key.exists():
        write_key_file(key, MASTER)
    return [
        BOSUN, "--log-level", "info", "controller", *rest, "--store", store_url,
        "--master-key", str(key), "--id", name, "--state-dir", str(tmp / f"state-{name}"),
    ]  # fmt: skip


def spawn(
    procs: list[subprocess.Popen[bytes]], args: list[str], server: S3Server, log: Path
) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        p = subprocess.Popen(
            args, env=env(server), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    procs.append(p)
    return p


def lease_holder(store: S3Store) -> tuple[str, int]:
    got = store.get(LEASE)
    assert isinstance(got, StoredObject)
    doc = open_control(got.body, LEASE, None).value  # the signed envelope, read unverified
    return str(doc["holder"]), int(doc["token"])


class Fleet(threading.Thread):
    """Simulated agents pulling and reporting every `every` seconds until stopped."""

    def __init__(self, fleet: list[SimAgent], every: float = 0.3) -> None:
        super().__init__(daemon=True, name="sim-fleet")
        self.fleet, self.every, self.halt = fleet, every, threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            for a in self.fleet:
                with contextlib.suppress(Exception):
                    a.pull()
                    a.report()
            self.halt.wait(self.every)

    def __enter__(self) -> Fleet:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.halt.set()
        self.join(timeout=10)


def test_kill_9_between_desired_writes_and_memory_save_converges(
    own: S3Store, seaweedfs: S3Server, tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    """`bosun controller once` is SIGKILLed as soon as its first desired PUT reaches the
    store (the memory is never saved); the next runs take the written generations over:
    the fleet converges and no generation is reused or goes backwards."""
    start_spec(own)
    fleet = agents(own)
    for a in fleet:
        a.report()
    with FaultProxy(seaweedfs.endpoint) as proxy, Watcher(own, every=0.05) as watcher:
        proxy.set_latency(0.15)
        args = controller_args(tmp_path, "ctl-a", url(own, proxy.endpoint), "once")
        p = spawn(procs, args, seaweedfs, tmp_path / "once-1.log")
        deadline = time.monotonic() + 60
        while proxy.counts()["PUT desired"] == 0 and p.poll() is None:
            assert time.monotonic() < deadline, "no desired PUT within 60s"
            time.sleep(0.005)
        os.killpg(p.pid, signal.SIGKILL)
        assert p.wait(timeout=10) == -signal.SIGKILL, "the controller finished before the kill"
        time.sleep(0.5)  # requests already in the proxy land
        assert memory(own) is None, "memory.json was saved: the kill came too late"
        written = [a.machine for a in fleet if open_doc(own, a.machine) is not None]
        assert written, "no desired document landed before the kill"
        _, token_before = lease_holder(own)
        proxy.set_latency(0.0)
        for _i in range(4):
            run = subprocess.run(args, env=env(seaweedfs), capture_output=True, timeout=60)
            assert run.returncode == 0, run.stderr.decode()[-2000:]
            for a in fleet:
                a.pull()
                a.report()
    holder, token = lease_holder(own)
    assert holder == "ctl-a" and token > token_before  # a new process takes over at once
    assert_converged(own, fleet)
    assert not watcher.violations, watcher.violations


def test_paused_leader_resumed_past_its_lease_never_overwrites_newer_documents(
    own: S3Store, seaweedfs: S3Server, tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    """Two controllers started together, each behind its own proxy; the leader is
    SIGSTOPped in the middle of publishing a spec change; the other takes over after the
    lease duration and publishes with a higher fence; the old leader resumed with SIGCONT
    writes no desired document, and fences and generations never go backwards."""
    start_spec(own)
    fleet = agents(own)
    lease = ["--lease-duration", "4s", "--renew-deadline", "3s", "--every", "0.5s"]
    with (
        FaultProxy(seaweedfs.endpoint) as pa,
        FaultProxy(seaweedfs.endpoint) as pb,
        Fleet(fleet),
        Watcher(own, every=0.05) as watcher,
    ):
        proxies = {"ctl-a": pa, "ctl-b": pb}
        started = {
            name: spawn(
                procs,
                controller_args(tmp_path, name, url(own, p.endpoint), "run", *lease),
                seaweedfs,
                tmp_path / f"{name}.log",
            )
            for name, p in proxies.items()
        }
        wait_for("the fleet converges", lambda: _converged(own, fleet, "1.0"), 40)
        leader, token_a = lease_holder(own)
        other = "ctl-b" if leader == "ctl-a" else "ctl-a"
        proxy = proxies[leader]
        proxy.set_latency(0.08)  # the leader's writes take a while: the pause lands mid-publish
        base = proxy.counts()["PUT desired"]
        start_spec(own, "1.1")
        deadline = time.monotonic() + 30
        while proxy.counts()["PUT desired"] == base:
            assert time.monotonic() < deadline, "the leader never published the spec change"
            time.sleep(0.005)
        os.killpg(started[leader].pid, signal.SIGSTOP)
        wait_for("the other takes the lease", lambda: lease_holder(own)[0] == other, 30)
        _, token_b = lease_holder(own)
        assert token_b > token_a
        wait_for("the fleet on 1.1 under the new leader", lambda: _converged(own, fleet, "1.1"), 30)
        time.sleep(0.5)
        stale = proxy.counts()
        os.killpg(started[leader].pid, signal.SIGCONT)
        time.sleep(4.0)  # the old leader wakes, finds its deadline passed and the lease lost
        after = proxy.counts()
        # A PUT the old leader had begun before the pause may reach the store after it (its
        # body was still in the client when the process stopped): its If-Match refuses it.
        # What must never happen is a write the store took, or a new PUT begun after resuming.
        assert after["PUT desired 200"] == stale["PUT desired 200"], "the old leader wrote"
        begun = after["PUT desired"] - stale["PUT desired"]
        refused = after["PUT desired 412"] - stale["PUT desired 412"]
        assert begun == refused, f"{begun} PUTs after resuming, {refused} refused by If-Match"
        assert lease_holder(own)[0] == other
        assert _converged(own, fleet, "1.1")
    fences = {x.machine: (open_doc(own, x.machine) or (None,))[0] for x in fleet}
    assert all(d is not None and d.fence <= token_b for d in fences.values()), fences
    assert any(d is not None and d.fence == token_b for d in fences.values()), (
        f"token {token_b} wrote nothing: the pause did not land mid-publish; {fences}"
    )
    assert not watcher.violations, watcher.violations


def _converged(store: S3Store, fleet: list[SimAgent], version: str) -> bool:
    try:
        assert_converged(store, fleet, version)
    except AssertionError:
        return False
    return True


@pytest.mark.parametrize("mode", ["once", "run"])
def test_a_store_ignoring_conditions_is_refused_by_both_controller_modes(
    tmp_path: Path, moto_server: S3Server, mode: str
) -> None:
    """docs/security.md#store-atomicity: behind a proxy that drops If-Match/If-None-Match, `controller once` and
    `controller run` refuse to start, naming the missing behaviour, and write no desired
    document; once the store honours conditions, `once` passes and remembers the pass."""
    direct = fresh_bucket(moto_server)
    start_spec(direct)
    with FaultProxy(moto_server.endpoint) as proxy:
        proxy.ignore_conditions()
        args = controller_args(tmp_path, "ctl", url(direct, proxy.endpoint), mode)
        done = subprocess.run(args, env=env(moto_server), capture_output=True, timeout=60)
        assert done.returncode != 0, done.stdout.decode()[-2000:]
        err = done.stderr.decode()
        assert "refusing this store for controllers" in err, err[-2000:]
        assert "create-only refuses an existing key" in err, err[-2000:]
        assert not any(i.key.startswith("desired/") for i in direct.list("")), "wrote desired/"
        assert not isinstance(direct.get(LEASE), StoredObject), "took the lease"
        if mode == "once":
            proxy.ignore_conditions(False)
            ok = subprocess.run(args, env=env(moto_server), capture_output=True, timeout=60)
            assert ok.returncode == 0, ok.stderr.decode()[-2000:]
            assert (tmp_path / "state-ctl" / "probe.json").exists()
            assert isinstance(direct.get(LEASE), StoredObject)  # the cycle ran
