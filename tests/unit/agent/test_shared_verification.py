"""One verification of desired documents for both ends (docs/security.md#tampering,
docs/security.md#binding): the controller's `open_desired` and the agent's `verify_desired`
run the same `wire.documents.check_desired`, so every document is refused by both for the
same reason, or accepted by both as the same document."""

from __future__ import annotations

from typing import Any

import pytest

import agent.verify
import wire.documents
from agent.verify import VERIFY_REASONS, Refused, verify_desired
from tests.badinput.corpus import MACHINE, OTHER, hostile_desired, signed_hostile_ids
from tests.unit.agent.kit import desired, machine_key, sealed
from wire.documents import OneKey, check_desired, open_desired
from wire.errors import (
    BadSignature,
    DocumentTooLarge,
    InvalidDocument,
    Unverified,
    UnverifiedSignature,
)
from wire.layout import desired_key
from wire.signing import format_kid

KEY = desired_key(MACHINE)
KID = format_kid(MACHINE, 0)
CORPUS = {name: raw for name, (raw, _reasons) in hostile_desired().items()}
CORPUS.update(signed_hostile_ids())
# what callers of open_desired caught before the check was shared, for each reason
FAMILY = {"too_large": DocumentTooLarge, "malformed": InvalidDocument}


# the same keys at both ends (the controller's ring knows every machine's key, so a
# document signed for another machine is a bad signature there, an unknown kid here)
KEYS = OneKey(KID, machine_key(MACHINE))


def agent_verify(raw: bytes) -> agent.verify.Verified:
    return verify_desired(
        raw, object_key=KEY, machine=MACHINE, kid=KID, key=machine_key(MACHINE), mark=None
    )


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_both_ends_refuse_each_document_for_the_same_reason(name: str) -> None:
    """Each hostile document: the controller's error and the agent's refusal carry the same
    reason and detail; a document that verifies at the controller verifies at the agent as
    the same document, or is refused there only by the agent's own replay checks."""
    raw = CORPUS[name]
    try:
        _env, doc = open_desired(raw, KEY, KEYS)
    except Unverified as exc:
        assert isinstance(exc, FAMILY.get(exc.reason, BadSignature)), (name, type(exc))
        with pytest.raises(Refused) as info:
            agent_verify(raw)
        assert (info.value.reason, info.value.detail) == (exc.reason, exc.detail), name
        assert info.value.reason in VERIFY_REASONS
        return
    try:
        assert agent_verify(raw).doc == doc, name
    except Refused as refused:  # verified, then refused by the agent's own replay checks
        assert refused.reason not in VERIFY_REASONS, (name, refused.reason)


def test_the_corpus_reaches_every_verify_reason() -> None:
    """The comparison above covers every reason the shared check can give."""
    seen = set()
    for raw in CORPUS.values():
        try:
            check_desired(raw, KEY, machine=MACHINE, keys=KEYS)
        except Unverified as exc:
            seen.add(exc.reason)
    assert seen == VERIFY_REASONS


def test_the_agent_runs_the_wire_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """The agent has no envelope or signature checks of its own: it calls the wire's check
    with its one configured kid, and reports whatever that check refuses."""
    assert agent.verify.check_desired is wire.documents.check_desired
    calls: list[dict[str, Any]] = []

    def spy(raw: bytes, object_key: str, **kw: Any) -> Any:
        calls.append({"object_key": object_key, **kw})
        raise UnverifiedSignature("wire said no", reason="bad_signature", detail="detail")

    monkeypatch.setattr(agent.verify, "check_desired", spy)
    with pytest.raises(Refused) as info:
        agent_verify(sealed(desired(MACHINE, 1)))
    assert (info.value.reason, info.value.detail) == ("bad_signature", "detail")
    assert calls == [
        {"object_key": KEY, "machine": MACHINE, "keys": OneKey(KID, machine_key(MACHINE))}
    ]


def test_messages_each_end_reported_before_stay_as_they_were() -> None:
    """Where the two ends always worded a refusal differently, each keeps its wording: the
    error's message is the controller's, its detail the agent's."""
    other = sealed(desired(OTHER, 1), key=machine_key(MACHINE), kid=KID, object_key=KEY)
    with pytest.raises(Unverified) as info:
        open_desired(other, KEY, KEYS)
    assert str(info.value) == "desired/web-1.json: document is for machine 'web-2', not 'web-1'"
    assert info.value.detail == "desired/web-1.json is for machine 'web-2', not 'web-1'"

    stranger = sealed(desired(MACHINE, 1), epoch=3)
    with pytest.raises(Unverified) as info:
        open_desired(stranger, KEY, KEYS)
    assert str(info.value) == "desired/web-1.json: unknown kid 'web-1@3'"
    assert info.value.detail == (
        "desired/web-1.json is signed with kid 'web-1@3', expected 'web-1@0'"
    )
    with pytest.raises(Unverified) as info:
        open_desired(stranger, KEY, lambda kid: None)  # a ring that names no expected kid
    assert info.value.detail == "desired/web-1.json is signed with kid 'web-1@3'"


def test_the_agents_key_never_shows_in_a_repr() -> None:
    """docs/security.md#secret-hygiene: the one-key lookup prints its kid, not its key."""
    key = machine_key(MACHINE)
    assert key.hex() not in repr(OneKey(KID, key)) and repr(key) not in repr(OneKey(KID, key))
