"""The JSON form of a spec (`spec/current.json`, `spec/history/<rev>.json`) and YAML output.

    {"format": "bosun.spec/1", "revision": 7, "applied_at": "2026-12-07T18:57:05.646Z",
     "settings": {...seconds...}, "services": {...}}

Decoding is strict (wire.codec) and re-runs the cross-service checks, so a hand-edited
object in the bucket cannot smuggle in a cycle or an unknown target.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import yaml

from controller.spec.coupled import check_coupled
from controller.spec.load import Problems, check_semantics
from controller.spec.model import SPEC_FORMAT, ClusterSpec
from controller.spec.signature import (
    Provenance,
    Signer,
    SpecTrust,
    provenance_of,
    sign_value,
    verify_value,
)
from wire import codec
from wire.documents import dumps_pretty, loads_object
from wire.errors import InvalidDocument, SpecError
from wire.times import format_time, parse_time


@dataclass(frozen=True, slots=True)
class Stored:
    """A stored revision: the spec, when it was applied, and who applied it."""

    spec: ClusterSpec
    applied_at: float
    provenance: Provenance = field(default_factory=Provenance)


def to_value(spec: ClusterSpec) -> dict[str, Any]:
    """The plain value of a spec (no format/applied_at), with empty defaults kept."""
    value: dict[str, Any] = codec.encode(spec)
    return value


def to_json(
    spec: ClusterSpec,
    *,
    applied_at: float,
    applied_by: str = "",
    message: str = "",
    signer: Signer | None = None,
) -> bytes:
    """The stored form; with `signer`, signed by that operator (who applied it is then the
    operator's listed name)."""
    value: dict[str, Any] = {
        "format": SPEC_FORMAT,
        "applied_at": format_time(applied_at),
        **to_value(spec),
    }
    by = signer.name if signer is not None else applied_by
    if by:
        value["applied_by"] = by
    if message:
        value["message"] = message
    if signer is not None:
        value = sign_value(value, signer)
    return dumps_pretty(value)


def from_json(raw: bytes, *, where: str = "spec/current.json") -> tuple[ClusterSpec, float]:
    """(spec, applied_at) from a stored spec document; InvalidDocument/SpecError if bad
    (the signature is not checked: `read_stored` with a trust does)."""
    stored = read_stored(raw, where=where)
    return stored.spec, stored.applied_at


def read_stored(raw: bytes, *, where: str, trust: SpecTrust | None = None) -> Stored:
    """A stored revision, its signature checked against `trust` when one is given
    (SpecUnverified when it does not verify: signature.verify_value)."""
    value = loads_object(raw, where=where)
    verified_by = verify_value(value, trust, where) if trust is not None else None
    provenance = replace(provenance_of(value, where), verified_by=verified_by)
    value.pop("signature", None)
    fmt = value.pop("format", None)
    if fmt != SPEC_FORMAT:
        raise InvalidDocument(f"{where}.format: expected {SPEC_FORMAT!r}, got {fmt!r}")
    applied_at = parse_time(value.pop("applied_at", None), f"{where}.applied_at")
    spec: ClusterSpec = codec.decode(ClusterSpec, value, where)
    p = Problems(where)
    check_semantics(p, spec, {})
    spec = check_coupled(p, spec, {})
    p.raise_if_any()
    return Stored(spec, applied_at, provenance)


def to_yaml(spec: ClusterSpec) -> str:
    """Human YAML of a spec in the form `bosun spec apply` reads (durations in seconds,
    defaults spelled out, unset fields left out): for show and diff. `load_yaml` of it
    gives back the same spec, so `spec show | spec apply` changes nothing."""
    return yaml.safe_dump(operator_value(spec), sort_keys=True, default_flow_style=False, width=100)


def operator_value(spec: ClusterSpec) -> dict[str, Any]:
    """The spec as an operator writes it: steps as `{canary: 1, bake: ...}`, an autoscaled
    service's `count` as the scaler's start (the stored count is its max), no revision."""
    value = _plain(to_value(spec))
    value.pop("revision", None)
    if value.get("rollout") is not None:
        value["rollout"] = _rollout(value["rollout"])
    for name, svc in value.get("services", {}).items():
        if svc.get("rollout") is not None:
            svc["rollout"] = _rollout(svc["rollout"])
        scale = svc.get("scale")
        if scale is not None:
            svc["count"] = scale.pop("start", spec.services[name].count)
        for key in ("health", "sessions", "control", "scale", "undo", "approval"):
            if isinstance(svc.get(key), dict):
                svc[key] = _set_only(svc[key])
        value["services"][name] = _set_only(svc)
    value["settings"] = _set_only(value.get("settings", {}))
    return _set_only(value)


def _rollout(value: dict[str, Any]) -> dict[str, Any]:
    value["steps"] = [_step(step) for step in value.get("steps", [])]
    value["gates"] = _set_only(value.get("gates", {}))
    return _set_only(value)


def _step(step: dict[str, Any]) -> dict[str, Any]:
    kind = step["kind"]
    if kind == "approve":
        return {"approve": {}}
    number = step.get("number", 0.0)
    out: dict[str, Any] = {}
    if kind == "select":
        out["select"] = step["select"]
    elif kind == "percent":
        out["percent"] = int(number) if float(number).is_integer() else number
    else:
        out[kind] = int(number)
    if step.get("weight") is not None:
        out["weight"] = step["weight"]
    out["bake"] = step.get("bake", 0.0)
    return out


def _set_only(value: dict[str, Any]) -> dict[str, Any]:
    """`value` without its unset (null) fields: the loader gives them the same default.
    Only for fields of the spec's own types, never inside config (null is a value there)."""
    return {k: v for k, v in value.items() if v is not None}


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def same_content(a: ClusterSpec, b: ClusterSpec) -> bool:
    """Equal apart from the revision number."""
    return to_value(a) | {"revision": 0} == to_value(b) | {"revision": 0}


__all__ = [
    "SpecError",
    "Stored",
    "from_json",
    "operator_value",
    "read_stored",
    "same_content",
    "to_json",
    "to_value",
    "to_yaml",
]  # fmt: skip
