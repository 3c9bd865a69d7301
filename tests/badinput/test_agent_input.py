"""Hostile desired documents fed to the agent: the verify path refuses each with a stable
reason and a clear message; a real agent cycle over a bucket applies nothing, counts the
refusal and reports it, and writes nothing but its own report."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from agent.state import Mark
from agent.verify import Refused, Verified, check_expiry, verify_desired
from tests.badinput.corpus import (
    MACHINE,
    hostile_desired,
    mutations,
    signed_hostile_ids,
    valid_desired,
)
from tests.unit.agent.kit import Machine, machine_key, make_agent, report
from wire.documents import open_desired
from wire.layout import desired_key
from wire.signing import digest, format_kid
from wire.store import DirectoryStore, StoredObject

CASES = hostile_desired()
KID = format_kid(MACHINE, 0)
GOOD = valid_desired()


def applied_mark() -> Mark:
    """The agent already applied generation 10 (GOOD) at fence 1."""
    _env, _doc = open_desired(GOOD, desired_key(MACHINE), lambda k: machine_key(MACHINE))
    return Mark(10, 1, digest(_env.body))


def verify(raw: bytes) -> Verified:
    v = verify_desired(
        raw, object_key=desired_key(MACHINE), machine=MACHINE, kid=KID,
        key=machine_key(MACHINE), mark=applied_mark(),
    )  # fmt: skip
    expired = check_expiry(v.doc, now=__import__("time").time())
    if expired:
        raise Refused("expired", expired)
    return v


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_hostile_document_is_refused_with_a_clear_reason(name: str) -> None:
    """Every hand-written hostile document is refused with an expected reason and a
    message that names the object."""
    raw, reasons = CASES[name]
    with pytest.raises(Refused) as info:
        verify(raw)
    assert info.value.reason in reasons, (name, info.value.reason, info.value.detail)
    assert info.value.detail and len(str(info.value)) < 2000
    if name.startswith("time_"):  # names the field and says what a time looks like
        assert re.search(r"body\.(issued_at|expires_at): (expected a UTC|time |'1969)",
                         info.value.detail), info.value.detail  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=mutations(GOOD))
def test_mutated_documents_are_refused_or_identical(raw: bytes) -> None:
    """Any mutation of a valid document is refused, unless it still carries the very same
    signed body (whitespace outside the canonical body), which is then a quiet no-op."""
    try:
        v = verify(raw)
    except Refused as exc:
        assert exc.reason and exc.detail
        return
    assert v.same is True  # same generation and digest as applied: nothing to do


def test_real_agent_cycle_refuses_the_corpus_and_changes_nothing(tmp_path: Path) -> None:
    """A real in-process agent over a directory bucket: each hostile document leaves the
    applied state unchanged, increments its counter, is reported, and the only object the
    agent writes is its own report."""
    store = DirectoryStore(tmp_path / "bucket")
    m = Machine(tmp_path / "m", store.url, name=MACHINE, services={"web": {"port": 8080}}).write()
    agent = make_agent(m, store)
    store.put(desired_key(MACHINE), GOOD)
    assert agent.cycle().ok
    applied = agent.state.applied
    assert applied.generation == 10
    expected: dict[str, int] = {}
    for name, (raw, reasons) in sorted(CASES.items()):
        store.put(desired_key(MACHINE), raw)
        before = {i.key: i.etag for i in store.list("") if not i.key.startswith("reports/")}
        agent.cycle(force_report=True)
        after = {i.key: i.etag for i in store.list("") if not i.key.startswith("reports/")}
        assert after == before, f"{name}: the agent wrote {set(after) ^ set(before)}"
        assert agent.state.applied == applied, f"{name}: applied state changed"
        last = agent.state.last_refusal
        assert last is not None and last.reason in reasons, (name, last)
        expected[last.reason] = expected.get(last.reason, 0) + 1
        snap = report(store, MACHINE)
        assert snap.last_refusal is not None and snap.last_refusal.reason == last.reason
    assert report(store, MACHINE).refusals == expected
    got = store.get(desired_key(MACHINE))
    assert isinstance(got, StoredObject)


@pytest.mark.parametrize("name", sorted(signed_hostile_ids()))
def test_signed_documents_with_hostile_ids_are_refused(name: str) -> None:
    """A signed document whose service id is path-like or non-ASCII is refused as malformed."""
    with pytest.raises(Refused) as info:
        verify(signed_hostile_ids()[name])
    assert info.value.reason == "malformed"
