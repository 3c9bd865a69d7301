"""docs/security.md#agent-desired-documents for the agent, in process over a directory bucket (real files)."""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from agent.state import Mark
from agent.verify import Refused, verify_desired
from tests.unit.agent.kit import (
    CountingStore,
    Machine,
    desired,
    machine_key,
    make_agent,
    publish,
    report,
    sealed,
)
from wire.documents import Snapshot, seal
from wire.layout import desired_key
from wire.store import DirectoryStore

KEY = desired_key("web-1")


def applied_generation(bucket: DirectoryStore) -> int:
    return int(report(bucket).applied.generation)


def out_file(machine: Machine) -> Path:
    return Path(machine.services["web"]["files"][0]["path"])


def test_tampering_byte_by_byte_never_verifies() -> None:
    """docs/security.md#tampering: every single-byte mutation of a valid document is refused or changes nothing signed."""
    raw = sealed(desired(generation=3))
    key = machine_key("web-1")
    good = verify_desired(raw, object_key=KEY, machine="web-1", kid="web-1@0", key=key, mark=None)
    accepted_other = 0
    for i in range(len(raw)):
        for flip in (0x01, 0x20):
            bad = raw[:i] + bytes([raw[i] ^ flip]) + raw[i + 1 :]
            try:
                v = verify_desired(
                    bad, object_key=KEY, machine="web-1", kid="web-1@0", key=key, mark=None
                )
            except Refused:
                continue
            # only whitespace/escape-equivalent changes may verify, and then the value is identical
            accepted_other += v.digest != good.digest
    assert accepted_other == 0


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda raw: raw[: len(raw) // 2], "malformed"),
        (lambda raw: raw + b"x", "malformed"),
        (lambda raw: raw.replace(b'"sig": "', b'"sig": "AAAA'), "bad_signature"),
        (lambda raw: json.dumps({**json.loads(raw), "sig": ""}).encode(), "bad_signature"),
        (
            lambda raw: json.dumps({**json.loads(raw), "sig": "!!not base64!!"}).encode(),
            "bad_signature",
        ),
        (lambda raw: raw.replace(b'"greeting": "hello"', b'"greeting": "hellO"'), "bad_signature"),
        (lambda raw: sealed(desired(generation=9), kid="web-1@7"), "unknown_kid"),
        (lambda raw: sealed(desired(generation=9), key=machine_key("web-2")), "bad_signature"),
        (lambda raw: b"", "malformed"),
        (lambda raw: b"[]", "malformed"),
    ],
)
def test_tampered_documents_are_refused_and_reported(
    machine: Machine, bucket: DirectoryStore, mutate, reason: str
) -> None:
    """docs/security.md#tampering/11: a tampered document is not applied; the counter and reason reach the next report."""
    agent = make_agent(machine)
    publish(bucket, desired(generation=2))
    assert agent.cycle().ok
    before = out_file(machine).read_bytes()
    raw = sealed(desired(generation=3, config={"greeting": "hello"}))
    bucket.put(KEY, mutate(raw))
    result = agent.cycle()
    assert not result.ok
    snap = report(bucket)
    assert snap.applied.generation == 2
    assert snap.refusals.get(reason) == 1, snap.refusals
    assert snap.verify_failures == 1, snap
    assert snap.last_refusal is not None and snap.last_refusal.reason == reason
    assert out_file(machine).read_bytes() == before


def test_binding_other_machines_document_and_snapshot_refused(
    machine: Machine, bucket: DirectoryStore
) -> None:
    """docs/security.md#binding: web-2's valid document copied to desired/web-1.json, or a snapshot placed there, is refused."""
    agent = make_agent(machine)
    bucket.put(KEY, sealed(desired(machine="web-2", generation=5)))
    agent.cycle()
    snap = Snapshot(machine="web-1", seq=1, sent_at=time.time(), boot_id="b", agent_version="x")
    bucket.put(KEY, seal(snap, key=machine_key("web-1"), kid="web-1@0", object_key=KEY))
    agent.cycle()
    # and web-1's own body signed for another key is refused too
    bucket.put(KEY, sealed(desired(generation=6), object_key="desired/web-2.json"))
    agent.cycle()
    # a body naming web-2, signed with web-1's key for web-1's object: the body's binding
    body = desired(machine="web-2", generation=7)
    bucket.put(KEY, sealed(body, key=machine_key("web-1"), kid="web-1@0", object_key=KEY))
    agent.cycle()
    got = report(bucket)
    assert got.applied.generation == 0
    assert got.refusals == {
        "unknown_kid": 1, "wrong_format": 1, "bad_signature": 1, "wrong_machine": 1
    }  # fmt: skip
    assert got.verify_failures == 4
    assert not out_file(machine).exists()


def test_rollback_refused_after_restart(machine: Machine, bucket: DirectoryStore) -> None:
    """docs/security.md#rollback: after applying generation 5, a restored generation 4 is refused, also by a restarted agent."""
    old = sealed(desired(generation=4, config={"v": 4}))
    publish(bucket, desired(generation=5, config={"v": 5}))
    assert make_agent(machine).cycle().ok
    bucket.put(KEY, old)
    agent = make_agent(machine)  # a restart: marks come from disk
    assert not agent.cycle().ok
    snap = report(bucket)
    assert snap.applied.generation == 5
    assert snap.refusals == {"rollback": 1}
    assert json.loads(out_file(machine).read_text()) == {"v": 5}


def test_same_generation_same_digest_is_quiet_other_digest_refused(
    machine: Machine, bucket: DirectoryStore
) -> None:
    """docs/security.md#rollback: equal generation with the same digest is a no-op; with another digest it is refused."""
    doc = desired(generation=5)
    publish(bucket, doc)
    agent = make_agent(machine)
    agent.cycle()
    bucket.put(KEY, sealed(doc) + b"\n")  # same body, new bytes and ETag
    assert agent.cycle().ok
    assert report(bucket).refusals == {}
    publish(bucket, replace(doc, config={"greeting": "evil"}))
    assert not agent.cycle().ok
    assert report(bucket).refusals == {"generation_conflict": 1}
    assert json.loads(out_file(machine).read_text()) == {"greeting": "hello"}


def test_stale_fence_refused_even_with_higher_generation(
    machine: Machine, bucket: DirectoryStore
) -> None:
    """docs/security.md#fencing: a lower fence is refused although its generation is higher (a stale controller)."""
    publish(bucket, desired(generation=5, fence=7))
    agent = make_agent(machine)
    agent.cycle()
    publish(bucket, desired(generation=6, fence=6, config={"x": "stale"}))
    agent.cycle()
    snap = report(bucket)
    assert (snap.applied.generation, snap.applied.fence) == (5, 7)
    assert snap.refusals == {"stale_fence": 1}


def test_expired_document_refused_and_cached_copy_goes_stale(
    machine: Machine, bucket: DirectoryStore
) -> None:
    """docs/security.md#freeze: an expired new document is refused; the cached copy is re-checked after 304s and reported stale without teardown."""
    agent = make_agent(machine)
    publish(bucket, desired(generation=1, expires_at=time.time() - 1))
    agent.cycle()
    assert report(bucket).refusals == {"expired": 1}
    assert not out_file(machine).exists()
    publish(bucket, desired(generation=2, expires_at=time.time() + 1.5))
    agent.cycle()
    assert report(bucket).desired_stale is False
    content = out_file(machine).read_bytes()
    time.sleep(1.6)
    counting = CountingStore(bucket)
    agent.store = counting
    agent.cycle()
    assert counting.calls[0][3] == "NotModified"
    snap = report(bucket)
    assert snap.desired_stale is True
    assert snap.applied.generation == 2 and snap.applied.result == "ok"
    assert out_file(machine).read_bytes() == content  # no teardown


def test_304_without_cached_copy_is_never_trusted(
    machine: Machine, bucket: DirectoryStore, counting: CountingStore
) -> None:
    """docs/security.md#conditional-get: with the cached copy gone the agent does a full GET; an unasked-for 304 is refused."""
    publish(bucket, desired(generation=1))
    agent = make_agent(machine, counting)
    agent.cycle()
    (machine.state_dir / "desired.cached.json").unlink()
    counting.reset()
    agent.cycle()
    assert counting.calls[0][:3] == ("GET", KEY, None)

    class Always304(CountingStore):
        def get(self, key: str, **kw: object) -> object:
            from wire.store.base import NotModified

            return NotModified(key, '"x"')

    fresh = Machine(machine.root.parent / "m2", bucket.url, name="web-1", services=machine.services)
    other = make_agent(fresh.write(), Always304(bucket))
    other.cycle()
    assert other.state.refusals == {"unexpected_not_modified": 1}
    assert other.state.applied.generation == 0


def test_oversized_document_refused_before_parsing(
    machine: Machine, bucket: DirectoryStore
) -> None:
    """docs/security.md#endless-data: a document over 256 KiB is refused as too_large."""
    doc = desired(generation=1, config={"blob": "x" * 300_000})
    bucket.put(KEY, seal(doc, key=machine_key("web-1"), kid="web-1@0", object_key=KEY))
    make_agent(machine).cycle()
    assert report(bucket).refusals == {"too_large": 1}


def test_unknown_kid_refused_and_rotation_scopes_marks(
    tmp_path: Path, bucket: DirectoryStore
) -> None:
    """docs/security.md#key-rotation: after rotating to epoch 1, a huge generation published with the old key does not block updates."""
    services = {"web": {"files": [{"path": str(tmp_path / "out.json")}]}}
    m0 = Machine(tmp_path / "m", bucket.url, services=services).write()
    publish(bucket, desired(generation=1_000_000))  # stolen old key
    make_agent(m0).cycle()
    m1 = Machine(tmp_path / "m", bucket.url, services=services, epoch=1).write()
    agent = make_agent(m1)
    publish(bucket, desired(generation=2_000_000))  # still the old key: unknown kid now
    agent.cycle()
    assert agent.state.refusals == {"unknown_kid": 1}
    publish(bucket, desired(generation=1, config={"rotated": True}), epoch=1)
    assert agent.cycle().ok
    assert json.loads((tmp_path / "out.json").read_text()) == {"rotated": True}
    assert agent.state.marks["web-1@1"] == Mark(1, 1, agent.state.applied.digest)


def test_rotated_machine_running_secrets_still_reports_with_its_new_key(
    tmp_path: Path, bucket: DirectoryStore
) -> None:
    """docs/security.md#key-rotation: the running document's secrets were encrypted for the
    old key; after re-enrollment at epoch 1 they no longer decrypt, yet the agent still
    reports with its new key (else the controller never re-signs for it and the machine is
    lost), and the next document at the new epoch applies."""
    from wire.secret_box import MARK, encrypt_for_machine

    out = tmp_path / "secrets"
    services = {"web": {"files": [{"path": str(tmp_path / "out.json")}],
                        "secrets": {"dir": str(out), "env": {"DB": "db"}}}}  # fmt: skip

    def with_secret(generation: int, epoch: int) -> Any:
        token = encrypt_for_machine(machine_key("web-1", epoch), "web-1", KEY, generation, "db",
                                    f"pw-{epoch}".encode())  # fmt: skip
        return desired(generation=generation, config={"db": {MARK: token}})

    m0 = Machine(tmp_path / "m", bucket.url, services=services).write()
    publish(bucket, with_secret(1, 0))
    assert make_agent(m0).cycle().ok
    assert (out / "db").read_text() == "pw-0"
    m1 = Machine(tmp_path / "m", bucket.url, services=services, epoch=1).write()
    agent = make_agent(m1)
    # no heartbeat due and nothing else changed: the new key alone sends the report out,
    # signed with it, so the controller re-signs for epoch 1 now, not in 5 minutes
    assert agent.cycle().put
    assert report(bucket, epoch=1).applied.generation == 1
    publish(bucket, with_secret(2, 1), epoch=1)
    assert agent.cycle().ok
    assert (out / "db").read_text() == "pw-1"


def test_crash_between_fsync_and_rename_leaves_old_state(
    machine: Machine, bucket: DirectoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/security.md#crash-safe-apply: a crash while state is written leaves the old state; the next valid document applies."""
    agent = make_agent(machine)
    publish(bucket, desired(generation=1))
    agent.cycle()
    state_before = (machine.state_dir / "state.json").read_bytes()
    publish(bucket, desired(generation=2, config={"v": 2}))
    real_replace = os.replace

    def crash(src: object, dst: object) -> None:
        if str(dst).endswith("state.json"):
            raise SystemExit("simulated crash")
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(SystemExit):
        agent.cycle()
    monkeypatch.setattr(os, "replace", real_replace)
    assert (machine.state_dir / "state.json").read_bytes() == state_before
    restarted = make_agent(machine)
    assert restarted.cycle().ok
    assert restarted.state.applied.generation == 2
    assert json.loads(out_file(machine).read_text()) == {"v": 2}


def test_crash_mid_apply_is_finished_by_next_cycle(
    machine: Machine, bucket: DirectoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/security.md#crash-safe-apply: a crash after accepting but before recording the apply is completed on restart from the cached copy."""
    publish(bucket, desired(generation=1))
    agent = make_agent(machine)

    def crash(*_a: object, **_k: object) -> None:
        raise SystemExit("simulated crash in apply")

    monkeypatch.setattr(agent.applier, "apply", crash)
    with pytest.raises(SystemExit):
        agent.cycle()
    counting = CountingStore(bucket)
    restarted = make_agent(machine, counting)
    assert restarted.cycle().ok
    assert counting.calls[0][3] == "NotModified"
    assert restarted.state.applied.generation == 1
    assert out_file(machine).exists()


def test_corrupt_state_is_moved_aside_and_recovered_from_bucket(
    machine: Machine, bucket: DirectoryStore
) -> None:
    """Robustness: a corrupt state.json gives a clear message, is kept aside, and the bucket's document is applied."""
    publish(bucket, desired(generation=3))
    machine.state_dir.mkdir(parents=True, exist_ok=True)
    (machine.state_dir / "state.json").write_text("{not json")
    agent = make_agent(machine)
    result = agent.cycle()
    assert any("corrupt" in e and "recovering from the bucket" in e for e in result.errors)
    assert list(machine.state_dir.glob("state.json.corrupt-*"))
    assert agent.state.applied.generation == 3


def test_a_document_refused_by_the_old_key_is_verified_again_by_the_new_one(
    tmp_path: Path, bucket: DirectoryStore
) -> None:
    """docs/security.md#key-rotation: the controller may sign for epoch 1 before the machine
    has its new key. The old key refuses that version and keeps asking with If-None-Match
    (no download of a refused body every cycle); once re-enrolled, the same, unchanged
    object is fetched and verified again instead of being taken as refused."""
    from tests.unit.agent.kit import CountingStore

    services = {"web": {"files": [{"path": str(tmp_path / "out.json")}]}}
    m0 = Machine(tmp_path / "m", bucket.url, services=services).write()
    publish(bucket, desired(generation=1, config={"epoch": 1}), epoch=1)
    counting = CountingStore(bucket)
    old = make_agent(m0, counting)
    old.cycle()
    assert old.state.refusals == {"unknown_kid": 1}
    counting.calls.clear()
    old.cycle()  # the same key: the refused version is not downloaded again
    assert [c[3] for c in counting.calls if c[0] == "GET"] == ["NotModified"]
    m1 = Machine(tmp_path / "m", bucket.url, services=services, epoch=1).write()
    new = make_agent(m1, counting)
    counting.calls.clear()
    assert new.cycle().ok
    assert [c[3] for c in counting.calls if c[0] == "GET"] == ["StoredObject"]
    assert json.loads((tmp_path / "out.json").read_text()) == {"epoch": 1}
