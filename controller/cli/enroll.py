"""`bosun enroll`: write what a machine needs at boot (its key and agent config)."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from controller.cli.common import master_key_option
from controller.operations.enrollment import (
    AGENT_UNITS,
    FORMATS,
    SCHEDULES,
    AgentSettings,
    Enrollment,
    check_credentials_env,
    enroll,
    render_cloud_init,
    render_env,
)
from controller.operations.machine_dir import check_eligible, write_machine_dir
from controller.shell.control_objects import load_spec
from controller.shell.key_epochs import load_epochs, load_master_key
from wire.errors import StoreError
from wire.store import Store, open_store

log = logging.getLogger(__name__)


def agent_units(directory: Path | None = None) -> dict[str, str]:
    """The agent's systemd units, from `directory` or the copies built into bosun."""
    if directory is None:
        return dict(AGENT_UNITS)
    return {name: (directory / name).read_text() for name in AGENT_UNITS}


@click.command("enroll")
@click.argument("machine")
@click.option(
    "--eligible",
    default="",
    help="Comma-separated services or pools, e.g. web,router; checked against the applied spec.",
)
@master_key_option
@click.option(
    "--epoch",
    type=click.IntRange(min=0),
    help="Key epoch [default: the machine's current epoch from --store, or 0].",
)
@click.option(
    "--store",
    envvar="BOSUN_STORE",
    help="Store URL the agent uses; also where the current epoch and the applied spec are "
    "read (BOSUN_STORE).",
)
@click.option("-o", "--output", "fmt", type=click.Choice(FORMATS), default="dir", show_default=True)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="-o dir: the machine's directory [default: ./MACHINE].",
)
@click.option(
    "--key-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="-o dir: write the key (0600) to this file instead of DIR/machine.key; the "
    "config's key_file names it.",
)
@click.option("--force", is_flag=True, help="-o dir: replace an existing agent.yaml and key.")
@click.option(
    "--schedule",
    type=click.Choice(SCHEDULES),
    default="daemon",
    show_default=True,
    help="cloud-init: enable the agent daemon or its once-a-minute timer.",
)
@click.option(
    "--pip-spec",
    help="cloud-init (required; with -o dir it adds DIR/user-data): what pip installs on the "
    "machine: a wheel URL or git+https://.../bosun@TAG (the 'bosun' on PyPI is another project).",
)
@click.option(
    "--units-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="cloud-init: take the agent's systemd units from this directory "
    "(e.g. infra/systemd) instead of the shipped copies.",
)
@click.option(
    "--credentials-env",
    type=click.Path(dir_okay=False, path_type=Path),
    help="cloud-init: env file with this machine's S3 credentials (AWS_ACCESS_KEY_ID=..., "
    "AWS_SECRET_ACCESS_KEY=...), written to /etc/bosun/agent.env (0600, root).",
)
def enroll_command(
    machine: str,
    eligible: str,
    master_key: Path,
    epoch: int | None,
    store: str | None,
    fmt: str,
    directory: Path | None,
    key_out: Path | None,
    force: bool,
    schedule: str,
    pip_spec: str | None,
    units_dir: Path | None,
    credentials_env: Path | None,
) -> None:
    """Write MACHINE's derived key and an agent config skeleton.

    \b
    -o dir         (default) the machine's directory: DIR/agent.yaml whose key_file
                   names DIR/machine.key (0600, or --key-out), and DIR/user-data
                   (cloud-init) when --pip-spec is given
    -o env         shell variables for a provisioning script, on standard output
    -o cloud-init  #cloud-config user-data on standard output: bosun user, config, key
                   file (0600), pip install into /opt/bosun, systemd unit enabled

    With --store, --eligible is checked against the applied spec: an unknown service
    or pool is an error. The key is a secret: keep it out of logs, tickets and history.
    """
    if fmt != "dir":
        for flag, value in (("--key-out", key_out), ("--dir", directory), ("--force", force)):
            if value:
                raise click.UsageError(f"{flag} applies to -o dir only")
    if credentials_env is not None and fmt == "env":
        raise click.UsageError(
            "--credentials-env applies to -o cloud-init (or -o dir with --pip-spec)"
        )
    opened = open_store(store, create=False) if store is not None else None
    master = load_master_key(master_key)
    if epoch is None:
        epoch = _current_epoch(opened, machine, master)
    try:
        enrollment = enroll(master, machine, eligible=eligible.split(","), epoch=epoch, store=store)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="MACHINE or --eligible") from None
    warning: str | None
    if opened is not None:
        try:
            spec = load_spec(opened)
        except StoreError as exc:  # enrolling offline with --epoch stays possible
            warning = f"--eligible not checked: cannot read the applied spec: {exc}"
        else:
            warning = check_eligible(enrollment.eligible, spec, store=opened.url)
        if warning:
            click.echo(f"bosun enroll: {warning}", err=True)
    else:
        click.echo("bosun enroll: no --store: --eligible not checked against a spec", err=True)
    settings = AgentSettings()
    if fmt == "env":
        click.echo(render_env(enrollment, settings), nl=False)
        return
    user_data = None
    if fmt == "cloud-init" or pip_spec:
        user_data = _cloud_init(
            enrollment, settings, schedule, pip_spec, units_dir, credentials_env
        )
    if fmt == "cloud-init":
        assert user_data is not None
        click.echo(user_data, nl=False)
        return
    target = directory if directory is not None else Path(machine)
    if store is None:
        click.echo("bosun enroll: no --store: edit `store` in the agent config", err=True)
    written = write_machine_dir(
        target, enrollment, key_out=key_out, user_data=user_data, force=force
    )
    click.echo(f"wrote {written.config} (agent config; key_file: {written.key})")
    click.echo(f"wrote {written.key} (machine key, mode 0600)")
    if written.user_data is not None:
        click.echo(f"wrote {written.user_data} (cloud-init user-data; it holds the key)")
    click.echo(
        f"next: describe how {machine} applies "
        f"{', '.join(enrollment.eligible) or 'its services'} under `services:` in "
        f"{written.config} (docs/agent.md), then: "
        f"bosun-agent run --once --config {written.config}"
    )
    log.info("enroll.written", extra={"ctx": {"machine": machine, "epoch": epoch}})


def _current_epoch(store: Store | None, machine: str, master: bytes) -> int:
    if store is None:
        click.echo(f"bosun enroll: no --epoch or --store: using epoch 0 for {machine}", err=True)
        return 0
    try:
        return load_epochs(store, master).get(machine, 0)
    except StoreError as exc:
        raise StoreError(
            f"{exc}; enroll reads the machine's current epoch from control/keys.json: "
            "use credentials that may read it, or pass --epoch N"
        ) from exc


def _cloud_init(
    enrollment: Enrollment,
    settings: AgentSettings,
    schedule: str,
    pip_spec: str | None,
    units_dir: Path | None,
    credentials_env: Path | None,
) -> str:
    if enrollment.store is None:
        raise click.UsageError("cloud-init needs --store (the agent must reach a bucket)")
    creds = None
    if credentials_env is not None:
        try:
            creds = check_credentials_env(credentials_env.read_text(), source=str(credentials_env))
        except (OSError, ValueError) as exc:
            raise click.BadParameter(str(exc), param_hint="--credentials-env") from None
    try:
        return render_cloud_init(
            enrollment,
            agent_units(units_dir),
            settings,
            schedule=schedule,
            pip_spec=pip_spec,
            credentials_env=creds,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
