"""Agent integration fixtures: real S3 servers, a counting proxy in front, real agent processes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.integration.agent.proxy import CountingProxy
from tests.support.fixtures import moto_server, seaweedfs  # noqa: F401
from tests.support.servers import S3Server, free_port
from wire.store import open_agent_store
from wire.store.s3 import S3Store, Timeouts


@pytest.fixture(params=["moto", "seaweedfs"])
def s3_server(request: pytest.FixtureRequest) -> S3Server:
    server: S3Server = request.getfixturevalue(
        "moto_server" if request.param == "moto" else "seaweedfs"
    )
    return server


def lite_store(
    server: S3Server,
    endpoint: str | None = None,
    *,
    timeouts: Timeouts | None = None,
    prefix: str = "",
    bucket: str | None = None,
) -> S3Store:
    """The agent's S3 store on a fresh bucket of `server` (optionally reached through
    `endpoint`)."""
    bucket = bucket or f"agent-{uuid.uuid4().hex[:12]}"
    admin = open_agent_store(server.store_url(bucket), env=server.credentials_env())
    assert isinstance(admin, S3Store)
    admin.create_bucket()
    url = f"s3://{bucket}{'/' + prefix if prefix else ''}?endpoint={endpoint or server.endpoint}&region=us-east-1"
    store = open_agent_store(url, env=server.credentials_env(), timeouts=timeouts)
    assert isinstance(store, S3Store)
    return store


@pytest.fixture
def proxy(seaweedfs: S3Server) -> Iterator[CountingProxy]:  # noqa: F811
    p = CountingProxy(seaweedfs.endpoint, free_port()).start()
    yield p
    p.stop()
