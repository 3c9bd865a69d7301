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


def fresh_bucket(server: S3Server, *, retry: RetryPolicy | None = None,
                 timeouts: Timeouts | None = None, prefix: str = "") -> S3Store:
    """A new, empty bucket on `server` (names are unique per call)."""
    store = S3Store(
        f"bosun-{uuid.uuid4().hex[:12]}", prefix=prefix, endpoint=server.endpoint,
        access_key=ACCESS_KEY, secret_key=SECRET_KEY,
        retry=retry or RetryPolicy(attempts=3, total_seconds=10, wait_initial=0, wait_max=0),
        timeouts=timeouts,
    )
    store.create_bucket()
    return store
