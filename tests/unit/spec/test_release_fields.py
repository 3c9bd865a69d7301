"""The release fields the planner reads: approval steps, keep_warm, gate confidence, and the
`undo:` / `approval:` records; each bad value names its path."""

from __future__ import annotations

import re

import orjson
import pytest

from controller.spec import document, rollout
from controller.spec.load import load_yaml
from controller.spec.model import DEFAULT_CONFIDENCE
from wire.errors import SpecError

BASE = """
services:
  web:
    version: "2"
    count: 4
    rollout:
{rollout}
"""


def spec_with(rollout_yaml: str, extra: str = "") -> str:
    body = "\n".join("      " + line for line in rollout_yaml.strip().splitlines())
    return BASE.format(rollout=body) + extra


def test_approval_steps_are_refused_while_the_planner_does_not_wait_at_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the switch off (a controller that does not wait at approval steps), `- approve:
    {}` is named and refused with what to do instead."""
    monkeypatch.setattr(rollout, "APPROVAL_STEPS_ACTED_ON", False)
    text = spec_with("steps: [{canary: 1, bake: 1m}, {approve: {}}, {percent: 100}]")
    with pytest.raises(SpecError) as exc:
        load_yaml(text)
    message = str(exc.value)
    assert "services.web.rollout.steps[1].approve" in message
    assert "bosun rollout pause" in message


def test_approval_steps_parse_when_acted_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """With approval steps turned on, `- approve: {}` is a step of kind approve (no machines,
    no bake); extra settings on it are refused."""
    monkeypatch.setattr(rollout, "APPROVAL_STEPS_ACTED_ON", True)
    spec = load_yaml(spec_with("steps: [{canary: 1, bake: 1m}, {approve: {}}]"))
    strategy = spec.rollout_of("web")
    assert strategy is not None
    assert [(s.kind, s.bake) for s in strategy.steps] == [
        ("canary", 60.0),
        ("approve", 0.0),
        ("percent", 0.0),
    ]
    for bad, path in (
        ("{approve: {}, bake: 1m}", "steps[0].bake"),
        ("{approve: {timeout: 1h}}", "steps[0].approve"),
        ("{approve: {}, canary: 1}", "steps[0]"),
    ):
        with pytest.raises(SpecError, match=re.escape(f"services.web.rollout.{path}")):
            load_yaml(spec_with(f"steps: [{bad}]"))


def test_keep_warm_and_gate_confidence_have_defaults_and_bounds() -> None:
    """keep_warm defaults to 0 and may not outlast keep_previous; confidence defaults to
    0.95, min_baseline_requests to min_requests; out-of-range values are named."""
    spec = load_yaml(spec_with("steps: [{canary: 1}]"))
    strategy = spec.rollout_of("web")
    assert strategy is not None
    assert strategy.keep_warm == 0.0
    assert strategy.gates.confidence_level() == DEFAULT_CONFIDENCE == 0.95
    assert strategy.gates.baseline_minimum() == strategy.gates.min_requests == 100
    set_ = load_yaml(
        spec_with(
            "steps: [{canary: 1}]\nkeep_previous: 1h\nkeep_warm: 10m\n"
            "gates: {min_requests: 50, min_baseline_requests: 400, confidence: 0.99}"
        )
    ).rollout_of("web")
    assert set_ is not None and set_.keep_warm == 600.0
    assert set_.gates.confidence_level() == 0.99 and set_.gates.baseline_minimum() == 400
    for bad, path in (
        ("keep_previous: 5m\nkeep_warm: 10m", "services.web.rollout.keep_warm: 600s is longer"),
        (
            "gates: {confidence: 1.5}",
            "services.web.rollout.gates.confidence: expected a confidence",
        ),
        ("gates: {confidence: 0.2}", "services.web.rollout.gates.confidence"),
        ("gates: {min_baseline_requests: 0}", "gates.min_baseline_requests: expected a whole"),
        ("keep_warm: soon", "services.web.rollout.keep_warm: bad duration"),
    ):
        with pytest.raises(SpecError, match=path):
            load_yaml(spec_with("steps: [{canary: 1}]\n" + bad))


def test_new_fields_are_left_out_of_the_stored_spec_while_unset() -> None:
    """A spec that does not use keep_warm, confidence, undo or approval is stored exactly as
    before (a controller that predates them reads it)."""
    value = orjson.loads(
        document.to_json(load_yaml(spec_with("steps: [{canary: 1}]")), applied_at=1.0)
    )
    web = value["services"]["web"]
    assert "undo" not in web and "approval" not in web
    assert "keep_warm" not in web["rollout"]
    assert not {"confidence", "min_baseline_requests"} & set(web["rollout"]["gates"])


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (
            "undo: {id: 5, to_revision: 7, version: '1', from_version: '2'}",
            "undo.to_revision: 7 is not before",
        ),
        (
            "undo: {id: 5, to_revision: 2, version: 1, from_version: '2'}",
            "undo.version: expected a string",
        ),
        ("undo: {id: 5, to_revision: 2, version: '1'}", "undo.from_version: missing"),
        ("approval: {id: 5, version: '2', by: ana}", "approval.reason: expected why"),
        ("approval: {id: 5, version: '2', by: '', reason: ok}", "approval.by: expected who"),
        ("approval: {id: 0, version: '2', by: ana, reason: ok}", "approval.id: expected"),
        ("approval: {id: 5, version: '2', by: ana, reason: \"a\\nb\"}", "one line"),
    ],
)
def test_bad_undo_and_approval_records_are_named(record: str, message: str) -> None:
    """A hand-written undo or approval record that is wrong names its field."""
    text = "services:\n  web:\n    version: '2'\n    count: 1\n    " + record + "\n"
    with pytest.raises(SpecError, match=message):
        load_yaml(text)
