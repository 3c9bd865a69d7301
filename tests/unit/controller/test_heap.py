"""Between cycles the collector leaves the kept state be; frozen cyclic garbage is freed at
the next full collection."""

from __future__ import annotations

import gc
import weakref

from controller.shell.heap import Heap


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def test_survivors_are_frozen_and_cyclic_garbage_is_freed_within_full_every_cycles() -> None:
    heap = Heap(full_every=3)
    try:
        node = Node()
        ref = weakref.ref(node)
        heap.after_cycle()  # 1: young generations collected, survivors frozen
        assert gc.get_freeze_count() > 0
        del node
        heap.after_cycle()  # 2: frozen: not walked, not freed yet
        assert ref() is not None
        heap.after_cycle()  # 3: unfrozen and collected in full
        assert ref() is None
        fresh = Node()
        gone = weakref.ref(fresh)
        del fresh
        heap.after_cycle()  # 4: garbage made since the last freeze goes with the young ones
        assert gone() is None
    finally:
        gc.unfreeze()
