"""The dashboard's HTML pages: Jinja2 templates (autoescaped) over the reader's values.

Every page shows the freshness line of `bosun status` and, when the view is stale or a
service is held static (blind), says so at the top in red; machine rows carry their state
(running, unhealthy, stale, lost, unseen) as `bosun machines` does. Pages reload
themselves every `refresh` seconds with <meta http-equiv="refresh">: no script.
"""

from __future__ import annotations

import functools
import itertools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from controller.operations import views
from controller.web.charts import Marker, rollout_chart
from controller.web.reader import Fleet, FleetReader, GatePoint, snapshot_text, unified
from wire import codec
from wire.times import parse_time

TEMPLATES = Path(__file__).parent / "templates"
EVENTS_BACK = 2 * 86400.0  # the rollout page reads at most this much of the events


@dataclass(frozen=True, slots=True)
class PageSettings:
    store: str  # shown in the header (the URL as given, without credentials)
    refresh: int = 5  # seconds; 0: pages do not reload themselves


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["ago"] = lambda s: "-" if s is None else views.ago(float(s))
    env.filters["iso"] = lambda t: "-" if t is None else views.iso(parse_time(t, "time"))
    env.filters["num"] = views.number
    env.filters["dash"] = lambda v: "-" if v is None or v == "" else v
    return env


def render(settings: PageSettings, template: str, **context: Any) -> str:
    return (
        environment().get_template(template).render(settings=settings, now=time.time(), **context)
    )


def _base(fleet: Fleet) -> dict[str, Any]:
    return {
        "fleet": fleet,
        "status": fleet.doc.status,
        "fresh": fleet.fresh,
        "holds": fleet.doc.status.holds,
    }


# ---- pages ------------------------------------------------------------------------------------


def fleet_page(reader: FleetReader, settings: PageSettings) -> str:
    fleet = reader.fleet()
    by_mode: dict[str, dict[str, int]] = {}
    for r in fleet.rows:
        mode = by_mode.setdefault(str(r["mode"]), {})
        mode[str(r["health"])] = mode.get(str(r["health"]), 0) + 1
    return render(
        settings,
        "fleet.html",
        title="fleet",
        rows=fleet.rows,
        by_mode=dict(sorted(by_mode.items())),
        problems=fleet.problems,
        rejected=fleet.doc.rejected,
        agent_refusals=fleet.doc.agent_refusals,
        spec_refused=fleet.doc.spec_refused,
        **_base(fleet),
    )


def service_page(reader: FleetReader, settings: PageSettings, service: str) -> str:
    fleet = reader.fleet()
    svc = fleet.doc.status.services.get(service)
    if svc is None:
        from controller.web.api import ApiError

        known = ", ".join(sorted(fleet.doc.status.services)) or "none"
        raise ApiError(
            404, f"service {service!r} is not in status/cluster.json (services: {known})"
        )
    return render(
        settings,
        "service.html",
        title=f"service {service}",
        name=service,
        svc=svc,
        hold=fleet.doc.status.holds.get(service),
        rollout=fleet.doc.status.rollouts.get(service),
        rows=[r for r in fleet.rows if r["service"] == service],
        **_base(fleet),
    )


def machine_page(reader: FleetReader, settings: PageSettings, machine: str, limit: int) -> str:
    fleet = reader.fleet()
    row = next((r for r in fleet.rows if r["machine"] == machine), None)
    entries = reader.history(machine, limit)
    if row is None and not entries:
        from controller.web.api import ApiError

        raise ApiError(404, f"machine {machine!r} is not in status/cluster.json and has no history")
    texts = [snapshot_text(e) for e in entries]
    history = []
    for i, e in enumerate(entries):
        diff = unified(texts[i - 1], texts[i], f"{machine}@{entries[i - 1].seq}",
                       f"{machine}@{e.seq}") if i else ""  # fmt: skip
        history.append({"seq": e.seq, "body": e.body, "diff": diff, "text": texts[i]})
    history.reverse()  # newest first
    desired = reader.desired(machine)
    desired_diffs = [
        unified(older.text, newer.text, f"generation {older.generation}",
                f"generation {newer.generation}")
        for newer, older in itertools.pairwise(desired)
    ]  # fmt: skip
    doc = fleet.doc
    seen = doc.seen.get(machine)
    return render(
        settings,
        "machine.html",
        title=f"machine {machine}",
        name=machine,
        row=row,
        seen=codec.encode(seen, times="epoch") if seen is not None else None,
        rejected=doc.rejected.get(machine),
        refusals=doc.agent_refusals.get(machine),
        history=history,
        desired=desired,
        desired_diffs=desired_diffs,
        limit=limit,
        **_base(fleet),
    )


def rollout_data(reader: FleetReader, service: str) -> tuple[Fleet, list[GatePoint]]:
    fleet = reader.fleet()
    r = fleet.doc.status.rollouts.get(service)
    if r is None:
        return fleet, []
    events = _rollout_events(reader, fleet, r.started_at)
    return fleet, reader.rollout_points(service, r.started_at, events)


def _rollout_events(reader: FleetReader, fleet: Fleet, started_at: float) -> list[dict[str, Any]]:
    now = fleet.fresh.now
    return reader.events(max(started_at - 60, now - EVENTS_BACK), now)


def rollout_page(reader: FleetReader, settings: PageSettings, service: str) -> str:
    fleet = reader.fleet()
    r = fleet.doc.status.rollouts.get(service)
    if r is None:
        from controller.web.api import ApiError

        raise ApiError(404, f"service {service!r} has had no rollout (none in status/cluster.json)")
    events = _rollout_events(reader, fleet, r.started_at)
    points = reader.rollout_points(service, r.started_at, events)
    transitions = [
        e for e in events
        if e.get("service") == service and str(e.get("kind", "")).startswith("rollout.")
        and float(e.get("t", 0)) >= r.started_at - 1
    ]  # fmt: skip
    markers = [
        Marker(float(e["t"]), str(e["kind"]).removeprefix("rollout."))
        for e in transitions
        if e.get("kind") != "rollout.started"
    ]
    end = r.finished_at if r.finished_at is not None else fleet.fresh.now
    strategy = fleet.spec.rollout_of(service) if fleet.spec is not None else None
    steps = []
    if strategy is not None and fleet.spec is not None:
        target = fleet.spec.services.get(service)
        if target is not None and target.version == r.to_version:
            steps = [codec.encode(s) for s in strategy.steps]
    return render(
        settings,
        "rollout.html",
        title=f"rollout of {service}",
        name=service,
        r=r,
        gate=r.gate,
        steps=steps,
        gates=codec.encode(strategy.gates) if strategy is not None else None,
        chart=rollout_chart(points, markers, r.started_at, end),
        points=points,
        transitions=list(reversed(transitions)),
        **_base(fleet),
    )


def events_page(
    reader: FleetReader, settings: PageSettings, since: float, params: dict[str, str]
) -> str:
    from controller.web.api import filter_events

    now = reader.clock()
    events = filter_events(reader.events(now - since, now), params)
    fleet: Fleet | None
    try:
        fleet = reader.fleet()
    except Exception:  # the timeline stands without the status document
        fleet = None
    return render(
        settings,
        "events.html",
        title="events",
        events=list(reversed(events)),
        since=since,
        params=params,
        fleet=fleet,
        status=fleet.doc.status if fleet else None,
        fresh=fleet.fresh if fleet else None,
        holds=fleet.doc.status.holds if fleet else {},
    )


def error_page(settings: PageSettings, status: int, message: str) -> str:
    return render(
        settings,
        "error.html",
        title=f"error {status}",
        code=status,
        message=message,
        fleet=None,
        status=None,
        fresh=None,
        holds={},
    )


__all__ = [
    "PageSettings",
    "error_page",
    "events_page",
    "fleet_page",
    "machine_page",
    "rollout_data",
    "rollout_page",
    "service_page",
]
