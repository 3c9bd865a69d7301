"""The fault proxy itself, and the S3 stores' behaviour through each fault it injects:
Bosun's client (`wire.store.s3`, on obstore) and the boto3 reference client."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.support.boto_store import BotoS3Store
from tests.support.faultproxy import FaultProxy
from tests.support.fixtures import fresh_bucket
from tests.support.servers import ACCESS_KEY, SECRET_KEY, S3Server
from wire.errors import StoreError, StoreUnavailable
from wire.retry import RetryPolicy
from wire.store import Store, StoredObject
from wire.store.s3 import S3Store, Timeouts


@pytest.fixture
def proxy(moto_server: S3Server) -> Iterator[FaultProxy]:
    with FaultProxy(moto_server.endpoint) as p:
        yield p


@pytest.fixture(params=["obstore", "boto3"])
def store(proxy: FaultProxy, moto_server: S3Server, request: pytest.FixtureRequest) -> Store:
    direct = fresh_bucket(moto_server)
    retry = RetryPolicy(attempts=4, total_seconds=6, wait_initial=0.01, wait_max=0.05)
    timeouts = Timeouts(connect=1, read=1)
    cls = BotoS3Store if request.param == "boto3" else S3Store
    return cls(
        direct.bucket,
        prefix=direct.prefix,
        endpoint=proxy.endpoint,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        retry=retry,
        timeouts=timeouts,
    )


def test_requests_pass_through_and_are_counted(store: Store, proxy: FaultProxy) -> None:
    """Without faults the proxy is transparent and counts requests by method and section."""
    etag = store.put("desired/a.json", b"x")
    got = store.get("desired/a.json", if_none_match=etag)
    assert type(got).__name__ == "NotModified"
    assert next(iter(store.list("desired/"))).key == "desired/a.json"
    counts = proxy.counts()
    assert counts["PUT"] == 1 and counts["GET"] == 2


def test_slowdown_burst_is_retried_through(store: Store, proxy: FaultProxy) -> None:
    """Three injected 503 SlowDown answers are absorbed by the retry policy."""
    proxy.fail_next(3)
    store.put("k", b"v")
    assert proxy.counts()["PUT"] == 4


def test_dropped_connections_are_retried(store: Store, proxy: FaultProxy) -> None:
    """Two connections closed without an answer, then success."""
    store.put("k", b"v")
    proxy.drop_next(2)
    got = store.get("k")
    assert isinstance(got, StoredObject) and got.body == b"v"


def test_truncated_response_is_transient_not_corrupt(store: Store, proxy: FaultProxy) -> None:
    """A body cut short is retried; the data returned is never the truncated bytes."""
    store.put("k", b"v" * 5000)
    proxy.truncate_next(1, after_bytes=400)
    got = store.get("k")
    assert isinstance(got, StoredObject) and got.body == b"v" * 5000


def test_put_answer_cut_in_its_headers_is_retried_never_taken_as_done(
    store: Store, proxy: FaultProxy
) -> None:
    """A PUT answer cut after 50 bytes (status line, no ETag yet) is an unknown outcome:
    retried, and the ETag returned is the one the object has, never an empty one."""
    proxy.truncate_next(1, after_bytes=50)
    etag = store.put("k", b"v" * 100)
    assert etag and proxy.counts()["PUT"] == 2
    got = store.get("k")
    assert isinstance(got, StoredObject) and got.etag == etag and got.body == b"v" * 100


def test_full_outage_fails_in_bounded_time_then_recovers(store: Store, proxy: FaultProxy) -> None:
    """During an outage requests fail as StoreUnavailable within the bound; after it, they work."""
    store.put("k", b"v")
    proxy.outage(2.0)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        store.get("k")
    assert time.monotonic() - started < 7
    time.sleep(max(0.0, 2.1 - (time.monotonic() - started)))
    assert isinstance(store.get("k"), StoredObject)


def test_blackhole_outage_ends_at_the_read_timeout(store: Store, proxy: FaultProxy) -> None:
    """A proxy that accepts and never answers costs at most the timeouts times the attempts."""
    proxy.outage(30.0, blackhole=True)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        store.get("k")
    assert time.monotonic() - started < 7
    proxy.heal()


def test_a_redirect_from_an_endpoint_is_a_clear_final_error(
    proxy: FaultProxy, moto_server: S3Server
) -> None:
    """A 301 from an explicit endpoint (the bucket is elsewhere) is neither retried nor
    followed: the error says to fix region= or endpoint=. On AWS (no endpoint) the store
    moves to the region the answer names instead."""
    direct = fresh_bucket(moto_server)
    store = S3Store(direct.bucket, prefix=direct.prefix, endpoint=proxy.endpoint,
                    access_key=ACCESS_KEY, secret_key=SECRET_KEY)  # fmt: skip
    store.put("k", b"v1")
    proxy.fail_next(1, status=301)
    with pytest.raises(StoreError, match="region= or endpoint="):
        store.put("k", b"v2")
    assert proxy.counts()["PUT"] == 2
    got = store.get("k")
    assert isinstance(got, StoredObject) and got.body == b"v1"
