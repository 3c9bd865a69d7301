"""Reading `reports/`: list, fetch only what changed, verify, accept or refuse (docs/security.md#snapshot-replay, #hostile-input).

One LIST per 1,000 machines; a GET only for objects whose ETag differs from the one last
examined (kept in `control/intake.json`) or, on a cold process cache, for the accepted
object itself. Every refusal is counted per machine and reason, becomes an event, and
leaves everything else about that machine unchanged. One bad snapshot never stops the
processing of the others: each object is handled on its own.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from itertools import chain, islice
from operator import lt
from typing import Any, cast

from controller.planner.model import Event, MachineObservation, Observed, Rejection
from controller.shell.intake_state import IntakeState, ReportRecord
from controller.shell.key_epochs import KeyRing
from controller.shell.listing import RangedLister, machine_of
from wire import codec
from wire.documents import Snapshot, open_snapshot, parse_envelope
from wire.errors import (
    BadSignature,
    BosunError,
    DocumentTooLarge,
    InvalidDocument,
    StoreUnavailable,
)
from wire.layout import REPORTS, MachineId
from wire.signing import digest, parse_kid
from wire.store import ObjectInfo, Store, StoredObject

log = logging.getLogger(__name__)

GET_THREADS = 16
LIVENESS_FIELDS = ("seq", "sent_at", "load", "sessions", "capacity")
SERVICE_LIVENESS_FIELDS = ("requests", "errors", "latency_ms", "metrics")


@dataclass
class SnapshotCache:
    """Accepted snapshots decoded in this process, by machine: (ETag, snapshot).

    With `keep_raw` (short-lived `once` processes) the signed bytes are kept too, so they
    can be saved locally and the next process re-verifies them instead of GETting every
    report again; `dirty` says whether anything new was kept since the last save.
    """

    entries: dict[str, tuple[str, Snapshot]] = field(default_factory=dict)
    keep_raw: bool = False
    raw: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    dirty: bool = False

    def keep(self, machine: str, etag: str, snap: Snapshot, raw: bytes) -> None:
        self.entries[machine] = (etag, snap)
        if self.keep_raw and self.raw.get(machine, ("", b""))[0] != etag:
            self.raw[machine] = (etag, raw)
            self.dirty = True


@dataclass(frozen=True, slots=True)
class Accepted:
    machine: str
    snapshot: Snapshot
    raw: bytes  # the signed bytes to archive; b"" when not substantive (nothing to archive)
    substantive: bool  # changed more than liveness fields: archive under history/


class Shared:
    """One object for equal values that many machines report (the `eligible` list is the
    same on every machine of a pool): a decoded snapshot holds its own copy of each string,
    ~2 KB a machine for 40 eligible services. Kept per process; values no snapshot uses
    any more are dropped when the table is rebuilt (`prune`)."""

    def __init__(self) -> None:
        self.eligible: dict[tuple[str, ...], tuple[str, ...]] = {}

    def snapshot(self, snap: Snapshot) -> Snapshot:
        eligible = self.eligible.setdefault(snap.eligible, snap.eligible)
        return snap if eligible is snap.eligible else replace(snap, eligible=eligible)

    def prune(self, kept: Iterable[tuple[str, Snapshot]]) -> None:
        if len(self.eligible) > 1_000:  # many distinct lists: keep those still used
            self.eligible = {snap.eligible: snap.eligible for _, snap in kept}


@dataclass(frozen=True, slots=True)
class IntakeResult:
    observed: Observed
    state: IntakeState
    accepted: tuple[Accepted, ...]
    events: tuple[Event, ...]
    listed: int
    fetched: int
    # machines accepted before whose report could not be read this cycle and of which this
    # process holds no snapshot: the cycle learned nothing about them
    unread: tuple[str, ...] = ()
    bad_signatures: int = 0  # snapshots examined this cycle that failed signature checks
    # nothing changed but the liveness of machines already accepted: every snapshot accepted
    # this cycle has its machine's last substance (a heartbeat: new seq, sent_at, load), and
    # nothing was refused or newly found (the records changed in etag, seq, accepted_etag,
    # accepted_at and sent_at only)
    liveness_only: bool = False


def in_order(mapping: Mapping[str, object]) -> bool:
    """Whether the keys are sorted (checked in C: ~5 ms at 100,000, where sorting the
    records every cycle cost ~10 times that)."""
    return all(map(lt, mapping, islice(mapping, 1, None)))


class WrongMasterKey(BosunError):
    """Most reports fail their signature check: the controller's key, not the fleet, is wrong."""


def refuse_wrong_key(result: IntakeResult, master_key_hint: str = "--master-key") -> None:
    """docs/security.md#wrong-key: a cycle that cannot verify most reports acts on nothing.

    With another master key every machine's report fails its signature check and the
    planner would see an empty fleet and move every machine to standby. A majority of all
    listed reports failing, not just of those examined, is the test: a few forged reports
    in a large fleet are refusals, never a reason to stop."""
    bad = result.bad_signatures
    if bad and 2 * bad > result.listed:
        raise WrongMasterKey(
            f"{bad} of {result.listed} reports fail their signature check: the master key is "
            f"probably wrong (compare {master_key_hint} with the key the machines were "
            "enrolled with); nothing was planned or written"
        )


def substance(snap: Snapshot) -> str:
    """Digest of a snapshot without its liveness fields (what history/ keeps track of)."""
    body: dict[str, Any] = codec.encode(snap)
    for name in LIVENESS_FIELDS:
        body.pop(name, None)
    for svc in body.get("services", {}).values():
        for name in SERVICE_LIVENESS_FIELDS:
            svc.pop(name, None)
    return digest(body)


def classify(exc: BosunError, raw: bytes, key: str, owner: str, keys: KeyRing) -> str:
    """The refusal reason for a snapshot that failed to open."""
    if isinstance(exc, DocumentTooLarge):
        return "too_large"
    if isinstance(exc, InvalidDocument):
        return "invalid_document"
    if not isinstance(exc, BadSignature):
        return "invalid_document"
    try:
        env = parse_envelope(raw, where=key)
        kid_machine, _ = parse_kid(env.kid)
    except BosunError:
        return "bad_signature"
    if keys.why_refused(env.kid) is not None:
        return "unknown_kid"
    if kid_machine != owner or env.body.get("machine") != owner:
        return "binding"
    return "bad_signature"


@dataclass
class _Outcome:
    machine: str
    info: ObjectInfo
    snapshot: Snapshot | None = None
    raw: bytes = b""
    reason: str = ""
    detail: str = ""
    unavailable: bool = False


class Intake:
    def __init__(
        self,
        store: Store,
        keys: KeyRing,
        cache: SnapshotCache | None = None,
        lister: RangedLister | None = None,
    ) -> None:
        self.store = store
        self.keys = keys
        self.cache = cache if cache is not None else SnapshotCache()
        self.lister = lister if lister is not None else RangedLister(store)
        self.shared = Shared()
        self._observed: dict[str, MachineObservation] = {}  # last cycle's, to reuse

    def _fetch(self, machine: str, info: ObjectInfo) -> _Outcome:
        out = _Outcome(machine, info)
        local = self.cache.raw.get(machine)
        if local is not None and local[0] == info.etag:  # saved by an earlier process
            try:
                env, out.snapshot = open_snapshot(local[1], info.key, self.keys.lookup)
                self.keys.reported[machine] = parse_kid(env.kid)[1]
                out.raw = local[1]
                return out
            except BosunError:  # a damaged local copy is not the machine's fault: GET it
                self.cache.raw.pop(machine, None)
        try:
            got = self.store.get(info.key)
        except DocumentTooLarge as exc:
            out.reason, out.detail = "too_large", str(exc)
            return out
        except StoreUnavailable as exc:
            out.unavailable, out.detail = True, str(exc)
            return out
        if not isinstance(got, StoredObject):  # deleted since the LIST
            out.unavailable, out.detail = True, f"{info.key} vanished since it was listed"
            return out
        out.raw = got.body
        out.info = replace(info, etag=got.etag)
        try:
            env, out.snapshot = open_snapshot(got.body, info.key, self.keys.lookup)
            self.keys.reported[machine] = parse_kid(env.kid)[1]
        except BosunError as exc:
            out.reason = classify(exc, got.body, info.key, machine, self.keys)
            out.detail = str(exc)
        return out

    def collect(self, state: IntakeState, now: float, skew_window: float) -> IntakeResult:
        reports = dict(state.reports)
        events: list[Event] = []
        listed: list[tuple[str, ObjectInfo]] = []
        foreign: dict[str, str] = {}
        # read only when this process has not listed reports/ yet (a generator: lazy)
        hint = chain((f"{REPORTS}{m}.json" for m in state.reports), state.foreign)
        for info in self.lister.list(REPORTS, hint):  # key ranges listed concurrently
            try:
                listed.append((machine_of(info.key, REPORTS), info))
            except ValueError:
                foreign[info.key[:200]] = info.etag
                if state.foreign.get(info.key[:200]) != info.etag:  # counted once per version
                    log.warning("intake.foreign_key %s: not reports/<machine>.json", info.key)
                    detail = f"{info.key[:200]} is not reports/<machine>.json"
                    events.append(
                        Event("snapshot.rejected", "invalid_key", data={"detail": detail})
                    )
        todo: list[tuple[str, ObjectInfo]] = []
        for machine, info in listed:
            rec = reports.get(machine)
            cached = self.cache.entries.get(machine)
            if rec is None or info.etag != rec.etag:
                todo.append((machine, info))  # changed: examine
            elif info.etag == rec.accepted_etag and (cached is None or cached[0] != info.etag):
                todo.append((machine, info))  # accepted before, but not in this process's cache
        outcomes = self._fetch_all(todo)
        accepted: list[Accepted] = []
        rejections: list[Rejection] = []
        unavailable: list[str] = []
        liveness_only = not events and foreign == state.foreign
        for out in outcomes:
            rec = reports.get(out.machine, ReportRecord())
            if out.unavailable:
                log.warning("intake.fetch_failed %s", out.detail)
                unavailable.append(out.machine)
                continue
            snap = out.snapshot
            if snap is not None and out.info.etag == rec.accepted_etag and snap.seq == rec.seq:
                snap = self.shared.snapshot(snap)
                self.cache.keep(out.machine, out.info.etag, snap, out.raw)  # cold cache refill
                if rec.etag != out.info.etag:  # the accepted object is current again
                    reports[out.machine] = replace(rec, etag=out.info.etag)
                    liveness_only = False
                continue
            if snap is not None:
                if snap.seq <= rec.seq:
                    out.reason = "replayed_seq"
                    out.detail = (
                        f"{out.info.key}: seq {snap.seq} is not above the last "
                        f"accepted {rec.seq} (replayed or restored old version)"
                    )
                elif abs(snap.sent_at - now) > skew_window:
                    out.reason = "clock_skew"
                    out.detail = (
                        f"{out.info.key}: sent_at is {snap.sent_at - now:+.0f}s from "
                        f"controller time, outside the {skew_window:.0f}s skew window; "
                        "fix the machine's clock (NTP)"
                    )
            if out.reason:
                liveness_only = False
                reports[out.machine] = rec.rejecting(out.info.etag, out.reason, out.detail, now)
                rejections.append(Rejection(out.machine, out.reason, out.detail[:300]))
                events.append(
                    Event(
                        "snapshot.rejected",
                        out.reason,
                        machine=out.machine,
                        data={"detail": out.detail[:300]},
                    )
                )
                log.warning("intake.rejected %s: %s", out.reason, out.detail)
                continue
            assert snap is not None
            sub = substance(snap)
            snap = self.shared.snapshot(snap)
            news = sub != rec.substance
            liveness_only = liveness_only and not news and bool(rec.accepted_etag)
            accepted.append(Accepted(out.machine, snap, out.raw if news else b"", news))
            reports[out.machine] = replace(
                rec,
                etag=out.info.etag,
                seq=snap.seq,
                accepted_etag=out.info.etag,
                accepted_at=now,
                sent_at=snap.sent_at,
                substance=sub,
            )
            self.cache.keep(out.machine, out.info.etag, snap, out.raw)
        self.shared.prune(e for e in self.cache.entries.values())
        if not in_order(reports):  # machines added (or a state not written here)
            reports = dict(sorted(reports.items()))
        # an unchanged machine keeps last cycle's observation (the same object: later
        # stages compare identities); the dict is built in the records' (sorted) order
        last: dict[str, MachineObservation] = self._observed
        machines: dict[MachineId, MachineObservation] = {}
        for machine, rec in reports.items():
            cached = self.cache.entries.get(machine)
            if cached is not None and cached[0] == rec.accepted_etag:
                obs = last.get(machine)
                if (
                    obs is None
                    or obs.snapshot is not cached[1]
                    or obs.accepted_at != rec.accepted_at
                ):
                    obs = MachineObservation(cached[1], rec.accepted_at)
                machines[MachineId(machine)] = obs
        self._observed = cast("dict[str, MachineObservation]", machines)  # only read
        observed = Observed(machines=machines, rejections=tuple(rejections))
        new_state = replace(state, reports=reports, foreign=foreign)
        unread = tuple(
            sorted(
                m for m in unavailable if m not in machines and reports.get(m, ReportRecord()).seq
            )
        )
        bad = sum(r.reason == "bad_signature" for r in rejections)
        return IntakeResult(
            observed,
            new_state,
            tuple(accepted),
            tuple(events),
            len(listed),
            len(todo),
            unread,
            bad,
            liveness_only,
        )

    def _fetch_all(self, todo: Iterable[tuple[str, ObjectInfo]]) -> list[_Outcome]:
        items = list(todo)
        if len(items) <= 2:
            return [self._fetch(m, i) for m, i in items]
        with ThreadPoolExecutor(max_workers=min(GET_THREADS, len(items))) as pool:
            return list(pool.map(lambda item: self._fetch(*item), items))
