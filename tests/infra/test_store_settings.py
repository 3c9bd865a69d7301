"""The SeaweedFS store URLs documented in docs/deploy.md work with both S3 clients."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support.servers import ACCESS_KEY, SECRET_KEY, S3Server
from wire.store import Missing, NotModified, StoredObject, open_agent_store, open_store
from wire.store.s3 import S3Store

DOC = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"
DOC_HOST = "http://seaweedfs.internal:8333"


def _documented_urls() -> list[str]:
    urls = re.findall(r"^(s3://\S+)$", DOC.read_text(), flags=re.MULTILINE)
    seaweed = [u for u in urls if DOC_HOST in u]
    assert len(seaweed) >= 2, "docs/deploy.md lost its SeaweedFS examples"
    return seaweed


@pytest.mark.parametrize("documented", _documented_urls())
def test_documented_seaweedfs_urls(
    documented: str, seaweedfs: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each documented URL, pointed at a real SeaweedFS, round-trips through both clients."""
    bucket = f"fleet-{uuid.uuid4().hex[:8]}"
    url = documented.replace(DOC_HOST, seaweedfs.endpoint).replace("s3://fleet", f"s3://{bucket}")
    S3Store(
        bucket, endpoint=seaweedfs.endpoint, access_key=ACCESS_KEY, secret_key=SECRET_KEY
    ).create_bucket()
    creds = seaweedfs.credentials_env()
    for name, value in creds.items():
        monkeypatch.setenv(name, value)
    controller_side = open_store(url)
    agent_side = open_agent_store(url, env=creds)
    assert type(agent_side).__name__ == "S3Store"  # the one S3 client

    etag = controller_side.put("desired/web-1.json", b'{"doc": 1}', if_none_match="*")
    got = agent_side.get("desired/web-1.json")
    assert isinstance(got, StoredObject) and got.body == b'{"doc": 1}'
    assert isinstance(agent_side.get("desired/web-1.json", if_none_match=etag), NotModified)
    agent_side.put("reports/web-1.json", b'{"report": 1}')
    assert isinstance(controller_side.get("reports/web-1.json"), StoredObject)
    assert isinstance(agent_side.get("desired/web-2.json"), Missing)
    prefix = urlsplit(url).path.strip("/")
    direct = S3Store(
        bucket, endpoint=seaweedfs.endpoint, access_key=ACCESS_KEY, secret_key=SECRET_KEY
    )
    expected = f"{prefix}/reports/web-1.json" if prefix else "reports/web-1.json"
    assert isinstance(direct.get(expected), StoredObject)  # the prefix is honoured
