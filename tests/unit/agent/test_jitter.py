"""Jittered polling (docs/security.md#cost-guardrails): a fleet started together spreads its requests."""

from __future__ import annotations

import random

from agent.daemon import jittered


def test_waits_stay_within_the_jitter_and_spread_out() -> None:
    """1,000 waits at 30 s +/- 10 % stay in [27, 33] and cover most of that range."""
    rng = random.Random(7)
    waits = [jittered(30.0, 0.1, rng) for _ in range(1000)]
    assert all(27.0 <= w <= 33.0 for w in waits)
    assert max(waits) - min(waits) > 5.0 and len({round(w, 3) for w in waits}) > 900


def test_no_jitter_is_the_interval() -> None:
    """jitter 0 polls exactly on the interval."""
    assert jittered(30.0, 0.0, random.Random(1)) == 30.0
