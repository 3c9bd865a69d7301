"""`wire.store.lite`: the stdlib S3 client against real moto and SeaweedFS servers."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.integration.agent.conftest import lite_store
from tests.integration.agent.proxy import CountingProxy
from tests.support.servers import S3Server
from wire.errors import DocumentTooLarge, StoreConfigError, StoreUnavailable, WriteConflict
from wire.store.base import Missing, NotModified, StoredObject
from wire.store.lite import (
    Credentials,
    LiteS3Store,
    RequestTimedOut,
    Timeouts,
    find_credentials,
    open_agent_store,
)


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

    store = LiteS3Store(
        "b", credentials=Credentials("a", "s"), endpoint=f"http://127.0.0.1:{free_port()}"
    )
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="cannot reach"):
        store.get("k")
    assert time.monotonic() - started < 3


def test_dripping_server_hits_the_request_deadline(
    seaweedfs: S3Server, proxy: CountingProxy
) -> None:
    """SECURITY 7: a server dripping one byte at a time is cut off at the deadline (RequestTimedOut)."""
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
    """SECURITY 6: an endless body without a length is refused after cap + 1 bytes; a big Content-Length before reading."""
    store = lite_store(seaweedfs, proxy.endpoint)
    proxy.mode = "huge"
    with pytest.raises(DocumentTooLarge, match="over the 1000-byte cap"):
        store.get("k", max_bytes=1000)
    proxy.mode = "pass"
    store.put("big", b"x" * 5000)
    with pytest.raises(DocumentTooLarge, match="5000 bytes is over the 1000-byte cap"):
        store.get("big", max_bytes=1000)


def test_credentials_from_env_then_shared_file_else_boto3_fallback(tmp_path: Path) -> None:
    """Static credentials come from env or the shared file; without them the agent store is boto3's S3Store."""
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
    from wire.store.s3 import S3Store

    assert isinstance(
        open_agent_store("s3://fleet?endpoint=http://127.0.0.1:1", env=nothing), S3Store
    )
