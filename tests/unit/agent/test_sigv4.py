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
