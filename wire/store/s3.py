"""`S3Store`: a bucket on S3 or any S3-compatible server (SeaweedFS, MinIO, moto), on obstore.

One client for agent, controller and operator commands: obstore (the Python bindings of the
Rust `object_store` crate) signs, sends and parses; this module maps its answers onto
`wire.errors` and keeps the promises of docs/security.md:

- conditional writes: `if_none_match="*"` is obstore's `mode="create"` (412 ->
  AlreadyExistsError), `if_match` is `mode={"e_tag": ...}` (412 -> PreconditionError); both
  become WriteConflict. A conditional GET's 304 (NotModifiedError) is `NotModified`.
- the byte cap whatever the headers say (docs/security.md#oversized): the declared size is
  checked first, then the body is read in chunks and dropped at cap + 1 bytes.
- timeouts: `Timeouts.connect`, `.read` (each read) and `.total` (a whole request, so a
  server that drips bytes cannot hold it), plus an optional per-cycle deadline
  (`set_deadline`): no request starts after it, and one in flight is abandoned at it.
- retries: obstore's own are off (`max_retries=0`); `wire.retry.RetryPolicy` is the one
  retry layer, and it retries `StoreUnavailable` only (5xx, SlowDown, timeouts, dropped
  or cut answers). A LIST cut mid-way resumes after the last key it returned.
- credentials: `wire.store.credentials` (the standard AWS chain, refreshed as they expire).
- region redirects: on AWS (no endpoint) an answer naming another region moves the store
  there once. Path-style requests for any endpoint (S3-compatible servers), http allowed
  for http endpoints only.
"""

from __future__ import annotations

import datetime
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import urlsplit

from wire.documents import MAX_DOCUMENT_BYTES
from wire.errors import (
    BosunError,
    DocumentTooLarge,
    StoreAccessDenied,
    StoreConfigError,
    StoreError,
    StoreUnavailable,
    WriteConflict,
)
from wire.logs import Log
from wire.records import record
from wire.retry import RetryPolicy
from wire.store.base import GetResult, Missing, NotModified, ObjectInfo, StoredObject, short_etag
from wire.store.credentials import (
    NO_CREDENTIALS,
    BotocoreProvider,
    Credentials,
    Provider,
    find_credentials,
    static_provider,
)

log = Log(__name__)
T = TypeVar("T")

LIST_CHUNK = 1000


class RequestTimedOut(StoreUnavailable):
    """A request hit a timeout or the cycle's deadline (slow or dripping server)."""


@record
class Timeouts:
    """Seconds a bucket request may take: to connect, per read, and in all."""

    connect: float = 3.0
    read: float = 10.0
    total: float | None = None  # whole request, headers and body; None: connect + 2 * read

    @property
    def request(self) -> float:
        return self.total if self.total is not None else self.connect + 2 * self.read


def _seconds(value: float) -> datetime.timedelta:
    return datetime.timedelta(seconds=max(0.001, value))


class S3Store:
    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint: str | None = None,
        region: str | None = None,
        path_style: bool | None = None,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        credentials: Credentials | None = None,
        provider: Provider | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.endpoint = endpoint
        self.retry = retry or RetryPolicy()
        self.timeouts = timeouts or Timeouts()
        if path_style is None:  # as boto3's "auto": dotted names cannot use virtual hosts on TLS
            path_style = endpoint is not None or "." in bucket
        self.path_style = path_style
        if access_key and secret_key:
            credentials = Credentials(access_key, secret_key)
        if provider is None:
            found = credentials or find_credentials()
            provider = static_provider(found) if found is not None else BotocoreProvider()
        self._provider = provider
        if region is None and isinstance(provider, BotocoreProvider) and endpoint is None:
            region = provider.region()
        self.region = region or "us-east-1"
        self._lock = threading.Lock()
        self._obs: Any = None
        self.deadline_at: float | None = None  # time.monotonic() after which requests fail
        # called before every request attempt with (operation, key): GET, PUT, LIST (key:
        # the listed prefix) or DELETE; for tests (fault injection) and benchmarks (counts)
        self.on_request: Callable[[str, str], None] | None = None

    # ---- the obstore client ---------------------------------------------------------------

    def _client(self) -> Any:
        obs = self._obs
        if obs is None:
            with self._lock:
                if self._obs is None:
                    self._obs = self._build()
                obs = self._obs
        return obs

    def _build(self) -> Any:
        from obstore.store import S3Store as ObjectStoreS3

        t = self.timeouts
        config: dict[str, Any] = {
            "region": self.region,
            "virtual_hosted_style_request": not self.path_style,
            "skip_signature": False,
            "unsigned_payload": False,
            "conditional_put": "etag",
        }
        client: dict[str, Any] = {
            "connect_timeout": _seconds(t.connect),
            "read_timeout": _seconds(t.read),
            "timeout": _seconds(t.request),
            "pool_max_idle_per_host": "64",
            "pool_idle_timeout": _seconds(50),  # under the usual 60 s server keep-alive
        }
        if self.endpoint:
            parts = urlsplit(self.endpoint)
            client["allow_http"] = parts.scheme == "http"
            # An http endpoint is reached without TLS, so its client needs no root
            # certificates, and building one with them reads and parses every file of the
            # system's store (~6 ms of CPU, most of an S3 cron cycle's own cost); a client
            # that skips certificate checks loads none. What it could reach over TLS is only
            # where a redirect from the http endpoint points, and whoever can answer such a
            # redirect can answer the plain request itself. An https endpoint keeps the
            # full check.
            client["allow_invalid_certificates"] = parts.scheme == "http"
            base = self.endpoint.rstrip("/")
            if not self.path_style:
                base = f"{parts.scheme}://{self.bucket}.{parts.netloc}{parts.path.rstrip('/')}"
            config["endpoint"] = base
        else:
            config["endpoint"] = (
                f"https://s3.{self.region}.amazonaws.com"
                if self.path_style
                else f"https://{self.bucket}.s3.{self.region}.amazonaws.com"
            )
        return ObjectStoreS3(
            self.bucket,
            config=config,  # type: ignore[arg-type]
            client_options=client,  # type: ignore[arg-type]
            retry_config={"max_retries": 0, "retry_timeout": _seconds(t.request)},
            credential_provider=self._provider,  # type: ignore[arg-type]
        )

    def close(self) -> None:
        with self._lock:
            self._obs = None

    def set_deadline(self, at: float | None) -> None:
        """Bound every request until `at` (monotonic): the agent's per-cycle deadline."""
        self.deadline_at = at

    def __repr__(self) -> str:
        return f"S3Store({self.url!r})"

    @property
    def url(self) -> str:
        base = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        return f"{base}?endpoint={self.endpoint}" if self.endpoint else base

    def describe(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{key}"

    def _where(self) -> str:
        return self.endpoint or "the AWS S3 endpoint"

    # ---- errors, deadlines, retries -------------------------------------------------------

    def _translate(self, exc: Exception, key: str, action: str) -> StoreError:
        from obstore import exceptions as oe

        # only when a request failed: its regular expressions are not compiled otherwise
        from wire.store.s3_answers import CODE_RE, STATUS_RE, TIMED_OUT, TRANSIENT_CODES, redirected

        if isinstance(exc, StoreError):
            return exc
        target = self.describe(key)
        text = str(exc)
        match = STATUS_RE.search(text)
        status = int(match.group(1)) if match else 0
        code_match = CODE_RE.search(text)
        code = (code_match.group(1) or code_match.group(2)) if code_match else ""
        if NO_CREDENTIALS in text:
            return StoreConfigError(f"{action} {target}: {NO_CREDENTIALS}")
        if code == "NoSuchBucket":
            return StoreConfigError(f"bucket {self.bucket!r} does not exist at {self._where()}")
        if isinstance(exc, oe.AlreadyExistsError | oe.PreconditionError) or status == 412:
            return WriteConflict(
                f"{target} changed since it was read; {action} refused", status=412
            )
        if action == "PUT" and (isinstance(exc, FileNotFoundError) or status == 404):
            return WriteConflict(
                f"{target} does not exist; {action} with If-Match refused", status=404
            )
        if status == 409 or code == "ConditionalRequestConflict":
            return WriteConflict(f"{target}: concurrent conditional write ({code})", status=409)
        if (
            isinstance(exc, oe.PermissionDeniedError | oe.UnauthenticatedError)
            or status == 403
            or code == "AccessDenied"
        ):
            return StoreAccessDenied(
                f"{action} {target}: access denied ({code or status or exc.__class__.__name__}); "
                "check the credentials, "
                "their policy, and that the bucket exists"
            )
        if status >= 500 or code in TRANSIENT_CODES or status == 429:
            return StoreUnavailable(f"{action} {target}: {self._where()} answered {status} {code}")
        if redirected(text, status, code):
            return StoreError(
                f"{action} {target}: {self._where()} answered {status} {code or 'redirect'}: the "
                "bucket is in another region or behind another endpoint; set region= or "
                "endpoint= in the store URL"
            )
        if status:
            return StoreError(f"{action} {target}: {status} {code}".strip())
        if "credential" in text.lower() and not any(t in text for t in TIMED_OUT):
            return StoreConfigError(f"{action} {target}: {text.splitlines()[0]}")
        first = text.splitlines()[0] if text else exc.__class__.__name__
        if any(t in text for t in TIMED_OUT):
            return RequestTimedOut(f"{action} {target}: {self._where()} timed out: {first}")
        return StoreUnavailable(f"{action} {target}: cannot reach {self._where()}: {first}")

    def _bounded(self, action: str, key: str, fn: Callable[[], T]) -> T:
        """`fn` within the cycle deadline: not started after it, abandoned at it."""
        at = self.deadline_at
        if at is None:
            return fn()
        left = at - time.monotonic()
        if left <= 0:
            raise RequestTimedOut(
                f"{action} {self.describe(key)}: the cycle deadline has passed; not sent"
            )
        if left >= self.timeouts.request:  # the request's own timeout ends it sooner
            return fn()
        box: list[Any] = []

        def run() -> None:
            try:
                box.append((True, fn()))
            except BaseException as exc:  # handed to the caller below
                box.append((False, exc))

        worker = threading.Thread(target=run, name="bosun-s3-deadline", daemon=True)
        worker.start()
        worker.join(left)
        if not box:  # abandoned: its own timeout ends it in the background
            raise RequestTimedOut(
                f"{action} {self.describe(key)}: {self._where()} exceeded the cycle deadline"
            )
        ok, value = box[0]
        if ok:
            return value  # type: ignore[no-any-return]
        raise value

    def _call(self, action: str, key: str, fn: Callable[[], T]) -> T:
        relocated = False

        def attempt() -> T:
            nonlocal relocated
            if self.on_request is not None:
                self.on_request(action, key)
            try:
                return self._bounded(action, key, fn)
            except BosunError:
                raise
            except Exception as exc:
                if not relocated and self._relocate(exc):
                    relocated = True
                    return attempt()
                raise self._translate(exc, key, action) from exc

        return self.retry.call(attempt)

    def _relocate(self, exc: Exception) -> bool:
        """On AWS (no endpoint), an answer naming the bucket's region moves this store there
        (as botocore does); True if it moved."""
        if self.endpoint is not None:
            return False
        from wire.store.s3_answers import moved_to

        region = moved_to(str(exc), self.bucket, self.region)
        if region is None:
            return False
        log.warning("store.region %s is in %s, not %s", self.describe(""), region, self.region)
        with self._lock:
            self.region = region
            self._obs = None
        return True

    # ---- Store protocol -------------------------------------------------------------------

    def get(
        self, key: str, *, if_none_match: str | None = None, max_bytes: int = MAX_DOCUMENT_BYTES
    ) -> GetResult:
        import obstore
        from obstore.exceptions import NotModifiedError

        full = self.prefix + key
        options = {"if_none_match": if_none_match} if if_none_match else None

        def fetch() -> GetResult:
            try:
                res = obstore.get(self._client(), full, options=options)  # type: ignore[arg-type]
            except NotModifiedError:
                return NotModified(key, if_none_match or "")
            except FileNotFoundError as exc:  # obstore's NotFoundError
                if "NoSuchBucket" in str(exc):
                    raise
                return Missing(key)
            except Exception as exc:
                if "Content-Length Header missing" in str(exc):  # obstore reads none of it
                    raise DocumentTooLarge(
                        f"{self.describe(key)}: a body of undeclared length, refused unread "
                        f"(over the {max_bytes}-byte cap for all we know)"
                    ) from exc
                raise
            meta = res.meta
            if meta["size"] > max_bytes:
                raise DocumentTooLarge(
                    f"{self.describe(key)}: {meta['size']} bytes is over the {max_bytes}-byte cap"
                )
            chunks: list[bytes] = []
            got = 0
            for chunk in res.stream(min_chunk_size=min(65536, max_bytes + 1)):
                chunks.append(bytes(chunk))
                got += len(chunk)
                if got > max_bytes:
                    raise DocumentTooLarge(f"{self.describe(key)}: over the {max_bytes}-byte cap")
            body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            return StoredObject(key, body, meta["e_tag"] or "", meta["last_modified"].timestamp())

        return self._call("GET", key, fetch)

    def put(
        self,
        key: str,
        body: bytes,
        *,
        if_match: str | None = None,
        if_none_match: str | None = None,
        content_type: str = "application/json",
    ) -> str:
        import obstore

        if if_none_match not in (None, "*"):
            raise ValueError("put supports only if_none_match='*' (create-only)")
        mode: Any = "create" if if_none_match else {"e_tag": if_match} if if_match else "overwrite"
        full = self.prefix + key

        def send() -> str:
            res = obstore.put(
                self._client(),
                full,
                body,
                mode=mode,
                attributes={"Content-Type": content_type},
                use_multipart=False,
            )
            etag = res.get("e_tag")
            if not etag:  # a 2xx cut short in its headers: the write may or may not have happened
                raise StoreUnavailable(
                    f"PUT {self.describe(key)}: answer without an ETag (truncated?); outcome unknown"
                )
            return str(etag)

        try:
            return self._call("PUT", key, send)
        except WriteConflict as exc:
            expected = f"etag {short_etag(if_match)}" if if_match else "create-only"
            raise WriteConflict(f"{exc} ({expected})", status=exc.status) from exc

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object under `prefix` (any string, not only a folder) in key order; a LIST
        cut by a transient failure resumes after the last key returned."""
        return self.list_after(prefix, None)

    def list_after(self, prefix: str, start_after: str | None) -> Iterator[ObjectInfo]:
        """`list(prefix)` from the first key above `start_after` (S3's StartAfter): pages
        are fetched as they are read, so a reader that stops early asks for no more; the
        controller lists key ranges of one prefix concurrently this way."""
        full = self.prefix + prefix
        folder, _, partial = full.rpartition("/")
        # start after the longest string below the prefix that S3 takes as a key
        after: str | None = full[:-1] if len(partial) > 1 else None
        if start_after is not None and (after is None or self.prefix + start_after > after):
            after = self.prefix + start_after
        waits = self.retry.waits()
        started = time.monotonic()
        while True:
            try:
                for info in self._list_pages(folder, after, full, prefix):
                    after = self.prefix + info.key
                    yield info
                return
            except StoreUnavailable:
                if not waits or time.monotonic() - started >= self.retry.total_seconds:
                    raise
                import random

                time.sleep(random.uniform(0, waits.pop(0)))

    def _list_pages(
        self, folder: str, after: str | None, full: str, prefix: str
    ) -> Iterator[ObjectInfo]:
        import obstore

        if self.on_request is not None:
            self.on_request("LIST", prefix)
        cut = len(self.prefix)
        try:
            stream = obstore.list(
                self._client(), folder or None, offset=after, chunk_size=LIST_CHUNK
            )
            for chunk in stream:
                for meta in chunk:
                    path = meta["path"]
                    if not path.startswith(full):
                        if path > full:
                            return
                        continue
                    yield ObjectInfo(
                        key=path[cut:],
                        etag=meta["e_tag"] or "",
                        size=meta["size"],
                        last_modified=meta["last_modified"].timestamp(),
                    )
        except BosunError:
            raise
        except Exception as exc:
            raise self._translate(exc, prefix, "LIST") from exc

    def delete(self, key: str) -> None:
        import obstore

        def remove() -> None:
            try:
                obstore.delete(self._client(), self.prefix + key)
            except FileNotFoundError as exc:  # obstore's NotFoundError
                if "NoSuchBucket" in str(exc):
                    raise

        self._call("DELETE", key, remove)

    def create_bucket(self) -> None:
        """Create the bucket if missing (tests, demo, local servers): through boto3, which
        obstore has no call for."""
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        creds = self._provider()
        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=creds["access_key_id"],
            aws_secret_access_key=creds["secret_access_key"],
            aws_session_token=creds.get("token"),
        )
        try:
            client.create_bucket(Bucket=self.bucket)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise StoreError(f"CREATE BUCKET {self.bucket}: {code}") from exc
        except BotoCoreError as exc:
            raise StoreUnavailable(f"CREATE BUCKET {self.bucket}: {exc}") from exc
