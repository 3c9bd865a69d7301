"""Encode large per-machine maps once per change, not once per cycle.

`control/intake.json` and `status/cluster.json` hold an entry per machine and are written
whenever any one changes: at 100,000 machines reporting every 5 minutes, ~3,000 entries of
100,000 change in a 10 s cycle. `Reuse` keeps each entry's JSON value (wire.codec) with
what it was made of, and hands back the same value while that is the same object or equal;
the intake keeps unchanged records and snapshots as the same objects, so the check is
mostly an identity test. The values handed out are shared: callers must not change them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Any

from controller.shell.intake_state import IntakeState
from wire import codec


class Reuse:
    """One map's encoded entries, from the last use to the next."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[object, Any]] = {}
        self._next: dict[str, tuple[object, Any]] = {}

    def one(self, name: str, made_of: object, build: Callable[[], Any]) -> Any:
        """The encoded entry `name`: last time's if `made_of` is what it was made of."""
        hit = self._last.get(name)
        if hit is not None and (hit[0] is made_of or hit[0] == made_of):
            self._next[name] = hit
            return hit[1]
        value = build()
        self._next[name] = (made_of, value)
        return value

    def done(self) -> None:
        """End of a use: entries not asked for this time are forgotten."""
        self._last, self._next = self._next, {}


def encode_intake(state: IntakeState, reuse: Reuse) -> dict[str, Any]:
    """`codec.encode(state)`, each report record encoded once per change."""
    value: dict[str, Any] = codec.encode(replace(state, reports={}, desired={}, signed={}))
    value["reports"] = {
        m: reuse.one(m, rec, partial(codec.encode, rec)) for m, rec in state.reports.items()
    }
    reuse.done()
    value["desired"] = dict(state.desired)
    value["signed"] = dict(state.signed)
    return value


__all__ = ["Reuse", "encode_intake"]
