"""What a cycle leaves for operators: `status/cluster.json`, events and snapshot history.

status/cluster.json is a `controller.status_document.ClusterStatus`: the planner's
`Status` plus what only the shell knows (controller, rejected, agent_refusals,
foreign_reports, seen, spec_refused; the type's docstring draws the document).

It is rewritten only when something other than its timestamps changed, so a cycle in
which nothing changed writes nothing but the lease: its `at` is when the content last
changed, not the last cycle. Readers take the last cycle from the lease's `renewed_at`
and each machine's age from `seen` (`accepted_at`; `heartbeat_interval` gives its
liveness window, controller.planner.core.silence_allowed).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson

from controller.planner.model import Event, MachineObservation, Observed, Status
from controller.shell.intake import Accepted
from controller.shell.intake_state import IntakeState, LastRejection, ReportRecord
from controller.shell.publish import writers
from controller.status_document import (
    AgentRefusals,
    ClusterStatus,
    ControllerInfo,
    Rejected,
    Seen,
    SpecRefused,
)
from wire import codec
from wire.codec import JsonValue
from wire.documents import Refusal, Snapshot, dumps_pretty
from wire.errors import WriteConflict
from wire.layout import MachineId, events_key, history_key
from wire.signing import digest
from wire.store import Store
from wire.times import format_time

STATUS_VOLATILE = ("at",)
MACHINE_VOLATILE = ("age",)


def cluster_status(
    status: Status,
    intake: IntakeState,
    observed: Observed,
    *,
    holder: str,
    token: int,
    cycle: int,
    spec_refused: SpecRefused | None = None,
) -> ClusterStatus:
    """The typed status document of this cycle."""
    rejected: dict[str, Rejected] = {}
    for m, rec in intake.reports.items():
        if (refused := rejected_entry(rec)) is not None:
            rejected[m] = refused
    refusals: dict[str, AgentRefusals] = {}
    for m, obs in observed.machines.items():
        if (said := refusals_entry(obs.snapshot)) is not None:
            refusals[m] = said
    seen: dict[str, Seen] = {}
    for m, rec in intake.reports.items():
        if (last := seen_entry(rec, observed.machines.get(MachineId(m)))) is not None:
            seen[m] = last
    return ClusterStatus(
        status=status,
        controller=ControllerInfo(holder=holder, token=token, cycle=cycle),
        rejected=rejected,
        agent_refusals=refusals,
        foreign_reports=tuple(sorted(intake.foreign)),  # objects under reports/ naming no machine
        seen=seen,
        spec_refused=spec_refused,
    )


def rejected_entry(rec: ReportRecord) -> Rejected | None:
    """A machine's `rejected` entry: its snapshots the controller refused, if any."""
    if not rec.rejected:
        return None
    return Rejected(counts=dict(rec.rejected), last=_refusal(rec.last_rejection))


def refusals_entry(snap: Snapshot) -> AgentRefusals | None:
    """A machine's `agent_refusals` entry: what its agent says it refused, if anything."""
    if not (snap.refusals or snap.last_refusal or snap.desired_stale):
        return None
    return AgentRefusals(
        counts=dict(snap.refusals),
        verify_failures=snap.verify_failures,
        last=snap.last_refusal,
        desired_stale=snap.desired_stale,
    )


def seen_entry(rec: ReportRecord, found: MachineObservation | None) -> Seen | None:
    """A machine's `seen` entry: its last accepted report (None: none accepted yet)."""
    if not rec.accepted_etag:
        return None
    if found is None:
        return Seen(seq=rec.seq, sent_at=rec.sent_at, accepted_at=rec.accepted_at)
    snap = found.snapshot
    return Seen(
        seq=rec.seq,
        sent_at=rec.sent_at,
        accepted_at=rec.accepted_at,
        heartbeat_interval=snap.heartbeat_interval,
        addresses=snap.addresses,
        agent_version=snap.agent_version,
    )


def _refusal(last: LastRejection | None) -> Refusal | None:
    return Refusal(last.reason, last.detail, last.at) if last is not None else None


def status_document(
    status: Status, intake: IntakeState, observed: Observed, *, holder: str, token: int, cycle: int
) -> dict[str, Any]:
    """`cluster_status` encoded (wire.codec) as the JSON value written to status/cluster.json."""
    return cluster_status(
        status, intake, observed, holder=holder, token=token, cycle=cycle
    ).encode()


def status_digest(doc: Mapping[str, Any], machines: Mapping[str, Any] | None = None) -> str:
    """Digest of a status document without the fields that change every cycle.
    `machines`: the document's machines without their volatile fields, if already at hand."""
    stable = {k: v for k, v in doc.items() if k not in STATUS_VOLATILE and k != "controller"}
    stable["controller"] = {k: v for k, v in doc.get("controller", {}).items() if k != "cycle"}
    stable["machines"] = (
        {
            m: {k: v for k, v in ms.items() if k not in MACHINE_VOLATILE}
            for m, ms in doc.get("machines", {}).items()
        }
        if machines is None
        else machines
    )
    return digest(stable)


def event_lines(events: Iterable[Event], *, now: float, cycle: int, fence: int) -> bytes:
    """One JSON line per event: `t`, `cycle`, `fence` and the event's fields, empty ones
    left out (docs/controller.md lists them).

    The lines go into one buffer as they are made: each `orjson.dumps` answer occupies a
    ~4 KiB allocation whatever its length, so holding one per event until a join cost
    ~4 KiB an event (~800 MB for a cycle that changes 100,000 machines: two events each)."""
    out = bytearray()
    t = format_time(now)
    for ev in events:
        encoded: dict[str, JsonValue] = codec.encode(ev)
        value = {k: v for k, v in encoded.items() if v not in (None, {}, "")}
        out += orjson.dumps(
            {"t": t, "cycle": cycle, "fence": fence, **value}, option=orjson.OPT_SORT_KEYS
        )
        out += b"\n"
    return bytes(out)


def events_object_key(now: float, cycle: int) -> str:
    t = time.gmtime(now)
    return events_key(t.tm_year, t.tm_mon, t.tm_mday, time.strftime("%H%M%S", t), cycle)


def write_events(store: Store, body: bytes, *, now: float, cycle: int) -> str:
    key = events_object_key(now, cycle)
    try:
        store.put(key, body, if_none_match="*", content_type="application/x-ndjson")
    except WriteConflict:
        key = key.replace(".jsonl", f"-{int(now * 1000) % 1000:03d}.jsonl")
        store.put(key, body, if_none_match="*", content_type="application/x-ndjson")
    return key


def archive(store: Store, machine: str, seq: int, raw: bytes) -> bool:
    """Keep an accepted snapshot (signed, as received) under history/; False if present."""
    try:
        store.put(history_key(machine, seq), raw, if_none_match="*")
    except WriteConflict:
        return False
    return True


def archive_all(store: Store, accepted: Iterable[Accepted], threads: int) -> list[str]:
    """Archive every substantive accepted snapshot, `threads` at a time; the keys written."""
    todo = [a for a in accepted if a.substantive]

    def one(acc: Accepted) -> str | None:
        if archive(store, acc.machine, acc.snapshot.seq, acc.raw):
            return history_key(acc.machine, acc.snapshot.seq)
        return None

    if threads <= 1 or len(todo) <= 2:
        done = [one(a) for a in todo]
    else:
        # sized like publish: a cold start archives every machine's first snapshot
        with ThreadPoolExecutor(max_workers=writers(threads, len(todo))) as pool:
            done = list(pool.map(one, todo))
    return [k for k in done if k is not None]


def encode_status(doc: Mapping[str, Any]) -> bytes:
    return dumps_pretty(doc)
