"""Every process the demo starts, and stopping all of them (also on Ctrl-C or SIGTERM).

Processes the demo spawns itself (agents, the controller, SeaweedFS) each get their own
process group. The agents start the example services in their own sessions (so a service
outlives an agent restart), so those are found two ways: the agents' process records
(`<state_dir>/proc/<service>.json`, polled while the demo runs) and, at the end, a scan of
`/proc` for processes whose argv holds one of the exact `--flag path` pairs the demo
wrote into the commands it configured (`--desired-file`, `--peers-file`, `--config` with
paths inside this run's directory). Only processes spawned here, recorded by an agent of
this demo, or carrying such a pair are ever signalled.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Tracked:
    """One process the demo is responsible for."""

    name: str
    pid: int
    start_ticks: int | None  # kernel start time, so a recycled pid is never signalled


def start_ticks(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat; None when the process is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def alive(t: Tracked) -> bool:
    ticks = start_ticks(t.pid)
    return ticks is not None and (t.start_ticks is None or ticks == t.start_ticks)


class ProcessBook:
    """Spawns, records and stops the demo's processes."""

    def __init__(self, run_dir: Path, log_dir: Path, env: Mapping[str, str]) -> None:
        self.run_dir = run_dir.resolve()
        self.log_dir = log_dir
        self.env = dict(env)
        self._lock = threading.Lock()
        self.popens: dict[str, subprocess.Popen[bytes]] = {}
        self.tracked: dict[tuple[int, int | None], Tracked] = {}
        self.signatures: set[tuple[bytes, bytes]] = set()

    def mark(self, flag: str, value: str | Path) -> None:
        """Processes with `flag value` next to each other in argv belong to this demo."""
        self.signatures.add((flag.encode(), str(value).encode()))

    # ---- starting ---------------------------------------------------------------------
    def spawn(self, name: str, argv: Sequence[str], *, cwd: Path | None = None) -> int:
        """Start `argv` in its own process group, output to logs/<name>.log; returns pid."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with (self.log_dir / f"{name}.log").open("ab") as out:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=cwd,
                start_new_session=True,
            )
        with self._lock:
            self.popens[name] = proc
            self._track(name, proc.pid)
        return proc.pid

    def adopt(self, name: str, proc: subprocess.Popen[bytes]) -> None:
        """Record a process started elsewhere (SeaweedFS) so the final check covers it."""
        with self._lock:
            self._track(name, proc.pid)

    def _track(self, name: str, pid: int) -> None:
        ticks = start_ticks(pid)
        self.tracked.setdefault((pid, ticks), Tracked(name, pid, ticks))

    def poll_records(self, state_dirs: Mapping[str, Path]) -> None:
        """Record the service processes the agents started (read from their proc records)."""
        for machine, state_dir in state_dirs.items():
            proc_dir = state_dir / "proc"
            if not proc_dir.is_dir():
                continue
            for path in proc_dir.glob("*.json"):
                try:
                    rec = orjson.loads(path.read_bytes())
                    pid, ticks = int(rec.get("pid", 0)), rec.get("start_ticks")
                except (OSError, ValueError, TypeError, AttributeError):
                    continue
                if pid <= 0:
                    continue
                with self._lock:
                    key = (pid, int(ticks) if ticks else None)
                    if key not in self.tracked and start_ticks(pid) is not None:
                        self.tracked[key] = Tracked(f"{machine}/{path.stem}", pid, key[1])

    # ---- stopping ---------------------------------------------------------------------
    def kill_now(self, name: str) -> None:
        """SIGKILL one spawned process group at once (a machine dying)."""
        proc = self.popens.get(name)
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)

    def kill_tracked(self, t: Tracked, sig: int = signal.SIGKILL) -> None:
        if alive(t):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(t.pid, sig)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(t.pid, sig)

    def stray(self) -> list[Tracked]:
        """Live processes carrying one of the marked `--flag path` pairs (ours, unrecorded)."""
        found: list[Tracked] = []
        me = os.getpid()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == me:
                continue
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if any(pair in self.signatures for pair in itertools.pairwise(argv)):
                pid = int(entry.name)
                ticks = start_ticks(pid)
                if ticks is not None:
                    found.append(Tracked("stray", pid, ticks))
        return found

    def running(self) -> list[Tracked]:
        """Everything recorded or found that is still alive."""
        with self._lock:
            recorded = [t for t in self.tracked.values() if alive(t)]
        seen = {t.pid for t in recorded}
        return recorded + [t for t in self.stray() if t.pid not in seen]

    def stop_all(self, *, grace: float = 5.0, order: Sequence[str] = ()) -> int:
        """SIGTERM every group (names starting with `order` prefixes first), then SIGKILL
        what is left after `grace` seconds. Returns how many are still alive (should be 0)."""
        with self._lock:
            popens = dict(self.popens)
        ranked = sorted(
            popens.items(),
            key=lambda kv: next(
                (i for i, p in enumerate(order) if kv[0].startswith(p)), len(order)
            ),
        )
        for _name, proc in ranked:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for _name, proc in ranked:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.05, deadline - time.monotonic()))
        # the services the agents left running (SIGTERM, short wait, then SIGKILL)
        for t in self.running():
            self.kill_tracked(t, signal.SIGTERM)
        deadline = time.monotonic() + min(grace, 3.0)
        while time.monotonic() < deadline and self.running():
            time.sleep(0.1)
        for t in self.running():
            log.warning("demo.kill: %s pid %d did not stop on SIGTERM", t.name, t.pid)
            self.kill_tracked(t, signal.SIGKILL)
        for _name, proc in ranked:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=2)
        deadline = time.monotonic() + 3.0
        left = self.running()
        while left and time.monotonic() < deadline:
            time.sleep(0.1)
            left = self.running()
        return len(left)

    def pids(self) -> list[dict[str, object]]:
        with self._lock:
            return [
                {"name": t.name, "pid": t.pid, "start_ticks": t.start_ticks}
                for t in sorted(self.tracked.values(), key=lambda t: (t.name, t.pid))
            ]
