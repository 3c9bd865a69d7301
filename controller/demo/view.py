"""The live picture on a terminal: phases, the fleet as the controller sees it, traffic."""

from __future__ import annotations

import time
from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from controller.demo.observe import View
from controller.demo.summary import PhaseResult
from controller.demo.traffic import Client

_MODE_STYLE = {
    "active": "green",
    "canary": "yellow",
    "shadow": "magenta",
    "draining": "cyan",
    "standby": "dim",
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
                "skipped": "[yellow]skipped[/]",
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
        parts.append(Text(f"rollout web: {rollout}", overflow="fold"))
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
