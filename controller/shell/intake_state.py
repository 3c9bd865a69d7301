"""The shell's own bookkeeping, stored next to the planner memory as `control/intake.json`.

    {"format": "bosun.intake/1", "fence": 7,
     "reports": {"web-1": {"etag": "...", "seq": 1796669825646, "accepted_etag": "...",
                           "accepted_at": "2026-12-07T18:57:05.646Z", "substance": "<sha256>",
                           "rejected": {"replayed_seq": 2}, "last_rejection": {...}}},
     "desired": {"web-1": "<etag last read or written>"}, "signed": {"web-1": 0}}

* `seq` is the last accepted snapshot sequence: anything not above it is a replay
  (docs/security.md#snapshot-replay), also across controller restarts.
* `etag` is the last report ETag examined (accepted or refused), so an unchanged object is
  neither fetched nor counted twice.
* `desired` holds the ETag of each desired document as last read or written: the only
  ETag a desired write may be conditioned on (docs/security.md#fenced-writes). A machine missing here has its
  document re-read before it is written.
* `signed` is the key epoch each desired document was signed at: after `bosun revoke`
  the document is re-signed (a refresh) at the new epoch on the next cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from wire import codec
from wire.codec import Timestamp
from wire.control import MAX_CONTROL_BYTES, unwrap_unverified
from wire.documents import dumps_pretty, loads_object
from wire.errors import InvalidDocument
from wire.layout import INTAKE

INTAKE_FORMAT = "bosun.intake/1"


@dataclass(frozen=True, slots=True)
class LastRejection:
    reason: str
    detail: str
    at: Timestamp


@dataclass(frozen=True, slots=True)
class ReportRecord:
    etag: str = ""
    seq: int = 0
    accepted_etag: str = ""
    accepted_at: Timestamp = 0.0
    sent_at: Timestamp = 0.0
    substance: str = ""
    rejected: dict[str, int] = field(default_factory=dict)
    last_rejection: LastRejection | None = None

    def rejecting(self, etag: str, reason: str, detail: str, at: float) -> ReportRecord:
        counts = dict(self.rejected)
        counts[reason] = counts.get(reason, 0) + 1
        return replace(
            self, etag=etag, rejected=counts, last_rejection=LastRejection(reason, detail[:300], at)
        )


@dataclass(frozen=True, slots=True)
class IntakeState:
    format: str = INTAKE_FORMAT
    fence: int = 0
    cycle: int = 0
    reports: dict[str, ReportRecord] = field(default_factory=dict)
    desired: dict[str, str] = field(default_factory=dict)
    signed: dict[str, int] = field(default_factory=dict)  # key epoch of each document we wrote
    foreign: dict[str, str] = field(default_factory=dict)  # reports/ keys naming no machine
    status_digest: str = ""  # of the last status/cluster.json written (volatile fields aside)

    def to_json(self) -> bytes:
        return dumps_pretty(codec.encode(self))

    @classmethod
    def from_json(cls, raw: bytes, *, where: str = INTAKE) -> IntakeState:
        """Decode the stored object, unwrapping its signed envelope WITHOUT verifying it
        (readers and tests; the controller verifies with wire.control, then `from_value`)."""
        value = loads_object(raw, where=where, max_bytes=MAX_CONTROL_BYTES)
        return cls.from_value(unwrap_unverified(value), where=where)

    @classmethod
    def from_value(cls, value: object, *, where: str = INTAKE) -> IntakeState:
        """Decode the state (entries per machine: codec.MAX_FLEET_ITEMS)."""
        state: IntakeState = codec.decode(cls, value, where, max_items=codec.MAX_FLEET_ITEMS)
        if state.format != INTAKE_FORMAT:
            raise InvalidDocument(f"{where}.format: expected {INTAKE_FORMAT!r}")
        return state

    def same_but_heartbeats(self, other: IntakeState) -> bool:
        """Equal apart from the counters and the liveness fields of the records (`etag`,
        `seq`, `accepted_etag`, `accepted_at`, `sent_at`): the records are only checked to
        name the same machines, the caller knows from the intake that nothing else of
        them changed (controller.shell.intake.IntakeResult.liveness_only)."""
        return (
            self.reports.keys() == other.reports.keys()
            and self.desired == other.desired
            and self.signed == other.signed
            and self.foreign == other.foreign
            and self.status_digest == other.status_digest
        )

    def same_content(self, other: IntakeState) -> bool:
        """Equal apart from the fence and cycle counters (nothing worth writing)."""
        return (
            self.reports == other.reports
            and self.desired == other.desired
            and self.signed == other.signed
            and self.foreign == other.foreign
            and self.status_digest == other.status_digest
        )
