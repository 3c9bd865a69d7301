"""The shared deadline watchdog of the stdlib S3 client (`wire.store.deadlines`)."""

from __future__ import annotations

import threading
import time

from wire.store.deadlines import Deadlines


def test_a_deadline_fires_once_after_its_time() -> None:
    d = Deadlines("test-deadlines")
    fired: list[float] = []
    done = threading.Event()
    t0 = time.monotonic()
    d.arm(0.2, lambda: (fired.append(time.monotonic() - t0), done.set()))
    assert done.wait(5)
    time.sleep(0.1)
    assert len(fired) == 1 and fired[0] >= 0.2
    assert d.pending() == 0


def test_a_disarmed_deadline_never_fires() -> None:
    d = Deadlines("test-deadlines")
    fired: list[int] = []
    handles = [d.arm(0.1, lambda i=i: fired.append(i)) for i in range(50)]
    for h in handles[::2]:
        d.disarm(h)
    assert d.pending() == 25
    time.sleep(0.5)
    assert sorted(fired) == list(range(1, 50, 2))
    assert d.pending() == 0


def test_an_earlier_deadline_armed_later_is_not_held_up_by_a_later_one() -> None:
    d = Deadlines("test-deadlines")
    early = threading.Event()
    d.arm(30, lambda: None)  # the watchdog now sleeps towards this one
    t0 = time.monotonic()
    d.arm(0.1, early.set)
    assert early.wait(5)
    assert time.monotonic() - t0 < 2


def test_a_failing_fire_does_not_stop_the_watchdog() -> None:
    d = Deadlines("test-deadlines")
    ok = threading.Event()

    def boom() -> None:
        raise OSError("socket already closed")

    d.arm(0.05, boom)
    d.arm(0.1, ok.set)
    assert ok.wait(5)


def test_disarmed_entries_do_not_pile_up() -> None:
    d = Deadlines("test-deadlines")
    for _ in range(20_000):
        d.disarm(d.arm(60, lambda: None))
    assert d.pending() == 0
    assert len(d._heap) <= 1024 + 1
