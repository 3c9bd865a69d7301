"""The venv scripts/test made holds exactly requirements/lock.txt: no package more, less or other."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.lockfile import LOCK, drift, installed, locked


@pytest.mark.skipif(
    os.environ.get("BOSUN_LATEST") == "1",
    reason="scripts/test --latest runs on the newest versions on purpose; it prints the drift",
)
def test_the_environment_is_the_lock() -> None:
    found = drift()
    assert not found, "the venv is not the lock:\n" + "\n".join(found.lines())


def test_every_pin_carries_hashes() -> None:
    """pip installs the lock with --require-hashes: a pin without a hash would fail a fresh clone."""
    lines = LOCK.read_text().splitlines()
    pins = [i for i, line in enumerate(lines) if "==" in line and line[0] not in " #"]
    assert len(pins) >= len(locked(LOCK)) > 50
    for i in pins:
        assert lines[i + 1].lstrip().startswith("--hash=sha256:"), lines[i]


def test_drift_names_what_differs(tmp_path: Path) -> None:
    """The comparison itself can fail: a lock with one pin moved and one added is reported."""
    here = installed()  # a lock of exactly this environment, then two changes
    pins = {**here, "orjson": "0.0.1", "not-a-real-package": "1.0"}
    fake = tmp_path / "lock.txt"
    fake.write_text(
        "".join(f"{n}=={v} \\\n    --hash=sha256:{'0' * 64}\n" for n, v in pins.items())
    )
    found = drift(fake)
    assert found.missing == {"not-a-real-package": "1.0"}
    assert found.other == {"orjson": ("0.0.1", here["orjson"])}
    assert not found.extra
