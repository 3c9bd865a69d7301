"""One watchdog thread for the request deadlines of every `LiteS3Store`.

A request's deadline must hold even against a server that drips one byte at a time (no
socket timeout ever fires), so something outside the request has to shut its socket down.
A `threading.Timer` per request did that, but starting a thread costs ~0.15 ms of CPU,
40% of a whole PUT; this module keeps one daemon thread and a heap of deadlines instead.

`arm(seconds, fire)` returns a handle; `disarm(handle)` cancels it. `fire` runs on the
watchdog thread *under its lock*, so once `disarm` has returned, `fire` will not run: a
deadline can never shut down the socket of the next request on a reused connection. `fire`
must therefore be quick and must not block (a `socket.shutdown` is).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import threading
import time
from collections.abc import Callable


class Deadlines:
    def __init__(self, name: str = "bosun-deadlines") -> None:
        self._name = name
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int]] = []
        self._armed: dict[int, Callable[[], None]] = {}
        self._ids = itertools.count(1)
        self._thread: threading.Thread | None = None

    def arm(self, seconds: float, fire: Callable[[], None]) -> int:
        at = time.monotonic() + max(0.0, seconds)
        with self._cond:
            handle = next(self._ids)
            self._armed[handle] = fire
            earliest = not self._heap or at < self._heap[0][0]
            heapq.heappush(self._heap, (at, handle))
            if len(self._heap) > 4 * len(self._armed) + 1024:  # mostly disarmed entries
                self._heap = [e for e in self._heap if e[1] in self._armed]
                heapq.heapify(self._heap)
            if self._thread is None or not self._thread.is_alive():  # first use, or forked
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            elif earliest:
                self._cond.notify()
        return handle

    def disarm(self, handle: int) -> None:
        with self._cond:
            self._armed.pop(handle, None)  # its heap entry is dropped when it comes due

    def pending(self) -> int:
        """Deadlines armed and not yet fired or disarmed (for tests)."""
        with self._cond:
            return len(self._armed)

    def _run(self) -> None:
        with self._cond:
            while True:
                while self._heap and self._heap[0][1] not in self._armed:
                    heapq.heappop(self._heap)  # disarmed
                if not self._heap:
                    self._cond.wait()
                    continue
                left = self._heap[0][0] - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                _at, handle = heapq.heappop(self._heap)
                fire = self._armed.pop(handle)
                with contextlib.suppress(Exception):  # a failed fire must not stop the watchdog
                    fire()


DEADLINES = Deadlines()
