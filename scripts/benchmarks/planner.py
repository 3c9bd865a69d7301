"""Planner time at 1,000 / 10,000 / 100,000 machines (target: under 1 s at 100,000).

    scripts/bench planner [--sizes 1000,10000,100000] [--repeat 3]

For each size: a telephony spec (db x3, router = 2% of the fleet up to 2,000 behind 4 load
balancers, media 40%, worker 35% with a generic pool), machines reporting what they were told. Measured, best of --repeat:
- first: the initial plan (everything assigned, every document written);
- steady: a cycle in which nothing changed (must write nothing);
- churn: a cycle where 1% of machines went silent (lost, replaced, peers recomputed).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from controller.planner import MachineObservation, Memory, Observed, plan
from controller.spec.load import from_value
from controller.spec.model import ClusterSpec
from wire.documents import Addresses, Applied, ServiceState, Snapshot
from wire.layout import MachineId


def spec_for(n: int) -> ClusterSpec:
    return from_value(
        {
            "services": {
                "db": {"version": "14", "count": 3, "port": 5432},
                "media": {"version": "3", "count": int(n * 0.4), "port": 7000},
                "router": {"version": "2", "count": max(2, min(2000, n // 50)), "port": 5060,
                           "depends_on": ["db"], "config": {"db": {"$instances": "db"}}},
                "lb": {"kind": "loadbalancer", "balances": "router", "version": "1", "count": 4},
                "worker": {"version": "5", "count": int(n * 0.35), "pools": ["general"]},
            }
        }
    )  # fmt: skip


def eligible(i: int) -> tuple[str, ...]:
    if i < 8:
        return ("lb",)
    if i < 16:
        return ("db",)
    return (("router", "media"), ("media",), ("worker",), ("general",))[i % 4]


def observe(n: int, memory: Memory, now: float, silent: frozenset[int] = frozenset()) -> Observed:
    out = {}
    for i in range(n):
        m = f"m{i:06d}"
        mm = memory.machines.get(m)
        services = {}
        if mm is not None and mm.service is not None:
            services[mm.service] = ServiceState(
                version=mm.version, state="running", health="healthy"
            )
        snap = Snapshot(
            machine=m, seq=1, sent_at=now, boot_id="b", agent_version="bench",
            addresses=Addresses(internal=f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}"),
            eligible=eligible(i), services=services,
            applied=Applied(generation=mm.generation if mm else 0),
        )  # fmt: skip
        accepted = now - 1000 if i in silent else now
        out[MachineId(m)] = MachineObservation(snap, accepted)
    return Observed(machines=out)


FREEZE = [False]


def timed(fn: object, repeat: int) -> tuple[float, object]:
    if FREEZE[0]:
        gc.collect()
        gc.freeze()
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()  # type: ignore[operator]
        best = min(best, time.perf_counter() - t0)
    return best, result


def run(n: int, repeat: int) -> None:
    spec = spec_for(n)
    now = 1_000_000.0
    t_first, first = timed(lambda: plan(spec, observe(n, Memory(), now), Memory(), now, fence=1), 1)
    memory = first.memory  # type: ignore[attr-defined]
    # let it converge (dependency gating, peers) before measuring the steady state
    for _ in range(3):
        now += 10
        memory = plan(spec, observe(n, memory, now), memory, now, fence=1).memory
    now += 10
    obs = observe(n, memory, now)
    t_steady, steady = timed(lambda: plan(spec, obs, memory, now, fence=1), repeat)
    silent = frozenset(range(16, n, 100))
    obs_churn = observe(n, memory, now + 10, silent)
    t_churn, churn = timed(lambda: plan(spec, obs_churn, memory, now + 10, fence=1), repeat)
    print(
        f"{n:>7} machines | first {t_first:6.3f} s ({len(first.writes):>6} writes) | "  # type: ignore[attr-defined]
        f"steady {t_steady:6.3f} s ({len(steady.writes)} writes) | "  # type: ignore[attr-defined]
        f"1% lost {t_churn:6.3f} s ({len(churn.writes):>5} writes)"  # type: ignore[attr-defined]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--gc-freeze", action="store_true",
        help="gc.freeze() the inputs before timing (what a long-running shell can do)",
    )  # fmt: skip
    args = parser.parse_args()
    FREEZE[0] = args.gc_freeze
    for n in (int(s) for s in args.sizes.split(",")):
        run(n, args.repeat)


if __name__ == "__main__":
    main()
