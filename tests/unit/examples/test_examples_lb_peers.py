"""The example load balancer's peers file decoding and smooth weighted round robin."""

from __future__ import annotations

import itertools
import json
from collections import Counter

import pytest

from examples.lb.peers import Peers, SmoothWeighted, Target, parse_peers


def test_parses_the_agent_peers_document_ignoring_extra_keys() -> None:
    """Backends and mirror targets decode; weight defaults to 100; mode/service are ignored."""
    raw = json.dumps(
        {
            "service": "web",
            "backends": [
                {
                    "machine": "web-1",
                    "address": "10.0.0.1",
                    "port": 80,
                    "weight": 5,
                    "mode": "canary",
                },
                {"address": "10.0.0.2", "port": 81},
            ],
            "mirror": [{"machine": "web-3", "address": "::1", "port": 82}],
        }
    ).encode()
    peers = parse_peers(raw)
    assert peers.backends == (
        Target("web-1", "10.0.0.1", 80, 5),
        Target("10.0.0.2:81", "10.0.0.2", 81),
    )
    assert peers.mirror[0].url == "http://[::1]:82"
    assert parse_peers(b"{}") == Peers()


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("not json", "not valid JSON"),
        ("[]", "expected an object"),
        ('{"backends": {}}', "backends must be a list"),
        ('{"backends": [1]}', r"backends\[0\] must be an object"),
        ('{"backends": [{"port": 80}]}', r"backends\[0\].address must be"),
        ('{"mirror": [{"address": "a", "port": 0}]}', r"mirror\[0\].port must be a port number"),
        ('{"backends": [{"address": "a", "port": 80, "weight": -1}]}', "weight must be a whole"),
        ('{"backends": [{"address": "a", "port": true}]}', "port must be a port number"),
        ('{"backends": [{"address": "a", "port": 1}, {"address": "a", "port": 1}]}', "twice"),
    ],
)
def test_bad_documents_name_the_entry_and_the_problem(doc: str, message: str) -> None:
    """Each malformed peers file is refused with a message naming the entry and the field."""
    with pytest.raises(ValueError, match=message):
        parse_peers(doc.encode(), source="peers.json")


def targets(**weights: int) -> list[Target]:
    return [Target(name, "127.0.0.1", 8000 + i, w) for i, (name, w) in enumerate(weights.items())]


def test_smooth_weighted_round_robin_gives_exact_shares_per_round() -> None:
    """Weights 100 and 5 give exactly 5 of every 105 picks to the light one, spread out."""
    rr = SmoothWeighted(targets(v1=100, canary=5))
    picks = [rr.pick() for _ in range(210)]
    counts = Counter(t.machine for t in picks if t)
    assert counts == {"v1": 200, "canary": 10}
    canary_at = [i for i, t in enumerate(picks) if t and t.machine == "canary"]
    assert min(b - a for a, b in itertools.pairwise(canary_at)) >= 20  # no bursts


def test_zero_weight_and_excluded_backends_are_never_picked() -> None:
    """Weight 0 takes no traffic; excluded machines are skipped; none left gives None."""
    rr = SmoothWeighted(targets(a=3, b=1, drained=0))
    assert {t.machine for t in (rr.pick() for _ in range(40)) if t} == {"a", "b"}
    assert {t.machine for t in (rr.pick(frozenset({"a"})) for _ in range(5)) if t} == {"b"}
    assert rr.pick(frozenset({"a", "b"})) is None
    assert SmoothWeighted(targets(drained=0)).pick() is None


def test_a_peer_without_port_takes_the_default_port_or_is_refused() -> None:
    """port null (the spec gave none) uses --default-port; without one the message says so."""
    raw = b'{"backends": [{"machine": "w", "address": "10.0.0.9", "port": null}]}'
    assert parse_peers(raw, default_port=8080).backends == (Target("w", "10.0.0.9", 8080),)
    with pytest.raises(ValueError, match=r"backends\[0\].port is missing.*--default-port"):
        parse_peers(raw)
