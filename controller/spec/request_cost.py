"""What a cluster costs in S3 requests per month, at AWS list prices.

The design's floor, per machine: one GET per poll (a 304 is billed as a GET), one PUT per
heartbeat, one controller GET per heartbeat (the snapshot whose ETag changed), plus one
LIST per 1,000 machines per controller cycle. On top of the floor: the lease renewal
(one PUT per cycle), one LIST of `desired/` per 1,000 machines per cycle (documents not as
last written are found and rewritten) and re-signing each desired document before half its
lifetime runs out.
Failed and retried requests are billed too; they are not in this estimate.
"""

from __future__ import annotations

from dataclasses import dataclass

MONTH_SECONDS = 30 * 86400
# S3 Standard, us-east-1 list prices (USD per 1,000 requests).
PUT_PER_1000 = 0.005  # PUT, COPY, POST, LIST
GET_PER_1000 = 0.0004  # GET and all other requests


@dataclass(frozen=True, slots=True)
class CostInputs:
    machines: int
    poll: float = 30.0
    heartbeat: float = 300.0
    controller_interval: float = 10.0
    desired_lifetime: float = 3600.0  # the spec's default (settings.desired_lifetime)

    def __post_init__(self) -> None:
        for name in ("poll", "heartbeat", "controller_interval", "desired_lifetime"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.machines < 0:
            raise ValueError("machines must be >= 0")


@dataclass(frozen=True, slots=True)
class CostLine:
    what: str
    kind: str  # "GET" or "PUT" (LIST is billed as PUT)
    requests: float  # per month
    floor: bool  # part of the design's floor

    @property
    def usd(self) -> float:
        return self.requests / 1000 * (GET_PER_1000 if self.kind == "GET" else PUT_PER_1000)


@dataclass(frozen=True, slots=True)
class CostEstimate:
    inputs: CostInputs
    lines: tuple[CostLine, ...]

    @property
    def total_usd(self) -> float:
        return sum(line.usd for line in self.lines)

    @property
    def floor_usd(self) -> float:
        return sum(line.usd for line in self.lines if line.floor)

    @property
    def requests(self) -> float:
        return sum(line.requests for line in self.lines)

    def per_thousand_machines(self) -> float:
        return self.total_usd / self.inputs.machines * 1000 if self.inputs.machines else 0.0


def estimate(inputs: CostInputs) -> CostEstimate:
    n = inputs.machines
    cycles = MONTH_SECONDS / inputs.controller_interval
    pages = max(1, -(-n // 1000)) if n else 0
    lines = (
        CostLine(
            "agent GET desired (304 in steady state), per poll",
            "GET",
            n * MONTH_SECONDS / inputs.poll,
            True,
        ),
        CostLine(
            "agent PUT snapshot, per heartbeat", "PUT", n * MONTH_SECONDS / inputs.heartbeat, True
        ),
        CostLine(
            "controller GET changed snapshot, per heartbeat",
            "GET",
            n * MONTH_SECONDS / inputs.heartbeat,
            True,
        ),
        CostLine(
            "controller LIST reports/, per cycle and 1,000 machines", "PUT", pages * cycles, True
        ),
        CostLine("controller lease renewal, per cycle", "PUT", cycles if n else 0.0, False),
        CostLine(
            "controller LIST desired/ (the bucket heals), per cycle and 1,000 machines",
            "PUT",
            pages * cycles,
            False,
        ),
        CostLine(
            "controller re-signs desired, every half lifetime",
            "PUT",
            n * MONTH_SECONDS / (inputs.desired_lifetime / 2),
            False,
        ),
    )
    return CostEstimate(inputs, lines)
