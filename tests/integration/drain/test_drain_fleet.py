"""Real agents and controller: a version change waits for a machine's calls."""

from __future__ import annotations

import time

from tests.integration.drain.conftest import Fleet

# the module shares one fleet; the tests run in file order (version 1.0 -> 2.0 -> 3.0)


def test_a_version_change_waits_for_the_calls_to_end(drain_fleet: Fleet) -> None:
    """web-1 carries a call: it drains on 1.0 (out of the LB peers, process untouched) while
    web-2 switches; closing the call lets web-1 switch, with no session cut."""
    f = drain_fleet
    opened = f.app("web-1", "POST", "/sessions/open?channel=voice")
    assert opened.get("id"), f"could not open a call on web-1: {opened}"
    f.wait("web-1's app counts the call", lambda: _calls(f.app("web-1")) == 1)
    f.wait("the controller sees web-1's call", lambda: _reported(f, "web-1", 1), 20)
    since = time.time()
    f.apply("2.0", drain_timeout=60)
    f.wait("web-1 draining", lambda: f.desired("web-1").get("mode") == "draining", 20)
    doc = f.desired("web-1")
    drain = doc["drain"]
    assert doc["version"] == "1.0" and seconds(drain["deadline"]) - seconds(drain["since"]) == 60
    f.wait("web-2 on 2.0", lambda: f.app("web-2").get("version") == "2.0", 30)
    f.wait("the LB drops web-1", lambda: "web-1" not in f.backends(), 10)
    for _ in range(20):  # 2 s: web-1 keeps its process, version and call
        m = f.app("web-1")
        assert m.get("version") == "1.0" and _calls(m) == 1, m
        time.sleep(0.1)
    f.app("web-1", "POST", f"/sessions/close?id={opened['id']}")
    f.wait("web-1 on 2.0 after its call ended", lambda: f.app("web-1").get("version") == "2.0", 30)
    drained = f.wait("machine.drained", lambda: f.events(since, "machine.drained"), 10)
    assert drained[0]["machine"] == "web-1" and drained[0]["data"]["sessions_cut"] == 0
    assert not f.events(since, "machine.drain_timeout")
    f.wait("both back in the LB", lambda: f.backends() == {"web-1", "web-2"}, 20)


def test_a_call_is_not_cut_before_the_drain_timeout(drain_fleet: Fleet) -> None:
    """A call that does not end keeps its machine on the old version until exactly the
    drain timeout, then the change is applied and the event counts one session cut."""
    f = drain_fleet
    opened = f.app("web-2", "POST", "/sessions/open?channel=voice")
    assert opened.get("id")
    f.wait("the controller sees web-2's call", lambda: _reported(f, "web-2", 1), 20)
    since = time.time()
    f.apply("3.0", drain_timeout=6)
    f.wait("web-2 draining", lambda: f.desired("web-2").get("mode") == "draining", 20)
    deadline = seconds(f.desired("web-2")["drain"]["deadline"])
    while time.time() < deadline - 0.2:  # the call stays up on 2.0 until the deadline
        m = f.app("web-2")
        assert m.get("version") == "2.0" and _calls(m) == 1, (
            f"web-2 changed {deadline - time.time():.1f}s before its drain deadline: {m}"
        )
        time.sleep(0.1)
    cut = f.wait("machine.drain_timeout", lambda: f.events(since, "machine.drain_timeout"), 15)
    assert cut[0]["machine"] == "web-2" and cut[0]["data"]["sessions_cut"] == 1
    assert float(cut[0]["t"]) >= round(deadline, 3) - 0.001  # event times are rounded to ms
    f.wait("web-2 on 3.0", lambda: f.app("web-2").get("version") == "3.0", 30)


def _calls(metrics: dict[str, object]) -> int:
    sessions = metrics.get("sessions")
    return sum(sessions.values()) if isinstance(sessions, dict) else -1


def _reported(f: Fleet, machine: str, sessions: int) -> bool:
    """The machine's last report (as the controller reads it) carries `sessions` calls."""
    from wire.documents import parse_envelope
    from wire.layout import report_key
    from wire.store import StoredObject

    got = f.store.get(report_key(machine))
    if not isinstance(got, StoredObject):
        return False
    counts = parse_envelope(got.body).body.get("sessions", {})
    return isinstance(counts, dict) and sum(counts.values()) == sessions


def seconds(value: object) -> float:
    """A time of a bucket document (ISO 8601 UTC) in Unix seconds."""
    from wire.times import parse_time

    return parse_time(value, "test")
