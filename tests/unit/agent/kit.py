"""Test helpers for the agent: a signer that writes desired documents like the controller,
and a machine (config file + key file + state dir) in a temporary directory."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from wire.documents import Desired, Drain, Peer, Peers, seal
from wire.layout import desired_key
from wire.signing import derive_machine_key, format_kid, write_key_file
from wire.store.base import Store
from wire.times import TimeForm

MASTER = bytes(range(32))


def machine_key(machine: str, epoch: int = 0) -> bytes:
    return derive_machine_key(MASTER, machine, epoch)


def desired(machine: str = "web-1", generation: int = 1, **kw: Any) -> Desired:
    now = time.time()
    base = Desired(
        machine=machine,
        generation=generation,
        fence=kw.pop("fence", 1),
        issued_at=now,
        expires_at=kw.pop("expires_at", now + 3600),
        spec_revision=1,
        mode=kw.pop("mode", "active"),
        service=kw.pop("service", "web"),
        version=kw.pop("version", "1.0"),
        config=kw.pop("config", {"greeting": "hello"}),
    )
    return replace(base, **kw)


def sealed(
    doc: Desired,
    *,
    epoch: int = 0,
    key: bytes | None = None,
    object_key: str | None = None,
    kid: str | None = None,
    times: TimeForm = "iso",
) -> bytes:
    """Sign like the controller: the machine's derived key, bound to desired/<machine>.json."""
    return seal(
        doc,
        key=key if key is not None else machine_key(doc.machine, epoch),
        kid=kid or format_kid(doc.machine, epoch),
        object_key=object_key or desired_key(doc.machine),
        times=times,
    )


def publish(store: Store, doc: Desired, **kw: Any) -> bytes:
    raw = sealed(doc, **kw)
    store.put(desired_key(doc.machine), raw)
    return raw


def peers(
    *backends: tuple[str, str, int, int], mirror: tuple[tuple[str, str, int, int], ...] = ()
) -> Peers:
    return Peers(
        service="web",
        backends=tuple(Peer(m, a, p, w) for m, a, p, w in backends),
        mirror=tuple(Peer(m, a, p, w) for m, a, p, w in mirror),
    )


__all__ = ["Drain", "Machine", "desired", "machine_key", "peers", "publish", "sealed"]


@dataclass
class Machine:
    """A machine's local files: agent.yaml, key file (0600) and state dir, under `root`."""

    root: Path
    store_url: str
    name: str = "web-1"
    epoch: int = 0
    services: dict[str, Any] = field(default_factory=lambda: {"web": {}})
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def config_path(self) -> Path:
        return self.root / "agent.yaml"

    @property
    def key_path(self) -> Path:
        return self.root / "machine.key"

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    def settings(self) -> dict[str, Any]:
        return {
            "machine": self.name,
            "store": self.store_url,
            "key_file": str(self.key_path),
            "key_epoch": self.epoch,
            "state_dir": str(self.state_dir),
            "eligible": list(self.services),
            "poll_interval": 1,
            "heartbeat_interval": "5m",
            "jitter": 0,
            "addresses": {"internal": "10.0.0.5", "external": "auto"},
            "capacity": {"cpu": 2, "sessions": 100},
            "services": self.services,
            **self.extra,
        }

    def write(self) -> Machine:
        self.root.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(self.settings(), sort_keys=False))
        write_key_file(self.key_path, machine_key(self.name, self.epoch), overwrite=True)
        return self


class CountingStore:
    """Wraps a store and records every request: (method, key, if_none_match/if_match, result)."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.calls: list[tuple[str, str, str | None, str]] = []
        self.bodies: list[bytes] = []

    @property
    def url(self) -> str:
        return self.inner.url

    def describe(self, key: str) -> str:
        return self.inner.describe(key)

    def get(
        self, key: str, *, if_none_match: str | None = None, max_bytes: int = 256 * 1024
    ) -> Any:
        result = self.inner.get(key, if_none_match=if_none_match, max_bytes=max_bytes)
        self.calls.append(("GET", key, if_none_match, type(result).__name__))
        return result

    def put(self, key: str, body: bytes, **kw: Any) -> str:
        self.calls.append(("PUT", key, kw.get("if_match"), ""))
        self.bodies.append(body)
        return self.inner.put(key, body, **kw)

    def list(self, prefix: str = "") -> Any:
        return self.inner.list(prefix)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def reset(self) -> None:
        self.calls.clear()


def make_agent(machine: Machine, store: Store | None = None) -> Any:
    """An in-process agent for `machine` over `store` (default: the machine's store URL)."""
    from agent.config import load_config
    from agent.cycle import Agent
    from wire.signing import read_key_file
    from wire.store import open_agent_store

    cfg = load_config(machine.config_path, env={})
    return Agent(cfg, read_key_file(machine.key_path), store or open_agent_store(cfg.store))


def report(store: Store, machine: str = "web-1", epoch: int = 0) -> Any:
    """The machine's last snapshot in the bucket, verified like the controller does."""
    from wire.documents import open_snapshot
    from wire.layout import report_key
    from wire.store.base import StoredObject

    got = store.get(report_key(machine))
    assert isinstance(got, StoredObject), f"no report for {machine}: {got}"
    key = machine_key(machine, epoch)
    _env, snap = open_snapshot(
        got.body,
        report_key(machine),
        lambda kid: key if kid == format_kid(machine, epoch) else None,
    )
    return snap
