"""Canonical JSON, key derivation and signatures, as properties."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wire import signing
from wire.errors import BadSignature, BosunError

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
bodies = st.dictionaries(st.text(max_size=8), json_values, max_size=6)
KEY = bytes(range(32))


@given(bodies)
def test_sign_verify_round_trips(body: dict[str, object]) -> None:
    """A signature made for (format, key, body) verifies for exactly that triple."""
    sig = signing.sign(KEY, "bosun.desired/1", "desired/a.json", body)
    signing.verify(KEY, "bosun.desired/1", "desired/a.json", body, sig)


@given(bodies, st.data())
def test_changing_any_byte_of_the_signed_message_fails(
    body: dict[str, object], data: st.DataObject
) -> None:
    """Flipping any byte of the format, object key or canonical body breaks the signature."""
    fmt, key = "bosun.desired/1", "desired/a.json"
    sig = signing.sign(KEY, fmt, key, body)
    which = data.draw(st.sampled_from(["format", "key", "body"]))
    if which == "body":
        body = dict(body)
        body[data.draw(st.text(min_size=1, max_size=3))] = "injected"
    else:
        text = fmt if which == "format" else key
        i = data.draw(st.integers(0, len(text) - 1))
        mutated = text[:i] + chr((ord(text[i]) + 1) % 128 or 1) + text[i + 1 :]
        fmt, key = (mutated, key) if which == "format" else (fmt, mutated)
    with pytest.raises(BadSignature):
        signing.verify(KEY, fmt, key, body, sig)


@given(bodies)
def test_canonical_bytes_do_not_depend_on_dict_order(body: dict[str, object]) -> None:
    """Reversing insertion order gives the same canonical bytes."""
    reordered = dict(reversed(list(body.items())))
    assert signing.canonical(body) == signing.canonical(reordered)


@given(bodies)
def test_canonical_is_a_fixed_point_of_parse_then_serialize(body: dict[str, object]) -> None:
    """canonical(parse(canonical(x))) == canonical(x): verifying the decoded body is safe."""
    import orjson

    once = signing.canonical(body)
    assert signing.canonical(orjson.loads(once)) == once


@settings(max_examples=50)
@given(st.from_regex(r"[a-z0-9][a-z0-9-]{0,10}", fullmatch=True), st.integers(0, 1000))
def test_derived_keys_differ_per_machine_and_epoch(machine: str, epoch: int) -> None:
    """Another machine or another epoch yields another key."""
    master = b"m" * 32
    k = signing.derive_machine_key(master, machine, epoch)
    assert k != signing.derive_machine_key(master, machine + "x", epoch)
    assert k != signing.derive_machine_key(master, machine, epoch + 1)
    assert len(k) == 32


@pytest.mark.parametrize("sig", ["", "!!!", "AAAA", None, 5])
def test_malformed_signatures_are_refused(sig: object) -> None:
    """Empty, non-base64 and wrong-length signatures fail verification cleanly."""
    with pytest.raises(BadSignature):
        signing.verify(KEY, "f", "k", {}, sig)


def test_signature_from_another_key_is_refused() -> None:
    """A signature made with machine B's key does not verify with A's."""
    a = signing.derive_machine_key(KEY, "a", 0)
    b = signing.derive_machine_key(KEY, "b", 0)
    with pytest.raises(BadSignature):
        signing.verify(a, "f", "k", {"x": 1}, signing.sign(b, "f", "k", {"x": 1}))


@pytest.mark.parametrize("kid", ["a", "a@", "@1", "a@b", "a@1@2", "A@1", "../x@1", 3, "a@-1"])
def test_malformed_kids_are_refused(kid: object) -> None:
    """kid must be '<machine>@<epoch>'."""
    with pytest.raises(BadSignature, match="malformed kid"):
        signing.parse_kid(kid)


def test_kid_round_trips() -> None:
    """format_kid and parse_kid are inverse."""
    assert signing.parse_kid(signing.format_kid("web-1", 3)) == ("web-1", 3)


def test_key_file_is_owner_only_and_refused_when_readable_by_others(tmp_path: Path) -> None:
    """Key files are written 0600; a group-readable one is refused with the chmod fix."""
    path = tmp_path / "master.key"
    key = signing.generate_master_key()
    signing.write_key_file(path, key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert signing.read_key_file(path) == key
    with pytest.raises(BosunError, match="already exists"):
        signing.write_key_file(path, key)
    path.chmod(0o640)
    with pytest.raises(BosunError, match=f"chmod 600 {path}"):
        signing.read_key_file(path)


def test_corrupt_key_file_is_a_clear_error(tmp_path: Path) -> None:
    """A key of the wrong length or encoding names the file."""
    path = tmp_path / "k"
    path.write_text("not-a-key!")
    path.chmod(0o600)
    with pytest.raises(BosunError, match=str(path)):
        signing.read_key_file(path)


def test_a_signature_spelled_differently_is_refused() -> None:
    """Changing the unused trailing bits of the last base64url character keeps the bytes
    but is not the canonical spelling: refused (no signature malleability)."""
    sig = signing.sign(KEY, "f", "k", {"x": 1})
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(sig[-1])
    # a 32-byte MAC: the last character's low 2 bits are unused
    twin = sig[:-1] + alphabet[last ^ 1]
    assert signing.unb64(sig) == base64_bytes(twin)
    with pytest.raises(BadSignature, match="canonical"):
        signing.verify(KEY, "f", "k", {"x": 1}, twin)


def base64_bytes(text: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
