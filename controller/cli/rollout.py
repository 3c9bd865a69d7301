"""`bosun rollout status|pause|resume|promote|abort|undo|approve|history SERVICE`.

Commands are recorded as spec revisions (`services.<name>.control`; undo and approve in
`services.<name>.undo|approval`, see rollout_records.py), so they pass through the same
conditional apply as every other change and the planner honours each exactly once (by its
revision id). `status` reads `status/rollouts/<service>.json` (`--watch`: rollout_watch.py);
`history` reads the `rollout.*` events, or the planner memory when the events are gone.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click
import orjson
from rich.table import Table

from controller.cli import rollout_view as view
from controller.cli import rollout_watch
from controller.cli.common import Duration, make_console, store_option
from controller.cli.operator_key import apply_kwargs, operator_options, signing_for
from controller.cli.rollout_records import approve_cmd, undo_cmd
from controller.operations import history
from controller.spec.revisions import apply
from controller.spec.rollout import add_control
from wire.errors import SpecError
from wire.store import open_store

WHAT_IT_DOES = {
    "pause": "nothing moves forward; a failing gate still halts or reverts",
    "resume": "the rollout moves on again (a halted one resumes its step with a new window)",
    "promote": "the current step's bake and sample minimum are skipped once (for every "
    "service of a coupled release)",
    "abort": "the rollout reverts now: old-version machines back to active",
}

# acted on for every member of a coupled release in progress (pause already holds them all,
# an abort of one fails them all, resume resumes what was paused)
RELEASE_WIDE = ("promote",)


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
@click.option(
    "--watch", is_flag=True,
    help="Follow the rollout to its end: redrawn on a terminal, one line per change otherwise "
    "(a JSON document per line with -o json). Exits 0 complete, 3 reverted, 4 halted, "
    "5 progress deadline passed, 6 --timeout passed.",
)  # fmt: skip
@click.option(
    "--interval", type=Duration(), default="1s", show_default=True, help="Refresh period."
)
@click.option(
    "--timeout", type=Duration(), default=None,
    help="With --watch: stop after this long (exit 6) if the rollout has not ended.",
)  # fmt: skip
@click.option(
    "-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True
)
def status_cmd(
    service: str, store: str, watch: bool, interval: float, timeout: float | None, output: str
) -> None:
    """Step, cohort sizes, gate numbers against thresholds and time left in bake.

    With --watch it follows the rollout to the spec's version until it ends, with an exit
    code a pipeline can gate on (docs/spec.md#watching-a-rollout).
    """
    opened = open_store(store)
    spec = view.load_spec(opened, service, "status")
    if not watch:
        doc = view.load_status(opened, service)
        if output == "json":
            _json(doc)
            return
        make_console().print(view.render_status(doc, spec))
        return
    console = make_console()
    if output == "table" and console.is_terminal:
        watched = rollout_watch.on_terminal(
            opened, service, console, interval, timeout=timeout or 0.0
        )
    else:
        watched = rollout_watch.streamed(
            opened, service, interval, as_json=output == "json", timeout=timeout or 0.0
        )
    line = rollout_watch.final_line(service, watched)
    click.echo(line, err=watched.code != 0 or output == "json")
    sys.exit(watched.code)


def _control(
    action: str, service: str, store: str, operator_key: Path | None, message: str
) -> None:
    opened = open_store(store)
    signing = signing_for(opened, operator_key, message)
    spec = view.load_spec(opened, service, action, signing.trust)
    memory = view.load_memory(opened)
    ok, why = view.in_progress(spec, service, memory)
    if not ok:
        last = memory.rollouts.get(service) if memory is not None else None
        hint = f"`bosun rollout history {service}` shows what happened"
        if action == "abort" and last is not None and last.state == "complete":
            hint = f"to go back to {last.from_version}, run `bosun rollout undo {service}` ({hint})"
        raise SpecError(f"rollout {action}: no rollout of {service} in progress: {why}; {hint}")
    names = view.rolling_with(spec, service, memory) if action in RELEASE_WIDE else (service,)
    new = spec
    for name in names:
        new = add_control(new, name, action)
    applied = apply(
        opened, new, now=time.time(), expect_revision=spec.revision, **apply_kwargs(signing)
    )
    ctl = applied.services[service].control
    assert ctl is not None  # add_control set it
    click.echo(
        f"recorded: {action} of {view.members_text(spec, names, 'rollout')} as spec revision "
        f"{applied.revision} (command id {ctl.id}); the controller applies it once, on its "
        f"next cycle: {WHAT_IT_DOES[action]}"
    )


def _make_control(action: str) -> click.Command:
    @click.command(action, help=f"Record `{action}` for SERVICE's rollout: {WHAT_IT_DOES[action]}.")
    @click.argument("service")
    @store_option
    @operator_options
    def command(service: str, store: str, operator_key: Path | None, message: str) -> None:
        _control(action, service, store, operator_key, message)

    return command


for _action in WHAT_IT_DOES:
    rollout_group.add_command(_make_control(_action))
rollout_group.add_command(undo_cmd)
rollout_group.add_command(approve_cmd)


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
    rows = view.history_rows(history.read_events(opened, now - since, now), service)
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
