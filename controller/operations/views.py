"""Operator reads of what the controller wrote: status, machines, history, events.

Readers need no key: they parse what is there (snapshots in history/ are shown as
received; the controller verified them before archiving).
"""

from __future__ import annotations

import calendar
import difflib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree as ET

import orjson

from wire.documents import dumps_pretty, loads_object, parse_envelope
from wire.errors import InvalidDocument, ObjectMissing
from wire.layout import EVENTS, STATUS_CLUSTER, history_key, history_prefix
from wire.store import Store, StoredObject

MACHINE_FIELDS = (
    "machine",
    "service",
    "mode",
    "status",
    "health",
    "version",
    "running",
    "generation",
    "applied_generation",
    "age",
    "internal",
    "external",
)


def load_status(store: Store) -> dict[str, Any]:
    got = store.get(STATUS_CLUSTER, max_bytes=64 * 1024 * 1024)
    if not isinstance(got, StoredObject):
        raise ObjectMissing(
            f"{store.describe(STATUS_CLUSTER)} does not exist yet: no controller "
            "cycle has run (bosun controller once)"
        )
    return loads_object(got.body, where=store.describe(STATUS_CLUSTER), max_bytes=64 * 1024 * 1024)


def machine_status(m: dict[str, Any]) -> str:
    if m.get("lost"):
        return "lost"
    if m.get("health") == "unhealthy":
        return "unhealthy"
    return "running" if m.get("age") is not None else "unseen"


def machine_rows(status: dict[str, Any], now: float) -> list[dict[str, Any]]:
    rows = []
    seen = status.get("seen", {})
    for name, m in sorted(status.get("machines", {}).items()):
        s = seen.get(name, {})
        age = round(now - s["accepted_at"], 1) if "accepted_at" in s else m.get("age")
        addresses = s.get("addresses", {})
        rows.append(
            {
                "machine": name,
                "service": m.get("service"),
                "mode": m.get("mode"),
                "status": machine_status({**m, "age": age}),
                "health": m.get("health"),
                "version": m.get("version"),
                "running": m.get("running"),
                "generation": m.get("generation"),
                "applied_generation": m.get("applied_generation"),
                "age": age,
                "internal": addresses.get("internal", ""),
                "external": addresses.get("external", ""),
            }
        )
    return rows


def filter_rows(
    rows: list[dict[str, Any]], *, service: str | None, status: str | None, mode: str | None
) -> list[dict[str, Any]]:
    return [
        r
        for r in rows
        if (service is None or r["service"] == service)
        and (status is None or r["status"] == status)
        and (mode is None or r["mode"] == mode)
    ]


def rows_xml(rows: list[dict[str, Any]], status: dict[str, Any]) -> bytes:
    root = ET.Element(
        "machines",
        {"spec_revision": str(status.get("spec_revision", 0)), "at": str(status.get("at", ""))},
    )
    for r in rows:
        attrs = {
            k: "" if r[k] is None else str(r[k])
            for k in MACHINE_FIELDS
            if k not in ("machine", "internal", "external")
        }
        el = ET.SubElement(root, "machine", {"id": r["machine"], **attrs})
        for kind in ("internal", "external"):
            if r[kind]:
                ET.SubElement(el, "address", {"kind": kind}).text = r[kind]
    ET.indent(root)
    out: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return out + b"\n"


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
            got = store.get(info.key, max_bytes=16 * 1024 * 1024)
            if not isinstance(got, StoredObject):
                continue
            for line in got.body.splitlines():
                try:
                    ev = orjson.loads(line)
                except orjson.JSONDecodeError:
                    raise InvalidDocument(f"{store.describe(info.key)}: not JSON lines") from None
                if isinstance(ev, dict) and float(ev.get("t", 0)) >= since:
                    out.append(ev)
    out.sort(key=lambda e: (e.get("t", 0), e.get("cycle", 0)))
    return out


__all__ = [
    "HistoryEntry",
    "filter_rows",
    "history_diff",
    "history_entry",
    "history_seqs",
    "load_status",
    "machine_rows",
    "read_events",
    "rows_xml",
]
