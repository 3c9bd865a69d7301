"""A DirectoryStore cluster moved by the real planner, for the `bosun rollout` commands.

`Cluster.cycle(now)` is a small controller shell: it reads spec/current.json and the
memory from the bucket, makes up snapshots with the harness (traffic from per-version
profiles), plans, and writes back the memory, the events and status/rollouts/ with the
controller's own `publish_rollouts`. No agents: the commands only read those objects.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from controller.cli import main
from controller.planner import plan
from controller.planner.model import Memory
from controller.shell import records
from controller.shell.publish import publish_rollouts
from controller.spec.load import from_value
from controller.spec.revisions import apply
from tests.unit.planner.harness import add_traffic, observed_from
from wire.layout import MEMORY, rollout_status_key
from wire.store import DirectoryStore, StoredObject

STRATEGY: dict[str, Any] = {
    "steps": [
        {"shadow": 1, "bake": "20s"},
        {"canary": 1, "weight": 10, "bake": "30s"},
        {"percent": 50, "bake": "1h"},
    ],
    "gates": {"max_error_rate": 0.05, "min_requests": 50},
    "on_failure": "revert",
}
TRAFFIC = {"1": {"rps": 10}, "2": {"rps": 10, "error_rate": 0.01}}


def spec_value(version: str, *, rollout: bool = True) -> dict[str, Any]:
    web: dict[str, Any] = {"version": version, "count": 2}
    if rollout:
        web["rollout"] = STRATEGY
    return {"services": {"web": web, "db": {"version": "9", "count": 0}}}


@dataclass
class Cluster:
    store: DirectoryStore
    url: str
    machines: dict[str, dict[str, Any]] = field(default_factory=dict)
    counters: dict[str, tuple[int, int, float | None]] = field(default_factory=dict)
    written: dict[str, str] = field(default_factory=dict)
    last: float | None = None
    cycles: int = 0

    def apply(self, value: dict[str, Any], now: float) -> None:
        apply(self.store, from_value(value, source="test"), now=now)

    def memory(self) -> Memory:
        got = self.store.get(MEMORY)
        return Memory.from_json(got.body) if isinstance(got, StoredObject) else Memory()

    def cycle(self, now: float) -> list[dict[str, Any]]:
        """One planner cycle at `now`; returns its events."""
        from controller.spec.revisions import read_current

        current = read_current(self.store)
        assert current is not None
        memory = self.memory()
        if self.last is not None:
            add_traffic(self.counters, TRAFFIC, self.machines, memory, now - self.last)
        self.last = now
        observed = observed_from(self.machines, memory, now, [], self.counters)
        p = plan(current.spec, observed, memory, now, fence=1)
        self.cycles += 1
        self.store.put(MEMORY, p.memory.to_json())
        publish_rollouts(self.store, p.status.rollouts, self.written, lambda: True)
        events = [
            orjson.loads(line)
            for line in records.event_lines(p.events, now=now, cycle=self.cycles, fence=1)
            .strip()
            .splitlines()
        ]
        if p.events:
            records.write_events(
                self.store,
                records.event_lines(p.events, now=now, cycle=self.cycles, fence=1),
                now=now,
                cycle=self.cycles,
            )
        return events

    def rollout(self) -> dict[str, Any]:
        got = self.store.get(rollout_status_key("web"))
        assert isinstance(got, StoredObject), "no status/rollouts/web.json"
        value: dict[str, Any] = orjson.loads(got.body)
        return value


@pytest.fixture
def cluster(tmp_path: Path) -> Cluster:
    root = tmp_path / "bucket"
    root.mkdir()
    url = f"file://{root}"
    c = Cluster(DirectoryStore(root), url)
    c.machines = {f"w{i}": {"eligible": ["web"]} for i in range(1, 5)}
    return c


@pytest.fixture
def rolling(cluster: Cluster) -> Cluster:
    """web 1 -> 2 in its canary step, with measured numbers (times are real: the status
    view computes bake left from the wall clock)."""
    import time

    t = time.time() - 40
    cluster.apply(spec_value("1"), t)
    cluster.cycle(t)
    cluster.cycle(t + 1)
    cluster.apply(spec_value("2"), t + 2)
    cluster.cycle(t + 2)  # shadow
    cluster.cycle(t + 12)
    cluster.cycle(t + 23)  # shadow passed -> canary
    cluster.cycle(t + 38)  # canary measured (waiting for min_requests)
    assert cluster.rollout()["state"] == "canary"
    return cluster


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def bosun(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[Any]:
    """Run `bosun ARGS...` in this process through `main()` (exit codes as for users)."""
    monkeypatch.setenv("COLUMNS", "160")
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

    yield run
