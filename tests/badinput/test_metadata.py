"""docs/security.md#metadata: nothing security-relevant in object metadata. Metadata is not signed, so
the controller decides on the signed body only, and writes none itself."""

from __future__ import annotations

from typing import Any

import orjson

from tests.faults.kit import agents, controller, round_trip, start_spec
from tests.support.boto_store import BotoS3Store
from tests.support.fixtures import fresh_bucket
from tests.support.servers import ACCESS_KEY, SECRET_KEY, S3Server
from wire.layout import STATUS_CLUSTER, report_key
from wire.store import StoredObject


def test_metadata_never_decides_and_is_never_written(seaweedfs: S3Server) -> None:
    """A valid snapshot whose S3 metadata claims another machine, seq and health is taken
    in exactly as its signed body says; garbage whose metadata claims validity is refused;
    and no request of a controller cycle carries metadata."""
    store = fresh_bucket(seaweedfs)
    start_spec(store)
    fleet = agents(store)
    sent: list[dict[str, Any]] = []

    def hook(model: Any, params: dict[str, Any], **_: Any) -> None:
        if model.name == "PutObject":
            sent.append({k: v for k, v in params.get("headers", {}).items()})

    boto = BotoS3Store(store.bucket, prefix=store.prefix, endpoint=seaweedfs.endpoint,
                       access_key=ACCESS_KEY, secret_key=SECRET_KEY)  # fmt: skip
    boto.client.meta.events.register("before-call.s3", hook)
    ctl = controller(boto)
    round_trip(ctl, fleet, rounds=2)
    liar = {"machine": "m-1", "seq": "99999999999999", "health": "healthy", "kid": "m-1@0"}
    raw = fleet[0].sealed(fleet[0].snapshot())
    client = boto.client
    client.put_object(Bucket=store.bucket, Key=store.prefix + report_key("m-0"), Body=raw,
                      Metadata=liar)  # fmt: skip
    client.put_object(Bucket=store.bucket, Key=store.prefix + report_key("m-2"), Body=b"garbage",
                      Metadata={**liar, "machine": "m-2", "signature": "valid"})  # fmt: skip
    sent.clear()
    report = ctl.cycle()
    assert report.rejected == 1 and report.accepted >= 1, report.summary()
    got = store.get(STATUS_CLUSTER, max_bytes=16 * 1024 * 1024)
    assert isinstance(got, StoredObject)
    status = orjson.loads(got.body)
    assert status["seen"]["m-0"]["seq"] == fleet[0].seq  # the body's seq, not the metadata's
    assert "m-2" in status["rejected"]
    assert sent, "the cycle wrote nothing at all"
    assert not [h for h in sent if any(k.lower().startswith("x-amz-meta-") for k in h)], sent


def test_the_controllers_own_client_writes_no_metadata(seaweedfs: S3Server) -> None:
    """`bosun controller` writes objects through `wire.store.s3` (obstore): none of its
    PUTs in a cycle that plans every machine carries an x-amz-meta-* header, as seen on the
    wire by a proxy."""
    from tests.faults.kit import via
    from tests.support.faultproxy import FaultProxy

    store = fresh_bucket(seaweedfs)
    start_spec(store)
    fleet = agents(store)
    with FaultProxy(seaweedfs.endpoint) as proxy:
        ctl_store = via(store, proxy.endpoint)
        round_trip(controller(ctl_store), fleet, rounds=2)
        headers = [h for method, _, h in proxy.heads() if method == "PUT"]
    assert len(headers) >= len(fleet), headers  # every desired document, status, memory...
    assert not [h for h in headers if any(k.startswith("x-amz-meta-") for k in h)]
