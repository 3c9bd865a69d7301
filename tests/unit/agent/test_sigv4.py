"""The stdlib SigV4 signer of `wire.store.lite` produces exactly botocore's signatures."""

from __future__ import annotations

import datetime
import hashlib
from unittest import mock

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from wire.store.lite import EMPTY_SHA256, Credentials, sigv4_headers

NOW = datetime.datetime(2026, 11, 25, 1, 2, 3, tzinfo=datetime.UTC)


def botocore_authorization(
    creds: Credentials, method: str, url: str, body: bytes, region: str
) -> str:
    request = AWSRequest(method=method, url=url, data=body or None)
    auth = S3SigV4Auth(
        BotoCredentials(creds.access_key, creds.secret_key, creds.token), "s3", region
    )
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW.replace(tzinfo=None)):
        auth.add_auth(request)
    assert request.headers["X-Amz-Date"] == "20261125T010203Z"
    return str(request.headers["Authorization"])


@pytest.mark.parametrize(
    ("method", "path", "query", "body", "token"),
    [
        ("GET", "/fleet/desired/web-1.json", [], b"", None),
        ("PUT", "/fleet/reports/web-1.json", [], b'{"body": 1}', "session-token"),
        ("PUT", "/fleet/reports/web-2.json", [], b"x" * 1000, None),
        ("GET", "/fleet/", [("list-type", "2"), ("prefix", "pre fix/reports/")], b"", None),
        ("DELETE", "/fleet/a%20b%2Bc.json", [], b"", None),
    ],
)
def test_signature_matches_botocore(
    method: str, path: str, query: list[tuple[str, str]], body: bytes, token: str | None
) -> None:
    """Same request, same time: the Authorization header equals botocore's S3SigV4Auth."""
    from urllib.parse import quote

    creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    host = "127.0.0.1:8333"
    payload = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
    ours = sigv4_headers(
        creds,
        method=method,
        host=host,
        path=path,
        query=query,
        payload_hash=payload,
        region="eu-west-1",
        now=NOW,
    )
    qs = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in query)
    url = f"http://{host}{path}" + (f"?{qs}" if qs else "")
    assert ours["authorization"] == botocore_authorization(creds, method, url, body, "eu-west-1")
    assert ours["x-amz-date"] == "20261125T010203Z"
    assert ("x-amz-security-token" in ours) == (token is not None)


def test_a_redirect_naming_the_bucket_region_moves_the_store_there_once() -> None:
    """On AWS (no endpoint) a 301 with x-amz-bucket-region is asked again, once, in that
    region (signed for it); an endpoint store, a bogus region or a second redirect is not."""
    from wire.errors import StoreError
    from wire.store.lite import LiteS3Store, _Response

    store = LiteS3Store("fleet", credentials=Credentials("AKIA", "s"))
    asked: list[tuple[str, str]] = []
    moved = _Response(301, {"x-amz-bucket-region": "eu-west-3"}, b"")
    answers = [moved, _Response(200, {"etag": '"e"'}, b"{}")]

    def once(*_: object) -> _Response:
        asked.append((store._host, store.region))
        return answers.pop(0)

    store._once = once  # type: ignore[method-assign]
    got = store.get("desired/a.json")
    assert got.etag == '"e"'  # type: ignore[union-attr]
    assert asked == [("fleet.s3.us-east-1.amazonaws.com", "us-east-1"),
                     ("fleet.s3.eu-west-3.amazonaws.com", "eu-west-3")]  # fmt: skip
    again = [_Response(301, {"x-amz-bucket-region": "ap-south-1"}, b"")] * 3
    answers[:] = again
    with pytest.raises(StoreError):  # the region moved once already this request: no loop
        store.get("desired/a.json")
    assert not store._relocate(_Response(301, {"x-amz-bucket-region": "../evil"}, b""))
    local = LiteS3Store("fleet", credentials=Credentials("a", "s"), endpoint="http://127.0.0.1:1")
    assert not local._relocate(moved)


def test_the_region_comes_from_the_url_then_aws_region_then_aws_default_region() -> None:
    """The store URL's region= wins; else AWS_REGION (ECS, Lambda), else AWS_DEFAULT_REGION."""
    from wire.store.lite import LiteS3Store, open_agent_store

    keys = {"AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": "s"}
    both = {**keys, "AWS_REGION": "eu-west-3", "AWS_DEFAULT_REGION": "us-west-2"}
    for url, env, region in (
        ("s3://fleet?region=ap-south-1", both, "ap-south-1"),
        ("s3://fleet", both, "eu-west-3"),
        ("s3://fleet", {**keys, "AWS_DEFAULT_REGION": "us-west-2"}, "us-west-2"),
        ("s3://fleet", keys, "us-east-1"),
    ):
        store = open_agent_store(url, env=env)
        assert isinstance(store, LiteS3Store) and store.region == region, (url, env)
