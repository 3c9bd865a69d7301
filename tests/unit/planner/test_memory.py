"""Planner memory: strict JSON round trip and recovery from the desired documents."""

from __future__ import annotations

from dataclasses import replace

import pytest

from controller.planner import Memory, content_digest, plan
from tests.unit.planner.harness import observed_from, spec_from
from wire.documents import Desired
from wire.errors import InvalidDocument

SPEC = {
    "services": {
        "router": {"version": "1", "count": 2, "config": {"media": {"$instances": "media"}}},
        "media": {"version": "4", "count": 1},
        "lb": {"kind": "loadbalancer", "balances": "router", "version": "1", "count": 1},
    }
}
MACHINES = {
    "r1": {"eligible": ["router"]},
    "r2": {"eligible": ["router"]},
    "r3": {"eligible": ["router"]},
    "m1": {"eligible": ["media"]},
    "l1": {"eligible": ["lb"]},
}


def converged() -> tuple[Memory, dict[str, Desired], float]:
    spec = spec_from(SPEC, 1)
    memory, now = Memory(), 1000.0
    docs: dict[str, Desired] = {}
    for _ in range(4):
        now += 10
        result = plan(spec, observed_from(MACHINES, memory, now), memory, now, fence=1)
        docs.update({w.machine: w.desired for w in result.writes})
        memory = result.memory
    return memory, docs, now


def test_memory_round_trips_through_json() -> None:
    """to_json/from_json is lossless for a real planner memory."""
    memory, _, _ = converged()
    assert Memory.from_json(memory.to_json()) == memory


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"format": "bosun.memory/9"}', "expected 'bosun.memory/1'"),
        (b'{"format": "bosun.memory/1", "surprise": 1}', "unknown field 'surprise'"),
        (b'{"machines": {"a": {"generation": "7"}}}', "control/memory.json.machines.a.generation"),
        (b"[1]", "expected a JSON object"),
    ],
)
def test_memory_decoding_is_strict(raw: bytes, message: str) -> None:
    """A wrong format tag, unknown field or wrong type in memory.json is refused with its path."""
    with pytest.raises(InvalidDocument, match=message.replace(".", r"\.").replace("(", r"\(")):
        Memory.from_json(raw)


def test_rebuilt_memory_plans_no_writes_and_continues_generations() -> None:
    """After losing memory.json, memory rebuilt from desired/ writes nothing and reuses no generation."""
    memory, docs, now = converged()
    rebuilt = Memory.rebuild(docs.values())
    for m, mm in memory.machines.items():
        assert rebuilt.machines[m].generation == mm.generation
        assert rebuilt.machines[m].digest == mm.digest
        assert (rebuilt.machines[m].service, rebuilt.machines[m].mode) == (mm.service, mm.mode)
    spec = spec_from(SPEC, 1)
    now += 10
    result = plan(spec, observed_from(MACHINES, rebuilt, now), rebuilt, now, fence=2)
    assert result.writes == ()
    assert result.memory.fence == 2


def test_rebuild_keeps_the_highest_generation_per_machine() -> None:
    """When several documents name a machine, rebuild keeps the newest generation and the top fence."""
    _, docs, _ = converged()
    r1 = docs["r1"]
    older = replace(r1, generation=1, fence=9)
    rebuilt = Memory.rebuild([r1, older])
    assert rebuilt.machines["r1"].generation == r1.generation
    assert rebuilt.fence == 9
    assert rebuilt.machines["r1"].digest == content_digest(r1)


def test_memory_lost_during_a_rollout_does_not_push_the_new_version_everywhere() -> None:
    """Rebuilt memory takes each service's majority version as its release, so a pending
    version change under a rollout strategy restarts the rollout instead of switching all."""
    value = {
        "services": {
            "web": {
                "version": "1",
                "count": 3,
                "rollout": {"steps": [{"canary": 1, "bake": "1h"}], "gates": {"min_requests": 5}},
            }
        }
    }
    machines = {f"w{i}": {"eligible": ["web"]} for i in range(1, 5)}
    memory, now, docs = Memory(), 1000.0, {}
    spec = spec_from(value, 1)
    for step in range(4):
        if step == 2:
            value["services"]["web"]["version"] = "2"
            spec = spec_from(value, 2)
        now += 10
        result = plan(spec, observed_from(machines, memory, now), memory, now, fence=1)
        docs.update({w.machine: w.desired for w in result.writes})
        memory = result.memory
    assert memory.rollouts["web"].state == "canary"
    assert sorted(m for m, d in docs.items() if d.version == "2") == ["w4"]
    rebuilt = Memory.rebuild(docs.values())
    assert rebuilt.services["web"].version == "1"
    now += 10
    result = plan(spec, observed_from(machines, rebuilt, now), rebuilt, now, fence=2)
    serving = ("active", "canary")  # the old active stepped down is warm (not serving)
    versions = {m: mm.version for m, mm in result.memory.machines.items() if mm.mode in serving}
    assert sorted(versions.values()) == ["1", "1", "2"]  # one canary again, not three on v2
    assert result.memory.rollouts["web"].state == "canary"
