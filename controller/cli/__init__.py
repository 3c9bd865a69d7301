"""`bosun`: the operator and controller command line.

Each command group lives in its own module under `controller/cli/` and is registered in
`COMMANDS` below. Errors map to exit codes in one place (`main`): a known `BosunError`
prints one clear line and exits 2; anything else is a bug and shows its traceback.
"""

from __future__ import annotations

import importlib
import logging
import sys

import click

from wire.errors import BosunError

# module path -> attribute holding a click command or group
COMMANDS: list[tuple[str, str]] = [
    ("controller.cli.spec", "spec_group"),
    ("controller.cli.spec", "update_command"),
    ("controller.cli.cost", "cost"),
    ("controller.cli.iam", "iam_policy"),
    ("controller.cli.enroll", "enroll_command"),
    ("controller.cli.keys", "keygen_cmd"),
    ("controller.cli.keys", "revoke_cmd"),
    ("controller.cli.controller", "controller_group"),
    ("controller.cli.reads", "status_cmd"),
    ("controller.cli.reads", "machines_cmd"),
    ("controller.cli.reads", "history_cmd"),
    ("controller.cli.reads", "events_cmd"),
    ("controller.cli.doctor", "doctor_cmd"),
    ("controller.cli.demo", "demo_cmd"),
    ("controller.cli.rollout", "rollout_group"),
]


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
    from controller.logs import configure_logging

    configure_logging(log_level, log_format)


for _module, _attr in COMMANDS:
    cli.add_command(getattr(importlib.import_module(_module), _attr))


def main() -> None:
    try:
        cli.main(standalone_mode=False)
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
        click.echo(f"bosun: {exc}", err=True)
        sys.exit(2)
