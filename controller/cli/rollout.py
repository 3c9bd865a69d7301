"""`bosun rollout status|pause|resume|promote|abort|history SERVICE`: operating a rollout.

Commands are recorded as spec revisions (`services.<name>.control`), so they pass through
the same conditional apply as every other change and the planner honours each exactly
once (by its revision id). `status` reads `status/rollouts/<service>.json`; `history`
reads the `rollout.*` events, or the planner memory when the events are gone.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import click
import orjson
from rich.console import Console
from rich.live import Live
from rich.table import Table

from controller.cli import rollout_view as view
from controller.cli.common import Duration, make_console, store_option
from controller.operations import views
from controller.planner.model import ROLLOUT_ACTIVE
from controller.spec.model import ClusterSpec
from controller.spec.revisions import apply
from controller.spec.rollout import add_control
from wire.errors import SpecError
from wire.store import Store, open_store

WHAT_IT_DOES = {
    "pause": "nothing moves forward; a failing gate still halts or reverts",
    "resume": "the rollout moves on again (a halted one resumes its step with a new window)",
    "promote": "the current step's bake and sample minimum are skipped once",
    "abort": "the rollout reverts now: old-version machines back to active",
}


def _json(value: Any) -> None:
    sys.stdout.buffer.write(
        orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    )


@click.group("rollout")
def rollout_group() -> None:
    """Follow and steer a service's rollout (shadow, canary, steps, revert)."""


@rollout_group.command("status")
@click.argument("service")
@store_option
@click.option("--watch", is_flag=True, help="Refresh until the rollout ends (Ctrl-C stops).")
@click.option(
    "--interval", type=Duration(), default="1s", show_default=True, help="Refresh period."
)
@click.option(
    "-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True
)
def status_cmd(service: str, store: str, watch: bool, interval: float, output: str) -> None:
    """Step, cohort sizes, gate numbers against thresholds and time left in bake."""
    opened = open_store(store)
    spec = view.load_spec(opened, service, "status")
    doc = view.load_status(opened, service)
    if output == "json":
        _json(doc)
        return
    console = make_console()
    if not watch:
        console.print(view.render_status(doc, spec))
        return
    watch_status(opened, service, console, interval)


def watch_status(
    store: Store, service: str, console: Console, interval: float, *, limit: float = 0.0
) -> dict[str, Any]:
    """Refresh the view every `interval` until the rollout is no longer active (or Ctrl-C,
    or `limit` seconds when > 0); returns the last status document shown."""
    spec = view.load_spec(store, service, "status")
    doc = view.load_status(store, service)
    started = time.monotonic()
    try:
        with Live(view.render_status(doc, spec), console=console, auto_refresh=False) as live:
            while doc.get("state") in ROLLOUT_ACTIVE or starting(spec, doc):
                if limit and time.monotonic() - started >= limit:
                    break
                time.sleep(interval)
                spec = view.load_spec(store, service, "status")
                doc = view.load_status(store, service)
                live.update(view.render_status(doc, spec), refresh=True)
    except KeyboardInterrupt:
        pass
    return doc


def starting(spec: ClusterSpec, doc: dict[str, Any]) -> bool:
    """The document shows a finished rollout but the spec asks for another version under a
    rollout strategy: the next one starts on the controller's next cycle."""
    service = str(doc.get("service"))
    version = spec.services[service].version
    return spec.rollout_of(service) is not None and version not in (
        doc.get("to_version"),
        doc.get("from_version"),
    )


def _control(action: str, service: str, store: str) -> None:
    opened = open_store(store)
    spec = view.load_spec(opened, service, action)
    ok, why = view.in_progress(spec, service, view.load_memory(opened))
    if not ok:
        raise SpecError(
            f"rollout {action}: no rollout of {service} in progress: {why}; "
            "`bosun rollout history " + service + "` shows what happened"
        )
    applied = apply(opened, add_control(spec, service, action), now=time.time())
    ctl = applied.services[service].control
    assert ctl is not None  # add_control set it
    click.echo(
        f"recorded: {action} of {service}'s rollout to version {ctl.version} as spec revision "
        f"{applied.revision} (command id {ctl.id}); the controller applies it once, on its "
        f"next cycle: {WHAT_IT_DOES[action]}"
    )


def _make_control(action: str) -> click.Command:
    @click.command(action, help=f"Record `{action}` for SERVICE's rollout: {WHAT_IT_DOES[action]}.")
    @click.argument("service")
    @store_option
    def command(service: str, store: str) -> None:
        _control(action, service, store)

    return command


for _action in WHAT_IT_DOES:
    rollout_group.add_command(_make_control(_action))


@rollout_group.command("history")
@click.argument("service")
@store_option
@click.option(
    "--since", type=Duration(), default="7d", show_default=True, help="How far back (1h, 2d)."
)
@click.option(
    "-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True
)
def history_cmd(service: str, store: str, since: float, output: str) -> None:
    """Transitions of SERVICE's rollouts with their reasons and measured numbers."""
    opened = open_store(store)
    view.load_spec(opened, service, "history")
    now = time.time()
    rows = view.history_rows(views.read_events(opened, now - since, now), service)
    memory = view.load_memory(opened)
    last = memory.rollouts.get(service) if memory is not None else None
    if output == "json":
        _json({"events": rows, "last": _last(last) if last is not None else None})
        return
    console = make_console()
    if rows:
        table = Table(title=f"rollout history of {service} (events of the last {since / 3600:g}h)")
        for col in ("time (UTC)", "cycle", "event", "reason", "numbers"):
            table.add_column(col, overflow="fold")
        for ev in rows:
            table.add_row(
                time.strftime("%H:%M:%S", time.gmtime(float(ev.get("t", 0)))),
                str(ev.get("cycle", "-")),
                str(ev.get("kind", "")).removeprefix(view.ROLLOUT_EVENTS),
                str(ev.get("reason", "")),
                view.numbers_text(ev.get("data") or {}),
            )
        console.print(table)
    elif last is None:
        console.print(f"{service}: no rollout recorded (no events in the last {since / 3600:g}h)")
    if last is not None:
        console.print(
            f"last rollout (memory): {last.from_version} -> {last.to_version} {last.state}"
            + (f": {last.reason}" if last.reason else "")
            + (f"; gate {view.numbers_text(dict(last.gate))}" if last.gate else "")
        )


def _last(r: Any) -> dict[str, Any]:
    return {
        "from": r.from_version,
        "to": r.to_version,
        "state": r.state,
        "reason": r.reason,
        "started_at": r.started_at,
        "finished_at": r.finished_at,
        "gate": dict(r.gate),
    }
