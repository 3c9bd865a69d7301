"""Active health checks of the example load balancer, and the report the Bosun agent reads.

Every `--check-seconds` the balancer opens a TCP connection to each backend and each
evicted peer (out of rotation, still checked so that it can come back). A failed connect,
or a refused or broken connection while proxying, is a failure; one success clears the
streak. After `--fall` consecutive failures a backend is failing, since the first failure
of the streak. The report is served at `GET /_lb/backends` and, with `--report-file`,
written there atomically whenever it changes:

    {"backends": {"web-1": {"reachable": true,  "failures": 0, "failing_since": null},
                  "web-2": {"reachable": false, "failures": 3, "failing_since": 1733590000.1}}}

Only the peers of the current peers file appear. The agent's `backends` probe reads it
(docs/agent.md, docs/examples.md) and the controller takes the backends most balancers
cannot reach out of rotation at once, instead of waiting for their heartbeats to run out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(slots=True)
class Reach:
    failures: int = 0  # consecutive
    first_failure: float | None = None  # wall clock of the streak's first failure


class Checks:
    def __init__(self, *, fall: int = 2, timeout: float = 1.0, report_file: Path | None = None):
        self.fall = max(1, fall)
        self.timeout = timeout
        self.report_file = report_file
        self.reach: dict[str, Reach] = {}
        self._written: dict[str, Any] | None = None

    def track(self, machines: Iterable[str]) -> None:
        """Follow exactly these peers (the peers file changed)."""
        wanted = set(machines)
        self.reach = {m: self.reach.get(m, Reach()) for m in sorted(wanted)}
        self.write()

    def observe(self, machine: str, ok: bool, now: float | None = None) -> None:
        r = self.reach.get(machine)
        if r is None:
            return
        if ok:
            r.failures, r.first_failure = 0, None
        else:
            r.failures += 1
            if r.first_failure is None:
                r.first_failure = time.time() if now is None else now

    def failing_since(self, machine: str) -> float | None:
        r = self.reach.get(machine)
        if r is None or r.failures < self.fall:
            return None
        return r.first_failure

    def report(self) -> dict[str, Any]:
        out = {}
        for m, r in self.reach.items():
            since = self.failing_since(m)
            out[m] = {"reachable": since is None, "failures": r.failures, "failing_since": since}
        return {"backends": out}

    def write(self) -> None:
        """Write the report file when what it says (reachable, failing_since) changed."""
        if self.report_file is None:
            return
        report = self.report()
        key = {m: v["failing_since"] for m, v in report["backends"].items()}
        if key == self._written:
            return
        tmp = self.report_file.with_name(f".{self.report_file.name}.tmp")
        tmp.write_text(json.dumps(report, sort_keys=True) + "\n")
        os.replace(tmp, self.report_file)
        self._written = key

    async def _connect(self, address: str, port: int) -> bool:
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(address, port), timeout=self.timeout
            )
        except (OSError, TimeoutError):
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True

    async def check(self, targets: Iterable[tuple[str, str, int]]) -> None:
        """One round: connect to every (machine, address, port) at once."""
        listed = list(targets)
        results = await asyncio.gather(*(self._connect(a, p) for _, a, p in listed))
        now = time.time()
        for (m, _, _), ok in zip(listed, results, strict=True):
            self.observe(m, ok, now)
        self.write()
