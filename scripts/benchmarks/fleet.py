"""scripts/bench fleet: N simulated agents and a real controller against SeaweedFS.

    scripts/bench fleet --machines 1000 [--poll 30s --heartbeat 5m --controller-interval 10s]
                        [--scale 5] [--window 60] [--workers 48] [--sample 1000]

The agents are lightweight (one thread pool, a schedule per machine) but speak the real
wire protocol: conditional GET of desired/<m>.json, HMAC verification with
`wire.documents.open_desired` and the machine's derived key, signed snapshots with
`wire.documents.seal` (on change, or when the heartbeat is due; seq = unix ms). The
controller is a separate process running `controller.shell.cycle.Controller.cycle()` every
interval (so its CPU time and peak RSS are its own), on the store `bosun controller run`
opens (`wire.store.s3`); the agents use the same client, as real agents do. Requests are
counted by a counting `Store` wrapped around each client (answers by kind: GET 200/304/404,
PUT, LIST pages).

`--scale S` divides every interval by S (poll, heartbeat and
controller interval), so S times the request rate is simulated in real time; rates are reported
both as measured and rescaled to the requested intervals.

`--sample K` (sampled polls, for fleets larger than this store serves: 100,000 machines poll
3,333 GET/s, SeaweedFS here answers ~2,000): the reports are bulk-seeded concurrently, every
machine takes part in the cold start (polls until it has verified its first document and
reported it applied), then for the steady state only K machines chosen at random keep
polling `desired/` every poll interval; the others only PUT their signed report when their
heartbeat is due (the snapshot a polling agent sends, applied generation included). The
controller sees what it would see from the whole fleet: every report written at the
heartbeat rate, every LIST page, every changed report to GET. The polls not sent (n - K per
poll interval, each a 304 in the steady state) are added to the agents' GET count as
computed, and printed apart. For the spec change every machine polls again (a machine that
does not poll cannot take a change). Phases:

1. cold start: every agent reports, the controller places them, all verify a document;
2. steady state for --window seconds: requests per second by kind against the floor of
   `controller.spec.request_cost` (one GET per poll, one PUT per heartbeat, one controller GET per
   heartbeat, one LIST per 1,000 machines per cycle);
3. a spec change (web version bump), applied just after a controller cycle began (the
   worst phase: the change waits a whole interval to be planned): convergence = time
   from `spec apply` to each web machine's agent having verified its new document
   (p50/p99/max).
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import os
import random
import resource
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
# another revision's tree (a baseline in the same run): its code first on the path
sys.path.insert(0, os.environ.get("BOSUN_BENCH_CODE") or str(ROOT))

from controller.spec.load import load_yaml  # noqa: E402
from controller.spec.request_cost import MONTH_SECONDS, CostInputs, estimate  # noqa: E402
from controller.spec.revisions import apply  # noqa: E402
from devkit.local_s3 import ACCESS_KEY, SECRET_KEY, start_seaweedfs  # noqa: E402
from wire.documents import Addresses, Applied, Desired, ServiceState, Snapshot, open_desired, seal  # noqa: E402
from wire.durations import parse_duration  # noqa: E402
from wire.errors import BosunError  # noqa: E402
from wire.layout import desired_key, report_key  # noqa: E402
from wire.retry import RetryPolicy  # noqa: E402
from wire.signing import derive_machine_key, format_kid  # noqa: E402
from wire.store import (  # noqa: E402
    NotModified,
    ObjectInfo,
    StoredObject,
)
from wire.store.s3 import S3Store  # noqa: E402

MASTER = bytes(range(32))
ELIGIBLE = tuple(f"{kind}{i}" for i in range(20) for kind in ("web", "lb"))


def spec_yaml(n: int, version: str, hb: float, interval: float) -> str:
    """60% of the machines run web, split into services of at most 1,000 machines, each
    behind its own load balancer: a load balancer's desired document lists its backends,
    and 1,000 backends (~165 KB) stay under the agents' 256 KiB document cap (one
    balancer for 6,000 backends would need ~1 MB and is refused by the controller)."""
    web = int(n * 0.6)
    parts = max(1, math.ceil(web / 1000))
    services = "".join(
        f"""
  web{i}:
    version: "{version}"
    count: {web // parts}
    port: 8080
  lb{i}:
    kind: loadbalancer
    balances: web{i}
    version: "2.0"
    count: 1
    port: 80"""
        for i in range(parts)
    )
    return f"""
settings:
  heartbeat_timeout: {hb * 3:g}s
  desired_lifetime: 1d
  skew_window: 10m
  controller_interval: {interval:g}s
services:{services}
"""


def store_for(endpoint: str, prefix: str) -> Counts:
    """The controller's store, as `bosun controller run` opens it (`wire.store.s3`), counted."""
    return Counts(S3Store(
        "bosun-fleet", prefix=prefix, endpoint=endpoint, access_key=ACCESS_KEY,
        secret_key=SECRET_KEY, retry=RetryPolicy(attempts=3, total_seconds=20, wait_initial=0.05),
    ))  # fmt: skip


def agent_store(endpoint: str, prefix: str) -> Counts:
    """The simulated agents' store: the client real agents use (`wire.store.s3`), counted."""
    return Counts(S3Store("bosun-fleet", prefix=prefix, endpoint=endpoint, access_key=ACCESS_KEY,
                          secret_key=SECRET_KEY,
                          retry=RetryPolicy(attempts=2, wait_initial=0.05, wait_max=0.05)))  # fmt: skip


class Counts:
    """A `Store` that counts requests by kind and answer (GET 200/304/404, PUT 200, LIST
    pages of 1,000 keys) on the way through to the real one."""

    def __init__(self, store: S3Store) -> None:
        self.store = store
        self.c: Counter[str] = Counter()
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return self.store.url

    def describe(self, key: str) -> str:
        return self.store.describe(key)

    def _add(self, kind: str, n: int = 1) -> None:
        with self.lock:
            self.c[kind] += n

    def get(self, key: str, **kw: Any) -> Any:
        try:
            got = self.store.get(key, **kw)
        except BosunError:
            self._add("GET error")
            raise
        self._add(
            f"GET {200 if isinstance(got, StoredObject) else 304 if isinstance(got, NotModified) else 404}"
        )
        return got

    def put(self, key: str, body: bytes, **kw: Any) -> str:
        try:
            etag = self.store.put(key, body, **kw)
        except BosunError:
            self._add("PUT error")
            raise
        self._add("PUT 200")
        return etag

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        return self.list_after(prefix, None)

    def list_after(self, prefix: str, start_after: str | None) -> Iterator[ObjectInfo]:
        """LIST pages as S3 bills them: pages are fetched as read (1,000 keys each), so a
        reader that stopped after n keys made ceil(n / 1000) requests (at least one)."""
        n = 0
        try:
            listing = (
                self.store.list(prefix)  # an older tree's client (--baseline) has no list_after
                if start_after is None
                else self.store.list_after(prefix, start_after)
            )
            for info in listing:
                n += 1
                yield info
        finally:
            self._add("LIST 200", max(1, math.ceil(n / 1000)))

    def delete(self, key: str) -> None:
        self._add("DELETE 204")
        self.store.delete(key)

    def take(self) -> Counter[str]:
        with self.lock:
            out, self.c = self.c, Counter()
        return out


# ---- the controller process ---------------------------------------------------------------


def controller_child(args: argparse.Namespace) -> None:
    from controller.shell.cycle import Controller
    from controller.shell.lease import LeaseSettings

    store = counts = store_for(args.endpoint, args.prefix)
    interval = args.interval
    lease = args.lease or interval * 6
    ctl = Controller(store, MASTER, holder="bench", lease=LeaseSettings(lease, lease * 2 / 3))
    try:
        from controller.shell.heap import Heap

        heap: Any = Heap()
    except ImportError:  # an older tree (BOSUN_BENCH_CODE)
        heap = None
    stop_at = time.time() + args.lifetime
    while time.time() < stop_at:
        t0 = time.perf_counter()
        phases: dict[str, float] = {}
        try:
            rep = ctl.cycle()
            note = rep.summary()
            desired = sum(k.startswith("desired/") for k in rep.written)
            phases = rep.timings
        except BosunError as exc:
            note, desired = f"error: {exc}", 0
        if heap is not None:
            heap.after_cycle()  # as `bosun controller run` does between cycles
        took = time.perf_counter() - t0
        ru = resource.getrusage(resource.RUSAGE_SELF)
        line = {
            "t": time.time(), "cycle": round(took, 4), "counts": counts.take(), "desired": desired,
            "cpu": round(ru.ru_utime + ru.ru_stime, 3), "rss_mb": round(ru.ru_maxrss / 1024, 1),
            "note": note[:160], "phases": phases,
        }  # fmt: skip
        print(json.dumps(line), flush=True)
        time.sleep(max(0.0, interval - took))


# ---- the simulated agents -----------------------------------------------------------------


class Fleet:
    def __init__(self, store: Counts, n: int, poll: float, hb: float, workers: int) -> None:
        self.store, self.poll, self.hb = store, poll, hb
        self.counts = store
        self.machines = [f"m-{i:06d}" for i in range(n)]
        self.keys = {m: derive_machine_key(MASTER, m, 0) for m in self.machines}
        self.etag: dict[str, str | None] = dict.fromkeys(self.machines)
        self.doc: dict[str, Desired | None] = dict.fromkeys(self.machines)
        self.seq: dict[str, int] = dict.fromkeys(self.machines, 0)
        self.last_put: dict[str, float] = dict.fromkeys(self.machines, 0.0)
        self.verified_at: dict[str, tuple[float, str]] = {}  # machine -> (time, version)
        self.pool = ThreadPoolExecutor(workers)
        self.halt = threading.Event()
        self.errors = 0
        self.lag: list[float] = []
        self.polling: set[str] | None = None  # --sample: the machines that still poll

    def snapshot(self, m: str, now: float) -> bytes:
        d = self.doc[m]
        services: dict[str, ServiceState] = {}
        applied = Applied()
        if d is not None:
            applied = Applied(
                generation=d.generation, fence=d.fence, digest="sim", result="ok", at=d.issued_at
            )
            if d.service and d.mode in ("active", "canary", "shadow", "standby"):
                services[d.service] = ServiceState(
                    version=d.version, state="running", health="healthy", port=8080
                )
        self.seq[m] = max(self.seq[m] + 1, int(now * 1000))
        snap = Snapshot(
            machine=m, seq=self.seq[m], sent_at=now, boot_id="sim", agent_version="fleet-bench",
            addresses=Addresses(internal=f"10.{int(m[2:]) // 65536 % 256}.{int(m[2:]) // 256 % 256}.{int(m[2:]) % 256}"),
            eligible=ELIGIBLE, services=services, applied=applied,
        )  # fmt: skip
        return seal(snap, key=self.keys[m], kid=format_kid(m, 0), object_key=report_key(m))

    def step(self, m: str, force_report: bool = False) -> None:
        now = time.time()
        changed = force_report
        try:
            got = self.store.get(desired_key(m), if_none_match=self.etag[m])
            if isinstance(got, StoredObject):
                kid = format_kid(m, 0)
                _env, doc = open_desired(
                    got.body, desired_key(m), lambda k: self.keys[m] if k == kid else None
                )
                self.etag[m] = got.etag
                if self.doc[m] is None or doc.generation > self.doc[m].generation:  # type: ignore[union-attr]
                    self.doc[m] = doc
                    self.verified_at[m] = (time.time(), doc.version or "")
                    changed = True
            if changed or now - self.last_put[m] >= self.hb:
                self.store.put(report_key(m), self.snapshot(m, now))
                self.last_put[m] = now
        except BosunError:
            self.errors += 1

    def heartbeat(self, m: str) -> None:
        """A machine whose polls are not sampled: its report, when its heartbeat is due."""
        now = time.time()
        try:
            self.store.put(report_key(m), self.snapshot(m, now))
            self.last_put[m] = now
        except BosunError:
            self.errors += 1

    def run(self) -> None:
        """Each machine polls every `poll` ± 10% (jitter), starting at a random phase; once
        `polling` is set, the others only report at their heartbeat."""
        rng = random.Random(1)
        heap = [(time.time() + rng.random() * self.poll, m) for m in self.machines]
        heapq.heapify(heap)
        inflight = threading.Semaphore(self.pool._max_workers * 4)
        while not self.halt.is_set() and heap:
            due, m = heapq.heappop(heap)
            sampled = self.polling is None or m in self.polling
            if not sampled and self.last_put[m] + self.hb > due:
                heapq.heappush(heap, (self.last_put[m] + self.hb, m))  # not due yet
                continue
            wait = due - time.time()
            if wait > 0:
                self.halt.wait(wait)
            elif sampled:
                self.lag.append(-wait)
            inflight.acquire()
            fut = self.pool.submit(self.step if sampled else self.heartbeat, m)
            fut.add_done_callback(lambda _f: inflight.release())
            nxt = self.poll * rng.uniform(0.9, 1.1) if sampled else self.hb
            heapq.heappush(heap, (due + nxt, m))


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(p / 100 * len(s)) - 1))]


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--machines", type=int, default=1000, help="simulated agents (default 1000)")
    ap.add_argument("--poll", default="30s", help="agent poll interval (default 30s)")
    ap.add_argument("--heartbeat", default="5m", help="agent heartbeat interval (default 5m)")
    ap.add_argument(
        "--controller-interval", default="10s", help="controller cycle interval (default 10s)"
    )
    ap.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="divide every interval by this: S times the request rate in real time; rates "
        "are printed measured and rescaled (default 1)",
    )
    ap.add_argument(
        "--window",
        type=float,
        default=0,
        help="steady-state seconds (default: one scaled heartbeat)",
    )
    ap.add_argument(
        "--workers",
        type=int,
        default=48,
        help="threads the simulated agents share (default 48; 64 for 10,000 machines)",
    )
    ap.add_argument(
        "--lease-duration",
        dest="lease_duration",
        default="",
        help="controller lease (renew deadline 2/3 of it); default 6 intervals (a long cold "
        "cycle renews it as it goes)",
    )
    ap.add_argument(
        "--sample",
        type=int,
        default=0,
        help="after the cold start only this many machines (chosen at random) poll desired/; "
        "the others PUT their report at their heartbeat and their polls are counted, not sent "
        "(default 0: every machine polls; use ~1000 past 10,000 machines)",
    )
    ap.add_argument(
        "--no-change",
        action="store_true",
        help="stop after the steady state (no spec change phase)",
    )
    ap.add_argument("--controller-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--endpoint", help=argparse.SUPPRESS)
    ap.add_argument("--prefix", help=argparse.SUPPRESS)
    ap.add_argument("--interval", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--lease", type=float, default=0.0, help=argparse.SUPPRESS)
    ap.add_argument("--lifetime", type=float, default=3600, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.controller_child:
        controller_child(args)
        return
    n = args.machines
    poll_r, hb_r, ivl_r = (
        float(parse_duration(x) or 0) for x in (args.poll, args.heartbeat, args.controller_interval)
    )
    poll, hb, ivl = poll_r / args.scale, hb_r / args.scale, ivl_r / args.scale
    window = args.window or hb
    print(f"fleet: {n} machines; poll {poll_r:g}s heartbeat {hb_r:g}s controller {ivl_r:g}s "
          f"(simulated {args.scale:g}x faster: {poll:g}s / {hb:g}s / {ivl:g}s)", flush=True)  # fmt: skip
    server = start_seaweedfs()
    ctl_proc: subprocess.Popen[str] | None = None
    try:
        prefix = f"fleet-{n}-{int(time.time())}"
        store = store_for(server.endpoint, prefix)
        store.store.create_bucket()
        apply(store, load_yaml(spec_yaml(n, "1.0", hb, ivl)), now=time.time())
        fleet = Fleet(agent_store(server.endpoint, prefix), n, poll, hb, args.workers)
        sampled = 0 < args.sample < n
        t0 = time.time()
        if sampled:  # bulk-seeded: nothing to poll yet, every machine's first report
            with ThreadPoolExecutor(max(args.workers, 64)) as seed:
                list(seed.map(fleet.heartbeat, fleet.machines))
        else:
            list(fleet.pool.map(lambda m: fleet.step(m, force_report=True), fleet.machines))
        print(f"cold: {n} snapshots posted in {time.time() - t0:.1f}s", flush=True)
        lease = parse_duration(args.lease_duration) if args.lease_duration else ivl * 6
        cmd = [sys.executable, __file__, "--controller-child", "--endpoint", server.endpoint,
               "--prefix", prefix, "--interval", str(ivl), "--lease", str(lease)]  # fmt: skip
        env = {**os.environ, **server.credentials_env()}
        ctl_proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
        lines: list[dict[str, Any]] = []
        out = ctl_proc.stdout
        assert out is not None

        def read_lines() -> None:
            for x in out:
                lines.append(json.loads(x))

        reader = threading.Thread(target=read_lines, daemon=True)
        reader.start()
        if sampled:  # no poll before the controller's first cycle could have written
            while not lines:
                time.sleep(0.5)
        runner = threading.Thread(target=fleet.run, daemon=True)
        runner.start()
        limit = max(600.0, n * 0.02)
        deadline = time.time() + limit
        shown = 0
        while sum(d is not None for d in fleet.doc.values()) < n:
            if time.time() > deadline:
                raise SystemExit(f"cold start did not converge in {limit:.0f} s")
            for ln in lines[shown:]:
                print(f"  cold cycle {ln['cycle']:.1f}s: {ln['note']}", flush=True)
            shown = len(lines)
            time.sleep(1)
        print(f"cold: every machine verified a desired document after {time.time() - t0:.1f}s "
              f"({len(lines)} controller cycles; first: {lines[0]['cycle'] if lines else '-'}s)", flush=True)  # fmt: skip
        if sampled:
            fleet.polling = set(random.Random(3).sample(fleet.machines, args.sample))
            print(f"sampled: {args.sample} machines keep polling; the other {n - args.sample} "
                  "report at their heartbeat only", flush=True)  # fmt: skip
        rng = random.Random(2)  # spread the heartbeats, as machines started at different times
        now = time.time()
        for m in fleet.machines:
            fleet.last_put[m] = now - rng.random() * hb
        # settle: the agents report their first applied document, the controller takes
        # those in and archives them; wait for two quiet cycles (a handful of PUTs each)
        time.sleep(max(3 * ivl, poll * 1.5))
        settle_until = time.time() + 900
        while time.time() < settle_until:
            tail = lines[-2:]
            if (
                len(tail) == 2
                and all(
                    sum(v for k, v in ln["counts"].items() if k.startswith("PUT")) <= 5
                    for ln in tail
                )
                and tail[-1]["t"] > time.time() - 2 * ivl
            ):
                break
            time.sleep(1)
        print(f"settled after {time.time() - t0:.0f}s ({len(lines)} controller cycles)", flush=True)
        fleet.counts.take()
        mark = len(lines)
        t1 = time.time()
        time.sleep(window)
        took = time.time() - t1
        agent = fleet.counts.take()
        quiet = lines[mark:]
        ctl: Counter[str] = Counter()
        for ln in quiet:
            ctl.update(ln["counts"])
        unsent = (n - len(fleet.polling)) / poll if fleet.polling is not None else 0.0
        rates = {
            "agent GET": sum(v for k, v in agent.items() if k.startswith("GET")) / took + unsent,
            "agent PUT": sum(v for k, v in agent.items() if k.startswith("PUT")) / took,
            "controller GET": sum(v for k, v in ctl.items() if k.startswith("GET")) / took,
            "controller LIST": sum(v for k, v in ctl.items() if k.startswith("LIST")) / took,
            "controller PUT": sum(v for k, v in ctl.items() if k.startswith("PUT")) / took,
        }
        floor = {
            "agent GET": n / poll, "agent PUT": n / hb, "controller GET": n / hb,
            "controller LIST": math.ceil(n / 1000) / ivl, "controller PUT": 0.0,
        }  # fmt: skip
        measured, floor_total = sum(rates.values()), sum(floor.values())
        print(f"\nsteady state over {took:.0f}s ({len(quiet)} controller cycles), requests/s "
              f"(x{1 / args.scale:g} at the requested intervals):")  # fmt: skip
        for k in rates:
            print(f"  {k:<16} {rates[k]:9.2f}/s  floor {floor[k]:9.2f}/s   "
                  f"at requested intervals {rates[k] / args.scale:8.3f}/s")  # fmt: skip
        print(f"  total            {measured:9.2f}/s  floor {floor_total:9.2f}/s   "
              f"{(measured / floor_total - 1) * 100:+.1f}% vs the floor")  # fmt: skip
        if unsent:
            print(f"  (agent GET includes {unsent:.2f}/s computed, not sent: the polls of the "
                  f"{n - len(fleet.polling or ())} machines not sampled, one per poll interval)")  # fmt: skip
        cost = estimate(CostInputs(n, poll=poll_r, heartbeat=hb_r, controller_interval=ivl_r,
                                   desired_lifetime=86400))  # fmt: skip
        per_s = MONTH_SECONDS / args.scale  # bosun cost counts a month at the requested intervals
        cost_floor = sum(ln.requests for ln in cost.lines if ln.floor) / per_s
        print(f"  `bosun cost` for this fleet: floor {cost_floor:.2f}/s, with lease, desired/ "
              f"LIST and re-signing {cost.requests / per_s:.2f}/s; measured {measured:.2f}/s = "
              f"{(measured / cost_floor - 1) * 100:+.1f}% vs its floor, "
              f"{(measured / (cost.requests / per_s) - 1) * 100:+.1f}% vs its total")  # fmt: skip
        print(f"  agent answers: {dict(agent)}; controller: {dict(ctl)}")
        cyc = [ln["cycle"] for ln in quiet]
        cpu = [b["cpu"] - a["cpu"] for a, b in zip(lines[mark - 1 : -1], quiet, strict=False)]
        print(
            f"  controller cycle: p50 {pct(cyc, 50):.3f}s  p99 {pct(cyc, 99):.3f}s  max {max(cyc, default=0):.3f}s; "
            f"CPU per cycle p50 {pct(cpu, 50):.3f}s; peak RSS {max((ln['rss_mb'] for ln in lines), default=0):.0f} MB"
        )
        phases = [ln.get("phases", {}) for ln in quiet]
        if phases and phases[0]:
            print("  phases (p50): " + ", ".join(
                f"{k} {pct([p.get(k, 0.0) for p in phases], 50):.3f}s" for k in phases[0]))  # fmt: skip
        print(f"  scheduler lag p99 {pct(fleet.lag[-n:], 99):.3f}s; agent errors {fleet.errors}")
        if args.no_change:
            fleet.halt.set()
            last = lines[-1] if lines else {"cpu": 0, "rss_mb": 0}
            print(f"\ncontroller process: CPU {last['cpu']:.1f}s over {time.time() - t0:.0f}s; "
                  f"peak RSS {last['rss_mb']:.0f} MB (no spec change: --no-change)")  # fmt: skip
            return
        # ---- spec change -------------------------------------------------------------
        web = {
            m
            for m, d in fleet.doc.items()
            if d is not None and (d.service or "").startswith("web") and d.mode == "active"
        }
        if fleet.polling is not None:  # a machine that does not poll cannot take the change
            print(f"\nspec change: all {n} machines poll again (beyond the store's GET rate "
                  "past ~60,000 machines at a 30 s poll: convergence then includes that)")  # fmt: skip
            fleet.polling = None
        # The worst phase: apply just after a cycle has begun (and read the spec), so the
        # change waits a whole controller interval before it is even planned.
        seen = len(lines)
        while len(lines) == seen:
            time.sleep(0.05)
        last_line = lines[-1]
        next_start = last_line["t"] - last_line["cycle"] + ivl
        time.sleep(max(0.0, next_start + min(0.5, ivl / 10) - time.time()))
        t_apply = time.time()
        apply(store, load_yaml(spec_yaml(n, "1.1", hb, ivl)), now=t_apply)
        mark = len(lines)
        deadline = t_apply + max(120.0, 10 * (ivl + poll))
        while time.time() < deadline:
            done = sum(1 for m in web if fleet.verified_at.get(m, (0, ""))[1] == "1.1")
            if done == len(web):
                break
            time.sleep(0.2)
        conv = [
            fleet.verified_at[m][0] - t_apply
            for m in web
            if fleet.verified_at.get(m, (0, ""))[1] == "1.1"
        ]
        target = ivl + poll + 5 / args.scale
        print(f"\nspec change (web* 1.0 -> 1.1 on {len(web)} machines), applied "
              f"{t_apply - next_start:.2f}s after a cycle began (the worst phase): {len(conv)} converged; "
              f"p50 {pct(conv, 50):.2f}s  p99 {pct(conv, 99):.2f}s  max {max(conv, default=0):.2f}s "
              f"(target p99 <= interval + poll + 5s = {target:.2f}s simulated; "
              f"x{args.scale:g} = {pct(conv, 99) * args.scale:.1f}s at the requested intervals)")  # fmt: skip
        change = lines[mark:]
        busy = [ln for ln in change if ln["desired"]]
        if busy:
            print(
                f"  the cycle that published: {busy[0]['cycle']:.2f}s, {busy[0]['desired']} desired, {busy[0]['counts']}"
            )
        fleet.halt.set()
        time.sleep(ivl)
        last = lines[-1] if lines else {"cpu": 0, "rss_mb": 0}
        print(
            f"\ncontroller process: CPU {last['cpu']:.1f}s over {time.time() - t0:.0f}s; peak RSS {last['rss_mb']:.0f} MB"
        )
        est = estimate(
            CostInputs(
                1000, poll=poll_r, heartbeat=hb_r, controller_interval=ivl_r, desired_lifetime=86400
            )  # the bench's spec: desired_lifetime 1d
        )
        print(f"\nmonthly S3 request cost per 1,000 machines at poll {poll_r:g}s, heartbeat {hb_r:g}s, "
              f"cycle {ivl_r:g}s: ${est.total_usd:.2f} (floor ${est.floor_usd:.2f}); from controller.spec.request_cost")  # fmt: skip
    finally:
        if ctl_proc is not None:
            ctl_proc.terminate()
            ctl_proc.wait(timeout=20)
        server.stop()


if __name__ == "__main__":
    main()
