"""The store restarted with its data kept, a machine whose clock is off beyond the skew
window, and an agent whose state directory was deleted."""

from __future__ import annotations

import shutil
import time
from dataclasses import replace
from pathlib import Path

import orjson

from devkit.local_s3 import start_seaweedfs
from tests.faults.kit import (
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
from tests.support.fixtures import fresh_bucket
from tests.support.servers import ACCESS_KEY, SECRET_KEY
from tests.unit.agent.kit import Machine, make_agent
from wire.errors import BosunError
from wire.layout import STATUS_CLUSTER, desired_key, report_key
from wire.store import StoredObject, open_agent_store
from wire.store.s3 import S3Store


def listing(store: S3Store) -> dict[str, str]:
    return {i.key: i.etag for i in store.list("")}


def test_store_restarted_with_data_kept_resumes_without_rewrites(tmp_path: Path) -> None:
    """SeaweedFS is stopped (data kept) and started again behind the same proxy: cycles
    during the outage fail in bounded time, afterwards every object is still there, the
    controller takes up where it was (no desired document rewritten) and a spec change
    converges."""
    server = start_seaweedfs(workdir=tmp_path / "weed")
    try:
        with FaultProxy(server.endpoint) as proxy:
            direct = fresh_bucket(server, own_bucket=True)
            store = via(direct, proxy.endpoint)
            start_spec(store)
            fleet = agents(store)
            ctl = controller(store)
            round_trip(ctl, fleet, rounds=3)
            assert_converged(store, fleet)
            before = {k: v for k, v in listing(store).items() if k.startswith("desired/")}
            mem_before = memory(store)
            server.stop(keep_data=True)
            t0 = time.monotonic()
            try:
                ctl.cycle()
                raise AssertionError("a cycle succeeded with the store down")
            except BosunError:
                pass
            assert time.monotonic() - t0 < 15
            server = start_seaweedfs(workdir=tmp_path / "weed")
            host, _, port = server.endpoint.split("://", 1)[1].partition(":")
            proxy.upstream = (host, int(port))
            ctl.cycle()
            after = {k: v for k, v in listing(store).items() if k.startswith("desired/")}
            assert after == before, "desired documents lost or rewritten across the restart"
            assert memory(store) == mem_before
            start_spec(store, "1.1")
            round_trip(ctl, fleet, rounds=4)
            assert_converged(store, fleet, version="1.1")
    finally:
        server.stop()
        shutil.rmtree(tmp_path / "weed", ignore_errors=True)


def test_skewed_clock_beyond_the_window_is_refused_and_reported(direct: S3Store) -> None:
    """A machine whose snapshot says it was sent an hour ahead (window 5 min) is refused,
    counted as clock_skew in status/cluster.json, changes nothing about that machine, and
    is accepted again once its clock is right."""
    start_spec(direct)
    fleet = agents(direct)
    ctl = controller(direct)
    round_trip(ctl, fleet, rounds=3)
    assert_converged(direct, fleet)
    skewed = fleet[1]
    doc_before = open_doc(direct, skewed.machine)
    accepted_before = orjson.loads(_get(direct, STATUS_CLUSTER))["seen"][skewed.machine]
    skewed.report(now=time.time() + 3600)
    ctl.cycle()
    status = orjson.loads(_get(direct, STATUS_CLUSTER))
    rejected = status["rejected"][skewed.machine]
    assert rejected["counts"] == {"clock_skew": 1}, rejected
    assert "skew" in rejected["last"]["detail"] or "sent_at" in rejected["last"]["detail"]
    assert status["seen"][skewed.machine]["seq"] == accepted_before["seq"]
    assert open_doc(direct, skewed.machine) == doc_before
    skewed.report()  # clock fixed: seq is time based and still above the last accepted
    ctl.cycle()
    status = orjson.loads(_get(direct, STATUS_CLUSTER))
    assert status["seen"][skewed.machine]["seq"] == skewed.seq
    assert status["rejected"][skewed.machine]["counts"] == {"clock_skew": 1}


def test_agent_state_dir_deleted_recovers_from_the_bucket_and_refuses_rollback(
    direct: S3Store, tmp_path: Path
) -> None:
    """The agent's state directory is wiped after it applied generation N+1: it recovers the
    current document from the bucket, reports a seq the controller accepts, and a restored
    generation N (an old object version) is refused as a rollback."""
    start_spec(direct)
    env = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    # m-0 is eligible for web only, so the web version change below reaches it (with lb too,
    # the planner may make it the load balancer, whose document does not change)
    services = {"web": {"port": 8080, "health": {"command": "true"}}}
    m = Machine(tmp_path / "m-0", direct.url, name="m-0", services=services).write()
    agent = make_agent(m, open_agent_store(direct.url, env=env))
    others = agents(direct, ["m-1", "m-2"])
    ctl = controller(direct)

    def settle() -> None:
        for _ in range(8):
            round_trip(ctl, others, rounds=1)
            agent.cycle()
            doc = open_doc(direct, "m-0")
            if doc and agent.state.applied.generation == doc[0].generation:
                return
        raise AssertionError("m-0 never settled")

    settle()
    old = direct.get(desired_key("m-0"))
    assert isinstance(old, StoredObject)
    old_doc = open_doc(direct, "m-0")
    assert old_doc is not None and agent.state.applied.generation == old_doc[0].generation
    start_spec(direct, "1.1", lb_version="2.1")  # whatever m-0 runs, its document changes
    settle()
    new_doc = open_doc(direct, "m-0")
    assert new_doc is not None and new_doc[0].generation > old_doc[0].generation
    assert agent.state.applied.generation == new_doc[0].generation
    shutil.rmtree(m.state_dir)
    agent = make_agent(m, open_agent_store(direct.url, env=env))
    result = agent.cycle()
    assert result.ok and result.put
    assert agent.state.applied.generation == new_doc[0].generation
    ctl.cycle()
    status = orjson.loads(_get(direct, STATUS_CLUSTER))
    assert "m-0" not in status.get("rejected", {}), status.get("rejected")
    got = direct.get(report_key("m-0"))
    assert isinstance(got, StoredObject)
    direct.put(desired_key("m-0"), old.body)  # an attacker restores the old version
    result = agent.cycle(force_report=True)
    assert agent.state.applied.generation == new_doc[0].generation
    assert agent.state.refusals.get("rollback") == 1, agent.state.refusals
    assert agent.state.last_refusal is not None
    assert "below the highest applied" in agent.state.last_refusal.detail
    assert replace(agent.state.applied).generation == new_doc[0].generation


def _get(store: S3Store, key: str) -> bytes:
    got = store.get(key, max_bytes=16 * 1024 * 1024)
    assert isinstance(got, StoredObject), key
    return got.body
