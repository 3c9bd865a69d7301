"""Small, reusable spec checks: each adds a path-named problem and returns a safe value."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any, Literal

from wire import codec
from wire.durations import parse_duration
from wire.errors import InvalidDocument, SpecError
from wire.layout import SERVICE_NAME_PATTERN

_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+~-]{0,127}$")


class Problems:
    """Collects path-named problems; `raise_if_any` turns them into one SpecError."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        line = printable(f"{path}: {message}")  # hostile values must not make hostile messages
        self.items.append(line if len(line) <= 400 else line[:400] + " ...")

    def raise_if_any(self) -> None:
        if not self.items:
            return
        if len(self.items) == 1:
            raise SpecError(f"{self.source}: {self.items[0]}")
        lines = "\n".join(f"  {p}" for p in self.items)
        raise SpecError(f"{self.source}: {len(self.items)} problems:\n{lines}")


def printable(text: str) -> str:
    """`text` with control, format (e.g. U+202E right-to-left override) and separator
    characters escaped as \\uXXXX, so a hostile id cannot rewrite the terminal it is shown on."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in text)


def unknown_keys(p: Problems, path: str, raw: Mapping[Any, Any], allowed: tuple[str, ...]) -> None:
    for key in raw:
        if key not in allowed:
            where = f"{path}.{key}" if path else str(key)
            p.add(where, f"unknown key{suggest(str(key), allowed)}; allowed: {', '.join(allowed)}")


def suggest(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, sorted(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def duration_field(p: Problems, path: str, raw: object, default: float) -> float:
    if raw is None:
        return default
    seconds = parse_duration(raw)
    if seconds is None:
        p.add(path, f"bad duration {raw!r}: use a number of seconds or 10s, 5m, 1h, 1d")
        return default
    return seconds


def threshold_field(
    p: Problems, path: str, raw: object, default: float | Literal["off"] | None
) -> float | Literal["off"] | None:
    """A share of machines in (0, 1] (`0.55`, `55%`), or `off` (YAML's bare off is false)."""
    if raw is None:
        return default
    if raw is False or raw == "off":
        return "off"
    value: object = raw
    if isinstance(raw, str) and raw.endswith("%"):
        try:
            value = float(raw[:-1]) / 100
        except ValueError:
            value = raw
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        p.add(path, f"expected a share of machines in (0, 1] (0.55, 55%) or off, got {raw!r}")
        return default
    return float(value)


def version_ok(p: Problems, path: str, version: object, *, required: bool) -> bool:
    if version is None:
        if required:
            p.add(path, 'missing: the version to run (e.g. version: "2.4.1")')
        return not required
    if not isinstance(version, str):
        p.add(path, f'expected a string, got {got(version)} {version!r}; quote it: "{version}"')
        return False
    if not _VERSION.fullmatch(version):
        p.add(path, f"{version!r} is not a version: use letters, digits and . _ + ~ -")
        return False
    return True


def names_field(p: Problems, path: str, raw: object) -> tuple[str, ...] | None:
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        p.add(path, f"expected a list of names, got {got(raw)}")
        return None
    bad = [x for x in raw if not SERVICE_NAME_PATTERN.fullmatch(x)]
    if bad:
        p.add(path, f"{bad[0]!r} is not a name: use a-z, 0-9, '.', '_', '-'")
        return None
    return tuple(dict.fromkeys(raw))


def json_ok(p: Problems, path: str, value: object) -> bool:
    bad = _non_string_key(value, path)
    if bad:
        p.add(bad, "config keys must be strings; quote the key")
        return False
    try:
        codec.check_json(value, path)
    except InvalidDocument as exc:
        p.items.append(str(exc))
        return False
    return True


def _non_string_key(value: object, path: str) -> str | None:
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                return f"{path}.{k}"
            found = _non_string_key(v, f"{path}.{k}")
            if found:
                return found
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found = _non_string_key(v, f"{path}[{i}]")
            if found:
                return found
    return None


def got(value: object) -> str:
    return {str: "string", bool: "boolean", int: "integer", float: "number", list: "list",
            dict: "mapping", type(None): "nothing"}.get(type(value), type(value).__name__)  # fmt: skip


def fmt_seconds(seconds: float) -> str:
    return f"{seconds:g}s"
