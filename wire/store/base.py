"""The `Store` protocol: the one narrow port through which Bosun touches a bucket."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from wire.documents import MAX_DOCUMENT_BYTES
from wire.errors import ObjectMissing
from wire.records import record


@record
class StoredObject:
    """An object read from the bucket: its bytes and ETag."""

    key: str
    body: bytes
    etag: str  # quoted, as S3 returns it: '"9f2c..."'
    last_modified: float | None = None


@record
class NotModified:
    """The answer to a conditional GET whose object still has `etag` (304)."""

    key: str
    etag: str


@record
class Missing:
    """The answer to a GET of a key that holds no object (404)."""

    key: str


GetResult = StoredObject | NotModified | Missing


@record
class ObjectInfo:
    """One object of a listing: key, ETag, size and modification time."""

    key: str
    etag: str
    size: int
    last_modified: float


@runtime_checkable
class Store(Protocol):
    """A bucket. Keys are relative to the store root; a URL prefix is applied inside."""

    @property
    def url(self) -> str:
        """The store URL, for messages."""
        ...

    def get(
        self, key: str, *, if_none_match: str | None = None, max_bytes: int = MAX_DOCUMENT_BYTES
    ) -> GetResult:
        """The object; NotModified when its ETag equals `if_none_match`; Missing if absent.

        Raises DocumentTooLarge when the object is over `max_bytes` (at most max_bytes + 1
        bytes are read whatever the server claims).
        """
        ...

    def put(
        self,
        key: str,
        body: bytes,
        *,
        if_match: str | None = None,
        if_none_match: str | None = None,
        content_type: str = "application/json",
    ) -> str:
        """Write and return the new ETag. `if_none_match="*"` creates only; `if_match`
        writes only over that ETag. A failed condition raises WriteConflict."""
        ...

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object under `prefix`, in lexicographic key order, across all pages."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object; deleting a missing object is not an error."""
        ...

    def describe(self, key: str) -> str:
        """A full address for messages, e.g. s3://fleet/desired/web-7.json."""
        ...


def require(result: GetResult, store: Store) -> StoredObject:
    """The object, or ObjectMissing / a clear error for not-modified."""
    if isinstance(result, StoredObject):
        return result
    if isinstance(result, Missing):
        raise ObjectMissing(f"{store.describe(result.key)} does not exist")
    raise ObjectMissing(f"{store.describe(result.key)}: got not-modified without a cached copy")


def short_etag(etag: str | None) -> str:
    return (etag or "none").strip('"')[:8]
