"""Durations as operators write them: 30, 2.5, "30", "250ms", "30s", "5m", "1h", "1d".

Shared by the agent's config and the controller's spec so both read durations the same way.
"""

from __future__ import annotations

import math
import re

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?")  # no unit: seconds ("30" from env)
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: object) -> float | None:
    """Seconds, or None when `value` is not a non-negative duration (booleans included)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) and value >= 0 else None
    if isinstance(value, str):
        match = _DURATION.fullmatch(value.strip())
        if match:
            return float(match.group(1)) * _UNITS[match.group(2)]
    return None


def format_duration(seconds: float) -> str:
    """The shortest exact form: 30s, 5m, 1h, 1.5s, 250ms."""
    for unit in ("d", "h", "m", "s"):
        size = _UNITS[unit]
        if seconds >= size and (seconds / size).is_integer():
            return f"{int(seconds / size)}{unit}"
    if seconds < 1 and (seconds * 1000).is_integer():
        return f"{int(seconds * 1000)}ms"
    return f"{seconds:g}s"
