"""`DirectoryStore`: a bucket in a local directory (`file:///abs/path`).

Same semantics as S3 for what Bosun uses: atomic writes (temp file, fsync, rename,
directory fsync), quoted-MD5 ETags, conditional GET and PUT made atomic by striped
`flock` locks shared by every process on the machine, lexicographic listing, and refusal
of any key that would escape the root.
"""

from __future__ import annotations

import fcntl
import functools
import os
import sys
import threading
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from wire.atomic import TMP_PREFIX, write_atomic
from wire.builtin_hashes import builtin
from wire.documents import MAX_DOCUMENT_BYTES
from wire.errors import DocumentTooLarge, StoreConfigError, StoreUnavailable, WriteConflict
from wire.store.base import GetResult, Missing, NotModified, ObjectInfo, StoredObject, short_etag

INTERNAL = ".bosun-store"  # lock files live here; never listed
_STRIPES = 64
_ETAG_CACHE = (
    4_000_000  # entries (~300 bytes each): a fleet of 1,000,000 machines lists 2,000,000 objects
)


def md5_etag(data: bytes) -> str:
    """The ETag S3 gives an object written in one PUT: the MD5 of its bytes, quoted. With
    OpenSSL's MD5 once `hashlib` is loaded anyway (the controller signs with it: twice as
    fast on a few KB), else with Python's built-in one, so that an agent's steady cycle does
    not load OpenSSL (~2 ms) for it; the same digest either way."""
    hashlib = sys.modules.get("hashlib")
    if hashlib is not None:
        return '"' + str(hashlib.md5(data, usedforsecurity=False).hexdigest()) + '"'
    return '"' + str(_builtin_md5()(data).hexdigest()) + '"'


@functools.cache
def _builtin_md5() -> Callable[[bytes], Any]:
    return builtin("md5", "_md5")


class DirectoryStore:
    def __init__(self, root: Path | str, *, create: bool = True) -> None:
        self.root = Path(root).absolute()
        if create:
            self.root.mkdir(parents=True, exist_ok=True)
        if not self.root.is_dir():
            raise StoreConfigError(
                f"file://{self.root}: not a directory; check the path "
                "(`bosun spec apply` creates a new one)"
            )
        (self.root / INTERNAL).mkdir(exist_ok=True)
        # path -> (inode, mtime, size) and the MD5 ETag of the bytes it had then: one entry
        # a file, so a listing of N objects re-hashes only the files that changed
        self._etags: dict[str, tuple[tuple[int, int, int], str]] = {}
        self._thread_locks = [threading.Lock() for _ in range(_STRIPES)]

    @property
    def url(self) -> str:
        return f"file://{self.root}"

    def describe(self, key: str) -> str:
        return f"file://{self.root}/{key}"

    # ---- keys -----------------------------------------------------------------------------

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if (
            not key
            or key.startswith("/")
            or "\\" in key
            or "\x00" in key
            or any(p in ("", ".", "..") for p in parts)
            or parts[0] == INTERNAL
            or parts[-1].startswith(TMP_PREFIX)
        ):
            raise StoreConfigError(
                f"refusing key {key!r}: it is empty, absolute or escapes the store root"
            )
        path = self.root.joinpath(*parts)
        if not path.resolve().is_relative_to(self.root.resolve()):
            raise StoreConfigError(
                f"refusing key {key!r}: it escapes the store root through a link"
            )
        return path

    def _etag_of(self, path: Path | str, st: os.stat_result) -> str:
        ident = (st.st_ino, st.st_mtime_ns, st.st_size)
        name = str(path)
        known = self._etags.get(name)
        if known is not None and known[0] == ident:
            return known[1]
        with open(name, "rb") as f:
            etag = md5_etag(f.read())
        if len(self._etags) > _ETAG_CACHE:
            self._etags.clear()
        self._etags[name] = (ident, etag)
        return etag

    @contextmanager
    def _locked(self, key: str) -> Iterator[None]:
        stripe = zlib.crc32(key.encode()) % _STRIPES
        with self._thread_locks[stripe]:
            fd = os.open(self.root / INTERNAL / f"lock-{stripe:02d}", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)

    # ---- operations -----------------------------------------------------------------------

    def get(
        self, key: str, *, if_none_match: str | None = None, max_bytes: int = MAX_DOCUMENT_BYTES
    ) -> GetResult:
        path = self._path(key)
        try:
            with open(path, "rb") as fh:
                st = os.fstat(fh.fileno())
                if st.st_size > max_bytes:
                    raise DocumentTooLarge(
                        f"{self.describe(key)}: {st.st_size} bytes is over the {max_bytes}-byte cap"
                    )
                data = fh.read(max_bytes + 1)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return Missing(key)
        except OSError as exc:
            raise StoreUnavailable(f"{self.describe(key)}: {exc.strerror}") from exc
        if len(data) > max_bytes:
            raise DocumentTooLarge(f"{self.describe(key)}: over the {max_bytes}-byte cap")
        etag = md5_etag(data)
        if if_none_match is not None and if_none_match in (etag, "*"):
            return NotModified(key, etag)
        return StoredObject(key, data, etag, st.st_mtime)

    def _current_etag(self, path: Path) -> str | None:
        try:
            return md5_etag(path.read_bytes())
        except (FileNotFoundError, NotADirectoryError):
            return None

    def put(
        self,
        key: str,
        body: bytes,
        *,
        if_match: str | None = None,
        if_none_match: str | None = None,
        content_type: str = "application/json",
    ) -> str:
        if if_none_match not in (None, "*"):
            raise ValueError("put supports only if_none_match='*' (create-only)")
        path = self._path(key)
        with self._locked(key):
            if if_match is not None or if_none_match is not None:
                current = self._current_etag(path)
                if if_none_match == "*" and current is not None:
                    raise WriteConflict(
                        f"{self.describe(key)} already exists (etag {short_etag(current)}); "
                        "create-only write refused"
                    )
                if if_match is not None and current != if_match:
                    raise WriteConflict(
                        f"{self.describe(key)} changed since it was read "
                        f"(etag {short_etag(if_match)} -> {short_etag(current)})"
                    )
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                write_atomic(path, body, 0o644)
            except OSError as exc:
                raise StoreUnavailable(
                    f"{self.describe(key)}: write failed: {exc.strerror}"
                ) from exc
        return md5_etag(body)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        # Walk only the directory that can hold the prefix, then sort like S3 (by key).
        base_dir = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = self.root / base_dir if base_dir else self.root
        if base_dir and (
            ".." in base_dir.split("/") or not start.resolve().is_relative_to(self.root)
        ):
            raise StoreConfigError(f"refusing prefix {prefix!r}: it escapes the store root")
        found: list[tuple[str, str]] = []
        for dirpath, dirnames, filenames in os.walk(start):
            rel_dir = os.path.relpath(dirpath, self.root)
            rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
            dirnames[:] = [d for d in dirnames if not (rel_dir == "" and d == INTERNAL)]
            for name in filenames:
                if name.startswith(TMP_PREFIX):
                    continue
                key = rel_dir + name
                if key.startswith(prefix):
                    found.append((key, os.path.join(dirpath, name)))
        found.sort(key=lambda item: item[0].encode())
        for key, path in found:
            try:
                st = os.stat(path)
                etag = self._etag_of(path, st)
            except FileNotFoundError:
                continue
            yield ObjectInfo(key=key, etag=etag, size=st.st_size, last_modified=st.st_mtime)

    def delete(self, key: str) -> None:
        path = self._path(key)
        with self._locked(key), suppress(FileNotFoundError):
            path.unlink()
