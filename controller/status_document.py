"""`status/cluster.json` as one typed value: the planner's `Status` plus the shell's sections.

    {"format": "bosun.status/1", "at", "spec_revision", "fence", "services", "machines",
     "rejections", "rollouts", "holds",                          <- the planner's Status
     "controller":      {"holder", "token", "cycle"},
     "rejected":        {machine: {"counts": {reason: n}, "last": {reason, detail, at}}},
     "agent_refusals":  {machine: {"counts", "verify_failures", "last", "desired_stale"}},
     "foreign_reports": [report keys that name no machine],
     "seen":            {machine: {"seq", "sent_at", "accepted_at", "heartbeat_interval",
                                   "addresses", "agent_version"}},
     "spec_refused":    {"detail", "etag", "planning_with", "reason", "count"} or null,
     "control_refused": {object key: {"count", "reason", "detail", "at", "active"}},
     "spec_signature":  {"revision", "applied_by", "message", "verified_by", "enforced"},
     "signature":       {"key", "sig"}}   the controller's Ed25519 signature of the rest

`signature` is added and checked outside this type (controller.operations.status_signature).

The planner's fields stay at the top level (what `aws s3 cp .../status/cluster.json -`
readers have always seen); `encode` and `decode` flatten and split them. Decoding is
strict (wire.codec): an unknown or mistyped field is an InvalidDocument naming its path.

The controller's shell writes it (controller.shell.records) and operator views read it
(controller.operations.views). Those two rooms may not import each other, so the type
lives here, above the planner and below both; it imports only the planner's model and
wire.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Any

from controller.planner.model import STATUS_FORMAT, Status
from wire import codec
from wire.codec import Timestamp
from wire.documents import Addresses, Refusal, dumps_pretty, loads_object
from wire.errors import InvalidDocument

MAX_STATUS_BYTES = 256 * 1024 * 1024
"""What a reading tool reads of status/cluster.json: ~5x the document of 100,000 machines
(docs/security.md#fleet-sized-objects)."""


@dataclass(frozen=True, slots=True)
class ControllerInfo:
    """The lease holder that wrote the document, its fencing token and cycle number."""

    holder: str
    token: int
    cycle: int


@dataclass(frozen=True, slots=True)
class Rejected:
    """Snapshots of one machine the controller refused, counted since it first saw one."""

    counts: dict[str, int]
    last: Refusal | None = None


@dataclass(frozen=True, slots=True)
class AgentRefusals:
    """What one agent says it refused of the desired documents it pulled."""

    counts: dict[str, int]
    verify_failures: int = 0
    last: Refusal | None = None
    desired_stale: bool = False


@dataclass(frozen=True, slots=True)
class Seen:
    """A machine's last accepted report, in controller time (`accepted_at`)."""

    seq: int
    sent_at: Timestamp
    accepted_at: Timestamp
    heartbeat_interval: float = 0.0  # the agent's heartbeat; 0: unknown (or an older writer)
    addresses: Addresses = field(default_factory=Addresses)
    agent_version: str = ""


@dataclass(frozen=True, slots=True)
class SpecRefused:
    """spec/current.json could not be used (controller.shell.control_objects.SpecRefusal)."""

    detail: str
    etag: str | None
    planning_with: int | None
    reason: str = "invalid"  # unsigned, unknown_operator, bad_signature, replayed, invalid
    count: int = 1  # refusals counted, once per refused object version


@dataclass(frozen=True, slots=True)
class SpecSignature:
    """Who applied the revision the controller plans with, and what its signature says
    (docs/security.md#operator-signed-specs). `enforced` false: no operator key is listed
    in control/keys.json yet, and unsigned specs are accepted."""

    revision: int
    applied_by: str = ""
    message: str = ""
    verified_by: str | None = None
    enforced: bool = False


@dataclass(frozen=True, slots=True)
class ControlRefusal:
    """A control object the controller refused (docs/security.md#signed-control-objects):
    how often (once per distinct object version), why the last time, and whether it is
    still refused (`active`; the controller keeps its last good copy meanwhile)."""

    count: int
    reason: str
    detail: str
    at: Timestamp
    active: bool = True


@dataclass(frozen=True, slots=True)
class ClusterStatus:
    status: Status
    controller: ControllerInfo
    rejected: dict[str, Rejected] = field(default_factory=dict)
    agent_refusals: dict[str, AgentRefusals] = field(default_factory=dict)
    foreign_reports: tuple[str, ...] = ()
    seen: dict[str, Seen] = field(default_factory=dict)
    spec_refused: SpecRefused | None = None
    control_refused: dict[str, ControlRefusal] = field(default_factory=dict)
    spec_signature: SpecSignature | None = None

    def encode(self) -> dict[str, Any]:
        """The JSON value: the planner's fields at the top level, then the sections."""
        value: dict[str, Any] = codec.encode(self.status)
        for name in _sections():
            value[name] = codec.encode(getattr(self, name))
        return value

    def to_json(self) -> bytes:
        return dumps_pretty(self.encode())

    @classmethod
    def decode(cls, value: object, where: str) -> ClusterStatus:
        """Strictly decode a status document; InvalidDocument names the field."""
        if not isinstance(value, dict):
            raise InvalidDocument(f"{where}: expected a JSON object, got {type(value).__name__}")
        planner, sections = _status_fields(), _sections()
        unknown = sorted(set(value) - set(planner) - set(sections) - {"signature"})
        if unknown:
            raise InvalidDocument(f"{where}: unknown field {unknown[0]!r}")
        fleet = codec.MAX_FLEET_ITEMS  # an entry per machine in several sections
        status: Status = codec.decode(
            Status, {k: v for k, v in value.items() if k in planner}, where, max_items=fleet
        )
        if status.format != STATUS_FORMAT:
            raise InvalidDocument(
                f"{where}.format: expected {STATUS_FORMAT!r}, got {status.format!r}"
            )
        hints = codec.hints(cls)  # type: ignore[arg-type]
        kwargs: dict[str, Any] = {}
        for name, f in sections.items():
            if name in value:
                kwargs[name] = codec.decode(
                    hints[name], value[name], f"{where}.{name}", max_items=fleet
                )
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise InvalidDocument(f"{where}: missing required field {name!r}")
        return cls(status=status, **kwargs)

    @classmethod
    def from_json(cls, raw: bytes, *, where: str) -> ClusterStatus:
        return cls.decode(loads_object(raw, where=where, max_bytes=MAX_STATUS_BYTES), where)


@functools.cache
def _status_fields() -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(Status))


@functools.cache
def _sections() -> dict[str, dataclasses.Field[Any]]:
    sections = {f.name: f for f in dataclasses.fields(ClusterStatus) if f.name != "status"}
    clash = sorted(set(sections) & _status_fields())
    if clash:  # a bug: a planner field would shadow a section in the flat document
        raise TypeError(f"ClusterStatus sections clash with Status fields: {clash}")
    return sections


__all__ = [
    "MAX_STATUS_BYTES",
    "AgentRefusals",
    "ClusterStatus",
    "ControlRefusal",
    "ControllerInfo",
    "Rejected",
    "Seen",
    "SpecRefused",
    "SpecSignature",
]
