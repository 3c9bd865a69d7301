"""A rollout's clocks: bake, watch and progress_deadline stop while the rollout is held.

A rollout is held while the operator paused it (`bosun rollout pause`) or while it waits at
an approval step. Held time counts neither against the step's bake or watch nor against
the rollout's `progress_deadline`; `bosun rollout resume` (or the approval) restarts the
clocks where they stood:

    paused_at        since when the clocks stand (None: they run)
    paused_for       held time since the rollout started (taken off the deadline)
    step_paused_for  held time since the current step started (taken off its bake)

`settle` opens or closes the held interval from the rollout's state; every function that
enters a step closes it first (`close`), so a new step starts with its own clock.
"""

from __future__ import annotations

from dataclasses import replace

from controller.planner.model import RolloutMemory


def held(r: RolloutMemory) -> bool:
    """Do the rollout's clocks stand (operator pause, or waiting for an approval)?"""
    return r.active and r.state != "halted" and (r.paused or r.state == "awaiting_approval")


def close(r: RolloutMemory, now: float) -> RolloutMemory:
    """The clocks run again from `now`; the held interval is added to both totals."""
    if r.paused_at is None:
        return r
    gap = max(0.0, now - r.paused_at)
    return replace(
        r,
        paused_at=None,
        paused_for=r.paused_for + gap,
        step_paused_for=r.step_paused_for + gap,
    )


def settle(r: RolloutMemory, now: float) -> RolloutMemory:
    """Stop the clocks when the rollout is held and they run; restart them when not."""
    if held(r):
        return r if r.paused_at is not None else replace(r, paused_at=now)
    return close(r, now)


def _at(r: RolloutMemory, now: float) -> float:
    return r.paused_at if r.paused_at is not None else now


def step_elapsed(r: RolloutMemory, now: float) -> float:
    """Seconds the current step has run, held time left out (its bake or watch)."""
    return _at(r, now) - r.step_started_at - r.step_paused_for


def rollout_elapsed(r: RolloutMemory, now: float) -> float:
    """Seconds the rollout has run, held time left out (its progress_deadline)."""
    return _at(r, now) - r.started_at - r.paused_for
