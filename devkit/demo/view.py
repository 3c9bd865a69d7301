"""The live picture on a terminal: phases, the fleet as the controller sees it, traffic."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from devkit.demo.observe import View
from devkit.demo.summary import PhaseResult
from devkit.demo.traffic import Client

_MODE_STYLE = {
    "active": "green",
    "canary": "yellow",
    "shadow": "magenta",
    "draining": "cyan",
    "standby": "dim",
    "warm": "dim cyan",
    "deactivated": "dim",
}


def render(
    phases: Sequence[tuple[str, str]],
    results: dict[str, PhaseResult],
    current: str | None,
    started: dict[str, float],
    view: View,
    client: Client | None,
) -> RenderableType:
    steps = Table.grid(padding=(0, 2))
    for name, title in phases:
        r = results.get(name)
        if r is not None:
            mark = {
                "ok": "[green]ok[/]",
                "failed": "[bold red]failed[/]",
            }[r.status]
            steps.add_row(mark, title, f"{r.seconds:5.1f}s")
        elif name == current:
            steps.add_row(
                "[bold blue]>>[/]",
                f"[bold]{title}[/]",
                f"{time.monotonic() - started.get(name, time.monotonic()):5.1f}s",
            )
        else:
            steps.add_row("[dim]..[/]", f"[dim]{title}[/]", "")

    fleet = Table(box=None, padding=(0, 1), header_style="bold")
    for col in ("machine", "service", "mode", "version", "health", "lb weight", "served"):
        fleet.add_column(col)
    backends = view.lb_backends()
    mirrors = view.lb_mirrors()
    served = (view.lb or {}).get("served", {}) if view.lb else {}
    for m, s in sorted(view.machines().items()):
        mode = str(s.get("mode", "?"))
        if s.get("lost"):
            mode_text = Text("lost", style="bold red")
        else:
            mode_text = Text(mode, style=_MODE_STYLE.get(mode, ""))
        weight = str(backends[m]) if m in backends else ("mirror" if m in mirrors else "")
        fleet.add_row(
            m,
            str(s.get("service") or "-"),
            mode_text,
            str(s.get("running") or s.get("version") or "-"),
            str(s.get("health", "?")),
            weight,
            str(served.get(m, "")) if isinstance(served, dict) else "",
        )
    parts: list[RenderableType] = [steps, Text(""), fleet]
    rollout = view.rollout("web")
    if rollout:
        parts.append(Text(rollout_line(rollout), overflow="fold"))
    if client is not None:
        total = client.total()
        parts.append(
            Text(
                f"client: {total.requests} requests through {view.lb_machine or '?'}, "
                f"{total.errors} errors ({total.canary_errors} in the canary window); "
                f"answers by version {dict(sorted(total.by_version.items()))}"
            )
        )
    return Group(*parts)


def rollout_line(r: Mapping[str, Any]) -> str:
    """`rollout web 1.0 -> 2.0: canary step 2/4 (bake 3s left); cohort 1 ...; gate ...`."""
    head = f"rollout {r.get('service', '?')} {r.get('from_version')} -> {r.get('to_version')}: "
    head += str(r.get("state", "?"))
    if r.get("state") in ("shadow", "canary", "steps", "watching"):
        head += f" step {r.get('step')}/{r.get('steps')} ({r.get('step_kind')}"
        head += f", bake {float(r.get('bake_left') or 0):.0f}s left)"
    head += f"; new {r.get('cohort', 0)} + shadow {r.get('shadow', 0)}, old {r.get('old', 0)}"
    head += f", kept warm {r.get('previous', 0)}"
    gate = r.get("gate") or {}
    if isinstance(gate, Mapping) and gate:
        rate = gate.get("new_error_rate")
        rate_text = f"{float(rate):.3f}" if isinstance(rate, (int, float)) else "-"
        head += (
            f"; gate: {gate.get('new_requests', 0)} requests (min {gate.get('min_requests')}),"
            f" error rate {rate_text} (max {gate.get('max_error_rate')})"
            f" -> {gate.get('verdict', '?')}"
        )
    if r.get("reason"):
        head += f"; {r['reason']}"
    return head
