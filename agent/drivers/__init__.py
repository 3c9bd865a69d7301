"""Drivers apply a verified desired document on this machine.

The desired document carries only data (service, mode, version, config, peers, drain);
what to run comes only from the local config. Drivers: `files` (render data to files),
`commands` (local hooks), `process` (a built-in supervisor). `agent.apply` runs them as
one all-or-nothing transaction.
"""

from __future__ import annotations

from dataclasses import field
from typing import Any

import orjson

from wire import codec
from wire.documents import Desired, Peer
from wire.errors import BosunError
from wire.records import record


class ApplyError(BosunError):
    """A step of applying a desired document failed; the message says which and why."""


@record
class Target:
    """What one service should be on this machine, as drivers see it."""

    machine: str
    service: str
    mode: str
    version: str | None
    config: Any
    doc: Desired | None
    port: int | None
    state_dir: str
    secret_env: dict[str, str] = field(default_factory=dict, repr=False)  # agent.secret_files

    @property
    def fields(self) -> dict[str, str]:
        """Placeholder values for {version}, {port}, {mode}... in local commands."""
        return {
            "machine": self.machine,
            "service": self.service,
            "version": self.version or "",
            "mode": self.mode,
            "port": "" if self.port is None else str(self.port),
            "generation": str(self.doc.generation if self.doc else 0),
            "state_dir": self.state_dir,
        }

    def env(self) -> dict[str, str]:
        """BOSUN_* variables for hooks and processes (never the machine key)."""
        doc = self.doc
        return {
            "BOSUN_MACHINE": self.machine,
            "BOSUN_SERVICE": self.service,
            "BOSUN_MODE": self.mode,
            "BOSUN_VERSION": self.version or "",
            "BOSUN_PORT": "" if self.port is None else str(self.port),
            "BOSUN_GENERATION": str(doc.generation if doc else 0),
            "BOSUN_CONFIG": orjson.dumps(self.config, option=orjson.OPT_SORT_KEYS).decode(),
            "BOSUN_PEERS": orjson.dumps(peers_value(doc)).decode(),
            # Unix seconds, as services have always read them (docs/agent.md)
            "BOSUN_DRAIN": orjson.dumps(
                codec.encode(doc.drain, times="epoch") if doc else None
            ).decode(),
            **self.secret_env,
        }


def _peer(p: Peer) -> dict[str, Any]:
    return {"machine": p.machine, "address": p.address, "port": p.port, "weight": p.weight}


def peers_value(doc: Desired | None) -> dict[str, Any]:
    """`{"backends": [...], "mirror": [...]}` as the example load balancer reads it, plus
    `"evicted": [...]` while the balancers' reports keep some backends out of rotation."""
    if doc is None:
        return {"backends": [], "mirror": []}
    value: dict[str, Any] = {
        "backends": [_peer(p) for p in doc.peers.backends],
        "mirror": [_peer(p) for p in doc.peers.mirror],
    }
    if doc.peers.evicted:  # out of rotation: health-check them, send them nothing
        value["evicted"] = [_peer(p) for p in doc.peers.evicted]
    return value


def tail(text: bytes | str, limit: int = 2000) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = text.strip()
    return text if len(text) <= limit else "..." + text[-limit:]
