"""The planner: a pure function from (spec, observed, memory, now) to a Plan.

No I/O, no clock, no randomness: see `controller.planner.model` for the types.
"""

from controller.planner.core import plan
from controller.planner.model import (
    ClusterSpec,
    Event,
    MachineMemory,
    MachineObservation,
    Mark,
    Memory,
    Observed,
    Plan,
    PutDesired,
    Rejection,
    RolloutMemory,
    RolloutStatus,
    Skip,
    Status,
    content_digest,
)

__all__ = [
    "ClusterSpec",
    "Event",
    "MachineMemory",
    "MachineObservation",
    "Mark",
    "Memory",
    "Observed",
    "Plan",
    "PutDesired",
    "Rejection",
    "RolloutMemory",
    "RolloutStatus",
    "Skip",
    "Status",
    "content_digest",
    "plan",
]
