"""`bosun keygen`, `bosun revoke` and `bosun rotate`: key files and machine key epochs."""

from __future__ import annotations

from pathlib import Path

import click

from controller.cli.common import Duration, master_key_option, open_store_option, store_option
from controller.shell.key_epochs import (
    DEFAULT_GRACE,
    OPERATOR_NAME,
    bump_epoch,
    keygen,
    load_master_key,
    read_keys,
)
from wire.store import Store


@click.command("keygen")
@click.option(
    "-o",
    "--output",
    "path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the key (created 0600).",
)
@click.option(
    "--force", is_flag=True, help="Overwrite an existing key file (old keys stop working)."
)
@click.option(
    "--operator",
    metavar="NAME",
    default=None,
    help="Write an operator signing key (Ed25519) for NAME instead of a master key, and "
    "print its public key to list with `bosun keys add-operator`.",
)
def keygen_cmd(path: Path, force: bool, operator: str | None) -> None:
    """Write a new key to a file readable only by its owner.

    Without --operator: the controller master key; every machine key is derived from it;
    keep it off the bucket and back it up. With --operator NAME: an operator's key that
    signs spec revisions (`bosun spec apply --operator-key FILE`); it stays with that
    operator, and only its public half goes into control/keys.json.
    """
    if operator is None:
        keygen(path, force=force)
        click.echo(f"wrote master key {path} (mode 0600)")
        return
    if not OPERATOR_NAME.fullmatch(operator):
        raise click.BadParameter("use 1-64 of a-z, 0-9, '.', '_', '-'", param_hint="--operator")
    from wire.pubkeys import printable, write_operator_key

    public = printable(write_operator_key(path, force=force))
    click.echo(f"wrote operator key {path} (mode 0600) for {operator}")
    click.echo(f"public key: {public}")
    click.echo(
        f"list it (with the master key): bosun keys add-operator {operator} {public} "
        "--store URL --master-key FILE"
    )


UNKNOWN_OK = click.option(
    "--unknown",
    is_flag=True,
    help="Go on for a machine the bucket has never seen (no report, no desired document, "
    "no key epoch): a key enrolled but not yet used. Without it such a name is refused, "
    "so a typo does not leave the machine you meant untouched.",
)


def _refuse_unknown(store: Store, url: str, master: bytes, machine: str) -> None:
    """Refuse a MACHINE the bucket knows nothing of (exit 1), naming what was looked for."""
    from wire.layout import KEYS, desired_key, machine_id, report_key

    machine_id(machine)
    for key in (report_key(machine), desired_key(machine)):
        if any(info.key == key for info in store.list(key)):
            return
    doc, _, _ = read_keys(store, master)
    if machine in doc.epochs:
        return  # revoked or rotated before: it has a key epoch
    raise click.ClickException(
        f"{machine}: unknown to {url} (no {report_key(machine)}, no {desired_key(machine)}, "
        f"no key epoch in {KEYS}); check the name, or give --unknown for a machine enrolled "
        "but not yet started"
    )


@click.command("revoke")
@click.argument("machine")
@store_option
@master_key_option
@UNKNOWN_OK
def revoke_cmd(machine: str, store: str, master_key: Path, unknown: bool) -> None:
    """Revoke MACHINE's key at once: bump its epoch in control/keys.json (signed).

    The controller refuses the old key from its next cycle on, even if control/keys.json
    is later deleted or an older copy is put back; re-enroll the machine with the printed
    command to give it a key at the new epoch. To change a key without a gap, use rotate.
    """
    master, opened = load_master_key(master_key), open_store_option(store)
    if not unknown:
        _refuse_unknown(opened, store, master, machine)
    epoch = bump_epoch(opened, master, machine)
    click.echo(f"{machine}: key epoch is now {epoch}; snapshots signed with older keys are refused")
    click.echo(f"re-enroll it with: {_reenroll(machine, epoch, store)}")


@click.command("rotate")
@click.argument("machine")
@store_option
@master_key_option
@click.option(
    "--grace",
    type=Duration(),
    default=f"{int(DEFAULT_GRACE)}s",
    show_default=True,
    help="How long the old key stays valid (at most 7 days), so the agent switches without a gap.",
)
@UNKNOWN_OK
def rotate_cmd(machine: str, store: str, master_key: Path, grace: float, unknown: bool) -> None:
    """Rotate MACHINE's key: a new epoch, the old key still valid for --grace.

    Until the machine reports with its new key, its desired document stays signed with the
    old one; re-enroll it (the printed command) within the grace. Revoke is immediate.
    """
    if grace > 7 * 24 * 3600:
        raise click.BadParameter("at most 7d", param_hint="--grace")
    master, opened = load_master_key(master_key), open_store_option(store)
    if not unknown:
        _refuse_unknown(opened, store, master, machine)
    epoch = bump_epoch(opened, master, machine, grace=grace)
    click.echo(f"{machine}: key epoch is now {epoch}; epoch {epoch - 1} stays valid for {grace:g}s")
    click.echo(f"install the new key with: {_reenroll(machine, epoch, store)}")


def _reenroll(machine: str, epoch: int, store: str) -> str:
    """The enroll command that gives MACHINE its key at EPOCH, and how to install it."""
    return (
        f"bosun enroll {machine} --epoch {epoch} --store {store!s} --master-key FILE "
        "--eligible SERVICES -o dir|env|cloud-init (as it was enrolled: the eligible services "
        "and the form your provisioning uses). An agent.yaml you filled in is kept: give "
        f"--dir NEWDIR, copy NEWDIR/machine.key over its key_file and set key_epoch: {epoch} "
        "in it. Then restart an agent daemon (it reads its key at start)."
    )
