"""The agent's node_exporter textfile (`metrics_textfile:` in agent.yaml; docs/metrics.md).

Written after every cycle in the Prometheus text format by hand (no client library on
the cron path), to a temporary name in the same folder and renamed over the file, so
node_exporter never reads half a file. No fsync: a file lost to a power cut is rewritten
by the next cycle.

    bosun_agent_cycle_success{machine}                       1: no error, no refusal
    bosun_agent_cycle_errors{machine}                        errors and refusals of the last cycle
    bosun_agent_store_reachable{machine}                     0 when the bucket did not answer
    bosun_agent_last_cycle_timestamp_seconds{machine}
    bosun_agent_last_successful_pull_timestamp_seconds{machine}   0: never
    bosun_agent_last_report_timestamp_seconds{machine}
    bosun_agent_applied_generation{machine}
    bosun_agent_apply_success{machine}                       1 when the last apply succeeded
    bosun_agent_desired_stale{machine}                       1: running a document past its expiry
    bosun_agent_refusals_total{machine,reason}               desired documents refused, since the state began
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.cycle import CycleResult
    from agent.state import LocalState


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(machine: str, state: LocalState, result: CycleResult, stale: bool) -> str:
    m = f'machine="{_label(machine)}"'
    lines: list[str] = []

    def metric(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            text = str(int(value)) if value.is_integer() else repr(value)
            lines.append(f"{name}{{{labels}}} {text}")

    metric("bosun_agent_cycle_success", "gauge",
           "1 when the last cycle ran without an error or a refusal.",
           [(m, 1.0 if result.ok else 0.0)])  # fmt: skip
    metric("bosun_agent_cycle_errors", "gauge", "Errors and refusals of the last cycle.",
           [(m, float(len(result.errors)))])  # fmt: skip
    metric("bosun_agent_store_reachable", "gauge",
           "0 when the bucket did not answer in the last cycle.",
           [(m, 0.0 if result.store_down else 1.0)])  # fmt: skip
    metric("bosun_agent_last_cycle_timestamp_seconds", "gauge", "When the last cycle ran.",
           [(m, state.last_cycle_at)])  # fmt: skip
    metric("bosun_agent_last_successful_pull_timestamp_seconds", "gauge",
           "When the bucket last answered the desired-document GET (0: never).",
           [(m, state.last_pull_at)])  # fmt: skip
    metric("bosun_agent_last_report_timestamp_seconds", "gauge",
           "When the last snapshot was put (0: never).", [(m, state.last_put_at)])  # fmt: skip
    metric("bosun_agent_applied_generation", "gauge",
           "Generation of the desired document applied last.",
           [(m, float(state.applied.generation))])  # fmt: skip
    metric("bosun_agent_apply_success", "gauge", "1 when the last apply succeeded.",
           [(m, 1.0 if state.applied.result == "ok" else 0.0)])  # fmt: skip
    metric("bosun_agent_desired_stale", "gauge",
           "1 when the document running is past its expiry.", [(m, 1.0 if stale else 0.0)])  # fmt: skip
    metric("bosun_agent_refusals_total", "counter",
           "Desired documents refused, by reason, since the agent's state began.",
           [(f'{m},reason="{_label(reason)}"', float(n))
            for reason, n in sorted(state.refusals.items())])  # fmt: skip
    return "\n".join(lines) + "\n"


def write_textfile(
    path: Path, machine: str, state: LocalState, result: CycleResult, stale: bool
) -> None:
    """Replace `path` with this cycle's numbers; a failure is logged, never raised."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(render(machine, state, result, stale))
        os.chmod(tmp, 0o644)  # node_exporter usually runs as another user
        os.replace(tmp, path)
    except OSError as exc:
        from wire.logs import Log

        Log(__name__).warning("metrics.textfile_failed path=%s error=%s", path, exc)
