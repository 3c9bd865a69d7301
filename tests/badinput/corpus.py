"""The bad-input corpus: hand-written hostile documents and specs, and hypothesis
strategies that mutate valid ones. Each case has a name (the test id) and the raw bytes."""

from __future__ import annotations

import time
from dataclasses import replace

import orjson
from hypothesis import strategies as st

from tests.unit.agent.kit import desired, machine_key, sealed
from wire.documents import (
    DESIRED_FORMAT,
    SNAPSHOT_FORMAT,
    Addresses,
    Applied,
    Snapshot,
    encode_body,
    seal,
)
from wire.layout import desired_key, report_key
from wire.signing import derive_machine_key, format_kid, sign

MACHINE = "web-1"
OTHER = "web-2"


def valid_desired(generation: int = 10, **kw: object) -> bytes:
    return sealed(desired(MACHINE, generation, **kw))


def snapshot(machine: str, *, master: bytes, seq: int | None = None, **kw: object) -> Snapshot:
    now = time.time()
    base = Snapshot(
        machine=machine, seq=seq or int(now * 1000), sent_at=now, boot_id="b", agent_version="t",
        addresses=Addresses(internal="10.9.9.9"), eligible=("web", "lb"), applied=Applied(),
    )  # fmt: skip
    return replace(base, **kw)  # type: ignore[arg-type]


def sealed_snapshot(snap: Snapshot, *, master: bytes, as_machine: str | None = None) -> bytes:
    signer = as_machine or snap.machine
    return seal(
        snap,
        key=derive_machine_key(master, signer, 0),
        kid=format_kid(signer, 0),
        object_key=report_key(snap.machine),
    )


def signed_with_extra(snap: Snapshot, *, master: bytes, extra: dict[str, object]) -> bytes:
    """A validly signed snapshot envelope whose body carries `extra` fields (signed too),
    so the body's own bounds are reached, not the signature check."""
    body = {**encode_body(snap), **extra}
    key, kid, fmt = (
        derive_machine_key(master, snap.machine, 0),
        format_kid(snap.machine, 0),
        SNAPSHOT_FORMAT,
    )
    sig = sign(key, fmt, report_key(snap.machine), body)
    return orjson.dumps({"format": fmt, "kid": kid, "sig": sig, "body": body})


def _resign_body(raw: bytes, mutate: object) -> bytes:
    """A document whose body was changed after signing (the signature is stale)."""
    env = orjson.loads(raw)
    mutate(env["body"])  # type: ignore[operator]
    return orjson.dumps(env)


def deep(levels: int) -> object:
    value: object = 1
    for _ in range(levels):
        value = {"x": value}
    return value


def hostile_desired() -> dict[str, tuple[bytes, set[str]]]:
    """name -> (raw bytes at desired/web-1.json, the refusal reasons that are acceptable)."""
    good = valid_desired()
    other_key = machine_key(OTHER)
    cases: dict[str, tuple[bytes, set[str]]] = {
        "empty": (b"", {"malformed"}),
        "null": (b"null", {"malformed"}),
        "array": (b"[1,2,3]", {"malformed"}),
        "garbage": (b"\x00\xff\xfe garbage", {"malformed"}),
        "truncated": (good[: len(good) // 2], {"malformed"}),
        "appended": (good + b"{}", {"malformed"}),
        "oversized": (good + b" " * (300 * 1024), {"too_large", "malformed"}),
        "oversized_body": (
            valid_desired(config={"blob": "x" * (300 * 1024)}),
            {"too_large", "malformed"},
        ),
        "sig_flipped": (_flip_sig(good), {"bad_signature"}),
        "sig_empty": (_set(good, "sig", ""), {"bad_signature", "malformed"}),
        "sig_not_string": (_set(good, "sig", 5), {"malformed"}),
        "kid_unknown": (_set(good, "kid", "web-1@99"), {"unknown_kid"}),
        "kid_path_like": (_set(good, "kid", "../../web-1@0"), {"unknown_kid"}),
        "other_machines_key": (
            sealed(desired(MACHINE, 10), key=other_key),
            {"bad_signature"},
        ),
        "cross_machine_copy": (sealed(desired(OTHER, 10)), {"unknown_kid"}),
        "cross_machine_body": (
            sealed(
                desired(OTHER, 10),
                key=machine_key(MACHINE),
                kid=format_kid(MACHINE, 0),
                object_key=desired_key(MACHINE),
            ),
            {"wrong_machine"},
        ),
        "wrong_object_key": (
            sealed(desired(MACHINE, 10), object_key="desired/web-1.json.bak"),
            {"bad_signature"},
        ),
        "body_changed_after_signing": (
            _resign_body(good, lambda b: b.__setitem__("version", "6.6.6")),
            {"bad_signature"},
        ),
        "snapshot_at_desired_key": (
            sealed_snapshot(snapshot(MACHINE, master=bytes(range(32))), master=bytes(range(32))),
            {"wrong_format"},
        ),
        "deep_nesting_signed": (valid_desired(11, config=deep(200)), {"malformed"}),
        "negative_generation_signed": (valid_desired(generation=-5), {"malformed", "rollback"}),
        "replayed_lower_generation": (valid_desired(generation=3), {"rollback"}),
        "stale_fence": (valid_desired(generation=50, fence=0), {"stale_fence", "malformed"}),
        "generation_reused_other_content": (
            valid_desired(version="9.9"),
            {"generation_conflict"},
        ),
        "expired": (
            valid_desired(generation=11, expires_at=time.time() - 10),
            {"expired"},
        ),
        # validly signed times that are not times: malformed, naming the field
        "time_not_a_time_signed": (signed_desired(11, expires_at="tomorrow"), {"malformed"}),
        "time_before_1970_signed": (
            signed_desired(11, issued_at="1969-12-31T23:59:59.000Z"),
            {"malformed"},
        ),
        "time_infinite_signed": (signed_desired(11, expires_at=1e30), {"malformed"}),
    }
    return cases


def signed_desired(generation: int, **fields: object) -> bytes:
    """A desired document for MACHINE, validly signed, whose body's `fields` are replaced."""
    body = {**encode_body(desired(MACHINE, generation)), **fields}
    sig = sign(machine_key(MACHINE), DESIRED_FORMAT, desired_key(MACHINE), body)
    return orjson.dumps({"format": DESIRED_FORMAT, "kid": format_kid(MACHINE, 0), "sig": sig,
                         "body": body})  # fmt: skip


def signed_hostile_ids() -> dict[str, bytes]:
    """Validly signed (only the controller's key can make these) but with ids no spec can
    produce: defence in depth says the agent refuses them as malformed."""
    return {
        "unicode_service": valid_desired(11, service="w\u00e9b\u202e"),
        "path_like_service": valid_desired(11, service="../../etc"),
    }


def _set(raw: bytes, field: str, value: object) -> bytes:
    env = orjson.loads(raw)
    env[field] = value
    return orjson.dumps(env)


def _flip_sig(raw: bytes) -> bytes:
    env = orjson.loads(raw)
    sig = env["sig"]
    env["sig"] = ("0" if sig[-1] != "0" else "1").join([sig[:-1], ""])
    return orjson.dumps(env)


@st.composite
def mutations(draw: st.DrawFn, raw: bytes) -> bytes:
    """A valid document changed by one of: byte flip, truncation, insertion, deletion,
    random JSON in place of a field, or random bytes altogether."""
    kind = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "field", "random"]))
    if kind == "random":
        return draw(st.binary(max_size=512))
    if kind == "field":
        env = orjson.loads(raw)
        path = draw(st.sampled_from(["format", "kid", "sig", "body"]))
        env[path] = draw(
            st.recursive(
                st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=20),
                lambda c: (
                    st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4)
                ),
                max_leaves=10,
            )
        )
        return orjson.dumps(env)
    i = draw(st.integers(0, len(raw) - 1))
    if kind == "flip":
        bit = draw(st.integers(0, 7))
        return raw[:i] + bytes([raw[i] ^ (1 << bit)]) + raw[i + 1 :]
    if kind == "truncate":
        return raw[:i]
    if kind == "insert":
        return raw[:i] + draw(st.binary(min_size=1, max_size=16)) + raw[i:]
    return raw[:i] + raw[i + draw(st.integers(1, 16)) :]


HOSTILE_SPECS: dict[str, str] = {
    "cycle": 'services:\n  a: {version: "1", count: 1, depends_on: [b]}\n'
    '  b: {version: "1", count: 1, depends_on: [a]}\n',
    "self_dependency": 'services:\n  a: {version: "1", count: 1, depends_on: [a]}\n',
    "negative_count": 'services:\n  a: {version: "1", count: -1}\n',
    "count_not_int": 'services:\n  a: {version: "1", count: "lots"}\n',
    "count_beyond_64_bits": 'services:\n  a: {version: "1", count: 100000000000000000000}\n',
    "count_above_the_limit": 'services:\n  a: {version: "1", count: 100001}\n',
    "config_number_beyond_64_bits": 'services:\n  a: {version: "1", count: 1, config: '
    "{x: [1, -100000000000000000000]}}\n",
    "deep_config": 'services:\n  a: {version: "1", count: 1, config: '
    + "{x: " * 200
    + "1"
    + "}" * 200
    + "}\n",
    "unicode_id": 'services:\n  wéb: {version: "1", count: 1}\n',
    "rtl_override_id": 'services:\n  "web\u202e": {version: "1", count: 1}\n',
    "path_like_id": 'services:\n  ../etc: {version: "1", count: 1}\n',
    "slash_id": 'services:\n  "a/b": {version: "1", count: 1}\n',
    "empty_id": 'services:\n  "": {version: "1", count: 1}\n',
    "nul_in_id": 'services:\n  "a\\0b": {version: "1", count: 1}\n',
    "huge_version": 'services:\n  a: {version: "' + "v" * 10000 + '", count: 1}\n',
    "python_tag": 'services: !!python/object/apply:os.system ["true"]\n',
    "not_yaml": "services: [unclosed\n",
    "unknown_top_key": "servicez: {}\n",
    "zero_interval": "settings: {controller_interval: 0s}\nservices: {}\n",
    "unknown_dependency": 'services:\n  a: {version: "1", count: 1, depends_on: [ghost]}\n',
    "oversized": "services: {}\n#" + "x" * (5 * 1024 * 1024) + "\n",
}

# 9**6 list items from a few hundred bytes of YAML aliases ("billion laughs").
BILLION_LAUGHS = (
    'services:\n  a:\n    version: "1"\n    count: 1\n    config:\n'
    '      a: &a ["x","x","x","x","x","x","x","x","x"]\n'
    "      b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
    "      c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "      d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
    "      e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
    "      f: [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
)
