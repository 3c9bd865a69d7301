"""Store outages in the middle of a controller cycle and of an agent's apply: the cycle
ends in bounded time, the next cycles converge, nothing accepted is lost and no
generation goes backwards or is reused."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from agent.cycle import CycleResult
from controller.shell.cycle import Controller
from tests.faults.kit import (
    OnRequest,
    Watcher,
    agents,
    assert_converged,
    controller,
    memory,
    open_doc,
    round_trip,
    start_spec,
    via,
)
from tests.support.faultproxy import FaultProxy
from tests.unit.agent.kit import Machine, make_agent
from tests.unit.agent.kit import report as agent_report
from tests.unit.controller.sim import SimAgent
from wire.errors import BosunError
from wire.layout import STATUS_CLUSTER
from wire.store import StoredObject, open_agent_store
from wire.store.s3 import S3Store


def cycle_quietly(ctl: Controller) -> str:
    """One cycle; what went wrong as text: the store error that ended it (the daemon logs
    it and goes on) or the writes it reported as failed; empty when all went well."""
    try:
        report = ctl.cycle()
    except BosunError as exc:
        return str(exc)
    return "; ".join(f"{k}: {v}" for k, v in report.failed.items())


def test_outage_after_the_first_desired_write_converges_without_loss(
    direct: S3Store, proxy: FaultProxy
) -> None:
    """The store vanishes just before the controller's first desired PUT: the cycle fails
    fast, memory is not saved, and once the store is back the fleet converges with every
    generation and fence monotonic and none reused."""
    start_spec(direct)
    fleet = agents(direct)
    for a in fleet:
        a.report()
    store = via(direct, proxy.endpoint)
    ctl = controller(store)
    hook = OnRequest(store, "PutObject", "/desired/", lambda: proxy.outage(3.0))
    with Watcher(direct) as watcher:
        t0 = time.monotonic()
        error = cycle_quietly(ctl)
        took = time.monotonic() - t0
        assert hook.fired.is_set(), "the cycle never reached a desired write"
        assert took < 15, f"a cycle during an outage took {took:.1f}s"
        assert error, "a cycle cut by an outage reported nothing wrong"
        assert memory(direct) is None, "memory saved although the cycle was cut off"
        time.sleep(max(0.0, 3.2 - (time.monotonic() - t0)))
        proxy.heal()
        round_trip(ctl, fleet, rounds=4)
    assert_converged(direct, fleet)
    assert not watcher.violations, watcher.violations


def converge(ctl: Controller, fleet: list[SimAgent], version: str, rounds: int = 12) -> None:
    for _ in range(rounds):
        round_trip(ctl, fleet, rounds=1)
        try:
            assert_converged(ctl.store, fleet, version=version)
            return
        except AssertionError:
            continue
    assert_converged(ctl.store, fleet, version=version)


def test_outage_in_the_save_phase_keeps_the_desired_documents_consistent(
    direct: S3Store, proxy: FaultProxy
) -> None:
    """An outage when the controller saves its memory (after the desired writes): the next
    cycles converge, and a later change of every document writes generations above the
    ones the cut cycle wrote (none reused with another content)."""
    start_spec(direct)
    fleet = agents(direct)
    store = via(direct, proxy.endpoint)
    ctl = controller(store)
    round_trip(ctl, fleet, rounds=3)
    assert_converged(direct, fleet)
    before = {a.machine: open_doc(direct, a.machine) for a in fleet}
    start_spec(direct, "1.1")
    OnRequest(store, "PutObject", "control/memory.json", lambda: proxy.outage(2.0))
    with Watcher(direct, every=0.05) as watcher:
        cycle_quietly(ctl)
        time.sleep(2.2)
        proxy.heal()
        converge(ctl, fleet, "1.1")
        start_spec(direct, "1.1", lb_version="2.1")
        converge(ctl, fleet, "1.1")
    assert not watcher.violations, watcher.violations
    for a in fleet:
        old, new = before[a.machine], open_doc(direct, a.machine)
        assert old is not None and new is not None
        assert new[0].generation >= old[0].generation


def test_outage_during_an_agent_apply_loses_no_report(
    direct: S3Store, proxy: FaultProxy, tmp_path: Path
) -> None:
    """The store goes down while the agent runs its install hook: the apply completes
    locally, the report PUT fails and the cycle ends in bounded time; after the outage the
    next cycle reports the applied generation and the controller takes it in."""
    start_spec(direct, heartbeat="1h")
    marker = tmp_path / "installing"
    hook = f"touch {marker}; sleep 1.5"
    m = Machine(
        tmp_path / "web-1",
        via(direct, proxy.endpoint).url,
        name="m-0",
        services={
            "web": {"port": 8080, "commands": {"install": hook}, "health": {"command": "true"}},
            "lb": {"port": 80, "commands": {"install": hook}, "health": {"command": "true"}},
        },
    )
    m.write()
    # the agent's store (the one S3 client) through the proxy, with the suite's credentials
    from tests.support.servers import ACCESS_KEY, SECRET_KEY

    env = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    agent_store = open_agent_store(via(direct, proxy.endpoint).url, env=env)
    agent = make_agent(m, agent_store)
    agent.deadline = 5.0
    others = agents(direct, ["m-1", "m-2"])  # three machines: all active
    ctl = controller(direct)
    for a in others:
        a.report()
    assert agent.cycle().put  # first report: eligible for web and lb
    ctl.cycle()
    doc = open_doc(direct, "m-0")
    assert doc is not None
    result: list[CycleResult] = []
    worker = threading.Thread(target=lambda: result.append(agent.cycle()))
    t0 = time.monotonic()
    worker.start()
    deadline = time.monotonic() + 10
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert marker.exists(), "the install hook never ran"
    proxy.outage(4.0)
    worker.join(timeout=30)
    assert not worker.is_alive(), "the agent cycle hung during the outage"
    took = time.monotonic() - t0
    assert took < 15, f"agent cycle took {took:.1f}s during an outage"
    cycle = result[0]
    assert cycle.put is False and not cycle.ok
    assert agent.state.applied.generation == doc[0].generation  # applied locally anyway
    before = agent_report(direct, "m-0")
    assert before.applied.generation != doc[0].generation  # the report did not get out
    time.sleep(max(0.0, 4.2 - (time.monotonic() - t0)))
    proxy.heal()
    assert agent.cycle().put
    after = agent_report(direct, "m-0")
    assert after.applied.generation == doc[0].generation and after.applied.result == "ok"
    ctl.cycle()
    got = direct.get(STATUS_CLUSTER)
    assert isinstance(got, StoredObject)
    assert b'"m-0"' in got.body


@pytest.mark.heavy
def test_repeated_503_bursts_and_drops_still_converge(direct: S3Store, proxy: FaultProxy) -> None:
    """Heavy: 503 bursts, dropped connections and truncated answers sprinkled over many
    cycles; the fleet still converges and no generation goes backwards."""
    start_spec(direct)
    fleet = agents(direct)
    store = via(direct, proxy.endpoint, attempts=3)
    ctl = controller(store)
    with Watcher(direct) as watcher:
        for i in range(20):
            [
                lambda: proxy.fail_next(3),
                lambda: proxy.drop_next(2),
                lambda: proxy.truncate_next(1, 50),
            ][i % 3]()
            cycle_quietly(ctl)
            for a in fleet:
                a.pull()
                a.report()
        proxy.heal()
        round_trip(ctl, fleet, rounds=3)
    assert_converged(direct, fleet)
    assert not watcher.violations, watcher.violations


def test_truncated_put_answer_is_a_store_error(direct: S3Store, proxy: FaultProxy) -> None:
    """A PUT whose answer is cut after 50 bytes (inside the headers) fails with a StoreError
    saying the outcome is unknown, never with another exception."""
    store = via(direct, proxy.endpoint, attempts=1)
    proxy.truncate_next(1, 50)
    with pytest.raises(BosunError):
        store.put("control/probe.json", b"{}")
