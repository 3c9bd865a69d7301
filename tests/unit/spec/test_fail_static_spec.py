"""Spec keys of fail static and the disruption budget: what is accepted, what is refused."""

from __future__ import annotations

import pytest

from controller.spec.load import load_yaml
from wire.errors import SpecError

BASE = "services:\n  web: {version: '1', count: 2%s}\n"


@pytest.mark.parametrize(
    ("text", "want"),
    [("0.55", 0.55), ("'55%'", 0.55), ("1", 1.0), ("off", "off"), ("'off'", "off")],
)
def test_blind_threshold_accepts_a_share_or_off(text: str, want: object) -> None:
    """settings.blind_threshold and health.blind_threshold: a share in (0, 1], 55%, or off."""
    spec = load_yaml(
        f"settings: {{blind_threshold: {text}}}\n" + BASE % f", health: {{blind_threshold: {text}}}"
    )
    assert spec.settings.blind_threshold == want
    assert spec.services["web"].health.blind_threshold == want


@pytest.mark.parametrize("text", ["1.5", "-1", "0", "abc", "'120%'", "true"])
def test_blind_threshold_refuses_anything_else_and_names_the_value(text: str) -> None:
    """A bad value is refused with its path and the value given."""
    with pytest.raises(SpecError, match=r"settings\.blind_threshold: expected a share"):
        load_yaml(f"settings: {{blind_threshold: {text}}}\n" + BASE % "")


def test_the_default_budget_is_applied_by_the_planner_not_stored() -> None:
    """No max_unavailable in the spec stays None (the planner applies 25%), so `spec show`
    round-trips what the operator wrote."""
    assert load_yaml(BASE % "").services["web"].max_unavailable is None


def test_max_unavailable_zero_is_refused() -> None:
    """0 would hold every change forever: refused with the fix."""
    with pytest.raises(SpecError, match="0 would hold every version or config change forever"):
        load_yaml(BASE % ", max_unavailable: 0")
