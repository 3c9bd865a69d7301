"""`bosun rollout promote|approve|undo` of a coupled release's member act on the whole
release (docs/spec.md, "Coupled releases"): recorded for every member in one spec revision,
acted on by the real planner in one cycle, dependencies first (promote, approve) or
dependents first (undo). Over a DirectoryStore moved by the real planner (no agents)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from controller.spec.revisions import read_current
from tests.unit.rollout_cli.conftest import Cluster
from wire.layout import rollout_status_key
from wire.store import StoredObject

GROUP = "router-media"
STEPS: list[dict[str, Any]] = [{"canary": 1, "bake": "1h"}, {"percent": 100, "bake": "1h"}]


def coupled_value(media: str, router: str, steps: list[dict[str, Any]] = STEPS) -> dict[str, Any]:
    strategy = {"steps": steps, "gates": {"max_error_rate": 0.05, "min_requests": 50},
                "on_failure": "revert"}  # fmt: skip
    return {
        "services": {
            "media": {"version": media, "count": 2, "rollout": strategy},
            "router": {"version": router, "count": 2, "depends_on": ["media"],
                       "rollout": strategy},
        },
        "coupled": {GROUP: {"services": ["router", "media"]}},
    }  # fmt: skip


def _doc(c: Cluster, service: str) -> dict[str, Any]:
    import orjson

    got = c.store.get(rollout_status_key(service))
    assert isinstance(got, StoredObject), f"no status/rollouts/{service}.json"
    value: dict[str, Any] = orjson.loads(got.body)
    return value


def _of(events: list[dict[str, Any]], kind: str) -> list[str]:
    return [str(e["service"]) for e in events if e["kind"] == kind]


@pytest.fixture
def coupled(cluster: Cluster) -> Cluster:
    """media and router 1 -> 2 as one coupled release, both in their canary step (1h bake)."""
    cluster.machines = {f"{s[0]}{i}": {"eligible": [s]} for s in ("media", "router")
                        for i in range(1, 4)}  # fmt: skip
    t = time.time() - 60
    cluster.apply(coupled_value("1", "1"), t)
    cluster.cycle(t)
    cluster.cycle(t + 1)
    cluster.apply(coupled_value("2", "2"), t + 2)
    started = cluster.cycle(t + 2)
    assert _of(started, "rollout.started") == ["media", "router"], started
    cluster.cycle(t + 40)
    for svc in ("media", "router"):
        doc = _doc(cluster, svc)
        assert (doc["state"], doc["group"]) == ("canary", GROUP), doc
    return cluster


def test_promote_of_a_member_promotes_the_whole_release(coupled: Cluster, bosun: Any) -> None:
    """Promoting router alone would not move it (media still bakes, the release takes the
    lowest step): the command records promote for both, and both leave the canary."""
    run = bosun("rollout", "promote", "router", "--store", coupled.url)
    assert run.code == 0, run.err
    current = read_current(coupled.store)
    assert current is not None
    controls = {s: current.spec.services[s].control for s in ("media", "router")}
    assert {(c.action, c.id, c.version) for c in controls.values() if c is not None} == {
        ("promote", current.spec.revision, "2")
    }, controls
    assert f"promote of coupled release {GROUP} (media to version 2, router to version 2)" in (
        run.out
    )
    events = coupled.cycle(time.time())
    assert _of(events, "rollout.control") == ["media", "router"], events
    assert _of(events, "rollout.step") == ["media", "router"], events
    assert {
        (_doc(coupled, s)["step"], _doc(coupled, s)["step_kind"]) for s in ("media", "router")
    } == {(2, "percent")}


def test_approve_of_a_member_approves_the_whole_release(cluster: Cluster, bosun: Any) -> None:
    """Both wait at their approval step; approving media records the same approval (who,
    why, revision) for router, and both go on in the next cycle, media first."""
    cluster.machines = {f"{s[0]}{i}": {"eligible": [s]} for s in ("media", "router")
                        for i in range(1, 4)}  # fmt: skip
    steps = [{"approve": {}}, *STEPS]
    t = time.time() - 60
    cluster.apply(coupled_value("1", "1", steps), t)
    cluster.cycle(t)
    cluster.cycle(t + 1)
    cluster.apply(coupled_value("2", "2", steps), t + 2)
    cluster.cycle(t + 2)
    cluster.cycle(t + 3)
    assert {_doc(cluster, s)["state"] for s in ("media", "router")} == {"awaiting_approval"}
    run = bosun("rollout", "approve", "media", "--reason", "dashboards clean", "--by", "ana",
                "--store", cluster.url)  # fmt: skip
    assert run.code == 0, run.err
    assert f"coupled release {GROUP} (media to version 2, router to version 2) by ana" in run.out
    current = read_current(cluster.store)
    assert current is not None
    approvals = [current.spec.services[s].approval for s in ("media", "router")]
    assert [(a.id, a.version, a.by, a.reason) for a in approvals if a is not None] == [
        (current.spec.revision, "2", "ana", "dashboards clean")
    ] * 2, approvals
    events = cluster.cycle(t + 10)
    assert _of(events, "rollout.approved") == ["media", "router"], events
    for svc in ("media", "router"):
        doc = _doc(cluster, svc)
        assert (doc["state"], doc["approval"]["by"]) == ("canary", "ana"), doc


def test_undo_of_a_member_during_the_release_cancels_both_dependents_first(
    coupled: Cluster, bosun: Any
) -> None:
    """Undo of media (the dependency) while the release is in its canary sets both back to
    1 in one revision; the next cycle cancels both, router before media."""
    run = bosun("rollout", "undo", "media", "--store", coupled.url)
    assert run.code == 0, run.err
    assert f"undo of coupled release {GROUP}: router 2 -> back to 1; media 2 -> back to 1" in (
        run.out
    )
    current = read_current(coupled.store)
    assert current is not None
    for svc in ("media", "router"):
        svc_spec = current.spec.services[svc]
        assert svc_spec.version == "1" and svc_spec.undo is not None, svc_spec
        assert (svc_spec.undo.id, svc_spec.undo.from_version) == (current.spec.revision, "2")
    events = coupled.cycle(time.time())
    assert _of(events, "rollout.superseded") == ["router", "media"], events
    for svc in ("media", "router"):
        doc = _doc(coupled, svc)
        assert (doc["state"], doc["cohort"], doc["group"]) == ("superseded", 0, GROUP), doc


def test_undo_of_a_member_after_the_release_rolls_both_back_dependents_first(
    coupled: Cluster, bosun: Any
) -> None:
    """After the release completed, undo of router takes both back (router 2.0 is undone
    with the media it needed): both rollouts back start in the next cycle, router first,
    as one coupled release again. A member whose release is the same in the revision
    returned to is left alone."""
    for _ in range(4):
        if {_doc(coupled, s)["state"] for s in ("media", "router")} == {"complete"}:
            break
        assert bosun("rollout", "promote", "media", "--store", coupled.url).code == 0
        coupled.cycle(time.time())
        coupled.cycle(time.time() + 0.01)
    assert {_doc(coupled, s)["state"] for s in ("media", "router")} == {"complete"}
    run = bosun("rollout", "undo", "router", "--store", coupled.url)
    assert run.code == 0, run.err
    assert "router 2 -> back to 1; media 2 -> back to 1" in run.out
    events = coupled.cycle(time.time())
    assert _of(events, "rollout.undo") == ["router", "media"], events
    assert _of(events, "rollout.started") == ["router", "media"], events
    for svc in ("media", "router"):
        doc = _doc(coupled, svc)
        assert (doc["from_version"], doc["to_version"], doc["group"]) == ("2", "1", GROUP), doc
    # router alone changes: undoing it leaves media (same release in that revision) alone
    coupled.apply(coupled_value("1", "3"), time.time())
    alone = bosun("rollout", "undo", "router", "--store", coupled.url)
    assert alone.code == 0, alone.err
    assert "undo of router 3 -> back to 1 (the release of revision" in alone.out, alone.out
    current = read_current(coupled.store)
    assert current is not None
    assert current.spec.services["media"].undo is None
