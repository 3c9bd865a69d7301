"""The values one plan hands from pass to pass: the read-only `Context` and the `Draft`.

    Context: spec, observed, memory, now, fence (as given; less the machines the operator
             forgot), the services in dependency order, every known machine.
    Draft:   what the passes decided so far. Frozen: a pass returns a new draft
             (`dataclasses.replace`) and never changes the one it was given.

A pass is `(Context, Draft) -> (Draft, events)`; `controller.planner.passes` lists them
in order, `controller.planner.core.plan` runs them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from controller.planner.assign import EMPTY, Assignment
from controller.planner.blindness import Blindness
from controller.planner.evict import Evictions
from controller.planner.model import (
    Event,
    MachineMemory,
    MachineObservation,
    Memory,
    Observed,
    ProvisionMemory,
    ProvisionNeeded,
    PutDesired,
    RolloutMemory,
    ScaleMemory,
    Skip,
)
from controller.planner.release import Releases
from controller.spec.model import ClusterSpec
from wire.codec import JsonValue
from wire.documents import Drain, Peer

UNASSIGNED = Assignment(live=EMPTY, lost=(), service=EMPTY, mode=EMPTY, actives=EMPTY)
NOT_BLIND = Blindness({}, {}, {}, ())
NO_EVICTIONS = Evictions({}, {}, {}, ())


@dataclass(frozen=True, slots=True)
class Context:
    """The inputs of one plan, read by every pass and changed by none."""

    spec: ClusterSpec  # as applied (the scaler's counts are in the draft's spec)
    observed: Observed  # less the machines the operator forgot
    memory: Memory  # likewise
    now: float
    fence: int
    order: tuple[str, ...]  # services in dependency order
    known: tuple[str, ...]  # every machine observed or remembered, sorted
    forgotten: tuple[str, ...]  # machines the operator forgot (bosun machines forget)


@dataclass(frozen=True, slots=True)
class Draft:
    """What the passes decided so far, grouped by the pass that sets each field."""

    # autoscale: the spec with the scaler's counts; its memory
    spec: ClusterSpec
    scale: Mapping[str, ScaleMemory] = field(default_factory=dict)
    # liveness: the machines within their window (fail static keeps silent groups)
    live: Mapping[str, MachineObservation] = field(default_factory=dict)
    blind: Blindness = NOT_BLIND
    # assignment (then releases, rollouts, drains, top_up)
    work: Assignment = UNASSIGNED
    reserved: Mapping[str, str] = field(default_factory=dict)  # machine -> only service
    # releases (then rollouts, drains)
    releases: Releases = field(default_factory=Releases)
    # rollouts
    rollouts: Mapping[str, RolloutMemory] = field(default_factory=dict)
    # drains: machine -> its drain; the config a held machine keeps; release config digests
    drains: Mapping[str, Drain] = field(default_factory=dict)
    kept: Mapping[str, dict[str, JsonValue]] = field(default_factory=dict)
    configs: Mapping[str, str] = field(default_factory=dict)
    # peers: healthy planned actives of the services with peers (render.peered), as peers,
    # shadows as mirrors; evictions
    healthy: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    serve: Mapping[str, tuple[Peer, ...]] = field(default_factory=dict)
    mirror: Mapping[str, tuple[Peer, ...]] = field(default_factory=dict)
    evictions: Evictions = NO_EVICTIONS
    # documents: each machine's new memory, the writes and the skips
    machines: Mapping[str, MachineMemory] = field(default_factory=dict)
    writes: tuple[PutDesired, ...] = ()
    skips: tuple[Skip, ...] = ()
    # provisioning: requests to make now, requests in flight
    provisions: tuple[ProvisionNeeded, ...] = ()
    flight: Mapping[str, ProvisionMemory] = field(default_factory=dict)


Pass = Callable[[Context, Draft], tuple[Draft, tuple[Event, ...]]]
