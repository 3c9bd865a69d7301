"""A bucket written by the real controller (in process, on a fake clock) for the web tests:
web 1.0 -> 2.0 released through all four rollout steps by simulated agents with traffic;
`blind_bucket` goes on until four of five web machines fall silent and web is held static."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from controller.shell.cycle import Controller
from controller.shell.lease import LeaseSettings
from controller.web.reader import FleetReader
from tests.support.simfleet import SimFleet
from wire.layout import STATUS_CLUSTER
from wire.store import DirectoryStore, StoredObject

MASTER = bytes(range(32))
STEP = 0.5


@dataclass
class Built:
    store: DirectoryStore
    end: float  # the fake clock when the controller stopped

    def reader(self, later: float = 0.0) -> FleetReader:
        return FleetReader(self.store, clock=lambda: self.end + later)

    def cluster(self) -> dict:  # type: ignore[type-arg]
        got = self.store.get(STATUS_CLUSTER)
        assert isinstance(got, StoredObject)
        return orjson.loads(got.body)  # type: ignore[no-any-return]


def _run(root: Path, then: Callable[[SimFleet, Controller, list[float]], None]) -> None:
    store = DirectoryStore(root)
    clock = [time.time() - 300]
    ctl = Controller(store, MASTER, holder="ctl-test", lease=LeaseSettings(30, 20),
                     wall=lambda: clock[0], clock=lambda: clock[0])  # fmt: skip
    fleet = SimFleet.build(store, MASTER)
    fleet.apply("1.0", clock[0])
    for _ in range(6):
        ctl.cycle()
        fleet.round(clock[0])
        clock[0] += STEP
    fleet.apply("2.0", clock[0])
    for _ in range(40):
        ctl.cycle()
        fleet.round(clock[0])
        clock[0] += STEP
    then(fleet, ctl, clock)


@pytest.fixture(scope="session")
def rolled_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("web") / "rolled"
    _run(root, lambda f, c, t: None)
    return root


@pytest.fixture
def rolled(rolled_root: Path, tmp_path: Path) -> Built:
    """A copy per test (readers cache by ETag; tests never share one)."""
    root = tmp_path / "bucket"
    shutil.copytree(rolled_root, root)
    return _built(root)


def _built(root: Path) -> Built:
    from controller.shell.lease import LeaseDoc
    from wire.layout import LEASE

    store = DirectoryStore(root)
    got = store.get(LEASE)
    assert isinstance(got, StoredObject)
    return Built(store, LeaseDoc.decode(got.body).renewed_at)


@pytest.fixture(scope="session")
def blind_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("web") / "blind"

    def silence(fleet: SimFleet, ctl: Controller, clock: list[float]) -> None:
        fleet.silent |= {"web-1", "web-2", "web-3", "web-4"}
        for _ in range(20):
            ctl.cycle()
            fleet.round(clock[0])
            clock[0] += STEP

    _run(root, silence)
    return root


@pytest.fixture
def blind(blind_root: Path, tmp_path: Path) -> Built:
    root = tmp_path / "blind-bucket"
    shutil.copytree(blind_root, root)
    return _built(root)
