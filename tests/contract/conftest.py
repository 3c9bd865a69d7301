"""The store contract runs unchanged against every backend.

`store` is parametrized over the directory backend, Bosun's S3 client (`wire.store.s3`, on
obstore) against a real moto server process and a real SeaweedFS process (each server started
once per session), and boto3 (`tests.support.boto_store`, an independent reference client)
against both. `make_store(retry=, timeouts=)`
builds another store on the same backend with other settings.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.boto_store import BotoS3Store
from tests.support.fixtures import fresh_bucket
from tests.support.servers import ACCESS_KEY, SECRET_KEY, S3Server
from wire.store import DirectoryStore, Store
from wire.store.s3 import Timeouts

BACKENDS = ["directory", "moto", "seaweedfs", "boto-moto", "boto-seaweedfs"]

StoreFactory = Callable[..., Store]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_store(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    if backend == "directory":

        def make_dir(**_: Any) -> Store:
            return DirectoryStore(tmp_path / "bucket")

        return make_dir
    server: S3Server = request.getfixturevalue(
        "moto_server" if backend.endswith("moto") else "seaweedfs"
    )
    prefix = f"contract-{uuid.uuid4().hex[:12]}"
    if backend.startswith("boto-"):  # the reference client

        def make_boto(**kwargs: Any) -> Store:
            kwargs.setdefault("timeouts", Timeouts(connect=3, read=30))
            plain = fresh_bucket(server, prefix=prefix, **kwargs)
            return BotoS3Store(
                plain.bucket,
                prefix=prefix,
                endpoint=server.endpoint,
                access_key=ACCESS_KEY,
                secret_key=SECRET_KEY,
                **kwargs,
            )

        return make_boto

    def make_s3(**kwargs: Any) -> Store:  # every store of one test shares bucket and prefix
        # Generous read timeout: 20 racing conditional PUTs take seconds on a loaded SeaweedFS,
        # and these tests assert who wins, not how fast.
        kwargs.setdefault("timeouts", Timeouts(connect=3, read=30))
        return fresh_bucket(server, prefix=prefix, **kwargs)

    return make_s3


@pytest.fixture
def store(make_store: StoreFactory) -> Store:
    return make_store()
