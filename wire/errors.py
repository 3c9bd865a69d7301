"""Bosun's exception tree. Every error a user can cause or meet has a class here.

    BosunError
    ├── StoreError                 anything the bucket said or failed to say
    │   ├── StoreConfigError       bad store URL, missing bucket: fix the configuration
    │   ├── StoreAccessDenied      credentials refused (403)
    │   ├── StoreUnavailable       5xx, SlowDown, throttling, connection errors, timeouts
    │   ├── WriteConflict          a conditional write lost (412 / 409); re-plan, never retry
    │   └── ObjectMissing          a required object does not exist
    ├── InvalidDocument            malformed, wrongly typed or unknown-format document
    │   └── DocumentTooLarge       over the size cap, refused before parsing
    ├── BadSignature               HMAC, kid or binding check failed
    │   └── ControlRefused         a control object unsigned, forged, rolled back or deleted
    ├── Unverified                 a signed document refused, with the agent's reason; mixed
    │                              into UnverifiedTooLarge (a DocumentTooLarge),
    │                              UnverifiedMalformed (an InvalidDocument) and
    │                              UnverifiedSignature (a BadSignature)
    ├── InvalidMachineId           an id outside ^[a-z0-9][a-z0-9._-]{0,62}$
    └── SpecError                  a cluster spec that cannot be applied

Only `StoreUnavailable` is transient and retried (see `wire.retry`).
"""

from __future__ import annotations

from typing import Literal, get_args


class BosunError(Exception):
    """Base class: a known failure whose message is meant for a human."""


class StoreError(BosunError):
    """The bucket could not do what was asked."""


class StoreConfigError(StoreError):
    """The store is configured wrongly (bad URL, missing bucket, bad key)."""


class StoreAccessDenied(StoreError):
    """The credentials were refused."""


class StoreUnavailable(StoreError):
    """A transient failure: worth retrying later."""


class WriteConflict(StoreError):
    """A conditional write failed because the object changed since it was read."""

    def __init__(self, message: str, *, status: int = 412) -> None:
        super().__init__(message)
        self.status = status


class ObjectMissing(StoreError):
    """A required object does not exist."""


class InvalidDocument(BosunError):
    """A document is malformed: the message names the field path and what was expected."""


class DocumentTooLarge(InvalidDocument):
    """A document exceeds the size cap; it was not parsed."""


class BadSignature(BosunError):
    """A signature, key id or key binding did not verify."""


VerifyReason = Literal[
    "too_large", "malformed", "wrong_format", "unknown_kid", "bad_signature", "wrong_machine"
]
"""Why a signed document could not be verified: the agent's refusal counters for these make
up the report's `verify_failures` (docs/security.md#tampering, docs/security.md#binding)."""

VERIFY_REASONS: frozenset[str] = frozenset(get_args(VerifyReason))


class Unverified(BosunError):
    """A signed document refused by the one check in `wire.documents` (`check_desired`, and
    the envelope and signature steps of `open_snapshot`) before anything in it is trusted.

    `reason` is the stable counter name the agent reports; `detail` the text it reports with
    it (the message itself, except for the wrong_format, unknown_kid and wrong_machine texts
    the agent has always reported). Raised as one of the three classes below, so callers
    that catch DocumentTooLarge, InvalidDocument or BadSignature keep catching it."""

    def __init__(self, message: str, *, reason: VerifyReason, detail: str | None = None) -> None:
        super().__init__(message)
        self.reason: VerifyReason = reason
        self.detail = message if detail is None else detail


class UnverifiedTooLarge(Unverified, DocumentTooLarge):
    """Over the size cap (reason too_large)."""


class UnverifiedMalformed(Unverified, InvalidDocument):
    """Envelope or body malformed (reason malformed)."""


class UnverifiedSignature(Unverified, BadSignature):
    """Format, kid, HMAC or binding (reasons wrong_format, unknown_kid, bad_signature,
    wrong_machine)."""


class ControlRefused(BadSignature):
    """A control object (spec, keys, memory, intake, lease) that does not verify, is older
    than a version already seen, or is missing although a version of it was seen
    (docs/security.md#signed-control-objects). `reason`: unsigned, bad_signature,
    malformed, rolled_back, deleted, unknown_operator."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class InvalidMachineId(BosunError, ValueError):
    """A machine id outside the allowed pattern."""


class SpecError(BosunError):
    """A cluster spec that cannot be applied; the message names the path and the fix."""
