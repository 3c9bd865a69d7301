"""LIST a prefix as key ranges read concurrently: the same objects, in the same order.

A LIST is a chain of pages (1,000 keys each), one request after the other: 10 pages at 10,000
machines, 100 at 100,000. When the keys of the previous listing of the prefix are known (this
process listed it last cycle, or the intake state names them), the prefix is cut at every
1,000th of those keys and each range is listed from its lower bound (S3's StartAfter) on its
own thread, reading until its upper bound. A range still holding the keys it held last cycle
ends exactly at a page's end, so the request count is the chain's. Keys added since fill a
range past its page and cost one more page for that range, once; keys removed let a range's
reader run one page into the next range (read and dropped). Every key above one bound and
not above the next is in exactly one range, so the result is what one sequential listing
gives, in key order.

Stores that cannot start a listing after a key (the directory store, test stores) are
listed once, sequentially.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from itertools import pairwise
from typing import cast

from wire.layout import MachineId, machine_from_key
from wire.store import ObjectInfo, Store

PAGE = 1000  # keys per LIST page (S3's default and maximum max-keys)
LIST_THREADS = 8  # ranges of one prefix listed at once

ListAfter = Callable[[str, str | None], Iterator[ObjectInfo]]


@lru_cache(maxsize=1 << 18)
def machine_of(key: str, folder: str) -> MachineId:
    """`wire.layout.machine_from_key`, remembered: every cycle lists the same keys, and
    their validation (a regular expression each) was a tenth of a quiet cycle's CPU. A key
    that is not a machine's raises every time (errors are not remembered)."""
    return machine_from_key(key, folder)


def split_points(keys: Sequence[str], page: int = PAGE) -> list[str]:
    """The last key of every full page of `keys` (sorted) but the final one: the upper
    bounds of all ranges except the last, which is open."""
    return [keys[i] for i in range(page - 1, len(keys) - 1, page)]


def _range(
    list_after: ListAfter, prefix: str, low: str | None, high: str | None
) -> list[ObjectInfo]:
    out: list[ObjectInfo] = []
    for info in list_after(prefix, low):
        if high is not None and info.key > high:
            break  # the next range's first key: read on the same page, not ours
        out.append(info)
        if info.key == high:
            break  # our last key: stop before asking for another page
    return out


class RangedLister:
    """Lists prefixes in concurrent key ranges cut where the previous listing's pages
    ended; remembers each prefix's keys for the next cycle."""

    def __init__(self, store: Store, threads: int = LIST_THREADS, page: int = PAGE) -> None:
        self.store = store
        self.threads = threads
        self.page = page
        self.bounds: dict[str, list[str]] = {}  # prefix -> split points of its last listing

    def list(self, prefix: str, hint: Iterable[str] = ()) -> list[ObjectInfo]:
        """Every object under `prefix`, in key order. `hint`: keys expected there (used
        to cut ranges when this process has not listed the prefix yet)."""
        list_after = cast("ListAfter | None", getattr(self.store, "list_after", None))
        if list_after is None or self.threads <= 1:
            return list(self.store.list(prefix))
        points = self.bounds.get(prefix)
        if points is None:
            points = split_points(sorted(k for k in hint if k.startswith(prefix)), self.page)
        bounds: list[str | None] = [None, *points, None]
        ranges = list(pairwise(bounds))
        if len(ranges) == 1:
            found = _range(list_after, prefix, None, None)
        else:
            with ThreadPoolExecutor(min(self.threads, len(ranges))) as pool:
                parts = pool.map(lambda r: _range(list_after, prefix, *r), ranges)
                found = [info for part in parts for info in part]
        self.bounds[prefix] = split_points([info.key for info in found], self.page)
        return found


__all__ = ["LIST_THREADS", "PAGE", "RangedLister", "machine_of", "split_points"]
