"""Fixtures for controller unit tests: a real directory bucket, a master key, simulated agents."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from controller.spec.load import load_yaml
from controller.spec.revisions import apply
from tests.unit.controller.sim import SPEC_YAML, SimAgent
from tests.unit.controller.stores import Recording
from wire.store import DirectoryStore

MASTER = bytes(range(32))


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
