"""Strict decoding, sealing and opening of snapshot and desired documents."""

from __future__ import annotations

import contextlib
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wire import documents as d
from wire import signing
from wire.errors import BadSignature, DocumentTooLarge, InvalidDocument

MASTER = b"k" * 32
KEY_A = signing.derive_machine_key(MASTER, "web-1", 0)
KEY_B = signing.derive_machine_key(MASTER, "web-2", 0)


def keys(kid: str) -> bytes | None:
    return {"web-1@0": KEY_A, "web-2@0": KEY_B}.get(kid)


def snapshot(**kw: Any) -> d.Snapshot:
    base: dict[str, Any] = dict(
        machine="web-1", seq=1, sent_at=100.0, boot_id="b", agent_version="0.1"
    )
    base.update(kw)
    return d.Snapshot(**base)


def desired(**kw: Any) -> d.Desired:
    base: dict[str, Any] = dict(
        machine="web-1",
        generation=5,
        fence=2,
        issued_at=1.0,
        expires_at=2.0,
        spec_revision=1,
        mode="active",
        service="web",
        version="1.0",
    )
    base.update(kw)
    return d.Desired(**base)


def body_of(doc: d.Snapshot | d.Desired) -> dict[str, Any]:
    return d.encode_body(doc)


def test_snapshot_round_trips_through_seal_and_open() -> None:
    """A sealed snapshot opens to an equal value."""
    snap = snapshot(
        services={"web": d.ServiceState(version="1", requests=3, port=80)}, sessions={"voice": 2}
    )
    raw = d.seal(snap, key=KEY_A, kid="web-1@0", object_key="reports/web-1.json")
    _, opened = d.open_snapshot(raw, "reports/web-1.json", keys)
    assert opened == snap


def test_desired_round_trips_and_is_pretty() -> None:
    """A sealed desired document opens to an equal value and is readable JSON."""
    doc = desired(
        peers=d.Peers(service="web", backends=(d.Peer("web-2", "10.0.0.2", 80, 5),)),
        config={"a": [1, {"b": None}]},
    )
    raw = d.seal(doc, key=KEY_A, kid="web-1@0", object_key="desired/web-1.json")
    assert b'\n  "body": {' in raw
    assert d.open_desired(raw, "desired/web-1.json", keys)[1] == doc


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"format": "bosun.snapshot/1", "kid"', "not valid JSON"),
        (b"[]", "expected a JSON object, got array"),
        (
            b'{"format": "bosun.other/9", "kid": "a@0", "sig": "x", "body": {}}',
            "format: expected one of",
        ),
        (
            b'{"format": "bosun.snapshot/1", "kid": 1, "sig": "x", "body": {}}',
            "kid: expected string",
        ),
        (
            b'{"format": "bosun.snapshot/1", "kid": "a@0", "sig": "x", "body": []}',
            "body: expected object",
        ),
        (
            b'{"format": "bosun.snapshot/1", "kid": "a@0", "sig": "x", "body": {}, "x": 1}',
            "unknown envelope field 'x'",
        ),
        (b"", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
    ],
)
def test_malformed_envelopes_raise_invalid_document(raw: bytes, message: str) -> None:
    """Every envelope defect is an InvalidDocument naming what was expected."""
    with pytest.raises(InvalidDocument, match=message):
        d.parse_envelope(raw, where="reports/web-1.json")


def test_oversized_document_is_refused_before_parsing() -> None:
    """Over 256 KiB is DocumentTooLarge even if it is not JSON at all."""
    with pytest.raises(DocumentTooLarge, match="over the 262144-byte cap"):
        d.parse_envelope(b"x" * (d.MAX_DOCUMENT_BYTES + 1))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b.update(seq="1"), r"body\.seq: expected integer, got string"),
        (lambda b: b.update(seq=True), r"body\.seq: expected integer, got boolean"),
        (lambda b: b.update(sent_at=None), r"body\.sent_at: expected a UTC time .*, got null"),
        (lambda b: b.update(sent_at="2026-13-01T00:00:00Z"), r"body\.sent_at: .* not a valid date"),
        (lambda b: b.update(sent_at=1e300), r"body\.sent_at: time 1e\+300 is outside years"),
        (lambda b: b.pop("boot_id"), "missing required field 'boot_id'"),
        (lambda b: b.update(extra=1), "unknown field 'extra'"),
        (lambda b: b.update(status="dancing"), r"body\.status: expected one of"),
        (lambda b: b.update(sessions={"voice": 1.5}), r"body\.sessions\.voice: expected integer"),
        (
            lambda b: b.update(services={"web": {"requests": "many"}}),
            r"body\.services\.web\.requests: expected integer",
        ),
        (
            lambda b: b.update(services={"web": {"colour": 1}}),
            r"body\.services\.web: unknown field 'colour'",
        ),
        (lambda b: b.update(eligible="web"), r"body\.eligible: expected array, got string"),
        (lambda b: b.update(addresses=[]), r"body\.addresses: expected object, got array"),
        (lambda b: b.update(machine="../etc"), r"body\.machine: invalid machine id"),
        (lambda b: b.update(machine="Web-1"), r"body\.machine: invalid machine id"),
        (lambda b: b.update(seq=2**70), "integer out of range"),
        (lambda b: b.update(eligible=["web", "../x"]), r"body\.eligible\[1\]: invalid machine id"),
        (lambda b: b.update(services={"Web": {}}), r"body\.services\.Web: invalid machine id"),
    ],
)
def test_malformed_snapshot_bodies_name_the_field(mutate: Any, message: str) -> None:
    """Wrong types, unknown/missing fields and bad ids name the field path."""
    body = body_of(snapshot())
    mutate(body)
    with pytest.raises(InvalidDocument, match=message):
        d.decode_snapshot_body(body, where="reports/web-1.json")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b.update(mode="sideways"), r"body\.mode: expected one of"),
        (lambda b: b.update(generation=1.5), r"body\.generation: expected integer, got number"),
        (
            lambda b: b.update(peers={"backends": [{"machine": "a"}]}),
            r"peers\.backends\[0\]: missing required field 'address'",
        ),
        (lambda b: b.update(drain={"reason": "x"}), r"body\.drain: missing required field"),
        (lambda b: b.update(config=_deep(40)), "nested deeper than 32 levels"),
        (lambda b: b.update(service="../../etc"), r"body\.service: invalid machine id"),
        (lambda b: b.update(service="w\u00e9b"), r"body\.service: invalid machine id"),
        (
            lambda b: b.update(peers={"backends": [{"machine": "A/B", "address": "x"}]}),
            r"peers\.backends\[0\]\.machine: invalid",
        ),
        (lambda b: b.update(config={"x": [0] * 10_001}), "more than 10000 items"),
    ],
)
def test_malformed_desired_bodies_name_the_field(mutate: Any, message: str) -> None:
    """Desired documents are decoded as strictly, with bounded config nesting and sizes."""
    body = body_of(desired())
    mutate(body)
    with pytest.raises(InvalidDocument, match=message):
        d.decode_desired_body(body)


def _deep(n: int) -> Any:
    value: Any = 1
    for _ in range(n):
        value = {"x": value}
    return value


def test_tampered_byte_anywhere_is_refused() -> None:
    """Flipping a byte inside the signed body either breaks JSON or the signature."""
    raw = d.seal(snapshot(), key=KEY_A, kid="web-1@0", object_key="reports/web-1.json")
    start = raw.index(b'"boot_id": "b"') + len('"boot_id": "')
    tampered = raw[:start] + b"c" + raw[start + 1 :]
    with pytest.raises(BadSignature, match="does not verify"):
        d.open_snapshot(tampered, "reports/web-1.json", keys)


def test_unknown_kid_is_refused_without_trying_other_keys() -> None:
    """A kid the lookup does not know fails as unknown, whatever the signature."""
    raw = d.seal(snapshot(), key=KEY_A, kid="web-1@7", object_key="reports/web-1.json")
    with pytest.raises(BadSignature, match="unknown kid"):
        d.open_snapshot(raw, "reports/web-1.json", keys)


def test_snapshot_of_one_machine_under_another_key_is_refused() -> None:
    """web-2's valid snapshot copied to reports/web-1.json does not verify (key bound)."""
    raw = d.seal(
        snapshot(machine="web-2"), key=KEY_B, kid="web-2@0", object_key="reports/web-2.json"
    )
    with pytest.raises(BadSignature):
        d.open_snapshot(raw, "reports/web-1.json", keys)


def test_snapshot_signed_for_its_key_but_naming_another_machine_is_refused() -> None:
    """kid and body must both name the machine of the object key."""
    raw = d.seal(
        snapshot(machine="web-2"), key=KEY_A, kid="web-1@0", object_key="reports/web-1.json"
    )
    with pytest.raises(BadSignature, match="only 'web-1' may write here"):
        d.open_snapshot(raw, "reports/web-1.json", keys)


def test_desired_copied_to_another_machine_is_refused() -> None:
    """Machine A's desired document placed at desired/B.json is refused."""
    raw = d.seal(desired(), key=KEY_A, kid="web-1@0", object_key="desired/web-1.json")
    with pytest.raises(BadSignature):
        d.open_desired(raw, "desired/web-2.json", keys)


def test_snapshot_placed_as_desired_is_refused() -> None:
    """A valid snapshot at desired/A.json is refused as the wrong kind."""
    raw = d.seal(snapshot(), key=KEY_A, kid="web-1@0", object_key="desired/web-1.json")
    with pytest.raises(BadSignature, match=r"expected bosun\.desired/1"):
        d.open_desired(raw, "desired/web-1.json", keys)


def test_duplicate_keys_cannot_split_verified_and_used_values() -> None:
    """A duplicated field is parsed once; the signature is checked on that parsed value."""
    raw = d.seal(snapshot(seq=5), key=KEY_A, kid="web-1@0", object_key="reports/web-1.json")
    smuggled = raw.replace(b'"seq": 5', b'"seq": 5, "seq": 9')
    assert orjson.loads(smuggled)["body"]["seq"] == 9  # what a parser would use...
    with pytest.raises(BadSignature):  # ...is what gets verified, and it was not signed
        d.open_snapshot(smuggled, "reports/web-1.json", keys)


@settings(max_examples=200)
@given(st.binary(max_size=400))
def test_random_bytes_never_raise_anything_but_documented_errors(raw: bytes) -> None:
    """Arbitrary input yields InvalidDocument or BadSignature, never KeyError/TypeError."""
    with pytest.raises((InvalidDocument, BadSignature)):
        d.open_snapshot(raw, "reports/web-1.json", keys)


@settings(max_examples=200)
@given(
    st.dictionaries(
        st.sampled_from([*body_of(snapshot()), "zzz"]),
        st.none()
        | st.integers()
        | st.text(max_size=5)
        | st.lists(st.integers(), max_size=2)
        | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    )
)
def test_random_bodies_raise_only_invalid_document(body: dict[str, Any]) -> None:
    """Random field values in a body are InvalidDocument, never a bare Python error."""
    with contextlib.suppress(InvalidDocument):
        d.decode_snapshot_body(body)


def test_a_body_nested_too_deep_to_canonicalise_is_malformed_not_forged() -> None:
    """500 levels parse but could not be canonicalised: InvalidDocument naming the object
    and the bound, before the signature is checked (counted as malformed)."""
    raw = d.seal(snapshot(), key=KEY_A, kid="web-1@0", object_key="reports/web-1.json")
    deep = b'{"x":' * 500 + b"1" + b"}" * 500  # orjson parses it but will not serialise it
    raw = raw.replace(b'"body": {', b'"body": {"deep": ' + deep + b",", 1)
    with pytest.raises(InvalidDocument, match=r"reports/web-1\.json\.body: nested deeper than 32"):
        d.open_snapshot(raw, "reports/web-1.json", keys)
