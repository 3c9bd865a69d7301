"""The one retry policy for transient store failures (tenacity).

Only `StoreUnavailable` is retried: exponential backoff with full jitter, bounded by
attempts and by total time. Write conflicts, bad input and access errors are never retried.
Tests build a policy with `wait_initial=0` so retries cost no time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import tenacity

from wire.errors import StoreUnavailable

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 4
    total_seconds: float = 20.0
    wait_initial: float = 0.2
    wait_max: float = 3.0

    @classmethod
    def none(cls) -> RetryPolicy:
        return cls(attempts=1, total_seconds=0.0, wait_initial=0.0, wait_max=0.0)

    def call(self, fn: Callable[[], T]) -> T:
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(StoreUnavailable),
            stop=tenacity.stop_after_attempt(self.attempts)
            | tenacity.stop_after_delay(self.total_seconds),
            wait=tenacity.wait_random_exponential(multiplier=self.wait_initial, max=self.wait_max),
            reraise=True,
        )
        return retrying(fn)
