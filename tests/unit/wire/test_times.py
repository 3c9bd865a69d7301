"""ISO 8601 UTC times on the wire (wire.times, codec `Timestamp`): one text per instant,
read back to the same text, numbers from older documents read too, nonsense refused naming
the field, and signatures that both ends compute over the same canonical bytes."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from wire import codec
from wire.documents import Applied, Desired, Drain, Refusal, Snapshot, open_desired, seal
from wire.errors import InvalidDocument
from wire.layout import desired_key
from wire.signing import canonical, derive_machine_key, format_kid
from wire.times import MAX_TIME, format_time, holds_iso_times, parse_time, reads_iso_times

MASTER = bytes(32)
KEY = derive_machine_key(MASTER, "web-1", 0)
T = 1796669825.646  # 2026-12-07T18:57:05.646Z

instants = st.floats(min_value=0, max_value=4.1e9, allow_nan=False)  # 1970 to 2099


@given(instants)
def test_an_instant_reads_back_to_the_same_text(t: float) -> None:
    """Written once, read and written again: byte-identical, within half a millisecond of
    the value, and the text datetime.isoformat gives for the rounded instant."""
    text = format_time(t)
    back = parse_time(text, "x")
    assert format_time(back) == text and abs(back - t) <= 0.0005 + 1e-6
    ms = round(t * 1000) / 1000
    iso = datetime.fromtimestamp(ms, UTC).isoformat(timespec="milliseconds")
    assert text == iso.replace("+00:00", "Z")


def test_the_forms_read() -> None:
    """What Bosun writes, other fraction lengths, `+00:00`, and Unix seconds (int or float)
    from documents written before ISO times."""
    assert format_time(T) == "2026-12-07T18:57:05.646Z"
    assert parse_time("2026-12-07T18:57:05.646Z", "x") == T
    assert parse_time("2026-12-07T18:57:05Z", "x") == 1796669825.0
    assert parse_time("2026-12-07T18:57:05.6+00:00", "x") == 1796669825.6
    assert parse_time(1796669825, "x") == 1796669825.0 and parse_time(T, "x") == T
    assert format_time(0) == "1970-01-01T00:00:00.000Z"  # "never" in memory's defaults
    last = format_time(MAX_TIME - 0.001)
    assert last == "9999-12-31T23:59:59.999Z" and format_time(parse_time(last, "x")) == last


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2026-12-07T18:57:05.646", "expected a UTC time like 2026-12-07T18:57:05.646Z"),
        ("2026-12-07 18:57:05.646Z", "expected a UTC time"),
        ("2026-12-07T18:57:05.646+01:00", "expected a UTC time"),
        ("2026-12-07T18:57:05.6a6Z", "expected a UTC time"),
        ("2026-12-07T18:57:05.\u0663\u0664\u0665Z", "expected a UTC time"),  # Arabic digits
        ("2026-02-30T00:00:00.000Z", "'2026-02-30T00:00:00' is not a valid date and time"),
        ("2026-12-07T24:00:00.000Z", "is not a valid date and time"),
        ("1969-12-31T23:59:59.000Z", "is before 1970"),
        ("yesterday", "expected a UTC time"),
        (-1, "time -1 is outside years 1970-9999"),
        (1e300, "outside years 1970-9999"),
        (float("nan"), "outside years 1970-9999"),
        (True, "got boolean"),
        (None, "got null"),
        ([1], "got array"),
    ],
)
def test_what_is_not_a_time_is_refused_naming_the_field(value: object, message: str) -> None:
    """A hostile or hand-written value never reaches a formatter: the error names the
    field and says what a time looks like."""
    with pytest.raises(InvalidDocument, match=r"^doc\.body\.at: .*" + re.escape(message)):
        parse_time(value, "doc.body.at")


def snapshot() -> Snapshot:
    return Snapshot(
        machine="web-1",
        seq=1,
        sent_at=T,
        boot_id="b",
        agent_version="0.2.0",
        applied=Applied(generation=3, at=T - 1),
        last_refusal=Refusal("expired", "old", T - 2),
    )


def test_codec_writes_iso_or_numbers_and_reads_both() -> None:
    """Timestamp fields (also optional and nested) are ISO 8601 by default and numbers
    with times="epoch"; both decode to the same floats."""
    iso = codec.encode(snapshot())
    assert iso["sent_at"] == "2026-12-07T18:57:05.646Z"
    assert iso["applied"]["at"] == "2026-12-07T18:57:04.646Z"
    assert iso["last_refusal"]["at"] == "2026-12-07T18:57:03.646Z"
    epoch = codec.encode(snapshot(), times="epoch")
    assert epoch["sent_at"] == T and epoch["applied"]["at"] == T - 1
    for value in (iso, epoch):
        assert codec.decode(Snapshot, value, "s") == snapshot()
    none = codec.encode(replace(snapshot(), applied=Applied()))
    assert none["applied"]["at"] is None  # an optional time left unset stays null


def desired(**kw: object) -> Desired:
    base = Desired(
        machine="web-1",
        generation=2,
        fence=1,
        issued_at=T,
        expires_at=T + 3600,
        spec_revision=1,
        mode="draining",
        drain=Drain("scale-down", T, T + 300),
    )
    return replace(base, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("times", ["iso", "epoch"])
def test_signed_times_are_canonical_at_both_ends(times: str) -> None:
    """The controller signs the canonical body with its times as written; the agent
    verifies those bytes, and decoding then encoding again gives the same canonical body
    (what the content digests and the agent's replay marks rely on)."""
    key = desired_key("web-1")
    raw = seal(desired(), key=KEY, kid=format_kid("web-1", 0), object_key=key, times=times)  # type: ignore[arg-type]
    env, doc = open_desired(raw, key, lambda kid: KEY)
    assert doc == desired()
    assert holds_iso_times(env.body) is (times == "iso")
    again = codec.encode(doc, times=times)  # type: ignore[arg-type]
    assert canonical(again) == canonical(env.body)
    assert seal(doc, key=KEY, kid=format_kid("web-1", 0), object_key=key, times=times) == raw  # type: ignore[arg-type]
    body = orjson.loads(raw)["body"]
    assert isinstance(body["drain"]["deadline"], str if times == "iso" else float)


def test_which_agents_read_iso_times() -> None:
    """From 0.2 on; anything unreadable is taken as older (numbers are safe for all)."""
    assert reads_iso_times("0.2.0") and reads_iso_times("1.0") and reads_iso_times("0.10.1")
    for old in ("0.1.0", "0.1", "", "sim", "dev", "9" * 5000 + ".1", "v1.0"):
        assert not reads_iso_times(old), old
