"""One Store contract, run unchanged over every backend (see conftest.BACKENDS)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from controller.shell.listing import RangedLister
from tests.contract.conftest import StoreFactory
from wire.errors import DocumentTooLarge, WriteConflict
from wire.store import Missing, NotModified, Store, StoredObject, require


def test_round_trip(store: Store) -> None:
    """What is put is what is got, with the ETag put returned."""
    etag = store.put("desired/web-1.json", b'{"a": 1}')
    got = store.get("desired/web-1.json")
    assert isinstance(got, StoredObject)
    assert (got.body, got.etag) == (b'{"a": 1}', etag)
    assert etag.startswith('"') and etag.endswith('"')


def test_etag_is_quoted_md5_on_every_backend(store: Store) -> None:
    """ETags agree across backends (S3-style quoted MD5 of a single-part upload)."""
    assert store.put("k", b"hello") == '"5d41402abc4b2a76b9719d911017c592"'


def test_conditional_get_answers_not_modified_on_matching_etag(store: Store) -> None:
    """If-None-Match with the current ETag is a 304; with another ETag, the object."""
    etag = store.put("k", b"v1")
    assert isinstance(store.get("k", if_none_match=etag), NotModified)
    store.put("k", b"v2")
    got = store.get("k", if_none_match=etag)
    assert isinstance(got, StoredObject) and got.body == b"v2"


def test_missing_key_is_missing(store: Store) -> None:
    """A key never written reads as Missing (also conditionally), and require() names it."""
    assert isinstance(store.get("nope/x.json"), Missing)
    assert isinstance(store.get("nope/x.json", if_none_match='"abc"'), Missing)
    with pytest.raises(Exception, match=r"nope/x\.json does not exist"):
        require(store.get("nope/x.json"), store)


def test_create_only_put_fails_the_second_time(store: Store) -> None:
    """If-None-Match: * creates once; the second create is a WriteConflict and changes nothing."""
    store.put("control/lease.json", b"first", if_none_match="*")
    with pytest.raises(WriteConflict):
        store.put("control/lease.json", b"second", if_none_match="*")
    assert require(store.get("control/lease.json"), store).body == b"first"


def test_if_match_succeeds_on_current_etag_and_fails_on_stale(store: Store) -> None:
    """If-Match on the ETag read wins; on a stale ETag it is refused and nothing changes."""
    e1 = store.put("k", b"v1")
    e2 = store.put("k", b"v2", if_match=e1)
    with pytest.raises(WriteConflict):
        store.put("k", b"v3", if_match=e1)
    got = require(store.get("k"), store)
    assert (got.body, got.etag) == (b"v2", e2)


def test_if_match_on_missing_object_fails(store: Store) -> None:
    """If-Match cannot create an object."""
    with pytest.raises(WriteConflict):
        store.put("absent", b"v", if_match='"5d41402abc4b2a76b9719d911017c592"')
    assert isinstance(store.get("absent"), Missing)


def _race(store: Store, key: str, **condition: str) -> list[int]:
    barrier = threading.Barrier(20)
    winners: list[int] = []
    errors: list[BaseException] = []

    def attempt(i: int) -> None:
        barrier.wait(timeout=30)
        try:
            store.put(key, f"writer-{i}".encode(), **condition)
            winners.append(i)
        except WriteConflict:
            pass
        except BaseException as exc:  # anything else is a contract failure
            errors.append(exc)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert len(winners) == 1, f"{len(winners)} writers won {key}"
    assert require(store.get(key), store).body == f"writer-{winners[0]}".encode()
    return winners


@pytest.mark.parametrize("trial", range(3))
def test_twenty_threads_racing_a_create_only_put_have_exactly_one_winner(
    store: Store, trial: int
) -> None:
    """Exactly one of 20 concurrent If-None-Match: * writers wins, every time."""
    _race(store, f"race/create-{trial}", if_none_match="*")


@pytest.mark.parametrize("trial", range(3))
def test_twenty_threads_racing_an_if_match_put_have_exactly_one_winner(
    store: Store, trial: int
) -> None:
    """Exactly one of 20 concurrent If-Match writers on the same ETag wins, every time."""
    base = store.put(f"race/match-{trial}", b"base")
    _race(store, f"race/match-{trial}", if_match=base)


def test_listing_over_a_thousand_keys_in_order(store: Store) -> None:
    """LIST crosses page boundaries and returns every key in lexicographic order with metadata."""
    keys = [f"reports/m-{i:05d}.json" for i in range(1100)] + ["reports/a.json", "reports/z.json"]
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda k: store.put(k, k.encode()), keys))
    store.put("desired/other.json", b"x")
    listed = list(store.list("reports/"))
    assert [o.key for o in listed] == sorted(keys)
    first = listed[0]
    assert first.size == len(first.key) and first.etag.startswith('"') and first.last_modified > 1e9
    # the controller's ranged LIST (S3's StartAfter where the client has it): the same keys
    list_after = getattr(store, "list_after", None)
    if list_after is not None:
        tail = [o.key for o in list_after("reports/", "reports/m-00499.json")]
        assert tail == sorted(keys)[sorted(keys).index("reports/m-00499.json") + 1 :]
    lister = RangedLister(store, page=100)
    hint = [*keys[::3], "reports/m-00000x.json", "reports/zz.json"]  # some gone, some unknown
    assert [o.key for o in lister.list("reports/", hint)] == sorted(keys)
    store.put("reports/m-00100a.json", b"new")
    store.delete("reports/m-00700.json")
    now = sorted([*keys, "reports/m-00100a.json"])
    now.remove("reports/m-00700.json")
    assert [o.key for o in lister.list("reports/")] == now  # cut where the last one paged


def test_listing_is_by_prefix_and_empty_when_nothing_matches(store: Store) -> None:
    """Only keys under the prefix are listed; a prefix matching nothing lists nothing."""
    store.put("history/web-1/0001.json", b"1")
    store.put("history/web-10/0001.json", b"2")
    store.put("history/web-2/0001.json", b"3")
    assert [o.key for o in store.list("history/web-1/")] == ["history/web-1/0001.json"]
    assert [o.key for o in store.list("history/web-1")] == [
        "history/web-1/0001.json",
        "history/web-10/0001.json",
    ]
    assert list(store.list("nothing/")) == []


def test_delete_removes_and_is_idempotent(store: Store) -> None:
    """Deleting removes the object; deleting again is not an error."""
    store.put("k", b"v")
    store.delete("k")
    assert isinstance(store.get("k"), Missing)
    store.delete("k")


def test_objects_over_the_cap_are_refused(store: Store) -> None:
    """get refuses an object over max_bytes without returning its body."""
    store.put("big", b"x" * 2048)
    with pytest.raises(DocumentTooLarge, match="over the 1024-byte cap"):
        store.get("big", max_bytes=1024)
    assert isinstance(store.get("big", max_bytes=4096), StoredObject)


def test_second_store_on_the_same_bucket_sees_the_same_objects(make_store: StoreFactory) -> None:
    """Two clients of one bucket share state (what two controllers rely on)."""
    a, b = make_store(), make_store()
    etag = a.put("control/lease.json", b"x", if_none_match="*")
    with pytest.raises(WriteConflict):
        b.put("control/lease.json", b"y", if_none_match="*")
    b.put("control/lease.json", b"y", if_match=etag)
    assert require(a.get("control/lease.json"), a).body == b"y"
