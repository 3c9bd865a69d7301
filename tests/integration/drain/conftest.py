"""A real fleet for draining: bosun-agent processes running the example app (its calls
opened and closed over HTTP by the test: the agent's `sessions` probe reads them from the
app's /metrics) behind the example load balancer, and a `bosun controller run --every 1s`.

Machines: lb-1 and web-1, web-2 (web count 2, no standby). Agent configs come from
`controller.demo.fleet`, processes are started and stopped by `controller.demo.procs`.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from controller.demo import fleet
from controller.demo.fleet import Machine, Timing
from controller.demo.procs import ProcessBook
from controller.reads import read_events
from controller.spec.load import from_value
from controller.spec.revisions import apply
from tests.support.servers import free_port
from wire.documents import parse_envelope
from wire.layout import STATUS_CLUSTER, desired_key
from wire.store import DirectoryStore, StoredObject

TIMING = Timing(
    every=1.0, poll=1.0, heartbeat=1.0, heartbeat_timeout=5.0, dwell=1.0, rate=10.0,
    bake=2.0, phase_timeout=30.0,
)  # fmt: skip
WEB = ("web-1", "web-2")
BIN = Path(sys.executable).parent


@dataclass
class Fleet:
    run_dir: Path
    store: DirectoryStore
    url: str
    machines: dict[str, Machine]
    book: ProcessBook

    def apply(self, version: str, drain_timeout: float) -> int:
        value = fleet.spec_value(
            TIMING, self.run_dir, web_count=2, version=version, drain_timeout=drain_timeout
        )
        return apply(self.store, from_value(value, source="test"), now=time.time()).revision

    def json(self, key: str) -> dict[str, Any] | None:
        got = self.store.get(key)
        if not isinstance(got, StoredObject):
            return None
        value: dict[str, Any] = orjson.loads(got.body)
        return value

    def desired(self, machine: str) -> dict[str, Any]:
        got = self.store.get(desired_key(machine))
        assert isinstance(got, StoredObject), f"no desired document for {machine}"
        return parse_envelope(got.body).body

    def cluster(self) -> dict[str, Any]:
        return self.json(STATUS_CLUSTER) or {}

    def backends(self) -> set[str]:
        path = self.machines["lb-1"].peers_file
        with contextlib.suppress(OSError, ValueError):
            return {b["machine"] for b in orjson.loads(path.read_bytes()).get("backends", [])}
        return set()

    def app(self, machine: str, method: str = "GET", path: str = "/metrics") -> dict[str, Any]:
        """Ask a web machine's app directly ({} when it does not answer: restarting)."""
        port = self.machines[machine].ports["web"]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request(method, path)
            resp = conn.getresponse()
            value: dict[str, Any] = orjson.loads(resp.read())
            return value
        except (OSError, http.client.HTTPException, ValueError):
            return {}
        finally:
            conn.close()

    def events(self, since: float, kind: str) -> list[dict[str, Any]]:
        return [
            e
            for e in read_events(self.store, since - 5, time.time() + 5)
            if float(e.get("t", 0)) >= since and e.get("kind") == kind
        ]

    def exited(self) -> str | None:
        for name, proc in self.book.popens.items():
            if proc.poll() is not None:
                log = self.run_dir / "logs" / f"{name}.log"
                tail = log.read_text(errors="replace").splitlines()[-5:] if log.exists() else []
                return f"{name} exited with {proc.returncode}: " + " | ".join(tail)
        return None

    def wait(self, what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = check()
            if got:
                return got
            dead = self.exited()
            assert dead is None, f"while waiting for {what}: {dead}"
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


@pytest.fixture(scope="module")
def drain_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    run_dir = tmp_path_factory.mktemp("drain-fleet")
    bucket = run_dir / "bucket"
    bucket.mkdir()
    url = f"file://{bucket}"
    root = fleet.repo_root()
    _path, master = fleet.make_master_key(run_dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BOSUN_"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    book = ProcessBook(run_dir, run_dir / "logs", env)
    machines: dict[str, Machine] = {}
    for name in ("lb-1", *WEB):
        eligible = ("lb",) if name == "lb-1" else ("web",)
        m = Machine(name, eligible, run_dir / "machines" / name, {s: free_port() for s in eligible})
        fleet.enroll_machine(m, master=master, store=url, timing=TIMING, root=root, run_dir=run_dir)
        machines[name] = m
        book.mark("--config", m.config_path)
        book.mark("--desired-file", m.desired_file)
        book.mark("--peers-file", m.peers_file)
    f = Fleet(run_dir, DirectoryStore(bucket), url, machines, book)
    f.apply("1.0", drain_timeout=60)
    bosun = (
        [str(BIN / "bosun")] if (BIN / "bosun").exists() else [sys.executable, "-m", "controller"]
    )
    try:
        book.spawn(
            "controller",
            [*bosun, "--log-level", "info", "controller", "run", "--store", url,
             "--master-key", str(run_dir / "master.key"), "--every", "1s", "--id", "ctl-drain",
             "--state-dir", str(run_dir / "controller")],
        )  # fmt: skip
        for name, m in machines.items():
            book.spawn(
                f"agent-{name}",
                [sys.executable, "-m", "agent", "--log-level", "info", "--config",
                 str(m.config_path), "run"],
                cwd=m.home,
            )  # fmt: skip
        state_dirs = {n: m.state_dir for n, m in machines.items()}

        def converged() -> bool:
            book.poll_records(state_dirs)
            web = f.cluster().get("services", {}).get("web", {})
            return web.get("healthy") == 2 and f.backends() == set(WEB)

        f.wait("web: 2 healthy actives, both LB backends", converged, 45)
        yield f
    finally:
        book.poll_records({n: m.state_dir for n, m in machines.items()})
        left = book.stop_all(grace=5.0, order=("controller", "agent-"))
        assert not left, f"{left} processes still running after the test"
