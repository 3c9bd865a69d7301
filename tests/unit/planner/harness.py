"""Build planner inputs from compact test data and check plans against expectations.

A case file (`cases/*.yaml`) is a list of cycles; memory carries from one cycle to the next:

    name: a lost router is replaced in the same cycle
    rule: replacement
    spec: {services: {router: {version: "1", count: 2}}}     # YAML spec form
    memory: {...}               # optional initial memory (JSON form)
    cycles:
      - now: 1000
        observed:               # merged into the previous cycle's; null removes a machine
          r1: {eligible: [router]}
        expect:
          writes: {r1: {mode: active, service: router, version: "1", peers: [..]}}
          events: [{kind: machine.assigned, machine: r1}]
          events_in_order: [...]  # these events in this order (others may come between)
          no_events: [machine.lost]
          memory: {machines: {r1: {generation: 1}}}
          status: {services: {router: {active: 1}}}

Observed machine fields: eligible, age (seconds since accepted, default 0), health and
state (of the service it was last told to run), version (reported; default the version it
was told), port, address (default <id>.lan), sessions, status, services (explicit
per-service state), applied (generation; default the last written), report: none (reports
no service).

By default a machine reports as the real agent does (checked against a real `bosun-agent`
by tests/integration/agent/test_agent_conformance.py), with one exception: the service it
was told to run is running and healthy in active, canary, shadow and draining; every other
service it is eligible for (the agent reports each configured service), and every service
of a deactivated machine, is stopped, unknown, with no version; `applied` is the last
written generation, with the memory's fence and result ok (none before any).

A standby service is reported as the real agent reports it: the agent stops its process
and probes nothing, so it is `stopped` with health `unknown` (at the version it was told).
A standby activated in a cycle therefore joins its balancers' peers one cycle later, once
it reports healthy, and counts as unavailable for the disruption budget until then; each
case whose expectation moved with this says so in a comment. A `warm` machine (a rollout's
previous machine: agent.config.RUNNING_MODES) runs and reports healthy, so a revert to it
serves in the same cycle (rollout_watch_revert). A case may name a known planner bug
(`known_bug: why`): a strict xfail until it is fixed.
`snapshot_for(..., stopped_standby=False)` gives the old, kinder report.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from agent.config import RUNNING_MODES
from controller.planner import MachineObservation, Memory, Observed, Plan, Rejection, plan
from controller.planner.assign import ACTIVE_MODES
from controller.spec.load import from_value
from controller.spec.model import ClusterSpec
from wire import codec
from wire.documents import Addresses, Applied, ServiceState, Snapshot
from wire.layout import MachineId

CASES = Path(__file__).parent / "cases"


def snapshot_for(
    m: str,
    spec: dict[str, Any],
    memory: Memory,
    now: float,
    seq: int,
    counters: tuple[int, int, float | None] = (0, 0, None),
    *,
    stopped_standby: bool = True,
) -> Snapshot:
    """What machine `m` reports, from its case entry `spec` and the planner's `memory`.
    `stopped_standby`: a standby service is stopped with health unknown, as the real agent
    reports it (the default; False gives the old, kinder report)."""
    mm = memory.machines.get(m)
    services: dict[str, ServiceState] = {}
    if "services" in spec:
        services = {k: codec.decode(ServiceState, v, k) for k, v in spec["services"].items()}
    elif spec.get("report", "desired") == "desired":
        for name in spec.get("eligible", ()):
            services[name] = ServiceState(state="stopped", health="unknown")
        if mm is not None and mm.service is not None:
            up = mm.mode in RUNNING_MODES or not stopped_standby
            services[mm.service] = ServiceState(
                version=spec.get("version", mm.version),
                state=spec.get("state", "running" if up else "stopped"),
                health=spec.get("health", "healthy" if up else "unknown"),
                port=spec.get("port"),
                requests=spec.get("requests", counters[0]),
                errors=spec.get("errors", counters[1]),
                latency_ms=spec.get("latency_ms", counters[2]),
            )
    applied = spec.get("applied", mm.generation if mm is not None else 0)
    return Snapshot(
        machine=m,
        seq=seq,
        sent_at=now,
        boot_id="boot",
        agent_version="test",
        addresses=Addresses(internal=spec.get("address", f"{m}.lan")),
        eligible=tuple(spec.get("eligible", ())),
        status=spec.get("status", "running"),
        sessions=dict(spec.get("sessions", {})),
        services=services,
        applied=Applied(
            generation=applied,
            fence=memory.fence if applied else 0,
            result="ok" if applied else "none",
        ),
        heartbeat_interval=float(spec.get("heartbeat", 0)),
    )


def observed_from(
    machines: dict[str, dict[str, Any]],
    memory: Memory,
    now: float,
    rejections: list[Any] = (),
    counters: dict[str, tuple[int, int, float | None]] | None = None,
) -> Observed:
    out = {}
    for m, spec in sorted(machines.items()):
        age = float(spec.get("age", 0))
        snap = snapshot_for(
            m, spec, memory, now - age, seq=int(now * 1000),
            counters=(counters or {}).get(m, (0, 0, None)),
        )  # fmt: skip
        out[MachineId(m)] = MachineObservation(snap, accepted_at=now - age)
    rej = tuple(Rejection(**r) for r in rejections)
    return Observed(machines=out, rejections=rej)


def spec_from(value: Any, revision: int) -> ClusterSpec:
    return replace(from_value(value, source="case"), revision=revision)


def subset(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Differences where `expected` is not contained in `actual` (dicts partially)."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: expected a mapping, got {actual!r}"]
        out = []
        for k, v in expected.items():
            if k not in actual:
                out.append(f"{path}.{k}: missing (have {sorted(actual)})")
            else:
                out.extend(subset(v, actual[k], f"{path}.{k}"))
        return out
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return [f"{path}: expected {expected!r}, got {actual!r}"]
        return [
            d
            for i, (e, a) in enumerate(zip(expected, actual, strict=True))
            for d in subset(e, a, f"{path}[{i}]")
        ]
    if isinstance(expected, float) or isinstance(actual, float):
        if actual is None or expected is None or abs(float(expected) - float(actual)) > 1e-9:
            return [f"{path}: expected {expected!r}, got {actual!r}"]
        return []
    if expected != actual:
        return [f"{path}: expected {expected!r}, got {actual!r}"]
    return []


def write_view(p: Plan) -> dict[str, dict[str, Any]]:
    out = {}
    for w in p.writes:
        body = codec.encode(w.desired, times="epoch")
        body["backends"] = body["peers"]["backends"]
        body["mirror"] = [b["machine"] for b in body["peers"]["mirror"]]
        body["weights"] = {b["machine"]: b["weight"] for b in body["peers"]["backends"]}
        body["peers"] = [b["machine"] for b in body["peers"]["backends"]]
        body["reason"] = w.reason
        out[w.machine] = body
    return out


def check_expect(p: Plan, expect: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    writes = write_view(p)
    if "writes" in expect:
        want = expect["writes"] or {}
        if sorted(want) != sorted(writes):
            problems.append(f"written machines: expected {sorted(want)}, got {sorted(writes)}")
        for m, fields in want.items():
            if m in writes:
                problems.extend(subset(fields, writes[m], f"writes.{m}"))
    for m, fields in (expect.get("writes_include") or {}).items():
        if m not in writes:
            problems.append(f"writes_include.{m}: not written (written: {sorted(writes)})")
        else:
            problems.extend(subset(fields, writes[m], f"writes.{m}"))
    events = [codec.encode(e, times="epoch") for e in p.events]
    for want_event in expect.get("events", []):
        if not any(not subset(want_event, e) for e in events):
            problems.append(
                f"event {want_event} not found in {[(e['kind'], e['machine'], e['service']) for e in events]}"
            )
    # events_in_order: these events, found in this order (others may come between)
    at = 0
    for want_event in expect.get("events_in_order", []):
        found = next((i for i in range(at, len(events)) if not subset(want_event, events[i])), None)
        if found is None:
            problems.append(
                f"event {want_event} not found after position {at} in "
                f"{[(e['kind'], e['service']) for e in events]}"
            )
            break
        at = found + 1
    for kind in expect.get("no_events", []):
        hits = [e for e in events if e["kind"] == kind]
        if hits:
            problems.append(f"unexpected {kind} events: {hits}")
    if "memory" in expect:
        problems.extend(subset(expect["memory"], codec.encode(p.memory, times="epoch"), "memory"))
    if "status" in expect:
        problems.extend(subset(expect["status"], codec.encode(p.status, times="epoch"), "status"))
    if "skips" in expect:
        skips = {s.machine: s.reason for s in p.skips}
        problems.extend(subset(expect["skips"], skips, "skips"))
    return problems


def invariants(spec: ClusterSpec, observed: Observed, p: Plan, now: float) -> list[str]:
    """Rules every plan obeys whatever the input. While the planner holds a service static
    (it is blind: docs/security.md#fail-static) its silent machines keep their last report,
    so a silent peer is allowed there, as long as its last report was healthy."""
    problems = []
    for name, svc in spec.services.items():
        active = [
            m
            for m, mm in p.memory.machines.items()
            if mm.service == name and mm.mode in ACTIVE_MODES
        ]
        if len(active) > svc.count:
            problems.append(f"{name}: {len(active)} active machines, count is {svc.count}")
    modes = {m: (mm.service, mm.mode) for m, mm in p.memory.machines.items()}
    for w in p.writes:
        for b in w.desired.peers.backends:
            target = w.desired.peers.service
            obs = observed.machines.get(MachineId(b.machine))
            if modes.get(b.machine) not in ((target, "active"), (target, "canary")):
                problems.append(f"{w.machine}: peer {b.machine} is not an active {target} machine")
            held = (target or "") in p.status.holds  # fail static: silent peers are kept
            if obs is None or (
                now - obs.accepted_at > spec.settings.heartbeat_timeout and not held
            ):
                problems.append(f"{w.machine}: peer {b.machine} is lost")
            elif (
                obs.snapshot.services.get(target or "") is None
                or obs.snapshot.services[target or ""].health != "healthy"
            ):
                problems.append(f"{w.machine}: peer {b.machine} is not healthy")
    return problems


def load_case(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


SERVING = ("active", "canary", "shadow")


def add_traffic(
    counters: dict[str, tuple[int, int, float | None]],
    traffic: dict[str, Any],
    machines: dict[str, dict[str, Any]],
    memory: Memory,
    dt: float,
) -> None:
    """Advance each serving machine's cumulative counters by its version's traffic profile.

    `traffic: {"<version>": {rps: 10, error_rate: 0.01, latency_ms: 20}}`; a machine serves
    the version it was last told (or its `version` override) in mode active/canary/shadow.
    """
    for m, spec in machines.items():
        mm = memory.machines.get(m)
        if mm is None or mm.mode not in SERVING or float(spec.get("age", 0)) > 0:
            continue
        profile = traffic.get(str(spec.get("version", mm.version)))
        if profile is None:
            continue
        req, err, _ = counters.get(m, (0, 0, None))
        n = int(profile.get("rps", 0) * dt)
        counters[m] = (req + n, err + round(n * profile.get("error_rate", 0.0)),
                       profile.get("latency_ms"))  # fmt: skip


def run_case(case: dict[str, Any]) -> list[str]:
    """Run every cycle of a case; return every problem found (empty = pass)."""
    memory = codec.decode(Memory, case["memory"], "memory") if "memory" in case else Memory()
    spec_value = case["spec"]
    revision = 1
    spec = spec_from(spec_value, revision)
    machines: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    fence = case.get("fence", 1)
    traffic = case.get("traffic", {})
    counters: dict[str, tuple[int, int, float | None]] = {}
    last_now: float | None = None
    for i, cycle in enumerate(case["cycles"]):
        if "spec" in cycle:
            revision += 1
            spec = spec_from(cycle["spec"], revision)
        fence = cycle.get("fence", fence)
        for m, value in (cycle.get("observed") or {}).items():
            if value is None:
                machines.pop(m, None)
            else:
                machines[m] = {**machines.get(m, {}), **value}
                if "age" not in value:
                    machines[m].pop("age", None)
        now = float(cycle["now"])
        traffic = cycle.get("traffic", traffic)
        if last_now is not None:
            add_traffic(counters, traffic, machines, memory, now - last_now)
        last_now = now
        observed = observed_from(machines, memory, now, cycle.get("rejections", []), counters)
        result = plan(spec, observed, memory, now, fence=fence)
        label = f"cycle {i} (now={now:g})"
        problems += [f"{label}: {x}" for x in check_expect(result, cycle.get("expect", {}))]
        problems += [f"{label}: invariant: {x}" for x in invariants(spec, observed, result, now)]
        again = plan(spec, observed, result.memory, now, fence=fence)
        if again.writes:
            problems.append(
                f"{label}: not idempotent: planning again writes {[w.machine for w in again.writes]}"
            )
        memory = result.memory
    return problems
