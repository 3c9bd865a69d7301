"""A real DirectoryStore wrapped to record requests and inject faults at chosen calls."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from wire.store import DirectoryStore, GetResult, ObjectInfo

Fault = Callable[[str, str, dict[str, Any]], None]  # (op, key, kwargs) -> may raise


@dataclass
class Recording:
    inner: DirectoryStore
    calls: list[tuple[str, str]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    after_put: list[Callable[[str], None]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.inner.url

    def describe(self, key: str) -> str:
        return self.inner.describe(key)

    def _fault(self, op: str, key: str, kw: dict[str, Any]) -> None:
        for f in list(self.faults):
            f(op, key, kw)

    def get(self, key: str, **kw: Any) -> GetResult:
        self.calls.append(("GET", key))
        self._fault("GET", key, kw)
        return self.inner.get(key, **kw)

    def put(self, key: str, body: bytes, **kw: Any) -> str:
        self.calls.append(("PUT", key))
        self._fault("PUT", key, kw)
        etag = self.inner.put(key, body, **kw)
        for hook in self.after_put:
            hook(key)
        return etag

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        self.calls.append(("LIST", prefix))
        self._fault("LIST", prefix, {})
        return self.inner.list(prefix)

    def delete(self, key: str) -> None:
        self.calls.append(("DELETE", key))
        self.inner.delete(key)

    def puts(self) -> list[str]:
        return [k for op, k in self.calls if op == "PUT"]

    def reset(self) -> None:
        self.calls.clear()
