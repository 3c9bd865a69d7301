"""A real fleet for rollouts: bosun-agent processes running the example app behind the
example load balancer, a `bosun controller run --every 1s` process, a bucket on disk and a
client sending steady traffic through the balancer, recording who answered each request.

Machines: lb-1 (the example LB, peers written by the agent's files driver) and web-1..4
(the example app; spec count 2, so 2 active + 2 warm standby). Agent configs come from
`controller.demo.fleet`, processes are started and stopped by `controller.demo.procs`.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from controller.demo import fleet
from controller.demo.fleet import Machine, Timing
from controller.demo.procs import ProcessBook
from controller.local_s3 import free_port
from controller.reads import read_events
from controller.spec.load import from_value
from controller.spec.revisions import apply
from wire.layout import STATUS_CLUSTER, rollout_status_key
from wire.store import DirectoryStore, StoredObject

TIMING = Timing(
    every=1.0,
    poll=1.0,
    heartbeat=1.0,
    heartbeat_timeout=5.0,
    dwell=1.0,
    rate=40.0,
    bake=2.0,
    phase_timeout=40.0,
)
WEB = tuple(f"web-{i}" for i in range(1, 5))
BIN = Path(sys.executable).parent
BOSUN = [str(BIN / "bosun")]


@dataclass(frozen=True, slots=True)
class Answer:
    at: float  # when the answer arrived (wall clock)
    status: int
    backend: str
    version: str


class Client(threading.Thread):
    """GET / through the balancer at a steady rate; every answer is recorded."""

    def __init__(self, port: int, rate: float) -> None:
        super().__init__(name="rollout-client", daemon=True)
        self.port, self.interval = port, 1.0 / rate
        self.halt = threading.Event()
        self.lock = threading.Lock()
        self.answers: list[Answer] = []
        self.failures = 0

    def run(self) -> None:
        conn: http.client.HTTPConnection | None = None
        next_at = time.monotonic()
        while not self.halt.is_set():
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/")
                resp = conn.getresponse()
                body = resp.read()
                version = ""
                with contextlib.suppress(ValueError, TypeError, AttributeError):
                    version = str(orjson.loads(body).get("version", ""))
                answer = Answer(
                    time.time(), resp.status, resp.getheader("X-Bosun-Backend") or "", version
                )
                with self.lock:
                    self.answers.append(answer)
            except (OSError, http.client.HTTPException):
                self.failures += 1
                if conn is not None:
                    conn.close()
                conn = None
            next_at += self.interval
            delay = next_at - time.monotonic()
            if delay > 0:
                self.halt.wait(delay)
            else:
                next_at = time.monotonic()
        if conn is not None:
            conn.close()

    def since(self, t: float) -> list[Answer]:
        with self.lock:
            return [a for a in self.answers if a.at >= t]


@dataclass
class Fleet:
    run_dir: Path
    store: DirectoryStore
    url: str
    machines: dict[str, Machine]
    book: ProcessBook
    client: Client | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    def apply(self, version: str, rollout: dict[str, Any] | None) -> int:
        value = fleet.spec_value(TIMING, self.run_dir, web_count=2, version=version)
        if rollout is not None:
            value["services"]["web"]["rollout"] = rollout
        return apply(self.store, from_value(value, source="test"), now=time.time()).revision

    def json(self, key: str) -> dict[str, Any] | None:
        got = self.store.get(key)
        if not isinstance(got, StoredObject):
            return None
        value: dict[str, Any] = orjson.loads(got.body)
        return value

    def rollout(self) -> dict[str, Any] | None:
        return self.json(rollout_status_key("web"))

    def cluster(self) -> dict[str, Any]:
        return self.json(STATUS_CLUSTER) or {}

    def peers(self) -> dict[str, Any]:
        path = self.machines["lb-1"].peers_file
        with contextlib.suppress(OSError, ValueError):
            value: dict[str, Any] = orjson.loads(path.read_bytes())
            return value
        return {}

    def events(self, since: float, kind: str = "") -> list[dict[str, Any]]:
        return [
            e
            for e in read_events(self.store, since - 5, time.time() + 5)
            if float(e.get("t", 0)) >= since and str(e.get("kind", "")).startswith(kind)
        ]

    def bosun(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*BOSUN, *args, "--store", self.url],
            env={**self.book.env, "COLUMNS": "120"},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def exited(self) -> str | None:
        for name, proc in self.book.popens.items():
            if proc.poll() is not None:
                log = self.run_dir / "logs" / f"{name}.log"
                tail = log.read_text(errors="replace").splitlines()[-5:] if log.exists() else []
                return f"{name} exited with {proc.returncode}: " + " | ".join(tail)
        return None

    def wait(self, what: str, check: Callable[[], Any], timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = check()
            if got:
                return got
            dead = self.exited()
            assert dead is None, f"while waiting for {what}: {dead}"
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


def _start(f: Fleet) -> None:
    f.book.spawn(
        "controller",
        [*BOSUN, "--log-level", "info", "controller", "run", "--store", f.url,
         "--master-key", str(f.run_dir / "master.key"), "--every", "1s", "--id", "ctl-test",
         "--state-dir", str(f.run_dir / "controller")],
    )  # fmt: skip
    for name, m in f.machines.items():
        f.book.spawn(
            f"agent-{name}",
            [sys.executable, "-m", "agent", "--log-level", "info", "--config",
             str(m.config_path), "run"],
            cwd=m.home,
        )  # fmt: skip


@pytest.fixture(scope="module")
def rollout_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    run_dir = tmp_path_factory.mktemp("rollout-fleet")
    bucket = run_dir / "bucket"
    bucket.mkdir()
    url = f"file://{bucket}"
    root = fleet.repo_root()
    _path, master = fleet.make_master_key(run_dir)
    machines: dict[str, Machine] = {}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BOSUN_"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    book = ProcessBook(run_dir, run_dir / "logs", env)
    for name in ("lb-1", *WEB):
        eligible = ("lb",) if name == "lb-1" else ("web",)
        m = Machine(name, eligible, run_dir / "machines" / name, {s: free_port() for s in eligible})
        fleet.enroll_machine(m, master=master, store=url, timing=TIMING, root=root, run_dir=run_dir)
        machines[name] = m
        book.mark("--config", m.config_path)
        book.mark("--desired-file", m.desired_file)
        book.mark("--peers-file", m.peers_file)
    f = Fleet(run_dir, DirectoryStore(bucket), url, machines, book)
    f.apply("1.0", fleet.rollout_value(TIMING))
    try:
        _start(f)
        state_dirs = {n: m.state_dir for n, m in machines.items()}

        def converged() -> bool:
            book.poll_records(state_dirs)
            web = f.cluster().get("services", {}).get("web", {})
            backends = {b["machine"] for b in f.peers().get("backends", [])}
            return (web.get("healthy"), web.get("standby"), len(backends)) == (2, 2, 2)

        f.wait("web: 2 healthy active + 2 standby, and 2 LB backends", converged, 60)
        f.client = Client(machines["lb-1"].ports["lb"], TIMING.rate)
        f.client.start()
        f.wait("the client's first answers", lambda: len(f.client.since(0)) > 5, 15)  # type: ignore[union-attr]
        yield f
    finally:
        if f.client is not None:
            f.client.halt.set()
            f.client.join(timeout=5)
        book.poll_records({n: m.state_dir for n, m in machines.items()})
        left = book.stop_all(grace=5.0, order=("controller", "agent-"))
        assert not left, f"{left} processes still running after the test"
