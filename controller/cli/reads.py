"""`bosun status` and `bosun machines`: operator reads of status/cluster.json (`bosun history`
and `bosun events`, the archives, are in cli/archives.py)."""

from __future__ import annotations

import csv
import io
import sys
import time

import click
from rich.markup import escape

from controller.cli import tables
from controller.cli.common import make_console, optional_store_option, store_option
from controller.cli.operator_key import controller_key_option
from controller.operations import views
from controller.planner.model import ScaleStatus
from controller.read_trust import Verdict, anchor, check_status, pinned_key
from controller.shell.control_objects import SpecCache, load_spec_or_last_good
from controller.shell.lease import LeaseDoc
from controller.spec.model import Settings
from controller.status_document import MAX_STATUS_BYTES, ClusterStatus
from wire.documents import MODES, Refusal
from wire.errors import BadSignature, ObjectMissing
from wire.layout import LEASE, STATUS_CLUSTER
from wire.store import StoredObject, open_store


def _read(
    url: str, controller_key: str | None = None
) -> tuple[ClusterStatus, views.Freshness, Verdict]:
    """status/cluster.json, how fresh it is (the lease's last renewal, decoded by the
    lease's own decoder, read only, and the settings of the spec the controller plans with,
    read as the controller reads it; the defaults when no spec can be read), and how far
    its signature could be verified (read_trust: pinned key or the one keys.json lists)."""
    store = open_store(url, create=False)
    doc = views.load_status(store)
    got_status = store.get(STATUS_CLUSTER, max_bytes=MAX_STATUS_BYTES)
    verdict = (
        check_status(got_status.body, anchor(store, pinned_key(controller_key)))
        if isinstance(got_status, StoredObject)
        else Verdict(None, f"{STATUS_CLUSTER} vanished while reading it")
    )
    if verdict.ok is False and controller_key:
        raise BadSignature(f"{verdict.text}; not shown (the pinned controller key did not sign it)")
    got = store.get(LEASE, max_bytes=64 * 1024)
    lease = (
        LeaseDoc.decode(got.body, store.describe(LEASE)) if isinstance(got, StoredObject) else None
    )
    spec, _refused = load_spec_or_last_good(store, SpecCache(), doc.status.spec_revision)
    fresh = views.Freshness.of(
        time.time(),
        spec.settings if spec is not None else Settings(),
        lease.renewed_at if lease is not None else None,
        holder=lease.holder if lease is not None else "",
        released=lease.released if lease is not None else False,
    )
    return doc, fresh, verdict


@click.command("status")
@store_option
@click.option(
    "-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@click.option(
    "--check",
    is_flag=True,
    help="Print one line per problem and exit 0 healthy, 1 degraded (a service with fewer "
    "healthy machines than asked, a lost or stale machine, a refused spec or control object, "
    "a status signature that does not verify), 2 stale or blind (the controller silent for "
    "more than 3 of its controller_interval, a service held static); 2 also when "
    "status/cluster.json is missing or unreadable. Warnings (unsigned specs accepted, a "
    "status not verified) are printed and do not change the exit code.",
)
@controller_key_option
def status_cmd(store: str, output: str, check: bool, controller_key: str | None) -> None:
    """Services, machines and rejections from status/cluster.json, with the age of the
    controller's last cycle (control/lease.json) and of each machine's last report, and
    whether the controller's signature of it verifies (pin its key: --controller-key)."""
    doc, fresh, verdict = _read(store, controller_key)
    if check:
        _check(doc, fresh, verdict)
        return
    if output == "json":
        tables.print_json(doc.encode())
        return
    status = doc.status
    console = make_console()
    ctl = doc.controller
    console.print(
        f"spec revision {status.spec_revision}, fence {status.fence}, written by "
        f"{escape(ctl.holder)} (cycle {ctl.cycle}); content last changed "
        f"{views.ago(fresh.now - status.at)} ago"
    )
    silent = fresh.controller_silent
    console.print(escape(fresh.describe()), style="bold red" if silent else None)
    console.print(escape(verdict.text), style=None if verdict.ok else "bold yellow")
    sig = doc.spec_signature
    if sig is not None:
        who = sig.verified_by or sig.applied_by or "unknown"
        how = "signed, verified by the controller" if sig.verified_by else "UNSIGNED"
        console.print(
            f"spec revision {sig.revision} applied by {escape(who)} ({how})"
            + (f": {escape(sig.message)}" if sig.message else "")
            + (
                ""
                if sig.enforced
                else " [bold yellow]operator keys not listed: unsigned specs accepted[/]"
            )
        )
    refused = doc.spec_refused
    if refused:
        keeping = refused.planning_with
        console.print(
            f"[bold red]spec/current.json refused[/] ({refused.reason}, {refused.count} "
            "counted): "
            + escape(refused.detail)
            + (
                f"; planning with revision {keeping} until a valid spec is applied"
                if keeping is not None
                else "; planning nothing until a valid spec is applied"
            )
        )
    for name, hold in sorted(status.holds.items()):
        console.print(
            f"[bold red]{escape(name)} held static[/] ({hold.scope}, "
            f"{views.ago(fresh.now - hold.since)}): {escape(hold.reason)} "
            f"({hold.silent} of {hold.total} machines silent); nothing is demoted or "
            "replaced until reports return"
        )
    service_rows = []
    for name, s in sorted(status.services.items()):
        versions = ", ".join(f"{n} on {v}" for v, n in sorted(s.versions.items()))
        rollout = status.rollouts.get(name)
        deploying = rollout.to_version if rollout and rollout.finished_at is None else None
        cells = [
            name,
            s.kind,
            tables.fmt(s.count),
            tables.fmt(s.active),
            tables.fmt(s.healthy),
            tables.fmt(s.standby),
        ]
        cells += [tables.fmt(s.version), tables.fmt(deploying), versions or "-", tables.fmt(s.held)]
        service_rows.append(((*cells, _scaler(s.scale)), ""))
    services = tables.fitted(
        console.width,
        SERVICE_COLUMNS,
        service_rows,
        give_way=("autoscaler", "held", "deploying", "standby", "count"),
        whole=("service", "kind"),
        title="services",
    )
    console.print(services)
    for name, why in views.never_healthy(doc).items():
        console.print(f"[bold yellow]{escape(name)}[/]: {escape(why)}")
    for name, ms in sorted(doc.status.machines.items()):
        if ms.apply_error and not ms.lost:  # it runs the older document: say why
            console.print(
                f"[bold red]{escape(name)}[/]: applying generation {ms.generation} failed, "
                f"still running {ms.applied_generation}: {escape(ms.apply_error)}"
            )
    rows = [
        (
            (
                r["machine"],
                tables.fmt(r["service"]),
                tables.fmt(r["mode"]),
                r["status"],
                tables.fmt(r["health"]),
                tables.fmt(r["version"]),
                tables.fmt(r["running"]),
                tables.fmt(r["generation"]),
                tables.fmt(r["applied_generation"]),
                _age(r["age"], fresh.now),
            ),
            STYLES.get(r["status"], ""),
        )
        for r in views.machine_rows(doc, fresh)
    ]
    machines = tables.fitted(
        console.width,
        STATUS_MACHINE_COLUMNS,
        rows,
        give_way=GIVE_WAY,
        whole=WHOLE,
        title="machines" + (" (stale: the controller is silent)" if silent else ""),
    )
    console.print(machines)
    if doc.rejected or doc.agent_refusals:
        table = tables.table(title="rejections and refusals")
        for col in ("machine", "side", "counts", "last"):
            tables.column(table, col)
        for m, rej in sorted(doc.rejected.items()):
            table.add_row(
                m, "controller rejected its snapshot", tables.counts(rej.counts), _last(rej.last)
            )
        for m, ref in sorted(doc.agent_refusals.items()):
            stale = " (desired stale)" if ref.desired_stale else ""
            table.add_row(
                m, "agent refused desired" + stale, tables.counts(ref.counts), _last(ref.last)
            )
        console.print(table)


SERVICE_COLUMNS = (
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
)
# bosun status's machines table: the columns of bosun machines up to the age
STATUS_MACHINE_COLUMNS = views.MACHINE_FIELDS[: views.MACHINE_FIELDS.index("age") + 1]
# what leaves a machines table first when it does not fit (-o json|csv|xml have it all)
GIVE_WAY = ("internal", "external", "applied_generation", "generation", "running", "version")
WHOLE = ("machine", "service", "mode", "status", "health")
STYLES = {"lost": "red", "stale": "magenta", "unhealthy": "yellow"}


def _check(doc: ClusterStatus, fresh: views.Freshness, verdict: Verdict) -> None:
    """`bosun status --check`: one line per problem; exit 0, 1 degraded, 2 stale or blind;
    warnings are said after and change nothing."""
    found = views.problems(doc, fresh, views.machine_rows(doc, fresh))
    if verdict.ok is False:
        found.append(views.Problem(views.DEGRADED, "degraded", verdict.text))
    elif verdict.ok is None:
        found.append(views.Problem(views.WARNING, "warning", verdict.text))
    found.sort(key=lambda p: -p.code)
    for problem in found:
        if problem.code > views.WARNING:
            click.echo(str(problem))
    if all(p.code == views.WARNING for p in found):
        click.echo(
            f"healthy: {len(doc.status.services)} services, {len(doc.status.machines)} "
            f"machines; {fresh.describe()}"
        )
    for problem in found:
        if problem.code == views.WARNING:
            click.echo(str(problem))
    sys.exit(max((p.code for p in found), default=0))


def _age(age: float | None, now: float) -> str:
    """`12s ago (18:43:47Z)`: relative to read, absolute to compare with logs (UTC)."""
    if age is None:
        return "-"
    return f"{views.ago(age)} ago ({time.strftime('%H:%M:%SZ', time.gmtime(now - age))})"


def _last(last: Refusal | None) -> str:
    return f"{last.reason}: {last.detail}" if last is not None else ": "


def _scaler(scale: ScaleStatus | None) -> str:
    """min..max, the measured metric against its target, and why it holds (if it does)."""
    if scale is None:
        return "-"
    target = scale.target_per_machine
    per = f" (target {target:g}/machine)" if target is not None else ""
    text = f"{scale.min}..{scale.max}: {scale.metric} = {scale.measured:g}{per}"
    return escape(text + (f"; holds: {scale.held}" if scale.held else ""))


@click.group("machines", invoke_without_command=True)
@optional_store_option
@click.option("--service", help="Only machines assigned to this service.")
@click.option(
    "--status",
    "status_filter",
    type=click.Choice(views.MACHINE_STATES),
    help="Only machines in this state; stale: no report accepted within its liveness window "
    "(judged now, by this command), lost: the controller said so.",
)
@click.option("--mode", help="Only machines in this mode (active, standby, ...).")
@click.option(
    "-o",
    "--output",
    type=click.Choice(["table", "json", "csv", "xml"]),
    default="table",
    show_default=True,
)
@controller_key_option
@click.pass_context
def machines_cmd(
    ctx: click.Context,
    store: str | None,
    service: str | None,
    status_filter: str | None,
    mode: str | None,
    output: str,
    controller_key: str | None,
) -> None:
    """List machines; -o xml is meant for XSLT tooling (see examples/firewall.xsl).

    `bosun machines forget NAME` removes a machine that is gone for good."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = store
        return
    if store is None:
        raise click.UsageError("Missing option '--store' (or BOSUN_STORE).")
    doc, fresh, verdict = _read(store, controller_key)
    _known(doc, service=service, mode=mode)
    if verdict.ok is False:
        click.echo(f"bosun: {verdict.text}", err=True)
    rows = views.filter_rows(
        views.machine_rows(doc, fresh), service=service, status=status_filter, mode=mode
    )
    if output == "json":
        tables.print_json(rows)
    elif output == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(views.MACHINE_FIELDS), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        click.echo(buf.getvalue(), nl=False)
    elif output == "xml":
        sys.stdout.buffer.write(views.rows_xml(rows, doc))
    else:
        console = make_console()
        console.print(
            escape(fresh.describe()), style="bold red" if fresh.controller_silent else None
        )
        console.print(escape(verdict.text), style=None if verdict.ok else "bold yellow")
        # addresses only where they fit (GIVE_WAY); a failed apply is a line, not a column
        fields = tuple(c for c in views.MACHINE_FIELDS if c != "apply_error")
        cells = [
            (
                tuple(_age(r[c], fresh.now) if c == "age" else tables.fmt(r[c]) for c in fields),
                STYLES.get(r["status"], ""),
            )
            for r in rows
        ]
        console.print(tables.fitted(console.width, fields, cells, give_way=GIVE_WAY, whole=WHOLE))
        for r in rows:
            if r["apply_error"] and r["status"] != "lost":
                console.print(
                    f"[bold red]{escape(r['machine'])}[/]: applying generation "
                    f"{r['generation']} failed: {escape(r['apply_error'])}"
                )
    if output != "table" and fresh.controller_silent:
        click.echo(f"bosun: {fresh.describe()}", err=True)


def _known(doc: ClusterStatus, *, service: str | None, mode: str | None) -> None:
    """A filter that names no service or mode there is could only print an empty table."""
    services = doc.status.services
    if service is not None and service not in services:
        raise ObjectMissing(
            f"no service {service!r} in status/cluster.json "
            f"(services: {', '.join(sorted(services)) or 'none'})"
        )
    if mode is not None and mode not in MODES:
        raise click.BadParameter(
            f"{mode!r} is not a mode (one of {', '.join(MODES)})", param_hint="--mode"
        )
