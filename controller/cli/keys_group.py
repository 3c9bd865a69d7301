"""`bosun keys show|add-operator|remove-operator|adopt`: what control/keys.json lists.

Changing it needs the master key (it is a control object the controller signs,
docs/security.md#signed-control-objects). `show` prints the controller's public key for
operators to pin (BOSUN_CONTROLLER_KEY): with it their tools verify status/cluster.json and
the operator list without the master key (docs/security.md#reading-tools).
"""

from __future__ import annotations

from pathlib import Path

import click

from controller.cli.common import master_key_option, open_store_option, store_option
from controller.shell.key_epochs import load_master_key, read_keys, set_operator
from controller.shell.keys_adopt import adopt, read_unsigned


@click.group("keys")
def keys_group() -> None:
    """Operator keys, the controller's public key, and adopting an unsigned keys file."""


@keys_group.command("show")
@store_option
@click.option(
    "--master-key",
    envvar="BOSUN_MASTER_KEY",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Verify control/keys.json and print the controller key to pin (BOSUN_MASTER_KEY).",
)
def show_cmd(store: str, master_key: Path | None) -> None:
    """Print the operator keys, key epochs and (with --master-key) the controller key to pin."""
    st = open_store_option(store)
    master = load_master_key(master_key) if master_key is not None else None
    doc, sealed, _etag = read_keys(st, master)
    from wire.pubkeys import printable

    if master is not None:
        from wire.pubkeys import controller_public

        pub = controller_public(master)
        click.echo(f"BOSUN_CONTROLLER_KEY={printable(pub.sign)}")
        click.echo(f"controller seal key: {pub.seal}")
        if doc.controller is None or doc.controller.sign != pub.sign:
            click.echo(
                "warning: control/keys.json does not list this controller key yet; any `bosun "
                "keys add-operator|remove-operator`, `revoke` or `rotate` writes it",
                err=True,
            )
    state = "verified" if master is not None else "NOT verified (no --master-key)"
    version = sealed.version if sealed is not None else 0
    click.echo(f"control/keys.json version {version}, {state}; cluster {doc.cluster or '-'}")
    for name, public in sorted(doc.operators.items()):
        click.echo(f"operator {name}: {printable(public)}")
    if not doc.operators:
        click.echo("no operator keys: unsigned spec revisions are accepted (docs/security.md)")
    for machine, epoch in sorted(doc.epochs.items()):
        click.echo(f"machine {machine}: epoch {epoch}")


@keys_group.command("add-operator")
@click.argument("name")
@click.argument("public_key")
@store_option
@master_key_option
def add_operator_cmd(name: str, public_key: str, store: str, master_key: Path) -> None:
    """List operator NAME's PUBLIC_KEY (printed by `bosun keygen --operator NAME`).

    From the first listed key on, the controller plans only with spec revisions signed by a
    listed operator: re-sign the applied spec at once with `bosun spec apply FILE
    --operator-key KEY` (docs/deploy.md#operator-keys)."""
    doc = set_operator(open_store_option(store), load_master_key(master_key), name, public_key)
    click.echo(f"operator {name} listed ({len(doc.operators)} operator keys)")
    if len(doc.operators) == 1:
        click.echo(
            "the controller now refuses unsigned spec revisions: re-apply the spec signed "
            "(`bosun spec apply FILE --operator-key KEY -m 'sign'`) so it keeps planning",
            err=True,
        )


@keys_group.command("remove-operator")
@click.argument("name")
@store_option
@master_key_option
def remove_operator_cmd(name: str, store: str, master_key: Path) -> None:
    """Remove operator NAME's key: revisions signed with it are refused from the next cycle."""
    doc = set_operator(open_store_option(store), load_master_key(master_key), name, None)
    click.echo(f"operator {name} removed ({len(doc.operators)} operator keys left)")
    if not doc.operators:
        click.echo(
            "warning: no operator key is listed any more: the controller accepts unsigned "
            "spec revisions again",
            err=True,
        )


@keys_group.command("adopt")
@store_option
@master_key_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def adopt_cmd(store: str, master_key: Path, yes: bool) -> None:
    """Sign, once, a control/keys.json written unsigned by an older bosun.

    Prints the key epochs it holds (a machine's epoch above 0 is a revocation or rotation),
    then writes the same epochs as a signed control object, if the file did not change."""
    st = open_store_option(store)
    master = load_master_key(master_key)
    seen = read_unsigned(st, master)
    if seen.already_signed:
        click.echo(f"{st.describe('control/keys.json')} is already signed by this master key")
        return
    click.echo(f"{st.describe('control/keys.json')} is unsigned (bosun.keys/1); it holds:")
    for machine, epoch in sorted(seen.doc.epochs.items()):
        click.echo(f"  {machine}: epoch {epoch}")
    if not seen.doc.epochs:
        click.echo("  no epochs (every machine at epoch 0: nothing was ever revoked)")
    if not yes:
        click.confirm("sign these epochs as the controller's control/keys.json?", abort=True)
    version = adopt(st, master, seen)
    click.echo(f"signed: control/keys.json version {version}")
