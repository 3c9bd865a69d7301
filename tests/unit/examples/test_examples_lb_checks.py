"""The example balancer's health checks and the report the agent's backends probe reads."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

from agent.probes import backends_from
from examples.lb.checks import Checks
from examples.lb.peers import parse_peers


def test_fall_failures_make_a_peer_failing_since_the_first_and_one_success_clears(
    tmp_path: Path,
) -> None:
    report = tmp_path / "backends.json"
    c = Checks(fall=2, report_file=report)
    c.track(["w1", "w2"])
    c.observe("w1", False, 100.0)
    assert c.failing_since("w1") is None  # one failure is not yet failing
    c.observe("w1", False, 101.0)
    c.write()
    assert c.failing_since("w1") == 100.0
    doc = json.loads(report.read_text())
    assert doc["backends"]["w1"] == {"reachable": False, "failures": 2, "failing_since": 100.0}
    assert doc["backends"]["w2"]["reachable"] is True
    # what the agent keeps of it: the failing peers it was given
    assert set(backends_from(doc, None, ["w1", "w2"])) == {"w1"}
    c.observe("w1", True)
    assert c.failing_since("w1") is None
    c.track(["w2"])  # the peers file changed: w1 is no longer reported
    assert list(json.loads(report.read_text())["backends"]) == ["w2"]


def test_tcp_checks_tell_a_listening_peer_from_a_dead_one() -> None:
    with socket.socket() as up, socket.socket() as gone:
        up.bind(("127.0.0.1", 0))
        up.listen()
        gone.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        c = Checks(fall=1, timeout=1.0)
        c.track(["up", "gone"])
        targets = [
            ("up", "127.0.0.1", up.getsockname()[1]),
            ("gone", "127.0.0.1", gone.getsockname()[1]),
        ]
        asyncio.run(c.check(targets))
    assert c.failing_since("up") is None and c.failing_since("gone") is not None


def test_evicted_peers_are_parsed_and_never_routed() -> None:
    raw = b'{"backends": [{"machine": "w1", "address": "a", "port": 1}], "evicted": [{"machine": "w2", "address": "b", "port": 2}]}'
    peers = parse_peers(raw)
    assert [t.machine for t in peers.backends] == ["w1"]
    assert [t.machine for t in peers.evicted] == ["w2"]
