"""1 KB put/get throughput on each store backend: directory, moto server, SeaweedFS.

Usage: scripts/bench store [--ops N] [--threads T] [--backends directory,moto,seaweedfs]
Prints operations per second and mean latency per operation kind, single-threaded and
with T threads. Servers are real processes on 127.0.0.1, started and stopped here.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from rich.console import Console
from rich.table import Table

from tests.support.fixtures import fresh_bucket
from tests.support.servers import S3Server, start_moto, start_seaweedfs
from wire.store import DirectoryStore, Store

BODY = b"x" * 1024


def measure(store: Store, ops: int, threads: int) -> dict[str, float]:
    keys = [f"bench/k-{i:06d}.json" for i in range(ops)]
    etags: dict[str, str] = {}

    def timed(fn: Callable[[str], object]) -> float:
        started = time.perf_counter()
        if threads == 1:
            for k in keys:
                fn(k)
        else:
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(fn, keys))
        return ops / (time.perf_counter() - started)

    def put(k: str) -> None:
        etags[k] = store.put(k, BODY)

    results = {
        "put": timed(put),
        "get": timed(lambda k: store.get(k)),
        "get 304": timed(lambda k: store.get(k, if_none_match=etags[k])),
        "put If-Match": timed(
            lambda k: etags.__setitem__(k, store.put(k, BODY, if_match=etags[k]))
        ),
    }
    started = time.perf_counter()
    listed = sum(1 for _ in store.list("bench/"))
    results["list keys/s"] = listed / (time.perf_counter() - started)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ops", type=int, default=500)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--backends", default="directory,moto,seaweedfs")
    args = parser.parse_args()
    console = Console()
    table = Table(title=f"1 KB objects, {args.ops} ops per kind (ops/s)")
    table.add_column("backend")
    table.add_column("threads", justify="right")
    for kind in ("put", "get", "get 304", "put If-Match", "list keys/s"):
        table.add_column(kind, justify="right")
    for backend in args.backends.split(","):
        server: S3Server | None = None
        tmp = tempfile.TemporaryDirectory(prefix="bosun-bench-")
        try:
            for threads in (1, args.threads):
                if backend == "directory":
                    store: Store = DirectoryStore(Path(tmp.name) / f"b{threads}")
                else:
                    if server is None:
                        server = start_moto() if backend == "moto" else start_seaweedfs()
                    store = fresh_bucket(server)
                r = measure(store, args.ops, threads)
                table.add_row(backend, str(threads), *(f"{r[k]:,.0f}" for k in r))
                console.print(
                    f"{backend} x{threads}: " + ", ".join(f"{k} {v:,.0f}/s" for k, v in r.items())
                )
        finally:
            if server is not None:
                server.stop()
            tmp.cleanup()
    console.print(table)


if __name__ == "__main__":
    main()
