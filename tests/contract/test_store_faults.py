"""Transient failures on the S3 backends: retried within bounds, never multiplied."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from tests.support.boto_store import BotoS3Store
from tests.support.faultproxy import FaultProxy
from tests.support.fixtures import fresh_bucket
from tests.support.servers import ACCESS_KEY, SECRET_KEY, S3Server, free_port
from wire.errors import StoreUnavailable
from wire.retry import RetryPolicy
from wire.store import StoredObject
from wire.store.s3 import S3Store, Timeouts

SLOWDOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


class SlowDownInjector:
    """A botocore before-send hook answering 503 SlowDown to the first `times` requests."""

    def __init__(self, times: int) -> None:
        self.times = times
        self.sent = 0  # requests that reached the hook (= requests that would be billed)

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        self.sent += 1
        if self.sent <= self.times:
            return AWSResponse(
                request.url, 503, {"Content-Type": "application/xml"}, _Raw(SLOWDOWN)
            )
        return None


@pytest.fixture(params=["moto", "seaweedfs"])
def server(request: pytest.FixtureRequest) -> S3Server:
    return request.getfixturevalue("moto_server" if request.param == "moto" else "seaweedfs")


def _boto(server: S3Server, retry: RetryPolicy) -> BotoS3Store:
    plain = fresh_bucket(server, retry=retry)
    return BotoS3Store(plain.bucket, prefix=plain.prefix, endpoint=server.endpoint,
                       access_key=ACCESS_KEY, secret_key=SECRET_KEY, retry=retry)  # fmt: skip


def test_a_few_slowdowns_are_retried_then_succeed(server: S3Server) -> None:
    """Three 503 SlowDown answers, then success: the put and get both go through (the
    boto3 reference client; `wire.store.s3` meets the same faults through the fault proxy
    below)."""
    store = _boto(server, RetryPolicy(attempts=5, total_seconds=10, wait_initial=0, wait_max=0))
    hook = SlowDownInjector(times=3)
    store.client.meta.events.register("before-send.s3.PutObject", hook)
    store.put("k", b"v")
    assert hook.sent == 4  # one layer of retries: botocore's own are off
    got = store.get("k")
    assert isinstance(got, StoredObject) and got.body == b"v"


def test_persistent_slowdown_fails_in_bounded_time_and_attempts(server: S3Server) -> None:
    """A 503 that never ends fails with StoreUnavailable after exactly `attempts` requests:
    the one retry layer, obstore's own retries off."""
    policy = RetryPolicy(attempts=4, total_seconds=5, wait_initial=0.01, wait_max=0.05)
    direct = fresh_bucket(server, retry=policy)
    with FaultProxy(server.endpoint) as proxy:
        store = S3Store(direct.bucket, prefix=direct.prefix, endpoint=proxy.endpoint,
                        access_key=ACCESS_KEY, secret_key=SECRET_KEY, retry=policy)  # fmt: skip
        proxy.fail_next(10**6)
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="503"):
            store.get("k")
        assert time.monotonic() - started < 5
        assert proxy.counts()["GET"] == 4


def test_retry_policy_is_bounded_by_total_time() -> None:
    """With long waits, the time bound stops retrying before the attempts run out."""
    calls = []

    def failing() -> None:
        calls.append(time.monotonic())
        raise StoreUnavailable("down")

    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        RetryPolicy(attempts=100, total_seconds=0.5, wait_initial=0.2, wait_max=0.2).call(failing)
    assert time.monotonic() - started < 1.5
    assert 1 < len(calls) < 100


def test_unreachable_endpoint_fails_within_the_bound_naming_it() -> None:
    """Nothing listening: StoreUnavailable names the endpoint, within the configured bound."""
    endpoint = f"http://127.0.0.1:{free_port()}"
    store = S3Store(
        "bosun-x",
        endpoint=endpoint,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        retry=RetryPolicy(attempts=3, total_seconds=3, wait_initial=0.05, wait_max=0.1),
        timeouts=Timeouts(connect=0.5, read=0.5),
    )
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match=f"cannot reach {endpoint}"):
        store.get("desired/web-1.json")
    assert time.monotonic() - started < 4


def test_silent_endpoint_fails_on_read_timeout() -> None:
    """A server that accepts but never answers ends the request at the read timeout."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    endpoint = f"http://127.0.0.1:{listener.getsockname()[1]}"
    store = S3Store(
        "bosun-x",
        endpoint=endpoint,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        retry=RetryPolicy(attempts=2, total_seconds=3, wait_initial=0, wait_max=0),
        timeouts=Timeouts(connect=0.5, read=0.5),
    )
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match=endpoint):
            store.get("desired/web-1.json")
        assert time.monotonic() - started < 3
    finally:
        stop.set()
        thread.join(timeout=2)
        for conn in accepted:
            conn.close()
        listener.close()


def test_missing_bucket_is_a_configuration_error(server: S3Server) -> None:
    """A bucket that does not exist is named, not retried as if transient.

    moto says NoSuchBucket; SeaweedFS says AccessDenied; both are final errors."""
    from wire.errors import StoreAccessDenied, StoreConfigError

    store = S3Store(
        "bosun-no-such-bucket",
        endpoint=server.endpoint,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        retry=RetryPolicy.none(),
    )
    with pytest.raises((StoreConfigError, StoreAccessDenied), match="bosun-no-such-bucket"):
        store.put("k", b"v")
