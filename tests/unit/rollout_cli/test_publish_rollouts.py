"""`publish_rollouts`: status/rollouts/<service>.json written when, and only when, it changed."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import orjson

from controller.planner.model import RolloutStatus
from controller.shell.publish import publish_rollouts
from wire.store import DirectoryStore, StoredObject

STATUS = RolloutStatus(
    service="web", state="canary", from_version="1", to_version="2", step=2, steps=3,
    step_kind="canary", started_at=100.0, step_started_at=110.0, bake_left=20.0,
    cohort=1, shadow=0, old=1, previous=1, gate={"new_requests": 10, "verdict": "wait"},
)  # fmt: skip


def test_written_once_per_change(tmp_path: Path) -> None:
    """An unchanged status is not rewritten; a changed one is; each service has its key."""
    store = DirectoryStore(tmp_path)
    seen: dict[str, str] = {}
    assert publish_rollouts(store, {"web": STATUS}, seen, lambda: True) == [
        "status/rollouts/web.json"
    ]
    assert publish_rollouts(store, {"web": STATUS}, seen, lambda: True) == []
    later = replace(STATUS, bake_left=19.0)
    db = replace(STATUS, service="db", state="complete")
    assert publish_rollouts(store, {"web": later, "db": db}, seen, lambda: True) == [
        "status/rollouts/db.json",
        "status/rollouts/web.json",
    ]
    got = store.get("status/rollouts/web.json")
    assert isinstance(got, StoredObject)
    assert orjson.loads(got.body)["bake_left"] == 19.0


def test_nothing_written_after_the_lease_deadline(tmp_path: Path) -> None:
    """A controller past its renew deadline writes no rollout status (and remembers none)."""
    store = DirectoryStore(tmp_path)
    seen: dict[str, str] = {}
    assert publish_rollouts(store, {"web": STATUS}, seen, lambda: False) == []
    assert seen == {}
    assert not list(store.list("status/"))
