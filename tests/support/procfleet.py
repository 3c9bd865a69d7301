"""A real fleet for integration tests: `bosun-agent` daemons running the example app behind
the example load balancer, and a `bosun controller run --every 1s`, over a directory bucket.

Machine configs come from `devkit.demo.fleet` (as the demo builds them), processes are
started and stopped by `devkit.demo.procs`. Test modules subclass `ProcessFleet` with
what they need on top (a traffic client, spec variants).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from controller.operations.history import read_events
from devkit.demo import fleet
from devkit.demo.fleet import Machine, Timing
from devkit.demo.procs import ProcessBook
from tests.support.servers import free_port
from wire.layout import STATUS_CLUSTER
from wire.store import DirectoryStore, StoredObject

BIN = Path(sys.executable).parent
BOSUN = [str(BIN / "bosun")] if (BIN / "bosun").exists() else [sys.executable, "-m", "controller"]


@dataclass
class ProcessFleet:
    run_dir: Path
    store: DirectoryStore
    url: str
    machines: dict[str, Machine]
    book: ProcessBook

    def json(self, key: str) -> dict[str, Any] | None:
        got = self.store.get(key)
        if not isinstance(got, StoredObject):
            return None
        value: dict[str, Any] = orjson.loads(got.body)
        return value

    def cluster(self) -> dict[str, Any]:
        return self.json(STATUS_CLUSTER) or {}

    def peers(self, lb: str = "lb-1") -> dict[str, Any]:
        """The load balancer's peers file as its agent wrote it ({} before the first)."""
        try:
            value: dict[str, Any] = orjson.loads(self.machines[lb].peers_file.read_bytes())
        except (OSError, ValueError):
            return {}
        return value

    def events(self, since: float, kind: str = "") -> list[dict[str, Any]]:
        """Events of the cycles since `since` whose kind starts with `kind`."""
        return [
            e
            for e in read_events(self.store, since - 5, time.time() + 5)
            if float(e.get("t", 0)) >= since and str(e.get("kind", "")).startswith(kind)
        ]

    def bosun(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """`bosun ARGS --store URL` (output captured, 120 columns)."""
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

    def poll_records(self) -> None:
        self.book.poll_records({n: m.state_dir for n, m in self.machines.items()})

    def start(self, controller_id: str) -> None:
        """The controller and one agent daemon per machine."""
        self.book.spawn(
            "controller",
            [*BOSUN, "--log-level", "info", "controller", "run", "--store", self.url,
             "--master-key", str(self.run_dir / "master.key"), "--every", "1s",
             "--id", controller_id, "--state-dir", str(self.run_dir / "controller")],
        )  # fmt: skip
        for name, m in self.machines.items():
            self.book.spawn(
                f"agent-{name}",
                [sys.executable, "-m", "agent", "--log-level", "info", "--config",
                 str(m.config_path), "run"],
                cwd=m.home,
            )  # fmt: skip

    def stop(self) -> None:
        """Stop every process the fleet started; fails the test if any is left."""
        self.poll_records()
        left = self.book.stop_all(grace=5.0, order=("controller", "agent-"))
        assert not left, f"{left} processes still running after the test"


def web_roles(web: Sequence[str]) -> dict[str, str]:
    """lb-1 running the example balancer (`lb`) in front of `web` machines (the example app)."""
    return {"lb-1": "lb", **dict.fromkeys(web, "web")}


def build(
    run_dir: Path, roles: Mapping[str, str], timing: Timing, *, balancers: Collection[str] = ("lb",)
) -> dict[str, Any]:
    """Bucket, master key and machines enrolled, each eligible for one service (`roles`:
    machine -> service; services in `balancers` run the example balancer, the others the
    example app): the arguments of a `ProcessFleet` (subclasses add their own fields)."""
    bucket = run_dir / "bucket"
    bucket.mkdir()
    url = f"file://{bucket}"
    root = fleet.repo_root()
    _path, master = fleet.make_master_key(run_dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BOSUN_"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    book = ProcessBook(run_dir, run_dir / "logs", env)
    machines: dict[str, Machine] = {}
    for name, service in roles.items():
        m = Machine(name, (service,), run_dir / "machines" / name, {service: free_port()})
        fleet.enroll_machine(m, master=master, store=url, timing=timing, root=root,
                             run_dir=run_dir, balancers=balancers)  # fmt: skip
        machines[name] = m
        book.mark("--config", m.config_path)
        book.mark("--desired-file", m.desired_file)
        book.mark("--peers-file", m.peers_file)
    return {"run_dir": run_dir, "store": DirectoryStore(bucket), "url": url,
            "machines": machines, "book": book}  # fmt: skip
