"""Operator signatures on spec revisions (docs/security.md#operator-signed-specs).

A stored revision (`spec/current.json`, `spec/history/<n>.json`) carries who applied it, the
message given, and an Ed25519 signature by that operator's key:

    {"format": "bosun.spec/1", "revision": 8, "applied_at": ..., "applied_by": "alice",
     "message": "web 1.5", "signature": "<base64url>", "settings": ..., "services": ...}

The signature covers `"bosun.spec/1\\n" + cluster + "\\n" + canonical(document without
"signature")`, where `cluster` is the random id control/keys.json carries, so a revision
signed for one cluster is refused by another that lists the same operator key. The object
key is not bound: a revision's bytes are the same under `spec/current.json` and its history
key, and the revision number inside is checked against the history key and against the
revision the controller already planned with (an older signed revision put back is refused).

Verification parses once and checks the canonical form of that parsed value, then decodes
the same value (wire.signing: what is verified is what is used).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wire.errors import BadSignature, SpecError
from wire.signing import canonical

SIGNED_FORMAT = "bosun.spec/1"
MAX_MESSAGE = 500


class SpecUnverified(SpecError):
    """A stored spec that is unsigned, signed by a key not listed, forged, or replayed."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Signer:
    """An operator's signing key, as `bosun spec apply --operator-key` loads it."""

    name: str  # the name control/keys.json lists its public key under
    seed: bytes = field(repr=False)
    cluster: str  # control/keys.json's cluster id


@dataclass(frozen=True, slots=True)
class SpecTrust:
    """What the controller (or a reading tool) checks a stored revision against: the operator
    public keys of control/keys.json and the cluster id. No operators listed: unsigned
    revisions are accepted (a cluster that has not adopted operator keys yet)."""

    operators: tuple[tuple[str, str], ...] = ()  # (name, public key), sorted
    cluster: str = ""

    @property
    def enforced(self) -> bool:
        return bool(self.operators)


@dataclass(frozen=True, slots=True)
class Provenance:
    """Who applied a revision, the message given, and what the signature says."""

    applied_by: str = ""
    message: str = ""
    signed: bool = False  # a signature is present (checked or not)
    verified_by: str | None = None  # the operator whose listed key verified it

    def describe(self) -> str:
        who = self.applied_by or "unknown"
        if self.verified_by is not None:
            sig = f"signed by {self.verified_by} (verified)"
        elif self.signed:
            sig = "signed (not verified here)"
        else:
            sig = "unsigned"
        return f"applied by {who}, {sig}" + (f": {self.message}" if self.message else "")


def message_bytes(unsigned: dict[str, Any], cluster: str) -> bytes:
    return SIGNED_FORMAT.encode() + b"\n" + cluster.encode() + b"\n" + canonical(unsigned)


def check_message(message: str) -> str:
    if len(message) > MAX_MESSAGE or not message.isprintable():
        raise SpecError(f"--message: at most {MAX_MESSAGE} printable characters on one line")
    return message


def sign_value(value: dict[str, Any], signer: Signer) -> dict[str, Any]:
    """`value` (a stored revision without signature) with its signature added."""
    from wire.pubkeys import ed_sign

    return {**value, "signature": ed_sign(signer.seed, message_bytes(value, signer.cluster))}


def provenance_of(value: dict[str, Any], where: str) -> Provenance:
    """The unverified who/message/signature fields of a parsed revision (popped from it)."""
    by, message, sig = value.pop("applied_by", ""), value.pop("message", ""), value.get("signature")
    for name, field_value in (("applied_by", by), ("message", message)):
        if not isinstance(field_value, str):
            raise SpecError(f"{where}.{name}: expected a string")
    if sig is not None and not isinstance(sig, str):
        raise SpecError(f"{where}.signature: expected a string")
    return Provenance(by, message, signed=sig is not None)


def verify_value(value: dict[str, Any], trust: SpecTrust, where: str) -> str | None:
    """Check the signature of a parsed revision (with its `signature`, `applied_by` and
    `message` still in it) against `trust`; the verifying operator's name, None when trust is
    not enforced and the revision carries no valid signature. SpecUnverified otherwise."""
    sig = value.get("signature")
    unsigned = {k: v for k, v in value.items() if k != "signature"}
    by = value.get("applied_by")
    if sig is None:
        if trust.enforced:
            raise SpecUnverified(
                f"{where} is not signed, and control/keys.json lists operator keys: a spec is "
                "accepted only when signed by one (`bosun spec apply --operator-key FILE`)",
                reason="unsigned",
            )
        return None
    keys = dict(trust.operators)
    if not trust.enforced:
        return None  # no key to check against yet: accepted as unsigned (it says so)
    if not isinstance(by, str) or by not in keys:
        raise SpecUnverified(
            f"{where} says it was signed by {str(by)[:60]!r}, which is not an operator listed "
            f"in control/keys.json (listed: {', '.join(sorted(keys))})",
            reason="unknown_operator",
        )
    from wire.pubkeys import ed_verify

    try:
        ed_verify(keys[by], message_bytes(unsigned, trust.cluster), sig)
    except BadSignature:
        raise SpecUnverified(
            f"{where}: the signature does not verify with {by}'s listed key (changed after "
            "signing, forged, or signed for another cluster)",
            reason="bad_signature",
        ) from None
    return by
