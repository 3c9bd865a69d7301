"""`bosun cost`: the request model and its CLI."""

from __future__ import annotations

import orjson
import pytest
from click.testing import CliRunner

from controller.cli import cli
from controller.spec.request_cost import MONTH_SECONDS, CostInputs, estimate


def test_floor_matches_the_design_formula() -> None:
    """Per machine: GET per poll + PUT per heartbeat + GET per heartbeat; LIST per 1,000 per cycle."""
    est = estimate(CostInputs(machines=1000, poll=30, heartbeat=300, controller_interval=10))
    gets = 1000 * MONTH_SECONDS / 30 + 1000 * MONTH_SECONDS / 300
    puts = 1000 * MONTH_SECONDS / 300 + MONTH_SECONDS / 10  # snapshots + one LIST page per cycle
    assert est.floor_usd == pytest.approx(gets * 0.0004 / 1000 + puts * 0.005 / 1000)


def test_list_pages_round_up_per_thousand_machines() -> None:
    """1,001 machines need two LIST pages per cycle."""
    one = estimate(CostInputs(machines=1000)).lines[3].requests
    two = estimate(CostInputs(machines=1001)).lines[3].requests
    assert two == 2 * one


def test_slower_polling_costs_less() -> None:
    """Doubling the poll interval halves the agent GET line."""
    fast = estimate(CostInputs(machines=100, poll=30)).lines[0].usd
    slow = estimate(CostInputs(machines=100, poll=60)).lines[0].usd
    assert slow == pytest.approx(fast / 2)


def test_cli_json_is_stable_and_totals_add_up() -> None:
    """-o json lists every line and a total equal to their sum."""
    result = CliRunner().invoke(
        cli, ["cost", "--machines", "1000", "--poll", "30s", "--heartbeat", "5m", "-o", "json"]
    )
    assert result.exit_code == 0, result.output
    data = orjson.loads(result.output)
    assert data["total_usd"] == pytest.approx(sum(line["usd"] for line in data["lines"]), abs=0.01)
    assert data["usd_per_1000_machines"] == pytest.approx(data["total_usd"])


@pytest.mark.parametrize("args", [["--poll", "0s"], ["--heartbeat", "soon"], ["--machines", "-1"]])
def test_cli_refuses_bad_intervals(args: list[str]) -> None:
    """Zero, malformed and negative values are usage errors (exit 2)."""
    result = CliRunner().invoke(cli, ["cost", *args])
    assert result.exit_code == 2
