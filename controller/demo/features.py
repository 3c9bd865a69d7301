"""Which parts of the story this bosun can show: releases (issue 5) and draining (issue 6).

Both are found out by asking the code itself, never by version numbers:
- releases: the spec loader accepts a service's `rollout:` section;
- draining: the (pure) planner, given a machine with an open session whose version must
  change, answers `draining` for it instead of changing it at once.
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
        mode = _planned_mode_with_open_session()
    except Exception as exc:  # the probe uses planner internals that may move
        return f"could not probe the planner for draining: {type(exc).__name__}: {exc}"
    if mode == "draining":
        return None
    return (
        "this bosun's planner changes a machine with an open session at once "
        f"(planned mode {mode!r}, not 'draining'; issue 6)"
    )


def _planned_mode_with_open_session() -> str:
    """Plan v1 -> v2 for one machine carrying a voice session; return its planned mode."""
    from controller.planner import MachineObservation, Memory, Observed, plan
    from controller.spec.load import from_value
    from wire.documents import Addresses, Applied, ServiceState, Snapshot
    from wire.layout import MachineId

    def spec(version: str, revision: int) -> Any:
        value = {
            "services": {
                "web": {"version": version, "count": 1, "sessions": {"drain_timeout": "5m"}}
            }
        }
        return from_value(value, source="demo probe", revision=revision)

    def observed(version: str, generation: int, sessions: int, now: float) -> Any:
        snap = Snapshot(
            machine="m-1",
            seq=int(now * 1000),
            sent_at=now,
            boot_id="probe",
            agent_version="probe",
            addresses=Addresses("10.0.0.1", ""),
            eligible=("web",),
            sessions={"voice": sessions},
            services={
                "web": ServiceState(version=version, state="running", health="healthy", port=80)
            },
            applied=Applied(generation=generation, result="ok"),
        )
        return Observed(machines={MachineId("m-1"): MachineObservation(snap, now)})

    now = 1_000_000.0
    first = plan(spec("1", 1), observed("1", 0, 0, now), Memory(), now, fence=1)
    gen = first.memory.machines["m-1"].generation
    now += 10
    settled = plan(spec("1", 1), observed("1", gen, 1, now), first.memory, now, fence=1)
    now += 10
    second = plan(spec("2", 2), observed("1", gen, 1, now), settled.memory, now, fence=1)
    for w in second.writes:
        if w.machine == "m-1":
            return str(w.desired.mode)
    return str(second.memory.machines["m-1"].mode)
