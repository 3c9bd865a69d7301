"""`bosun rollout ...` over a DirectoryStore moved by the real planner."""

from __future__ import annotations

import threading
import time
from typing import Any

from rich.console import Console

from controller.cli.rollout_watch import on_terminal
from controller.spec.revisions import read_current
from tests.unit.rollout_cli.conftest import Cluster, spec_value


def _controls(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["kind"] == "rollout.control"]


def test_pause_is_recorded_as_a_revision_and_applied_once(rolling: Cluster, bosun: Any) -> None:
    """pause writes one spec revision naming the command; the planner honours it once."""
    before = read_current(rolling.store)
    assert before is not None
    run = bosun("rollout", "pause", "web", "--store", rolling.url)
    assert run.code == 0, run.err
    after = read_current(rolling.store)
    assert after is not None and after.spec.revision == before.spec.revision + 1
    ctl = after.spec.services["web"].control
    assert ctl is not None and (ctl.action, ctl.id, ctl.version) == (
        "pause",
        after.spec.revision,
        "2",
    )
    assert f"spec revision {after.spec.revision}" in run.out and "pause" in run.out
    now = time.time()
    first = rolling.cycle(now)
    second = rolling.cycle(now + 1)
    assert [e["data"]["action"] for e in _controls(first)] == ["pause"]
    assert _controls(second) == []
    assert rolling.rollout()["paused"] is True


def test_resume_and_promote_each_apply_once(rolling: Cluster, bosun: Any) -> None:
    """resume clears the pause; promote moves the canary on without waiting for its bake."""
    assert bosun("rollout", "pause", "web", "--store", rolling.url).code == 0
    now = time.time()
    rolling.cycle(now)
    assert bosun("rollout", "resume", "web", "--store", rolling.url).code == 0
    events = rolling.cycle(now + 1) + rolling.cycle(now + 2)
    assert [e["data"]["action"] for e in _controls(events)] == ["resume"]
    assert rolling.rollout()["paused"] is False and rolling.rollout()["state"] == "canary"
    run = bosun("rollout", "promote", "web", "--store", rolling.url)
    assert run.code == 0 and "bake" in run.out
    events = rolling.cycle(now + 3) + rolling.cycle(now + 4)
    assert [e["data"]["action"] for e in _controls(events)] == ["promote"]
    doc = rolling.rollout()
    assert (doc["state"], doc["step"], doc["step_kind"]) == ("steps", 3, "percent")


def test_abort_reverts_at_once(rolling: Cluster, bosun: Any) -> None:
    """abort: the next cycle reverts (no new-version machine left serving)."""
    run = bosun("rollout", "abort", "web", "--store", rolling.url)
    assert run.code == 0 and "reverts now" in run.out
    events = rolling.cycle(time.time())
    assert {e["kind"] for e in events} >= {"rollout.control", "rollout.reverted"}
    doc = rolling.rollout()
    assert (doc["state"], doc["cohort"], doc["shadow"]) == ("reverted", 0, 0)
    again = bosun("rollout", "abort", "web", "--store", rolling.url)
    assert again.code == 2 and "no rollout of web in progress" in again.err
    assert "reverted" in again.err


def test_unknown_service_exits_2(rolling: Cluster, bosun: Any) -> None:
    """A service the spec does not have: one clear line, exit 2, nothing recorded."""
    before = read_current(rolling.store)
    for args in (("pause", "nope"), ("status", "nope"), ("history", "nope")):
        run = bosun("rollout", *args, "--store", rolling.url)
        assert run.code == 2, args
        assert "unknown service 'nope'" in run.err and "web" in run.err
    after = read_current(rolling.store)
    assert before is not None and after is not None
    assert after.spec.revision == before.spec.revision


def test_no_rollout_in_progress_exits_2(cluster: Cluster, bosun: Any) -> None:
    """A steady service: controls refuse (exit 2) and status says there is no rollout."""
    cluster.apply(spec_value("1"), time.time())
    cluster.cycle(time.time())
    for action in ("pause", "resume", "promote", "abort"):
        run = bosun("rollout", action, "web", "--store", cluster.url)
        assert run.code == 2, action
        assert "no rollout of web in progress" in run.err and "version is 1" in run.err
    run = bosun("rollout", "status", "web", "--store", cluster.url)
    assert run.code == 2 and "status/rollouts/web.json" in run.err
    no_strategy = bosun("rollout", "pause", "db", "--store", cluster.url)
    assert no_strategy.code == 2


def test_a_command_right_after_the_version_change_is_accepted(cluster: Cluster, bosun: Any) -> None:
    """Between `bosun update` and the cycle that starts the rollout, pause is accepted
    and applied when the rollout starts."""
    t = time.time()
    cluster.apply(spec_value("1"), t)
    cluster.cycle(t)
    cluster.cycle(t + 1)
    cluster.apply(spec_value("2"), t + 2)
    assert bosun("rollout", "pause", "web", "--store", cluster.url).code == 0
    events = cluster.cycle(t + 3)
    assert [e["kind"] for e in events if e["kind"].startswith("rollout.")][:2] == [
        "rollout.started",
        "rollout.control",
    ]
    assert cluster.rollout()["paused"] is True


def test_status_shows_step_cohorts_and_gates(rolling: Cluster, bosun: Any) -> None:
    """status: state, step, cohort sizes, gate numbers next to their thresholds, bake left."""
    run = bosun("rollout", "status", "web", "--store", rolling.url)
    assert run.code == 0, run.err
    out = run.out
    doc = rolling.rollout()
    assert "web: 1 -> 2  canary" in out
    assert "step 2 of 4: canary" in out
    assert f"new version {doc['cohort']} (serving), shadow {doc['shadow']}" in out
    assert "bake left" in out
    gate = doc["gate"]
    assert f"{gate['new_requests']}" in out and ">= 50" in out and "<= 0.05" in out
    js = bosun("rollout", "status", "web", "--store", rolling.url, "-o", "json")
    assert js.code == 0 and '"state": "canary"' in js.out


def test_watch_refreshes_until_the_rollout_ends(rolling: Cluster) -> None:
    """--watch (rich Live on a recording console) redraws as cycles run and stops by itself
    when the rollout completes; the recording has the step, cohort sizes and gate numbers."""
    console = Console(record=True, width=140, force_terminal=True)
    done = threading.Event()

    def cycles() -> None:
        # let the first frame render, then promote through every step
        time.sleep(0.3)
        for action in ("promote", "promote", "promote"):
            current = read_current(rolling.store)
            assert current is not None
            from controller.spec.revisions import apply
            from controller.spec.rollout import add_control

            apply(rolling.store, add_control(current.spec, "web", action), now=time.time())
            rolling.cycle(time.time())
            rolling.cycle(time.time() + 0.01)
            time.sleep(0.2)
        done.set()

    worker = threading.Thread(target=cycles, daemon=True)
    worker.start()
    watched = on_terminal(rolling.store, "web", console, 0.05, timeout=20)
    worker.join(timeout=10)
    assert done.is_set()
    assert watched.end == "complete" and watched.code == 0
    assert watched.doc is not None and watched.doc["state"] == "complete"
    text = console.export_text()
    assert "step 2 of 4: canary" in text  # the first frame
    assert "step 3 of 4: percent" in text  # a later one
    assert "new version 1 (serving)" in text and "shadow 0" in text
    assert "requests" in text and ">= 50" in text and "error rate" in text
    assert "complete" in text


def test_history_lists_transitions_with_numbers(rolling: Cluster, bosun: Any) -> None:
    """history: started, step, control and reverted events with reasons and measured numbers."""
    assert bosun("rollout", "abort", "web", "--store", rolling.url).code == 0
    rolling.cycle(time.time())
    run = bosun("rollout", "history", "web", "--store", rolling.url)
    assert run.code == 0, run.err
    for word in ("started", "step", "control", "reverted", "aborted by the operator"):
        assert word in run.out, word
    assert "new_requests=" in run.out
    assert "last rollout (memory): 1 -> 2 reverted" in run.out


def test_watch_started_right_after_a_version_change_follows_the_new_rollout(
    rolling: Cluster,
) -> None:
    """--watch given while the status still shows the previous (reverted) rollout waits for
    the new one instead of exiting at once."""
    from controller.spec.revisions import apply
    from controller.spec.rollout import add_control

    current = read_current(rolling.store)
    assert current is not None
    apply(rolling.store, add_control(current.spec, "web", "abort"), now=time.time())
    rolling.cycle(time.time())
    assert rolling.rollout()["state"] == "reverted"
    rolling.apply(spec_value("3"), time.time())  # the next cycle starts 1 -> 3
    console = Console(record=True, width=140, force_terminal=True)

    def later() -> None:
        time.sleep(0.4)
        rolling.cycle(time.time())
        current = read_current(rolling.store)
        assert current is not None
        apply(rolling.store, add_control(current.spec, "web", "abort"), now=time.time())
        time.sleep(0.3)
        rolling.cycle(time.time())

    worker = threading.Thread(target=later, daemon=True)
    worker.start()
    watched = on_terminal(rolling.store, "web", console, 0.05, timeout=20)
    worker.join(timeout=10)
    assert watched.doc is not None
    assert (watched.doc["to_version"], watched.doc["state"]) == ("3", "reverted")
    assert watched.code == 3
    text = console.export_text()
    assert "web: 1 -> 2  reverted" in text and "web: 1 -> 3  shadow" in text
