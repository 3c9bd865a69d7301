"""`bosun controller once|run`: the reconcile cycle, from cron or as a daemon."""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import orjson

from controller.cli.common import Duration, master_key_option, store_option
from controller.shell.cycle import Controller, CycleReport
from controller.shell.key_epochs import load_master_key
from controller.shell.lease import LeaseSettings
from controller.shell.local_dir import (
    default_state_dir,
    exclusive,
    load_lease_view,
    load_snapshots,
    load_trust,
    probe_due,
    save_lease_view,
    save_probe_passed,
    save_snapshots,
    save_trust,
)
from wire import codec
from wire.store import Store, open_store


@dataclass(frozen=True, slots=True)
class ControllerSettings:
    """Everything a controller process is configured with, built once from the CLI."""

    store: str
    master_key: Path
    holder: str
    lease: LeaseSettings
    state_dir: Path


def _settings(
    store: str,
    master_key: Path,
    holder: str | None,
    lease_duration: float,
    renew_deadline: float | None,
    state_dir: Path | None,
) -> ControllerSettings:
    deadline = renew_deadline if renew_deadline is not None else lease_duration * 2 / 3
    try:
        lease = LeaseSettings(lease_duration, deadline)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--renew-deadline") from None
    return ControllerSettings(
        store,
        master_key,
        holder or socket.gethostname(),
        lease,
        state_dir or default_state_dir(store),
    )


def _common(fn: Any) -> Any:
    for option in reversed(
        [
            store_option,
            master_key_option,
            click.option(
                "--id",
                "holder",
                envvar="BOSUN_CONTROLLER_ID",
                metavar="NAME",
                help="This controller's name in the lease (default: the host name; "
                "BOSUN_CONTROLLER_ID). Unique per controller.",
            ),
            click.option(
                "--lease-duration",
                type=Duration(),
                default="30s",
                show_default=True,
                help="How long followers wait on an unchanged lease before taking over.",
            ),
            click.option(
                "--renew-deadline",
                type=Duration(),
                default=None,
                help="How long after a renew the leader may act (default 2/3 of the "
                "lease duration; must be shorter).",
            ),
            click.option(
                "--state-dir",
                type=click.Path(file_okay=False, path_type=Path),
                help="Local lock, lease view and probe pass (default "
                "$XDG_STATE_HOME or ~/.local/state, then bosun/<12 hex of sha256(store URL)>).",
            ),
        ]
    ):
        fn = option(fn)
    return fn


@contextmanager
def _controller(
    cfg: ControllerSettings, *, keep_view: bool, wrap: Callable[[Store], Store] | None = None
) -> Iterator[Controller]:
    store = open_store(cfg.store)
    with exclusive(cfg.state_dir):
        ctl = Controller(
            wrap(store) if wrap is not None else store,
            load_master_key(cfg.master_key),
            holder=cfg.holder,
            lease=cfg.lease,
        )
        if keep_view:
            ctl.lease.restore(load_lease_view(cfg.state_dir))
            ctl.cache.keep_raw = True
            ctl.cache.raw = load_snapshots(cfg.state_dir)
        ctl.trust.restore(load_trust(cfg.state_dir))
        try:
            yield ctl
        finally:
            save_trust(cfg.state_dir, ctl.trust.export())
            if keep_view:
                save_lease_view(cfg.state_dir, ctl.lease.export())
                if ctl.cache.dirty:
                    save_snapshots(cfg.state_dir, ctl.cache.raw)


@click.group("controller")
def controller_group() -> None:
    """Run the reconcile cycle: read snapshots, plan, write desired documents."""


SKIP_PROBE = click.option(
    "--skip-probe",
    is_flag=True,
    help="Do not probe the store's conditional requests (see bosun doctor). `run` probes at "
    "start; `once` at most daily, remembering a pass in --state-dir.",
)


@controller_group.command("once")
@_common
@click.option("--dry-run", is_flag=True, help="Print the plan; write nothing (not even the lease).")
@click.option(
    "-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@SKIP_PROBE
def once(
    store: str,
    master_key: Path,
    holder: str | None,
    lease_duration: float,
    renew_deadline: float | None,
    state_dir: Path | None,
    dry_run: bool,
    output: str,
    skip_probe: bool,
) -> None:
    """One cycle (for cron). A follower exits 0 having written nothing."""
    cfg = _settings(store, master_key, holder, lease_duration, renew_deadline, state_dir)
    if not skip_probe and not dry_run:
        _probe_once_a_day(cfg)
    with _controller(cfg, keep_view=not dry_run) as ctl:
        report = ctl.cycle(dry_run=dry_run)
    _print(report, output, dry_run=dry_run)


def _probe_once_a_day(cfg: ControllerSettings) -> None:
    """docs/security.md#store-atomicity for cron: refuse a store that ignores conditional requests; a pass is
    remembered in the state dir for a day (the probe costs about 30 requests)."""
    from controller.operations.store_probe import probe, refuse_if_missing

    now = time.time()
    if not probe_due(cfg.state_dir, cfg.store, now):
        return
    refuse_if_missing(probe(open_store(cfg.store)))
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    save_probe_passed(cfg.state_dir, cfg.store, now)


@controller_group.command("run")
@_common
@click.option(
    "--every",
    type=Duration(),
    default=None,
    help="Cycle interval. Default: the applied spec's settings.controller_interval (10s "
    "until a spec is applied), followed when the spec changes it.",
)
@SKIP_PROBE
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Serve Prometheus metrics at http://HOST:PORT/metrics (docs/metrics.md); 0 picks a "
    "free port and logs it. Off by default.",
)
@click.option(
    "--metrics-host",
    default="127.0.0.1",
    show_default=True,
    help="Address the metrics endpoint listens on (it has no authentication).",
)
def run(
    store: str,
    master_key: Path,
    holder: str | None,
    lease_duration: float,
    renew_deadline: float | None,
    state_dir: Path | None,
    every: float | None,
    skip_probe: bool,
    metrics_port: int | None,
    metrics_host: str,
) -> None:
    """Cycle every controller_interval (or --every) until SIGTERM/SIGINT, then release the lease."""
    from controller.operations.store_probe import probe, refuse_if_missing
    from controller.shell.daemon import run_forever

    cfg = _settings(store, master_key, holder, lease_duration, renew_deadline, state_dir)
    if every is not None and every >= cfg.lease.renew_deadline:
        raise click.BadParameter(
            f"--every {every:g}s must be shorter than the renew deadline "
            f"({cfg.lease.renew_deadline:g}s), or the leader would lose its lease between cycles",
            param_hint="--every",
        )
    if not skip_probe:
        refuse_if_missing(probe(open_store(cfg.store)))  # the client the cycle uses
    if metrics_port is None:
        with _controller(cfg, keep_view=False) as ctl:
            run_forever(
                ctl,
                every,
                on_report=lambda r: click.echo(r.summary(), err=True),
                longest=cfg.lease.renew_deadline,
            )
        return
    from controller.shell.metrics import ControllerMetrics, serve_metrics

    metrics = ControllerMetrics()
    bound = serve_metrics(metrics, metrics_host, metrics_port)
    shown = f"[{metrics_host}]" if ":" in metrics_host else metrics_host
    click.echo(f"bosun controller: metrics at http://{shown}:{bound}/metrics", err=True)
    with _controller(cfg, keep_view=False, wrap=metrics.store) as ctl:

        def report(r: CycleReport) -> None:
            metrics.observe(ctl, r)
            click.echo(r.summary(), err=True)

        run_forever(
            ctl,
            every,
            on_report=report,
            longest=cfg.lease.renew_deadline,
            on_failure=metrics.failed,
        )


def _print(report: CycleReport, output: str, *, dry_run: bool) -> None:
    if output == "json":
        value: dict[str, Any] = {
            "lease": codec.encode(report.lease),
            "cycle": report.cycle,
            "listed": report.listed,
            "fetched": report.fetched,
            "accepted": report.accepted,
            "rejected": report.rejected,
            "written": report.written,
            "failed": report.failed,
            "dry_run": dry_run,
            "plan": None,
        }
        if report.plan is not None:
            value["plan"] = {
                "writes": [codec.encode(w) for w in report.plan.writes],
                "skips": len(report.plan.skips),
                "events": [codec.encode(e) for e in report.plan.events],
            }
        sys.stdout.buffer.write(orjson.dumps(value, option=orjson.OPT_INDENT_2) + b"\n")
        return
    click.echo(report.summary())
    if report.plan is None:
        if report.lease.acting or dry_run:
            click.echo("no spec applied yet: run `bosun spec apply FILE`")
        return
    if dry_run:
        click.echo(f"dry run (would write as fence {report.plan.status.fence}):")
    for w in report.plan.writes:
        d = w.desired
        click.echo(
            f"  {'plan' if dry_run else 'put '} desired/{w.machine}.json generation "
            f"{d.generation} {d.mode} {d.service or '-'} {d.version or '-'} ({w.reason})"
        )
    for e in report.plan.events:
        target = e.machine or e.service or ""
        click.echo(f"  event {e.kind} {target}: {e.reason}")
    for machine, why in report.failed.items():
        click.echo(f"  failed {machine}: {why}")


__all__ = ["controller_group"]
