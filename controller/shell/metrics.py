"""Prometheus metrics of `bosun controller run --metrics-port` (docs/metrics.md).

Counters and histograms are updated once per cycle from its `CycleReport` (and from
`CountingStore`, which counts every bucket request by kind and answer); the cluster
gauges (machines by service, mode and health; stale and held machines; rollouts) are
computed at scrape time from the last cycle's plan, so a machine or a rollout that is gone
disappears from the exposition instead of keeping its last value.

    bosun_controller_cycles_total{result}                 acted | follower | incomplete | failed | crashed
    bosun_controller_cycle_duration_seconds               histogram (acting cycles)
    bosun_controller_cycle_phase_duration_seconds{phase}  histogram: lease, load, intake, drift, plan, publish, records, save
    bosun_controller_store_requests_total{kind,answer}    get|put|list|delete x ok|not_modified|missing|conflict|unavailable|error
    ...                                                    (the rest: docs/metrics.md)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from controller.planner.blindness import silence_allowed
from controller.planner.model import GATE_MEASURES, GATE_THRESHOLDS, MachineObservation, Plan
from controller.shell.cycle import Controller, CycleReport
from controller.spec.model import Settings
from wire.errors import BosunError, StoreUnavailable, WriteConflict
from wire.store import Missing, NotModified, ObjectInfo, Store

CYCLE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
ROLLOUT_STATES = ("shadow", "canary", "steps", "watching", "halted", "complete", "reverted")


def _answer(exc: BaseException) -> str:
    if isinstance(exc, WriteConflict):
        return "conflict"
    if isinstance(exc, StoreUnavailable):
        return "unavailable"
    return "error"


class CountingStore:
    """A `Store` that counts each request by kind and answer; everything else is the
    wrapped store's (attributes it does not define are looked up there)."""

    def __init__(self, inner: Store, requests: Counter) -> None:
        self._inner = inner
        self._requests = requests

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._inner, name)
        if name == "list_after":  # a ranged LIST (controller.shell.listing) counts as one
            return self._counted(found)
        return found

    def _counted(self, list_after: Any) -> Any:
        def counted(prefix: str, start_after: str | None) -> Iterator[ObjectInfo]:
            try:
                yield from list_after(prefix, start_after)
            except BosunError as exc:
                self._count("list", _answer(exc))
                raise
            self._count("list", "ok")

        return counted

    @property
    def url(self) -> str:
        return self._inner.url

    def _count(self, kind: str, answer: str) -> None:
        self._requests.labels(kind=kind, answer=answer).inc()

    def get(self, key: str, **kw: Any) -> Any:
        try:
            got = self._inner.get(key, **kw)
        except BosunError as exc:
            self._count("get", _answer(exc))
            raise
        answer = "missing" if isinstance(got, Missing) else "ok"
        self._count("get", "not_modified" if isinstance(got, NotModified) else answer)
        return got

    def put(self, key: str, body: bytes, **kw: Any) -> Any:
        try:
            out = self._inner.put(key, body, **kw)
        except BosunError as exc:
            self._count("put", _answer(exc))
            raise
        self._count("put", "ok")
        return out

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        try:
            yield from self._inner.list(prefix)
        except BosunError as exc:
            self._count("list", _answer(exc))
            raise
        self._count("list", "ok")

    def delete(self, key: str) -> None:
        try:
            self._inner.delete(key)
        except BosunError as exc:
            self._count("delete", _answer(exc))
            raise
        self._count("delete", "ok")

    def describe(self, key: str) -> str:
        return self._inner.describe(key)


class ControllerMetrics:
    """The registry `bosun controller run --metrics-port` serves."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.cycles = Counter(
            "bosun_controller_cycles", "Cycles run, by result.", ["result"], registry=r
        )
        self.cycle_seconds = Histogram(
            "bosun_controller_cycle_duration_seconds",
            "Duration of the cycles in which this controller acted.",
            buckets=CYCLE_BUCKETS,
            registry=r,
        )
        self.phase_seconds = Histogram(
            "bosun_controller_cycle_phase_duration_seconds",
            "Duration of each phase of an acting cycle.",
            ["phase"],
            buckets=CYCLE_BUCKETS,
            registry=r,
        )
        self.requests = Counter(
            "bosun_controller_store_requests",
            "Bucket requests of this controller, by kind and answer.",
            ["kind", "answer"],
            registry=r,
        )
        self.reports = Counter(
            "bosun_controller_reports",
            "Machine reports listed, fetched (changed), accepted and rejected.",
            ["outcome"],
            registry=r,
        )
        self.rejections = Counter(
            "bosun_controller_snapshot_rejections",
            "Snapshots the controller refused, by reason.",
            ["reason"],
            registry=r,
        )
        self.desired = Counter(
            "bosun_controller_desired_writes",
            "Desired documents written, and writes that failed.",
            ["result"],
            registry=r,
        )
        self.last_cycle = Gauge(
            "bosun_controller_last_cycle_timestamp_seconds",
            "When the last cycle finished (Unix time).",
            registry=r,
        )
        self.leader = Gauge(
            "bosun_controller_leader", "1 while this controller holds the lease.", registry=r
        )
        for result in ("acted", "follower", "incomplete", "failed", "crashed"):
            self.cycles.labels(result=result)
        self._lock = threading.Lock()
        self._plan: Plan | None = None
        self._controller: Controller | None = None
        r.register(_ClusterCollector(self))

    def store(self, inner: Store) -> CountingStore:
        return CountingStore(inner, self.requests)

    def observe(self, controller: Controller, report: CycleReport) -> None:
        """After each cycle that returned a report."""
        acting = report.lease.acting
        self.leader.set(1 if acting else 0)
        self.last_cycle.set(time.time())
        if not acting:
            self.cycles.labels(result="follower").inc()
            return
        if report.plan is None and (report.unread or report.note):
            self.cycles.labels(result="incomplete").inc()
        else:
            self.cycles.labels(result="acted").inc()
        self.cycle_seconds.observe(sum(report.timings.values()))
        for phase, seconds in report.timings.items():
            self.phase_seconds.labels(phase=phase).observe(seconds)
        for outcome in ("listed", "fetched", "accepted", "rejected"):
            self.reports.labels(outcome=outcome).inc(getattr(report, outcome))
        written = sum(k.startswith("desired/") for k in report.written)
        self.desired.labels(result="written").inc(written)
        self.desired.labels(result="failed").inc(
            sum(k not in ("control/memory.json", "control/intake.json") for k in report.failed)
        )
        if report.plan is not None:
            for rej in report.plan.status.rejections:
                self.rejections.labels(reason=rej.reason).inc()
            with self._lock:
                self._plan, self._controller = report.plan, controller

    def failed(self, how: str) -> None:
        """A cycle that raised: `failed` (a known error) or `crashed` (a bug)."""
        self.cycles.labels(result=how).inc()
        self.last_cycle.set(time.time())

    def latest(self) -> tuple[Plan | None, Controller | None]:
        with self._lock:
            return self._plan, self._controller


class _ClusterCollector(Collector):
    """Gauges from the last plan, built at scrape time."""

    def __init__(self, metrics: ControllerMetrics) -> None:
        self.metrics = metrics

    def describe(self) -> list[Any]:
        return []  # label sets vary; nothing to check at registration

    def collect(self) -> Iterator[GaugeMetricFamily]:
        plan, controller = self.metrics.latest()
        machines = GaugeMetricFamily(
            "bosun_machines", "Machines by service, mode and health (last plan).",
            labels=["service", "mode", "health"],
        )  # fmt: skip
        stale = GaugeMetricFamily(
            "bosun_machines_stale",
            "Machines silent past their liveness window, not yet lost, by service.",
            labels=["service"],
        )
        lost = GaugeMetricFamily("bosun_machines_lost", "Machines lost, by service.",
                                 labels=["service"])  # fmt: skip
        held = GaugeMetricFamily(
            "bosun_machines_held",
            "Machines of services held static (the controller is blind for them).",
            labels=["service"],
        )
        refusals = GaugeMetricFamily(
            "bosun_agent_refusals",
            "Desired documents the agents say they refused, by reason (sum of their counts).",
            labels=["reason"],
        )
        step = GaugeMetricFamily(
            "bosun_rollout_step", "Current step of each service's last rollout (1-based).",
            labels=["service"],
        )  # fmt: skip
        steps = GaugeMetricFamily("bosun_rollout_steps", "Steps of the rollout.",
                                  labels=["service"])  # fmt: skip
        state = GaugeMetricFamily(
            "bosun_rollout_state", "1 for the state the rollout is in.", labels=["service", "state"]
        )
        gate = GaugeMetricFamily(
            "bosun_rollout_gate",
            "Gate numbers of the rollout's current window (new and old version).",
            labels=["service", "measure"],
        )
        threshold = GaugeMetricFamily(
            "bosun_rollout_gate_threshold", "Gate thresholds of the rollout.",
            labels=["service", "threshold"],
        )  # fmt: skip
        if plan is not None:
            status = plan.status
            counts: dict[tuple[str, str, str], int] = {}
            stale_n: dict[str, int] = {}
            lost_n: dict[str, int] = {}
            timeout = _settings(controller).heartbeat_timeout
            cache = controller.cache.entries if controller is not None else {}
            for name, m in status.machines.items():
                service = m.service or ""
                key = (service, m.mode, m.health)
                counts[key] = counts.get(key, 0) + 1
                lost_n.setdefault(service, 0)
                stale_n.setdefault(service, 0)
                if m.lost:
                    lost_n[service] += 1
                    continue
                entry = cache.get(name)
                window = (
                    silence_allowed(timeout, MachineObservation(entry[1], 0.0))
                    if entry is not None
                    else timeout
                )
                if m.age is not None and m.age > window:
                    stale_n[service] += 1
            for (service, mode, health), n in sorted(counts.items()):
                machines.add_metric([service, mode, health], n)
            for service, n in sorted(stale_n.items()):
                stale.add_metric([service], n)
            for service, n in sorted(lost_n.items()):
                lost.add_metric([service], n)
            for service in sorted(status.services):
                hold = status.holds.get(service)
                held.add_metric([service], hold.total if hold is not None else 0)
            reasons: dict[str, int] = {}
            for _etag, snap in cache.values():
                for reason, n in snap.refusals.items():
                    reasons[reason] = reasons.get(reason, 0) + n
            for reason, n in sorted(reasons.items()):
                refusals.add_metric([reason], n)
            for service, r in sorted(status.rollouts.items()):
                step.add_metric([service], r.step)
                steps.add_metric([service], r.steps)
                for s in ROLLOUT_STATES:
                    state.add_metric([service, s], 1 if r.state == s else 0)
                for measure in GATE_MEASURES:
                    value = r.gate.get(measure)
                    if isinstance(value, int | float) and not isinstance(value, bool):
                        gate.add_metric([service, measure], float(value))
                for name in GATE_THRESHOLDS:
                    value = r.gate.get(name)
                    if isinstance(value, int | float) and not isinstance(value, bool):
                        threshold.add_metric([service, name], float(value))
        yield from (machines, stale, lost, held, refusals, step, steps, state, gate, threshold)


def _settings(controller: Controller | None) -> Settings:
    spec = controller.spec_cache.spec if controller is not None else None
    return spec.settings if spec is not None else Settings()


def serve_metrics(metrics: ControllerMetrics, host: str, port: int) -> int:
    """Serve /metrics from a daemon thread; the port bound (useful with port 0)."""
    from prometheus_client import start_http_server

    server, _thread = start_http_server(port, addr=host, registry=metrics.registry)
    return int(server.server_address[1])


__all__ = ["ControllerMetrics", "CountingStore", "serve_metrics"]
