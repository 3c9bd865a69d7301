"""The controller's ranged LIST: the same objects in the same order as one sequential
listing, and as many page requests as the chain when the keys are those of the last cycle."""

from __future__ import annotations

import bisect
import random
import threading
from collections.abc import Iterator

from controller.shell.listing import RangedLister, split_points
from wire.store import DirectoryStore, ObjectInfo


class Paged:
    """An in-memory bucket listed in pages of `page` keys, fetched as they are read (like
    S3Store.list_after), counting the page requests."""

    def __init__(self, keys: list[str], page: int) -> None:
        self.keys = sorted(keys)
        self.page = page
        self.pages = 0
        self.lock = threading.Lock()

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        return self.list_after(prefix, None)

    def list_after(self, prefix: str, start_after: str | None) -> Iterator[ObjectInfo]:
        i = bisect.bisect_right(self.keys, start_after) if start_after is not None else 0
        while True:
            with self.lock:
                self.pages += 1
            chunk = [k for k in self.keys[i : i + self.page] if k.startswith(prefix)]
            yield from (ObjectInfo(k, '"e"', 1, 0.0) for k in chunk)
            i += self.page
            if i >= len(self.keys):
                return


def keys_of(names: list[str]) -> list[str]:
    return [f"reports/{n}.json" for n in names]


def test_split_points_are_the_last_key_of_every_full_page_but_the_final() -> None:
    keys = [f"k{i:03d}" for i in range(25)]
    assert split_points(keys, 10) == ["k009", "k019"]
    assert split_points(keys[:20], 10) == ["k009"]  # the last page's end is open
    assert split_points(keys[:10], 10) == []


def test_unchanged_keys_cost_the_chains_pages_and_list_the_same() -> None:
    keys = keys_of([f"m-{i:05d}" for i in range(2500)])
    store = Paged(keys, 100)
    lister = RangedLister(store, threads=4, page=100)  # type: ignore[arg-type]
    assert [o.key for o in lister.list("reports/", keys)] == keys
    store.pages = 0
    assert [o.key for o in lister.list("reports/")] == keys
    assert store.pages == 25  # one request per page, as one sequential LIST


def test_added_and_removed_keys_are_listed_exactly_once_in_order() -> None:
    rng = random.Random(7)
    names = {f"m-{i:05d}" for i in range(1500)}
    store = Paged(keys_of(sorted(names)), 100)
    lister = RangedLister(store, threads=8, page=100)  # type: ignore[arg-type]
    lister.list("reports/", keys_of(sorted(names)))
    for _ in range(5):  # the fleet changes between cycles
        gone = set(rng.sample(sorted(names), 120))
        born = {f"m-{rng.randrange(99999):05d}{rng.choice('abc.-_')}" for _ in range(200)}
        names = (names - gone) | born
        store.keys = keys_of(sorted(names))
        store.keys.sort()
        ranges = len(lister.bounds["reports/"]) + 1
        store.pages = 0
        assert [o.key for o in lister.list("reports/")] == store.keys
        # each range reads at most one page past its keys (into the next range)
        assert store.pages <= len(store.keys) // 100 + 2 * ranges


def test_a_hint_naming_other_keys_still_lists_everything() -> None:
    keys = keys_of([f"m-{i:05d}" for i in range(700)])
    store = Paged(keys, 50)
    hint = keys_of([f"a-{i}" for i in range(300)] + [f"z-{i}" for i in range(300)])
    got = RangedLister(store, page=50).list("reports/", hint)  # type: ignore[arg-type]
    assert [o.key for o in got] == keys


def test_a_store_that_cannot_start_after_a_key_is_listed_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = DirectoryStore(tmp_path)
    for i in range(30):
        store.put(f"reports/m-{i:02d}.json", b"{}")
    store.put("desired/x.json", b"{}")
    got = RangedLister(store, page=10).list(
        "reports/", [f"reports/m-{i:02d}.json" for i in range(30)]
    )
    assert [o.key for o in got] == [f"reports/m-{i:02d}.json" for i in range(30)]
