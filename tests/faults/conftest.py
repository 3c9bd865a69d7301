"""Fault scenarios: SeaweedFS (the suite's session server) behind a fault proxy."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.faultproxy import FaultProxy
from tests.support.fixtures import fresh_bucket
from tests.support.servers import S3Server
from wire.store.s3 import S3Store


@pytest.fixture
def proxy(seaweedfs: S3Server) -> Iterator[FaultProxy]:
    with FaultProxy(seaweedfs.endpoint) as p:
        yield p


@pytest.fixture
def direct(seaweedfs: S3Server) -> S3Store:
    """A fresh prefix, reached directly (no faults): what the simulated agents and the
    watcher use, and how the tests inspect the bucket."""
    return fresh_bucket(seaweedfs)
