"""Start the example app and load balancer as real processes on free 127.0.0.1 ports."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[3]
START_TIMEOUT = 15.0


@dataclass
class Proc:
    name: str
    port: int
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str) -> tuple[int, dict[str, str], Any]:
        return http("GET", self.url + path)

    def post(self, path: str, body: bytes = b"") -> tuple[int, dict[str, str], Any]:
        return http("POST", self.url + path, body)

    def json(self, path: str) -> Any:
        status, _, body = self.get(path)
        assert status == 200, f"{self.name} {path} answered {status}: {body}"
        return body

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, then SIGKILL after `timeout`; returns the exit code."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)
        return self.popen.returncode


def http(method: str, url: str, body: bytes | None = None) -> tuple[int, dict[str, str], Any]:
    """One request; returns status, headers and the decoded JSON body (or the text)."""
    req = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            status, headers, raw = resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        status, headers, raw = exc.code, dict(exc.headers), exc.read()
    try:
        return status, headers, json.loads(raw)
    except ValueError:
        return status, headers, raw.decode(errors="replace")


def wait_until(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


Spawn = Callable[..., Proc]


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Spawn]:
    """spawn("app" | "lb", *args, env={...}, script=False): a started, healthy process."""
    procs: list[Proc] = []

    def start(
        kind: str, *args: str, env: dict[str, str] | None = None, script: bool = False
    ) -> Proc:
        port = free_port()
        entry = (
            [str(ROOT / "examples" / kind / "server.py")] if script else ["-m", f"examples.{kind}"]
        )
        log = tmp_path / f"{kind}-{port}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                [sys.executable, *entry, "--port", str(port), *args],
                cwd=ROOT,
                env={**os.environ, **(env or {})},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        proc = Proc(f"{kind}:{port}", port, popen, log)
        procs.append(proc)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if popen.poll() is not None:
                raise AssertionError(
                    f"{proc.name} exited with {popen.returncode}:\n{log.read_text()}"
                )
            with contextlib.suppress(OSError):
                if proc.get("/health")[0] == 200:
                    return proc
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{proc.name} not healthy in {START_TIMEOUT}s:\n{log.read_text()}"
                )
            time.sleep(0.05)

    yield start
    for proc in procs:
        proc.stop()


@pytest.fixture(name="wait_until")
def wait_until_fixture() -> Callable[..., None]:
    """wait_until(check, what, timeout=10.0): poll `check` every 50 ms, fail after timeout."""
    return wait_until
