"""`bosun status`, `bosun machines`, `bosun history`, `bosun events`: operator reads."""

from __future__ import annotations

import csv
import io
import sys
import time
from typing import Any

import click
import orjson
from rich.markup import escape
from rich.table import Table

from controller.cli.common import Duration, make_console, store_option
from controller.operations import views
from wire.store import open_store


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def _json(value: Any) -> None:
    sys.stdout.buffer.write(
        orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    )


@click.command("status")
@store_option
@click.option(
    "-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True
)
def status_cmd(store: str, output: str) -> None:
    """Services, machines and rejections from status/cluster.json."""
    status = views.load_status(open_store(store))
    if output == "json":
        _json(status)
        return
    now = time.time()
    console = make_console()
    ctl = status.get("controller", {})
    console.print(
        f"spec revision {status.get('spec_revision')}, fence {status.get('fence')}, "
        f"controller {ctl.get('holder', '?')} (cycle {ctl.get('cycle', '?')}), "
        f"written {now - float(status.get('at', now)):.0f}s ago"
    )
    refused = status.get("spec_refused")
    if refused:
        keeping = refused.get("planning_with")
        console.print(
            "[bold red]spec/current.json refused[/]: "
            + escape(str(refused.get("detail", "")))
            + (
                f"; planning with revision {keeping} until a valid spec is applied"
                if keeping is not None
                else "; planning nothing until a valid spec is applied"
            )
        )
    services = Table(title="services")
    for col in (
        "service",
        "kind",
        "count",
        "active",
        "healthy",
        "standby",
        "version",
        "deploying",
        "versions running",
        "held",
        "autoscaler",
    ):
        services.add_column(col)
    for name, s in sorted(status.get("services", {}).items()):
        versions = ", ".join(f"{v}x{n}" for v, n in sorted(s.get("versions", {}).items()))
        target = s.get("target_version")
        services.add_row(
            name,
            s.get("kind"),
            _fmt(s.get("count")),
            _fmt(s.get("active")),
            _fmt(s.get("healthy")),
            _fmt(s.get("standby")),
            _fmt(s.get("version")),
            "-" if target == s.get("version") else _fmt(target),
            versions or "-",
            _fmt(s.get("held")),
            _scaler(s.get("scale")),
        )
    console.print(services)
    machines = Table(title="machines")
    for col in (
        "machine",
        "service",
        "mode",
        "status",
        "health",
        "version",
        "running",
        "gen",
        "applied",
        "age s",
    ):
        machines.add_column(col)
    for r in views.machine_rows(status, now):
        style = {"lost": "red", "unhealthy": "yellow"}.get(r["status"], "")
        machines.add_row(
            r["machine"],
            _fmt(r["service"]),
            _fmt(r["mode"]),
            r["status"],
            _fmt(r["health"]),
            _fmt(r["version"]),
            _fmt(r["running"]),
            _fmt(r["generation"]),
            _fmt(r["applied_generation"]),
            _fmt(r["age"]),
            style=style,
        )
    console.print(machines)
    rejected = status.get("rejected", {})
    refusals = status.get("agent_refusals", {})
    if rejected or refusals:
        table = Table(title="rejections and refusals")
        for col in ("machine", "side", "counts", "last"):
            table.add_column(col, overflow="fold")
        for m, r in sorted(rejected.items()):
            last = r.get("last") or {}
            table.add_row(
                m,
                "controller rejected its snapshot",
                _counts(r.get("counts", {})),
                f"{last.get('reason', '')}: {last.get('detail', '')}",
            )
        for m, r in sorted(refusals.items()):
            last = r.get("last") or {}
            stale = " (desired stale)" if r.get("desired_stale") else ""
            table.add_row(
                m,
                "agent refused desired" + stale,
                _counts(r.get("counts", {})),
                f"{last.get('reason', '')}: {last.get('detail', '')}",
            )
        console.print(table)


def _scaler(scale: dict[str, Any] | None) -> str:
    """min..max, the measured metric against its target, and why it holds (if it does)."""
    if not scale:
        return "-"
    target = scale.get("target_per_machine")
    per = f" (target {target:g}/machine)" if isinstance(target, (int, float)) else ""
    text = f"{scale['min']}..{scale['max']}: {scale['metric']} = {scale['measured']:g}{per}"
    return escape(text + (f"; holds: {scale['held']}" if scale.get("held") else ""))


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "-"


@click.command("machines")
@store_option
@click.option("--service", help="Only machines assigned to this service.")
@click.option(
    "--status",
    "status_filter",
    type=click.Choice(["running", "unhealthy", "lost", "unseen"]),
    help="Only machines in this state.",
)
@click.option("--mode", help="Only machines in this mode (active, standby, ...).")
@click.option(
    "-o",
    "--output",
    type=click.Choice(["table", "json", "csv", "xml"]),
    default="table",
    show_default=True,
)
def machines_cmd(
    store: str, service: str | None, status_filter: str | None, mode: str | None, output: str
) -> None:
    """List machines; -o xml is meant for XSLT tooling (see examples/firewall.xsl)."""
    status = views.load_status(open_store(store))
    rows = views.filter_rows(
        views.machine_rows(status, time.time()), service=service, status=status_filter, mode=mode
    )
    if output == "json":
        _json(rows)
    elif output == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(views.MACHINE_FIELDS), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        click.echo(buf.getvalue(), nl=False)
    elif output == "xml":
        sys.stdout.buffer.write(views.rows_xml(rows, status))
    else:
        table = Table()
        for col in views.MACHINE_FIELDS:
            table.add_column(col)
        for r in rows:
            table.add_row(*(_fmt(r[c]) for c in views.MACHINE_FIELDS))
        make_console().print(table)


@click.command("history")
@click.argument("machine")
@store_option
@click.option(
    "--diff",
    nargs=2,
    type=int,
    metavar="A B",
    help="Diff the archived snapshots with seq A and seq B (the seq column of the history).",
)
@click.option("--limit", type=int, default=20, show_default=True, help="Show the latest N.")
@click.option(
    "-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True
)
def history_cmd(
    machine: str, store: str, diff: tuple[int, int] | None, limit: int, output: str
) -> None:
    """Archived snapshots of MACHINE (those that changed more than liveness fields)."""
    opened = open_store(store)
    if diff:
        click.echo(
            views.history_diff(opened, machine, diff[0], diff[1]) or "no difference", nl=False
        )
        return
    seqs = views.history_seqs(opened, machine)[-limit:]
    entries = [views.history_entry(opened, machine, s) for s in seqs]
    if output == "json":
        _json([{"seq": e.seq, "snapshot": e.body} for e in entries])
        return
    table = Table(title=f"history of {machine} ({len(seqs)} shown)")
    for col in ("seq", "sent_at (UTC)", "status", "services", "applied gen", "refusals"):
        table.add_column(col)
    for e in entries:
        b = e.body
        services = ", ".join(
            f"{n}={s.get('version')}/{s.get('health')}"
            for n, s in sorted(b.get("services", {}).items())
        )
        sent = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(float(b.get("sent_at", 0))))
        table.add_row(
            str(e.seq),
            sent,
            _fmt(b.get("status")),
            services or "-",
            _fmt(b.get("applied", {}).get("generation")),
            _counts(b.get("refusals", {})),
        )
    make_console().print(table)


@click.command("events")
@store_option
@click.option(
    "--since", type=Duration(), default="1h", show_default=True, help="How far back (10m, 1h, 2d)."
)
@click.option(
    "-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True
)
def events_cmd(store: str, since: float, output: str) -> None:
    """Decisions and rejections of recent cycles (events/<yyyy>/<mm>/<dd>/...)."""
    now = time.time()
    events = views.read_events(open_store(store), now - since, now)
    if output == "json":
        _json(events)
        return
    table = Table(title=f"events since {since:g}s ago")
    for col in ("time (UTC)", "cycle", "kind", "machine/service", "reason"):
        table.add_column(col, overflow="fold")
    for ev in events:
        table.add_row(
            time.strftime("%H:%M:%S", time.gmtime(float(ev.get("t", 0)))),
            _fmt(ev.get("cycle")),
            str(ev.get("kind")),
            str(ev.get("machine") or ev.get("service") or "-"),
            str(ev.get("reason", "")),
        )
    make_console().print(table)
