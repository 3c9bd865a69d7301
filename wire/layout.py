"""Bucket layout: every key Bosun reads or writes, built in one place.

Keys are relative to the store root (a store URL may add a prefix). Machine ids are
validated wherever a key is built, so no key can escape its folder.
"""

from __future__ import annotations

import re
from typing import NewType

from wire.errors import InvalidMachineId

MachineId = NewType("MachineId", str)

MACHINE_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
SERVICE_NAME_PATTERN = MACHINE_ID_PATTERN

REPORTS = "reports/"
DESIRED = "desired/"
HISTORY = "history/"
EVENTS = "events/"
SPEC_CURRENT = "spec/current.json"
SPEC_HISTORY = "spec/history/"
STATUS_CLUSTER = "status/cluster.json"
STATUS_ROLLOUTS = "status/rollouts/"
LEASE = "control/lease.json"
MEMORY = "control/memory.json"
KEYS = "control/keys.json"  # machine -> key epoch (no secrets); `bosun revoke` bumps it
INTAKE = "control/intake.json"  # the controller shell's bookkeeping: seq marks, ETags


def machine_id(value: object) -> MachineId:
    """Validate `value` as a machine id and return it typed, or raise InvalidMachineId."""
    if not isinstance(value, str):
        raise InvalidMachineId(f"machine id must be a string, got {type(value).__name__}")
    if not MACHINE_ID_PATTERN.fullmatch(value) or ".." in value:
        raise InvalidMachineId(
            f"invalid machine id {value!r}: use 1-63 characters of a-z, 0-9, '.', '_', '-', "
            "starting with a letter or digit, without '..' (for example 'web-1')"
        )
    return MachineId(value)


def report_key(machine: str) -> str:
    return f"{REPORTS}{machine_id(machine)}.json"


def desired_key(machine: str) -> str:
    return f"{DESIRED}{machine_id(machine)}.json"


def history_key(machine: str, seq: int) -> str:
    if seq < 0:
        raise ValueError(f"history seq must be >= 0, got {seq}")
    return f"{HISTORY}{machine_id(machine)}/{seq:016d}.json"


def history_prefix(machine: str) -> str:
    return f"{HISTORY}{machine_id(machine)}/"


def spec_history_key(revision: int) -> str:
    if revision < 1:
        raise ValueError(f"spec revision must be >= 1, got {revision}")
    return f"{SPEC_HISTORY}{revision:08d}.json"


def rollout_status_key(service: str) -> str:
    return f"{STATUS_ROLLOUTS}{machine_id(service)}.json"


def events_key(year: int, month: int, day: int, time_hhmmss: str, cycle: int) -> str:
    """`events/<yyyy>/<mm>/<dd>/<time>-<cycle>.jsonl`; time is HHMMSS (UTC)."""
    if not re.fullmatch(r"\d{6}", time_hhmmss):
        raise ValueError(f"events time must be HHMMSS, got {time_hhmmss!r}")
    return f"{EVENTS}{year:04d}/{month:02d}/{day:02d}/{time_hhmmss}-{cycle:010d}.jsonl"


def machine_from_key(key: str, folder: str) -> MachineId:
    """The machine id in `reports/<id>.json` or `desired/<id>.json`; InvalidMachineId otherwise."""
    if not key.startswith(folder) or not key.endswith(".json"):
        raise InvalidMachineId(f"{key!r} is not a {folder}<machine>.json key")
    return machine_id(key[len(folder) : -len(".json")])
