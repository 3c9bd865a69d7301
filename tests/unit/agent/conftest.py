"""Agent unit fixtures: a directory bucket and a machine with its files in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.agent.kit import CountingStore, Machine
from wire.store import DirectoryStore


@pytest.fixture
def bucket(tmp_path: Path) -> DirectoryStore:
    return DirectoryStore(tmp_path / "bucket")


@pytest.fixture
def counting(bucket: DirectoryStore) -> CountingStore:
    return CountingStore(bucket)


@pytest.fixture
def machine(tmp_path: Path, bucket: DirectoryStore) -> Machine:
    out = tmp_path / "out"
    services = {"web": {"port": 8080, "files": [{"path": str(out / "web.json")}]}}
    return Machine(tmp_path / "m", bucket.url, services=services).write()
