"""The controller cycle over a real directory store with simulated agents (docs/security.md#stop-on-lease-loss, #fenced-writes)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

from controller.planner.model import Memory, content_digest
from controller.shell.cycle import Controller
from controller.shell.lease import LeaseSettings
from tests.unit.controller.conftest import MASTER, Clock, agents
from tests.unit.controller.sim import SPEC_YAML, SimAgent
from tests.unit.controller.stores import Recording
from wire.documents import Desired, open_desired
from wire.errors import StoreUnavailable
from wire.layout import LEASE, MEMORY, desired_key
from wire.signing import derive_machine_key, format_kid
from wire.store import StoredObject


def controller(store: Recording, holder: str = "ctl", **kw: Any) -> Controller:
    return Controller(store, MASTER, holder=holder, lease=LeaseSettings(30, 20), **kw)


def open_doc(store: Recording, machine: str) -> Desired:
    got = store.inner.get(desired_key(machine))
    assert isinstance(got, StoredObject)
    key = derive_machine_key(MASTER, machine, 0)
    kid = format_kid(machine, 0)
    return open_desired(got.body, desired_key(machine), lambda k: key if k == kid else None)[1]


def round_trip(
    store: Recording, ctl: Controller, fleet: list[SimAgent], n: int = 4, now: float | None = None
) -> None:
    for _ in range(n):
        ctl.cycle()
        for a in fleet:
            a.pull()
            a.report(now=now)


class DesiredLog:
    """Every desired document written, per machine, as (generation, content digest, fence)."""

    def __init__(self, store: Recording) -> None:
        self.store = store
        self.by_machine: dict[str, list[tuple[int, str, int]]] = defaultdict(list)
        store.after_put.append(self.record)

    def record(self, key: str) -> None:
        if key.startswith("desired/"):
            machine = key.removeprefix("desired/").removesuffix(".json")
            doc = open_doc(self.store, machine)
            self.by_machine[machine].append((doc.generation, content_digest(doc), doc.fence))

    def assert_no_generation_reused(self) -> None:
        for machine, docs in self.by_machine.items():
            gens = [g for g, _d, _f in docs]
            assert gens == sorted(set(gens)), f"{machine}: generations {gens}"
            fences = [f for _g, _d, f in docs]
            assert fences == sorted(fences), f"{machine}: fences {fences}"


def test_machines_converge_and_the_lb_lists_the_web_backends(spec_store: Recording) -> None:
    """Agents get documents, run them, and the load balancer's peers are the active web machines."""
    fleet = agents(spec_store)
    ctl = controller(spec_store)
    round_trip(spec_store, ctl, fleet)
    docs = {a.machine: open_doc(spec_store, a.machine) for a in fleet}
    web = sorted(m for m, d in docs.items() if d.service == "web" and d.mode == "active")
    lbs = [d for d in docs.values() if d.service == "lb" and d.mode == "active"]
    assert len(web) == 2 and len(lbs) == 1
    assert sorted(p.machine for p in lbs[0].peers.backends) == web


def test_a_cycle_with_no_change_writes_only_the_lease(spec_store: Recording) -> None:
    """Nothing changed: the only write is the lease renew (cost model)."""
    fleet = agents(spec_store)
    ctl = controller(spec_store)
    round_trip(spec_store, ctl, fleet)
    ctl.cycle()  # takes in the last reports
    spec_store.reset()
    report = ctl.cycle()
    assert spec_store.puts() == [LEASE]
    assert report.written == []
    # one LIST of reports/ and one of desired/ (the bucket heals: docs/security.md#crash-windows),
    # and no GET of either: nothing changed
    # the two LISTs run concurrently (drift during intake): each once, in either order
    assert sorted(k for op, k in spec_store.calls if op == "LIST") == ["desired/", "reports/"]
    assert not [
        k for op, k in spec_store.calls if op == "GET" and k.startswith(("reports/", "desired/"))
    ]
    # its number is not saved: the log line says so rather than repeating it unexplained
    assert ctl.cycle().cycle == report.cycle
    assert "nothing written (the next cycle keeps this number)" in report.summary()


def test_dry_run_writes_nothing_not_even_the_lease(spec_store: Recording) -> None:
    """--dry-run plans and prints but performs no write at all."""
    for a in agents(spec_store):
        a.report()
    spec_store.reset()
    report = controller(spec_store).cycle(dry_run=True)
    assert report.plan is not None and len(report.plan.writes) == 4
    assert spec_store.puts() == []


def test_a_lost_machine_is_replaced_and_dropped_from_lb_peers(spec_store: Recording) -> None:
    """A machine silent past the heartbeat timeout is replaced in one cycle and leaves the peers."""
    wall = Clock(2_000_000_000.0)
    fleet = agents(spec_store, n=5)
    ctl = controller(spec_store, wall=wall)
    round_trip(spec_store, ctl, fleet, now=wall.t)
    ctl.cycle()  # liveness counts from when the controller accepted the last snapshot
    victim = next(
        a for a in fleet if a.desired and a.desired.service == "web" and a.desired.mode == "active"
    )
    wall.t += 31  # heartbeat timeout is 30s in the test spec
    for a in fleet:
        if a is not victim:
            a.report(now=wall.t)
    ctl.cycle()
    docs = {a.machine: open_doc(spec_store, a.machine) for a in fleet}
    web = [m for m, d in docs.items() if d.service == "web" and d.mode == "active"]
    assert victim.machine not in web and len(web) == 2
    lb = next(d for d in docs.values() if d.service == "lb" and d.mode == "active")
    assert victim.machine not in [p.machine for p in lb.peers.backends]


def test_losing_memory_recovers_generations_from_desired(spec_store: Recording) -> None:
    """control/memory.json deleted: generations continue from the documents, none reused."""
    log = DesiredLog(spec_store)
    fleet = agents(spec_store)
    ctl = controller(spec_store)
    round_trip(spec_store, ctl, fleet)
    before = {a.machine: open_doc(spec_store, a.machine) for a in fleet}
    spec_store.inner.delete(MEMORY)
    fresh = controller(spec_store)  # a restarted process: same name, new token
    report = fresh.cycle()
    assert report.recovered_memory
    assert [k for k in report.written if k.startswith("desired/")] == []  # same content: no rewrite
    got = spec_store.inner.get(MEMORY)
    assert isinstance(got, StoredObject)
    memory = Memory.from_json(got.body)
    for m, doc in before.items():
        assert memory.machines[m].generation == doc.generation
    fleet[0].eligible = ("web",)  # a change forces new documents
    round_trip(spec_store, fresh, fleet, n=2)
    log.assert_no_generation_reused()


def test_a_crash_mid_cycle_converges_without_reusing_generations(spec_store: Recording) -> None:
    """A controller dying after some desired writes: the next cycle converges, no generation reused."""
    log = DesiredLog(spec_store)
    fleet = agents(spec_store)
    for a in fleet:
        a.report()
    writes: list[str] = []

    def crash_on_second_desired(op: str, key: str, kw: dict[str, Any]) -> None:
        if op == "PUT" and key.startswith("desired/"):
            writes.append(key)
            if len(writes) == 2:
                raise KeyboardInterrupt("crash")

    spec_store.faults.append(crash_on_second_desired)
    with pytest.raises(KeyboardInterrupt):
        controller(spec_store, holder="ctl-a").cycle()
    spec_store.faults.clear()
    ctl = controller(spec_store, holder="ctl-a")  # restarted process
    round_trip(spec_store, ctl, fleet, n=5)
    assert all(a.desired is not None for a in fleet)
    ctl.cycle()
    spec_store.reset()
    ctl.cycle()
    assert spec_store.puts() == [LEASE]
    log.assert_no_generation_reused()


def test_two_controllers_only_the_holder_writes(spec_store: Recording) -> None:
    """Two controllers cycling at once: the follower writes nothing but reads the lease."""
    fleet = agents(spec_store)
    a, b = controller(spec_store, "a"), controller(spec_store, "b")
    for _ in range(3):
        ra = a.cycle()
        spec_store.reset()
        rb = b.cycle()
        assert ra.lease.acting and not rb.lease.acting
        assert spec_store.puts() == []
        for ag in fleet:
            ag.pull()
            ag.report()


def test_no_desired_write_after_the_renew_deadline(spec_store: Recording) -> None:
    """Publishing stops when the renew deadline passes mid-cycle without a successful renew
    (every lease renewal is lost here) (docs/security.md#stop-on-lease-loss)."""
    clock = Clock()
    for a in agents(spec_store):
        a.report()
    ctl = controller(spec_store, clock=clock)
    ctl.publish_threads = 1  # one write at a time: the deadline falls between two writes
    seen: list[str] = []

    def slow_store(op: str, key: str, kw: dict[str, Any]) -> None:
        if op == "PUT" and key.startswith("desired/"):
            seen.append(key)
            clock.t += 15  # each write takes long: the second one crosses the deadline
        if op == "PUT" and key == LEASE and LEASE in spec_store.puts()[:-1]:
            raise StoreUnavailable("lease renewal lost")  # renewals fail: outcome unknown

    spec_store.faults.append(slow_store)
    report = ctl.cycle()
    assert len(seen) == 2
    assert len(report.failed) == 2 and "lease renew deadline" in report.note
    assert not any(k.startswith(("status/", "control/m", "events/")) for k in spec_store.puts())


def test_desired_writes_are_fenced_and_conflicts_replan_next_cycle(spec_store: Recording) -> None:
    """If-Match on the last ETag, fence = token, generation + 1; a conflict is not retried in place (docs/security.md#fenced-writes)."""
    log = DesiredLog(spec_store)
    fleet = agents(spec_store)
    ctl = controller(spec_store)
    firsts: list[dict[str, Any]] = []
    spec_store.faults.append(
        lambda op, key, kw: (
            firsts.append(kw) if key.startswith("desired/") and op == "PUT" else None
        )
    )
    round_trip(spec_store, ctl, fleet)
    spec_store.faults.clear()
    # a machine's first document is create-only: If-None-Match: *, never unconditional
    assert firsts and firsts[0].get("if_none_match") == "*", firsts[:1]
    assert all(kw.get("if_none_match") == "*" or kw.get("if_match") for kw in firsts), firsts
    doc = open_doc(spec_store, "web-1")
    assert doc.fence == ctl.lease.token
    fleet[1].eligible = ("lb",)
    fleet[1].report()
    spec_store.reset()
    calls: list[dict[str, Any]] = []

    def race(op: str, key: str, kw: dict[str, Any]) -> None:
        if key == desired_key("web-1") and op == "PUT":
            calls.append(kw)
            if len(calls) == 1:  # changed behind our back, between our read and our write
                spec_store.inner.put(desired_key("web-1"), b'{"someone": "else"}')

    spec_store.faults.append(race)
    first = ctl.cycle()
    assert "web-1" in first.failed  # the planner wanted a new document: exactly one attempt
    assert spec_store.puts().count(desired_key("web-1")) == 1
    assert calls[0].get("if_match")
    second = ctl.cycle()
    assert "web-1" not in second.failed
    new = open_doc(spec_store, "web-1")
    assert new.generation == doc.generation + 1
    log.assert_no_generation_reused()


def test_a_stale_controller_cannot_overwrite_a_newer_one(spec_store: Recording) -> None:
    """A paused leader that wakes after a takeover writes nothing (fencing, docs/security.md#one-leader/18/19)."""
    clock_a, clock_b = Clock(), Clock()
    log = DesiredLog(spec_store)
    fleet = agents(spec_store)
    a = controller(spec_store, "a", clock=clock_a)
    round_trip(spec_store, a, fleet, n=2)
    b = controller(spec_store, "b", clock=clock_b)
    b.cycle()
    clock_a.t += 40  # a is paused...
    clock_b.t += 31  # ...and b sees the lease unchanged for its duration
    rb = b.cycle()
    assert rb.lease.acting and rb.lease.token == 2
    fleet[0].eligible = ("lb",)
    fleet[0].report()
    spec_store.reset()
    ra = a.cycle()  # a wakes up
    assert not ra.lease.acting
    assert [k for k in spec_store.puts() if k != LEASE] == []  # only its failed renew
    b.cycle()
    log.assert_no_generation_reused()


def test_a_cron_successor_reverifies_saved_snapshots_instead_of_refetching(
    spec_store: Recording,
) -> None:
    """`once` keeps accepted snapshots locally: the next process GETs no unchanged report."""
    fleet = agents(spec_store)
    for a in fleet:
        a.report()
    first = controller(spec_store)
    first.cache.keep_raw = True
    first.cycle()
    assert first.cache.dirty and len(first.cache.raw) == 4
    second = controller(spec_store)  # the next cron run, restored from the state directory
    second.cache.keep_raw = True
    second.cache.raw = dict(first.cache.raw)
    second.cache.raw["web-3"] = (second.cache.raw["web-3"][0], b"damaged on disk")
    spec_store.reset()
    report = second.cycle()
    gets = [k for op, k in spec_store.calls if op == "GET" and k.startswith("reports/")]
    assert gets == ["reports/web-3.json"]  # the damaged local copy is re-fetched, not trusted
    assert report.rejected == 0 and report.plan is not None
    assert len(report.plan.status.machines) == 4


def test_after_revoke_the_document_is_resigned_at_the_new_epoch(spec_store: Recording) -> None:
    """bosun revoke: the next cycle re-signs the machine's document with its new key."""
    from controller.shell.key_epochs import bump_epoch

    fleet = agents(spec_store)
    ctl = controller(spec_store)
    round_trip(spec_store, ctl, fleet)
    before = open_doc(spec_store, "web-2")
    assert bump_epoch(spec_store.inner, MASTER, "web-2") == 1
    spec_store.reset()
    ctl.cycle()
    assert spec_store.puts().count(desired_key("web-2")) == 1
    got = spec_store.inner.get(desired_key("web-2"))
    assert isinstance(got, StoredObject)
    new_key = derive_machine_key(MASTER, "web-2", 1)
    _env, doc = open_desired(
        got.body, desired_key("web-2"), lambda k: new_key if k == "web-2@1" else None
    )
    assert doc.generation == before.generation + 1
    assert content_digest(doc) == content_digest(before)
    spec_store.reset()
    ctl.cycle()
    assert desired_key("web-2") not in spec_store.puts()  # once only


def test_no_key_material_reaches_the_bucket_or_the_logs(
    spec_store: Recording, caplog: pytest.LogCaptureFixture
) -> None:
    """The master key and derived machine keys never appear in any object or log line."""
    import base64
    import logging

    caplog.set_level(logging.DEBUG)
    fleet = agents(spec_store)
    ctl = controller(spec_store)
    round_trip(spec_store, ctl, fleet)
    spec_store.inner.put("reports/web-1.json", b"garbage")
    ctl.cycle()
    secrets = [MASTER] + [derive_machine_key(MASTER, a.machine, 0) for a in fleet]
    forms = [
        f
        for k in secrets
        for f in (
            k,
            k.hex().encode(),
            base64.b64encode(k).rstrip(b"="),
            base64.urlsafe_b64encode(k).rstrip(b"="),
        )
    ]
    root = spec_store.inner.root
    files = [p for p in root.rglob("*") if p.is_file()]
    assert len(files) > 10
    for path in files:
        data = path.read_bytes()
        assert not any(f in data for f in forms), path
    logs = caplog.text.encode()
    assert not any(f in logs for f in forms)


def test_a_desired_document_over_the_cap_is_not_written_and_says_why(store: Recording) -> None:
    """A config too big for the 256 KiB cap agents enforce is reported, never written."""
    import time

    from controller.spec.load import load_yaml
    from controller.spec.revisions import apply

    big = ", ".join(f'"{i}": "{"x" * 60_000}"' for i in range(5))
    spec = SPEC_YAML.replace('    version: "1.0"', f'    version: "1.0"\n    config: {{{big}}}', 1)
    apply(store.inner, load_yaml(spec), now=time.time())
    fleet = agents(store)
    ctl = controller(store)
    ctl.cycle()
    for a in fleet:
        a.report()
    store.reset()
    report = ctl.cycle()
    too_big = {m: why for m, why in report.failed.items() if "over the 262144-byte cap" in why}
    assert len(too_big) == 2  # the two web machines; the load balancer's document is fine
    assert not [k for k in store.puts() if k in {desired_key(m) for m in too_big}]


def test_a_long_cycle_renews_its_lease_and_finishes(spec_store: Recording) -> None:
    """Writes that take longer than the renew deadline in total: the lease is renewed during
    the cycle, every document is written and the memory is saved."""
    clock = Clock()
    for a in agents(spec_store):
        a.report()
    ctl = controller(spec_store, clock=clock)
    ctl.publish_threads = 1

    def slow_store(op: str, key: str, kw: dict[str, Any]) -> None:
        if op == "PUT" and key.startswith("desired/"):
            clock.t += 15

    spec_store.faults.append(slow_store)
    report = ctl.cycle()
    assert not report.failed and len([k for k in report.written if k.startswith("desired/")]) == 4
    assert spec_store.puts().count(LEASE) >= 3 and MEMORY in spec_store.puts()
