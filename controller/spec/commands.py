"""Operator records kept in a service's spec: `undo:` and `approval:`.

    services:
      web:
        version: "1.4"               # set back by the undo
        undo: {id: 12, to_revision: 9, version: "1.4", from_version: "1.5"}
        approval: {id: 14, version: "1.6", by: ana, reason: "canary dashboards clean"}

Each is written by a `bosun rollout` command as a new spec revision (`id` is that revision)
and acted on once by the planner, as `control:` is. They live next to `control:` rather than
in it: a later pause must not erase an approval's who and why, and a controller that does not
know the new actions must not mistake them for another command.
"""

from __future__ import annotations

from dataclasses import replace

from controller.spec.checks import Problems, got, unknown_keys, version_ok
from controller.spec.model import Approval, ClusterSpec, Undo
from wire.errors import SpecError

UNDO_KEYS = ("id", "to_revision", "version", "from_version")
APPROVAL_KEYS = ("id", "version", "by", "reason")
MAX_TEXT = 500  # characters of `by` and `reason`


def _revision(p: Problems, path: str, raw: object, what: str) -> int | None:
    if not isinstance(raw, int) or isinstance(raw, bool) or raw < 1:
        p.add(path, f"expected {what} (>= 1), got {raw!r}")
        return None
    return raw


def _text(p: Problems, path: str, raw: object, what: str) -> str | None:
    if not isinstance(raw, str) or not raw.strip():
        p.add(path, f"expected {what}, got {got(raw)}")
        return None
    if len(raw) > MAX_TEXT or not raw.isprintable():
        p.add(path, f"{what}: at most {MAX_TEXT} printable characters on one line")
        return None
    return raw


def parse_undo(p: Problems, path: str, raw: object) -> Undo | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        p.add(path, f"expected a mapping with {', '.join(UNDO_KEYS)}, got {got(raw)}")
        return None
    unknown_keys(p, path, raw, UNDO_KEYS)
    uid = _revision(p, f"{path}.id", raw.get("id"), "the spec revision that recorded it")
    to = _revision(p, f"{path}.to_revision", raw.get("to_revision"), "the revision returned to")
    version, from_version = raw.get("version"), raw.get("from_version")
    ok = version_ok(p, f"{path}.version", version, required=True)
    ok &= version_ok(p, f"{path}.from_version", from_version, required=True)
    if uid is None or to is None or not ok:
        return None
    if to >= uid:
        p.add(f"{path}.to_revision", f"{to} is not before the undo's own revision {uid}")
        return None
    return Undo(id=uid, to_revision=to, version=str(version), from_version=str(from_version))


def parse_approval(p: Problems, path: str, raw: object) -> Approval | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        p.add(path, f"expected a mapping with {', '.join(APPROVAL_KEYS)}, got {got(raw)}")
        return None
    unknown_keys(p, path, raw, APPROVAL_KEYS)
    aid = _revision(p, f"{path}.id", raw.get("id"), "the spec revision that recorded it")
    version = raw.get("version")
    ok = version_ok(p, f"{path}.version", version, required=True)
    by = _text(p, f"{path}.by", raw.get("by"), "who approved")
    reason = _text(p, f"{path}.reason", raw.get("reason"), "why it was approved")
    if aid is None or not ok or by is None or reason is None:
        return None
    return Approval(id=aid, version=str(version), by=by, reason=reason)


def with_undo(
    spec: ClusterSpec, service: str, *, to_revision: int, target: ClusterSpec
) -> ClusterSpec:
    """The spec with SERVICE's version and config set back to those of `target` (revision
    `to_revision`) and an `undo:` record (id = next revision)."""
    svc = spec.services[service]
    old = target.services.get(service)
    if old is None:
        raise SpecError(f"rollout undo: revision {to_revision} has no service {service!r}")
    if (old.version, old.config) == (svc.version, svc.config):
        raise SpecError(
            f"rollout undo: revision {to_revision} has the release {service} runs in revision "
            f"{spec.revision} (version {svc.version}, same config); nothing to undo"
        )
    undo = Undo(
        id=spec.revision + 1, to_revision=to_revision, version=old.version,
        from_version=svc.version,
    )  # fmt: skip
    new = replace(svc, version=old.version, config=old.config, undo=undo)
    return replace(spec, services={**spec.services, service: new})


def with_approval(spec: ClusterSpec, service: str, *, by: str, reason: str) -> ClusterSpec:
    """The spec with an `approval:` for SERVICE's rollout to its spec version."""
    svc = spec.services[service]
    p = Problems("rollout approve")
    _text(p, "--by", by, "who approves")
    _text(p, "--reason", reason, "why (--reason)")
    p.raise_if_any()
    approval = Approval(id=spec.revision + 1, version=svc.version, by=by, reason=reason)
    return replace(spec, services={**spec.services, service: replace(svc, approval=approval)})
