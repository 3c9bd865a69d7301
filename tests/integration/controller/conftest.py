"""Controller integration fixtures: SeaweedFS, a bucket with a spec, a master key, processes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.fixtures import fresh_bucket, seaweedfs  # noqa: F401
from tests.support.servers import S3Server
from wire.signing import write_key_file
from wire.store.s3 import S3Store

BIN = Path(sys.executable).parent
MASTER = bytes(range(1, 33))


@dataclass
class Bucket:
    server: S3Server
    store: S3Store
    url: str
    tmp: Path
    master_file: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BOSUN_"))}
        return {
            **base,
            **self.server.credentials_env(),
            "BOSUN_STORE": self.url,
            "PYTHONDONTWRITEBYTECODE": "1",
            **extra,
        }

    def spawn(self, args: list[str], name: str, **extra: str) -> subprocess.Popen[bytes]:
        with (self.tmp / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen(
                args,
                env=self.env(**extra),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.tmp,
            )
        self.procs.append(proc)
        return proc

    def bosun(
        self, *args: str, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(BIN / "bosun"), *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.tmp,
        )
        if check:
            assert result.returncode == 0, result.stderr + result.stdout
        return result

    @property
    def s3_root(self) -> str:
        """s3://bucket/prefix/ as the aws CLI wants it."""
        return f"s3://{self.store.bucket}/{self.store.prefix}"

    def log(self, name: str) -> str:
        path = self.tmp / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""


@pytest.fixture
def bucket(seaweedfs: S3Server, tmp_path: Path) -> Iterator[Bucket]:  # noqa: F811
    store = fresh_bucket(seaweedfs)
    key = tmp_path / "master.key"
    write_key_file(key, MASTER)
    b = Bucket(
        seaweedfs, store, seaweedfs.store_url(store.bucket, store.prefix.rstrip("/")), tmp_path, key
    )
    yield b
    for proc in b.procs:
        stop(proc, signal.SIGKILL)


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 15) -> int:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait(timeout=10)


def wait_for(what: str, check: Callable[[], Any], timeout: float, every: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except Exception as exc:  # the bucket may be mid-update
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
