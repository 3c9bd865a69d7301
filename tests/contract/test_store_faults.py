"""Transient failures on the S3 backends: retried within bounds, never multiplied."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
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


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that no trust store holds, and its key."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bosun-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_an_https_endpoint_checks_certificates_an_http_one_loads_none(tmp_path: Path) -> None:
    """The client of an https endpoint refuses a certificate no root vouches for (the TLS
    handshake fails on the server's side); only an http endpoint's client, which makes no
    TLS connection, is built without root certificates (wire.store.s3)."""
    import ssl

    cert, key = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    handshakes: list[str] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn = listener.accept()[0]
            except OSError:
                continue
            conn.settimeout(2)
            try:
                with context.wrap_socket(conn, server_side=True):
                    handshakes.append("completed")
            except (ssl.SSLError, OSError) as exc:
                handshakes.append(f"refused: {exc}")
            finally:
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    https = f"https://127.0.0.1:{listener.getsockname()[1]}"
    store = S3Store(
        "bosun-x",
        endpoint=https,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        retry=RetryPolicy(attempts=1, total_seconds=3, wait_initial=0, wait_max=0),
        timeouts=Timeouts(connect=1, read=1),
    )
    try:
        with pytest.raises(StoreUnavailable, match=https):
            store.get("desired/web-1.json")
    finally:
        stop.set()
        thread.join(timeout=2)
        listener.close()
    assert handshakes and all(h.startswith("refused") for h in handshakes), handshakes
    assert store._client().client_options["allow_invalid_certificates"] in (False, "false")
    http = S3Store("bosun-x", endpoint="http://127.0.0.1:1", access_key="a", secret_key="b")
    assert http._client().client_options["allow_invalid_certificates"] in (True, "true")
