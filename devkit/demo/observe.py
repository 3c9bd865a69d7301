"""Watching the cluster the way an operator would: `status/cluster.json` and `/_lb/status`
(with a real balancer, `--lb`: the peers its agent rendered beside its config).

A background thread re-reads both a few times a second (the status with If-None-Match, so
an unchanged object costs a 304 or a stat) and reports what changed as short lines:
machines moving between modes and versions, and the load balancer's backends.
"""

from __future__ import annotations

import contextlib
import http.client
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from controller.status_document import MAX_STATUS_BYTES
from devkit.demo.fleet import Machine
from wire.errors import BosunError
from wire.layout import STATUS_CLUSTER
from wire.store import NotModified, Store, StoredObject


@dataclass(frozen=True, slots=True)
class View:
    """One look at the cluster."""

    status: dict[str, Any] = field(default_factory=dict)
    lb_machine: str | None = None
    lb_port: int | None = None
    lb: dict[str, Any] | None = None  # /_lb/status of the active balancer (or its peers file)
    at: float = 0.0

    def machines(self) -> dict[str, Any]:
        value = self.status.get("machines", {})
        return value if isinstance(value, dict) else {}

    def service(self, name: str) -> dict[str, Any]:
        value = self.status.get("services", {}).get(name, {})
        return value if isinstance(value, dict) else {}

    def actives(self, service: str) -> set[str]:
        return {
            m
            for m, s in self.machines().items()
            if s.get("service") == service
            and s.get("mode") in ("active", "canary")
            and not s.get("lost")
        }

    def lb_backends(self) -> dict[str, int]:
        """machine -> weight, as the running balancer has it."""
        if not self.lb:
            return {}
        return {b["machine"]: int(b.get("weight", 0)) for b in self.lb.get("backends", [])}

    def lb_mirrors(self) -> set[str]:
        return {b["machine"] for b in (self.lb or {}).get("mirror", [])}

    def rollout(self, service: str) -> dict[str, Any] | None:
        value = self.status.get("rollouts", {})
        if isinstance(value, dict) and isinstance(value.get(service), dict):
            out: dict[str, Any] = value[service]
            return out
        return None

    def settled(self) -> bool:
        """Every live machine applied the newest desired document it was given."""
        return all(
            s.get("lost") or s.get("applied_generation") == s.get("generation")
            for s in self.machines().values()
        )


def http_json(port: int, method: str, path: str, timeout: float = 2.0) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        body = resp.read()
        if resp.status >= 300:
            raise OSError(f"{method} 127.0.0.1:{port}{path}: {resp.status} {body[:200]!r}")
        return orjson.loads(body)
    finally:
        conn.close()


class Watcher(threading.Thread):
    def __init__(
        self,
        store: Store,
        machines: Mapping[str, Machine],
        on_change: Callable[[str], None],
        every: float = 0.3,
        lb_kind: str = "example",
    ) -> None:
        super().__init__(name="demo-watcher", daemon=True)
        self.store = store
        self.lb_kind = lb_kind
        self.machines = machines
        self.on_change = on_change
        self.every = every
        self.halt = threading.Event()
        self.view = View()
        self.extra: Callable[[], None] | None = None  # also called each round (pid polling)
        self._etag: str | None = None
        self._changed = threading.Condition()

    def run(self) -> None:
        while not self.halt.is_set():
            with contextlib.suppress(BosunError, OSError, ValueError):
                self.refresh()
            if self.extra is not None:
                with contextlib.suppress(OSError, ValueError):
                    self.extra()
            self.halt.wait(self.every)

    def stop(self) -> None:
        self.halt.set()
        if self.is_alive():
            self.join(timeout=5)

    def refresh(self) -> View:
        status = self.view.status
        got = self.store.get(STATUS_CLUSTER, if_none_match=self._etag, max_bytes=MAX_STATUS_BYTES)
        if isinstance(got, StoredObject):
            status = orjson.loads(got.body)
            self._etag = got.etag
        elif not isinstance(got, NotModified):
            status = {}
        lb_machine = next(
            (
                m
                for m, s in sorted(status.get("machines", {}).items())
                if s.get("service") == "lb" and s.get("mode") == "active" and not s.get("lost")
            ),
            None,
        )
        lb_port = None
        if lb_machine is not None and lb_machine in self.machines:
            lb_port = self.machines[lb_machine].ports.get("lb")
        lb = None
        if lb_port is not None and self.lb_kind != "example":
            assert lb_machine is not None
            with contextlib.suppress(OSError, ValueError):
                lb = orjson.loads(self.machines[lb_machine].peers_file.read_bytes())
        elif lb_port is not None:
            with contextlib.suppress(OSError, ValueError, http.client.HTTPException):
                lb = http_json(lb_port, "GET", "/_lb/status", timeout=1.0)
        new = View(status, lb_machine, lb_port, lb, time.monotonic())
        self._report(self.view, new)
        with self._changed:
            self.view = new
            self._changed.notify_all()
        return new

    def wait(self, timeout: float) -> View:
        """The next view (or the current one after `timeout`)."""
        with self._changed:
            self._changed.wait(timeout)
            return self.view

    def _report(self, old: View, new: View) -> None:
        before, after = old.machines(), new.machines()
        for m in sorted(after):
            a, b = before.get(m, {}), after[m]
            if b.get("lost") and not a.get("lost"):
                self.on_change(f"{m}: lost (no snapshot within the heartbeat timeout)")
                continue
            if a.get("lost") and not b.get("lost"):
                self.on_change(f"{m}: back")
            was = _describe(a) if a else "new"
            now = _describe(b)
            if was != now:
                self.on_change(f"{m}: {was} -> {now}")
        if old.lb is not None or new.lb is not None:
            ob, nb = old.lb_backends(), new.lb_backends()
            om, nm = old.lb_mirrors(), new.lb_mirrors()
            if (ob, om) != (nb, nm) and new.lb is not None:
                self.on_change(f"{new.lb_machine} balancer peers: {_peers(nb, nm)}")


def _describe(s: Mapping[str, Any]) -> str:
    svc = s.get("service") or "-"
    version = s.get("running") or s.get("version") or "-"
    return f"{s.get('mode', '?')} {svc} {version}"


def _peers(backends: Mapping[str, int], mirrors: set[str]) -> str:
    parts = [f"{m}({w})" if w != 100 else m for m, w in sorted(backends.items())]
    text = ", ".join(parts) or "no backends"
    if mirrors:
        text += f"; mirror {', '.join(sorted(mirrors))}"
    return text
