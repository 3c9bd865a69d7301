"""What the dashboard and the API show, read from the bucket as `bosun status` reads it.

`FleetReader.fleet()` is one consistent read: status/cluster.json (decoded strictly by
`controller.operations.views.load_status`), the lease's last renewal and the settings of
the spec the controller plans with, judged at the reader's clock (`views.Freshness`): the
same stale and blind verdicts as `bosun status --check`. Reads are conditional: the
status document is decoded again only when its ETag changed, the spec only when its own
did (`SpecCache`), so a page refreshed every few seconds costs three small GETs, mostly
304s on S3.

Two things only this process can know, kept in memory while it runs (lost on restart):
rollout gate samples (each distinct gate seen for a rollout, with when it was seen: the
chart's points between the rollout's own events) and earlier desired documents of each
machine (so the machine page can diff them; the bucket keeps only the current one).
"""

from __future__ import annotations

import difflib
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from controller.operations import history, views
from controller.planner.model import GATE_MEASURES, GATE_THRESHOLDS
from controller.read_trust import Verdict, anchor, check_status, pinned_key
from controller.shell.control_objects import SpecCache, load_spec_or_last_good
from controller.shell.lease import LeaseDoc
from controller.spec.model import ClusterSpec, Settings
from controller.status_document import MAX_STATUS_BYTES, ClusterStatus
from wire.documents import dumps_pretty, parse_envelope
from wire.errors import BadSignature, InvalidDocument, ObjectMissing
from wire.layout import LEASE, STATUS_CLUSTER, desired_key
from wire.store import Missing, NotModified, Store, StoredObject

SAMPLES_KEPT = 2000  # gate samples per rollout
DESIRED_KEPT = 10  # desired documents remembered per machine
GATE_NUMBERS = GATE_MEASURES + GATE_THRESHOLDS  # what a gate sample keeps


@dataclass(frozen=True, slots=True)
class Fleet:
    """One read of the cluster, judged at `fresh.now`."""

    doc: ClusterStatus
    fresh: views.Freshness
    spec: ClusterSpec | None
    rows: list[dict[str, Any]]
    problems: list[views.Problem]
    # how far status/cluster.json's controller signature verified (read_trust.check_status)
    signature: Verdict = field(default_factory=lambda: Verdict(None, "not checked"))

    @property
    def stale(self) -> bool:
        return any(p.code == views.STALE for p in self.problems)


@dataclass(frozen=True, slots=True)
class GatePoint:
    """A rollout's gate numbers at time `t`: from an event (`source` its kind) or sampled
    from status/cluster.json by this server (`source` "sample")."""

    t: float
    source: str
    step: int | None
    numbers: dict[str, float]


@dataclass(frozen=True, slots=True)
class DesiredSeen:
    etag: str
    generation: int | None
    seen_at: float
    text: str  # the pretty JSON of the whole envelope


@dataclass
class _Rollout:
    started_at: float
    points: deque[GatePoint] = field(default_factory=lambda: deque(maxlen=SAMPLES_KEPT))
    last: tuple[Any, ...] = ()


class FleetReader:
    """Reads for one store; safe to call from several threads."""

    def __init__(
        self,
        store: Store,
        clock: Callable[[], float] = time.time,
        controller_key: str | None = None,
    ) -> None:
        """`controller_key`: the pinned controller key (BOSUN_CONTROLLER_KEY): a status
        document it did not sign is refused; without it the signature is checked against
        the key control/keys.json lists, and the pages say that is not verification."""
        self.store = store
        self.clock = clock
        self.controller_key = pinned_key(controller_key)
        self._lock = threading.Lock()
        self._status: tuple[str, ClusterStatus] | None = None
        self._verdict = Verdict(None, "not checked")
        self._spec_cache = SpecCache()
        self._rollouts: dict[str, _Rollout] = {}
        self._desired: dict[str, deque[DesiredSeen]] = {}

    # ---- the cluster ------------------------------------------------------------------------

    def fleet(self) -> Fleet:
        """status/cluster.json with its freshness; ObjectMissing before the first cycle."""
        with self._lock:
            doc = self._load_status()
            got = self.store.get(LEASE, max_bytes=64 * 1024)
            lease = LeaseDoc.decode(got.body, self.store.describe(LEASE)) if isinstance(
                got, StoredObject
            ) else None  # fmt: skip
            spec, _refused = load_spec_or_last_good(
                self.store, self._spec_cache, doc.status.spec_revision
            )
            fresh = views.Freshness.of(
                self.clock(),
                spec.settings if spec is not None else Settings(),
                lease.renewed_at if lease is not None else None,
                holder=lease.holder if lease is not None else "",
                released=lease.released if lease is not None else False,
            )
            rows = views.machine_rows(doc, fresh)
            self._sample_rollouts(doc)
        return Fleet(doc, fresh, spec, rows, views.problems(doc, fresh, rows), self._verdict)

    def _load_status(self) -> ClusterStatus:
        etag = self._status[0] if self._status is not None else None
        got = self.store.get(STATUS_CLUSTER, if_none_match=etag, max_bytes=MAX_STATUS_BYTES)
        if isinstance(got, NotModified) and self._status is not None:
            return self._status[1]
        if isinstance(got, StoredObject):
            where = self.store.describe(STATUS_CLUSTER)
            verdict = check_status(got.body, anchor(self.store, self.controller_key))
            if verdict.ok is False and self.controller_key:
                raise BadSignature(f"{verdict.text}; not shown (the pinned key did not sign it)")
            self._verdict = verdict
            try:
                doc = ClusterStatus.from_json(got.body, where=where)
            except InvalidDocument as exc:
                raise InvalidDocument(
                    f"{exc}; {where} is not a status document this bosun can read"
                ) from None
            self._status = (got.etag, doc)
            return doc
        self._status = None
        return views.load_status(self.store)  # raises the CLI's clear ObjectMissing

    # ---- rollouts ---------------------------------------------------------------------------

    def _sample_rollouts(self, doc: ClusterStatus) -> None:
        """Keep each new gate of a rollout, at the time the controller wrote it (the
        status document is rewritten when its content, the gate included, changes)."""
        for name, r in doc.status.rollouts.items():
            kept = self._rollouts.get(name)
            if kept is None or kept.started_at != r.started_at:
                kept = self._rollouts[name] = _Rollout(r.started_at)
            numbers = gate_numbers(r.gate)
            key = (r.step, r.state, tuple(sorted(numbers.items())))
            if numbers and key != kept.last:
                kept.last = key
                kept.points.append(GatePoint(doc.status.at, "sample", r.step, numbers))

    def rollout_points(
        self, service: str, started_at: float, events: list[dict[str, Any]]
    ) -> list[GatePoint]:
        """Gate numbers over one rollout, oldest first: its events' numbers (rollout.step,
        .watching, .halted, .reverted carry the window just judged) and this server's
        samples of the status document."""
        points = [
            GatePoint(float(ev["t"]), str(ev.get("kind")), None, gate_numbers(ev.get("data")))
            for ev in events
            if ev.get("service") == service
            and str(ev.get("kind", "")).startswith("rollout.")
            and float(ev.get("t", 0)) >= started_at - 1
            and gate_numbers(ev.get("data"))
        ]
        with self._lock:
            kept = self._rollouts.get(service)
            if kept is not None and kept.started_at == started_at:
                points += list(kept.points)
        points.sort(key=lambda p: p.t)
        return points

    # ---- machines -----------------------------------------------------------------------------

    def desired(self, machine: str) -> list[DesiredSeen]:
        """The machine's desired document now (first) and the earlier ones this server saw;
        [] when there is none. The document is shown as stored: readers hold no key."""
        key = desired_key(machine)
        got = self.store.get(key)
        with self._lock:
            seen = self._desired.setdefault(machine, deque(maxlen=DESIRED_KEPT))
            if isinstance(got, Missing):
                return []
            assert isinstance(got, StoredObject)
            if not seen or seen[0].etag != got.etag:
                env = parse_envelope(got.body, where=self.store.describe(key))
                generation = env.body.get("generation")
                value = {"format": env.format, "kid": env.kid, "sig": env.sig, "body": env.body}
                seen.appendleft(
                    DesiredSeen(
                        got.etag,
                        generation if isinstance(generation, int) else None,
                        self.clock(),
                        dumps_pretty(value).decode(),
                    )
                )
            return list(seen)

    def history(self, machine: str, limit: int) -> list[history.HistoryEntry]:
        """The latest `limit` archived snapshots of `machine`, oldest first."""
        seqs = history.history_seqs(self.store, machine)[-limit:] if limit > 0 else []
        out = []
        for seq in seqs:
            try:
                out.append(history.history_entry(self.store, machine, seq))
            except ObjectMissing:  # pruned between the LIST and the GET
                continue
        return out

    def events(self, since: float, now: float) -> list[dict[str, Any]]:
        return history.read_events(self.store, since, now)


def gate_numbers(data: object) -> dict[str, float]:
    """The numeric gate fields of a rollout gate or event `data` (others left out)."""
    if not isinstance(data, dict):
        return {}
    out: dict[str, float] = {}
    for k in GATE_NUMBERS:
        v = data.get(k)
        if isinstance(v, int | float) and not isinstance(v, bool):
            out[k] = float(v)
    return out


def unified(left: str, right: str, left_name: str, right_name: str) -> str:
    """A unified diff of two texts ('' when they are equal)."""
    return "".join(
        difflib.unified_diff(
            left.splitlines(keepends=True),
            right.splitlines(keepends=True),
            fromfile=left_name,
            tofile=right_name,
        )
    )


def snapshot_text(entry: history.HistoryEntry) -> str:
    return dumps_pretty(entry.body).decode()


__all__ = [
    "DesiredSeen",
    "Fleet",
    "FleetReader",
    "GatePoint",
    "gate_numbers",
    "snapshot_text",
    "unified",
]
