"""The peers file of the example load balancer: decoding and weighted choice (no I/O).

The Bosun agent's `files` driver writes this file from the desired document's `peers`:

    {"backends": [{"machine": "web-1", "address": "127.0.0.1", "port": 8081, "weight": 100}],
     "mirror":   [{"machine": "web-3", "address": "127.0.0.1", "port": 8083}],
     "evicted":  [{"machine": "web-4", "address": "127.0.0.1", "port": 8084}]}

`evicted` (optional) lists backends out of rotation because the balancers cannot reach
them: health-checked (checks.py), never sent traffic.

Unknown keys (such as `mode` or `service`) are ignored; `weight` defaults to 100; a null
`port` takes the load balancer's `--default-port`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Target:
    machine: str
    address: str
    port: int
    weight: int = 100

    @property
    def url(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"http://{host}:{self.port}"

    def describe(self) -> dict[str, Any]:
        return {
            "machine": self.machine,
            "address": self.address,
            "port": self.port,
            "weight": self.weight,
        }


@dataclass(frozen=True, slots=True)
class Peers:
    backends: tuple[Target, ...] = ()
    mirror: tuple[Target, ...] = ()
    evicted: tuple[Target, ...] = ()


def parse_peers(
    raw: bytes, *, source: str = "peers file", default_port: int | None = None
) -> Peers:
    """Decode a peers document; raise ValueError saying which entry is wrong and why.

    An entry without a port (null: the spec gave the service none) uses `default_port`.
    """
    try:
        doc = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{source}: not valid JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise ValueError(f"{source}: expected an object with 'backends' and 'mirror' lists")
    return Peers(
        backends=_targets(doc.get("backends"), f"{source}: backends", default_port),
        mirror=_targets(doc.get("mirror"), f"{source}: mirror", default_port),
        evicted=_targets(doc.get("evicted"), f"{source}: evicted", default_port),
    )


def _targets(entries: Any, where: str, default_port: int | None) -> tuple[Target, ...]:
    if entries is None:  # absent or null: none
        return ()
    if not isinstance(entries, list):
        raise ValueError(f"{where} must be a list")
    targets: list[Target] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ValueError(f"{where}[{i}] must be an object")
        address, port = entry.get("address"), entry.get("port")
        weight = entry.get("weight", 100)
        if not isinstance(address, str) or not address:
            raise ValueError(f"{where}[{i}].address must be a host name or IP address")
        if port is None and default_port is None:
            raise ValueError(
                f"{where}[{i}].port is missing: give the service a port in the spec "
                "or start the load balancer with --default-port"
            )
        port = default_port if port is None else port
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ValueError(f"{where}[{i}].port must be a port number, got {port!r}")
        if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
            raise ValueError(f"{where}[{i}].weight must be a whole number >= 0, got {weight!r}")
        machine = str(entry.get("machine") or f"{address}:{port}")
        if any(t.machine == machine for t in targets):
            raise ValueError(f"{where}[{i}].machine {machine!r} is listed twice")
        targets.append(Target(machine, address, port, weight))
    return tuple(targets)


class SmoothWeighted:
    """Smooth weighted round robin: deterministic, spreads picks evenly within each round."""

    def __init__(self, targets: Sequence[Target]) -> None:
        self._targets = [t for t in targets if t.weight > 0]
        self._current = {t.machine: 0 for t in self._targets}

    def pick(self, exclude: frozenset[str] = frozenset()) -> Target | None:
        candidates = [t for t in self._targets if t.machine not in exclude]
        if not candidates:
            return None
        for t in candidates:
            self._current[t.machine] += t.weight
        best = max(candidates, key=lambda t: self._current[t.machine])
        self._current[best.machine] -= sum(t.weight for t in candidates)
        return best
