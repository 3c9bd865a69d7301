"""A balancer's `backends` probe: what it observes of its peers lands in the snapshot."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from agent.probes import backends_from
from tests.unit.agent.kit import Machine, desired, make_agent, peers, publish, report
from wire.documents import BackendState, Desired, Peer
from wire.layout import report_key
from wire.store import DirectoryStore
from wire.store.base import StoredObject


def _lb(tmp_path: Path, bucket: DirectoryStore, probe: bool = True) -> tuple[Machine, Path]:
    observed = tmp_path / "backends.json"
    lb: dict[str, object] = {"port": 8100}
    if probe:
        lb["backends"] = {"file": str(observed)}
    return Machine(tmp_path / "m", bucket.url, services={"lb": lb}).write(), observed


def _doc(generation: int = 1) -> Desired:
    p = peers(("w1", "10.0.0.1", 80, 100), ("w2", "10.0.0.2", 80, 100))
    p = replace(p, evicted=(Peer("w3", "10.0.0.3", 80, 100),))
    return desired(generation=generation, service="lb", peers=p)


def test_the_failing_peers_land_in_the_snapshot(tmp_path: Path, bucket: DirectoryStore) -> None:
    m, observed = _lb(tmp_path, bucket)
    observed.write_text(
        json.dumps(
            {
                "backends": {
                    "w1": {"reachable": False, "failures": 4, "failing_since": 1700000000.5},
                    "w2": {"reachable": True, "failures": 0, "failing_since": None},
                    "w3": {"failing_since": 1700000001},  # evicted: still checked
                    "x9": {"failing_since": 1.0},  # not a peer it was given: dropped
                }
            }
        )
    )
    publish(bucket, _doc())
    agent = make_agent(m)
    agent.cycle()
    lb = report(bucket).services["lb"]
    assert lb.backends == {
        "w1": BackendState(failing_since=1700000000.5),
        "w3": BackendState(failing_since=1700000001.0),
    }
    # the balancer reaches w1 again: the change is reported at once (not at the heartbeat)
    observed.write_text(json.dumps({"backends": {"w3": {"failing_since": 1700000001}}}))
    assert agent.cycle().put
    assert set(report(bucket).services["lb"].backends) == {"w3"}
    assert not agent.cycle().put  # unchanged: no PUT


def test_without_the_probe_the_body_has_no_backends_field(
    tmp_path: Path, bucket: DirectoryStore
) -> None:
    """An agent without a backends probe sends what older controllers decode."""
    m, _ = _lb(tmp_path, bucket, probe=False)
    publish(bucket, _doc())
    make_agent(m).cycle()
    got = bucket.get(report_key("web-1"))
    assert isinstance(got, StoredObject)
    body = json.loads(got.body)["body"]
    assert "backends" not in body["services"]["lb"]
    assert report(bucket).services["lb"].backends == {}


def test_hostile_or_broken_answers_report_nothing() -> None:
    given = ["w1", "w2"]
    assert backends_from(None, None, given) == {}
    assert backends_from({"backends": []}, None, given) == {}
    bad = {"w1": {"failing_since": float("nan")}, "w2": {"failing_since": True}}
    assert backends_from({"backends": bad}, None, given) == {}
    assert backends_from({"b": {"w2": {"failing_since": -1}}}, "b", given) == {}
    assert backends_from({"b": {"w2": {"failing_since": 3}}}, "b", given) == {
        "w2": BackendState(3.0)
    }


def test_the_docs_snippet_configures_a_backends_probe() -> None:
    """docs/agent.md#backends: the example parses and sets a file probe."""
    import yaml

    from agent.config import parse_config

    doc = (Path(__file__).resolve().parents[3] / "docs" / "agent.md").read_text()
    section = doc.split("\n## Backends\n", 1)[1]
    snippet = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    raw = {
        "machine": "lb-1",
        "store": "file:///srv/bucket",
        "key_file": "/k",
        **yaml.safe_load(snippet),
    }
    cfg = parse_config(raw)
    probe = cfg.services["lb"].backends
    assert probe is not None and probe.file == "/var/lib/bosun/lb/backends.json"
