"""Real `bosun-agent` processes against SeaweedFS (through a counting proxy).

Desired documents are written by a test helper that signs like the controller; reports
are read back from the bucket and verified like the controller does.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.drivers.process import ProcessDriver
from tests.integration.agent.conftest import lite_store
from tests.integration.agent.proxy import CountingProxy
from tests.support.servers import S3Server
from tests.unit.agent.kit import Machine, desired, publish, report, sealed
from wire.documents import seal
from wire.layout import desired_key
from wire.store.base import StoredObject
from wire.store.s3 import S3Store

ROOT = Path(__file__).resolve().parents[3]
APP = "import sys, time; time.sleep(120)"


def wait_for(predicate: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if predicate():
                return
        except AssertionError:
            pass
        time.sleep(0.1)
    assert predicate(), f"timed out after {timeout}s waiting for {what}"


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
    except OSError:
        return []


class Env:
    def __init__(self, server: S3Server, proxy: CountingProxy, tmp: Path) -> None:
        self.server = server
        self.proxy = proxy
        self.store: S3Store = lite_store(server)  # direct: the controller's view
        self.out = tmp / "out"
        url = f"s3://{self.store.bucket}?endpoint={proxy.endpoint}&region=us-east-1"
        services = {
            "web": {
                "port": 8300,
                "files": [{"path": str(self.out / "web.json")}],
                "process": {
                    "command": [sys.executable, "-c", APP, "--version={version}"],
                    "stop_timeout": 3,
                },
            }
        }
        self.machine = Machine(tmp / "m", url, services=services).write()
        self.procs: list[subprocess.Popen[str]] = []

    def env(self) -> dict[str, str]:
        return {**os.environ, **self.server.credentials_env(), "PYTHONPATH": str(ROOT)}

    def agent(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "agent", "--config", str(self.machine.config_path), *args]

    def once(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.agent("run", "--once", *args),
            capture_output=True,
            text=True,
            timeout=60,
            env=self.env(),
            cwd=ROOT,
        )

    def daemon(self, *args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            self.agent(*args, "run"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env(),
            cwd=ROOT,
        )
        self.procs.append(proc)
        return proc

    def app_pid(self) -> int:
        return ProcessDriver(self.machine.state_dir).record("web").pid

    def cleanup(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate(timeout=10)
        rec = ProcessDriver(self.machine.state_dir).record("web")
        if rec.pid and cmdline(rec.pid):
            os.killpg(rec.pid, signal.SIGKILL)
        self.store.close()


@pytest.fixture
def env(seaweedfs: S3Server, proxy: CountingProxy, tmp_path: Path) -> Iterator[Env]:
    e = Env(seaweedfs, proxy, tmp_path)
    yield e
    e.cleanup()


def test_cron_mode_converges_files_and_process(env: Env) -> None:
    """run --once applies documents: the config file and the supervised process really change."""
    publish(env.store, desired(generation=1, version="1.0", config={"v": 1}))
    done = env.once()
    assert done.returncode == 0, done.stderr
    assert json.loads((env.out / "web.json").read_text()) == {"v": 1}
    first = env.app_pid()
    assert cmdline(first)[-1] == "--version=1.0"
    publish(env.store, desired(generation=2, version="2.0", config={"v": 2}))
    assert env.once().returncode == 0
    assert json.loads((env.out / "web.json").read_text()) == {"v": 2}
    second = env.app_pid()
    assert second != first and cmdline(second)[-1] == "--version=2.0"
    wait_for(lambda: not cmdline(first), 5, "the old version to stop")
    snap = report(env.store)
    assert (snap.applied.generation, snap.services["web"].state, snap.services["web"].version) == (
        2,
        "running",
        "2.0",
    )


def test_steady_state_is_one_request_plus_put_per_heartbeat(env: Env) -> None:
    """Counted at the server side: a steady-state cycle is exactly one GET answered 304; a PUT only per heartbeat."""
    publish(env.store, desired(generation=1))
    env.once()
    env.once()
    env.proxy.take()
    for _ in range(2):
        assert env.once().returncode == 0
    path = f"/{env.store.bucket}/{desired_key('web-1')}"
    assert env.proxy.take() == [("GET", path, 304)] * 2
    state_file = env.machine.state_dir / "state.json"
    state = json.loads(state_file.read_text())
    state["last_put_at"] -= 301  # the 5-minute heartbeat interval has passed
    state_file.write_text(json.dumps(state))
    assert env.once().returncode == 0
    assert [(m, s) for m, _p, s in env.proxy.take()] == [("GET", 304), ("PUT", 200)]
    assert env.once().returncode == 0
    assert [(m, s) for m, _p, s in env.proxy.take()] == [("GET", 304)]


def test_daemon_converges_and_stops_gracefully(env: Env) -> None:
    """The daemon applies new documents as they come; SIGTERM finishes, reports status stopping and exits 0."""
    publish(env.store, desired(generation=1, config={"v": 1}))
    daemon = env.daemon()
    wait_for(lambda: report(env.store).applied.generation == 1, what="generation 1 applied")
    assert report(env.store).status in ("starting", "running")
    publish(env.store, desired(generation=2, version="1.1", config={"v": 2}))
    wait_for(lambda: report(env.store).applied.generation == 2, what="generation 2 applied")
    assert json.loads((env.out / "web.json").read_text()) == {"v": 2}
    assert cmdline(env.app_pid())[-1] == "--version=1.1"
    assert report(env.store).status == "running"
    status = Path(f"/proc/{daemon.pid}/status").read_text()
    rss_kb = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM")))
    assert rss_kb < 60 * 1024, f"daemon peak RSS {rss_kb} kB"
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=15) == 0
    assert report(env.store).status == "stopping"
    assert cmdline(env.app_pid())  # the service keeps running when the agent stops


def test_bucket_down_mid_run_keeps_last_known_good_and_catches_up(env: Env) -> None:
    """With the bucket unreachable the daemon keeps the last-known-good state, then catches up when it is back."""
    publish(env.store, desired(generation=1, config={"v": 1}))
    daemon = env.daemon("--log-level", "info")
    wait_for(lambda: report(env.store).applied.generation == 1, what="generation 1 applied")
    pid = env.app_pid()
    env.proxy.stop()
    assert env.proxy.is_refusing()
    publish(env.store, desired(generation=2, config={"v": 2}))
    time.sleep(2.5)  # a few failed cycles
    assert cmdline(pid) and json.loads((env.out / "web.json").read_text()) == {"v": 1}
    assert daemon.poll() is None
    env.proxy.start()
    wait_for(
        lambda: report(env.store).applied.generation == 2,
        timeout=20,
        what="catch-up after the outage",
    )
    assert json.loads((env.out / "web.json").read_text()) == {"v": 2}
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=15) == 0


def test_restarted_agent_with_bucket_down_keeps_serving(env: Env) -> None:
    """A restarted agent that cannot reach the bucket keeps the persisted last-known-good and says so (exit 1)."""
    publish(env.store, desired(generation=1, config={"v": 1}))
    assert env.once().returncode == 0
    pid = env.app_pid()
    os.killpg(pid, signal.SIGKILL)  # the machine lost its service too
    wait_for(lambda: not cmdline(pid), 5, "the service to die")
    env.proxy.stop()
    done = env.once("--deadline", "2")
    assert done.returncode == 1 and "cannot reach" in done.stderr
    assert cmdline(env.app_pid())  # restarted from the last-known-good document
    assert json.loads((env.out / "web.json").read_text()) == {"v": 1}


ADVERSARIAL: list[tuple[str, Callable[[], bytes], str]] = [
    (
        "tampered body",
        lambda: sealed(desired(generation=5)).replace(b'"hello"', b'"h3llo"'),
        "bad_signature",
    ),
    ("wrong key", lambda: sealed(desired(generation=5), key=b"k" * 32), "bad_signature"),
    (
        "another machine's document",
        lambda: sealed(desired(machine="web-2", generation=5)),
        "unknown_kid",
    ),
    ("older generation", lambda: sealed(desired(generation=2)), "rollback"),
    (
        "same generation, other digest",
        lambda: sealed(desired(generation=3, config={"evil": 1})),
        "generation_conflict",
    ),
    ("expired", lambda: sealed(desired(generation=5, expires_at=time.time() - 5)), "expired"),
    ("oversized", lambda: sealed(desired(generation=5, config={"x": "y" * 270_000})), "too_large"),
    ("malformed", lambda: b'{"format": "bosun.desired/1", "kid": "web-1@0"', "malformed"),
]


def test_adversarial_documents_change_nothing_and_are_reported(env: Env) -> None:
    """Tampered, wrongly keyed, copied, replayed, conflicting, expired, oversized and malformed documents: nothing applied, reasons reported."""
    publish(env.store, desired(generation=3, config={"good": True}))
    assert env.once().returncode == 0
    pid, content = env.app_pid(), (env.out / "web.json").read_bytes()
    expected: dict[str, int] = {}
    for label, make, reason in ADVERSARIAL:
        env.store.put(desired_key("web-1"), make())
        done = env.once()
        assert done.returncode == 1, label
        assert reason in done.stderr, (label, done.stderr)
        expected[reason] = expected.get(reason, 0) + 1
        snap = report(env.store)
        assert snap.refusals == expected, label
        assert snap.last_refusal is not None and snap.last_refusal.reason == reason
        assert snap.applied.generation == 3
    assert env.app_pid() == pid and (env.out / "web.json").read_bytes() == content


def test_dripping_bucket_ends_the_cycle_with_fetch_timeout(env: Env) -> None:
    """docs/security.md#slow-retrieval: a bucket that drips bytes ends the cycle at the deadline with fetch_timeout; the next cycle runs."""
    publish(env.store, desired(generation=1))
    env.proxy.mode = "drip"
    started = time.monotonic()
    done = env.once("--deadline", "1")
    assert time.monotonic() - started < 4  # one deadline for the whole cycle, GET and PUT
    assert done.returncode == 1 and "fetch_timeout" in done.stderr
    env.proxy.mode = "pass"
    assert env.once().returncode == 0
    snap = report(env.store)
    assert snap.refusals == {"fetch_timeout": 1} and snap.applied.generation == 1


def test_sentinel_key_never_leaks(env: Env) -> None:
    """docs/security.md#secret-hygiene: a full daemon run with a sentinel key: not in any PUT body, log line, written file, argv or environment."""
    from wire.signing import encode_key, write_key_file

    sentinel = b"SENTINEL-KEY-do-not-leak-0123456"
    write_key_file(env.machine.key_path, sentinel, overwrite=True)
    services = env.machine.services
    services["web"]["commands"] = {"reload": "env; exit 1"}  # its output goes into the report
    env.machine.write()
    write_key_file(env.machine.key_path, sentinel, overwrite=True)
    publish(env.store, desired(generation=1, config={"v": 1}), key=sentinel)
    daemon = env.daemon("--log-level", "debug", "--log-format", "json")
    key_of = {"web-1@0": sentinel}
    from wire.documents import open_snapshot
    from wire.layout import report_key

    def applied() -> int:
        got = env.store.get(report_key("web-1"))
        assert daemon.poll() is None, daemon.communicate()
        if not isinstance(got, StoredObject):
            return 0
        _e, snap = open_snapshot(got.body, report_key("web-1"), key_of.get)  # type: ignore[union-attr]
        return int(snap.applied.generation)

    wait_for(lambda: applied() == 1, what="generation 1 applied")
    publish(
        env.store, desired(generation=2, config={"v": 2}), key=sentinel
    )  # reload fails: output reported
    env.store.put(
        desired_key("web-1"),
        seal(desired(generation=9), key=b"x" * 32, kid="web-1@0", object_key=desired_key("web-1")),
    )
    time.sleep(2.5)
    listing = " ".join(cmdline(daemon.pid))
    environ = Path(f"/proc/{daemon.pid}/environ").read_bytes()
    daemon.send_signal(signal.SIGTERM)
    _out, err = daemon.communicate(timeout=15)
    forms = [
        sentinel,
        encode_key(sentinel).encode(),
        sentinel.hex().encode(),
        __import__("base64").b64encode(sentinel).rstrip(b"="),
    ]
    haystacks: dict[str, bytes] = {
        "argv": listing.encode(),
        "environ": environ,
        "logs": err.encode(),
    }
    assert err.count("\n") > 5  # debug logs were really produced
    for i, body in enumerate(env.proxy.bodies):
        haystacks[f"PUT body {i}"] = body
    assert env.proxy.bodies
    for path in [*env.machine.state_dir.rglob("*"), *env.out.rglob("*")]:
        if path.is_file():
            haystacks[str(path)] = path.read_bytes()
    for info in env.store.list():
        haystacks[f"bucket {info.key}"] = env.store.get(info.key).body  # type: ignore[union-attr]
    pid = env.app_pid()
    haystacks["app argv"] = " ".join(cmdline(pid)).encode()
    haystacks["app environ"] = Path(f"/proc/{pid}/environ").read_bytes()
    leaks = [name for name, data in haystacks.items() for form in forms if form in data]
    assert leaks == [], leaks


def test_check_passes_on_seaweedfs_and_fails_when_conditions_are_ignored(env: Env) -> None:
    """bosun-agent check accepts a real S3 endpoint and refuses one that ignores conditional requests, naming it."""
    publish(env.store, desired(generation=1))
    cmd = env.agent("check")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env.env(), cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "conditional GET with the current ETag answers 304" in done.stdout
    assert "check passed" in done.stdout
    env.proxy.mode = "ignore-conditions"
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env.env(), cwd=ROOT)
    assert done.returncode == 2
    assert "FAIL  conditional GET with the current ETag answers 304" in done.stdout
    assert "If-Match with a wrong ETag) was ACCEPTED" in done.stdout
    env.proxy.mode = "pass"
    assert report(env.store).machine == "web-1"  # a valid report was put back
