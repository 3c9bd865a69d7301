"""Signed control objects: what the controller keeps in the bucket for itself.

`control/keys.json`, `control/memory.json`, `control/intake.json` (and the lease, which
carries its own token) are envelopes signed with the controller's *control key*, derived
from the master key (`wire.signing.derive_control_key`):

    {"format": "bosun.control/1", "kid": "controller", "sig": "<base64url>",
     "body": {"version": 7, "marks": {"control/keys.json": 3}, "value": {...}}}

The signature is the usual HMAC over format + object key + canonical(body), so an object
cannot be replayed under another key. `version` only grows: every save writes the version
read plus one, and a reader that has seen version n refuses anything below it
(docs/security.md#signed-control-objects). `marks` are the versions of the *other* control
objects the writer had verified when it saved this one: a cross-reference that lets a
controller without local state see that an object it never read was deleted or rolled back.
"""

from __future__ import annotations

from dataclasses import field
from typing import Any

import orjson

from wire import codec
from wire.documents import dumps_pretty
from wire.errors import BadSignature, ControlRefused, InvalidDocument
from wire.records import record
from wire.signing import sign, verify

CONTROL_FORMAT = "bosun.control/1"
CONTROL_KID = "controller"
MAX_CONTROL_BYTES = 16 * 1024 * 1024


@record
class Sealed:
    """A verified (or, for `key=None`, merely parsed) control object."""

    version: int
    value: dict[str, Any]
    marks: dict[str, int] = field(default_factory=dict)
    verified: bool = True


def seal_control(
    key: bytes, object_key: str, value: dict[str, Any], *, version: int, marks: dict[str, int]
) -> bytes:
    """The signed envelope of `value` at `version` for `object_key`, as pretty JSON."""
    body = {"version": version, "marks": dict(sorted(marks.items())), "value": value}
    sig = sign(key, CONTROL_FORMAT, object_key, body)
    return dumps_pretty({"format": CONTROL_FORMAT, "kid": CONTROL_KID, "sig": sig, "body": body})


def open_control(raw: bytes, object_key: str, key: bytes | None) -> Sealed:
    """Verify and unwrap a control object. `key=None` parses without verifying (reading
    tools without the master key say so); ControlRefused (reason `unsigned`,
    `bad_signature`, `malformed`, `too_large`) otherwise."""
    if len(raw) > MAX_CONTROL_BYTES:
        raise ControlRefused(
            f"{object_key}: {len(raw)} bytes is over the {MAX_CONTROL_BYTES}-byte cap",
            reason="too_large",
        )
    try:
        env = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ControlRefused(f"{object_key}: not valid JSON ({exc})", reason="malformed") from None
    if not isinstance(env, dict) or env.get("format") != CONTROL_FORMAT:
        raise ControlRefused(
            f"{object_key}: not a signed {CONTROL_FORMAT} envelope (an unsigned or "
            "hand-written object)",
            reason="unsigned",
        )
    body = env.get("body")
    if set(env) != {"format", "kid", "sig", "body"} or not isinstance(body, dict):
        raise ControlRefused(f"{object_key}: malformed control envelope", reason="malformed")
    if key is not None:
        try:
            codec.check_json(body, f"{object_key}.body")
            verify(key, CONTROL_FORMAT, object_key, body, env.get("sig"))
        except (BadSignature, InvalidDocument) as exc:
            raise ControlRefused(
                f"{object_key}: {exc} (not signed by this controller's master key)",
                reason="bad_signature",
            ) from None
    version, marks, value = body.get("version"), body.get("marks"), body.get("value")
    if (
        set(body) != {"version", "marks", "value"}
        or not isinstance(version, int)
        or isinstance(version, bool)
        or version < 1
        or not isinstance(value, dict)
        or not isinstance(marks, dict)
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in marks.values())
    ):
        raise ControlRefused(f"{object_key}: malformed control body", reason="malformed")
    return Sealed(version, value, dict(marks), verified=key is not None)


def unwrap_unverified(value: dict[str, Any]) -> Any:
    """The `value` inside a control envelope, NOT verified (for readers that only display
    it); anything that is not an envelope is returned as it is."""
    body = value.get("body")
    if value.get("format") == CONTROL_FORMAT and isinstance(body, dict) and "value" in body:
        return body["value"]
    return value
