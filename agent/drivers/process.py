"""`process` driver: a small supervisor that works in cron mode and in the daemon.

The process runs in its own session (it outlives a `--once` agent run and a daemon
restart) and is tracked by `<state_dir>/proc/<service>.json`: pid, kernel start time (so
a recycled pid is never mistaken for ours), the launch fingerprint, restarts and the
earliest time of the next restart. It runs in active, canary, shadow and draining (a move
between active, canary and draining never restarts it; crossing into or out of `shadow`
does, so a process that reads BOSUN_MODE at start never writes production state as a
shadow, nor test-sink state as a live peer; nor does any move unless its command or config
changes) and is
stopped (SIGTERM to its process group, SIGKILL after `stop_timeout`) in standby and
deactivated. A crashed process is restarted with exponential backoff up to `backoff_max`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from agent.config import RUNNING_MODES, ProcessSpec
from agent.drivers import ApplyError, Target
from agent.drivers.commands import argv_for, child_env
from wire import codec
from wire.atomic import write_atomic
from wire.logs import Log
from wire.records import record

if TYPE_CHECKING:
    import subprocess

log = Log(__name__)

_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}  # started by this agent process


@record
class ProcRecord:
    """What the supervisor recorded of the process it started for a service."""

    pid: int = 0
    start_ticks: int = 0
    fingerprint: str = ""
    version: str = ""
    mode: str = ""
    restarts: int = 0
    next_start_at: float = 0.0
    want_running: bool = False
    last_exit: str = ""


def _start_ticks(pid: int) -> int | None:
    """The kernel start time of `pid` (field 22 of /proc/<pid>/stat); None if not running."""
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        _CHILDREN.pop(pid, None)
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        return None
    return int(fields[19])


class ProcessDriver:
    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir / "proc"
        self.logs = state_dir / "logs"

    def _path(self, service: str) -> Path:
        return self.dir / f"{service}.json"

    def record(self, service: str) -> ProcRecord:
        try:
            value = orjson.loads(self._path(service).read_bytes())
            rec: ProcRecord = codec.decode(ProcRecord, value, service)
            return rec
        except (OSError, orjson.JSONDecodeError, ValueError):
            return ProcRecord()

    def _save(self, service: str, rec: ProcRecord) -> None:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(self._path(service), orjson.dumps(codec.encode(rec)))

    def alive(self, rec: ProcRecord) -> bool:
        return rec.pid > 0 and _start_ticks(rec.pid) == rec.start_ticks

    def state(self, service: str) -> str:
        rec = self.record(service)
        if self.alive(rec):
            return "running"
        return "failed" if rec.want_running else "stopped"

    @staticmethod
    def _launch(spec: ProcessSpec, target: Target) -> tuple[list[str], dict[str, str], str]:
        argv = argv_for(spec.command, target.fields)
        env = {**spec.env, **target.env()}
        keyed = {
            k: v
            for k, v in env.items()
            if k not in ("BOSUN_MODE", "BOSUN_PEERS", "BOSUN_DRAIN", "BOSUN_GENERATION")
        }
        if not spec.restart_on_config:
            keyed.pop("BOSUN_CONFIG", None)
        keyed["shadow"] = str(target.mode == "shadow")  # crossing the shadow line restarts
        fp = hashlib.sha256(orjson.dumps([argv, sorted(keyed.items()), spec.cwd])).hexdigest()
        return argv, env, fp

    def ensure(self, service: str, spec: ProcessSpec, target: Target) -> None:
        """Make the process match `target` now (apply path: no backoff)."""
        rec = self.record(service)
        if target.mode not in RUNNING_MODES:
            self.stop(service, spec, rec)
            return
        argv, env, fp = self._launch(spec, target)
        if self.alive(rec):
            if rec.fingerprint == fp:
                if rec.mode != target.mode:
                    self._save(service, replace(rec, mode=target.mode, want_running=True))
                return
            self.stop(service, spec, rec)
            rec = self.record(service)
        self._start(service, spec, target, argv, env, fp, replace(rec, restarts=0))

    def supervise(self, service: str, spec: ProcessSpec, target: Target, now: float) -> None:
        """Restart a crashed process, with exponential backoff."""
        rec = self.record(service)
        if not rec.want_running or self.alive(rec):
            return
        if now < rec.next_start_at:
            return
        argv, env, fp = self._launch(spec, target)
        log.warning("process.crashed service=%s pid=%d restarts=%d", service, rec.pid, rec.restarts)
        try:
            self._start(
                service, spec, target, argv, env, fp, replace(rec, restarts=rec.restarts + 1)
            )
        except ApplyError as exc:
            log.error("process.restart_failed service=%s error=%s", service, exc)
            delay = min(spec.backoff_max, 2.0 ** min(rec.restarts + 1, 16))
            self._save(service, replace(rec, restarts=rec.restarts + 1, next_start_at=now + delay))

    def _start(
        self,
        service: str,
        spec: ProcessSpec,
        target: Target,
        argv: list[str],
        env: dict[str, str],
        fp: str,
        rec: ProcRecord,
    ) -> None:
        import subprocess  # here, not at the top: a steady cycle starts nothing

        log_path = Path(spec.log_file) if spec.log_file else self.logs / f"{service}.log"
        try:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(log_path, "ab") as out:
                proc = subprocess.Popen(
                    argv,
                    cwd=spec.cwd,
                    env=child_env(env),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        except OSError as exc:
            raise ApplyError(
                f"process for {service}: cannot start {argv[0]!r}: {exc.strerror}"
            ) from None
        _CHILDREN[proc.pid] = proc
        ticks = _start_ticks(proc.pid) or 0
        delay = min(spec.backoff_max, 2.0 ** min(rec.restarts, 16)) if rec.restarts else 0.0
        self._save(
            service,
            replace(
                rec,
                pid=proc.pid,
                start_ticks=ticks,
                fingerprint=fp,
                version=target.version or "",
                mode=target.mode,
                want_running=True,
                next_start_at=time.time() + delay,
            ),
        )
        log.info("process.started service=%s pid=%d version=%s", service, proc.pid, target.version)

    def stop(self, service: str, spec: ProcessSpec | None, rec: ProcRecord | None = None) -> None:
        rec = rec or self.record(service)
        if self.alive(rec):
            timeout = spec.stop_timeout if spec else 10.0
            with contextlib.suppress(ProcessLookupError):
                os.killpg(rec.pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.alive(rec):
                time.sleep(0.02)
            if self.alive(rec):
                log.warning("process.kill service=%s pid=%d after %gs", service, rec.pid, timeout)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(rec.pid, signal.SIGKILL)
                end = time.monotonic() + 5
                while time.monotonic() < end and self.alive(rec):
                    time.sleep(0.02)
            log.info("process.stopped service=%s pid=%d", service, rec.pid)
        if rec.want_running or rec.pid:
            self._save(service, ProcRecord(last_exit="stopped"))
