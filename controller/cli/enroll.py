"""`bosun enroll`: print what a machine needs at boot (its key and agent config)."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from controller.operations.enrollment import (
    AGENT_UNITS,
    FORMATS,
    SCHEDULES,
    AgentSettings,
    check_credentials_env,
    enroll,
    render_cloud_init,
    render_env,
    render_yaml,
)
from controller.shell.key_epochs import load_epochs, load_master_key
from wire.errors import StoreError
from wire.signing import write_key_file
from wire.store import open_store

log = logging.getLogger(__name__)


def agent_units(directory: Path | None = None) -> dict[str, str]:
    """The agent's systemd units, from `directory` or the copies built into bosun."""
    if directory is None:
        return dict(AGENT_UNITS)
    return {name: (directory / name).read_text() for name in AGENT_UNITS}


@click.command("enroll")
@click.argument("machine")
@click.option("--eligible", default="", help="Comma-separated services, e.g. web,router.")
@click.option(
    "--master-key",
    "master_key",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Master key file (bosun keygen).",
)
@click.option(
    "--epoch",
    type=click.IntRange(min=0),
    help="Key epoch [default: the machine's current epoch from --store, or 0].",
)
@click.option(
    "--store",
    envvar="BOSUN_STORE",
    help="Store URL the agent uses; also where the current epoch is read (BOSUN_STORE).",
)
@click.option(
    "-o", "--output", "fmt", type=click.Choice(FORMATS), default="yaml", show_default=True
)
@click.option(
    "--schedule",
    type=click.Choice(SCHEDULES),
    default="daemon",
    show_default=True,
    help="cloud-init: enable the agent daemon or its once-a-minute timer.",
)
@click.option(
    "--pip-spec",
    help="cloud-init (required): what pip installs on the machine: a wheel URL or "
    "git+https://.../bosun@TAG (the 'bosun' on PyPI is another project).",
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
@click.option(
    "--key-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="yaml: write the key to this file (0600) instead of printing it.",
)
def enroll_command(
    machine: str,
    eligible: str,
    master_key: Path,
    epoch: int | None,
    store: str | None,
    fmt: str,
    schedule: str,
    pip_spec: str | None,
    units_dir: Path | None,
    credentials_env: Path | None,
    key_out: Path | None,
) -> None:
    """Print MACHINE's derived key and an agent config skeleton.

    \b
    -o yaml        the enrollment (key) and /etc/bosun/agent.yaml, as two YAML documents
    -o env         shell variables for a provisioning script
    -o cloud-init  #cloud-config user-data: bosun user, config, key file (0600), pip
                   install into /opt/bosun, systemd unit enabled

    The output contains the machine key: keep it out of logs, tickets and shell history.
    """
    master = load_master_key(master_key)
    if epoch is None:
        if store is None:
            epoch = 0
            click.echo(
                f"bosun enroll: no --epoch or --store: using epoch 0 for {machine}", err=True
            )
        else:
            try:
                epoch = load_epochs(open_store(store), master).get(machine, 0)
            except StoreError as exc:
                raise StoreError(
                    f"{exc}; enroll reads the machine's current epoch from control/keys.json: "
                    "use credentials that may read it, or pass --epoch N"
                ) from exc
    try:
        enrollment = enroll(master, machine, eligible=eligible.split(","), epoch=epoch, store=store)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    settings = AgentSettings()
    if key_out is not None and fmt != "yaml":
        raise click.UsageError("--key-out applies to -o yaml only")
    if credentials_env is not None and fmt != "cloud-init":
        raise click.UsageError("--credentials-env applies to -o cloud-init only")
    if fmt == "yaml":
        if store is None:
            click.echo("bosun enroll: no --store: edit `store` in the agent config", err=True)
        written = None
        if key_out is not None:
            write_key_file(key_out, enrollment.key)
            written = str(key_out)
        click.echo(render_yaml(enrollment, settings, key_written_to=written), nl=False)
    elif fmt == "env":
        click.echo(render_env(enrollment, settings), nl=False)
    else:
        if store is None:
            raise click.UsageError("-o cloud-init needs --store (the agent must reach a bucket)")
        units = agent_units(units_dir)
        creds = None
        if credentials_env is not None:
            try:
                creds = check_credentials_env(
                    credentials_env.read_text(), source=str(credentials_env)
                )
            except (OSError, ValueError) as exc:
                raise click.BadParameter(str(exc), param_hint="--credentials-env") from None
        try:
            text = render_cloud_init(
                enrollment,
                units,
                settings,
                schedule=schedule,
                pip_spec=pip_spec,
                credentials_env=creds,
            )
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
        click.echo(text, nl=False)
    log.info("enroll.printed", extra={"ctx": {"machine": machine, "epoch": epoch, "format": fmt}})
