"""`--operator-key` and `-m/--message` for every command that writes a spec revision.

`spec apply`, `update`, `rollout pause|resume|promote|abort|undo|approve` and `machines
forget` sign the revision they write with the operator's Ed25519 key and record the message
(docs/security.md#operator-signed-specs). Which operator signs is found by the key's public
half in control/keys.json `operators`. Until the first operator key is listed there, a
revision may be written unsigned (the controller accepts it and says so in status); after
that an unsigned one is refused here before anything is written, as the controller would.

Before building on the applied revision, its signature is checked against the listed keys,
so a revision an attacker put in the bucket is not carried over and signed by an operator.
The list itself is trusted as far as `read_trust.anchor` allows: fully when the operator
pinned the controller key (BOSUN_CONTROLLER_KEY), else as listed in the bucket.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from controller.read_trust import Anchor, anchor, pinned_key
from controller.spec.signature import Signer, SpecTrust, check_message
from wire.errors import SpecError
from wire.layout import KEYS
from wire.store import Store

F = TypeVar("F", bound=Callable[..., Any])


def operator_options(fn: F) -> F:
    fn = click.option(
        "-m",
        "--message",
        default="",
        help="Why: recorded with the revision (spec show, spec history, status).",
    )(fn)
    return click.option(
        "--operator-key",
        envvar="BOSUN_OPERATOR_KEY",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Your operator signing key (`bosun keygen --operator NAME`; BOSUN_OPERATOR_KEY). "
        "Required once control/keys.json lists an operator key.",
    )(fn)


def controller_key_option(fn: F) -> F:
    return click.option(
        "--controller-key",
        envvar="BOSUN_CONTROLLER_KEY",
        default=None,
        metavar="PUBLIC_KEY",
        help="The controller's public key to verify what it signed (`bosun keys show` prints "
        "it; BOSUN_CONTROLLER_KEY). Without it, checks use the key the bucket lists and say so.",
    )(fn)


@dataclass(frozen=True, slots=True)
class Signing:
    """How this command signs, and what it checks the applied revision against."""

    signer: Signer | None
    trust: SpecTrust | None  # None: no operator key listed (nothing to check against)
    anchor: Anchor
    applied_by: str  # recorded for an unsigned revision (the login name)
    message: str

    def describe(self) -> str:
        if self.signer is not None:
            return f"signed by operator {self.signer.name}"
        return "UNSIGNED (no operator key is listed in control/keys.json yet)"


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


def signing_for(store: Store, key_file: Path | None, message: str) -> Signing:
    """The signer for a revision of `store`'s spec; SpecError (nothing written) when the
    cluster requires a signature and none can be made."""
    check_message(message)
    a = anchor(store, pinned_key(os.environ.get("BOSUN_CONTROLLER_KEY")))
    keys = a.keys
    operators = dict(keys.operators) if keys is not None else {}
    if a.pinned and keys is not None and not a.keys_attested:
        raise SpecError(
            f"{store.describe(KEYS)} is not attested by the pinned controller key "
            "(BOSUN_CONTROLLER_KEY): it was replaced, or the pin is for another cluster; "
            "nothing written"
        )
    trust = (
        SpecTrust(tuple(sorted(operators.items())), keys.cluster) if operators and keys else None
    )
    if key_file is None:
        if operators:
            raise SpecError(
                f"{store.describe(KEYS)} lists operator keys ({', '.join(sorted(operators))}): "
                "a spec revision must be signed; give --operator-key FILE (or "
                "BOSUN_OPERATOR_KEY); nothing written"
            )
        return Signing(None, None, a, _login(), message)
    from wire.pubkeys import printable, public_of, read_operator_key

    seed = read_operator_key(key_file)
    public = public_of(seed)
    names = [n for n, k in operators.items() if k == public]
    if not names or keys is None:
        raise SpecError(
            f"{key_file}: its public key {printable(public)} is not listed in "
            f"{store.describe(KEYS)}; list it with `bosun keys add-operator NAME {printable(public)} "
            "--master-key FILE`; nothing written"
        )
    return Signing(Signer(names[0], seed, keys.cluster), trust, a, names[0], message)


def apply_kwargs(signing: Signing) -> dict[str, Any]:
    """Keyword arguments of `controller.spec.revisions.apply` for this signing."""
    return {
        "signer": signing.signer,
        "applied_by": signing.applied_by,
        "message": signing.message,
    }


def sealer(signing: Signing, store: Store) -> Callable[[bytes], str]:
    """Seal a secret for the controller: only to the key the pinned controller key attests
    (a key merely read from the bucket could be an attacker's); SpecError otherwise."""
    a = signing.anchor
    keys = a.keys
    if not a.pinned or not a.keys_attested or keys is None or keys.controller is None:
        raise SpecError(
            "the spec holds secret values; they are sealed to the controller's key, which "
            "must be pinned: set BOSUN_CONTROLLER_KEY to what `bosun keys show --master-key "
            f"FILE` prints (and {store.describe(KEYS)} must carry the controller's keys: any "
            "`bosun keys ...` command with the master key writes them); nothing written"
        )
    seal_public = keys.controller.seal
    from controller.spec.secrets import SPEC_SECRET_AAD
    from wire.pubkeys import seal_for_controller

    return lambda value: seal_for_controller(seal_public, value, SPEC_SECRET_AAD)
