"""Verify a fetched desired document before anything is applied (docs/security.md#agent-desired-documents).

The envelope, signature, binding and decode checks are the controller's too:
`wire.documents.check_desired` (one parse, size cap first; format; kid, only the configured
one, an unknown kid refused without trying other keys; HMAC over format + object key +
canonical body; the body names this machine). This module adds the agent's replay checks:
the high-water marks of this kid (fence first, then generation, then same generation with
another digest), and expiry against the time taken at cycle start. Every refusal has a
short stable reason for the report's counters.
"""

from __future__ import annotations

from collections.abc import Mapping

from agent.state import Mark
from wire.documents import Desired, OneKey, check_desired
from wire.errors import VERIFY_REASONS as VERIFY_REASONS
from wire.errors import Unverified
from wire.records import record
from wire.secret_box import has_secrets
from wire.signing import digest

SECRET_REFUSED = "secret_refused"  # verified, but a secret in it is not for this machine


class Refused(Exception):
    """A desired document that must not be applied; `reason` is a stable counter name."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@record
class Verified:
    """A desired document that passed every check, with its digest."""

    doc: Desired
    digest: str
    same: bool  # same generation and digest as the high-water mark: a quiet no-op


# VERIFY_REASONS (from wire.errors, the reasons `check_desired` raises): refusal reasons
# meaning "this document could not be verified" (the report's verify_failures); the others
# (rollback, stale_fence, expired...) verified but are refused


def verify_failures(refusals: Mapping[str, int]) -> int:
    """How many of the counted refusals were documents that could not be verified."""
    return sum(
        n for reason, n in refusals.items() if reason in VERIFY_REASONS or reason == SECRET_REFUSED
    )


def verify_desired(
    raw: bytes, *, object_key: str, machine: str, kid: str, key: bytes, mark: Mark | None
) -> Verified:
    """Signature, binding and replay checks; expiry is checked separately (`check_expiry`)."""
    try:
        env, doc = check_desired(raw, object_key, machine=machine, keys=OneKey(kid, key))
    except Unverified as exc:
        raise Refused(exc.reason, exc.detail) from None
    body_digest = digest(env.body)
    mark = mark or Mark()
    if doc.fence < mark.fence:
        raise Refused(
            "stale_fence",
            f"fence {doc.fence} is below the highest applied {mark.fence} (a stale controller)",
        )
    if doc.generation < mark.generation:
        raise Refused(
            "rollback",
            f"generation {doc.generation} is below the highest applied {mark.generation}",
        )
    same = doc.generation == mark.generation and mark.generation > 0
    if same and body_digest != mark.digest:
        raise Refused(
            "generation_conflict",
            f"generation {doc.generation} was already applied with another content "
            f"(digest {mark.digest[:12]} vs {body_digest[:12]})",
        )
    if not same and has_secrets(doc.config):
        check_secrets(doc, key=key, object_key=object_key)
    return Verified(doc, body_digest, same)


def check_secrets(doc: Desired, *, key: bytes, object_key: str) -> None:
    """Every secret value must decrypt for this machine, object key and generation
    (docs/security.md#secrets): one copied from another machine's document is refused before
    anything is applied. The values are dropped here; agent.secret_files hands them over."""
    from wire.secret_box import SecretRefused, decrypt_for_machine, find_secrets

    try:
        for path, token in find_secrets(doc.config):
            decrypt_for_machine(key, doc.machine, object_key, doc.generation, path, token)
    except SecretRefused as exc:
        raise Refused(SECRET_REFUSED, str(exc)) from None


def check_expiry(doc: Desired, now: float) -> str | None:
    """A reason text when the document has expired at `now` (the cycle start), else None."""
    if doc.expires_at <= now:
        return f"generation {doc.generation} expired {now - doc.expires_at:.0f}s ago"
    return None
