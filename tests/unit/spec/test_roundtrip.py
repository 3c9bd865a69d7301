"""`spec show` prints what `spec apply` reads: every kind of revision round-trips unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from controller.cli import cli
from controller.spec import document, rollout
from controller.spec.load import load_yaml
from controller.spec.revisions import read_current, read_revision
from wire.store import DirectoryStore

FULL = """
settings: {controller_interval: 5s, heartbeat_timeout: 1m, blind_threshold: 40%}
rollout:
  steps:
    - {shadow: 1, bake: 10m}
    - {canary: 2, weight: 5, bake: 30m}
    - {percent: 12.5, bake: 10m}
    - {select: "max(count=2,percent=50)", bake: 10m}
  gates: {max_error_rate: 0.02, max_latency_ratio: 1.3, min_requests: 200,
          min_baseline_requests: 300, confidence: 0.99}
  on_failure: halt
  keep_previous: 1h
  keep_warm: 10m
  watch: 30m
  progress_deadline: 2h
provisioner: {type: command, command: [/usr/local/bin/grow], timeout: 30}
services:
  media:
    version: "3.1"
    count: 4
    config: {codec: opus, limits: {calls: 50}, unset: null, list: [1, "two", null]}
    pools: [edge]
    port: 5060
    weight: 80
    health: {grace: 30s, quarantine: 5m, blind_threshold: off}
    sessions: {drain_timeout: 10m, channels: [voice], config_disruptive: true}
    max_unavailable: 25%
    scale: {min: 2, max: 10, metric: sessions.voice, up: 0.75, down: 0.3,
            target_per_machine: 50, cooldown: 5m, standby: 1}
  router:
    version: "2"
    count: 3
    depends_on: [media]
    rollout: {steps: [{canary: 1, bake: 1m}]}
  lb: {kind: loadbalancer, balances: router, version: "1", count: 1}
"""


def bosun(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=True)


@pytest.fixture
def store(tmp_path: Path) -> tuple[DirectoryStore, str, Path]:
    root = tmp_path / "bucket"
    return DirectoryStore(root), f"file://{root}", tmp_path


def test_every_revision_kind_round_trips(store: tuple[DirectoryStore, str, Path]) -> None:
    """A revision written by each command (apply, update, pause, undo, forget) prints as YAML
    that loads back to the same spec; re-applying the current one writes nothing."""
    st, url, tmp = store
    spec_file = tmp / "spec.yaml"
    spec_file.write_text(FULL)
    steps = [
        ("spec", "apply", str(spec_file)),
        ("update", "router", "--version", "2.1", "--config", "log.level=debug",
         "--select", "count=1"),
        ("update", "media", "--config", "limits.calls=60", "--select", "percent=25"),
    ]  # fmt: skip
    for args in steps:
        result = bosun(*args, "--store", url)
        assert result.exit_code == 0, (args, result.output, result.exception)
    spec_file.write_text(FULL.replace('version: "2"', 'version: "3"'))
    assert bosun("spec", "apply", str(spec_file), "--store", url).exit_code == 0
    # the rollout commands and forget refuse a store no controller has run on: record their
    # revisions as they do (the rollout CLI tests run them on a planner-moved store)
    from controller.spec.commands import with_approval, with_undo
    from controller.spec.revisions import apply, with_forget
    from controller.spec.rollout import add_control

    current = read_current(st)
    assert current is not None
    apply(st, add_control(current.spec, "router", "pause"), now=1.0)
    current = read_current(st)
    assert current is not None
    apply(st, with_approval(current.spec, "router", by="ana", reason="dashboards clean"), now=2.0)
    current = read_current(st)
    assert current is not None
    target = read_revision(st, 1)
    apply(st, with_undo(current.spec, "router", to_revision=1, target=target), now=3.0)
    current = read_current(st)
    assert current is not None
    apply(st, with_forget(current.spec, ("old-1",)), now=4.0)  # as `bosun machines forget`
    current = read_current(st)
    assert current is not None and current.spec.revision == 8
    kinds = current.spec.services["router"]
    assert kinds.control is not None and kinds.approval is not None and kinds.undo is not None
    assert current.spec.forget == ("old-1",)
    for revision in range(1, current.spec.revision + 1):
        shown = bosun("spec", "show", "--revision", str(revision), "--store", url)
        assert shown.exit_code == 0, shown.output
        back = load_yaml(shown.output, source=f"show --revision {revision}")
        stored = read_revision(st, revision)
        assert document.same_content(back, stored), revision
        assert back.services == stored.services and back.settings == stored.settings
    shown_file = tmp / "shown.yaml"
    shown_file.write_text(bosun("spec", "show", "--store", url).output)
    again = bosun("spec", "apply", str(shown_file), "--store", url)
    assert again.exit_code == 0, again.output
    assert "unchanged: revision 8" in again.output
    old = tmp / "old.yaml"
    old.write_text(bosun("spec", "show", "--revision", "1", "--store", url).output)
    assert bosun("spec", "apply", str(old), "--drop-overrides", "--store", url).exit_code == 0
    after = read_current(st)
    assert after is not None and after.spec.revision == 9
    back_to_1 = read_revision(st, 1)
    for name in ("media", "lb"):
        assert after.spec.services[name] == back_to_1.services[name]


def test_an_approval_step_round_trips_once_the_planner_acts_on_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`- approve: {}` prints as itself and loads back (with approval steps turned on)."""
    monkeypatch.setattr(rollout, "APPROVAL_STEPS_ACTED_ON", True)
    text = FULL.replace("    - {percent: 12.5, bake: 10m}\n", "    - approve: {}\n")
    spec = load_yaml(text)
    strategy = spec.rollout
    assert strategy is not None and [s.kind for s in strategy.steps][:3] == [
        "shadow",
        "canary",
        "approve",
    ]
    shown = document.to_yaml(spec)
    assert "- approve: {}" in shown
    assert document.same_content(load_yaml(shown), spec)


def test_show_leaves_unset_fields_out_but_keeps_null_config_values() -> None:
    """Unset fields are left out of the YAML; a null inside config is config, kept."""
    shown = document.to_yaml(load_yaml(FULL))
    assert "balances: null" not in shown and "control:" not in shown
    assert "unset: null" in shown and "- null" in shown
    assert "kind:" not in shown.split("steps:")[1].split("watch:")[0]  # operator step form
