"""`rollout status --watch` off a terminal (a line per change, exit codes), `rollout undo`
and `rollout approve`, over a DirectoryStore moved by the real planner (no agents: the
real-process versions of complete and reverted are in tests/integration/rollout)."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from controller.cli import rollout_watch
from controller.spec import rollout as rollout_spec
from controller.spec.revisions import apply, read_current
from controller.spec.rollout import add_control
from tests.unit.rollout_cli.conftest import STRATEGY, Cluster, spec_value


def _command(c: Cluster, action: str) -> None:
    current = read_current(c.store)
    assert current is not None
    apply(c.store, add_control(current.spec, "web", action), now=time.time())


def _in_background(steps: Callable[[], None]) -> threading.Thread:
    def run() -> None:
        time.sleep(0.2)  # the watch has read the first state
        steps()

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    return worker


def _stream(c: Cluster, timeout: float = 20) -> tuple[rollout_watch.Watched, list[str]]:
    lines: list[str] = []
    watched = rollout_watch.streamed(c.store, "web", 0.02, timeout=timeout, write=lines.append)
    return watched, lines


def test_watch_streams_a_line_per_change_and_exits_0_on_complete(rolling: Cluster) -> None:
    """Off a terminal every change is one line (none repeated), and a completed rollout
    ends the watch with exit code 0."""

    def promote_through() -> None:
        for _ in range(3):
            _command(rolling, "promote")
            rolling.cycle(time.time())
            rolling.cycle(time.time() + 0.01)
            time.sleep(0.1)

    worker = _in_background(promote_through)
    watched, lines = _stream(rolling)
    worker.join(timeout=10)
    assert (watched.end, watched.code) == ("complete", 0)
    bodies = [line.split(" ", 1)[1] for line in lines]
    assert all(a != b for a, b in itertools.pairwise(bodies)), lines
    assert bodies[0].startswith("web 1 -> 2: canary; step 2/4 canary; new 1 shadow 0 old")
    assert any("step 3/4 percent" in b for b in bodies), lines
    assert bodies[-1].startswith("web 1 -> 2: complete"), lines
    final = rollout_watch.final_line("web", watched)
    assert final.startswith("rollout of web 1 -> 2 complete") and final.endswith("(exit 0)")


def test_watch_exits_3_when_reverted(rolling: Cluster, bosun: Any) -> None:
    """An aborted (reverted) rollout ends `status --watch` with exit 3 and the reason."""
    worker = _in_background(lambda: (_command(rolling, "abort"), rolling.cycle(time.time())))
    watched, lines = _stream(rolling)
    worker.join(timeout=10)
    assert (watched.end, watched.code) == ("reverted", 3)
    assert "reverted" in lines[-1] and "aborted by the operator" in lines[-1]
    run = bosun("rollout", "status", "web", "--watch", "--store", rolling.url)
    assert run.code == 3, run.err
    assert "web 1 -> 2: reverted" in run.out
    assert "reverted: aborted by the operator (exit 3)" in run.err


def test_watch_exits_5_when_the_progress_deadline_passes(rolling: Cluster, bosun: Any) -> None:
    """A rollout still baking when its progress_deadline passes is reverted by the planner;
    the watch tells it from a gate failure: exit 5."""
    worker = _in_background(lambda: rolling.cycle(time.time() + 3 * 3600))
    watched, _ = _stream(rolling)
    worker.join(timeout=10)
    assert watched.doc is not None and watched.doc["state"] == "reverted"
    assert (watched.end, watched.code) == ("deadline", 5)
    run = bosun("rollout", "status", "web", "--watch", "-o", "json", "--store", rolling.url)
    assert run.code == 5
    assert run.out.count("\n") == 1 and '"state":"reverted"' in run.out  # one JSON line
    assert "passed its progress_deadline" in run.err


def test_watch_exits_4_when_halted_and_6_on_timeout(cluster: Cluster, bosun: Any) -> None:
    """on_failure: halt stops the watch with exit 4; a rollout that does not end before
    --timeout gives exit 6."""
    t = time.time() - 60
    strict = {**STRATEGY, "gates": {"max_error_rate": 0.001, "min_requests": 50},
              "on_failure": "halt"}  # fmt: skip

    def value(version: str) -> dict[str, Any]:
        v = spec_value(version)
        v["services"]["web"]["rollout"] = strict
        return v

    cluster.apply(value("1"), t)
    cluster.cycle(t)
    cluster.cycle(t + 1)
    cluster.apply(value("2"), t + 2)
    for dt in (2, 12, 23, 38):
        cluster.cycle(t + dt)  # shadow measured: version 2's 1% errors fail the gate
    doc = cluster.rollout()
    if doc["state"] != "halted":
        cluster.cycle(t + 50)
    assert cluster.rollout()["state"] == "halted", cluster.rollout()
    run = bosun("rollout", "status", "web", "--watch", "--store", cluster.url)
    assert run.code == 4 and "bosun rollout resume web" in run.err
    _command(cluster, "resume")
    cluster.cycle(time.time())
    started = time.monotonic()
    run = bosun("rollout", "status", "web", "--watch", "--timeout", "0.3s", "--interval",
                "0.05s", "--store", cluster.url)  # fmt: skip
    assert run.code == 6 and "still in progress when --timeout passed" in run.err
    assert time.monotonic() - started < 5


def test_watch_waits_for_a_rollout_that_has_not_started(cluster: Cluster) -> None:
    """Right after the version change (no status document yet) the watch waits, saying so,
    instead of failing."""
    t = time.time()
    cluster.apply(spec_value("1"), t)
    cluster.cycle(t)
    cluster.apply(spec_value("2"), t + 1)
    watched, lines = _stream(cluster, timeout=0.2)
    assert watched.end == "timeout"
    assert lines[0].endswith("web: waiting for the rollout to 2 to start")


def test_undo_after_completion_rolls_the_previous_release_back(
    cluster: Cluster, bosun: Any
) -> None:
    """After 1 -> 2 completed, undo sets web back to 1 as a new revision recording what it
    undid; the planner starts a rollout back to 1. `rollout abort` after completion exits 2
    and names undo."""
    t = time.time() - 100
    cluster.apply(spec_value("1"), t)
    cluster.cycle(t)
    cluster.cycle(t + 1)
    cluster.apply(spec_value("2", rollout=False), t + 2)
    cluster.cycle(t + 3)
    cluster.cycle(t + 4)
    cluster.apply(spec_value("2"), t + 5)  # the strategy back: the next change rolls out
    cluster.cycle(t + 6)
    abort = bosun("rollout", "abort", "web", "--store", cluster.url)
    assert abort.code == 2
    cluster.apply(spec_value("3"), t + 7)
    for dt in (8, 9):
        cluster.cycle(t + dt)
    for _ in range(6):
        if cluster.rollout()["state"] == "complete":
            break
        _command(cluster, "promote")
        cluster.cycle(time.time())
        cluster.cycle(time.time() + 0.01)
    assert cluster.rollout()["state"] == "complete", cluster.rollout()
    abort = bosun("rollout", "abort", "web", "--store", cluster.url)
    assert abort.code == 2 and "run `bosun rollout undo web`" in abort.err
    assert "to go back to 2" in abort.err
    before = read_current(cluster.store)
    assert before is not None
    run = bosun("rollout", "undo", "web", "--store", cluster.url)
    assert run.code == 0, run.err
    after = read_current(cluster.store)
    assert after is not None and after.spec.revision == before.spec.revision + 1
    undo = after.spec.services["web"].undo
    assert undo is not None and after.spec.services["web"].version == "2"
    assert (undo.id, undo.version, undo.from_version) == (after.spec.revision, "2", "3")
    assert undo.to_revision == 3  # the newest revision with another release of web
    assert "through the rollout's stages" in run.out
    events = cluster.cycle(time.time())
    started = [e for e in events if e["kind"] == "rollout.started"]
    assert started and started[0]["data"]["from"] == "3" and started[0]["data"]["to"] == "2"
    again = bosun("rollout", "undo", "web", "--to-revision", "1", "--store", cluster.url)
    assert again.code == 0 and "back to 1 (the release of revision 1)" in again.out
    same = bosun("rollout", "undo", "web", "--to-revision", "1", "--store", cluster.url)
    assert same.code == 2 and "nothing to undo" in same.err


def test_undo_during_a_rollout_cancels_it(rolling: Cluster, bosun: Any) -> None:
    """Undo while 1 -> 2 is in progress sets web back to 1: the next cycle takes every
    new-version machine back and the watch then exits 0 (web runs what the spec asks)."""
    run = bosun("rollout", "undo", "web", "--store", rolling.url)
    assert run.code == 0, run.err
    assert "the rollout 1 -> 2 in progress is cancelled" in run.out
    events = rolling.cycle(time.time())
    assert any(e["kind"] == "rollout.superseded" for e in events), events
    doc = rolling.rollout()
    assert (doc["state"], doc["cohort"], doc["shadow"]) == ("superseded", 0, 0)
    watched, _ = _stream(rolling, timeout=5)
    assert (watched.end, watched.code) == ("complete", 0)


def test_approve_needs_an_approval_step_and_records_who_and_why(
    cluster: Cluster, bosun: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """approve refuses a rollout without an approval step; with one (approval steps turned
    on) it records the approver and the reason as a new revision for the spec's version."""
    t = time.time()
    cluster.apply(spec_value("1"), t)
    cluster.cycle(t)
    cluster.apply(spec_value("2"), t + 1)
    no_step = bosun("rollout", "approve", "web", "--reason", "ok", "--store", cluster.url)
    assert no_step.code == 2 and "has no approval step" in no_step.err
    missing = bosun("rollout", "approve", "web", "--store", cluster.url)
    assert missing.code == 2 and "--reason" in missing.err
    monkeypatch.setattr(rollout_spec, "APPROVAL_STEPS_ACTED_ON", True)
    value = spec_value("2")
    value["services"]["web"]["rollout"] = {
        **STRATEGY,
        "steps": [*STRATEGY["steps"], {"approve": {}}],
    }
    cluster.apply(value, t + 2)
    run = bosun("rollout", "approve", "web", "--reason", "canary dashboards clean", "--by",
                "ana", "--store", cluster.url)  # fmt: skip
    assert run.code == 0, run.err
    current = read_current(cluster.store)
    assert current is not None
    approval = current.spec.services["web"].approval
    assert approval is not None
    assert (approval.id, approval.version, approval.by, approval.reason) == (
        current.spec.revision, "2", "ana", "canary dashboards clean",
    )  # fmt: skip
    assert f"spec revision {current.spec.revision}" in run.out and "by ana" in run.out


def test_status_shows_approval_and_undo_from_the_status_document(rolling: Cluster) -> None:
    """The fields the planner writes for an approval step and an undo are shown in the
    view and in the streamed line."""
    from rich.console import Console

    from controller.cli import rollout_view as view

    doc = {**rolling.rollout(), "step_kind": "approve",
           "approval": {"waiting": True, "since": time.time() - 90},
           "undo": {"revision": 12, "to_revision": 9, "warm": True}}  # fmt: skip
    current = read_current(rolling.store)
    assert current is not None
    console = Console(record=True, width=160)
    console.print(view.render_status(doc, current.spec))
    text = console.export_text()
    assert "WAITING FOR APPROVAL" in text and "bosun rollout approve web --reason" in text
    assert "waiting for approval for 90s" in text
    assert "undo (spec revision 12) back to the release of revision 9: warm machines" in text
    line = view.status_line("web", doc, current.spec)
    assert "(waiting for approval)" in line and "undo to revision 9" in line
    done = {**doc, "approval": {"waiting": False, "by": "ana", "reason": "ok", "revision": 13}}
    assert "approved by ana" in view.status_line("web", done, current.spec)


def test_the_planner_waits_at_an_approval_step_and_the_watch_line_says_so(
    cluster: Cluster, bosun: Any
) -> None:
    """With the real planner, a rollout reaching `- approve: {}` waits (state
    awaiting_approval, the status document's approval field); the streamed watch line says
    it waits, `bosun rollout approve` lets it go on and the line names the approver."""
    from controller.cli import rollout_view as view

    strategy = {**STRATEGY, "steps": [{"canary": 1, "bake": "10s"}, {"approve": {}}]}
    t = time.time() - 200
    value = spec_value("1")
    value["services"]["web"]["rollout"] = strategy
    cluster.apply(value, t)
    cluster.cycle(t)
    cluster.cycle(t + 1)
    value = spec_value("2")
    value["services"]["web"]["rollout"] = strategy
    cluster.apply(value, t + 2)
    for dt in (2, 12, 22, 32):
        cluster.cycle(t + dt)
    doc = cluster.rollout()
    assert doc["state"] == "awaiting_approval", doc
    assert doc["approval"]["waiting"] is True and doc["step_kind"] == "approve", doc
    current = read_current(cluster.store)
    assert current is not None
    assert "(waiting for approval)" in view.status_line("web", doc, current.spec)
    cluster.cycle(t + 100)
    assert cluster.rollout()["state"] == "awaiting_approval"
    run = bosun("rollout", "approve", "web", "--reason", "dashboards clean", "--by", "ana",
                "--store", cluster.url)  # fmt: skip
    assert run.code == 0, run.err
    events = cluster.cycle(t + 110)
    assert [e["kind"] for e in events if e["kind"] == "rollout.approved"], events
    doc = cluster.rollout()
    assert doc["approval"] == {
        "waiting": False, "by": "ana", "reason": "dashboards clean",
        "revision": read_current(cluster.store).spec.revision,  # type: ignore[union-attr]
    }  # fmt: skip
    current = read_current(cluster.store)
    assert current is not None
    line = view.status_line("web", doc, current.spec)
    assert "approved by ana" in line and "waiting for approval" not in line


def test_gate_table_shows_the_numbers_the_proportion_test_decided_on() -> None:
    """The gate table of `rollout status` shows both versions' requests and errors, z and the
    p-value against the confidence, as the planner's verdict computed them."""
    from rich.console import Console

    from controller.cli import rollout_view as view
    from controller.planner.measure import Cohort, evaluate
    from controller.spec.model import Gates

    gates = Gates(min_requests=10, min_baseline_requests=50, max_error_ratio=2.0)
    result = evaluate(gates, Cohort(1, 15, 1), Cohort(1, 100, 1), None)
    assert result.verdict == "wait" and "not significant at confidence 0.95" in result.reason
    gate = {**result.numbers, "verdict": result.verdict, "reason": result.reason}
    console = Console(record=True, width=160)
    console.print(view.gate_table(gate))
    text = console.export_text()
    for shown in ("15", "100", "z 1.57, p 0.0587", "p < 0.05", "not yet"):
        assert shown in text, (shown, text)
