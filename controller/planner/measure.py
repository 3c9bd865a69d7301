"""Rollout gates from the cumulative counters in snapshots (no metrics system needed).

Within a window (a rollout step), each machine's requests and errors are the difference
between its current counters and the mark taken when the window opened; a counter below
its mark means the service restarted, and the current value is the delta. Error rates are
summed over a cohort (errors / requests); latency is the mean of the reported latency.

Verdicts: `wait` while the new version has fewer than `min_requests` in the window (a gate
never passes on too few samples), `fail` when a threshold is exceeded, else `pass`.
The error ratio divides by max(old rate, 0.001), so a perfect old version does not make
every single new error an infinite ratio.

The comparison with the old version (`max_error_ratio`) states its confidence: it needs
`min_baseline_requests` old-version requests (else it waits), and an error ratio above the
threshold fails only when a two-proportion z-test (pooled, one-sided: is the new error rate
higher than the old?) is significant at `gates.confidence`, that is its p-value is below
1 - confidence; until then the gate waits for more requests instead of reverting on noise.
The numbers decided on (requests, errors, rates, z, p-value) are in the gate table.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from controller.planner.model import MachineObservation, Mark
from controller.spec.model import Gates
from wire.codec import JsonValue

Verdict = Literal["pass", "wait", "fail"]
RATE_FLOOR = 0.001


@dataclass(frozen=True, slots=True)
class Cohort:
    machines: int = 0
    requests: int = 0
    errors: int = 0
    latency_ms: float | None = None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None


@dataclass(frozen=True, slots=True)
class GateResult:
    verdict: Verdict
    reason: str
    numbers: dict[str, JsonValue] = field(default_factory=dict)


def mark_of(obs: MachineObservation | None, service: str) -> Mark:
    state = obs.snapshot.services.get(service) if obs is not None else None
    return Mark(state.requests, state.errors) if state is not None else Mark()


def _was_reset(requests: int, errors: int, mark: Mark) -> bool:
    """Counters restart from zero when the service process restarts. Either counter below
    its mark, or more new errors than new requests (impossible without a restart), means
    the mark no longer applies: count both from zero."""
    if requests < mark.requests or errors < mark.errors:
        return True
    return errors - mark.errors > requests - mark.requests


def sticky_marks(
    machines: Iterable[str],
    live: Mapping[str, MachineObservation],
    marks: Mapping[str, Mark],
    service: str,
) -> dict[str, Mark]:
    """`marks` with every machine whose counters were reset since its mark moved to (0, 0),
    so later cycles keep counting from the restart instead of from the stale mark."""
    out = dict(marks)
    for m in machines:
        obs = live.get(m)
        state = obs.snapshot.services.get(service) if obs is not None else None
        mark = out.get(m)
        if (
            state is not None
            and mark is not None
            and _was_reset(state.requests, state.errors, mark)
        ):
            out[m] = Mark()
    return out


def cohort(
    machines: Iterable[str],
    live: Mapping[str, MachineObservation],
    marks: Mapping[str, Mark],
    service: str,
) -> Cohort:
    n = requests = errors = 0
    latencies: list[float] = []
    for m in machines:
        obs = live.get(m)
        state = obs.snapshot.services.get(service) if obs is not None else None
        if state is None:
            continue
        n += 1
        mark = marks.get(m, Mark(state.requests, state.errors))
        if _was_reset(state.requests, state.errors, mark):
            mark = Mark()
        requests += state.requests - mark.requests
        errors += state.errors - mark.errors
        if state.latency_ms is not None:
            latencies.append(state.latency_ms)
    latency = sum(latencies) / len(latencies) if latencies else None
    return Cohort(n, requests, max(0, errors), latency)


def z_test(new: Cohort, old: Cohort) -> tuple[float, float]:
    """(z, one-sided p-value) of the pooled two-proportion z-test that the new error rate is
    higher than the old one."""
    n1, n2 = new.requests, old.requests
    if n1 <= 0 or n2 <= 0:
        return 0.0, 1.0
    pooled = (new.errors + old.errors) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 0.0, 0.5  # no error, or nothing but errors, on both sides: no difference
    z = (new.errors / n1 - old.errors / n2) / se
    return z, 0.5 * math.erfc(z / math.sqrt(2))


def evaluate(
    gates: Gates,
    new: Cohort,
    old: Cohort | None,
    old_latency: float | None,
) -> GateResult:
    """`old`: the old version's requests and errors in the same window, or the baseline
    recorded from the last window that had them (None: no baseline, ratio gates skipped)."""
    old_rate = old.error_rate if old is not None else None
    numbers: dict[str, JsonValue] = {
        "new_requests": new.requests,
        "new_errors": new.errors,
        "new_error_rate": _r(new.error_rate),
        "old_requests": old.requests if old is not None else None,
        "old_errors": old.errors if old is not None else None,
        "old_error_rate": _r(old_rate),
        "new_latency_ms": _r(new.latency_ms),
        "old_latency_ms": _r(old_latency),
        "min_requests": gates.min_requests,
        "min_baseline_requests": gates.baseline_minimum(),
        "confidence": gates.confidence_level(),
        "max_error_rate": gates.max_error_rate,
        "max_error_ratio": gates.max_error_ratio,
        "max_latency_ratio": gates.max_latency_ratio,
    }
    if new.requests < gates.min_requests:
        return GateResult(
            "wait", f"{new.requests} of {gates.min_requests} requests on the new version", numbers
        )
    rate = new.error_rate or 0.0
    if gates.max_error_rate is not None and rate > gates.max_error_rate:
        return GateResult(
            "fail", f"error rate {rate:.4f} above max_error_rate {gates.max_error_rate}", numbers
        )
    if gates.max_error_ratio is not None and old is not None and old_rate is not None:
        if old.requests < gates.baseline_minimum():
            return GateResult(
                "wait",
                f"{old.requests} of {gates.baseline_minimum()} requests on the old version "
                "to compare with",
                numbers,
            )
        ratio = rate / max(old_rate, RATE_FLOOR)
        z, p_value = z_test(new, old)
        numbers.update(error_ratio=_r(ratio), z=_r(z), p_value=_r(p_value))
        if ratio > gates.max_error_ratio:
            level = gates.confidence_level()
            said = (
                f"error rate {rate:.4f} is {ratio:.2f}x the old version's {old_rate:.4f} "
                f"(max_error_ratio {gates.max_error_ratio}; z {z:.2f}, p {p_value:.4f}"
            )
            if p_value < 1 - level:
                return GateResult("fail", f"{said} < {1 - level:.4g})", numbers)
            return GateResult(
                "wait",
                f"{said}: not significant at confidence {level:g}, needs more requests)",
                numbers,
            )
    if gates.max_latency_ratio is not None and new.latency_ms is not None and old_latency:
        lratio = new.latency_ms / old_latency
        numbers["latency_ratio"] = _r(lratio)
        if lratio > gates.max_latency_ratio:
            return GateResult(
                "fail",
                f"latency {new.latency_ms:.1f} ms is {lratio:.2f}x the old version's "
                f"{old_latency:.1f} ms (max_latency_ratio {gates.max_latency_ratio})",
                numbers,
            )
    return GateResult("pass", "gates pass", numbers)


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 6)
