"""`wire.store.s3` (obstore) as the agent opens it, against real moto and SeaweedFS servers."""

from __future__ import annotations

import datetime
import http.server
import json
import threading
import time
from pathlib import Path

import pytest

from tests.integration.agent.conftest import lite_store
from tests.integration.agent.proxy import CountingProxy
from tests.support.servers import ACCESS_KEY, SECRET_KEY, S3Server
from wire.errors import DocumentTooLarge, StoreConfigError, StoreUnavailable, WriteConflict
from wire.store import open_agent_store
from wire.store.base import Missing, NotModified, StoredObject
from wire.store.credentials import BotocoreProvider, Credentials, find_credentials
from wire.store.s3 import RequestTimedOut, S3Store, Timeouts


def test_get_put_conditional_list_delete(s3_server: S3Server) -> None:
    """GET/PUT with If-None-Match and If-Match, LIST across pages and DELETE behave like S3Store."""
    store = lite_store(s3_server, prefix="pre/fix")
    key = "desired/a b+c.json"
    assert store.get(key) == Missing(key)
    etag = store.put(key, b'{"v": 1}')
    got = store.get(key)
    assert isinstance(got, StoredObject) and got.body == b'{"v": 1}' and got.etag == etag
    assert isinstance(store.get(key, if_none_match=etag), NotModified)
    assert isinstance(store.get(key, if_none_match='"0123"'), StoredObject)
    with pytest.raises(WriteConflict):
        store.put(key, b"x", if_none_match="*")
    with pytest.raises(WriteConflict, match="etag 00000000"):
        store.put(key, b"x", if_match='"' + "0" * 32 + '"')
    new = store.put(key, b'{"v": 2}', if_match=etag)
    assert new != etag
    assert store.put("desired/new.json", b"n", if_none_match="*")
    for i in range(3):
        store.put(f"reports/m{i}.json", b"r")
    assert [o.key for o in store.list("reports/")] == [f"reports/m{i}.json" for i in range(3)]
    assert {o.key for o in store.list("desired/")} == {key, "desired/new.json"}
    store.delete(key)
    store.delete(key)  # missing is fine
    assert store.get(key) == Missing(key)


def test_missing_bucket_is_a_config_error(s3_server: S3Server) -> None:
    """A missing bucket is StoreConfigError naming the bucket, not a missing object."""
    store = open_agent_store(
        s3_server.store_url("no-such-bucket-here"), env=s3_server.credentials_env()
    )
    with pytest.raises(StoreConfigError, match="no-such-bucket-here"):
        store.get("desired/x.json")


def test_unreachable_endpoint_is_unavailable_in_bounded_time() -> None:
    """A closed port is StoreUnavailable, quickly."""
    from tests.support.servers import free_port

    store = S3Store(
        "b", credentials=Credentials("a", "s"), endpoint=f"http://127.0.0.1:{free_port()}"
    )
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="cannot reach"):
        store.get("k")
    assert time.monotonic() - started < 3


def test_dripping_server_hits_the_request_deadline(
    seaweedfs: S3Server, proxy: CountingProxy
) -> None:
    """docs/security.md#slow-retrieval: a server dripping one byte at a time is cut off at the deadline (RequestTimedOut)."""
    store = lite_store(seaweedfs, proxy.endpoint, timeouts=Timeouts(connect=1, read=1, total=1.0))
    store.put("k", b"v")
    proxy.mode = "drip"
    started = time.monotonic()
    with pytest.raises(RequestTimedOut):
        store.get("k")
    assert time.monotonic() - started < 2.5
    proxy.mode = "pass"
    assert isinstance(store.get("k"), StoredObject)  # the next request works


def test_endless_body_reads_at_most_cap_plus_one(seaweedfs: S3Server, proxy: CountingProxy) -> None:
    """docs/security.md#endless-data: an endless body without a length is refused (obstore
    reads none of a body without a Content-Length; a chunked one stops at cap + 1 bytes);
    a big Content-Length before reading."""
    store = lite_store(seaweedfs, proxy.endpoint)
    proxy.mode = "huge"
    started = time.monotonic()
    with pytest.raises(DocumentTooLarge, match=r"undeclared length.*over the 1000-byte cap"):
        store.get("k", max_bytes=1000)
    assert time.monotonic() - started < 5
    # the proxy's writes stop when the client hangs up: a client that read the whole body
    # would have taken all 256 MiB; what was sent is what the kernel's buffers took
    wait_until = time.monotonic() + 5
    while not proxy.huge_sent and time.monotonic() < wait_until:
        time.sleep(0.05)
    assert proxy.huge_sent and proxy.huge_sent[0] < 32 * 1024 * 1024, proxy.huge_sent
    proxy.mode = "pass"
    store.put("big", b"x" * 5000)
    with pytest.raises(DocumentTooLarge, match="5000 bytes is over the 1000-byte cap"):
        store.get("big", max_bytes=1000)


def test_credentials_from_env_then_shared_file_else_the_provider_chain(tmp_path: Path) -> None:
    """Static credentials come from env or the shared file; without them the agent store takes
    botocore's provider chain as obstore's credential provider."""
    creds = tmp_path / "credentials"
    creds.write_text(
        "[default]\naws_access_key_id = AKIAFILE\naws_secret_access_key = s3cret\n"
        "[other]\naws_access_key_id = AKIAOTHER\naws_secret_access_key = x\n"
    )
    assert find_credentials(
        {"AWS_ACCESS_KEY_ID": "AKIAENV", "AWS_SECRET_ACCESS_KEY": "y"}
    ) == Credentials("AKIAENV", "y")
    assert find_credentials({"AWS_SHARED_CREDENTIALS_FILE": str(creds)}) == Credentials(
        "AKIAFILE", "s3cret"
    )
    assert (
        find_credentials(
            {"AWS_SHARED_CREDENTIALS_FILE": str(creds), "AWS_PROFILE": "other"}
        ).access_key
        == "AKIAOTHER"
    )  # type: ignore[union-attr]
    assert "s3cret" not in repr(find_credentials({"AWS_SHARED_CREDENTIALS_FILE": str(creds)}))
    nothing = {"AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}
    assert find_credentials(nothing) is None
    store = open_agent_store("s3://fleet?endpoint=http://127.0.0.1:1", env=nothing)
    assert isinstance(store, S3Store) and isinstance(store._provider, BotocoreProvider)


class ContainerCredentials(http.server.ThreadingHTTPServer):
    """The ECS/EKS container credentials endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI):
    serves `keys` with an expiry `ttl` seconds ahead and counts the fetches."""

    def __init__(self, keys: tuple[str, str], ttl: float) -> None:
        outer = self
        self.fetches = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.fetches += 1
                expiry = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=ttl)
                body = json.dumps({
                    "AccessKeyId": keys[0], "SecretAccessKey": keys[1], "Token": "session-token",
                    "Expiration": expiry.strftime("%Y-%m-%dT%H:%M:%SZ"),
                }).encode()  # fmt: skip
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/creds"


def test_role_credentials_go_through_the_one_client_and_its_deadlines(
    seaweedfs: S3Server, proxy: CountingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/security.md#slow-retrieval on instance/container roles: credentials from the provider chain (a real
    container credentials endpoint here), requests still bounded by the deadline when the
    bucket drips; credentials about to expire are fetched again."""
    bucket = lite_store(seaweedfs).bucket
    endpoint = ContainerCredentials((ACCESS_KEY, SECRET_KEY), ttl=300)  # inside the refresh window
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", endpoint.uri)
    try:
        url = f"s3://{bucket}?endpoint={proxy.endpoint}&region=us-east-1"
        store = open_agent_store(url, timeouts=Timeouts(connect=1, read=1, total=1.0))
        assert isinstance(store, S3Store)
        etag = store.put("k", b"v")
        got = store.get("k")
        assert isinstance(got, StoredObject) and got.etag == etag
        assert endpoint.fetches >= 2  # expiring within botocore's refresh window: refetched
        proxy.mode = "drip"
        started = time.monotonic()
        with pytest.raises(RequestTimedOut):
            store.get("k")
        assert time.monotonic() - started < 2.5
    finally:
        proxy.mode = "pass"
        endpoint.shutdown()


def test_no_credentials_anywhere_is_a_config_error_naming_the_fixes() -> None:
    """No static keys and no provider: the first request says how to give credentials."""
    store = open_agent_store("s3://fleet?endpoint=http://127.0.0.1:1&region=us-east-1")
    with pytest.raises(StoreConfigError, match="instance role"):
        store.get("desired/x.json")
