"""Secret config values in a spec (docs/spec.md#secrets, docs/security.md#secrets).

In the YAML an operator writes, a config value is a secret when it is a one-key mapping:

    config:
      db_password: {secret_file: ./secrets/db_password}   # read at apply time (relative to
                                                           # the spec file), trailing newline cut
      api_token: {secret_env: API_TOKEN}                   # from the environment of `spec apply`
      smtp_password: {secret: "literal value"}             # in the file itself (discouraged)

`bosun spec apply` replaces each by `{"$secret": "sealed1:..."}`, sealed to the controller's
X25519 key (wire.pubkeys), before anything is written: the bucket never holds the value.
A value already in that form (from `bosun spec show`) is kept as it is. Only the controller
opens it; it hands each machine its own encryption (wire.secret_box).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from controller.spec.model import ClusterSpec
from wire.errors import SpecError
from wire.secret_box import MARK, find_secrets, map_secrets

FORMS = ("secret", "secret_file", "secret_env")
MAX_SECRET = 64 * 1024
SPEC_SECRET_AAD = b"bosun/spec-secret/1"


def _form(value: object) -> tuple[str, object] | None:
    if isinstance(value, dict) and len(value) == 1:
        ((k, v),) = value.items()
        if k in FORMS:
            return k, v
    return None


def _map_forms(value: Any, fn: Callable[[str, str, object], Any], path: str) -> Any:
    found = _form(value)
    if found is not None:
        return fn(path, *found)
    if isinstance(value, dict):
        return {k: _map_forms(v, fn, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_map_forms(v, fn, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def _configs(spec: ClusterSpec) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for name, svc in spec.services.items():
        out.append((f"services.{name}.config", svc.config))
        for o in svc.overrides:
            out.append((f"services.{name}.overrides[{o.id}].config", o.config))
    return out


def with_configs(spec: ClusterSpec, fn: Callable[[str, Any], Any]) -> ClusterSpec:
    services = {}
    for name, svc in spec.services.items():
        overrides = tuple(
            replace(o, config=fn(f"services.{name}.overrides[{o.id}].config", o.config))
            for o in svc.overrides
        )
        config = fn(f"services.{name}.config", svc.config)
        services[name] = replace(svc, config=config, overrides=overrides)
    return replace(spec, services=services)


def plain_secrets(spec: ClusterSpec) -> list[str]:
    """Paths of the secret values still to seal (`secret`, `secret_file`, `secret_env`)."""
    found: list[str] = []

    def note(path: str, kind: str, raw: object) -> object:
        found.append(path)
        return raw

    for base, config in _configs(spec):
        _map_forms(config, note, base)
    return found


def sealed_secrets(spec: ClusterSpec) -> list[tuple[str, str]]:
    """(path, token) of every `{"$secret": ...}` value in the spec's configs."""
    return [(f"{base}.{p}", t) for base, config in _configs(spec) for p, t in find_secrets(config)]


def seal_spec(
    spec: ClusterSpec,
    seal: Callable[[bytes], str],
    *,
    base_dir: Path,
    environ: Mapping[str, str] | None = None,
) -> ClusterSpec:
    """`spec` with each plain secret form read and sealed by `seal`; SpecError naming the
    path (never the value) when one cannot be read."""
    env = os.environ if environ is None else environ

    def one(path: str, kind: str, raw: object) -> dict[str, str]:
        if not isinstance(raw, str) or not raw:
            raise SpecError(f"{path}.{kind}: expected a non-empty string")
        if kind == "secret":
            value = raw.encode()
        elif kind == "secret_env":
            if raw not in env:
                raise SpecError(
                    f"{path}.secret_env: {raw} is not set in the environment; export it for "
                    "`bosun spec apply` (or use secret_file: PATH)"
                )
            value = env[raw].encode()
        else:
            file = Path(raw) if Path(raw).is_absolute() else base_dir / raw
            try:
                value = file.read_bytes().removesuffix(b"\n")
            except OSError as exc:
                raise SpecError(
                    f"{path}.secret_file: cannot read {file} ({exc.strerror})"
                ) from None
        if len(value) > MAX_SECRET:
            raise SpecError(f"{path}: a secret is at most {MAX_SECRET} bytes")
        return {MARK: seal(value)}

    return with_configs(spec, lambda base, config: _map_forms(config, one, base))


def masked(value: Any) -> Any:
    """`value` with every secret (plain form or sealed) shown as `<secret>` (for diffs)."""
    value = map_secrets(value, lambda _p, _t: "<secret>")
    return _map_forms(value, lambda _p, _k, _r: "<secret>", "")
