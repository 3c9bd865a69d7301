"""What the bucket archives, read for operators: a machine's snapshot history (list, read,
resolve `-1`/a time/an age to a seq, diff) and the controller's event log by day."""

from __future__ import annotations

import calendar
import difflib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from controller.operations.views import iso
from wire.documents import dumps_pretty, parse_envelope
from wire.durations import parse_duration
from wire.errors import InvalidDocument, ObjectMissing
from wire.layout import EVENTS, history_key, history_prefix
from wire.store import Store, StoredObject
from wire.times import parse_time

MAX_EVENTS_BYTES = 256 * 1024 * 1024
"""What a reader reads of one cycle's events: ~200 bytes an event, one or more per machine
in a cycle that changes the whole fleet (a cold start, a fleet-wide rollout): ~20 MB at
100,000 machines. Read line by line, one event at a time."""

# ---- history ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    seq: int
    key: str
    body: dict[str, Any]


def history_seqs(store: Store, machine: str) -> list[int]:
    prefix = history_prefix(machine)
    out = []
    for info in store.list(prefix):
        name = info.key[len(prefix) :].removesuffix(".json")
        if name.isdigit():
            out.append(int(name))
    return sorted(out)


def history_entry(store: Store, machine: str, seq: int) -> HistoryEntry:
    key = history_key(machine, seq)
    got = store.get(key)
    if not isinstance(got, StoredObject):
        raise ObjectMissing(
            f"{store.describe(key)} does not exist; `bosun history {machine}` "
            "lists the sequence numbers kept"
        )
    env = parse_envelope(got.body, where=store.describe(key))
    return HistoryEntry(seq, key, env.body)


def resolve_seq(seqs: list[int], ref: str, now: float, *, machine: str) -> int:
    """A snapshot of `seqs` (ascending) named as an operator would: -1 the latest, -2 the
    one before; a seq as listed; a time (2024-05-01T10:00[Z], UTC) or an age (10m, 2h):
    the latest snapshot sent at or before it (seqs are unix milliseconds or just above)."""
    text = ref.strip()
    if not seqs:
        raise ObjectMissing(f"no archived snapshots of {machine}")
    if text.startswith("-") and text[1:].isdigit():
        back = int(text[1:])
        if not 1 <= back <= len(seqs):
            raise ObjectMissing(
                f"{ref}: {machine} has {len(seqs)} archived snapshots (use -1 to -{len(seqs)})"
            )
        return seqs[-back]
    if text.isdigit() and int(text) in seqs:
        return int(text)
    at = _parse_when(text, now)
    if at is None:
        raise ObjectMissing(
            f"{ref!r} names no snapshot of {machine}: use -1 (latest), -2, a seq from "
            "`bosun history`, a UTC time (2024-05-01T10:00) or an age (10m, 2h)"
        )
    before = [s for s in seqs if s <= at * 1000]
    if not before:
        raise ObjectMissing(f"{machine} has no archived snapshot at or before {iso(at)}")
    return before[-1]


def _parse_when(text: str, now: float) -> float | None:
    if text[:1].isdigit() and ("T" in text or "-" in text):
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()
    if text.isdigit():  # a bare number that is no listed seq
        return None
    age = parse_duration(text)
    return None if age is None else now - float(age)


def history_diff(store: Store, machine: str, a: int, b: int) -> str:
    left, right = history_entry(store, machine, a), history_entry(store, machine, b)
    return "".join(
        difflib.unified_diff(
            dumps_pretty(left.body).decode().splitlines(keepends=True),
            dumps_pretty(right.body).decode().splitlines(keepends=True),
            fromfile=f"{machine}@{a}",
            tofile=f"{machine}@{b}",
        )
    )


# ---- events -------------------------------------------------------------------------------


def _days(since: float, now: float) -> Iterator[str]:
    day = calendar.timegm((*time.gmtime(since)[:3], 0, 0, 0))
    while day <= now:
        t = time.gmtime(day)
        yield f"{EVENTS}{t.tm_year:04d}/{t.tm_mon:02d}/{t.tm_mday:02d}/"
        day += 86400


def read_events(store: Store, since: float, now: float) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for prefix in _days(since, now):
        for info in store.list(prefix):
            name = info.key[len(prefix) :]
            hhmmss = name[:6]
            if not hhmmss.isdigit():
                continue
            day = prefix[len(EVENTS) :].rstrip("/").split("/")
            started = calendar.timegm(
                (
                    int(day[0]),
                    int(day[1]),
                    int(day[2]),
                    int(hhmmss[:2]),
                    int(hhmmss[2:4]),
                    int(hhmmss[4:6]),
                )
            )
            if started < since - 60:  # a file holds one cycle: seconds long at most
                continue
            got = store.get(info.key, max_bytes=MAX_EVENTS_BYTES)
            if not isinstance(got, StoredObject):
                continue
            for n, line in enumerate(got.body.splitlines(), 1):
                try:
                    ev = orjson.loads(line)
                except orjson.JSONDecodeError:
                    raise InvalidDocument(f"{store.describe(info.key)}: not JSON lines") from None
                if isinstance(ev, dict):  # `t` ISO 8601 (Unix seconds: older): seconds here on
                    ev["t"] = parse_time(ev.get("t", 0), f"{store.describe(info.key)}:{n}.t")
                    if ev["t"] >= since:
                        out.append(ev)
    out.sort(key=lambda e: (e.get("t", 0), e.get("cycle", 0)))
    return out


def filter_events(
    events: list[dict[str, Any]],
    *,
    kind: str | None = None,
    machine: str | None = None,
    service: str | None = None,
) -> list[dict[str, Any]]:
    """The events of `kind` (a prefix: `rollout.` is every rollout event), about `machine`,
    of `service`; a filter that is None or empty keeps everything."""
    return [
        e
        for e in events
        if (not kind or str(e.get("kind", "")).startswith(kind))
        and (not machine or e.get("machine") == machine)
        and (not service or e.get("service") == service)
    ]


__all__ = [
    "HistoryEntry",
    "filter_events",
    "history_diff",
    "history_entry",
    "history_seqs",
    "read_events",
    "resolve_seq",
]
