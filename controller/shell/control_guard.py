"""The controller's view of its signed control objects: high-water marks and refusals.

A control object (wire.control) is accepted only when it verifies with the control key
and its version is at least the highest this controller has seen of it: in this process,
in its state directory (`bosun controller once`), or recorded in the `marks` of another
control object it verified (memory records the versions of keys and intake, and so on).
Anything else is refused, counted once per object version and shown in status
(`control_refused`); the cycle keeps the last good copy it holds
(docs/security.md#signed-control-objects).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from controller.status_document import ControlRefusal
from wire import codec
from wire.control import Sealed, open_control, seal_control
from wire.errors import ControlRefused, InvalidDocument
from wire.signing import derive_control_key

log = logging.getLogger(__name__)


@dataclass
class ControlGuard:
    key: bytes = field(repr=False)
    marks: dict[str, int] = field(default_factory=dict)
    refused: dict[str, ControlRefusal] = field(default_factory=dict)
    _counted: dict[str, str | None] = field(default_factory=dict)  # object -> refused ETag

    @classmethod
    def for_master(cls, master: bytes) -> ControlGuard:
        return cls(derive_control_key(master))

    def needed(self, object_key: str) -> int:
        return self.marks.get(object_key, 0)

    def open(
        self, object_key: str, raw: bytes | None, etag: str | None, now: float
    ) -> Sealed | None:
        """The verified object, or None after recording why it is refused. `raw` None: the
        object is missing (refused only when a version of it was seen)."""
        needed = self.needed(object_key)
        if raw is None:
            if needed:
                self.refuse(
                    object_key,
                    "deleted",
                    f"{object_key} is missing but version {needed} of it was seen: restore "
                    "it from a noncurrent version",
                    None,
                    now,
                )
            return None
        try:
            sealed = open_control(raw, object_key, self.key)
        except ControlRefused as exc:
            self.refuse(object_key, exc.reason, str(exc), etag, now)
            return None
        if sealed.version < needed:
            self.refuse(
                object_key,
                "rolled_back",
                f"{object_key} is at version {sealed.version}, below version {needed} "
                "already seen (an older copy put back)",
                etag,
                now,
            )
            return None
        self.accept(object_key, sealed)
        return sealed

    def accept(self, object_key: str, sealed: Sealed) -> None:
        self.marks[object_key] = max(self.needed(object_key), sealed.version)
        for other, version in sealed.marks.items():
            if other != object_key:
                self.marks[other] = max(self.needed(other), version)
        self.resolved(object_key)

    def resolved(self, object_key: str) -> None:
        old = self.refused.get(object_key)
        if old is not None and old.active:
            self.refused[object_key] = ControlRefusal(
                old.count, old.reason, old.detail, old.at, active=False
            )
        self._counted.pop(object_key, None)

    def refuse(
        self, object_key: str, reason: str, detail: str, etag: str | None, now: float
    ) -> None:
        if object_key in self._counted and self._counted[object_key] == etag:
            return  # the same refused version, read again: counted once
        self._counted[object_key] = etag
        old = self.refused.get(object_key)
        count = (old.count if old else 0) + 1
        self.refused[object_key] = ControlRefusal(count, reason, detail, now)
        log.error("control.refused %s (%s): %s", object_key, reason, detail)

    def seal(self, object_key: str, value: dict[str, object]) -> tuple[bytes, int]:
        """The signed bytes of the next version of `object_key`, and that version."""
        version = self.needed(object_key) + 1
        marks = {k: v for k, v in self.marks.items() if k != object_key}
        return seal_control(self.key, object_key, value, version=version, marks=marks), version

    def saved(self, object_key: str, version: int) -> None:
        self.marks[object_key] = max(self.needed(object_key), version)
        self.resolved(object_key)

    def export(self) -> dict[str, int]:
        return dict(self.marks)

    def restore(self, marks: dict[str, int]) -> None:
        for k, v in marks.items():
            if isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool):
                self.marks[k] = max(self.needed(k), v)

    def export_refusals(self) -> dict[str, object]:
        return {
            "refused": codec.encode(self.refused),
            "counted": {k: v for k, v in self._counted.items()},
        }

    def restore_refusals(self, saved: dict[str, object]) -> None:
        """Refusal counts and the versions already counted, as `export_refusals` kept them
        (a damaged copy is ignored: counting again is the only cost)."""
        refused, counted = saved.get("refused"), saved.get("counted")
        try:
            if isinstance(refused, dict):
                self.refused.update(codec.decode(dict[str, ControlRefusal], refused, "refused"))
            if isinstance(counted, dict):
                self._counted.update(
                    {str(k): v for k, v in counted.items() if v is None or isinstance(v, str)}
                )
        except InvalidDocument:
            return
