"""Session-scoped real S3 servers, shared by the contract and integration tiers.

Use from a conftest: `from tests.support.fixtures import moto_server, seaweedfs  # noqa: F401`.
Each server starts once per test session; tests get credentials through `s3_env`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.support.servers import ACCESS_KEY, SECRET_KEY, S3Server, start_moto, start_seaweedfs
from wire.retry import RetryPolicy
from wire.store.s3 import S3Store, Timeouts


@pytest.fixture(scope="session")
def moto_server() -> Iterator[S3Server]:
    server = start_moto()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def seaweedfs() -> Iterator[S3Server]:
    server = start_seaweedfs()
    yield server
    server.stop()


_created: set[str] = set()
SHARED_BUCKET = "bosun-test"


def fresh_bucket(
    server: S3Server,
    *,
    retry: RetryPolicy | None = None,
    timeouts: Timeouts | None = None,
    prefix: str | None = None,
    own_bucket: bool = False,
) -> S3Store:
    """An empty store on `server`: a unique prefix in one shared bucket per server.

    SeaweedFS allocates volumes per bucket, so tests share one bucket and get a fresh
    prefix each (`store.url` includes it). `own_bucket=True` makes a new bucket instead.
    """
    bucket = f"bosun-{uuid.uuid4().hex[:12]}" if own_bucket else SHARED_BUCKET
    store = S3Store(
        bucket,
        prefix=f"t-{uuid.uuid4().hex[:12]}" if prefix is None else prefix,
        endpoint=server.endpoint,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        retry=retry or RetryPolicy(attempts=3, total_seconds=10, wait_initial=0, wait_max=0),
        timeouts=timeouts,
    )
    marker = f"{server.endpoint}/{bucket}"
    if marker not in _created:
        store.create_bucket()
        _created.add(marker)
    return store
