"""A real fleet for draining: bosun-agent processes running the example app (its calls
opened and closed over HTTP by the test: the agent's `sessions` probe reads them from the
app's /metrics) behind the example load balancer, and a `bosun controller run --every 1s`.

Machines: lb-1 and web-1, web-2 (web count 2, no standby). Agent configs come from
`devkit.demo.fleet`, processes are started and stopped by `devkit.demo.procs`.
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from controller.spec.load import from_value
from controller.spec.revisions import apply
from devkit.demo import fleet
from devkit.demo.fleet import Timing
from tests.support.procfleet import ProcessFleet, build, web_roles
from wire.documents import parse_envelope
from wire.layout import desired_key
from wire.store import StoredObject

TIMING = Timing(
    every=1.0, poll=1.0, heartbeat=1.0, heartbeat_timeout=5.0, dwell=1.0, rate=10.0,
    bake=2.0, phase_timeout=30.0,
)  # fmt: skip
WEB = ("web-1", "web-2")


@dataclass
class Fleet(ProcessFleet):
    def apply(self, version: str, drain_timeout: float) -> int:
        value = fleet.spec_value(
            TIMING, self.run_dir, web_count=2, version=version, drain_timeout=drain_timeout
        )
        return apply(self.store, from_value(value, source="test"), now=time.time()).revision

    def desired(self, machine: str) -> dict[str, Any]:
        got = self.store.get(desired_key(machine))
        assert isinstance(got, StoredObject), f"no desired document for {machine}"
        return parse_envelope(got.body).body

    def backends(self) -> set[str]:
        return {b["machine"] for b in self.peers().get("backends", [])}

    def app(self, machine: str, method: str = "GET", path: str = "/metrics") -> dict[str, Any]:
        """Ask a web machine's app directly ({} when it does not answer: restarting)."""
        port = self.machines[machine].ports["web"]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request(method, path)
            resp = conn.getresponse()
            value: dict[str, Any] = orjson.loads(resp.read())
            return value
        except (OSError, http.client.HTTPException, ValueError):
            return {}
        finally:
            conn.close()


@pytest.fixture(scope="module")
def drain_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    f = Fleet(**build(tmp_path_factory.mktemp("drain-fleet"), web_roles(WEB), TIMING))
    f.apply("1.0", drain_timeout=60)
    try:
        f.start("ctl-drain")

        def converged() -> bool:
            f.poll_records()
            web = f.cluster().get("services", {}).get("web", {})
            return web.get("healthy") == 2 and f.backends() == set(WEB)

        f.wait("web: 2 healthy actives, both LB backends", converged, 45)
        yield f
    finally:
        f.stop()
