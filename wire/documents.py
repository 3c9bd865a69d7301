"""Snapshot and desired-state documents: typed, frozen, strictly decoded, signed.

Every document is an envelope `{"format", "kid", "sig", "body"}` (see ARCHITECTURE.md).
Times are `Timestamp` fields: float Unix seconds in memory, ISO 8601 UTC on the wire
(numbers from older peers are read too; wire.times). Decoding happens once, here:

    raw bytes --(size cap, one orjson parse)--> Envelope --(verify canonical(body))-->
    typed body (Snapshot / Desired) built from that same parsed value

`open_snapshot` / `open_desired` do all three steps for the controller; `check_desired` is
the one verification of a desired document, which the agent runs too (`agent.verify`). Each
failure is a `wire.errors.Unverified` carrying the reason the agent reports.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import field
from typing import Any, Literal, TypeVar

import orjson

from wire import codec
from wire.codec import JsonValue, Timestamp
from wire.errors import (
    BadSignature,
    DocumentTooLarge,
    InvalidDocument,
    UnverifiedMalformed,
    UnverifiedSignature,
    UnverifiedTooLarge,
)
from wire.frozen import quick_init
from wire.layout import DESIRED, REPORTS, machine_from_key, machine_id
from wire.records import record
from wire.signing import parse_kid, sign, verify
from wire.times import TimeForm

MAX_DOCUMENT_BYTES = 256 * 1024

SNAPSHOT_FORMAT = "bosun.snapshot/1"
DESIRED_FORMAT = "bosun.desired/1"
FORMATS = (SNAPSHOT_FORMAT, DESIRED_FORMAT)

# warm: a standby whose process keeps running, out of every balancer (a rollout's previous
# machines): going back to it is a mode change, with no start
Mode = Literal["active", "canary", "shadow", "standby", "warm", "draining", "deactivated"]
MODES: tuple[str, ...] = (
    "active", "canary", "shadow", "standby", "warm", "draining", "deactivated",
)  # fmt: skip
Health = Literal["healthy", "unhealthy", "unknown"]
AgentStatus = Literal["starting", "running", "stopping"]
ApplyResult = Literal["none", "ok", "failed"]

T = TypeVar("T")


# ---- snapshot (agent -> controller) -------------------------------------------------------


@record
class Addresses:
    """A machine's internal and external addresses ("" when it has none)."""

    internal: str = ""
    external: str = ""


@record
class BackendState:
    """What a load balancer observes of one backend in its peers (docs/security.md#fail-static
    bounds what the controller does with it: nothing while a service is held)."""

    failing_since: Timestamp | None = None  # the balancer's clock; None: reachable


@record
class ServiceState:
    """What the agent observes of one local service."""

    version: str | None = None
    state: str = "unknown"  # running, stopped, failed, unknown
    health: Health = "unknown"
    port: int | None = None
    requests: int = 0  # cumulative
    errors: int = 0  # cumulative
    latency_ms: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    # a load balancer: the backends of its peers it fails to reach (machine -> state); at
    # most the peers it was given, left out of the body while empty (older controllers)
    backends: dict[str, BackendState] = field(default_factory=dict, metadata=codec.OMIT_EMPTY)


@record
class Applied:
    """The desired document the agent runs now, and how applying the last one went."""

    generation: int = 0
    fence: int = 0
    digest: str = ""
    result: ApplyResult = "none"
    error: str | None = None
    at: Timestamp | None = None


@record
class Refusal:
    """The last desired document the agent refused: why, what was wrong, and when."""

    reason: str
    detail: str
    at: Timestamp


@record
class Snapshot:
    """A machine's state report (`reports/<machine>.json`), signed by its agent."""

    machine: str
    seq: int
    sent_at: Timestamp
    boot_id: str
    agent_version: str
    addresses: Addresses = field(default_factory=Addresses)
    eligible: tuple[str, ...] = ()
    status: AgentStatus = "running"
    capacity: dict[str, float] = field(default_factory=dict)
    load: dict[str, float] = field(default_factory=dict)
    sessions: dict[str, int] = field(default_factory=dict)
    services: dict[str, ServiceState] = field(default_factory=dict)
    applied: Applied = field(default_factory=Applied)
    desired_stale: bool = False
    refusals: dict[str, int] = field(default_factory=dict)  # reason -> count since start
    last_refusal: Refusal | None = None
    # desired documents that failed verification (signature, kid, binding, format, size)
    # since start: the refusals above whose reason says the document could not be trusted
    verify_failures: int = 0
    # the agent's heartbeat: an unchanged snapshot comes at least this often, so the
    # controller waits at least twice this before calling the machine lost (0: unknown)
    heartbeat_interval: float = 0.0


# ---- desired state (controller -> agent) --------------------------------------------------


@quick_init
@record
class Peer:
    """One backend (or mirror) of a load balancer, as a desired document names it."""

    machine: str
    address: str
    port: int | None = None
    weight: int = 100
    mode: str = "active"


@record
class Peers:
    """For a load balancer: live backends (weighted), shadow targets (mirrored only) and
    backends taken out of rotation because the balancers report them unreachable
    (`evicted`: health-checked, never sent traffic; left out of the body while empty, so
    agents that predate it still decode every document that does not use it)."""

    service: str | None = None
    backends: tuple[Peer, ...] = ()
    mirror: tuple[Peer, ...] = ()
    evicted: tuple[Peer, ...] = field(default=(), metadata=codec.OMIT_EMPTY)


@record
class Drain:
    """A machine being drained: why, since when, and until when at the latest."""

    reason: str
    since: Timestamp
    deadline: Timestamp


@quick_init
@record
class Desired:
    """A machine's desired state (`desired/<machine>.json`), signed by the controller."""

    machine: str
    generation: int
    fence: int
    issued_at: Timestamp
    expires_at: Timestamp
    spec_revision: int
    mode: Mode
    service: str | None = None
    version: str | None = None
    config: JsonValue = field(default_factory=dict)
    peers: Peers = field(default_factory=Peers)
    drain: Drain | None = None


# ---- envelope -----------------------------------------------------------------------------


@record
class Envelope:
    """A signed document as stored: format tag, key id, signature and the signed body."""

    format: str
    kid: str
    sig: str
    body: dict[str, Any]


def parse_envelope(raw: bytes, *, where: str = "document") -> Envelope:
    """Size cap, one parse, envelope shape. The body is returned as parsed (not yet typed)."""
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise DocumentTooLarge(
            f"{where}: {len(raw)} bytes is over the {MAX_DOCUMENT_BYTES}-byte cap"
        )
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidDocument(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise InvalidDocument(f"{where}: expected a JSON object, got {codec._got(value)}")
    unknown = sorted(set(value) - {"format", "kid", "sig", "body"})
    if unknown:
        raise InvalidDocument(f"{where}: unknown envelope field {unknown[0]!r}")
    fmt = value.get("format")
    if fmt not in FORMATS:
        raise InvalidDocument(
            f"{where}.format: expected one of {', '.join(FORMATS)}, got {str(fmt)[:80]!r}"
        )
    for name in ("kid", "sig"):
        if not isinstance(value.get(name), str):
            raise InvalidDocument(
                f"{where}.{name}: expected string, got {codec._got(value.get(name))}"
            )
    body = value.get("body")
    if not isinstance(body, dict):
        raise InvalidDocument(f"{where}.body: expected object, got {codec._got(body)}")
    _check_depth(body, f"{where}.body")
    return Envelope(format=fmt, kid=value["kid"], sig=value["sig"], body=body)


def _check_depth(body: dict[str, Any], where: str) -> None:
    """Refuse a body nested deeper than the codec decodes, before it is canonicalised for
    the signature check (orjson gives up at 255 levels with a message naming nothing)."""
    level: list[Any] = [body]
    for _ in range(codec.MAX_DEPTH + 1):
        level = [
            v
            for node in level
            for v in (node.values() if isinstance(node, dict) else node)
            if isinstance(v, (dict, list))
        ]
        if not level:
            return
    raise InvalidDocument(f"{where}: nested deeper than {codec.MAX_DEPTH} levels")


def decode_snapshot_body(body: dict[str, Any], *, where: str = "snapshot") -> Snapshot:
    snap: Snapshot = codec.decode(Snapshot, body, f"{where}.body")
    _check_machine(snap.machine, f"{where}.body.machine")
    for i, name in enumerate(snap.eligible):
        _check_machine(name, f"{where}.body.eligible[{i}]")
    for name, state in snap.services.items():
        _check_machine(name, f"{where}.body.services.{name}")
        for backend in state.backends:
            _check_machine(backend, f"{where}.body.services.{name}.backends.{backend}")
    return snap


def decode_desired_body(body: dict[str, Any], *, where: str = "desired") -> Desired:
    """Typed desired body. Ids inside it (service, peers) follow the id pattern too: a
    document no spec can produce is malformed even when it is signed (defence in depth)."""
    doc: Desired = codec.decode(Desired, body, f"{where}.body")
    _check_machine(doc.machine, f"{where}.body.machine")
    for path, name in (("service", doc.service), ("peers.service", doc.peers.service)):
        if name is not None:
            _check_machine(name, f"{where}.body.{path}")
    for group in ("backends", "mirror", "evicted"):
        for i, peer in enumerate(getattr(doc.peers, group)):
            _check_machine(peer.machine, f"{where}.body.peers.{group}[{i}].machine")
    return doc


def _check_machine(value: str, path: str) -> None:
    try:
        machine_id(value)
    except ValueError as exc:
        raise InvalidDocument(f"{path}: {exc}") from None


def encode_body(doc: Snapshot | Desired, *, times: TimeForm = "iso") -> dict[str, Any]:
    body: dict[str, Any] = codec.encode(doc, times=times)
    return body


def seal(
    doc: Snapshot | Desired, *, key: bytes, kid: str, object_key: str, times: TimeForm = "iso"
) -> bytes:
    """Sign `doc` for `object_key` and return the pretty JSON envelope bytes. `times`:
    "epoch" for a peer that predates ISO times (wire.times)."""
    fmt = SNAPSHOT_FORMAT if isinstance(doc, Snapshot) else DESIRED_FORMAT
    body = encode_body(doc, times=times)
    envelope = {"format": fmt, "kid": kid, "sig": sign(key, fmt, object_key, body), "body": body}
    return orjson.dumps(envelope, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


KeyLookup = Callable[[str], bytes | None]
"""Given a kid, the key to verify with, or None when the kid is unknown (never guess)."""


@record
class OneKey:
    """The key lookup that knows exactly one kid: the agent's, which refuses any other kid
    without trying other keys (docs/security.md#key-rotation). Refusals name the kid it
    expected; the key itself never appears in a repr or a message."""

    kid: str
    key: bytes = field(repr=False)

    def __call__(self, kid: str) -> bytes | None:
        return self.key if kid == self.kid else None


def _open(raw: bytes, object_key: str, fmt: str, keys: KeyLookup) -> Envelope:
    """Size cap and envelope, format, kid, then the HMAC over format + object key + canonical
    body (docs/security.md#tampering). Each failure is an `Unverified` error."""
    try:
        env = parse_envelope(raw, where=object_key)
    except DocumentTooLarge as exc:
        raise UnverifiedTooLarge(str(exc), reason="too_large") from None
    except InvalidDocument as exc:
        raise UnverifiedMalformed(str(exc), reason="malformed") from None
    if env.format != fmt:
        raise UnverifiedSignature(
            f"{object_key}: holds a {env.format} document, expected {fmt}",
            reason="wrong_format",
            detail=f"{object_key} holds a {env.format} document",
        )
    key = keys(env.kid)
    if key is None:
        expected = f", expected {keys.kid!r}" if isinstance(keys, OneKey) else ""
        raise UnverifiedSignature(
            f"{object_key}: unknown kid {env.kid[:80]!r}",
            reason="unknown_kid",
            detail=f"{object_key} is signed with kid {env.kid[:80]!r}{expected}",
        )
    try:
        verify(key, env.format, object_key, env.body, env.sig)
    except BadSignature as exc:
        raise UnverifiedSignature(str(exc), reason="bad_signature") from None
    return env


def check_desired(
    raw: bytes, object_key: str, *, machine: str, keys: KeyLookup
) -> tuple[Envelope, Desired]:
    """The one verification of a desired document, for both ends: the agent before it
    applies anything (`agent.verify`, with `OneKey`) and the controller reading documents
    back (`open_desired`, with its key ring).

    Size cap, envelope, format, kid and HMAC (docs/security.md#tampering), the typed body
    (strict, ids checked), and the body names `machine` (docs/security.md#binding). Raises
    `Unverified` (as UnverifiedTooLarge, UnverifiedMalformed or UnverifiedSignature) whose
    `reason` and `detail` are what the agent reports. Replay marks and expiry are the
    agent's own checks (docs/security.md#rollback, docs/security.md#freeze)."""
    env = _open(raw, object_key, DESIRED_FORMAT, keys)
    try:
        doc = decode_desired_body(env.body, where=object_key)
    except InvalidDocument as exc:
        raise UnverifiedMalformed(str(exc), reason="malformed") from None
    if doc.machine != machine:
        raise UnverifiedSignature(
            f"{object_key}: document is for machine {doc.machine!r}, not {machine!r}",
            reason="wrong_machine",
            detail=f"{object_key} is for machine {doc.machine!r}, not {machine!r}",
        )
    return env, doc


def _owner(object_key: str, folder: str) -> str:
    try:
        return machine_from_key(object_key, folder)
    except ValueError as exc:
        raise BadSignature(f"{object_key}: not a {folder}<machine>.json key ({exc})") from None


def open_snapshot(raw: bytes, object_key: str, keys: KeyLookup) -> tuple[Envelope, Snapshot]:
    """Verify and decode `reports/<m>.json`: the object key, kid and body must name one machine."""
    owner = _owner(object_key, REPORTS)
    env = _open(raw, object_key, SNAPSHOT_FORMAT, keys)
    kid_machine, _epoch = parse_kid(env.kid)
    snap = decode_snapshot_body(env.body, where=object_key)
    if kid_machine != owner or snap.machine != owner:
        raise BadSignature(
            f"{object_key}: names machine {snap.machine!r} with kid {env.kid!r}; "
            f"only {owner!r} may write here"
        )
    return env, snap


def open_desired(raw: bytes, object_key: str, keys: KeyLookup) -> tuple[Envelope, Desired]:
    """Verify and decode `desired/<m>.json` (`check_desired`); the body must name the key's
    machine."""
    owner = _owner(object_key, DESIRED)
    return check_desired(raw, object_key, machine=owner, keys=keys)


def dumps_pretty(value: Any) -> bytes:
    """Pretty, sorted JSON for operator-readable objects (status, memory, spec)."""
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def loads_object(
    raw: bytes, *, where: str, max_bytes: int = 64 * MAX_DOCUMENT_BYTES
) -> dict[str, Any]:
    """Parse an unsigned JSON object written by Bosun itself (status, memory, spec, lease)."""
    if len(raw) > max_bytes:
        raise InvalidDocument(f"{where}: {len(raw)} bytes is over the {max_bytes}-byte cap")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidDocument(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise InvalidDocument(f"{where}: expected a JSON object, got {codec._got(value)}")
    return value
