"""The cluster spec as typed, frozen values: what operators write, after validation.

    ClusterSpec
    ├── revision                  set by `bosun spec apply` (0 = never applied)
    ├── settings: Settings        heartbeat_timeout, desired_lifetime, skew_window,
    │                             controller_interval (all seconds)
    └── services: {name: ServiceSpec}
        ├── kind                  service | loadbalancer (with `balances: <service>`)
        ├── version, count, config, depends_on, port, weight, pools
        ├── health: HealthSpec    grace, quarantine
        ├── sessions: SessionsSpec drain_timeout
        ├── overrides             sub-group updates recorded by `bosun update`
        ├── rollout: RolloutSpec  steps, gates, on_failure, keep_previous, keep_warm, watch,
        │                         deadline (a top-level `rollout` is the default for every
        │                         service)
        ├── control               the last `bosun rollout pause|resume|promote|abort`
        ├── undo: Undo            the last `bosun rollout undo` (its version is the spec's)
        └── approval: Approval    the last `bosun rollout approve` (who, why)

These dataclasses are also the JSON form stored in `spec/current.json` (via wire.codec);
the YAML reader in `controller.spec.load` turns human input into them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from wire.codec import OMIT_EMPTY, JsonValue

Kind = Literal["service", "loadbalancer"]

SPEC_FORMAT = "bosun.spec/1"


@dataclass(frozen=True, slots=True)
class Settings:
    """Cluster-wide timing, in seconds."""

    heartbeat_timeout: float = 60.0  # a machine silent this long is lost
    desired_lifetime: float = 3600.0  # expires_at = issued_at + this; re-signed at half
    skew_window: float = 300.0  # snapshot sent_at must be within this of controller time
    controller_interval: float = 10.0  # how often the controller cycles
    # fail static: hold (demote nothing) when this share of the fleet, or of a service, went
    # quiet together; "off": silence is always death (docs/security.md#fail-static)
    blind_threshold: float | Literal["off"] = 0.55


@dataclass(frozen=True, slots=True)
class HealthSpec:
    """When a machine's reported health counts against it."""

    grace: float = 60.0  # after (re)assignment, 'unhealthy'/'failed' is tolerated this long
    quarantine: float = 600.0  # a machine replaced for bad health is not re-activated for this long
    blind_threshold: float | Literal["off"] | None = None  # None: settings.blind_threshold


@dataclass(frozen=True, slots=True)
class SessionsSpec:
    """Sustained sessions (calls, streams) a machine may be carrying."""

    drain_timeout: float = 300.0
    channels: tuple[str, ...] = ()
    config_disruptive: bool = False  # a config change restarts the service: drain first


@dataclass(frozen=True, slots=True)
class ScaleSpec:
    """Autoscaling of one service (parsed by controller.spec.scale).

    The loader stores `max` as the service's `count` (the most it may ever run) and the
    operator's `count` as `start`; the planner replaces the count every cycle by a number
    between `min` and `max` computed from `metric` (terms summed over the service's
    machines that reported recently).
    """

    min: int
    max: int
    start: int  # the operator's count: where the scaler begins
    metric: tuple[str, ...]  # sessions.<channel> | load.<field> | sessions | load; summed
    target_per_machine: float | None = None
    up: float | None = None  # utilisation thresholds (fractions of target_per_machine)
    down: float | None = None
    cooldown: float = 300.0  # no scale-down within this long after any change
    standby: int = 0  # warm standby machines kept ready (provisioned when missing)
    fresh: float = 0.0  # a snapshot older than this is not used (0: 3 controller intervals)
    min_fresh: float = 0.5  # share of the service's machines that must be fresh to decide
    boot_timeout: float = 600.0  # a provision request not fulfilled by then may be repeated


@dataclass(frozen=True, slots=True)
class Override:
    """A sub-group update (`bosun update`): the selected machines run this version/config.

    `id` is the spec revision that created it; the planner resolves `select` once and
    remembers the chosen machines in memory (key `<service>/<id>`), so the selection is
    stable even though the selected machines' versions change.
    """

    id: int
    select: str  # id=a,b | count=N | percent=P | version=V | max(...) | min(...)
    version: str | None = None
    config: dict[str, JsonValue] = field(default_factory=dict)  # merged over the service's


StepKind = Literal["shadow", "canary", "percent", "select", "approve"]


@dataclass(frozen=True, slots=True)
class RolloutStep:
    """One stage of a rollout: how many machines run the new version, and how long to bake.

    shadow: N extra machines on the new version get mirrored traffic only;
    canary: N active machines on the new version at a reduced load-balancer weight;
    percent: that share of the service's active machines (rounded up, at least one);
    select: a sized selector such as max(count=2,percent=10);
    approve: the rollout waits, as the previous step left it, until `bosun rollout approve`
    (an `Approval` for its version); no machine changes and no bake.
    """

    kind: StepKind
    number: float = 0.0  # machines (shadow, canary) or percent
    select: str = ""  # kind == "select"
    weight: int | None = None  # canary load-balancer weight (default: the service's)
    bake: float = 0.0  # seconds the step must run with passing gates before moving on


@dataclass(frozen=True, slots=True)
class Gates:
    """Thresholds comparing the new-version cohort with the old over the same window."""

    max_error_rate: float | None = None  # absolute, new version
    max_error_ratio: float | None = None  # new / old error rate
    max_latency_ratio: float | None = None  # new / old mean latency
    min_requests: int = 100  # fewer new-version requests in the window: the gate waits
    # the old-version requests the comparison needs in the same window (None: min_requests)
    min_baseline_requests: int | None = field(default=None, metadata=OMIT_EMPTY)
    # confidence of the two-proportion test that the new error rate differs from the old
    # (None: DEFAULT_CONFIDENCE); below it the gate waits for more requests
    confidence: float | None = field(default=None, metadata=OMIT_EMPTY)

    def baseline_minimum(self) -> int:
        return (
            self.min_requests if self.min_baseline_requests is None else self.min_baseline_requests
        )

    def confidence_level(self) -> float:
        return DEFAULT_CONFIDENCE if self.confidence is None else self.confidence


DEFAULT_CONFIDENCE = 0.95


@dataclass(frozen=True, slots=True)
class RolloutSpec:
    steps: tuple[RolloutStep, ...] = ()  # always ends with percent 100 (added if missing)
    gates: Gates = field(default_factory=Gates)
    on_failure: Literal["revert", "halt"] = "revert"
    keep_previous: float = 3600.0  # old-version machines stay warm standby this long after
    # of keep_previous, how long their process keeps running (out of the balancer), so an
    # undo is a mode change; 0: stopped at once (<= keep_previous)
    keep_warm: float = field(default=0.0, metadata=OMIT_EMPTY)
    watch: float = 0.0  # after 100%: still revert if the new version degrades vs the baseline
    progress_deadline: float = 7200.0  # the whole rollout must finish within this


ControlAction = Literal["pause", "resume", "promote", "abort"]


@dataclass(frozen=True, slots=True)
class RolloutControl:
    """An operator's command to the service's rollout (`bosun rollout pause|resume|...`).

    Recorded as a spec revision; the planner applies each `id` once, and only to the
    rollout towards `version` (a command never leaks into a later rollout).
    """

    id: int  # the spec revision that issued it
    action: ControlAction
    version: str  # the rollout's target version


@dataclass(frozen=True, slots=True)
class Undo:
    """`bosun rollout undo`: the service's version (and config) were set back to those of
    spec revision `to_revision`. The revision that recorded it is `id`; the planner acts on
    each id once: a rollout from `from_version` to `version` that skips its stages when the
    previous machines are still warm (`keep_warm`), through the stages otherwise.
    """

    id: int  # the spec revision that recorded the undo (its version is `version`)
    to_revision: int  # the revision whose release it returns to
    version: str  # the version it returns to
    from_version: str  # the version it takes back


@dataclass(frozen=True, slots=True)
class Approval:
    """`bosun rollout approve`: lets the rollout towards `version` pass the approval step it
    waits at (or the next one it reaches). The planner acts on each id once."""

    id: int  # the spec revision that recorded it
    version: str  # the rollout's target version
    by: str  # who approved (--by, default the operator's login)
    reason: str  # why (--reason, required)


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    version: str
    count: int
    kind: Kind = "service"
    balances: str | None = None  # loadbalancer only: the service whose machines are peers
    config: dict[str, JsonValue] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()
    port: int | None = None  # default port when a machine does not report one
    weight: int = 100  # load-balancer weight of this service's machines
    pools: tuple[str, ...] = ()  # machines eligible for any of these pools may run this service
    health: HealthSpec = field(default_factory=HealthSpec)
    sessions: SessionsSpec = field(default_factory=SessionsSpec)
    overrides: tuple[Override, ...] = ()
    rollout: RolloutSpec | None = None  # None: the cluster default, else switch at once
    control: RolloutControl | None = None  # the last operator command to its rollout
    undo: Undo | None = field(default=None, metadata=OMIT_EMPTY)  # the last rollout undo
    approval: Approval | None = field(default=None, metadata=OMIT_EMPTY)  # the last approval
    scale: ScaleSpec | None = None  # autoscaling
    max_unavailable: str | None = None  # "2" or "25%": draining/changing/lost at once
    provisioner: dict[str, JsonValue] | None = None  # overrides the cluster's provisioner


@dataclass(frozen=True, slots=True)
class Coupled:
    """A coupled release (`coupled:`): services whose version changes roll out as one unit,
    in lockstep, gated on all of them, reverted together (planner/coupled.py). `services` in
    dependency order (dependencies first); their versions are the services' own."""

    services: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ClusterSpec:
    revision: int = 0
    settings: Settings = field(default_factory=Settings)
    services: dict[str, ServiceSpec] = field(default_factory=dict)
    rollout: RolloutSpec | None = None  # default rollout strategy for every service
    provisioner: dict[str, JsonValue] | None = None  # {type: command|ec2-asg, ...}
    # machines gone for good (`bosun machines forget`): dropped from memory, status and
    # desired/ while they do not report; one that reports again is a machine again
    forget: tuple[str, ...] = ()
    # coupled releases by name (controller/spec/coupled.py)
    coupled: dict[str, Coupled] = field(default_factory=dict, metadata=OMIT_EMPTY)

    def coupled_of(self, service: str) -> str | None:
        """The coupled release `service` belongs to, if any."""
        for name, group in self.coupled.items():
            if service in group.services:
                return name
        return None

    def released_with(self, service: str) -> tuple[str, ...]:
        """The services released as one unit with `service`: its coupled release's, in
        dependency order, or `service` alone."""
        group = self.coupled_of(service)
        return self.coupled[group].services if group is not None else (service,)

    def provisioner_of(self, service: str) -> dict[str, JsonValue] | None:
        svc = self.services.get(service)
        if svc is not None and svc.provisioner is not None:
            return svc.provisioner
        return self.provisioner

    def rollout_of(self, service: str) -> RolloutSpec | None:
        svc = self.services.get(service)
        if svc is None:
            return None
        return svc.rollout if svc.rollout is not None else self.rollout
