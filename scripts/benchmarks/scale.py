"""Autoscaling under a load spike per channel: a pure-planner simulation.

    scripts/bench scale [--machines 1000] [--present 400] [--minutes 60] [--interval 10]
                        [--boot 90] [--seed 1]

A simulated fleet of up to --machines machines, all eligible for the `media` pool that
three scaled services share: voice (sessions.voice, 50 per machine), sms (sessions.sms,
200 per machine) and video (sessions.video, 10 per machine). --present machines exist at
the start; the rest arrive --boot seconds after the planner's provision request.

Each cycle (--interval seconds): sessions end (exponential durations: voice 3 min, sms
20 s, video 10 min), new ones arrive at the channel's rate and go to the service's active
machines evenly, so that the concurrent sessions follow the channel's load (never to
draining ones; a machine takes at most 2x its target, the rest are rejected), the planner plans on the machines' snapshots, and the simulated agents do
what they are told at once. A machine told to leave its service while it still carries
sessions would cut them: counted as "cut before the timeout" (target: zero). Sessions
still up when a drain times out are counted apart.

Each channel spikes 6x (voice at 10 min, sms at 20 min, video at 30 min: --ramp (2 min),
15 min plateau, 5 min ramp down). Reported per channel: time to scale up (spike start
until the service has the machines the peak needs, in cycles and seconds, and the lag
behind the load), session attempts rejected (a machine full at 2x its target; the
deficit is offered again every cycle, so a step spike counts it several times), sessions
cut; and machine-minutes of serving machines against the ideal
(ceil(load / target) each cycle).
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from controller.planner import MachineObservation, Memory, Observed, plan
from controller.spec.load import from_value
from controller.spec.model import ClusterSpec
from wire.documents import Addresses, Applied, ServiceState, Snapshot
from wire.layout import MachineId


@dataclass(frozen=True)
class Channel:
    service: str
    base: float  # concurrent sessions before the spike
    peak: float
    target: int  # per machine
    duration: float  # mean session seconds
    spike_at: float  # seconds
    min: int
    max: int
    standby: int
    drain_timeout: str


CHANNELS = (
    Channel("voice", 2000, 12000, 50, 180, 600, 40, 300, 10, "10m"),
    Channel("sms", 2000, 12000, 200, 20, 1200, 10, 100, 5, "2m"),
    Channel("video", 200, 1200, 10, 600, 1800, 20, 200, 10, "15m"),
)
PLATEAU, DOWN = 900.0, 300.0
RAMP = 120.0  # --ramp
WARMUP = 60.0


def load_at(c: Channel, t: float) -> float:
    """Concurrent sessions the channel offers at time t."""
    ramp = max(RAMP, 1e-9)
    s = t - c.spike_at
    extra = c.peak - c.base
    if s < 0 or s > ramp + PLATEAU + DOWN:
        return c.base
    if s < ramp:
        return c.base + extra * s / ramp
    if s < ramp + PLATEAU:
        return c.peak
    return c.peak - extra * (s - ramp - PLATEAU) / DOWN


def spec_for(interval: float) -> ClusterSpec:
    services = {
        c.service: {
            "version": "1",
            "pools": ["media"],
            "max_unavailable": "10%",
            "sessions": {"drain_timeout": c.drain_timeout, "channels": [c.service]},
            "scale": {
                "min": c.min, "max": c.max, "metric": f"sessions.{c.service}",
                "target_per_machine": c.target, "cooldown": "5m", "standby": c.standby,
                "boot_timeout": "5m",
            },
        }
        for c in CHANNELS
    }  # fmt: skip
    return from_value(
        {
            "settings": {"controller_interval": interval, "heartbeat_timeout": 6 * interval},
            "provisioner": {"type": "command", "command": ["/bin/true"]},
            "services": services,
        },
        revision=1,
    )


@dataclass
class Machine:
    name: str
    sessions: dict[str, list[float]] = field(default_factory=dict)  # channel -> end times
    service: str | None = None
    mode: str = "standby"
    version: str | None = None
    generation: int = 0
    seq: int = 0

    def count(self) -> int:
        return sum(len(v) for v in self.sessions.values())

    def snapshot(self, now: float) -> Snapshot:
        self.seq += 1
        services = {}
        if self.service is not None and self.mode in ("active", "canary", "draining"):
            services[self.service] = ServiceState(
                version=self.version, state="running", health="healthy"
            )
        return Snapshot(
            machine=self.name,
            seq=self.seq,
            sent_at=now,
            boot_id="sim",
            agent_version="sim",
            addresses=Addresses(internal=f"10.{self.seq % 250}.0.1"),
            eligible=("media",),
            sessions={k: len(v) for k, v in self.sessions.items() if v},
            services=services,
            applied=Applied(generation=self.generation, result="ok"),
        )


@dataclass
class Totals:
    rejected: int = 0
    cut_early: int = 0  # sessions cut by a change before any drain timeout (must be 0)
    cut_timeout: int = 0  # sessions still up when a drain timed out
    scaled_at: float | None = None
    needed_at: float | None = None  # when the offered load first needed the peak's machines
    serving_minutes: float = 0.0
    ideal_minutes: float = 0.0
    peak_machines: int = 0


def run(args: argparse.Namespace) -> int:
    global RAMP
    RAMP = args.ramp
    rng = random.Random(args.seed)
    spec = spec_for(args.interval)
    machines = {f"m{i:05d}": Machine(f"m{i:05d}") for i in range(args.present)}
    pending: list[tuple[float, int]] = []  # (arrival time, count)
    next_id = args.present
    memory = Memory()
    totals = {c.service: Totals() for c in CHANNELS}
    plan_times: list[float] = []
    requests = provisioned = 0
    now = 1_000_000.0
    start = now
    cycles = int(args.minutes * 60 / args.interval)
    for _ in range(cycles):
        now += args.interval
        t = now - start
        # machines whose boot finished join (eligible, unassigned: the planner makes them standby)
        for at, count in [p for p in pending if p[0] <= now]:
            pending.remove((at, count))
            for _k in range(count):
                if next_id < args.machines:
                    m = f"m{next_id:05d}"
                    machines[m] = Machine(m)
                    next_id += 1
                    provisioned += 1
        # sessions end; new ones arrive at the service's active machines
        for c in CHANNELS:
            for mach in machines.values():
                ends = mach.sessions.get(c.service)
                if ends:
                    mach.sessions[c.service] = [e for e in ends if e > now]
            current = sum(len(mach.sessions.get(c.service, ())) for mach in machines.values())
            arrivals = max(0, round(load_at(c, t)) - current)  # concurrency follows the load
            takers = [
                mach
                for mach in machines.values()
                if mach.service == c.service and mach.mode == "active"
            ]
            cap = 2 * c.target
            rng.shuffle(takers)
            takers.sort(key=lambda mm: len(mm.sessions.get(c.service, [])))
            i = 0
            while arrivals and takers:
                mach = takers[i % len(takers)]
                lst = mach.sessions.setdefault(c.service, [])
                if len(lst) >= cap:
                    takers.remove(mach)
                    continue
                lst.append(now + rng.expovariate(1 / c.duration))
                arrivals -= 1
                i += 1
            if t > WARMUP:  # the first cycles place the base load: not counted
                totals[c.service].rejected += arrivals
        observed = Observed(
            machines={
                MachineId(m): MachineObservation(mach.snapshot(now), now)
                for m, mach in machines.items()
            }
        )
        t0 = time.perf_counter()
        p = plan(spec, observed, memory, now, fence=1)
        plan_times.append(time.perf_counter() - t0)
        memory = p.memory
        for ev in p.events:
            if ev.kind == "machine.drain_timeout" and ev.service in totals:
                totals[ev.service].cut_timeout += int(ev.data.get("sessions_cut", 0))
        timed_out = {e.machine for e in p.events if e.kind == "machine.drain_timeout"}
        # the simulated agents do what they are told
        for w in p.writes:
            mach = machines[w.machine]
            d = w.desired
            leaving = d.service != mach.service or d.mode not in ("active", "canary", "draining")
            if leaving and mach.count():
                if w.machine not in timed_out:
                    totals[mach.service or ""].cut_early += mach.count()
                mach.sessions = {}
            mach.service, mach.mode, mach.version = d.service, d.mode, d.version
            mach.generation = d.generation
        for req in p.provisions:
            requests += 1
            if req.count > 0:
                pending.append((now + args.boot, req.count))
        # accounting
        for c in CHANNELS:
            tot = totals[c.service]
            serving = sum(
                1
                for mach in machines.values()
                if mach.service == c.service and mach.mode in ("active", "draining")
            )
            active = sum(
                1
                for mach in machines.values()
                if mach.service == c.service and mach.mode == "active"
            )
            need = min(max(math.ceil(load_at(c, t) / c.target), c.min), c.max)
            if args.trace and c.service == args.trace and int(t) % 60 == 0:
                print(
                    f"t={t:5.0f} {c.service} active={active} serving={serving} need={need} "
                    f"sessions={sum(len(m.sessions.get(c.service, ())) for m in machines.values())}"
                )
            tot.serving_minutes += serving * args.interval / 60
            tot.ideal_minutes += need * args.interval / 60
            tot.peak_machines = max(tot.peak_machines, active)
            peak_need = min(math.ceil(c.peak / c.target), c.max)
            if tot.needed_at is None and t >= c.spike_at and need >= peak_need:
                tot.needed_at = t - c.spike_at
            if tot.scaled_at is None and t >= c.spike_at and active >= peak_need:
                tot.scaled_at = t - c.spike_at
    _report(args, totals, plan_times, requests, provisioned, len(machines))
    return 0 if all(t.cut_early == 0 for t in totals.values()) else 1


def _report(
    args: argparse.Namespace,
    totals: dict[str, Totals],
    plan_times: list[float],
    requests: int,
    provisioned: int,
    fleet: int,
) -> None:
    print(
        f"scale: {args.minutes:g} min at {args.interval:g} s per cycle; fleet {args.present} "
        f"machines at start, up to {args.machines} (boot {args.boot:g} s)"
    )
    print(
        f"{'channel':8} {'peak':>6} {'machines':>9} {'scale-up':>16} {'lag':>5} {'rejected':>9} "
        f"{'cut early':>9} {'cut@timeout':>11} {'machine-min':>11} {'ideal':>8} {'ratio':>6}"
    )
    for c in CHANNELS:
        t = totals[c.service]
        up = (
            f"{t.scaled_at / args.interval:.0f} cyc / {t.scaled_at:.0f} s"
            if t.scaled_at is not None
            else "never"
        )
        ratio = t.serving_minutes / t.ideal_minutes if t.ideal_minutes else 0.0
        lag = (
            f"{(t.scaled_at - t.needed_at) / args.interval:.0f}"
            if t.scaled_at is not None and t.needed_at is not None
            else "-"
        )
        print(
            f"{c.service:8} {c.peak:>6.0f} {t.peak_machines:>9} {up:>16} {lag:>5} {t.rejected:>9} "
            f"{t.cut_early:>9} {t.cut_timeout:>11} {t.serving_minutes:>11.0f} "
            f"{t.ideal_minutes:>8.0f} {ratio:>6.2f}"
        )
    pt = sorted(plan_times)
    print(
        f"provision requests: {requests}, machines provisioned: {provisioned}, fleet at end: "
        f"{fleet}; plan time per cycle: median {pt[len(pt) // 2] * 1000:.1f} ms, "
        f"max {pt[-1] * 1000:.1f} ms"
    )
    print(
        "(scale-up: from the spike's start until the service has the machines its peak needs; "
        "lag: cycles after the load needed them)"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--machines", type=int, default=1000)
    ap.add_argument("--present", type=int, default=400)
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--interval", type=float, default=10)
    ap.add_argument("--boot", type=float, default=90)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--ramp", type=float, default=120, help="seconds from base to peak load")
    ap.add_argument("--trace", default="", help="print a channel's machines every minute")
    return run(ap.parse_args())


if __name__ == "__main__":
    sys.exit(main())
