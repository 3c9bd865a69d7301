"""A real fleet for rollouts: bosun-agent processes running the example app behind the
example load balancer, a `bosun controller run --every 1s` process, a bucket on disk and a
client sending steady traffic through the balancer, recording who answered each request.

Machines: lb-1 (the example LB, peers written by the agent's files driver) and web-1..4
(the example app; spec count 2, so 2 active + 2 warm standby). Agent configs come from
`devkit.demo.fleet`, processes are started and stopped by `devkit.demo.procs`.
"""

from __future__ import annotations

import contextlib
import http.client
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

from controller.spec.load import from_value
from controller.spec.revisions import apply
from devkit.demo import fleet
from devkit.demo.fleet import Timing
from tests.support.procfleet import BOSUN, ProcessFleet, build
from wire.layout import rollout_status_key

TIMING = Timing(
    every=1.0,
    poll=1.0,
    heartbeat=1.0,
    heartbeat_timeout=5.0,
    dwell=1.0,
    rate=40.0,
    bake=2.0,
    phase_timeout=40.0,
)
WEB = tuple(f"web-{i}" for i in range(1, 5))


@dataclass(frozen=True, slots=True)
class Answer:
    at: float  # when the answer arrived (wall clock)
    status: int
    backend: str
    version: str
    detail: str = ""  # the body of an error the balancer itself gave (no backend header)


class Client(threading.Thread):
    """GET / through the balancer at a steady rate; every answer is recorded."""

    def __init__(self, port: int, rate: float) -> None:
        super().__init__(name="rollout-client", daemon=True)
        self.port, self.interval = port, 1.0 / rate
        self.halt = threading.Event()
        self.lock = threading.Lock()
        self.answers: list[Answer] = []
        self.failures = 0

    def run(self) -> None:
        conn: http.client.HTTPConnection | None = None
        next_at = time.monotonic()
        while not self.halt.is_set():
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/")
                resp = conn.getresponse()
                body = resp.read()
                version = ""
                with contextlib.suppress(ValueError, TypeError, AttributeError):
                    version = str(orjson.loads(body).get("version", ""))
                backend = resp.getheader("X-Bosun-Backend") or ""
                detail = "" if backend or resp.status < 500 else body[:300].decode(errors="replace")
                answer = Answer(time.time(), resp.status, backend, version, detail)
                with self.lock:
                    self.answers.append(answer)
            except (OSError, http.client.HTTPException):
                self.failures += 1
                if conn is not None:
                    conn.close()
                conn = None
            next_at += self.interval
            delay = next_at - time.monotonic()
            if delay > 0:
                self.halt.wait(delay)
            else:
                next_at = time.monotonic()
        if conn is not None:
            conn.close()

    def since(self, t: float) -> list[Answer]:
        with self.lock:
            return [a for a in self.answers if a.at >= t]


@dataclass
class Fleet(ProcessFleet):
    client: Client | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    def apply(self, version: str, rollout: dict[str, Any] | None) -> int:
        value = fleet.spec_value(TIMING, self.run_dir, web_count=2, version=version)
        if rollout is not None:
            value["services"]["web"]["rollout"] = rollout
        return apply(self.store, from_value(value, source="test"), now=time.time()).revision

    def rollout(self) -> dict[str, Any] | None:
        return self.json(rollout_status_key("web"))

    def bosun(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*BOSUN, *args, "--store", self.url],
            env={**self.book.env, "COLUMNS": "120"},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


@pytest.fixture(scope="module")
def rollout_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    f = Fleet(**build(tmp_path_factory.mktemp("rollout-fleet"), WEB, TIMING))
    f.apply("1.0", fleet.rollout_value(TIMING))
    try:
        f.start("ctl-test")

        def converged() -> bool:
            f.poll_records()
            web = f.cluster().get("services", {}).get("web", {})
            backends = {b["machine"] for b in f.peers().get("backends", [])}
            return (web.get("healthy"), web.get("standby"), len(backends)) == (2, 2, 2)

        f.wait("web: 2 healthy active + 2 standby, and 2 LB backends", converged, 60)
        f.client = Client(f.machines["lb-1"].ports["lb"], TIMING.rate)
        f.client.start()
        client = f.client

        def serving() -> bool:
            # the desired document names 2 backends before the balancer has read its peers
            # file: wait until its answers come from both, all 200 (no 503 "no backends")
            recent = client.since(0)[-20:]
            return (
                len(recent) == 20
                and all(a.status == 200 for a in recent)
                and len({a.backend for a in recent}) == 2
            )

        f.wait("the balancer to answer 200 from both backends", serving, 15)
        yield f
    finally:
        if f.client is not None:
            f.client.halt.set()
            f.client.join(timeout=5)
        f.stop()
