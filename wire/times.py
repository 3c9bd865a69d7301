"""Instants in the bucket's documents: ISO 8601 UTC on the wire, float Unix seconds in memory.

    1796669825.646  <->  "2026-12-07T18:57:05.646Z"

Written with milliseconds, always `Z`; the conversion rounds to the nearest millisecond, so
a value read back and written again gives the same text (a signed or digested document
re-encoded is byte-identical). Read: that form (1 to 9 fraction digits or none, `Z` or
`+00:00`) and, from documents written before ISO times, a JSON number of Unix seconds.
Either way the instant must lie in years 1970 to 9999: anything else is refused naming
its field, before a hostile value can reach a formatter.

Peers that predate ISO times refuse strings where they expect numbers, so the two signed
documents that cross between agent and controller are written as numbers until the other
end is known to read ISO (`reads_iso_times`, `holds_iso_times`; docs/agent.md#times-in-documents).
"""

from __future__ import annotations

import calendar
import functools
import re
import time
from typing import Any, Literal

from wire.errors import InvalidDocument

TIME = "bosun.time"
"""The marker in `Annotated[float, TIME]` (wire.codec.Timestamp)."""

TimeForm = Literal["iso", "epoch"]
EXAMPLE = "a UTC time like 2026-12-07T18:57:05.646Z"

MAX_TIME = 253402300800.0  # 10000-01-01T00:00:00Z
ISO_TIMES_SINCE = (0, 2)
"""The first agent version (major, minor) that reads ISO times in desired documents."""

_SECOND = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})", re.ASCII)
_ZONE = re.compile(r".{19}(?:\.(\d{1,9}))?(?:Z|\+00:00)", re.ASCII | re.DOTALL)
_VERSION = re.compile(r"(\d{1,6})\.(\d{1,6})\b", re.ASCII)


_KINDS = {bool: "boolean", type(None): "null", list: "array", dict: "object"}
_MILLIS = tuple(f".{i:03d}Z" for i in range(1000))


@functools.lru_cache(maxsize=4096)
def _second(secs: int) -> str:
    """`YYYY-MM-DDTHH:MM:SS` of a whole second: a cycle's times share a few hundred."""
    t = time.gmtime(secs)
    return (
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T"
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
    )


def format_time(t: float) -> str:
    """`t` (Unix seconds) as `YYYY-MM-DDTHH:MM:SS.mmmZ`, rounded to the millisecond."""
    ms = round(t * 1000)
    if not 0 <= ms < MAX_TIME * 1000:  # a bug: decoding refuses such values
        raise ValueError(f"time {t!r} is outside years 1970-9999")
    secs, frac = divmod(ms, 1000)
    return _second(secs) + _MILLIS[frac]


@functools.lru_cache(maxsize=4096)
def _parse_second(text: str) -> int | str:
    """Unix seconds of `YYYY-MM-DDTHH:MM:SS`, or what is wrong with it."""
    m = _SECOND.fullmatch(text)
    if m is None:
        return ""
    year, month, day, hour, minute, second = (int(g) for g in m.groups())
    if not (1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]) or (
        hour > 23 or minute > 59 or second > 59
    ):
        return f"{text!r} is not a valid date and time"
    if year < 1970:
        return f"{text!r} is before 1970"
    return calendar.timegm((year, month, day, hour, minute, second))


def parse_time(value: Any, path: str) -> float:
    """Unix seconds from an ISO 8601 UTC string or (older documents) a number;
    InvalidDocument naming `path` otherwise."""
    if isinstance(value, str):
        if len(value) == 24 and value[19] == "." and value[23] == "Z":
            frac = value[20:23]  # what format_time writes: the fast path
        else:
            m = _ZONE.fullmatch(value)
            frac = (m.group(1) or "") if m is not None else "x"
        seconds = _parse_second(value[:19]) if value.isascii() else ""
        if seconds == "" or not (frac.isdigit() or frac == ""):
            raise InvalidDocument(f"{path}: expected {EXAMPLE}, got {value[:40]!r}")
        if isinstance(seconds, str):
            raise InvalidDocument(f"{path}: {seconds}")
        return seconds + (int(frac) / 10 ** len(frac) if frac else 0.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        kind = _KINDS.get(type(value), type(value).__name__)
        raise InvalidDocument(f"{path}: expected {EXAMPLE}, got {kind}")
    if not 0 <= value < MAX_TIME:
        raise InvalidDocument(
            f"{path}: time {value!r} is outside years 1970-9999 (Unix seconds expected)"
        )
    return float(value)


def reads_iso_times(agent_version: str) -> bool:
    """Whether an agent of this version reads ISO times in its desired document (from
    0.2); an unreadable version is taken as an older agent (numbers are safe for both)."""
    m = _VERSION.match(agent_version)
    return m is not None and (int(m.group(1)), int(m.group(2))) >= ISO_TIMES_SINCE


def holds_iso_times(body: dict[str, Any]) -> bool:
    """Whether a desired document's body was written with ISO times: its controller reads
    them in snapshots, so the agent may write them too."""
    return isinstance(body.get("issued_at"), str)
