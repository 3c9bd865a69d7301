"""The one retry policy for transient store failures.

Only `StoreUnavailable` is retried: exponential backoff with full jitter, bounded by
attempts and by total time. Write conflicts, bad input and access errors are never retried.
This is the only retry layer: the S3 client's own retries are off (`wire.store.s3`).
Tests build a policy with `wait_initial=0` so retries cost no time.

A plain loop (no tenacity): tenacity imports asyncio, ~40 ms of CPU on every agent start.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from wire.errors import StoreUnavailable
from wire.records import record

T = TypeVar("T")


@record
class RetryPolicy:
    """How transient store errors are retried: attempts, total time and waits."""

    attempts: int = 4
    total_seconds: float = 20.0
    wait_initial: float = 0.2
    wait_max: float = 3.0

    @classmethod
    def none(cls) -> RetryPolicy:
        return cls(attempts=1, total_seconds=0.0, wait_initial=0.0, wait_max=0.0)

    def waits(self) -> list[float]:
        """The upper bounds of the waits between attempts (each wait is uniform below it)."""
        return [
            min(self.wait_max, self.wait_initial * 2**n) for n in range(max(0, self.attempts - 1))
        ]

    def call(self, fn: Callable[[], T]) -> T:
        started = time.monotonic()
        for bound in self.waits():
            try:
                return fn()
            except StoreUnavailable:
                import random  # only when a request failed: not in a quiet cycle

                wait = random.uniform(0, bound)
                if time.monotonic() - started + wait >= self.total_seconds:
                    raise
                if wait > 0:
                    time.sleep(wait)
        return fn()
