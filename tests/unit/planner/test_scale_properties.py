"""Hypothesis properties of the autoscaler over random load, staleness and time."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.planner import Memory, plan
from controller.planner.scale import metric_value
from tests.unit.planner.harness import observed_from, spec_from
from wire.documents import Snapshot

MACHINES = [f"v{i}" for i in range(6)]
SPEC = {
    "settings": {"controller_interval": "10s", "heartbeat_timeout": "5m"},
    "services": {
        "voice": {
            "version": "1",
            "count": 2,
            "scale": {"min": 1, "max": 5, "metric": "sessions.voice+sessions.sms",
                      "target_per_machine": 10, "cooldown": "60s", "fresh": "30s"},
        }
    },
}  # fmt: skip

tick = st.fixed_dictionaries(
    {
        "dt": st.sampled_from([10, 20, 40]),
        "sessions": st.dictionaries(st.sampled_from(MACHINES), st.integers(0, 40)),
        "stale": st.booleans(),
    }
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ticks=st.lists(tick, min_size=1, max_size=20))
def test_the_scaler_stays_in_bounds_respects_cooldown_and_holds_on_stale_data(
    ticks: list[dict[str, Any]],
) -> None:
    """Count always within min..max; never lower within the cooldown of the last change;
    never changed when every machine's snapshot is stale."""
    spec = spec_from(SPEC, 1)
    machines: dict[str, dict[str, Any]] = {m: {"eligible": ["voice"]} for m in MACHINES}
    memory, now = Memory(), 1000.0
    for t in ticks:
        now += t["dt"]
        for m in MACHINES:
            sessions = t["sessions"].get(m, 0)
            machines[m] = {**machines[m], "sessions": {"voice": sessions, "sms": sessions // 2},
                           "age": 100 if t["stale"] else 0}  # fmt: skip
        p = plan(spec, observed_from(machines, memory, now), memory, now, fence=1)
        before = memory.scale.get("voice")
        after = p.memory.scale["voice"]
        assert 1 <= after.count <= 5
        if before is not None and after.count < before.count:
            assert now - before.changed_at >= 60, (
                f"scaled down {now - before.changed_at}s after a change"
            )
        if before is not None and t["stale"]:
            assert after.count == before.count, "the scaler moved on stale snapshots"
        memory = p.memory


def test_metric_value_sums_terms_and_whole_groups() -> None:
    """sessions.<c> and load.<f> read one field; bare sessions/load sum the group."""
    snap = Snapshot(
        machine="m", seq=1, sent_at=0, boot_id="b", agent_version="t",
        sessions={"voice": 3, "sms": 4}, load={"cpu": 0.5, "net": 0.25},
    )  # fmt: skip
    assert metric_value(snap, ("sessions.voice",)) == 3
    assert metric_value(snap, ("sessions.voice", "sessions.sms")) == 7
    assert metric_value(snap, ("sessions",)) == 7
    assert metric_value(snap, ("load.cpu",)) == 0.5
    assert metric_value(snap, ("load",)) == 0.75
    assert metric_value(snap, ("sessions.video",)) == 0
