"""`bosun history` and `bosun events`: operator reads of what the bucket archives (a
machine's snapshots, verified with --master-key, and the controller's event log)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from controller.cli import tables
from controller.cli.common import Duration, make_console, store_option
from controller.operations import history, views
from wire.documents import open_snapshot
from wire.durations import format_duration
from wire.errors import BosunError, ObjectMissing
from wire.layout import history_key, report_key
from wire.signing import derive_machine_key, parse_kid, read_key_file
from wire.store import Store, StoredObject, open_store
from wire.times import parse_time


@click.command("history")
@click.argument("machine")
@store_option
@click.option(
    "--diff",
    nargs=2,
    metavar="A B",
    help="Diff two archived snapshots, each -1 (the latest), -2 (the one before)..., a seq "
    "from the history, a UTC time (2024-05-01T10:00) or an age (10m, 2h: the latest "
    "snapshot at or before it). E.g. --diff -2 -1.",
)
@click.option("--limit", type=int, default=20, show_default=True, help="Show the latest N.")
@click.option(
    "-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@click.option(
    "--master-key",
    envvar="BOSUN_MASTER_KEY",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Verify each snapshot's signature (machine keys derive from it; BOSUN_MASTER_KEY).",
)
def history_cmd(
    machine: str,
    store: str,
    diff: tuple[str, str] | None,
    limit: int,
    output: str,
    master_key: Path | None,
) -> None:
    """Archived snapshots of MACHINE (those that changed more than liveness fields).

    They are signed with the machine's key: only --master-key lets this tool verify them;
    without it the table says so (docs/security.md#reading-tools)."""
    opened = open_store(store, create=False)
    every = history.history_seqs(opened, machine)
    if not every:
        _no_history(opened, machine)
        return
    if diff:
        now = time.time()
        left, right = (history.resolve_seq(every, ref, now, machine=machine) for ref in diff)
        click.echo(
            history.history_diff(opened, machine, left, right) or "no difference\n", nl=False
        )
        return
    seqs = every[-limit:]
    entries = [history.history_entry(opened, machine, s) for s in seqs]
    master = read_key_file(master_key) if master_key is not None else None
    checked = {e.seq: _verify_snapshot(opened, machine, e.seq, master) for e in entries}
    if output == "json":
        tables.print_json(
            [{"seq": e.seq, "snapshot": e.body, "verified": checked[e.seq]} for e in entries]
        )
        return
    table = tables.table(title=f"history of {machine} ({len(seqs)} shown)")
    for col in (
        "seq",
        "sent_at (UTC)",
        "status",
        "services",
        "applied gen",
        "refusals",
        "verified",
    ):
        tables.column(table, col)
    for e in entries:
        b = e.body
        services = ", ".join(
            f"{n}={s.get('version')}/{s.get('health')}"
            for n, s in sorted(b.get("services", {}).items())
        )
        at = parse_time(b.get("sent_at", 0), f"{history_key(machine, e.seq)}.body.sent_at")
        sent = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(at))
        table.add_row(
            str(e.seq),
            sent,
            tables.fmt(b.get("status")),
            services or "-",
            tables.fmt(b.get("applied", {}).get("generation")),
            tables.counts(b.get("refusals", {})),
            {True: "yes", False: "NO: signature fails", None: "-"}[checked[e.seq]],
        )
    make_console().print(table)
    if master is None:
        click.echo(
            "not verified: snapshots are signed with the machine's key; --master-key verifies "
            "them (the controller verified each before archiving it)",
            err=True,
        )


def _verify_snapshot(store: Store, machine: str, seq: int, master: bytes | None) -> bool | None:
    """True when the archived snapshot verifies with the machine key of its kid's epoch,
    False when it does not, None without the master key."""
    if master is None:
        return None
    got = store.get(history_key(machine, seq))
    if not isinstance(got, StoredObject):
        return False

    def lookup(kid: str) -> bytes | None:
        name, epoch = parse_kid(kid)
        return derive_machine_key(master, name, epoch) if name == machine else None

    try:
        open_snapshot(got.body, report_key(machine), lookup)
    except BosunError:
        return False
    return True


def _no_history(store: Store, machine: str) -> None:
    """No archived snapshot: an unknown machine is an error, a known one has none yet."""
    try:
        known = views.load_status(store).status.machines
    except ObjectMissing:
        known = {}
    if machine not in known:
        raise ObjectMissing(
            f"no machine {machine!r}: not in status/cluster.json and nothing under "
            f"history/{machine}/ (machines: {', '.join(sorted(known)) or 'none'})"
        )
    click.echo(f"{machine}: no archived snapshots yet")


@click.command("events")
@store_option
@click.option(
    "--since", type=Duration(), default="1h", show_default=True, help="How far back (10m, 1h, 2d)."
)
@click.option(
    "--kind",
    default=None,
    metavar="PREFIX",
    help="Only events whose kind starts with PREFIX (`rollout.`, `machine.lost`).",
)
@click.option("--machine", default=None, help="Only events about this machine.")
@click.option("--service", default=None, help="Only events of this service.")
@click.option(
    "-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True
)
def events_cmd(
    store: str,
    since: float,
    kind: str | None,
    machine: str | None,
    service: str | None,
    output: str,
) -> None:
    """Decisions and rejections of recent cycles (events/<yyyy>/<mm>/<dd>/...), oldest
    first; --kind, --machine and --service narrow them (all given must match)."""
    now = time.time()
    events = history.filter_events(
        history.read_events(open_store(store, create=False), now - since, now),
        kind=kind,
        machine=machine,
        service=service,
    )
    if output == "json":
        tables.print_json(events)
        return
    table = tables.table(
        title=f"events since {format_duration(since)} ago ({views.iso(now - since)})"
    )
    for col in ("time (UTC)", "cycle", "kind", "machine/service", "reason"):
        tables.column(table, col)
    for ev in events:
        table.add_row(
            time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(float(ev.get("t", 0)))),
            tables.fmt(ev.get("cycle")),
            str(ev.get("kind")),
            str(ev.get("machine") or ev.get("service") or "-"),
            str(ev.get("reason", "")),
        )
    make_console().print(table)
