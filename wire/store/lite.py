"""`LiteS3Store`: a stdlib-only S3 client for the agent's cron path (no boto3 import).

boto3 costs ~0.35 s of CPU just to import, more than a whole steady-state agent cycle is
allowed. The agent needs four calls (GET, PUT, and cheaply LIST and DELETE), so this module
signs them itself with AWS Signature Version 4 over `http.client`:

- conditional GET (`If-None-Match`) and PUT (`If-Match`, `If-None-Match: *`);
- connect/read timeouts, plus a deadline per request (`Timeouts.total`) and optionally per
  cycle (`set_deadline`), enforced by a watchdog that shuts the socket down, so a server
  that drips bytes cannot hold a cycle;
- the same error translation as `wire.store.s3`: 412/409 -> WriteConflict, 404 -> Missing,
  304 -> NotModified, 403 -> StoreAccessDenied, 5xx/SlowDown/connection errors/timeouts ->
  StoreUnavailable (`RequestTimedOut` when the deadline or a timeout hit), over-cap bodies ->
  DocumentTooLarge from `Content-Length` and by reading at most cap + 1 bytes.

Credentials: `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`, else the
shared credentials file (`AWS_SHARED_CREDENTIALS_FILE` or ~/.aws/credentials, profile
`AWS_PROFILE` or default). With no static credentials (instance roles, SSO...)
`open_agent_store` takes them from botocore's provider chain (refreshed as they expire);
the requests still go through this module, so the deadlines bound them all. On AWS a
redirect naming the bucket's region (`x-amz-bucket-region`) moves the store there once.
"""

from __future__ import annotations

import configparser
import contextlib
import datetime
import hashlib
import hmac
import http.client
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from wire.documents import MAX_DOCUMENT_BYTES
from wire.errors import (
    DocumentTooLarge,
    StoreAccessDenied,
    StoreConfigError,
    StoreError,
    StoreUnavailable,
    WriteConflict,
)
from wire.store.base import GetResult, Missing, NotModified, ObjectInfo, StoredObject, short_etag
from wire.store.deadlines import DEADLINES

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from wire.retry import RetryPolicy
    from wire.store.base import Store

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
TRANSIENT_CODES = frozenset(
    {"SlowDown", "Throttling", "RequestTimeout", "ServiceUnavailable", "InternalError"}
)
_ERROR_BODY_CAP = 64 * 1024


class RequestTimedOut(StoreUnavailable):
    """A request hit its timeout or the per-request deadline (slow or dripping server)."""


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float = 3.0
    read: float = 5.0
    total: float | None = 20.0  # whole request, headers and body; None: unbounded


@dataclass(frozen=True, slots=True)
class Credentials:
    access_key: str
    secret_key: str
    token: str | None = None

    def __repr__(self) -> str:  # never print secrets
        return f"Credentials(access_key={self.access_key[:4]}..., secret_key=***)"


def find_credentials(env: Mapping[str, str] | None = None) -> Credentials | None:
    """Static credentials from the environment or the shared credentials file, else None."""
    env = os.environ if env is None else env
    access, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
    if access and secret:
        return Credentials(access, secret, env.get("AWS_SESSION_TOKEN") or None)
    path = Path(env.get("AWS_SHARED_CREDENTIALS_FILE") or Path.home() / ".aws" / "credentials")
    profile = env.get("AWS_PROFILE") or "default"
    parser = configparser.RawConfigParser()
    try:
        parser.read(path)
    except (OSError, configparser.Error):
        return None
    if not parser.has_section(profile):
        return None
    section = parser[profile]
    access, secret = section.get("aws_access_key_id"), section.get("aws_secret_access_key")
    if not access or not secret:
        return None
    return Credentials(
        access.strip(), secret.strip(), (section.get("aws_session_token") or "").strip() or None
    )


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def sigv4_headers(
    creds: Credentials,
    *,
    method: str,
    host: str,
    path: str,
    query: list[tuple[str, str]],
    payload_hash: str,
    region: str,
    now: datetime.datetime | None = None,
) -> dict[str, str]:
    """The headers that sign one S3 request (path already URI-encoded, query unencoded)."""
    now = now or datetime.datetime.now(datetime.UTC)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    headers = {"host": host, "x-amz-content-sha256": payload_hash, "x-amz-date": amz_date}
    if creds.token:
        headers["x-amz-security-token"] = creds.token
    names = sorted(headers)
    canonical_query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(query)
    )
    canonical_request = "\n".join(
        [
            method,
            path,
            canonical_query,
            "".join(f"{n}:{headers[n].strip()}\n" for n in names),
            ";".join(names),
            payload_hash,
        ]
    )
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            amz_date,
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    key = _hmac(
        _hmac(_hmac(_hmac(("AWS4" + creds.secret_key).encode(), day), region), "s3"), "aws4_request"
    )
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={creds.access_key}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    del headers["host"]  # http.client sends it
    return headers


@dataclass(frozen=True, slots=True)
class _Response:
    status: int
    headers: dict[str, str]
    body: bytes


class LiteS3Store:
    """S3 GET/PUT/LIST/DELETE with SigV4 over http.client; see the module docstring."""

    def __init__(
        self,
        bucket: str,
        *,
        credentials: Credentials | Callable[[], Credentials],
        prefix: str = "",
        endpoint: str | None = None,
        region: str | None = None,
        path_style: bool | None = None,
        timeouts: Timeouts | None = None,
        attempts: int = 2,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.endpoint = endpoint
        self.region = region or "us-east-1"
        self.timeouts = timeouts or Timeouts()
        self.attempts = max(1, attempts)
        self._creds = credentials
        if path_style is None:
            path_style = endpoint is not None
        if endpoint:
            parts = urlsplit(endpoint)
            self._scheme, self._host = parts.scheme, parts.netloc
            self._base = parts.path.rstrip("/")
        else:
            self._scheme = "https"
            self._host = f"s3.{self.region}.amazonaws.com"
            self._base = ""
        if path_style:
            self._base = f"{self._base}/{bucket}"
        else:
            self._host = f"{bucket}.{self._host}"
        self._local = threading.local()  # one kept-alive connection per thread
        self._conns: list[http.client.HTTPConnection] = []
        self._conns_lock = threading.Lock()
        self.requests = 0  # requests sent (for tests and benchmarks)
        # called after every answer with (operation, key, status); operation is GET, PUT,
        # LIST or DELETE, key is relative to the prefix (for LIST: the listed prefix)
        self.on_answer: Callable[[str, str, int], None] | None = None
        self.deadline_at: float | None = None  # time.monotonic() after which requests fail

    def set_deadline(self, at: float | None) -> None:
        """Bound every request until `at` (monotonic): the agent's per-cycle deadline."""
        self.deadline_at = at

    def __repr__(self) -> str:
        return f"LiteS3Store({self.url!r})"

    @property
    def url(self) -> str:
        base = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        return f"{base}?endpoint={self.endpoint}" if self.endpoint else base

    def describe(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{key}"

    def _where(self) -> str:
        return self.endpoint or "the AWS S3 endpoint"

    # ---- transport ------------------------------------------------------------------------

    def _connection(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._scheme == "https":
                conn = http.client.HTTPSConnection(self._host, timeout=self.timeouts.connect)
            else:
                conn = http.client.HTTPConnection(self._host, timeout=self.timeouts.connect)
            self._local.conn = conn
            with self._conns_lock:
                self._conns.append(conn)
        return conn

    def _drop(self) -> None:
        """Close this thread's connection (after an error or a `Connection: close`)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
            with self._conns_lock:
                if conn in self._conns:
                    self._conns.remove(conn)

    def close(self) -> None:
        """Close every kept-alive connection of every thread."""
        with self._conns_lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            conn.close()
        self._local = threading.local()

    def __del__(self) -> None:  # a kept-alive socket must not outlive its store
        if hasattr(self, "_conns_lock"):
            self.close()

    def _once(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        body: bytes,
        extra: dict[str, str],
        max_bytes: int,
        key: str,
    ) -> _Response:
        payload_hash = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
        headers = sigv4_headers(
            self._creds() if callable(self._creds) else self._creds,
            method=method,
            host=self._host,
            path=path,
            query=query,
            payload_hash=payload_hash,
            region=self.region,
        )
        headers.update(extra)
        url = path + (
            "?" + "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in query)
            if query
            else ""
        )
        budget = self.timeouts.total
        if self.deadline_at is not None:
            left = self.deadline_at - time.monotonic()
            if left <= 0:
                raise RequestTimedOut(
                    f"{method} {self.describe(key)}: the cycle deadline has passed; not sent"
                )
            budget = left if budget is None else min(budget, left)
        conn = self._connection()
        expired = threading.Event()
        deadline: int | None = None
        if budget is not None:

            def _kill() -> None:  # on the watchdog thread: quick, never blocks
                expired.set()
                sock = conn.sock
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)

            deadline = DEADLINES.arm(budget, _kill)
        started = time.monotonic()
        self.requests += 1
        try:
            conn.request(method, url, body=body or None, headers=headers)
            if conn.sock is not None:
                conn.sock.settimeout(self.timeouts.read)
            resp = conn.getresponse()
            status = resp.status
            rheaders = {k.lower(): v for k, v in resp.getheaders()}
            cap = max_bytes if status in (200, 206) else _ERROR_BODY_CAP
            length = rheaders.get("content-length")
            if status in (200, 206) and length and length.isdigit() and int(length) > cap:
                self._drop()
                raise DocumentTooLarge(
                    f"{self.describe(key)}: {length} bytes is over the {cap}-byte cap"
                )
            chunks: list[bytes] = []
            got = 0
            while got <= cap:
                chunk = resp.read1(min(65536, cap + 1 - got))
                if not chunk:
                    break
                chunks.append(chunk)
                got += len(chunk)
            data = b"".join(chunks)
            if got > cap:
                self._drop()
                if status in (200, 206):
                    raise DocumentTooLarge(f"{self.describe(key)}: over the {cap}-byte cap")
            else:
                if (
                    status not in (204, 304) and length and length.isdigit() and got != int(length)
                ):  # the connection closed mid-body: never hand back cut bytes
                    raise http.client.IncompleteRead(data, int(length) - got)
                if not resp.isclosed():
                    resp.read()  # length exhausted: lets http.client reuse the connection
                if resp.will_close:
                    self._drop()
            if expired.is_set():
                raise TimeoutError("deadline")
            return _Response(status, rheaders, data)
        except DocumentTooLarge:
            raise
        except TimeoutError as exc:
            self._drop()
            took = time.monotonic() - started
            raise RequestTimedOut(
                f"{method} {self.describe(key)}: {self._where()} timed out after {took:.1f}s"
            ) from exc
        except (OSError, http.client.HTTPException) as exc:
            self._drop()
            if expired.is_set():
                took = time.monotonic() - started
                raise RequestTimedOut(
                    f"{method} {self.describe(key)}: {self._where()} exceeded the "
                    f"{budget or 0:.1f}s deadline after {took:.1f}s"
                ) from exc
            raise StoreUnavailable(
                f"{method} {self.describe(key)}: cannot reach {self._where()}: "
                f"{exc.__class__.__name__}: {exc}"
            ) from exc
        finally:
            if deadline is not None:
                DEADLINES.disarm(deadline)

    def _request(
        self,
        method: str,
        key: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        max_bytes: int = MAX_DOCUMENT_BYTES,
        object_path: bool = True,
    ) -> _Response:
        path = self._base + ("/" + quote(self.prefix + key, safe="/-_.~") if object_path else "/")
        last: StoreUnavailable | None = None
        tries, attempt, relocated = self.attempts, 0, False
        while attempt < tries:
            attempt += 1
            try:
                resp = self._once(method, path, query or [], body, headers or {}, max_bytes, key)
            except RequestTimedOut:
                raise  # a slow server stays slow: never double the wait
            except StoreUnavailable as exc:
                last = exc
                continue
            if self.on_answer is not None:
                self.on_answer(method if object_path else "LIST", key, resp.status)
            if not relocated and self._relocate(resp):
                relocated, tries = True, tries + 1  # the bucket is in another region: ask there
                continue
            if resp.status >= 500 or (resp.status >= 400 and _code(resp.body) in TRANSIENT_CODES):
                last = self._error(resp, key, method)  # type: ignore[assignment]
                if attempt < tries:
                    time.sleep(0.05)
                continue
            if (
                object_path
                and method == "PUT"
                and resp.status < 300
                and not resp.headers.get("etag")
            ):
                # a 2xx cut short in its headers: the write may not have happened
                last = StoreUnavailable(
                    f"PUT {self.describe(key)}: answer without an ETag (truncated?); "
                    "outcome unknown"
                )
                continue
            return resp
        assert last is not None
        raise last

    def _relocate(self, resp: _Response) -> bool:
        """On AWS (no endpoint), a redirect naming the bucket's region moves this store
        there (as botocore does); True if it moved."""
        region = resp.headers.get("x-amz-bucket-region", "")
        if self.endpoint or resp.status not in (301, 307, 400) or not region:
            return False
        if region == self.region or not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d{1,2}", region):
            return False
        log.warning("store.region %s is in %s, not %s", self.describe(""), region, self.region)
        self.region = region
        host = f"s3.{region}.amazonaws.com"
        self._host = host if self._base.startswith(f"/{self.bucket}") else f"{self.bucket}.{host}"
        self.close()
        return True

    def _error(self, resp: _Response, key: str, action: str) -> StoreError:
        target = self.describe(key)
        code = _code(resp.body) or str(resp.status)
        status = resp.status
        if status == 412 or code == "PreconditionFailed":
            return WriteConflict(
                f"{target} changed since it was read; {action} refused", status=412
            )
        if action == "PUT" and code in ("NoSuchKey", "404"):  # If-Match on a missing object
            return WriteConflict(
                f"{target} does not exist; {action} with If-Match refused", status=404
            )
        if status == 409 or code == "ConditionalRequestConflict":
            return WriteConflict(f"{target}: concurrent conditional write ({code})", status=409)
        if code == "NoSuchBucket":
            return StoreConfigError(f"bucket {self.bucket!r} does not exist at {self._where()}")
        if status == 403 or code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            return StoreAccessDenied(
                f"{action} {target}: access denied ({code}); check the credentials, their "
                "policy, and that the bucket exists"
            )
        if status >= 500 or code in TRANSIENT_CODES:
            return StoreUnavailable(f"{action} {target}: {self._where()} answered {status} {code}")
        return StoreError(f"{action} {target}: {status} {code}")

    # ---- Store protocol -------------------------------------------------------------------

    def get(
        self, key: str, *, if_none_match: str | None = None, max_bytes: int = MAX_DOCUMENT_BYTES
    ) -> GetResult:
        headers = {"if-none-match": if_none_match} if if_none_match else {}
        resp = self._request("GET", key, headers=headers, max_bytes=max_bytes)
        if resp.status == 304:
            return NotModified(key, resp.headers.get("etag", if_none_match or ""))
        if resp.status == 404 and _code(resp.body) != "NoSuchBucket":
            return Missing(key)
        if resp.status != 200:
            raise self._error(resp, key, "GET")
        modified = resp.headers.get("last-modified")
        stamp = None
        if modified:
            try:
                from email.utils import parsedate_to_datetime

                stamp = parsedate_to_datetime(modified).timestamp()
            except (TypeError, ValueError):
                stamp = None
        return StoredObject(key, resp.body, resp.headers.get("etag", ""), stamp)

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
        headers = {"content-type": content_type}
        if if_match is not None:
            headers["if-match"] = if_match
        if if_none_match is not None:
            headers["if-none-match"] = if_none_match
        resp = self._request("PUT", key, body=body, headers=headers)
        if resp.status not in (200, 201, 204):
            err = self._error(resp, key, "PUT")
            if isinstance(err, WriteConflict):
                expected = f"etag {short_etag(if_match)}" if if_match else "create-only"
                raise WriteConflict(f"{err} ({expected})", status=err.status)
            raise err
        return resp.headers["etag"]  # _request retries a 2xx PUT answer without one

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        import xml.etree.ElementTree as ET

        token: str | None = None
        cut = len(self.prefix)
        while True:
            query = [("list-type", "2"), ("prefix", self.prefix + prefix)]
            if token:
                query.append(("continuation-token", token))
            resp = self._request("GET", prefix, query=query, object_path=False, max_bytes=16 << 20)
            if resp.status != 200:
                raise self._error(resp, prefix, "LIST")
            root = ET.fromstring(resp.body)
            ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
            for item in root.iter(f"{ns}Contents"):
                modified = item.findtext(f"{ns}LastModified") or ""
                yield ObjectInfo(
                    key=(item.findtext(f"{ns}Key") or "")[cut:],
                    etag=item.findtext(f"{ns}ETag") or "",
                    size=int(item.findtext(f"{ns}Size") or 0),
                    last_modified=datetime.datetime.fromisoformat(
                        modified.replace("Z", "+00:00")
                    ).timestamp()
                    if modified
                    else 0.0,
                )
            if root.findtext(f"{ns}IsTruncated") != "true":
                return
            token = root.findtext(f"{ns}NextContinuationToken")
            if not token:
                return

    def delete(self, key: str) -> None:
        resp = self._request("DELETE", key)
        if resp.status not in (200, 204, 404):
            raise self._error(resp, key, "DELETE")


_CODE = re.compile(rb"<Code>([^<]{1,100})</Code>")


def _code(body: bytes) -> str:
    match = _CODE.search(body[:_ERROR_BODY_CAP])
    return match.group(1).decode("ascii", "replace") if match else ""


def lite_store(
    bucket: str,
    *,
    endpoint: str | None,
    access_key: str,
    secret_key: str,
    prefix: str = "",
    region: str | None = None,
    retry: RetryPolicy | None = None,
    timeouts: object | None = None,
) -> LiteS3Store:
    """A LiteS3Store built like `S3Store(...)` (for the store contract suite): `retry` gives
    the attempts, `timeouts` anything with `connect` and `read` (e.g. `wire.store.s3.Timeouts`)."""
    connect = float(getattr(timeouts, "connect", 3.0))
    read = float(getattr(timeouts, "read", 5.0))
    total = retry.total_seconds if retry is not None and retry.total_seconds > 0 else 20.0
    return LiteS3Store(
        bucket,
        credentials=Credentials(access_key, secret_key),
        prefix=prefix,
        endpoint=endpoint,
        region=region,
        timeouts=Timeouts(connect=connect, read=read, total=max(total, connect + read)),
        attempts=retry.attempts if retry is not None else 2,
    )


def open_agent_store(
    url: str,
    *,
    timeouts: Timeouts | None = None,
    env: Mapping[str, str] | None = None,
    attempts: int = 2,
) -> Store:
    """The store the agent uses: directory, or the stdlib S3 client, with static credentials
    (no boto3 import) or else with botocore's provider chain (instance roles and others)."""
    from wire.store import DirectoryStore, parse_store_url

    scheme, parts = parse_store_url(url)
    timeouts = timeouts or Timeouts()
    if scheme == "file":
        return DirectoryStore(parts["path"], create=False)
    path_style = parts.get("path_style")
    creds = find_credentials(env)
    if creds is not None:
        return LiteS3Store(
            parts["bucket"],
            credentials=creds,
            prefix=parts["prefix"],
            endpoint=parts.get("endpoint"),
            region=parts.get("region") or _env_region(env or os.environ),
            path_style=None if path_style is None else path_style == "true",
            timeouts=timeouts,
            attempts=attempts,
        )
    provider, configured_region = provider_chain()
    configured_region = _env_region(env or os.environ) or configured_region
    return LiteS3Store(
        parts["bucket"],
        credentials=provider,
        prefix=parts["prefix"],
        endpoint=parts.get("endpoint"),
        region=parts.get("region") or configured_region,
        path_style=None if path_style is None else path_style == "true",
        timeouts=timeouts,
        attempts=attempts,
    )


def _env_region(env: Mapping[str, str]) -> str | None:
    """AWS_REGION (set by ECS, Lambda and the newer SDKs) or AWS_DEFAULT_REGION."""
    return env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None


def chain_credentials(session: Any) -> Callable[[], Credentials]:
    """Credentials from a botocore (or boto3) session's provider chain (instance role,
    container role, SSO, profiles with role_arn...), frozen per request so they are
    refreshed as they expire; looked up again until some are found."""
    lock = threading.Lock()
    found: list[Any] = []

    def current() -> Credentials:
        with lock:
            if not found:
                creds = session.get_credentials()
                if creds is None:
                    raise StoreConfigError(
                        "no AWS credentials found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
                        "a credentials file or profile, or give the machine an instance role"
                    )
                found.append(creds)
        frozen = found[0].get_frozen_credentials()
        return Credentials(str(frozen.access_key), str(frozen.secret_key), frozen.token or None)

    return current


def provider_chain() -> tuple[Callable[[], Credentials], str | None]:
    """`chain_credentials` of a new botocore session, and its configured region. Only
    machines without static credentials pay for importing botocore (~0.15 s); requests
    still go through this module, so the agent's deadlines bound them too."""
    import botocore.session

    session = botocore.session.get_session()
    region = session.get_config_variable("region")
    return chain_credentials(session), str(region) if region else None
