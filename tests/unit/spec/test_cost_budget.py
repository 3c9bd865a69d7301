"""settings.cost_budget: a spec whose intervals would exceed the request budget is refused (docs/security.md#cost-guardrails)."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.spec.load import load_yaml
from controller.spec.revisions import apply
from wire.errors import SpecError
from wire.store import DirectoryStore

SPEC = """
settings:
  controller_interval: 10s
  cost_budget: {{usd_per_month: {usd}, machines: 1000, poll: {poll}, heartbeat: 5m}}
services:
  web: {{version: "1", count: 2}}
"""


def test_a_spec_within_its_budget_loads() -> None:
    """1,000 machines at poll 30s / heartbeat 5m cost about $84/month: a $100 budget is fine."""
    assert load_yaml(SPEC.format(usd=100, poll="30s")).services["web"].count == 2


def test_a_spec_over_its_budget_is_refused_with_the_cost_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    """Polling every 5s costs about $0.2k/month for 1,000 machines: refused, naming the cost and the fix."""
    store = DirectoryStore(tmp_path / "b")
    with pytest.raises(SpecError) as info:
        apply(store, load_yaml(SPEC.format(usd=100, poll="5s")), now=0.0)
    message = str(info.value)
    assert "settings.cost_budget" in message and "over the budget of $100.00" in message
    assert "$" in message.split("cost ")[1] and "lengthen poll" in message
    assert list(store.list()) == []


@pytest.mark.parametrize(
    ("budget", "path"),
    [
        ("{usd_per_month: -1, machines: 10}", "cost_budget.usd_per_month"),
        ("{usd_per_month: 5, machines: 0}", "cost_budget.machines"),
        ("{usd_per_month: 5, machines: 10, poll: soon}", "cost_budget.poll"),
        ("{usd_per_month: 5, machines: 10, colour: red}", "cost_budget.colour"),
        ("100", "settings.cost_budget"),
    ],
)
def test_bad_budgets_name_the_field(budget: str, path: str) -> None:
    """Malformed budgets are refused naming the field."""
    with pytest.raises(SpecError, match=path.replace(".", r"\.")):
        load_yaml(
            f"settings:\n  cost_budget: {budget}\nservices:\n  web: {{version: '1', count: 1}}\n"
        )
