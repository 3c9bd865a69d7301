"""`bosun keygen` and `bosun revoke`: the master key file and machine key epochs."""

from __future__ import annotations

from pathlib import Path

import click

from controller.cli.common import open_store_option, store_option
from controller.shell.key_epochs import bump_epoch, keygen


@click.command("keygen")
@click.option(
    "-o",
    "--output",
    "path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the master key (created 0600).",
)
@click.option(
    "--force", is_flag=True, help="Overwrite an existing key file (old keys stop working)."
)
def keygen_cmd(path: Path, force: bool) -> None:
    """Write a new controller master key to a file readable only by its owner.

    Every machine key is derived from it; keep it off the bucket and back it up.
    """
    keygen(path, force=force)
    click.echo(f"wrote master key {path} (mode 0600)")


@click.command("revoke")
@click.argument("machine")
@store_option
def revoke_cmd(machine: str, store: str) -> None:
    """Revoke MACHINE's key: bump its epoch in control/keys.json.

    The controller refuses the old key from its next cycle on; re-enroll the machine with
    the printed command to give it a key at the new epoch.
    """
    epoch = bump_epoch(open_store_option(store), machine)
    click.echo(f"{machine}: key epoch is now {epoch}; snapshots signed with older keys are refused")
    click.echo(
        f"re-enroll it with: bosun enroll {machine} --epoch {epoch} --store {store!s} "
        "--master-key FILE --eligible SERVICES -o dir|env|cloud-init (as it was enrolled: "
        "the eligible services and the form your provisioning uses)"
    )
