"""Bucket clients behind one protocol, opened from a store URL.

    s3://bucket[/prefix][?endpoint=http://127.0.0.1:8333&region=us-east-1&path_style=true]
    file:///abs/path

`open_store(url)` returns a `Store`; the S3 backend (`wire.store.s3`, on obstore) is imported
only when an s3:// URL is opened. Agent, controller and operator commands use the same client;
`open_agent_store` is `open_store` with the agent's settings (a bucket it never creates).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from wire.errors import StoreConfigError
from wire.retry import RetryPolicy
from wire.store.base import (
    GetResult,
    Missing,
    NotModified,
    ObjectInfo,
    Store,
    StoredObject,
    require,
)
from wire.store.directory import DirectoryStore

if TYPE_CHECKING:
    from wire.store.s3 import S3Store, Timeouts

__all__ = [
    "DirectoryStore",
    "GetResult",
    "Missing",
    "NotModified",
    "ObjectInfo",
    "Store",
    "StoredObject",
    "open_agent_store",
    "open_store",
    "parse_store_url",
    "require",
]

USAGE = "expected s3://bucket[/prefix][?endpoint=URL&region=R] or file:///absolute/path"
_S3_OPTIONS = {"endpoint", "region", "path_style"}


def parse_store_url(url: str) -> tuple[str, dict[str, str]]:
    """Split a store URL into its scheme and parts; StoreConfigError names what is wrong."""
    if not isinstance(url, str) or not url.strip():
        raise StoreConfigError(f"empty store URL; {USAGE}")
    parts = urlsplit(url.strip())
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise StoreConfigError(
                f"bad store URL {url!r}: a file URL needs an absolute path (file:///srv/bucket)"
            )
        if parts.query:
            raise StoreConfigError(f"bad store URL {url!r}: file URLs take no options")
        return "file", {"path": parts.path}
    if parts.scheme == "s3":
        bucket = parts.netloc
        if not bucket or not all(c.isalnum() or c in ".-_" for c in bucket):
            raise StoreConfigError(
                f"bad store URL {url!r}: missing or invalid bucket name; {USAGE}"
            )
        query = parse_qs(parts.query, keep_blank_values=True)
        unknown = sorted(set(query) - _S3_OPTIONS)
        if unknown:
            raise StoreConfigError(
                f"bad store URL {url!r}: unknown option {unknown[0]!r} (allowed: {', '.join(sorted(_S3_OPTIONS))})"
            )
        out = {"bucket": bucket, "prefix": parts.path.strip("/")}
        for name, values in query.items():
            if len(values) != 1 or not values[0]:
                raise StoreConfigError(f"bad store URL {url!r}: option {name!r} needs one value")
            out[name] = values[0]
        endpoint = out.get("endpoint")
        if endpoint is not None and urlsplit(endpoint).scheme not in ("http", "https"):
            raise StoreConfigError(f"bad store URL {url!r}: endpoint must be an http(s) URL")
        if out.get("path_style", "true") not in ("true", "false"):
            raise StoreConfigError(f"bad store URL {url!r}: path_style must be true or false")
        return "s3", out
    raise StoreConfigError(f"bad store URL {url!r}: unknown scheme {parts.scheme!r}; {USAGE}")


def open_store(
    url: str,
    *,
    retry: RetryPolicy | None = None,
    timeouts: Timeouts | None = None,
    create: bool = True,
) -> Store:
    """The store a URL names: the directory backend or the one S3 client. `create=False`
    (every reader): a file:// directory that does not exist is an error, as for the agent,
    never created by a typo."""
    scheme, parts = parse_store_url(url)
    if scheme == "file":
        return DirectoryStore(parts["path"], create=create)
    return _s3(parts, retry=retry, timeouts=timeouts)


def open_agent_store(
    url: str,
    *,
    timeouts: Timeouts | None = None,
    attempts: int = 2,
    env: Mapping[str, str] | None = None,
) -> Store:
    """The agent's store: a directory it never creates, or the S3 client with `attempts`
    tries per request (a short pause between them: the cycle deadline bounds the rest).
    `env`: where credentials and region are looked up (default os.environ)."""
    scheme, parts = parse_store_url(url)
    if scheme == "file":
        return DirectoryStore(parts["path"], create=False)
    total = timeouts.request if timeouts is not None else 20.0
    retry = RetryPolicy(attempts=attempts, total_seconds=total, wait_initial=0.05, wait_max=0.05)
    return _s3(parts, retry=retry, timeouts=timeouts, env=env)


def _s3(
    parts: dict[str, str],
    *,
    retry: RetryPolicy | None,
    timeouts: Timeouts | None,
    env: Mapping[str, str] | None = None,
) -> S3Store:
    from wire.store.credentials import env_region, find_credentials
    from wire.store.s3 import S3Store

    path_style = parts.get("path_style")
    return S3Store(
        parts["bucket"],
        prefix=parts["prefix"],
        endpoint=parts.get("endpoint"),
        region=parts.get("region") or env_region(env),
        path_style=None if path_style is None else path_style == "true",
        retry=retry,
        timeouts=timeouts,
        credentials=find_credentials(env),
    )
