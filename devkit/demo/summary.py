"""The demo's results: one record per phase, printed as a table and saved as JSON.

`--summary-json FILE` (stable keys):

    {"format": "bosun.demo-summary/1", "ok": bool, "fast": bool, "seconds": float,
     "phases": [{"name", "title", "status": "ok|failed", "seconds", "requests",
                 "client_errors", "canary_window_errors", "details": {...}}],
     "totals": {"requests", "client_errors", "canary_window_errors",
                "client_errors_outside_canary_window"},
     "store": URL, "bucket_dir": PATH | null, "run_dir": PATH,
     "processes": [{"name", "pid", "start_ticks"}], "processes_left_running": int,
     "explore": [commands]}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson
from rich.console import Console
from rich.table import Table

SUMMARY_FORMAT = "bosun.demo-summary/1"
PhaseStatus = Literal["ok", "failed"]


@dataclass
class PhaseResult:
    name: str
    title: str
    status: PhaseStatus = "ok"
    seconds: float = 0.0
    requests: int = 0
    client_errors: int = 0
    canary_window_errors: int = 0
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "status": self.status,
            "seconds": round(self.seconds, 2),
            "requests": self.requests,
            "client_errors": self.client_errors,
            "canary_window_errors": self.canary_window_errors,
            "details": self.details,
        }


@dataclass
class Summary:
    fast: bool
    store: str
    run_dir: Path
    bucket_dir: Path | None
    phases: list[PhaseResult] = field(default_factory=list)
    seconds: float = 0.0
    processes: list[dict[str, object]] = field(default_factory=list)
    processes_left_running: int = -1
    explore: list[str] = field(default_factory=list)
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        return (
            not self.interrupted
            and bool(self.phases)
            and all(p.status != "failed" for p in self.phases)
            and self.processes_left_running == 0
            and self.errors_outside_canary == 0
        )

    @property
    def errors_outside_canary(self) -> int:
        return sum(p.client_errors - p.canary_window_errors for p in self.phases)

    def to_json(self) -> bytes:
        requests = sum(p.requests for p in self.phases)
        errors = sum(p.client_errors for p in self.phases)
        canary = sum(p.canary_window_errors for p in self.phases)
        value = {
            "format": SUMMARY_FORMAT,
            "ok": self.ok,
            "fast": self.fast,
            "interrupted": self.interrupted,
            "seconds": round(self.seconds, 2),
            "phases": [p.to_json() for p in self.phases],
            "totals": {
                "requests": requests,
                "client_errors": errors,
                "canary_window_errors": canary,
                "client_errors_outside_canary_window": errors - canary,
            },
            "store": self.store,
            "bucket_dir": str(self.bucket_dir) if self.bucket_dir else None,
            "run_dir": str(self.run_dir),
            "processes": self.processes,
            "processes_left_running": self.processes_left_running,
            "explore": self.explore,
        }
        return orjson.dumps(value, option=orjson.OPT_INDENT_2) + b"\n"

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(self.to_json())
        tmp.replace(path)

    def print(self, console: Console, *, running: bool = False) -> None:
        table = Table(title="scripts/demo: summary", title_justify="left")
        for col, justify in (
            ("phase", "left"),
            ("result", "left"),
            ("time", "right"),
            ("requests", "right"),
            ("client errors", "right"),
            ("notes", "left"),
        ):
            table.add_column(col, justify=justify)  # type: ignore[arg-type]
        style = {"ok": "green", "failed": "bold red"}
        for p in self.phases:
            shown = str(p.client_errors)
            if p.canary_window_errors:
                shown += f" ({p.canary_window_errors} in canary window)"
            note = str(p.details.get("note") or p.details.get("reason") or "")
            table.add_row(
                p.title,
                f"[{style[p.status]}]{p.status}[/]",
                f"{p.seconds:.1f}s",
                str(p.requests),
                shown,
                note,
            )
        console.print(table)
        requests = sum(p.requests for p in self.phases)
        errors = sum(p.client_errors for p in self.phases)
        canary = sum(p.canary_window_errors for p in self.phases)
        console.print(
            f"{requests} requests served through the load balancer, {errors} client errors "
            f"({errors - canary} outside the bad release's canary window), "
            + ("" if running else f"{self.seconds:.0f}s in all.")
        )
        if running:
            return
        left = self.processes_left_running
        console.print(
            f"processes started: {len(self.processes)}; still running: "
            + (f"[green]{left}[/]" if left == 0 else f"[bold red]{left}[/]")
        )
