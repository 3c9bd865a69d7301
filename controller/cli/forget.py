"""`bosun machines forget NAME`: remove a machine that is gone for good."""

from __future__ import annotations

import time
from pathlib import Path

import click

from controller.cli.common import optional_store_option
from controller.cli.operator_key import apply_kwargs, operator_options, signing_for
from controller.cli.reads import machines_cmd
from controller.operations import views
from controller.spec import revisions
from wire.errors import SpecError
from wire.store import open_store


@machines_cmd.command("forget")
@click.argument("names", nargs=-1, required=True, metavar="NAME...")
@optional_store_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@operator_options
@click.pass_obj
def forget_cmd(
    group_store: str | None,
    names: tuple[str, ...],
    store: str | None,
    yes: bool,
    operator_key: Path | None,
    message: str,
) -> None:
    """Forget machines that are gone for good (decommissioned, replaced, never coming back).

    Recorded as a new spec revision (`forget:`); the next controller cycle drops each
    machine from its memory and from status/cluster.json and deletes its desired document
    and its report. Only a machine the controller counts lost is forgotten: one that
    reports is left alone, and one that reports again later is simply a machine again.
    """
    url = store or group_store
    if url is None:
        raise click.UsageError("Missing option '--store' (or BOSUN_STORE).")
    st = open_store(url, create=False)
    signing = signing_for(st, operator_key, message)
    current = revisions.read_current(st, signing.trust)
    if current is None:
        raise SpecError("machines forget: no spec applied yet; nothing to forget")
    doc = views.load_status(st)
    machines = doc.status.machines
    unknown = [n for n in names if n not in machines]
    if unknown:
        raise SpecError(
            f"machines forget: no machine {', '.join(unknown)} in status/cluster.json "
            f"(known: {', '.join(sorted(machines)[:10]) or 'none'})"
        )
    holds = doc.status.holds
    held = [n for n in names if not machines[n].lost and machines[n].service in holds]
    if held:
        svc = machines[held[0]].service
        raise SpecError(
            f"machines forget: {', '.join(held)} is silent but held by fail static "
            f"({svc}: {holds[svc or ''].reason}); if it is gone for good, set "
            f"services.{svc}.health.blind_threshold: off, apply, and forget it once it is lost"
        )
    alive = [n for n in names if not machines[n].lost]
    if alive:
        raise SpecError(
            f"machines forget: {', '.join(alive)} reported within its liveness window; only a "
            "machine the controller counts lost can be forgotten (stop its agent first)"
        )
    if not yes:
        click.confirm(
            f"forget {', '.join(names)}: delete its desired document and report, and drop it "
            "from the controller's memory?",
            abort=True,
        )
    spec = current.spec
    new = revisions.with_forget(spec, names)
    applied = revisions.apply(
        st, new, now=time.time(), expect_revision=spec.revision, **apply_kwargs(signing)
    )
    click.echo(
        f"applied revision {applied.revision}: forget {', '.join(names)} "
        "(the next controller cycle removes them)"
    )
