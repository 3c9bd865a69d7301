"""The simulations report what the real agent reports.

A real `bosun-agent` (`run --once` cycles, one process per cycle) supervises the example
HTTP app (`examples.app`, with http health, metrics and sessions probes, configured as the
demo does) against a directory bucket (`file://`). It is taken through every mode with
desired documents signed like the controller (`tests.unit.agent.kit.publish`), in the shape
the planner writes them (standby keeps service and version, draining carries a `drain`,
deactivated names no service). After each document it runs cycles until its snapshot in
`reports/<m>.json` is stable, and records the service's state, health and version and the
snapshot's status and applied generation/fence/result.

Then the two simulations that stand in for the agent elsewhere build their snapshot for the
same document: `SimAgent` (tests/unit/controller/sim.py, also what tests/faults/kit.py
runs), which pulls the same document from the same bucket, and the planner harness's
`snapshot_for` (tests/unit/planner/harness.py) given the memory the planner keeps after
writing that document. Every field must agree; the assertion prints the whole table.

What the real agent reports (stable reading): in active, canary, shadow and draining the
service runs and is healthy at the desired version; in standby it is `stopped` with health
`unknown` at the desired version (the process driver stops it, nothing is probed); when
deactivated (the document names no service) it is still reported, `stopped`, `unknown`,
version None. The first snapshot after a (re)start says `unhealthy`: the agent probes right
after starting the process, before the app listens.

The planner cases use the same report (the harness's default `stopped_standby=True`, set
explicitly here); the case rollout_watch_revert is a strict xfail for the planner bug it
exposes: at the 100% step the revert makes the kept-warm a1, a2 active and a3, a4 standby
in one cycle, and the balancer's backends are the healthy actives
(controller/planner/render.py `serving`), so l1 is written `peers: []` until a1 and a2
report healthy.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agent.drivers.process import ProcessDriver
from controller.planner.model import MachineMemory, Memory
from tests.support.servers import free_port
from tests.unit.agent.kit import MASTER, Drain, Machine, desired, publish, report
from tests.unit.controller.sim import SimAgent
from tests.unit.planner.harness import snapshot_for
from wire.documents import Desired, Snapshot
from wire.store import DirectoryStore

ROOT = Path(__file__).resolve().parents[3]
MACHINE = "web-1"
SERVICE = "web"
VERSION = "1.0"
STABLE_FOR = 3.0  # seconds a reading must stay unchanged
SETTLE_TIMEOUT = 40.0  # per mode
# (label, mode): the order a machine really goes through; standby twice (fresh, and after
# serving), deactivated last
STEPS = (
    ("standby (fresh)", "standby"),
    ("active", "active"),
    ("canary", "canary"),
    ("shadow", "shadow"),
    ("draining", "draining"),
    ("standby (after serving)", "standby"),
    ("deactivated", "deactivated"),
)
FIELDS = (
    "status",
    "applied.generation",
    "applied.fence",
    "applied.result",
    "service",
    "state",
    "health",
    "version",
)


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
    except OSError:
        return []


def web_service(port: int, desired_file: Path) -> dict[str, Any]:
    """The demo's `web` service (devkit/demo/fleet.py `_service`)."""
    base = f"http://127.0.0.1:{port}"
    return {
        "port": port,
        "files": [{"path": str(desired_file), "source": "desired"}],
        "process": {
            "cwd": str(ROOT),
            "stop_timeout": 3,
            "backoff_max": 4,
            "command": [
                sys.executable,
                "-m",
                "examples.app",
                "--port",
                "{port}",
                "--version",
                "{version}",
                "--machine",
                "{machine}",
                "--desired-file",
                str(desired_file),
            ],
        },
        "health": {"http": f"{base}/health", "timeout": 1},
        "metrics": {"http": f"{base}/metrics", "timeout": 1},
        "sessions": {"http": f"{base}/metrics", "key": "sessions", "timeout": 1},
    }


def doc_for(mode: str, generation: int) -> Desired:
    """The document the planner writes for `mode` (controller/planner/core.py `_render`)."""
    if mode == "deactivated":
        return desired(
            MACHINE, generation, mode="deactivated", service=None, version=None, config={}
        )
    now = time.time()
    drain = Drain("version change", now, now + 600) if mode == "draining" else None
    return desired(MACHINE, generation, mode=mode, version=VERSION, config={}, drain=drain)


def row(snap: Snapshot | None) -> dict[str, Any]:
    """The compared fields of a snapshot; the service fields are those of `web`."""
    if snap is None:
        return dict.fromkeys(FIELDS, "(no snapshot)")
    svc = snap.services.get(SERVICE)
    out: dict[str, Any] = {
        "status": snap.status,
        "applied.generation": snap.applied.generation,
        "applied.fence": snap.applied.fence,
        "applied.result": snap.applied.result,
        "service": "reported" if svc is not None else "absent",
    }
    for name in ("state", "health", "version"):
        out[name] = getattr(svc, name) if svc is not None else "-"
    return out


@dataclass
class Observation:
    label: str
    doc: Desired
    first: dict[str, Any]  # the first snapshot after the apply
    real: dict[str, Any]  # the stable one
    cycles: int
    seconds: float


class RealAgent:
    def __init__(self, tmp: Path) -> None:
        self.bucket = tmp / "bucket"
        self.store = DirectoryStore(self.bucket)
        port = free_port()
        services = {SERVICE: web_service(port, tmp / "m" / "web-desired.json")}
        self.machine = Machine(
            tmp / "m", f"file://{self.bucket}", name=MACHINE, services=services
        ).write()

    def once(self) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        cmd = [sys.executable, "-m", "agent", "--config", str(self.machine.config_path)]
        return subprocess.run(
            [*cmd, "run", "--once"], capture_output=True, text=True, timeout=60, env=env, cwd=ROOT
        )

    def reading(self) -> dict[str, Any]:
        return row(report(self.store, MACHINE))

    def settle(self, label: str, doc: Desired) -> Observation:
        publish(self.store, doc)
        start = time.monotonic()
        done = self.once()
        assert done.returncode == 0, f"{label}: run --once failed:\n{done.stderr[-3000:]}"
        first = last = self.reading()
        assert first["applied.generation"] == doc.generation, (
            f"{label}: generation {doc.generation} not applied: {first}\n{done.stderr[-3000:]}"
        )
        since, cycles = time.monotonic(), 1
        while time.monotonic() - since < STABLE_FOR:
            assert time.monotonic() - start < SETTLE_TIMEOUT, (
                f"{label}: the agent's report did not settle within {SETTLE_TIMEOUT}s; last {last}"
            )
            time.sleep(0.3)
            done = self.once()
            cycles += 1
            assert done.returncode == 0, f"{label}: run --once failed:\n{done.stderr[-3000:]}"
            now = self.reading()
            if now != last:
                last, since = now, time.monotonic()
        return Observation(label, doc, first, last, cycles, time.monotonic() - start)

    def cleanup(self) -> None:
        rec = ProcessDriver(self.machine.state_dir).record(SERVICE)
        if rec.pid and any("examples.app" in a for a in cmdline(rec.pid)):
            os.killpg(rec.pid, signal.SIGKILL)


@pytest.fixture
def real(tmp_path: Path) -> Iterator[RealAgent]:
    agent = RealAgent(tmp_path)
    yield agent
    agent.cleanup()


def simulated(store: DirectoryStore, doc: Desired) -> dict[str, dict[str, Any]]:
    """What each simulation reports once it runs `doc`."""
    sim = SimAgent(store, MASTER, MACHINE, eligible=(SERVICE,))
    pulled = sim.pull()
    assert pulled is not None and pulled.generation == doc.generation
    mm = MachineMemory(
        generation=doc.generation,
        service=doc.service,
        mode=doc.mode,
        version=doc.version,
        drain=doc.drain,
        issued_at=doc.issued_at,
    )
    memory = Memory(fence=doc.fence, machines={MACHINE: mm})
    now = time.time()
    harness = snapshot_for(
        MACHINE, {"eligible": [SERVICE]}, memory, now, int(now * 1000), stopped_standby=True
    )
    return {"SimAgent": row(sim.snapshot(now)), "harness": row(harness)}


def table(obs: list[Observation], sims: list[dict[str, dict[str, Any]]]) -> tuple[str, list[str]]:
    """A text table (one block per mode: real agent, then each simulation) and the mismatches."""
    head = ["mode", "who", *FIELDS]
    rows: list[list[str]] = []
    bad: list[str] = []
    for o, s in zip(obs, sims, strict=True):
        rows.append([o.label, "real agent", *(str(o.real[f]) for f in FIELDS)])
        rows.append(["", "  (first)", *(str(o.first[f]) for f in FIELDS)])
        for who, got in s.items():
            cells = []
            for f in FIELDS:
                same = got[f] == o.real[f]
                cells.append(str(got[f]) + ("" if same else " *"))
                if not same:
                    bad.append(f"{o.label}: {who} {f} = {got[f]!r}, real agent {o.real[f]!r}")
            rows.append(["", who, *cells])
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [head, *rows]]
    return "\n".join(lines), bad


def test_simulations_report_what_the_real_agent_reports(real: RealAgent) -> None:
    """Through every mode, SimAgent and the planner harness's `snapshot_for` report the
    same status, applied generation/fence/result and service state/health/version as a
    real bosun-agent running the example app (stable reading; the first one is shown)."""
    observations: list[Observation] = []
    sims: list[dict[str, dict[str, Any]]] = []
    for generation, (label, mode) in enumerate(STEPS, start=1):
        doc = doc_for(mode, generation)
        observations.append(real.settle(label, doc))
        sims.append(simulated(real.store, doc))
    text, bad = table(observations, sims)
    timing = ", ".join(f"{o.label} {o.cycles} cycles/{o.seconds:.1f}s" for o in observations)
    print(f"\n{text}\nsettled: {timing}")
    assert not bad, (
        "the simulations differ from the real agent (* marks a difference; '(first)' is the "
        "agent's first snapshot after the apply, not compared):\n" + text + "\n\n" + "\n".join(bad)
    )
