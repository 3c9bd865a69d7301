"""The fenced leader lease (docs/security.md#one-leader, #lease-responses, #clock-skew, #stop-on-lease-loss) over a real directory store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from controller.shell.lease import LeaseDoc, LeaseKeeper, LeaseSettings
from tests.support.leaserace import lease_race
from tests.unit.controller.conftest import Clock
from tests.unit.controller.stores import Recording
from wire.errors import ControlRefused, StoreUnavailable, WriteConflict
from wire.layout import LEASE
from wire.signing import derive_control_key
from wire.store import DirectoryStore, StoredObject

S = LeaseSettings(duration=30.0, renew_deadline=20.0)


CONTROL = derive_control_key(bytes(range(32)))


def keeper(store: Any, name: str, clock: Clock, **kw: Any) -> LeaseKeeper:
    return LeaseKeeper(store, name, S, clock=clock, wall=lambda: 1.7e9, key=CONTROL, **kw)


def lease_doc(store: Recording) -> LeaseDoc:
    got = store.inner.get(LEASE)
    assert isinstance(got, StoredObject)
    return LeaseDoc.decode(got.body, key=CONTROL)


def once(exc: Exception, op: str = "PUT", key: str = LEASE) -> Any:
    fired = []

    def fault(o: str, k: str, kw: dict[str, Any]) -> None:
        if o == op and k == key and not fired:
            fired.append(1)
            raise exc

    return fault


def always(exc: Exception, op: str = "PUT") -> Any:
    def fault(o: str, k: str, kw: dict[str, Any]) -> None:
        if o == op:
            raise exc

    return fault


def test_settings_refuse_a_deadline_not_shorter_than_the_lease() -> None:
    """The renew deadline must be shorter than the lease duration (docs/security.md#clock-skew)."""
    with pytest.raises(ValueError, match="shorter than the lease duration"):
        LeaseSettings(duration=10, renew_deadline=10)


def test_first_controller_creates_the_lease_with_token_one(store: Recording) -> None:
    """The lease is created create-only and its holder may act (docs/security.md#one-leader)."""
    clock = Clock()
    a = keeper(store, "a", clock)
    st = a.ensure()
    assert (st.role, st.acting, st.token) == ("leader", True, 1)
    assert lease_doc(store).holder == "a"


def test_create_race_has_exactly_one_winner(store: Recording) -> None:
    """Two controllers both read "no lease" and create: If-None-Match lets one win (docs/security.md#one-leader)."""
    clock = Clock()
    a = keeper(store, "a", clock)
    b_store = Recording(store.inner)
    b = keeper(b_store, "b", clock)

    def a_first(op: str, key: str, kw: dict[str, Any]) -> None:
        if op == "PUT" and key == LEASE and not b_store.puts()[:-1]:
            assert a.ensure().acting  # a creates between b's read and b's write

    b_store.faults.append(a_first)
    st = b.ensure()
    assert (st.role, st.acting) == ("follower", False)
    assert lease_doc(store).holder == "a" and a.can_act()


def test_follower_waits_the_lease_duration_on_its_own_clock(store: Recording) -> None:
    """A follower takes over only after the same ETag stayed current for the duration (docs/security.md#clock-skew)."""
    ca, cb = Clock(), Clock()
    cb.t = 5_000_000.0  # a wildly different clock: only elapsed time matters
    a, b = keeper(store, "a", ca), keeper(store, "b", cb)
    assert a.ensure().acting
    assert not b.ensure().acting
    cb.t += 29.0
    assert not b.ensure().acting
    cb.t += 1.0
    st = b.ensure()
    assert (st.role, st.acting, st.token) == ("leader", True, 2)


def test_renewals_reset_the_followers_wait(store: Recording) -> None:
    """Each renew changes the ETag, so a follower never takes over a live leader."""
    ca, cb = Clock(), Clock()
    a, b = keeper(store, "a", ca), keeper(store, "b", cb)
    a.ensure()
    for _ in range(10):
        b.ensure()
        ca.t += 15
        cb.t += 15
        assert a.ensure().acting
    assert not b.ensure().acting
    assert lease_doc(store).token == 1


def test_leader_stops_acting_at_the_renew_deadline(store: Recording) -> None:
    """Without a successful renew the leader stops before followers may take over (docs/security.md#clock-skew, #stop-on-lease-loss)."""
    clock = Clock()
    a = keeper(store, "a", clock)
    a.ensure()
    clock.t += 19.9
    assert a.can_act()
    clock.t += 0.2
    assert not a.can_act()


def test_unknown_renew_outcome_keeps_acting_only_until_the_deadline(store: Recording) -> None:
    """5xx/timeout on renew: outcome unknown, act only until the renew deadline (docs/security.md#lease-responses)."""
    clock = Clock()
    a = keeper(store, "a", clock)
    a.ensure()
    store.faults.append(always(StoreUnavailable("503 SlowDown")))
    clock.t += 10
    st = a.ensure()
    assert st.role == "leader" and st.acting
    clock.t += 10.5
    assert not a.ensure().acting


def test_412_on_renew_means_lost_and_reread(store: Recording) -> None:
    """A renew refused with 412 loses the lease at once and re-reads it (docs/security.md#lease-responses)."""
    ca, cb = Clock(), Clock()
    a, b = keeper(store, "a", ca), keeper(store, "b", cb)
    a.ensure()
    b.ensure()
    cb.t += 31
    assert b.ensure().token == 2  # a paused past the lease; b took over
    st = a.ensure()
    assert (st.role, st.acting, st.holder, st.token) == ("follower", False, "b", 2)
    assert not a.can_act()


def test_404_on_renew_means_lost(store: Recording) -> None:
    """The lease object vanished: the renew fails and the keeper re-reads and re-creates it (docs/security.md#lease-responses)."""
    clock = Clock()
    a = keeper(store, "a", clock)
    a.ensure()
    store.inner.delete(LEASE)
    st = a.ensure()
    assert st.acting and st.token == 2  # recreated with a higher token, never reused


def test_409_rereads_and_retries_once(store: Recording) -> None:
    """409 ConditionalRequestConflict: re-read the ETag and retry once (docs/security.md#lease-responses)."""
    clock = Clock()
    a = keeper(store, "a", clock)
    a.ensure()
    store.faults.append(once(WriteConflict("conflict", status=409)))
    st = a.ensure()
    assert st.acting and st.token == 1
    assert store.puts().count(LEASE) == 3  # create, the 409, the retry


def test_409_twice_gives_up(store: Recording) -> None:
    """A second 409 is not retried again: the lease is treated as lost (docs/security.md#lease-responses)."""
    clock = Clock()
    a = keeper(store, "a", clock)
    a.ensure()
    store.faults.append(always(WriteConflict("ConditionalRequestConflict", status=409)))
    st = a.ensure()
    assert not st.acting


def test_renew_whose_answer_was_lost_is_recognised(store: Recording) -> None:
    """A renew that landed but answered an error is recognised by its nonce on re-read."""
    clock = Clock()
    a = keeper(store, "a", clock)
    a.ensure()
    fired: list[str] = []

    def lose_answer(key: str) -> None:
        if key == LEASE and not fired:
            fired.append(key)
            raise WriteConflict("412 after a retried request whose first attempt landed")

    store.after_put.append(lose_answer)
    st = a.ensure()
    assert fired and st.acting and st.token == 1


def test_released_lease_is_taken_at_once(store: Recording) -> None:
    """A cleanly stopped leader releases; a follower takes over without waiting."""
    ca, cb = Clock(), Clock()
    a, b = keeper(store, "a", ca), keeper(store, "b", cb)
    a.ensure()
    assert not b.ensure().acting
    a.release()
    assert not a.can_act()
    assert b.ensure().token == 2


def test_restarted_controller_with_the_same_name_takes_a_new_token(store: Recording) -> None:
    """A new process under the same name takes over at once, but with a higher token."""
    clock = Clock()
    keeper(store, "a", clock).ensure()
    st = keeper(store, "a", clock).ensure()
    assert st.acting and st.token == 2


def test_lost_lease_object_never_restarts_tokens_below_known_fences(store: Recording) -> None:
    """Re-creating a lost lease starts above the highest fence recorded elsewhere."""
    clock = Clock()
    a = keeper(store, "a", clock, token_floor=lambda: 41)
    assert a.ensure().token == 42


def test_unsigned_forged_or_rolled_back_lease_is_refused_and_taken_over(store: Recording) -> None:
    """A lease object that does not verify (hand-written, or signed with another key) or an
    older signed copy put back is refused (docs/security.md#signed-control-objects): never
    followed, taken over after our own lease duration, at a token above any seen."""
    refused: list[str] = []
    clock = Clock()
    a = keeper(store, "a", clock, on_refused=lambda r, _d, _e: refused.append(r))
    store.inner.put(LEASE, b'{"format": "x"}')
    assert not a.ensure().acting and refused == ["unsigned"]
    other = LeaseDoc("evil", 99, 30.0, 1.7e9, "n").encode(derive_control_key(b"x" * 32))
    store.inner.put(LEASE, other)
    assert not a.ensure().acting and refused[-1] == "bad_signature"
    clock.t += S.duration
    took = a.ensure()
    assert took.acting and took.token == 1 and refused[-1] == ""
    b = keeper(store, "b", clock, on_refused=lambda r, _d, _e: refused.append(r))
    b.ensure()
    old = store.inner.get(LEASE)
    assert isinstance(old, StoredObject)
    clock.t += S.duration
    assert b.ensure().token == 2
    assert not a.ensure().acting  # a lost it and follows b: token 2 seen
    store.inner.put(LEASE, old.body)  # token 1, validly signed: an older copy put back
    assert not a.ensure().acting and refused[-1] == "rolled_back"
    with pytest.raises(ControlRefused, match="malformed"):
        LeaseDoc.decode(b'{"format": "bosun.control/1"}', key=CONTROL)


def test_three_controllers_with_random_pauses_never_share_a_token(tmp_path: Path) -> None:
    """Three controllers, random pauses: one holder per token, written fences never decrease (docs/security.md#one-leader)."""
    root = tmp_path / "bucket"
    DirectoryStore(root)
    race = lease_race(
        lambda: DirectoryStore(root), LeaseSettings(duration=0.3, renew_deadline=0.2),
        seconds=4.0, pause_chance=0.15, pause=(0.2, 0.5), idle=0.08,
    )  # fmt: skip
    assert all(len(names) == 1 for names in race.holders.values()), race.holders
    assert race.committed == sorted(race.committed)
    assert len(race.holders) >= 2, "the pauses should have caused at least one takeover"
