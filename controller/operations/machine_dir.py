"""A machine's enrollment directory: what `bosun enroll` writes by default.

    DIR/agent.yaml   the agent config skeleton (0640); key_file names the key below
    DIR/machine.key  the machine's derived key (0600), or the --key-out file instead
    DIR/user-data    with --pip-spec: #cloud-config user-data for the same machine (0600)

The config's `key_file` is the absolute path the key was written to, so the directory works
as is on the host it was written on, or copied to the same path on the machine. An existing
agent.yaml is never replaced without `force`: it may hold the services an operator filled in.
Which services a machine may be eligible for is checked against the applied spec here too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from controller.operations.enrollment import (
    AgentSettings,
    Enrollment,
    agent_config,
    render_agent_yaml,
)
from controller.spec.model import ClusterSpec
from wire.atomic import write_atomic
from wire.errors import BosunError
from wire.signing import encode_key

CONFIG_NAME = "agent.yaml"
KEY_NAME = "machine.key"
USER_DATA_NAME = "user-data"


class EnrollError(BosunError):
    """An enrollment that cannot be written as asked; the message says what to change."""


@dataclass(frozen=True, slots=True)
class Written:
    config: Path
    key: Path
    user_data: Path | None


def unknown_eligible(eligible: Iterable[str], spec: ClusterSpec) -> list[str]:
    """The names in `eligible` that are neither a service nor a pool of the applied spec."""
    known = set(spec.services)
    for svc in spec.services.values():
        known.update(svc.pools)
    return [name for name in eligible if name not in known]


def check_eligible(eligible: Iterable[str], spec: ClusterSpec | None, *, store: str) -> str | None:
    """Raise EnrollError naming unknown services; a warning (not an error) with no spec."""
    names = list(eligible)
    if spec is None:
        return (
            f"no spec applied in {store} yet: --eligible {','.join(names) or '(none)'} "
            "not checked (bosun spec apply first to have it checked)"
        )
    unknown = unknown_eligible(names, spec)
    if unknown:
        choices = sorted({*spec.services, *(p for s in spec.services.values() for p in s.pools)})
        raise EnrollError(
            f"--eligible: {', '.join(repr(u) for u in unknown)} is not a service or pool of "
            f"the applied spec (revision {spec.revision}); known: {', '.join(choices) or 'none'}"
        )
    return None


def write_machine_dir(
    directory: Path,
    enrollment: Enrollment,
    *,
    key_out: Path | None = None,
    user_data: str | None = None,
    settings: AgentSettings | None = None,
    force: bool = False,
) -> Written:
    """Write the key (0600), then the config naming it (0640), then the user-data (0600)."""
    directory = directory.absolute()
    if directory.exists() and not directory.is_dir():
        raise EnrollError(f"{directory} exists and is not a directory: choose another --dir")
    config = directory / CONFIG_NAME
    key = (key_out or directory / KEY_NAME).absolute()
    if not force:
        for path in (config, key):
            if path.exists():
                raise EnrollError(
                    f"{path} already exists (it may hold what you filled in); "
                    "pass --force to replace it or choose another --dir"
                )
    directory.mkdir(parents=True, exist_ok=True, mode=0o750)
    key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomic(key, (encode_key(enrollment.key) + "\n").encode(), 0o600)
    local = replace(settings or AgentSettings(), key_file=str(key))
    write_atomic(config, render_agent_yaml(agent_config(enrollment, local)).encode(), 0o640)
    data_path = None
    if user_data is not None:
        data_path = directory / USER_DATA_NAME
        write_atomic(data_path, user_data.encode(), 0o600)
    return Written(config, key, data_path)


__all__ = [
    "EnrollError",
    "Written",
    "check_eligible",
    "unknown_eligible",
    "write_machine_dir",
]
