"""`settings.cost_budget`: refuse a spec whose intervals would exceed a request budget.

    settings:
      controller_interval: 10s
      cost_budget: {usd_per_month: 100, machines: 1000, poll: 30s, heartbeat: 5m}

`machines`, `poll` and `heartbeat` are what the fleet's agents are configured with; the
cost is `controller.spec.request_cost.estimate` (S3 list prices, the same figures as `bosun cost`). The
budget is checked when a spec is validated or applied (docs/security.md#cost-guardrails); it is not stored.
"""

from __future__ import annotations

from controller.spec.checks import Problems, got, unknown_keys
from controller.spec.model import Settings
from controller.spec.request_cost import CostInputs, estimate
from wire.durations import parse_duration

BUDGET_KEYS = ("usd_per_month", "machines", "poll", "heartbeat")


def check_cost_budget(p: Problems, raw: object, settings: Settings) -> None:
    path = "settings.cost_budget"
    if not isinstance(raw, dict):
        p.add(
            path,
            f"expected a mapping like {{usd_per_month: 100, machines: 1000, poll: 30s, heartbeat: 5m}}, got {got(raw)}",
        )
        return
    unknown_keys(p, path, raw, BUDGET_KEYS)
    usd_raw, machines_raw = raw.get("usd_per_month"), raw.get("machines")
    poll_raw, heartbeat_raw = raw.get("poll", "30s"), raw.get("heartbeat", "5m")
    poll, heartbeat = parse_duration(poll_raw), parse_duration(heartbeat_raw)
    usd = (
        float(usd_raw)
        if isinstance(usd_raw, (int, float)) and not isinstance(usd_raw, bool)
        else 0.0
    )
    machines = (
        machines_raw if isinstance(machines_raw, int) and not isinstance(machines_raw, bool) else 0
    )
    problems = len(p.items)
    if usd <= 0:
        p.add(
            f"{path}.usd_per_month", f"expected a positive number of US dollars, got {got(usd_raw)}"
        )
    if not 1 <= machines <= 10_000_000:
        p.add(
            f"{path}.machines",
            f"expected the number of machines (1 to 10,000,000), got {got(machines_raw)}",
        )
    for name, value in (("poll", poll), ("heartbeat", heartbeat)):
        if value is None or value <= 0:
            p.add(f"{path}.{name}", "expected a positive duration like 30s or 5m")
    if len(p.items) > problems or poll is None or heartbeat is None:
        return
    cost = estimate(
        CostInputs(
            machines, poll, heartbeat, settings.controller_interval, settings.desired_lifetime
        )
    ).total_usd
    if cost > usd:
        p.add(
            path,
            f"{machines:,} machines polling every {poll_raw} with a {heartbeat_raw} heartbeat and "
            f"a {settings.controller_interval:g}s controller interval cost ${cost:,.2f}/month in S3 "
            f"requests, over the budget of ${usd:,.2f}; lengthen poll, heartbeat or "
            "controller_interval, or raise usd_per_month (see bosun cost)",
        )
