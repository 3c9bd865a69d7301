"""`bosun doctor`'s verdict: each setup mistake and a store lacking behaviour, with its fix."""

from __future__ import annotations

import pytest

from controller.operations.store_probe import Probe
from controller.operations.store_verdict import Where, classify, verdict
from wire.errors import (
    BosunError,
    StoreAccessDenied,
    StoreConfigError,
    StoreError,
    StoreUnavailable,
)

WHERE = Where(
    "s3://fleet?endpoint=http://127.0.0.1:9&region=us-east-1", "http://127.0.0.1:9", "fleet"
)

# the messages the S3 clients raise (wire.store.s3 and wire.store.lite translate them)
CASES: list[tuple[BosunError, str, str, str]] = [
    (
        StoreUnavailable(
            "GET s3://fleet/x: cannot reach http://127.0.0.1:9: ConnectionRefusedError: refused"
        ),
        "unreachable",
        "cannot reach http://127.0.0.1:9",
        "host and port",
    ),
    (
        StoreConfigError("no AWS credentials found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"),
        "no_credentials",
        "no credentials",
        "export AWS_ACCESS_KEY_ID",
    ),
    (
        StoreAccessDenied("GET s3://fleet/x: access denied (InvalidAccessKeyId); check ..."),
        "bad_credentials",
        "does not accept these credentials",
        "check AWS_ACCESS_KEY_ID",
    ),
    (
        StoreAccessDenied("GET s3://fleet/x: access denied (SignatureDoesNotMatch); check"),
        "bad_credentials",
        "does not accept these credentials",
        "AWS_SECRET_ACCESS_KEY",
    ),
    (
        StoreConfigError("bucket 'fleet' does not exist at http://127.0.0.1:9"),
        "missing_bucket",
        "bucket 'fleet' does not exist",
        "aws s3 mb s3://fleet --endpoint-url http://127.0.0.1:9",
    ),
    (
        StoreAccessDenied("PUT s3://fleet/x: access denied (AccessDenied); check ..."),
        "access_denied",
        "access denied",
        "controller policy",
    ),
]


@pytest.mark.parametrize(("error", "kind", "problem", "fix"), CASES)
def test_each_setup_mistake_has_its_verdict_and_fix(
    error: BosunError, kind: str, problem: str, fix: str
) -> None:
    """Unreachable, no or bad credentials, missing bucket and access denied are told apart."""
    got = classify(error, WHERE)
    assert (got.kind, problem in got.problem, fix in got.fix) == (kind, True, True), got
    assert got.text().splitlines()[-1].startswith("fix: ")


def test_setup_error_in_a_probe_is_not_blamed_on_the_store() -> None:
    """Reads allowed but writes denied: the verdict is access denied, not missing behaviour."""
    denied = StoreAccessDenied("PUT s3://fleet/control/doctor/a.json: access denied (AccessDenied)")
    results = [
        Probe("conditional create (If-None-Match: *)", False, str(denied), denied),
        Probe("20-writer create-only race has one winner", False, str(denied), denied),
    ]
    got = verdict(results, WHERE)
    assert got.kind == "access_denied" and "missing" not in got.problem


def test_missing_behaviour_names_each_one() -> None:
    """A store that answered, but wrongly, is refused naming the behaviours it lacks."""
    results = [
        Probe("conditional create (If-None-Match: *)", True, "ok"),
        Probe("conditional GET answers 304 (If-None-Match)", False, "returned the body (no 304)"),
    ]
    got = verdict(results, WHERE)
    assert got.kind == "missing_behaviour"
    assert "conditional GET answers 304" in got.problem and "no 304" in got.problem
    assert verdict(results[:1], WHERE).ok


def test_unknown_store_error_keeps_its_text() -> None:
    """An error nothing else explains is shown as the store said it."""
    got = classify(StoreError("GET s3://fleet/x: 400 BadRequest"), WHERE)
    assert got.kind == "store_error" and "400 BadRequest" in got.problem
