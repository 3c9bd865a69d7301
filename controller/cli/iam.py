"""`bosun iam-policy`: print IAM policies for a Bosun bucket."""

from __future__ import annotations

import json

import click

from controller.operations.policies import agent_policy, controller_policy, operator_policy
from wire.errors import BosunError


@click.command("iam-policy")
@click.argument("machine", required=False)
@click.option("--bucket", required=True, help="Bucket name (no s3:// and no prefix).")
@click.option("--prefix", default="", help="Store prefix inside the bucket, e.g. 'fleet'.")
@click.option(
    "--role",
    type=click.Choice(["agent", "controller", "operator"]),
    default="agent",
    show_default=True,
    help="Whose policy to print.",
)
@click.option(
    "--variable",
    is_flag=True,
    help="Agent policy in its principal-tag form (one policy for all machines) instead of "
    "the literal per-machine form.",
)
@click.option("--partition", default="aws", show_default=True, help="ARN partition.")
def iam_policy(
    machine: str | None, bucket: str, prefix: str, role: str, variable: bool, partition: str
) -> None:
    """Print an IAM policy (JSON) for the bucket.

    By default the literal per-machine agent policy for MACHINE: PUT only
    reports/MACHINE.json and GET only desired/MACHINE.json, nothing else. Use it for stores
    without policy variables (MinIO users, moto) or one policy per machine on AWS.
    """
    try:
        if role == "agent":
            if variable == (machine is not None):
                raise click.UsageError(
                    "give MACHINE for the literal agent policy, or --variable without MACHINE "
                    "for the principal-tag form"
                )
            doc = agent_policy(bucket, prefix=prefix, machine=machine, partition=partition)
        else:
            if machine is not None or variable:
                raise click.UsageError(f"--role {role} takes no MACHINE and no --variable")
            build = controller_policy if role == "controller" else operator_policy
            doc = build(bucket, prefix=prefix, partition=partition)
    except ValueError as exc:
        if isinstance(exc, BosunError):
            raise
        raise click.BadParameter(str(exc)) from None
    click.echo(json.dumps(doc, indent=2))
