"""scripts/bench controller: one controller cycle at 1,000 and 10,000 machines.

For each size: N machines post signed snapshots to a fresh store (SeaweedFS by default);
a cold cycle takes them in and writes every desired document; then

* `--quiet` cycles with no change at all (default 7): each writes nothing but the lease;
  their median wall and CPU time, the median of each phase (lease, load, intake, drift,
  plan, publish, records, save) and the planner's share (`plan`) printed apart, how often
  status/cluster.json was built;
* 1% of the snapshots change (new seq, new load, health flips): one cycle, timed, with the
  S3 requests it made by kind (counted by the client's request hook: `List` is one per
  listing call, and a listing in key ranges makes one call per range);
* a fleet-wide spec change and the cycles after it.

`--heartbeats F` adds, after the 1% cycle, `--steady K` cycles (default 5) each preceded by
a heartbeat from a share F of the machines (new seq, sent_at and load; nothing else: what
an agent sends when its heartbeat is due; 0.033 is a 5-minute heartbeat with a 10 s
interval): their median wall, CPU, phases, requests and bytes written. `--profile-steady`
cProfiles the last of them (top 30 by own time).

Every cycle's peak RSS by phase is sampled (every 20 ms) and printed after the cold cycle
and the steady ones, with the process's RSS before the cycle: what the posting agents and
the benchmark hold is in that "before" figure.

`--baseline REV` runs the same benchmark on the tree of git revision REV (exported to a
temporary directory), alternating with this tree size by size, and prints the no-change
medians of both side by side: a baseline measured in the same run.

`--cold-only` stops after the cold cycle, run in a process of its own once the reports are
posted, and prints that process's peak RSS: the controller's alone (a cold cycle at 100,000
machines is minutes; the peak of a cycle is the cold one's).

Usage: scripts/bench controller [--sizes 1000,10000] [--quiet 7] [--changed 0.01]
                                [--heartbeats 0.033 --steady 5 --profile-steady]
                                [--backend seaweedfs|directory] [--baseline REV] [--cold-only]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
# --baseline runs this file on another revision's tree: its code first on the path
CODE = Path(os.environ.get("BOSUN_BENCH_CODE") or ROOT)
sys.path.insert(0, str(CODE))

from controller.shell.cycle import Controller, CycleReport  # noqa: E402
from controller.shell.lease import LeaseSettings  # noqa: E402
from controller.spec.load import load_yaml  # noqa: E402
from controller.spec.revisions import apply  # noqa: E402
from devkit.local_s3 import ACCESS_KEY, SECRET_KEY, start_seaweedfs  # noqa: E402
from wire.documents import Addresses, Applied, ServiceState, Snapshot, seal  # noqa: E402
from wire.layout import report_key  # noqa: E402
from wire.retry import RetryPolicy  # noqa: E402
from wire.signing import derive_machine_key, format_kid  # noqa: E402
from wire.store import DirectoryStore, Store, StoredObject  # noqa: E402
from wire.store.s3 import S3Store  # noqa: E402

MASTER = bytes(range(32))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import fleet  # noqa: E402


def spec_yaml(n: int, version: str = "1.0") -> str:
    """The fleet benchmark's spec: web split in services of at most 1,000 machines, each
    behind its own load balancer (one balancer for 6,000 backends is over the document cap)."""
    return fleet.spec_yaml(n, version, hb=200, interval=10)


def snapshot(
    machine: str, seq: int, now: float, *, load: float, health: str, place: int | None = None
) -> bytes:
    """`place`: what the address is made of (the seq unless given)."""
    at = seq if place is None else place
    snap = Snapshot(
        machine=machine, seq=seq, sent_at=now, boot_id="boot", agent_version="bench",
        addresses=Addresses(internal=f"10.{zlib.crc32(machine.encode()) % 250}.{at % 250}.1"),
        eligible=fleet.ELIGIBLE, load={"cpu": load},
        services={"web": ServiceState(version="1.0", state="running", health=health, port=8080)},
        applied=Applied(),
    )  # fmt: skip
    key = derive_machine_key(MASTER, machine, 0)
    return seal(snap, key=key, kid=format_kid(machine, 0), object_key=report_key(machine))


class Counting:
    """Counts the controller client's S3 requests by operation (and PUT target folder)."""

    def __init__(self, store: Store) -> None:
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()
        if isinstance(store, S3Store):
            store.on_request = self.answer

    def answer(self, operation: str, key: str) -> None:
        # LIST: one per listing (ListObjectsV2 pages: one per 1,000 keys listed)
        name = {"GET": "GetObject", "PUT": "PutObject", "LIST": "List"}
        self.count(name.get(operation, operation), key)

    def count(self, name: str, key: str) -> None:
        if name == "PutObject":
            target = next(
                (
                    p
                    for p in (
                        "control/lease.json",
                        "control/memory.json",
                        "control/intake.json",
                        "desired/",
                        "history/",
                        "status/",
                        "events/",
                    )
                    if p in key
                ),
                "other",
            )
            name = f"PutObject {target}"
        with self.lock:
            self.counts[name] += 1

    def take(self) -> dict[str, int]:
        with self.lock:
            out = dict(sorted(self.counts.items()))
            self.counts.clear()
        return out


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class RssSampler:
    """Samples this process's RSS every 20 ms; the peak of each phase of a cycle."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self.stop.wait(0.02):
            with self.lock:
                self.samples.append((time.perf_counter(), rss_mb()))

    def since(self, t0: float) -> list[tuple[float, float]]:
        with self.lock:
            out = [x for x in self.samples if x[0] >= t0]
            self.samples.clear()
        return out

    def phase_peaks(self, t0: float, timings: dict[str, float]) -> str:
        samples = self.since(t0)
        parts, start = [], t0
        for phase, took in timings.items():
            end = start + took
            inside = [r for t, r in samples if start <= t < end + 0.02]
            if inside:
                parts.append(f"{phase} {max(inside):.0f}")
            start = end
        peak = max((r for _, r in samples), default=0.0)
        return f"peak RSS by phase (MB): {', '.join(parts)}; cycle peak {peak:.0f}"


def open_stores(backend: str, server: Any, tmp: Path, n: int) -> tuple[Store, Store]:
    if backend == "directory":
        root = tmp / f"bucket-{n}"
        return DirectoryStore(root), DirectoryStore(root)
    prefix = f"bench-{n}-{int(time.time())}"

    agents = bench_s3(server.endpoint, prefix)
    agents.create_bucket()
    return bench_s3(server.endpoint, prefix), agents


def bench_s3(endpoint: str, prefix: str | None) -> S3Store:
    """The benchmark's bucket on SeaweedFS, opened as `bosun controller run` opens a store."""
    return S3Store(
        "bosun-bench",
        prefix=prefix,
        endpoint=endpoint,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        retry=RetryPolicy(attempts=3, total_seconds=20, wait_initial=0.05),
    )


def run_size(
    n: int,
    changed: float,
    backend: str,
    server: Any,
    tmp: Path,
    profile: bool = False,
    quiet_cycles: int = 7,
    cold_only: bool = False,
    heartbeats: float = 0.0,
    steady: int = 5,
    profile_steady: bool = False,
    spec_change: bool = True,
    spacing: float = 0.0,
) -> None:
    ctl_store, agent_store = open_stores(backend, server, tmp, n)
    apply(agent_store, load_yaml(spec_yaml(n)), now=time.time())
    machines = [f"m-{i:06d}" for i in range(n)]
    seqs = dict.fromkeys(machines, 1)
    places = dict(seqs)
    healths = dict.fromkeys(machines, "healthy")
    now = time.time()

    def post(m: str, load: float = 0.1, health: str = "healthy", beat: bool = False) -> None:
        if not beat:  # a heartbeat keeps the address and health of the last full report
            places[m], healths[m] = seqs[m], health
        body = snapshot(m, seqs[m], time.time(), load=load, health=healths[m], place=places[m])
        agent_store.put(report_key(m), body)

    t = time.perf_counter()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(post, machines))
    print(f"\n== {n} machines ({backend}): {n} snapshots posted in {time.perf_counter() - t:.1f}s")
    counter = Counting(ctl_store)
    ctl = Controller(ctl_store, MASTER, holder="bench", lease=LeaseSettings(300, 200))

    try:
        from controller.shell.heap import Heap

        heap: Any = Heap()
    except ImportError:  # an older tree (--baseline)
        heap = None

    def between() -> None:
        if heap is not None:
            heap.after_cycle()  # as `bosun controller run` does between cycles

    sampler = RssSampler()

    def cycle(label: str, rss: bool = False) -> CycleReport:
        before = rss_mb()
        t0, c0 = time.perf_counter(), time.process_time()
        report = ctl.cycle()
        took, cpu = time.perf_counter() - t0, time.process_time() - c0
        peaks = sampler.phase_peaks(t0, report.timings)
        between()
        requests = counter.take()
        total = sum(requests.values())
        desired = sum(k.startswith("desired/") for k in report.written)
        rate = f"  {desired / took:6.0f} desired PUT/s" if desired else ""
        print(f"{label:<28} {took:7.2f}s  cpu {cpu:6.2f}s  {total:6d} requests{rate}  {requests}")
        print(f"{'':<28} phases {report.timings}")
        if rss:
            print(f"{'':<28} RSS before {before:.0f} MB; {peaks}; after {rss_mb():.0f} MB")
        return report

    if cold_only:  # in a process of its own: its RSS is the controller's alone
        where = str(tmp / f"bucket-{n}") if backend == "directory" else server.endpoint
        prefix = getattr(ctl_store, "prefix", "")
        cmd = [sys.executable, __file__, "--cold-child", backend, where, prefix or "-"]
        print(subprocess.run(cmd, text=True, capture_output=True, check=False).stdout, end="")
        return
    cycle("cold cycle (all new)", rss=True)
    cycle("settle")
    walls, cpus, phases = [], [], []
    built = getattr(getattr(ctl, "status", None), "built", None)
    for _ in range(quiet_cycles):
        t0, c0 = time.perf_counter(), time.process_time()
        quiet = ctl.cycle()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        between()
        phases.append(quiet.timings)
        counter.take()
        unexpected(ctl_store, quiet)
    median = {k: round(statistics.median(p.get(k, 0.0) for p in phases), 4) for k in phases[0]}
    builds = getattr(getattr(ctl, "status", None), "built", None)
    result: dict[str, Any] = {
        "n": n,
        "wall": round(statistics.median(walls), 4),
        "cpu": round(statistics.median(cpus), 4),
        "plan": median.get("plan", 0.0),
        "phases": median,
        "status_built": None if built is None or builds is None else builds - built,
        "quiet": quiet_cycles,
    }
    print(f"{'no change (median of ' + str(quiet_cycles) + ')':<28} {result['wall']:7.3f}s  cpu "
          f"{result['cpu']:6.3f}s  planner {result['plan']:.3f}s  without the planner "
          f"{result['wall'] - result['plan']:.3f}s  status built {result['status_built']} times")  # fmt: skip
    print(f"{'':<28} phases (medians) {median}")
    print("RESULT " + json.dumps(result), flush=True)
    rng = random.Random(n)
    chosen = rng.sample(machines, max(1, int(n * changed)))
    for m in chosen:
        seqs[m] += 1
    with ThreadPoolExecutor(16) as pool:
        list(
            pool.map(
                lambda m: post(m, load=rng.random(), health=rng.choice(["healthy", "unhealthy"])),
                chosen,
            )
        )
    report = cycle(f"{len(chosen)} snapshots changed")
    print(
        f"{'':<28} accepted {report.accepted}, fetched {report.fetched}, "
        f"desired written {sum(k.startswith('desired/') for k in report.written)}"
    )
    quiet = cycle("no change again")
    unexpected(ctl_store, quiet)
    if heartbeats:
        steady_cycles(
            ctl, cycle, post, seqs, machines, heartbeats, steady, profile_steady, n, spacing
        )
    if not spec_change:
        return
    # a fleet-wide change: every web machine gets a new version (60% of the documents)
    apply(agent_store, load_yaml(spec_yaml(n, "1.1")), now=time.time())
    profiler = cProfile.Profile() if profile else None
    if profiler is not None:
        profiler.enable()
    report = cycle("spec change (web 1.1)")
    if profiler is not None:
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    written = [k for k in report.written if k.startswith("desired/")]
    print(f"{'':<28} desired written {len(written)}")
    if written:
        ceiling(ctl_store, written, report)
    for i in range(3):  # the rollout hands the change out over the next cycles
        report = cycle(f"spec change, cycle +{i + 1}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{'':<28} peak RSS of this process (controller and the posting agents) {peak:.0f} MB")
    del now


def unexpected(store: Store, report: CycleReport) -> None:
    """A no-change cycle writes nothing but the lease: say what else it wrote (the events'
    first lines), and go on."""
    if not report.written:
        return
    print(f"{'':<28} UNEXPECTED: a no-change cycle wrote {report.written[:5]}")
    for key in report.written[:3]:
        if key.startswith("events/"):
            got = store.get(key, max_bytes=2**30)
            if isinstance(got, StoredObject):
                for line in got.body.splitlines()[:3]:
                    print(f"{'':<28}   {line[:300]!r}")


def steady_cycles(
    ctl: Controller,
    cycle: Any,
    post: Any,
    seqs: dict[str, int],
    machines: list[str],
    share: float,
    count: int,
    profile: bool,
    n: int,
    spacing: float = 0.0,
) -> None:
    """`count` cycles, each after a heartbeat from `share` of the machines (liveness only),
    each begun `spacing` seconds after the one before (or at once, if it took longer)."""
    rng = random.Random(n + 1)
    walls, cpus, phases, sizes = [], [], [], []
    began = time.perf_counter() - spacing
    for i in range(count):
        time.sleep(max(0.0, began + spacing - time.perf_counter()))  # the daemon's cadence
        began = time.perf_counter()
        chosen = rng.sample(machines, max(1, int(n * share)))
        for m in chosen:
            seqs[m] += 1
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda m: post(m, load=rng.random(), beat=True), chosen))
        last = i == count - 1
        profiler = cProfile.Profile() if profile and last else None
        if profiler is not None:
            profiler.enable()
        c0, t0 = time.process_time(), time.perf_counter()
        report = cycle(f"heartbeats ({len(chosen)})", rss=True)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        if profiler is not None:
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
        phases.append(report.timings)
        sizes.append(sum(len(ctl.store.get(k, max_bytes=2**30).body) for k in report.written  # type: ignore[union-attr]
                         if k.startswith(("control/intake", "control/memory", "status/"))))  # fmt: skip
        print(f"{'':<28} written {len(report.written)} objects; control and status bytes "
              f"(status deferred {getattr(ctl.status, 'deferred', '-')} times so far) "
              f"{sizes[-1] / 1e6:.1f} MB; accepted {report.accepted}")  # fmt: skip
    median = {k: round(statistics.median(p.get(k, 0.0) for p in phases), 4) for k in phases[0]}
    result = {
        "n": n,
        "heartbeats": share,
        "wall": round(statistics.median(walls), 4),
        "cpu": round(statistics.median(cpus), 4),
        "phases": median,
        "mb_written": round(statistics.median(sizes) / 1e6, 2),
        "each": [  # every cycle: CPU, and the MB of control/intake.json and status written
            (round(c, 3), round(z / 1e6, 1)) for c, z in zip(cpus, sizes, strict=True)
        ],
        "mean_cpu": round(statistics.mean(cpus), 4),
        "spacing": spacing,
    }
    print(f"{'heartbeat cycles (median of ' + str(count) + ')':<28} {result['wall']:7.3f}s  "
          f"cpu {result['cpu']:6.3f}s (mean {result['mean_cpu']:.3f}s)  control+status "
          f"{result['mb_written']} MB written (median)")  # fmt: skip
    print(f"{'':<28} phases (medians) {median}")
    print("STEADY " + json.dumps(result), flush=True)


def cold_child(backend: str, where: str, prefix: str) -> None:
    """`--cold-only`'s cold cycle, in this process alone (started after the reports were
    posted): its peak RSS is the controller's, imports included."""
    if backend == "directory":
        store: Store = DirectoryStore(Path(where))
    else:
        store = bench_s3(where, None if prefix == "-" else prefix)
    ctl = Controller(store, MASTER, holder="bench", lease=LeaseSettings(300, 200))
    sampler = RssSampler()
    before = rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    report = ctl.cycle()
    took, cpu = time.perf_counter() - t0, time.process_time() - c0
    peaks = sampler.phase_peaks(t0, report.timings)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{'cold cycle (a process alone)':<28} {took:7.2f}s  cpu {cpu:6.2f}s  "
          f"accepted {report.accepted}, {len(report.written)} objects written")  # fmt: skip
    print(f"{'':<28} phases {report.timings}")
    print(f"{'':<28} RSS before {before:.0f} MB (imports); {peaks}")
    print(f"{'':<28} peak RSS of the controller process {peak:.0f} MB")
    print("COLD " + json.dumps({"peak_mb": round(peak), "wall": round(took, 1),
                                "cpu": round(cpu, 1)}), flush=True)  # fmt: skip


def ceiling(store: Store, written: list[str], report: CycleReport) -> None:
    """The store's own PUT rate for the same documents: as many conditional PUTs of the same
    bodies (If-None-Match: *, to fresh keys) with as many writers as publish used, and
    nothing else (no planning, no signing). Publish's rate is printed against it."""
    from controller.shell.publish import PUBLISH_THREADS, writers

    bodies = {}
    for k in written[:50]:
        got = store.get(k)
        assert isinstance(got, StoredObject)
        bodies[k] = got.body
    sample = list(bodies.values())
    stamp = int(time.time() * 1000)
    keys = [f"ceiling-{stamp}/{i:06d}.json" for i in range(len(written))]
    started = time.perf_counter()
    with ThreadPoolExecutor(writers(PUBLISH_THREADS, len(keys))) as pool:
        list(pool.map(lambda ik: store.put(ik[1], sample[ik[0] % len(sample)], if_none_match="*"),
                      enumerate(keys)))  # fmt: skip
    alone = len(keys) / (time.perf_counter() - started)
    publish = len(written) / max(report.timings.get("publish", 0.0), 1e-9)
    print(f"{'':<28} publish {publish:6.0f} desired PUT/s; the store alone {alone:6.0f} PUT/s "
          f"(same bodies, count and writers): {publish / alone:.0%} of the store's rate")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--changed", type=float, default=0.01)
    parser.add_argument("--quiet", type=int, default=7, help="no-change cycles timed (median)")
    parser.add_argument("--backend", choices=["seaweedfs", "directory"], default="seaweedfs")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the spec-change cycle (top 25 by own time)"
    )
    parser.add_argument(
        "--baseline", metavar="REV", help="also run git revision REV's tree, alternating"
    )
    parser.add_argument(
        "--cold-only",
        action="store_true",
        help="stop after the cold cycle and print the peak RSS (what the cold cycle costs, "
        "at sizes where the rest takes too long)",
    )
    parser.add_argument(
        "--heartbeats",
        type=float,
        default=0.0,
        help="share of the machines heartbeating before each steady cycle (0.033: 5 min / 10 s)",
    )
    parser.add_argument("--steady", type=int, default=5, help="heartbeat cycles timed (median)")
    parser.add_argument(
        "--profile-steady", action="store_true", help="cProfile the last heartbeat cycle"
    )
    parser.add_argument(
        "--spacing",
        type=float,
        default=10.0,
        help="seconds from one heartbeat cycle's start to the next's (the spec's interval)",
    )
    parser.add_argument(
        "--no-spec-change", action="store_true", help="stop before the fleet-wide spec change"
    )
    parser.add_argument("--cold-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cold_child:
        cold_child(*args.cold_child)
        return
    if args.baseline:
        compare(args)
        return
    server = start_seaweedfs() if args.backend == "seaweedfs" else None
    try:
        with tempfile.TemporaryDirectory(prefix="bosun-bench-") as tmp:
            for n in (int(s) for s in args.sizes.split(",")):
                run_size(
                    n, args.changed, args.backend, server, Path(tmp), args.profile, args.quiet,
                    args.cold_only, args.heartbeats, args.steady, args.profile_steady,
                    not args.no_spec_change, args.spacing,
                )  # fmt: skip
    finally:
        if server is not None:
            server.stop()
    if not args.cold_only:
        print("\nno-change cycles wrote nothing but the lease (PutObject control/lease.json).")


def compare(args: argparse.Namespace) -> None:
    """This tree and REV's, each size in turn (baseline first), then the medians side by side."""
    from _installed import export_revision  # this script's directory is on sys.path

    rows: list[tuple[str, dict[str, Any]]] = []
    steady: list[tuple[str, dict[str, Any]]] = []
    cold: list[tuple[str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="bosun-bench-base-") as tmp:
        old = export_revision(CODE, args.baseline, Path(tmp) / "src")
        for n in args.sizes.split(","):
            for label, code in ((args.baseline, old), ("this tree", CODE)):
                print(f"\n######## {label}: {n} machines", flush=True)
                cmd = [sys.executable, __file__, "--sizes", n, "--quiet", str(args.quiet),
                       "--changed", str(args.changed), "--backend", args.backend,
                       *(["--cold-only"] if args.cold_only else []),
                       *(["--heartbeats", str(args.heartbeats), "--steady", str(args.steady),
                          "--spacing", str(args.spacing)] if args.heartbeats else []),
                       *(["--no-spec-change"] if args.no_spec_change else [])]  # fmt: skip
                env = {**os.environ, "BOSUN_BENCH_CODE": str(code), "PYTHONPATH": str(code)}
                out = subprocess.run(cmd, env=env, text=True, capture_output=True, check=False)
                print(out.stdout + out.stderr, flush=True)
                for line in out.stdout.splitlines():
                    if line.startswith("RESULT "):
                        rows.append((label, json.loads(line[7:])))
                    if line.startswith("STEADY "):
                        steady.append((label, json.loads(line[7:])))
                    if line.startswith("COLD "):
                        cold.append((label, json.loads(line[5:])))
    for label, r in cold:
        print(
            f"cold cycle, {label:<12} peak RSS {r['peak_mb']} MB, {r['wall']} s, CPU {r['cpu']} s"
        )
    print("\nno-change cycle, medians (wall / CPU / planner / wall without the planner):")
    for label, r in rows:
        print(f"  {r['n']:>7} machines  {label:<12} {r['wall']:6.3f}s / {r['cpu']:6.3f}s / "
              f"{r['plan']:6.3f}s / {r['wall'] - r['plan']:6.3f}s   phases {r['phases']}")  # fmt: skip
    if steady:
        print("\nheartbeat cycles, medians (wall / CPU / control+status MB written):")
    for label, r in steady:
        print(f"  {r['n']:>7} machines  {label:<12} {r['wall']:6.3f}s / {r['cpu']:6.3f}s / "
              f"{r['mb_written']:6.1f} MB  (mean CPU {r.get('mean_cpu')}s, cycles every "
              f"{r.get('spacing')}s)  phases {r['phases']}\n{'':<23} each cycle "
              f"(CPU s, MB written) {r['each']}")  # fmt: skip


if __name__ == "__main__":
    main()
