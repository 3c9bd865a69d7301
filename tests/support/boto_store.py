"""`BotoS3Store`: the same `Store` port on boto3, an independent reference client for the
contract suite (the product's client is `wire.store.s3`, on obstore) and a direct view of a
bucket for tests that inject faults with botocore's event hooks.

One retry layer: botocore's own retries are off
(`total_max_attempts=1`) and transient failures are retried by `wire.retry.RetryPolicy`.
botocore errors are translated here, once, into `wire.errors`. Timestamps in LIST pages
are kept as strings by botocore and parsed here (botocore's own timestamp parsing is most
of the CPU a 1,000-key page costs).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, TypeVar

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from wire.documents import MAX_DOCUMENT_BYTES
from wire.errors import (
    DocumentTooLarge,
    StoreAccessDenied,
    StoreConfigError,
    StoreError,
    StoreUnavailable,
    WriteConflict,
)
from wire.retry import RetryPolicy
from wire.store.base import GetResult, Missing, NotModified, ObjectInfo, StoredObject, short_etag
from wire.store.s3 import Timeouts

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

T = TypeVar("T")

TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestTimeout",
        "ServiceUnavailable",
        "InternalError",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "503",
        "500",
        "502",
        "504",
    }
)


def _parse_time(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    text = str(value)
    if text[:1].isdigit():  # ISO 8601, as in LIST pages
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    return parsedate_to_datetime(text).timestamp()  # RFC 7231, as in the Last-Modified header


class BotoS3Store:
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
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.endpoint = endpoint
        self.retry = retry or RetryPolicy()
        self.timeouts = timeouts = timeouts or Timeouts()
        core = botocore.session.get_session()
        # Keep LIST timestamps as strings: botocore's parser is slow; we parse lazily.
        core.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=str)
        self.session = session = boto3.session.Session(botocore_session=core)
        if path_style is None:
            path_style = endpoint is not None
        config = Config(
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=timeouts.connect,
            read_timeout=timeouts.read,
            s3={"addressing_style": "path" if path_style else "auto"},
            signature_version="s3v4",
            max_pool_connections=32,  # the controller GETs changed reports 16 at a time
        )
        self.client: S3Client = session.client(
            "s3",
            endpoint_url=endpoint,
            region_name=region or "us-east-1",
            config=config,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
        )

    @property
    def url(self) -> str:
        base = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        return f"{base}?endpoint={self.endpoint}" if self.endpoint else base

    def describe(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{key}"

    def _where(self) -> str:
        return self.endpoint or "the AWS S3 endpoint"

    def _translate(self, exc: Exception, key: str, action: str) -> StoreError:
        target = self.describe(key)
        if isinstance(exc, NoCredentialsError):
            return StoreConfigError(
                f"{action} {target}: no AWS credentials found (set AWS_ACCESS_KEY_ID/"
                "AWS_SECRET_ACCESS_KEY, a profile, or an instance role)"
            )
        if isinstance(exc, ClientError):
            err = exc.response.get("Error", {})
            code = str(err.get("Code", ""))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            if code in ("PreconditionFailed", "412") or status == 412:
                return WriteConflict(
                    f"{target} changed since it was read; {action} refused", status=412
                )
            if action == "PUT" and code in ("NoSuchKey", "404"):  # If-Match on a missing object
                return WriteConflict(
                    f"{target} does not exist; {action} with If-Match refused", status=404
                )
            if code == "ConditionalRequestConflict" or status == 409:
                return WriteConflict(f"{target}: concurrent conditional write ({code})", status=409)
            if code in ("NoSuchBucket",):
                return StoreConfigError(f"bucket {self.bucket!r} does not exist at {self._where()}")
            if (
                code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403")
                or status == 403
            ):
                return StoreAccessDenied(
                    f"{action} {target}: access denied ({code}); check the credentials, their "
                    "policy, and that the bucket exists"
                )
            if code in TRANSIENT_CODES or status >= 500:
                return StoreUnavailable(
                    f"{action} {target}: {self._where()} answered {status} {code}"
                )
            return StoreError(
                f"{action} {target}: {status} {code} {err.get('Message', '')}".strip()
            )
        if isinstance(exc, BotoCoreError):
            return StoreUnavailable(f"{action} {target}: cannot reach {self._where()}: {exc}")
        raise exc

    def _call(self, key: str, action: str, fn: Callable[[], T]) -> T:
        def attempt() -> T:
            try:
                return fn()
            except (ClientError, BotoCoreError) as exc:
                raise self._translate(exc, key, action) from exc

        return self.retry.call(attempt)

    def get(
        self, key: str, *, if_none_match: str | None = None, max_bytes: int = MAX_DOCUMENT_BYTES
    ) -> GetResult:
        full = self.prefix + key

        def fetch() -> GetResult:
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": full}
            if if_none_match:
                kwargs["IfNoneMatch"] = if_none_match
            try:
                resp = self.client.get_object(**kwargs)
            except ClientError as exc:
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                code = exc.response.get("Error", {}).get("Code")
                if status == 304 or code == "304":
                    return NotModified(key, if_none_match or "")
                if code in ("NoSuchKey", "404") or status == 404:
                    return Missing(key)
                raise
            stream = resp["Body"]
            try:
                if int(resp.get("ContentLength", 0)) > max_bytes:
                    raise DocumentTooLarge(
                        f"{self.describe(key)}: {resp['ContentLength']} bytes is over the "
                        f"{max_bytes}-byte cap"
                    )
                data = stream.read(max_bytes + 1)
            finally:
                stream.close()
            if len(data) > max_bytes:
                raise DocumentTooLarge(f"{self.describe(key)}: over the {max_bytes}-byte cap")
            return StoredObject(
                key, data, str(resp.get("ETag", "")), _parse_time(resp["LastModified"])
            )

        return self._call(key, "GET", fetch)

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
        kwargs: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": self.prefix + key,
            "Body": body,
            "ContentType": content_type,
        }
        if if_match is not None:
            kwargs["IfMatch"] = if_match
        if if_none_match is not None:
            kwargs["IfNoneMatch"] = if_none_match

        def send() -> str:
            etag = self.client.put_object(**kwargs).get("ETag")
            if not etag:  # a 2xx cut short in its headers: the write may or may not have happened
                raise StoreUnavailable(
                    f"PUT {self.describe(key)}: answer without an ETag (truncated?); outcome unknown"
                )
            return str(etag)

        try:
            return self._call(key, "PUT", send)
        except WriteConflict as exc:
            expected = f"etag {short_etag(if_match)}" if if_match else "create-only"
            raise WriteConflict(f"{exc} ({expected})", status=exc.status) from exc

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        token: str | None = None
        cut = len(self.prefix)
        while True:
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix + prefix}
            if token:
                kwargs["ContinuationToken"] = token
            page = self._call(prefix, "LIST", lambda kw=kwargs: self.client.list_objects_v2(**kw))  # type: ignore[misc]
            for item in page.get("Contents", []):
                yield ObjectInfo(
                    key=item["Key"][cut:],
                    etag=str(item.get("ETag", "")),
                    size=int(item.get("Size", 0)),
                    last_modified=_parse_time(item["LastModified"]),
                )
            if not page.get("IsTruncated"):
                return
            token = page.get("NextContinuationToken")
            if not token:
                return

    def delete(self, key: str) -> None:
        self._call(
            key,
            "DELETE",
            lambda: self.client.delete_object(Bucket=self.bucket, Key=self.prefix + key),
        )

    def create_bucket(self) -> None:
        """Create the bucket if missing (tests, demo, local servers)."""
        try:
            self.client.create_bucket(Bucket=self.bucket)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise self._translate(exc, "", "CREATE BUCKET") from exc
        except BotoCoreError as exc:
            raise self._translate(exc, "", "CREATE BUCKET") from exc
