"""The planner's inputs and outputs: plain frozen values, no I/O.

    plan(spec, observed, memory, now, *, fence) -> Plan

Inputs
- `ClusterSpec` (controller.spec): settings and services, with its revision.
- `Observed`: per machine the last ACCEPTED snapshot and the controller time it was
  accepted, plus this cycle's rejections. The shell fills it; the planner trusts it.
- `Memory`: what the planner remembers between cycles (stored as control/memory.json).

Outputs (`Plan`)
- `writes`: the desired documents to sign and PUT (generation = previous + 1, `fence`).
- `skips`: machines deliberately not written, and why.
- `memory`: the memory to save after the writes succeeded.
- `events`: decisions of this cycle (audit trail).
- `status`: the summary for status/cluster.json.

The shell must only save `plan.memory` after the writes it made; if a write fails
(WriteConflict), it may save `memory.forget_writes(failed machines)` or simply not save:
the next cycle re-plans from the documents it finds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

from controller.planner.digests import content_digest, digests
from controller.planner.event import Event, EventKind
from controller.spec.model import ClusterSpec
from wire import codec
from wire.codec import JsonValue, Timestamp
from wire.control import MAX_CONTROL_BYTES, unwrap_unverified
from wire.documents import Desired, Drain, Mode, Snapshot, dumps_pretty, loads_object
from wire.errors import InvalidDocument
from wire.frozen import quick_init
from wire.layout import MachineId

__all__ = [
    "ClusterSpec",
    "Event",
    "EventKind",
    "MachineMemory",
    "MachineObservation",
    "MachineStatus",
    "Memory",
    "Observed",
    "Plan",
    "ProvisionMemory",
    "ProvisionNeeded",
    "PutDesired",
    "Rejection",
    "ScaleMemory",
    "ServiceMemory",
    "ServiceStatus",
    "Skip",
    "Status",
    "content_digest",
]

MEMORY_FORMAT = "bosun.memory/1"
STATUS_FORMAT = "bosun.status/1"

# ---- inputs ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MachineObservation:
    snapshot: Snapshot  # the last accepted snapshot of this machine
    accepted_at: float  # controller time when it was accepted


@dataclass(frozen=True, slots=True)
class Rejection:
    machine: str
    reason: str  # bad_signature, replayed_seq, clock_skew, invalid_document, ...
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Observed:
    machines: Mapping[MachineId, MachineObservation] = field(default_factory=dict)
    rejections: tuple[Rejection, ...] = ()
    # desired documents that are not what the last plan wrote (deleted, tampered, left by a
    # crash): machine -> the generation found there (0: none readable); each is rewritten
    drift: Mapping[str, int] = field(default_factory=dict)


# ---- memory ---------------------------------------------------------------------------------


@quick_init
@dataclass(frozen=True, slots=True)
class MachineMemory:
    """What the planner last decided for one machine."""

    generation: int = 0  # generation of the last desired document written
    digest: str = ""  # content_digest() of that document ("" = none written)
    variant: str = ""  # its variant_digest() (the part shared by machines): a fast no-change check
    issued_at: Timestamp = 0.0  # issued_at of that document
    service: str | None = None
    mode: Mode = "standby"
    version: str | None = None
    assigned_at: Timestamp = 0.0  # service/mode changed, or version where it runs (grace starts)
    failed_at: Timestamp | None = None  # last time it was replaced for bad health
    lost: bool = False
    drain: Drain | None = None  # set while draining (planner/drain.py)
    config: str = ""  # digest of its release config ("" unknown): config_disruptive changes
    kept: dict[str, JsonValue] | None = None  # release config it keeps while held/draining


@dataclass(frozen=True, slots=True)
class ServiceMemory:
    """The release (version + config) a service last completed; dependents wait on it."""

    version: str | None = None
    config: dict[str, JsonValue] = field(default_factory=dict)
    revision: int = 0
    held: str | None = None  # why the spec's newer release waits (a dependency), if it does
    rebuilt: bool = False  # recovered from desired/ after memory loss: config unknown


@dataclass(frozen=True, slots=True)
class Mark:
    """A machine's cumulative counters for one service at the start of a measuring window."""

    requests: int = 0
    errors: int = 0


ROLLOUT_ACTIVE = ("shadow", "canary", "steps", "awaiting_approval", "watching", "halted")


@dataclass(frozen=True, slots=True)
class RolloutMemory:
    """Progress of one service's move from one version to the next (see planner/rollout.py)."""

    from_version: str
    to_version: str
    # shadow | canary | steps | awaiting_approval | watching | halted | complete | reverted
    state: str
    started_at: Timestamp
    step_started_at: Timestamp
    from_config: dict[str, JsonValue] = field(default_factory=dict)
    to_config: dict[str, JsonValue] = field(default_factory=dict)
    revision: int = 0
    step: int = 0  # index into the spec's steps
    before: tuple[str, ...] = ()  # active machines when it started (what a revert restores)
    cohort: tuple[str, ...] = ()  # active/canary machines on the new version
    shadow: tuple[str, ...] = ()  # shadow machines on the new version
    previous: tuple[str, ...] = ()  # old-version machines moved to standby, kept warm
    marks: dict[str, Mark] = field(default_factory=dict)
    baseline_error_rate: float | None = None  # old version, recorded when reaching 100%
    baseline_latency_ms: float | None = None
    baseline_requests: int = 0  # the old version's requests and errors behind that rate
    baseline_errors: int = 0
    finished_at: Timestamp | None = None  # complete / reverted / halted
    reason: str = ""
    gate: dict[str, JsonValue] = field(default_factory=dict)  # last measured numbers
    paused: bool = False  # operator pause: nothing moves forward, failing gates still act
    control_id: int = 0  # the last operator command (spec revision) applied
    # clocks (planner/clocks.py): held (paused, awaiting approval) time is not counted
    paused_at: Timestamp | None = None  # the clocks stand since (None: they run)
    paused_for: float = 0.0  # held time since the rollout started (off the deadline)
    step_paused_for: float = 0.0  # held time since the step started (off its bake)
    failure: str = ""  # why it failed: gate | deadline | abort | superseded ("" if it did not)
    # undo (planner/undo.py): the last undo record acted on (carried on from rollout to
    # rollout), and this rollout's, if it is one
    undo_id: int = 0
    undo_to_revision: int = 0
    undo_warm: bool | None = None  # True: done in one cycle; False: through the stages
    # approval steps (planner/approval.py): the last approval used (carried on), who gave it
    approval_id: int = 0
    approved_by: str = ""
    approved_reason: str = ""
    waiting_since: Timestamp | None = None  # at an approval step since
    # the coupled release it moves with (planner/lockstep.py); "" alone
    group: str = field(default="", metadata=codec.OMIT_EMPTY)

    @property
    def active(self) -> bool:
        return self.state in ROLLOUT_ACTIVE


@dataclass(frozen=True, slots=True)
class ScaleMemory:
    """The autoscaler's state for one service (planner/scale.py)."""

    count: int  # machines the scaler asks for now
    changed_at: Timestamp = 0.0  # last change of count (cooldown counts from here)
    measured: float = 0.0  # last estimated metric total
    held: str = ""  # why the scaler holds (stale data, cooldown), "" when it decided


@dataclass(frozen=True, slots=True)
class ProvisionMemory:
    """A provision request in flight (planner/provisioning.py): not repeated until the
    machines arrive or boot_timeout passes."""

    request_id: str
    count: int
    target: int
    at: Timestamp
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Memory:
    format: str = MEMORY_FORMAT
    fence: int = 0  # fence of the controller that planned last
    spec_revision: int = 0
    cycle: int = 0
    machines: dict[str, MachineMemory] = field(default_factory=dict)
    services: dict[str, ServiceMemory] = field(default_factory=dict)
    selections: dict[str, tuple[str, ...]] = field(default_factory=dict)  # "<svc>/<id>"
    rollouts: dict[str, RolloutMemory] = field(default_factory=dict)  # service -> last rollout
    scale: dict[str, ScaleMemory] = field(default_factory=dict)  # service -> autoscaler
    provisions: dict[str, ProvisionMemory] = field(default_factory=dict)  # service -> in flight
    holds: dict[str, HoldMemory] = field(default_factory=dict)  # service -> held static
    # "<balancer service>/<machine>" -> backend out of rotation (left out while empty)
    evictions: dict[str, Eviction] = field(default_factory=dict, metadata=codec.OMIT_EMPTY)

    def to_json(self) -> bytes:
        return dumps_pretty(codec.encode(self))

    @classmethod
    def from_json(cls, raw: bytes, *, where: str = "control/memory.json") -> Memory:
        """Decode the stored object, unwrapping its signed envelope WITHOUT verifying it
        (readers and tests; the controller verifies with wire.control, then `from_value`)."""
        value = loads_object(raw, where=where, max_bytes=MAX_CONTROL_BYTES)
        return cls.from_value(unwrap_unverified(value), where=where)

    @classmethod
    def from_value(cls, value: object, *, where: str = "control/memory.json") -> Memory:
        """Decode memory (one entry per machine: codec.MAX_FLEET_ITEMS)."""
        mem: Memory = codec.decode(cls, value, where, max_items=codec.MAX_FLEET_ITEMS)
        if mem.format != MEMORY_FORMAT:
            raise InvalidDocument(f"{where}.format: expected {MEMORY_FORMAT!r}, got {mem.format!r}")
        return mem

    @classmethod
    def rebuild(cls, desired: Iterable[Desired]) -> Memory:
        """Memory recovered from the desired documents found under desired/ (memory lost).

        Generations continue from the documents, assignments are taken as written, so the
        next plan neither reuses a generation nor reshuffles machines. Each service's
        release is the version most of its active machines run (its config cannot be
        recovered and is taken from the spec); a rollout in flight restarts from its first
        step, the machines already on the new version going back to the old one first.
        """
        machines: dict[str, MachineMemory] = {}
        fence = 0
        revision = 0
        for doc in desired:
            fence = max(fence, doc.fence)
            revision = max(revision, doc.spec_revision)
            prev = machines.get(doc.machine)
            if prev is not None and prev.generation >= doc.generation:
                continue
            shared, content = digests(doc)
            machines[doc.machine] = MachineMemory(
                generation=doc.generation,
                digest=content,
                variant=shared,
                issued_at=doc.issued_at,
                service=doc.service,
                mode=doc.mode,
                version=doc.version,
                assigned_at=doc.issued_at,
                drain=doc.drain,  # a drain in progress keeps its deadline
                kept=doc.config if doc.drain is not None and isinstance(doc.config, dict) else None,
            )
        # each service's release: the version most of its active machines were told to run
        votes: dict[str, dict[str, int]] = {}
        for mm in machines.values():
            if (
                mm.service is not None
                and mm.version is not None
                and mm.mode in ("active", "canary")
            ):
                count = votes.setdefault(mm.service, {})
                count[mm.version] = count.get(mm.version, 0) + 1
        services = {
            name: ServiceMemory(
                version=min(count, key=lambda v: (-count[v], v)), revision=revision, rebuilt=True
            )
            for name, count in sorted(votes.items())
        }
        return cls(
            fence=fence,
            spec_revision=revision,
            machines=dict(sorted(machines.items())),
            services=services,
        )

    def with_machine(self, machine: str, value: MachineMemory) -> Memory:
        return replace(self, machines={**self.machines, machine: value})

    def forget_writes(self, failed: Mapping[str, MachineMemory]) -> Memory:
        """Restore the given machines' previous entries (their writes did not happen)."""
        return replace(self, machines={**self.machines, **failed})


# ---- outputs --------------------------------------------------------------------------------


@quick_init
@dataclass(frozen=True, slots=True)
class PutDesired:
    machine: MachineId
    desired: Desired  # generation = previous + 1, fence = the planner's fence
    previous_generation: int  # 0 when the machine never had a document
    reason: str  # "new", "changed", "refresh", "repair"


@quick_init
@dataclass(frozen=True, slots=True)
class Skip:
    machine: MachineId
    reason: str  # "unchanged", "lost", ...


@dataclass(frozen=True, slots=True)
class ScaleStatus:
    """What the autoscaler decided for a `scale:` service, and on what."""

    min: int
    max: int
    metric: str  # the summed terms, e.g. "sessions.calls"
    target_per_machine: float | None
    measured: float  # the metric total behind the current count
    changed_at: Timestamp  # last change of the count (cooldown counts from here)
    held: str = ""  # why the scaler holds the count (stale data, cooldown), "" when it decided


@dataclass(frozen=True, slots=True)
class HoldMemory:
    """A fail-static hold in force (planner/blindness.py)."""

    since: Timestamp
    clearing: Timestamp | None = None  # reports returning: the rest get one window from here


@dataclass(frozen=True, slots=True)
class Eviction:
    """A backend its balancers report unreachable, out of rotation until they reach it
    again or its own heartbeat runs out (controller/planner/evict.py). Keyed
    `<balancer service>/<machine>` in memory and status."""

    service: str  # the balanced service
    balancer: str  # the load-balancer service whose machines report it
    observers: tuple[str, ...]  # the balancer machines reporting it failing
    voters: int  # the live balancer machines routing to it
    everywhere: bool  # a majority: out of every balancer's peers; else only the observers'
    since: Timestamp


@dataclass(frozen=True, slots=True)
class Hold:
    """Fail static: the planner is blind for a service and changes nothing destructive.

    Set when a large share of the service's machines (or of the fleet) went silent
    together: the controller assumes it (or the bucket) cannot see, not that the machines
    died. No demotion, no replacement by removal, no scale-in, balancer peers kept; new
    capacity may still be added from standbys. Lifted by itself when reports return.
    """

    reason: str  # one line for operators
    since: Timestamp  # when the hold began
    silent: int  # machines of the service silent past their liveness window
    total: int  # machines of the service the planner knows
    scope: Literal["service", "fleet"] = "service"
    clearing: Timestamp | None = None  # since when reports are returning (the hold is ending)


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    kind: str
    count: int  # asked
    active: int  # planned active (incl. canary)
    healthy: int  # planned active and reporting healthy
    standby: int
    version: str  # spec version
    target_version: str | None  # version being deployed now (differs while held)
    versions: dict[str, int] = field(default_factory=dict)  # reported version -> machines
    held: str | None = None  # why the service's release waits (dependency), if it does
    scale: ScaleStatus | None = None  # a `scale:` service: the autoscaler's state


@quick_init
@dataclass(frozen=True, slots=True)
class MachineStatus:
    service: str | None
    mode: str
    version: str | None  # planned version
    running: str | None  # reported version of its service
    health: str  # healthy | unhealthy | unknown | lost
    age: float | None  # seconds since the last accepted snapshot (None: never seen)
    lost: bool
    generation: int
    applied_generation: int
    # the agent's last apply failed (a refused balancer check, a template error, a hook):
    # its error as reported; the machine keeps running applied_generation
    apply_error: str | None = field(default=None, metadata=codec.OMIT_EMPTY)


# the gate numbers a rollout status carries, as the metrics and the dashboard chart name them
GATE_MEASURES = (
    "new_requests",
    "new_error_rate",
    "old_error_rate",
    "new_latency_ms",
    "old_latency_ms",
    "error_ratio",
    "latency_ratio",
)
GATE_THRESHOLDS = ("max_error_rate", "max_error_ratio", "max_latency_ratio", "min_requests")


@dataclass(frozen=True, slots=True)
class RolloutStatus:
    """One service's rollout for status/cluster.json and status/rollouts/<service>.json."""

    service: str
    state: str
    from_version: str
    to_version: str
    step: int  # 1-based; 0 before the first step
    steps: int
    step_kind: str
    started_at: Timestamp
    step_started_at: Timestamp
    bake_left: float  # seconds of bake still to run in this step
    cohort: int  # active/canary machines on the new version
    shadow: int
    old: int  # active machines still on the old version
    previous: int  # old-version machines kept warm in standby
    gate: dict[str, JsonValue] = field(default_factory=dict)  # measured vs thresholds
    reason: str = ""
    finished_at: Timestamp | None = None
    paused: bool = False
    # seconds the rollout was held (paused, awaiting approval): off its clocks (clocks.py)
    paused_for: float = field(default=0.0, metadata=codec.OMIT_EMPTY)
    # why it failed: gate | deadline | abort | superseded (rollout status --watch exits on it)
    failure: str | None = field(default=None, metadata=codec.OMIT_EMPTY)
    # an undo: {revision, to_revision, warm} (warm: back in one cycle, else the stages)
    undo: dict[str, JsonValue] | None = field(default=None, metadata=codec.OMIT_EMPTY)
    # an approval step: {waiting: true, since} or {waiting: false, by, reason, revision}
    approval: dict[str, JsonValue] | None = field(default=None, metadata=codec.OMIT_EMPTY)
    # the coupled release this rollout moves with (its members share steps and fate)
    group: str | None = field(default=None, metadata=codec.OMIT_EMPTY)

    def to_json(self) -> bytes:
        return dumps_pretty(codec.encode(self))


@dataclass(frozen=True, slots=True)
class Status:
    format: str
    at: Timestamp
    spec_revision: int
    fence: int
    services: dict[str, ServiceStatus]
    machines: dict[str, MachineStatus]
    rejections: tuple[Rejection, ...] = ()
    rollouts: dict[str, RolloutStatus] = field(default_factory=dict)
    holds: dict[str, Hold] = field(default_factory=dict)  # service -> why it is held static
    evicted: dict[str, Eviction] = field(default_factory=dict, metadata=codec.OMIT_EMPTY)

    def to_json(self) -> bytes:
        return dumps_pretty(codec.encode(self))


@dataclass(frozen=True, slots=True)
class ProvisionNeeded:
    """Effect: ask the service's provisioner for machines (count < 0: machines can go).
    `target` is the machines wanted for the service in total (active + warm standby)."""

    service: str
    count: int
    target: int
    reason: str
    request_id: str


@dataclass(frozen=True, slots=True)
class Plan:
    writes: tuple[PutDesired, ...]
    skips: tuple[Skip, ...]
    memory: Memory
    events: tuple[Event, ...]
    status: Status
    provisions: tuple[ProvisionNeeded, ...] = ()  # effects for the cycle's provisioner
    # effects: machines the spec forgets (not reporting): delete their desired/ and report
    forgotten: tuple[str, ...] = ()
