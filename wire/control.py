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

Two spellings of the same envelope (docs/security.md#fleet-sized-objects):

* pretty (indented, sorted keys) while it stays within MAX_PRETTY_CONTROL_BYTES, 16 MiB,
  the cap of every bosun before the compact one: parsed, then verified;
* compact past that (`intake.json` and `memory.json` of fleets past ~15,000 machines):
  exactly `orjson.dumps(envelope, OPT_SORT_KEYS)`, so the bytes between `{"body":` and
  `,"format":` ARE the canonical body the signature covers. The HMAC is checked over those
  bytes before anything is parsed, so a forged object of any size up to
  MAX_CONTROL_BYTES costs one pass of SHA-256 and is never parsed; the value used is what
  those verified bytes parse to (canonical JSON is a fixed point of parse-then-serialize).
"""

from __future__ import annotations

import re
from dataclasses import field
from typing import Any

import orjson

from wire.documents import dumps_pretty
from wire.errors import BadSignature, ControlRefused, InvalidDocument
from wire.records import record
from wire.signing import canonical, sign_canonical, verify, verify_canonical

CONTROL_FORMAT = "bosun.control/1"
CONTROL_KID = "controller"
MAX_PRETTY_CONTROL_BYTES = 16 * 1024 * 1024
"""Cap of a pretty control object, which is parsed before it is verified."""
MAX_CONTROL_BYTES = 512 * 1024 * 1024
"""Cap of a compact control object (verified before it is parsed), and of every read of a
control object: ~1,300,000 machines' intake or memory in one object (~390 bytes a machine,
compact, measured at 100,000)."""

_HEAD = b'{"body":'
_TAIL_START = b',"format":"' + CONTROL_FORMAT.encode() + b'","kid":"' + CONTROL_KID.encode()
_TAIL = re.compile(re.escape(_TAIL_START) + rb'","sig":"([A-Za-z0-9_-]{43})"\}\n?')


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
    """The signed envelope of `value` at `version` for `object_key`: pretty JSON within
    MAX_PRETTY_CONTROL_BYTES, compact past it."""
    body = {"version": version, "marks": dict(sorted(marks.items())), "value": value}
    canon = canonical(body)
    sig = sign_canonical(key, CONTROL_FORMAT, object_key, canon)
    if 2 * len(canon) <= MAX_PRETTY_CONTROL_BYTES:  # indenting at most doubles it, as written
        env = {"format": CONTROL_FORMAT, "kid": CONTROL_KID, "sig": sig, "body": body}
        pretty = dumps_pretty(env)
        if len(pretty) <= MAX_PRETTY_CONTROL_BYTES:
            return pretty
    return _HEAD + canon + _TAIL_START + b'","sig":"' + sig.encode() + b'"}\n'


def open_control(raw: bytes, object_key: str, key: bytes | None) -> Sealed:
    """Verify and unwrap a control object. `key=None` parses without verifying (reading
    tools without the master key say so); ControlRefused (reason `unsigned`,
    `bad_signature`, `malformed`, `too_large`) otherwise."""
    if raw.startswith(_HEAD):
        return _open_compact(raw, object_key, key)
    if len(raw) > MAX_PRETTY_CONTROL_BYTES:
        raise ControlRefused(
            f"{object_key}: {len(raw)} bytes is over the {MAX_PRETTY_CONTROL_BYTES}-byte cap "
            "of a pretty control object (larger ones are written compact)",
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
            verify(key, CONTROL_FORMAT, object_key, body, env.get("sig"))
        except (BadSignature, InvalidDocument) as exc:
            raise ControlRefused(
                f"{object_key}: {exc} (not signed by this controller's master key)",
                reason="bad_signature",
            ) from None
    return _unwrap(body, object_key, verified=key is not None)


def _open_compact(raw: bytes, object_key: str, key: bytes | None) -> Sealed:
    """The compact spelling: the signature is checked over the body's bytes as stored,
    before they are parsed (docs/security.md#fleet-sized-objects)."""
    if len(raw) > MAX_CONTROL_BYTES:
        raise ControlRefused(
            f"{object_key}: {len(raw)} bytes is over the {MAX_CONTROL_BYTES}-byte cap",
            reason="too_large",
        )
    end = raw.rfind(_TAIL_START)
    tail = _TAIL.fullmatch(raw, end) if end > len(_HEAD) else None
    if tail is None:
        raise ControlRefused(
            f"{object_key}: a compact control envelope must end with its format, kid and "
            "signature, as the controller writes it",
            reason="malformed",
        )
    canon = memoryview(raw)[len(_HEAD) : end]
    if key is not None:
        try:
            verify_canonical(key, CONTROL_FORMAT, object_key, canon, tail.group(1).decode())
        except BadSignature as exc:
            raise ControlRefused(
                f"{object_key}: {exc} (not signed by this controller's master key)",
                reason="bad_signature",
            ) from None
    try:
        body = orjson.loads(canon)
    except orjson.JSONDecodeError as exc:
        raise ControlRefused(f"{object_key}: not valid JSON ({exc})", reason="malformed") from None
    if not isinstance(body, dict):
        raise ControlRefused(f"{object_key}: malformed control envelope", reason="malformed")
    return _unwrap(body, object_key, verified=key is not None)


def _unwrap(body: dict[str, Any], object_key: str, *, verified: bool) -> Sealed:
    """The body's parts (the value is decoded by its reader, with codec.MAX_FLEET_ITEMS)."""
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
    return Sealed(version, value, dict(marks), verified=verified)


def unwrap_unverified(value: dict[str, Any]) -> Any:
    """The `value` inside a control envelope, NOT verified (for readers that only display
    it); anything that is not an envelope is returned as it is."""
    body = value.get("body")
    if value.get("format") == CONTROL_FORMAT and isinstance(body, dict) and "value" in body:
        return body["value"]
    return value
