"""The JSON form of a spec (`spec/current.json`, `spec/history/<rev>.json`) and YAML output.

    {"format": "bosun.spec/1", "revision": 7, "applied_at": 1764030000.0,
     "settings": {...seconds...}, "services": {...}}

Decoding is strict (wire.codec) and re-runs the cross-service checks, so a hand-edited
object in the bucket cannot smuggle in a cycle or an unknown target.
"""

from __future__ import annotations

from typing import Any

import yaml

from controller.spec.load import Problems, check_semantics
from controller.spec.model import SPEC_FORMAT, ClusterSpec
from wire import codec
from wire.documents import dumps_pretty, loads_object
from wire.errors import InvalidDocument, SpecError


def to_value(spec: ClusterSpec) -> dict[str, Any]:
    """The plain value of a spec (no format/applied_at), with empty defaults kept."""
    value: dict[str, Any] = codec.encode(spec)
    return value


def to_json(spec: ClusterSpec, *, applied_at: float) -> bytes:
    value = to_value(spec)
    return dumps_pretty({"format": SPEC_FORMAT, "applied_at": applied_at, **value})


def from_json(raw: bytes, *, where: str = "spec/current.json") -> tuple[ClusterSpec, float]:
    """(spec, applied_at) from a stored spec document; InvalidDocument/SpecError if bad."""
    value = loads_object(raw, where=where)
    fmt = value.pop("format", None)
    if fmt != SPEC_FORMAT:
        raise InvalidDocument(f"{where}.format: expected {SPEC_FORMAT!r}, got {fmt!r}")
    applied_at = value.pop("applied_at", None)
    if not isinstance(applied_at, (int, float)) or isinstance(applied_at, bool):
        raise InvalidDocument(f"{where}.applied_at: expected a number, got {applied_at!r}")
    spec: ClusterSpec = codec.decode(ClusterSpec, value, where)
    p = Problems(where)
    check_semantics(p, spec, {})
    p.raise_if_any()
    return spec, float(applied_at)


def to_yaml(spec: ClusterSpec) -> str:
    """Human YAML of a spec (durations in seconds, defaults spelled out): for show and diff."""
    value = to_value(spec)
    value.pop("revision", None)
    return yaml.safe_dump(_plain(value), sort_keys=True, default_flow_style=False, width=100)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def same_content(a: ClusterSpec, b: ClusterSpec) -> bool:
    """Equal apart from the revision number."""
    return to_value(a) | {"revision": 0} == to_value(b) | {"revision": 0}


__all__ = ["SpecError", "from_json", "same_content", "to_json", "to_value", "to_yaml"]
