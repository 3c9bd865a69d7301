"""Which parts of the story this bosun can show: releases (issue 5) and draining (issue 6).

Both are found out by asking the code itself, never by version numbers:
- releases: the spec loader accepts a service's `rollout:` section;
- draining: the (pure) planner, asked to scale two machines that each carry a call down
  to one, answers `draining` for one of them instead of moving it to standby at once.
A phase whose feature is missing is reported as skipped with the reason, not as failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from controller.demo.fleet import NORMAL, spec_value
from wire.errors import BosunError


@dataclass(frozen=True, slots=True)
class Features:
    rollout: str | None  # None: available; else why not
    drain: str | None


def detect(run_dir: Path) -> Features:
    return Features(rollout=_rollout(run_dir), drain=_drain())


def _rollout(run_dir: Path) -> str | None:
    from controller.spec.load import load_yaml

    text = yaml.safe_dump(spec_value(NORMAL, run_dir, rollout=True))
    try:
        load_yaml(text, source="demo probe")
    except BosunError as exc:
        first = str(exc).splitlines()[-1].strip()
        return f"this bosun's spec has no `rollout:` section yet (issue 5): {first}"
    return None


def _drain() -> str | None:
    try:
        modes = _planned_modes_scaling_down_calls()
    except Exception as exc:  # the probe uses planner internals that may move
        return f"could not probe the planner for draining: {type(exc).__name__}: {exc}"
    if "draining" in modes.values():
        return None
    return (
        "this bosun's planner scales down a machine that carries a call at once "
        f"(planned {modes}, no 'draining'; issue 6)"
    )


def _planned_modes_scaling_down_calls() -> dict[str, str]:
    """Two active web machines, a voice session on each, count 2 -> 1: the planned modes."""
    from controller.planner import MachineObservation, Memory, Observed, plan
    from controller.spec.load import from_value
    from wire.documents import Addresses, Applied, ServiceState, Snapshot
    from wire.layout import MachineId

    names = ("m-1", "m-2")

    def spec(count: int, revision: int) -> Any:
        value = {"services": {"web": {"version": "1", "count": count,
                                      "sessions": {"drain_timeout": "5m"}}}}  # fmt: skip
        return from_value(value, source="demo probe", revision=revision)

    def observed(generations: dict[str, int], sessions: int, now: float) -> Any:
        machines = {}
        for i, m in enumerate(names):
            snap = Snapshot(
                machine=m,
                seq=int(now * 1000),
                sent_at=now,
                boot_id="probe",
                agent_version="probe",
                addresses=Addresses(f"10.0.0.{i + 1}", ""),
                eligible=("web",),
                sessions={"voice": sessions},
                services={
                    "web": ServiceState(version="1", state="running", health="healthy", port=80)
                },
                applied=Applied(generation=generations.get(m, 0), result="ok"),
            )
            machines[MachineId(m)] = MachineObservation(snap, now)
        return Observed(machines=machines)

    def gens(p: Any) -> dict[str, int]:
        return {m: p.memory.machines[m].generation for m in names}

    now = 1_000_000.0
    first = plan(spec(2, 1), observed({}, 0, now), Memory(), now, fence=1)
    now += 10
    settled = plan(spec(2, 1), observed(gens(first), 1, now), first.memory, now, fence=1)
    now += 10
    second = plan(spec(1, 2), observed(gens(settled), 1, now), settled.memory, now, fence=1)
    modes = {m: str(second.memory.machines[m].mode) for m in names}
    for w in second.writes:
        modes[str(w.machine)] = str(w.desired.mode)
    return modes
