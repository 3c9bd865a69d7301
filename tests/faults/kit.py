"""Shared parts of the fault scenarios: a bucket on SeaweedFS reached through the fault
proxy, simulated agents, an in-process controller, and a watcher that proves generations
and fences never go backwards in `desired/` and no generation is reused with another
content."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from controller.planner.model import Memory
from controller.shell.cycle import Controller
from controller.shell.lease import LeaseSettings
from controller.spec.load import load_yaml
from controller.spec.revisions import apply
from tests.support.faultproxy import FaultProxy
from tests.support.servers import ACCESS_KEY, SECRET_KEY
from tests.unit.controller.sim import SimAgent
from wire.documents import Desired, open_desired
from wire.errors import BosunError
from wire.layout import DESIRED, MEMORY, desired_key
from wire.retry import RetryPolicy
from wire.signing import derive_machine_key, digest, format_kid
from wire.store import Store, StoredObject
from wire.store.s3 import S3Store, Timeouts

MASTER = bytes(range(32))  # the agent test kit signs with the same master
MACHINES = [f"m-{i}" for i in range(4)]


def spec_yaml(
    version: str = "1.0", *, interval: str = "1s", heartbeat: str = "1h", lb_version: str = "2.0"
) -> str:
    return f"""
settings:
  heartbeat_timeout: {heartbeat}
  desired_lifetime: 1h
  skew_window: 5m
  controller_interval: {interval}
services:
  web:
    version: "{version}"
    count: 2
    port: 8080
  lb:
    kind: loadbalancer
    balances: web
    version: "{lb_version}"
    count: 1
    port: 80
"""


def via(store: S3Store, endpoint: str, *, attempts: int = 2, read: float = 2.0) -> S3Store:
    """The same bucket and prefix as `store`, reached through `endpoint` (the proxy)."""
    return S3Store(
        store.bucket,
        prefix=store.prefix,
        endpoint=endpoint,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        retry=RetryPolicy(attempts=attempts, total_seconds=4, wait_initial=0.01, wait_max=0.05),
        timeouts=Timeouts(connect=1, read=read),
    )


def open_doc(store: Store, machine: str, epoch: int = 0) -> tuple[Desired, str] | None:
    """The verified desired document of `machine` and its body digest, or None if absent."""
    got = store.get(desired_key(machine))
    if not isinstance(got, StoredObject):
        return None
    key = derive_machine_key(MASTER, machine, epoch)
    kid = format_kid(machine, epoch)
    env, doc = open_desired(got.body, desired_key(machine), lambda k: key if k == kid else None)
    return doc, digest(env.body)


def memory(store: Store) -> Memory | None:
    got = store.get(MEMORY, max_bytes=16 * 1024 * 1024)
    return Memory.from_json(got.body) if isinstance(got, StoredObject) else None


def controller(store: Store, holder: str = "ctl", **kw: Any) -> Controller:
    return Controller(
        store, MASTER, holder=holder, lease=kw.pop("lease", LeaseSettings(6, 4)), **kw
    )


def agents(store: Store, machines: list[str] | None = None) -> list[SimAgent]:
    return [SimAgent(store, MASTER, m, eligible=("web", "lb")) for m in machines or MACHINES]


def start_spec(store: Store, version: str = "1.0", **kw: str) -> None:
    apply(store, load_yaml(spec_yaml(version, **kw)), now=time.time())


def round_trip(ctl: Controller, fleet: list[SimAgent], rounds: int = 3) -> None:
    """Controller cycle, then every agent pulls and reports; `rounds` times."""
    for _ in range(rounds):
        ctl.cycle()
        for a in fleet:
            a.pull()
            a.report()


def assert_converged(store: Store, fleet: list[SimAgent], version: str = "1.0") -> None:
    """Every machine has a verifying desired document, the agents run it, the planner's
    memory agrees with it, and the spec's service versions are what the machines run."""
    mem = memory(store)
    assert mem is not None, "control/memory.json missing after convergence"
    services: dict[str, int] = {}
    for a in fleet:
        got = open_doc(store, a.machine)
        assert got is not None, f"{a.machine} has no desired document"
        doc, _ = got
        assert a.desired is not None and a.desired.generation == doc.generation, (
            f"{a.machine}: agent runs {a.desired and a.desired.generation}, bucket has {doc.generation}"
        )
        # memory may lag a generation written by a cycle cut before its save (it is not
        # re-learnt while the plan for that machine is unchanged); the next write still
        # goes above the bucket's generation, which the Watcher checks
        assert mem.machines[a.machine].generation <= doc.generation, (
            f"{a.machine}: memory says {mem.machines[a.machine].generation}, bucket {doc.generation}"
        )
        if doc.service and doc.mode == "active":
            services[doc.service] = services.get(doc.service, 0) + 1
            if doc.service == "web":
                assert doc.version == version, f"{a.machine} runs web {doc.version}"
    assert services.get("web") == 2 and services.get("lb") == 1, services


@dataclass
class Watcher:
    """Reads every desired document every `every` seconds (direct, not through faults) and
    records any generation or fence that went backwards, or a generation reused with
    another content."""

    store: Store
    every: float = 0.1
    seen: dict[str, tuple[int, int, str]] = field(default_factory=dict)
    history: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    by_generation: dict[tuple[str, int], str] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def scan(self) -> None:
        for info in list(self.store.list(DESIRED)):
            machine = info.key.rsplit("/", 1)[-1].removesuffix(".json")
            try:
                got = open_doc(self.store, machine)
            except BosunError:
                continue  # a document the scenario planted on purpose; the agent refuses it
            if got is None:
                continue
            doc, dig = got
            old = self.seen.get(machine)
            key = (machine, doc.generation)
            if self.by_generation.setdefault(key, dig) != dig:
                self.violations.append(f"{machine}: generation {doc.generation} reused")
            if old and (doc.generation < old[0] or doc.fence < old[1]):
                self.violations.append(
                    f"{machine}: went back from generation {old[0]} fence {old[1]} to "
                    f"generation {doc.generation} fence {doc.fence}"
                )
            if old is None or old[2] != dig:
                self.history.setdefault(machine, []).append((doc.generation, doc.fence))
            self.seen[machine] = (doc.generation, doc.fence, dig)

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(BosunError):  # mid-update, or the scenario has it down
                self.scan()
            self._stop.wait(self.every)

    def __enter__(self) -> Watcher:
        self._thread = threading.Thread(target=self._run, daemon=True, name="desired-watcher")
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.scan()


_OPERATIONS = {"PutObject": "PUT", "GetObject": "GET", "ListObjectsV2": "LIST",
               "DeleteObject": "DELETE"}  # fmt: skip


class OnRequest:
    """A hook on an S3Store (`on_request`): calls `action` (once) just before the first
    request whose operation (S3's name, e.g. PutObject) and key match, in the calling
    thread, so a fault can be injected at an exact point of a cycle."""

    def __init__(self, store: S3Store, operation: str, key_part: str, action: Callable[[], None]):
        self.operation, self.key_part, self.action = _OPERATIONS[operation], key_part, action
        self.fired = threading.Event()
        self.count = 0
        self._lock = threading.Lock()
        store.on_request = self._hook

    def _hook(self, operation: str, key: str) -> None:
        if operation != self.operation or self.key_part not in "/" + key:  # as a URL path
            return
        with self._lock:
            self.count += 1
            first = not self.fired.is_set()
            self.fired.set()
        if first:
            self.action()


def wait_for(what: str, check: Callable[[], Any], timeout: float, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except BosunError as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


__all__ = ["FaultProxy", "LeaseSettings"]
