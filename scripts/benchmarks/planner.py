"""Planner time at 1,000 / 10,000 / 100,000 machines (targets at 100,000: steady under
0.5 s, first under 2 s).

    scripts/bench planner [--sizes 1000,10000,100000] [--repeat 3] [--baseline REV]

For each size: a telephony spec (db x3, router = 2% of the fleet up to 2,000 behind 4 load
balancers, media 40%, worker 35% with a generic pool), machines reporting what they were told. Measured, best of --repeat:
- first: the initial plan (everything assigned, every document written);
- steady: a cycle in which nothing changed (must write nothing);
- churn: a cycle where 1% of machines went silent (lost, replaced, peers recomputed).
Each figure is wall time, with the CPU time of the same run beside it.

`--baseline REV` runs the same benchmark on the tree of git revision REV (exported to a
temporary directory), alternating with this tree size by size (baseline first), and prints
both side by side: a baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# --baseline runs this file on another revision's tree: its code first on the path
CODE = Path(os.environ.get("BOSUN_BENCH_CODE") or ROOT)
sys.path.insert(0, str(CODE))

from controller.planner import MachineObservation, Memory, Observed, plan  # noqa: E402
from controller.spec.load import from_value  # noqa: E402
from controller.spec.model import ClusterSpec  # noqa: E402
from wire.documents import Addresses, Applied, ServiceState, Snapshot  # noqa: E402
from wire.layout import MachineId  # noqa: E402


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


def timed(fn: object, repeat: int) -> tuple[float, float, object]:
    """Best wall and best CPU time of `repeat` runs, and the last result."""
    if FREEZE[0]:
        gc.collect()
        gc.freeze()
    best, cpu, result = float("inf"), float("inf"), None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        result = fn()  # type: ignore[operator]
        best = min(best, time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    return best, cpu, result


def run(n: int, repeat: int) -> dict[str, float]:
    spec = spec_for(n)
    now = 1_000_000.0
    obs0 = observe(n, Memory(), now)
    t_first, c_first, first = timed(lambda: plan(spec, obs0, Memory(), now, fence=1), 1)
    memory = first.memory  # type: ignore[attr-defined]
    # let it converge (dependency gating, peers) before measuring the steady state
    for _ in range(3):
        now += 10
        memory = plan(spec, observe(n, memory, now), memory, now, fence=1).memory
    now += 10
    obs = observe(n, memory, now)
    t_steady, c_steady, steady = timed(lambda: plan(spec, obs, memory, now, fence=1), repeat)
    silent = frozenset(range(16, n, 100))
    obs_churn = observe(n, memory, now + 10, silent)
    t_churn, c_churn, churn = timed(
        lambda: plan(spec, obs_churn, memory, now + 10, fence=1), repeat
    )
    print(
        f"{n:>7} machines | first {t_first:6.3f} s (cpu {c_first:6.3f}, "
        f"{len(first.writes):>6} writes) | "  # type: ignore[attr-defined]
        f"steady {t_steady:6.3f} s (cpu {c_steady:6.3f}, "
        f"{len(steady.writes)} writes) | "  # type: ignore[attr-defined]
        f"1% lost {t_churn:6.3f} s (cpu {c_churn:6.3f}, "
        f"{len(churn.writes):>5} writes)",  # type: ignore[attr-defined]
        flush=True,
    )
    return {"n": n, "first": t_first, "first_cpu": c_first, "steady": t_steady,
            "steady_cpu": c_steady, "churn": t_churn, "churn_cpu": c_churn}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--gc-freeze", action="store_true",
        help="gc.freeze() the inputs before timing (what a long-running shell can do)",
    )  # fmt: skip
    parser.add_argument(
        "--baseline", metavar="REV", help="also run git revision REV's tree, alternating"
    )
    args = parser.parse_args()
    FREEZE[0] = args.gc_freeze
    if args.baseline:
        compare(args)
        return
    for n in (int(s) for s in args.sizes.split(",")):
        print("RESULT " + json.dumps(run(n, args.repeat)), flush=True)


def compare(args: argparse.Namespace) -> None:
    """This tree and REV's, each size in turn (baseline first), then side by side."""
    from _installed import export_revision  # this script's directory is on sys.path

    rows: list[tuple[str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory(prefix="bosun-bench-base-") as tmp:
        old = export_revision(CODE, args.baseline, Path(tmp) / "src")
        for n in args.sizes.split(","):
            for label, code in ((args.baseline, old), ("this tree", CODE)):
                cmd = [sys.executable, __file__, "--sizes", n, "--repeat", str(args.repeat)]
                if args.gc_freeze:
                    cmd.append("--gc-freeze")
                env = {**os.environ, "BOSUN_BENCH_CODE": str(code), "PYTHONPATH": str(code)}
                out = subprocess.run(cmd, env=env, text=True, capture_output=True, check=False)
                for line in out.stdout.splitlines():
                    if line.startswith("RESULT "):
                        rows.append((label, json.loads(line[7:])))
                    else:
                        print(f"{label:<10} {line}", flush=True)
                if out.returncode:
                    print(out.stderr, flush=True)
    print("\nside by side, wall s (CPU s):")
    for label, r in rows:
        print(f"  {int(r['n']):>7} machines  {label:<10} first {r['first']:6.3f} "
              f"({r['first_cpu']:6.3f})  steady {r['steady']:6.3f} ({r['steady_cpu']:6.3f})  "
              f"1% lost {r['churn']:6.3f} ({r['churn_cpu']:6.3f})")  # fmt: skip


if __name__ == "__main__":
    main()
