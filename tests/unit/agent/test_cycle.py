"""The cycle: request economy, snapshot change detection, seq, reporting."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any

from agent.cycle import fingerprint
from tests.unit.agent.kit import CountingStore, Machine, desired, make_agent, publish, report
from wire.documents import ServiceState, Snapshot
from wire.errors import StoreAccessDenied
from wire.layout import desired_key, report_key
from wire.store import DirectoryStore


def test_steady_state_cycle_is_exactly_one_304(
    machine: Machine, bucket, counting: CountingStore
) -> None:
    """A cycle in which nothing changed makes exactly one request: a conditional GET answered 304."""
    publish(bucket, desired(generation=1))
    agent = make_agent(machine, counting)
    agent.cycle()
    agent.cycle()
    counting.reset()
    for _ in range(3):
        assert agent.cycle().ok
    assert (
        counting.calls == [("GET", desired_key("web-1"), counting.calls[0][2], "NotModified")] * 3
    )
    assert counting.calls[0][2] is not None


def test_put_on_change_and_on_heartbeat_only(
    machine: Machine, bucket, counting: CountingStore
) -> None:
    """The snapshot is PUT when it changed or the heartbeat interval passed, never otherwise."""
    agent = make_agent(machine, counting)
    agent.cycle()  # first report
    counting.reset()
    agent.cycle()
    assert [c[0] for c in counting.calls] == ["GET"]
    publish(bucket, desired(generation=1))
    counting.reset()
    agent.cycle()
    assert [c[0] for c in counting.calls] == ["GET", "PUT"]
    counting.reset()
    agent.dir.save(replace(agent.state, last_put_at=time.time() - 301))  # heartbeat is 5m
    agent.cycle()
    assert [c[0] for c in counting.calls] == ["GET", "PUT"]
    assert counting.calls[1][1] == report_key("web-1")


def test_seq_strictly_increases_across_restarts_and_clock_steps(machine: Machine, bucket) -> None:
    """seq = max(last + 1, unix ms) and is persisted: a restart with the clock behind still increases it."""
    agent = make_agent(machine)
    agent.cycle()
    first = report(bucket).seq
    assert abs(first - time.time() * 1000) < 60_000
    future = first + 10_000_000  # as if the clock had been far ahead before
    state = json.loads((machine.state_dir / "state.json").read_text())
    state["seq"] = future
    state["last_put_at"] = 0
    (machine.state_dir / "state.json").write_text(json.dumps(state))
    make_agent(machine).cycle()
    assert report(bucket).seq == future + 1


def test_fingerprint_ignores_liveness_and_counters() -> None:
    """Load, seq, sent_at and cumulative counters do not count as a change; health and sessions>0 do."""
    base = Snapshot(
        machine="web-1",
        seq=1,
        sent_at=1.0,
        boot_id="b",
        agent_version="v",
        load={"load1": 0.1},
        sessions={"voice": 3},
        services={"web": ServiceState(requests=10, health="healthy")},
    )
    busy = replace(
        base,
        seq=2,
        sent_at=2.0,
        load={"load1": 3.0},
        sessions={"voice": 9},
        services={"web": ServiceState(requests=99, errors=1, latency_ms=4.0, health="healthy")},
    )
    assert fingerprint(base) == fingerprint(busy)
    assert fingerprint(base) != fingerprint(replace(base, sessions={"voice": 0}))
    assert fingerprint(base) != fingerprint(
        replace(base, services={"web": ServiceState(health="unhealthy")})
    )


def test_report_carries_machine_facts(machine: Machine, bucket) -> None:
    """The snapshot has addresses, capacity, load, eligible services and the applied document."""
    publish(bucket, desired(generation=4))
    make_agent(machine).cycle()
    snap = report(bucket)
    assert snap.addresses.internal == "10.0.0.5"
    assert snap.capacity == {"cpu": 2.0, "sessions": 100.0}
    assert snap.load["cpus"] >= 1
    assert snap.eligible == ("web",)
    assert (snap.applied.generation, snap.applied.result) == (4, "ok")
    assert snap.services["web"].version == "1.0" and snap.services["web"].port == 8080
    assert snap.heartbeat_interval == 300.0  # the controller's liveness and the scaler use it


def test_store_unreachable_keeps_last_known_good(machine: Machine, bucket, tmp_path) -> None:
    """With the bucket unreachable the applied state is kept and the failure is an error, not a teardown."""
    publish(bucket, desired(generation=1))
    agent = make_agent(machine)
    agent.cycle()
    out = tmp_path / "out" / "web.json"
    content = out.read_bytes()

    class Down(CountingStore):
        def get(self, key: str, **kw: object) -> object:
            from wire.errors import StoreUnavailable

            raise StoreUnavailable("GET: connection refused")

        def put(self, key: str, body: bytes, **kw: object) -> str:
            from wire.errors import StoreUnavailable

            raise StoreUnavailable("PUT: connection refused")

    agent.store = Down(bucket)
    result = agent.cycle()
    assert result.store_down and not result.ok
    assert out.read_bytes() == content
    assert agent.state.applied.generation == 1
    agent.store = bucket
    publish(bucket, desired(generation=2, config={"back": True}))
    assert agent.cycle().ok
    assert json.loads(out.read_text()) == {"back": True}


class DeniedDesired(CountingStore):
    """A store answering 403 on GET, as S3 does for a missing object without s3:ListBucket."""

    def get(
        self, key: str, *, if_none_match: str | None = None, max_bytes: int = 256 * 1024
    ) -> Any:
        raise StoreAccessDenied(f"GET {self.describe(key)}: access denied (AccessDenied)")


def test_403_on_own_desired_is_reported_as_missing_or_denied(
    machine: Machine, bucket: DirectoryStore
) -> None:
    """A new machine under the least-privilege policy sees 403: it still reports, explains, keeps the store 'up'."""
    result = make_agent(machine, DeniedDesired(bucket)).cycle()
    assert not result.store_down and result.put
    assert any("has not written desired/web-1.json yet" in e for e in result.errors)
    assert report(bucket).applied.generation == 0


def test_check_on_a_new_machine_under_the_agent_policy_passes(
    machine: Machine, bucket: DirectoryStore, capsys: Any
) -> None:
    """`bosun-agent check` on a new machine: S3 answers 403 for its missing desired document
    (no s3:ListBucket), which is "no document yet", not a failure; the write probes run."""
    from agent.check import run_check

    agent = make_agent(machine, DeniedDesired(bucket))
    code = run_check(agent.cfg, agent)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "taken as no desired document yet" in out and "FAIL" not in out, out
    assert report(bucket).machine == "web-1"  # the signed snapshot probe was written


def test_a_lasting_supervision_failure_is_logged_once_then_its_recovery(
    machine: Machine, caplog: Any
) -> None:
    """The daemon ticks the supervisor every second: a failure that lasts (a secret the new
    key cannot open, say) is one error line until it changes, then one line when it ends."""
    from agent.drivers import ApplyError

    agent = make_agent(machine)
    answers: list[str | None] = ["no key for secret db", "no key for secret db", "no key for secret db",
                                 "port 8080 in use", None, None]  # fmt: skip

    class Supervisor:
        def supervise(self, doc: object, now: float) -> None:
            answer = answers.pop(0)
            if answer is not None:
                raise ApplyError(answer)

    agent.applier = Supervisor()
    with caplog.at_level("INFO", logger="agent.cycle"):
        for _ in range(6):
            agent.supervise_tick()
    lines = [r.getMessage() for r in caplog.records if r.name == "agent.cycle"]
    assert [line.split(" error=")[0] for line in lines] == [
        "supervise.failed", "supervise.failed", "supervise.recovered after"
    ]  # fmt: skip
    assert "no key for secret db" in lines[0] and "port 8080 in use" in lines[1]
