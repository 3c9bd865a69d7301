"""A real fleet for rollouts: bosun-agent processes running the example app behind the
example load balancer, a `bosun controller run --every 1s` process, a bucket on disk and a
client sending steady traffic through the balancer, recording who answered each request.

Machines: lb-1 (the example LB, peers written by the agent's files driver) and web-1..4
(the example app; spec count 2, so 2 active + 2 warm standby). Agent configs come from
`devkit.demo.fleet`, processes are started and stopped by `devkit.demo.procs`.

The client, the convergence and serving waits and the helpers that follow a rollout and
judge the clients' answers are shared with test_coupled_fleet.py (two services, two
balancers, a fleet of its own).
"""

from __future__ import annotations

import contextlib
import http.client
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

from controller.spec.load import from_value
from controller.spec.revisions import apply
from devkit.demo import fleet
from devkit.demo.fleet import Timing
from tests.support.procfleet import ProcessFleet, build, web_roles
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


def converged(f: ProcessFleet, service: str, lb: str, active: int, standby: int) -> bool:
    """`service` has `active` healthy machines and `standby` standbys, and the balancer on
    machine `lb` lists `active` backends."""
    f.poll_records()
    got = f.cluster().get("services", {}).get(service, {})
    backends = {b["machine"] for b in f.peers(lb).get("backends", [])}
    return (got.get("healthy"), got.get("standby"), len(backends)) == (active, standby, active)


def start_client(f: ProcessFleet, lb: str, service: str, rate: float, backends: int) -> Client:
    """A client of the balancer on machine `lb`, once its answers are all 200 from
    `backends` backends (the desired document names them before the balancer has read its
    peers file: until then it answers 503 "no backends")."""
    client = Client(f.machines[lb].ports[service], rate)
    client.start()

    def serving() -> bool:
        recent = client.since(0)[-20:]
        return (
            len(recent) == 20
            and all(a.status == 200 for a in recent)
            and len({a.backend for a in recent}) == backends
        )

    try:
        f.wait(f"the balancer on {lb} to answer 200 from {backends} backends", serving, 15)
    except BaseException:
        stop_clients(client)
        raise
    return client


def stop_clients(*clients: Client | None) -> None:
    for client in clients:
        if client is not None:
            client.halt.set()
    for client in clients:
        if client is not None:
            client.join(timeout=5)


def follow(
    f: ProcessFleet,
    service: str,
    version: str,
    until: tuple[str, ...],
    timeout: float,
    on_doc: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Status documents of `service`'s rollout to `version`, sampled every 0.1 s, until its
    state is one of `until`."""
    seen: list[dict[str, Any]] = []

    def done() -> bool:
        doc = f.json(rollout_status_key(service))
        if doc is not None and (not seen or doc != seen[-1]):
            seen.append(doc)
            if on_doc is not None and doc["to_version"] == version:
                on_doc(doc)
        return doc is not None and doc["to_version"] == version and doc["state"] in until

    f.wait(f"the rollout of {service} to reach {until}", done, timeout)
    return seen


def all_from(f: ProcessFleet, client: Client, version: str, quiet: float, start: float) -> float:
    """Wait until every answer `client` got for `quiet` seconds came from `version`; the
    time of the last answer since `start` from another version (`start` when there was
    none)."""

    def steady() -> float | None:
        answers = client.since(start)
        other = [a.at for a in answers if a.version != version]
        last = max(other, default=start)
        recent = [a for a in answers if a.at > last]
        return last if recent and time.time() - last >= quiet else None

    last: float = f.wait(f"all answers from {version} for {quiet:g}s", steady, 30)
    return last


def errors(client: Client, since: float) -> dict[str, int]:
    """Client answers >= 500 since `since`, by status, backend and version."""
    out: Counter[str] = Counter(
        f"{a.status} {a.backend or '-'} {a.version or '-'}"
        for a in client.since(since)
        if a.status >= 500
    )
    return dict(out)


@pytest.fixture(scope="module")
def rollout_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    f = Fleet(**build(tmp_path_factory.mktemp("rollout-fleet"), web_roles(WEB), TIMING))
    f.apply("1.0", fleet.rollout_value(TIMING))
    try:
        f.start("ctl-test")
        f.wait(
            "web: 2 healthy active + 2 standby, and 2 LB backends",
            lambda: converged(f, "web", "lb-1", 2, 2),
            60,
        )
        f.client = start_client(f, "lb-1", "lb", TIMING.rate, 2)
        yield f
    finally:
        stop_clients(f.client)
        f.stop()
