"""What an operator's reading tool can verify, and what it says when it cannot.

    status/cluster.json   Ed25519 by the controller key. Verified against the key the operator
                          pinned (`--controller-key` / BOSUN_CONTROLLER_KEY, printed by `bosun
                          keys show`); without a pin, checked against the key control/keys.json
                          lists, which the tool cannot itself verify (a bucket writer could
                          replace both): said so
    control/keys.json     HMAC with the control key (master key only) and an Ed25519
                          attestation by the controller key: verified with a pin
    spec revisions        Ed25519 by an operator listed in an attested control/keys.json
    history/<m>/<seq>     HMAC with machine m's key: verified only with `--master-key`

Nothing here decides anything for the cluster: a reading tool shows what it read and how
far it could check it (docs/security.md#reading-tools).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from controller.shell.key_epochs import KeysDoc, attestation_message
from controller.spec.signature import SpecTrust
from wire.control import MAX_CONTROL_BYTES, open_control
from wire.errors import BadSignature, BosunError
from wire.layout import KEYS, STATUS_CLUSTER
from wire.store import Store, StoredObject

STATUS_FORMAT = "bosun.status/1"


@dataclass(frozen=True, slots=True)
class Verdict:
    """`ok`: True verified against a trusted key, None could not be verified, False a
    signature that does not verify (or a key other than the pinned one)."""

    ok: bool | None
    text: str


@dataclass(frozen=True, slots=True)
class Anchor:
    """The controller key a reading tool checks against, and whether the operator pinned it."""

    key: str | None
    pinned: bool
    keys: KeysDoc | None  # control/keys.json as read (attested when `keys_attested`)
    keys_attested: bool = False


def pinned_key(text: str | None) -> str | None:
    """The pinned controller key as `--controller-key` / BOSUN_CONTROLLER_KEY give it."""
    if not text:
        return None
    from wire.pubkeys import check_public

    return check_public(text.strip(), "BOSUN_CONTROLLER_KEY")


def anchor(store: Store, pinned: str | None) -> Anchor:
    """Read control/keys.json (without the master key) and choose the key to check with."""
    got = store.get(KEYS, max_bytes=MAX_CONTROL_BYTES)
    keys: KeysDoc | None = None
    version = 0
    if isinstance(got, StoredObject):
        try:
            sealed = open_control(got.body, KEYS, None)
            keys, version = KeysDoc.decode(sealed.value), sealed.version
        except BosunError:
            keys = None
    listed = keys.controller.sign if keys is not None and keys.controller is not None else None
    if pinned is None:
        return Anchor(listed, False, keys, False)
    attested = False
    if keys is not None and keys.attestation:
        from wire.pubkeys import ed_verify

        try:
            ed_verify(pinned, attestation_message(keys, version), keys.attestation)
            attested = True
        except BadSignature:
            attested = False
    return Anchor(pinned, True, keys, attested)


def list_trust(a: Anchor) -> SpecTrust | None:
    """The operator keys control/keys.json lists (attested when `a.keys_attested`), to check
    spec revisions with; None when none is listed (revisions are unsigned then)."""
    if a.keys is None or not a.keys.operators:
        return None
    return SpecTrust(tuple(sorted(a.keys.operators.items())), a.keys.cluster)


def check_status(raw: bytes, a: Anchor) -> Verdict:
    """How far status/cluster.json (`raw`) verifies against `a`."""
    from wire.pubkeys import fingerprint, verify_json

    try:
        value: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return Verdict(False, f"{STATUS_CLUSTER} is not valid JSON")
    signature = value.pop("signature", None) if isinstance(value, dict) else None
    if not isinstance(signature, dict):
        return Verdict(None, f"{STATUS_CLUSTER} is NOT signed (written by an older controller?)")
    key, sig = signature.get("key"), signature.get("sig")
    if a.key is None:
        return Verdict(
            None,
            f"{STATUS_CLUSTER} not verified: no controller key pinned and none listed in "
            f"{KEYS} (pin one: `bosun keys show --master-key FILE` prints BOSUN_CONTROLLER_KEY)",
        )
    if key != a.key:
        where = "pinned" if a.pinned else f"listed in {KEYS}"
        return Verdict(False, f"{STATUS_CLUSTER} is signed by another key than the one {where}")
    try:
        verify_json(a.key, STATUS_FORMAT, STATUS_CLUSTER, value, sig)
    except BadSignature:
        return Verdict(False, f"{STATUS_CLUSTER}: the controller's signature does NOT verify")
    if a.pinned:
        return Verdict(
            True, f"{STATUS_CLUSTER} verified (controller key {fingerprint(a.key)}, pinned)"
        )
    return Verdict(
        None,
        f"{STATUS_CLUSTER} signature checks with the controller key listed in {KEYS}, which "
        "this tool cannot verify without a pin (set BOSUN_CONTROLLER_KEY from `bosun keys show`)",
    )
