"""Approval steps (`- approve: {}`): a rollout waits for `bosun rollout approve`.

    ... -> step N (gates pass, bake elapsed) -> awaiting_approval -> (approval) -> step N+2

Reaching an approval step, the rollout enters `awaiting_approval`: its machines stay as the
step before left them (none on the new version when it is the first step), its gates are
still measured (a failing gate reverts or halts as anywhere), and its clocks stand (bake and
`progress_deadline`, clocks.py), as a pause stops them. It leaves on an approval record
(`services.<name>.approval: {id, version, by, reason}`) for its version, given while it
waits or since it started; each record passes one approval step once (its id).
`bosun rollout promote` does not pass an approval step: an approval says who and why.
"""

from __future__ import annotations

from dataclasses import replace

from controller.planner.model import Event, RolloutMemory
from controller.spec.model import Approval, ClusterSpec
from wire.codec import JsonValue

AWAITING = "awaiting_approval"


def pending(spec: ClusterSpec, name: str, r: RolloutMemory) -> Approval | None:
    """An approval for this rollout not used yet: for its version, recorded since the
    rollout started (never one left over from an earlier rollout to the same version)."""
    a = spec.services[name].approval
    if a is None or a.version != r.to_version or a.id <= r.approval_id or a.id < r.revision:
        return None
    return a


def approve(
    name: str, r: RolloutMemory, a: Approval, now: float, events: list[Event]
) -> RolloutMemory:
    """The rollout with approval `a` used (the caller moves it on)."""
    waited = now - r.waiting_since if r.waiting_since is not None else 0.0
    events.append(Event("rollout.approved", f"approved by {a.by}: {a.reason}", service=name,
                        data={"by": a.by, "reason": a.reason, "revision": a.id,
                              "waited": round(waited, 3)}))  # fmt: skip
    return replace(
        r,
        approval_id=a.id,
        approved_by=a.by,
        approved_reason=a.reason,
        waiting_since=None,
    )


def waiting(name: str, r: RolloutMemory, now: float, events: list[Event]) -> RolloutMemory:
    """The rollout entering an approval step."""
    events.append(Event("rollout.awaiting_approval", f"step {r.step + 1} waits for "
                        f"`bosun rollout approve {name}`", service=name,
                        data={"step": r.step + 1}))  # fmt: skip
    return replace(r, waiting_since=now)


def approval_status(r: RolloutMemory) -> dict[str, JsonValue] | None:
    """`approval` in the rollout's status: waiting since, or who approved and why."""
    if r.state == AWAITING and r.waiting_since is not None:
        return {"waiting": True, "since": r.waiting_since}
    if r.approved_by:
        return {
            "waiting": False,
            "by": r.approved_by,
            "reason": r.approved_reason,
            "revision": r.approval_id,
        }
    return None
