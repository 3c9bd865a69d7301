"""scripts/bench controller: one controller cycle at 1,000 and 10,000 machines.

For each size: N machines post signed snapshots to a fresh store (SeaweedFS by default);
a cold cycle takes them in and writes every desired document; then

* a cycle with no change at all: proves it writes nothing but the lease;
* 1% of the snapshots change (new seq, new load, health flips): one cycle, timed, with the
  S3 requests it made by kind (counted with a botocore `before-call` event hook on the
  controller's own client), and the cycle's phases (lease, load, intake, plan, publish,
  records, save);
* another no-change cycle.

Usage: scripts/bench controller [--sizes 1000,10000] [--changed 0.01] [--backend seaweedfs|directory]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from controller.cycle import Controller, CycleReport  # noqa: E402
from controller.lease import LeaseSettings  # noqa: E402
from controller.local_s3 import ACCESS_KEY, SECRET_KEY, start_seaweedfs  # noqa: E402
from controller.spec.load import load_yaml  # noqa: E402
from controller.spec.revisions import apply  # noqa: E402
from wire.documents import Addresses, Applied, ServiceState, Snapshot, seal  # noqa: E402
from wire.layout import report_key  # noqa: E402
from wire.retry import RetryPolicy  # noqa: E402
from wire.signing import derive_machine_key, format_kid  # noqa: E402
from wire.store import DirectoryStore, Store  # noqa: E402
from wire.store.s3 import S3Store  # noqa: E402

MASTER = bytes(range(32))


def spec_yaml(n: int) -> str:
    return f"""
settings:
  heartbeat_timeout: 10m
  desired_lifetime: 1d
  skew_window: 10m
services:
  web:
    version: "1.0"
    count: {int(n * 0.6)}
    port: 8080
  lb:
    kind: loadbalancer
    balances: web
    version: "2.0"
    count: {max(1, n // 500)}
    port: 80
"""


def snapshot(machine: str, seq: int, now: float, *, load: float, health: str) -> bytes:
    snap = Snapshot(
        machine=machine, seq=seq, sent_at=now, boot_id="boot", agent_version="bench",
        addresses=Addresses(internal=f"10.{zlib.crc32(machine.encode()) % 250}.{seq % 250}.1"),
        eligible=("web", "lb"), load={"cpu": load},
        services={"web": ServiceState(version="1.0", state="running", health=health, port=8080)},
        applied=Applied(),
    )  # fmt: skip
    key = derive_machine_key(MASTER, machine, 0)
    return seal(snap, key=key, kid=format_kid(machine, 0), object_key=report_key(machine))


class Counting:
    """Counts the controller client's S3 requests by operation (and PUT target folder)."""

    def __init__(self, store: Store) -> None:
        self.counts: Counter[str] = Counter()
        if isinstance(store, S3Store):
            store.client.meta.events.register("before-call.s3", self.hook)

    def hook(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        name = str(model.name)
        if name == "PutObject":
            key = str(params.get("url_path", "")).split("?")[0]
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
        self.counts[name] += 1

    def take(self) -> dict[str, int]:
        out = dict(sorted(self.counts.items()))
        self.counts.clear()
        return out


def open_stores(backend: str, server: Any, tmp: Path, n: int) -> tuple[Store, Store]:
    if backend == "directory":
        root = tmp / f"bucket-{n}"
        return DirectoryStore(root), DirectoryStore(root)
    prefix = f"bench-{n}-{int(time.time())}"

    def make() -> S3Store:
        return S3Store(
            "bosun-bench",
            prefix=prefix,
            endpoint=server.endpoint,
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
            retry=RetryPolicy(attempts=3, total_seconds=20, wait_initial=0.05),
        )

    agents = make()
    agents.create_bucket()
    return make(), agents


def run_size(n: int, changed: float, backend: str, server: Any, tmp: Path) -> None:
    ctl_store, agent_store = open_stores(backend, server, tmp, n)
    apply(agent_store, load_yaml(spec_yaml(n)), now=time.time())
    machines = [f"m-{i:06d}" for i in range(n)]
    seqs = dict.fromkeys(machines, 1)
    now = time.time()

    def post(m: str, load: float = 0.1, health: str = "healthy") -> None:
        agent_store.put(report_key(m), snapshot(m, seqs[m], time.time(), load=load, health=health))

    t = time.perf_counter()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(post, machines))
    print(f"\n== {n} machines ({backend}): {n} snapshots posted in {time.perf_counter() - t:.1f}s")
    counter = Counting(ctl_store)
    ctl = Controller(ctl_store, MASTER, holder="bench", lease=LeaseSettings(300, 200))

    def cycle(label: str) -> CycleReport:
        t0 = time.perf_counter()
        report = ctl.cycle()
        took = time.perf_counter() - t0
        requests = counter.take()
        total = sum(requests.values())
        print(f"{label:<28} {took:7.2f}s  {total:6d} requests  {requests}")
        print(f"{'':<28} phases {report.timings}")
        return report

    cycle("cold cycle (all new)")
    cycle("settle")
    quiet = cycle("no change")
    puts = [k for k in quiet.written]
    assert puts == [], puts
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
    assert quiet.written == [], quiet.written
    del now


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--changed", type=float, default=0.01)
    parser.add_argument("--backend", choices=["seaweedfs", "directory"], default="seaweedfs")
    args = parser.parse_args()
    server = start_seaweedfs() if args.backend == "seaweedfs" else None
    try:
        with tempfile.TemporaryDirectory(prefix="bosun-bench-") as tmp:
            for n in (int(s) for s in args.sizes.split(",")):
                run_size(n, args.changed, args.backend, server, Path(tmp))
    finally:
        if server is not None:
            server.stop()
    print("\nno-change cycles wrote nothing but the lease (PutObject control/lease.json).")


if __name__ == "__main__":
    main()
