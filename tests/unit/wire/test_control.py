"""Signed control objects past 16 MiB: written compact, verified before they are parsed
(docs/security.md#fleet-sized-objects); a forged one of any size costs a pass of SHA-256."""

from __future__ import annotations

import types

import orjson
import pytest

import wire.control
from wire.control import (
    MAX_PRETTY_CONTROL_BYTES,
    open_control,
    seal_control,
)
from wire.errors import ControlRefused
from wire.signing import derive_control_key

KEY = derive_control_key(bytes(range(32)))
OTHER = derive_control_key(bytes(32))
INTAKE = "control/intake.json"


def fleet_value(n: int) -> dict[str, object]:
    return {"format": "bosun.intake/1", "desired": {f"m{i:06d}": f'"{i:032x}"' for i in range(n)}}


@pytest.fixture(scope="module")
def compact() -> bytes:
    """A real object past the pretty cap (~18 MiB compact)."""
    raw = seal_control(KEY, INTAKE, fleet_value(400_000), version=5, marks={"control/keys.json": 2})
    assert len(raw) > MAX_PRETTY_CONTROL_BYTES
    return raw


def test_past_the_pretty_cap_the_envelope_is_compact_sorted_json(compact: bytes) -> None:
    """Exactly orjson's sorted envelope: any JSON reader (jq, an older bosun) parses it."""
    env = orjson.loads(compact)
    assert compact == orjson.dumps(env, option=orjson.OPT_SORT_KEYS) + b"\n"
    sealed = open_control(compact, INTAKE, KEY)
    assert sealed.version == 5 and sealed.marks == {"control/keys.json": 2}
    assert sealed.value == env["body"]["value"] and len(sealed.value["desired"]) == 400_000


def test_small_objects_stay_pretty() -> None:
    raw = seal_control(KEY, INTAKE, fleet_value(3), version=1, marks={})
    assert raw.startswith(b'{\n  "body": {')
    assert open_control(raw, INTAKE, KEY).value == fleet_value(3)


def test_a_forged_compact_object_is_refused_without_being_parsed(
    compact: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another key, another object key, a byte changed in the body, a signature moved from
    another object: bad_signature, and orjson never parses a byte of it (a hostile body
    of nested lists would cost ~30x its size in memory once parsed)."""

    def never(_raw: object) -> object:
        raise AssertionError("a forged control object was parsed")

    hostile_body = b'{"version":9,"marks":{},"value":{"x":[' + b"[]," * 6_000_000 + b"[]]}}"
    with monkeypatch.context() as m:
        m.setattr(wire.control, "MAX_PRETTY_CONTROL_BYTES", 10)  # a small one, compact
        other_sig = seal_control(KEY, "control/memory.json", fleet_value(1), version=9, marks={})
    forged = {
        "other_master_key": seal_control(OTHER, INTAKE, fleet_value(400_000), version=9, marks={}),
        "flipped_byte": compact[:1000] + bytes([compact[1000] ^ 1]) + compact[1001:],
        "hostile_body": b'{"body":' + hostile_body + compact[compact.rfind(b',"format":') :],
        "signature_of_another_object": (
            compact[: compact.rfind(b',"format":')] + other_sig[other_sig.rfind(b',"format":') :]
        ),
    }
    monkeypatch.setattr(
        wire.control, "orjson", types.SimpleNamespace(loads=never, JSONDecodeError=ValueError)
    )
    for name, raw in forged.items():
        assert raw.startswith(b'{"body":'), name
        with pytest.raises(ControlRefused) as exc:
            open_control(raw, INTAKE, KEY)
        assert exc.value.reason == "bad_signature", name
    with pytest.raises(ControlRefused) as exc:  # the right object under another key
        open_control(compact, "control/memory.json", KEY)
    assert exc.value.reason == "bad_signature"


def test_caps_before_anything_is_read(compact: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pretty object past 16 MiB (what no writer makes) and a compact one past the
    compact cap are refused by their length; a compact body without its signed tail is
    malformed."""
    pretty = b"{\n" + b" " * MAX_PRETTY_CONTROL_BYTES + b"}"
    with pytest.raises(ControlRefused) as exc:
        open_control(pretty, INTAKE, KEY)
    assert exc.value.reason == "too_large"
    monkeypatch.setattr(wire.control, "MAX_CONTROL_BYTES", len(compact) - 1)
    with pytest.raises(ControlRefused) as exc:
        open_control(compact, INTAKE, KEY)
    assert exc.value.reason == "too_large"
    monkeypatch.undo()
    for cut in (compact[:-3], compact[: compact.rfind(b',"sig":')] + b"}", b'{"body":{}}'):
        with pytest.raises(ControlRefused) as exc:
            open_control(cut, INTAKE, KEY)
        assert exc.value.reason == "malformed"


def test_every_changed_byte_of_a_compact_object_is_refused_or_harmless(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Byte by byte over a small object written compact: each change is refused, or (in
    the unsigned tail's spelling) reads back the same value."""
    monkeypatch.setattr(wire.control, "MAX_PRETTY_CONTROL_BYTES", 10)
    raw = seal_control(KEY, INTAKE, {"a": [1, "two", {"x": None}], "b": 1.5}, version=3, marks={})
    assert raw.startswith(b'{"body":')
    good = open_control(raw, INTAKE, KEY)
    for i in range(len(raw)):
        for bit in (1, 32):
            changed = raw[:i] + bytes([raw[i] ^ bit]) + raw[i + 1 :]
            try:
                sealed = open_control(changed, INTAKE, KEY)
            except ControlRefused:
                continue
            assert sealed == good, (i, changed)


def test_an_older_pretty_object_is_still_read() -> None:
    """What a bosun before compact objects wrote (pretty, parsed then verified)."""
    from wire.documents import dumps_pretty
    from wire.signing import sign

    body = {"version": 2, "marks": {}, "value": fleet_value(12_000)}
    sig = sign(KEY, "bosun.control/1", INTAKE, body)
    raw = dumps_pretty({"format": "bosun.control/1", "kid": "controller", "sig": sig, "body": body})
    assert open_control(raw, INTAKE, KEY).value == body["value"]
