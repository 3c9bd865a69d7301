"""Fixtures for controller unit tests: a real directory bucket, a master key, simulated agents."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from controller.shell.cycle import Controller
from controller.shell.lease import LeaseSettings
from controller.spec.load import load_yaml
from controller.spec.revisions import apply
from tests.unit.controller.sim import SPEC_YAML, SimAgent
from tests.unit.controller.stores import Recording
from wire.layout import STATUS_CLUSTER
from wire.store import DirectoryStore, StoredObject

MASTER = bytes(range(32))


class Clock:
    """A clock for the controller's `wall` and the lease: it moves only when a test sets `t`."""

    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def store(tmp_path: Path) -> Recording:
    return Recording(DirectoryStore(tmp_path / "bucket"))


@pytest.fixture
def spec_store(store: Recording) -> Recording:
    apply(store.inner, load_yaml(SPEC_YAML), now=time.time())
    return store


def agents(
    store: Recording, n: int = 4, eligible: tuple[str, ...] = ("web", "lb")
) -> list[SimAgent]:
    return [SimAgent(store.inner, MASTER, f"web-{i}", eligible=eligible) for i in range(n)]


def on_a_clock(root: Path) -> tuple[Recording, Clock, Controller, list[SimAgent]]:
    """SPEC_YAML applied to a directory bucket at `root`, a controller whose wall clock is a
    `Clock` set to now (lease 300 s, renewed within 200 s) and four machines eligible for
    web and lb; nothing cycled yet."""
    start = time.time()
    store = Recording(DirectoryStore(root))
    apply(store.inner, load_yaml(SPEC_YAML), now=start)
    clock = Clock(start)
    ctl = Controller(store, MASTER, holder="ctl", lease=LeaseSettings(300, 200), wall=clock)
    return store, clock, ctl, agents(store)


def controller(store: Recording) -> Controller:
    """An in-process controller over `store` with the suite's master key."""
    return Controller(store, MASTER, holder="ctl", lease=LeaseSettings(30, 20))


def status(store: Recording) -> dict[str, Any]:
    """status/cluster.json as the bucket holds it."""
    got = store.inner.get(STATUS_CLUSTER)
    assert isinstance(got, StoredObject)
    value: dict[str, Any] = orjson.loads(got.body)
    return value


def body(store: Recording, key: str) -> bytes:
    """The stored bytes of `key` (it must exist)."""
    got = store.inner.get(key)
    assert isinstance(got, StoredObject)
    return got.body
