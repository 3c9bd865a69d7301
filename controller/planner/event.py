"""The one event type: what the planner decided and what the cycle's shell did, as one
line of the audit trail (events/<yyyy>/<mm>/<dd>/<time>-<cycle>.jsonl)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from wire.codec import JsonValue
from wire.frozen import quick_init

EventKind = Literal[
    # the planner's decisions
    "snapshot.rejected",  # also intake: an object under reports/ that is no snapshot
    "machine.forgotten", "machine.lost", "machine.returned", "machine.released",
    "machine.unhealthy", "machine.scaled_down", "machine.assigned",
    "machine.draining", "machine.drained", "machine.drain_timeout", "machine.undrained",
    "service.short", "service.held", "service.hold_lifted", "service.release",
    "service.budget", "selection.resolved",
    "rollout.started", "rollout.step", "rollout.step_skipped", "rollout.control",
    "rollout.watching", "rollout.completed", "rollout.halted", "rollout.reverted",
    "rollout.superseded", "rollout.previous_released", "rollout.undo",
    "rollout.awaiting_approval", "rollout.approved",
    "scale.up", "scale.down", "scale.held",
    "provision.requested", "provision.fulfilled", "provision.expired",
    "peer.evicted", "peer.restored",
    # the cycle's shell: what it found, wrote or could not write
    "spec.refused", "desired.drift", "desired.newer_fence", "desired.written",
    "desired.superseded", "desired.too_large", "desired.conflict", "desired.unknown",
    "provision.started", "provision.failed", "cycle.stopped",
]  # fmt: skip


@quick_init
@dataclass(frozen=True, slots=True)
class Event:
    """One decision or refusal, as the planner and the cycle's shell record it: a line of
    events/<yyyy>/<mm>/<dd>/<time>-<cycle>.jsonl (records.event_lines adds the time, cycle
    and fence, and leaves out empty fields)."""

    kind: EventKind
    reason: str
    machine: str | None = None
    service: str | None = None
    data: dict[str, JsonValue] = field(default_factory=dict)
