"""`bosun`: the operator and controller command line.

Each command group lives in its own module under `controller/cli/` and is added to the
group below. A command module parses options and prints; what it does lives in
`controller.operations` (reads, probes, enrollment, policies) or `controller.shell` (the
cycle). Heavy imports stay inside the commands that need them. Errors map to exit codes in
one place (`main`): a known `BosunError` prints one clear line and exits 2; anything else is
a bug and shows its traceback.
"""

from __future__ import annotations

import logging
import sys

import click

from controller.cli.archives import events_cmd, history_cmd
from controller.cli.controller import controller_group
from controller.cli.cost import cost
from controller.cli.doctor import doctor_cmd
from controller.cli.enroll import enroll_command
from controller.cli.forget import forget_cmd
from controller.cli.iam import iam_policy
from controller.cli.keys import keygen_cmd, revoke_cmd, rotate_cmd
from controller.cli.keys_group import keys_group
from controller.cli.reads import machines_cmd, status_cmd
from controller.cli.rollout import rollout_group
from controller.cli.spec import spec_group, update_command
from controller.cli.ui import ui_cmd
from wire.errors import BosunError


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "BOSUN"}
)
@click.option(
    "--log-level",
    default="warning",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
    help="Logging threshold.",
)
@click.option(
    "--log-format",
    default="text",
    show_default=True,
    type=click.Choice(["text", "json"]),
    help="json for daemons whose logs are collected.",
)
def cli(log_level: str, log_format: str) -> None:
    """Bosun: a pull-based cluster manager that works through an S3-compatible bucket.

    Machines run bosun-agent; this command runs the controller and lets operators read
    and change the cluster. The store is given as --store (or BOSUN_STORE):
    s3://bucket[/prefix][?endpoint=URL&region=R] or file:///abs/path.
    """
    from controller.cli.logs import configure_logging

    configure_logging(log_level, log_format)


for _command in (
    spec_group,
    update_command,
    cost,
    iam_policy,
    enroll_command,
    keygen_cmd,
    revoke_cmd,
    rotate_cmd,
    keys_group,
    controller_group,
    status_cmd,
    machines_cmd,
    history_cmd,
    events_cmd,
    doctor_cmd,
    rollout_group,
    ui_cmd,
):
    cli.add_command(_command)
assert forget_cmd.name == "forget"  # registered on `bosun machines` by its module


def main() -> None:
    run(cli, "bosun")


def run(command: click.Command, prog_name: str) -> None:
    """Run a click command with the one mapping from errors to exit codes: a known
    `BosunError` prints one line and exits 2, a usage error exits as click says, Ctrl-C
    130; anything else is a bug and shows its traceback."""
    try:
        command.main(prog_name=prog_name, standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except BosunError as exc:
        logging.getLogger("bosun").debug("error", exc_info=True)
        click.echo(f"{prog_name}: {exc}", err=True)
        sys.exit(2)
