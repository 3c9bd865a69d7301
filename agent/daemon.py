"""Running cycles: once (cron) or as a daemon, one cycle at a time per machine (flock).

Daemon: a cycle every `poll_interval` +/- `jitter`; when the bucket is unreachable the
next try comes sooner with bounded exponential backoff (1 s doubling, at most
poll_interval). Between cycles crashed supervised processes are restarted (1 s ticks).
SIGTERM/SIGINT let the current cycle finish, then a last snapshot with `status: stopping`
is sent and the daemon exits 0.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from agent.cycle import Agent, CycleResult
from wire.errors import BosunError
from wire.logs import Log

if TYPE_CHECKING:
    import random

log = Log(__name__)


def jittered(interval: float, jitter: float, rng: random.Random) -> float:
    """`interval` +/- `jitter` (a fraction), so a fleet started together does not poll the
    bucket in lockstep (docs/security.md#cost-guardrails)."""
    return interval * (1 + rng.uniform(-jitter, jitter))


@contextlib.contextmanager
def cycle_lock(state_dir: Path, wait: float = 10.0) -> Iterator[None]:
    """Hold `<state_dir>/cycle.lock`; BosunError if another agent holds it for `wait` seconds."""
    fd = os.open(state_dir / "cycle.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise BosunError(
                        f"another bosun-agent is running a cycle ({state_dir / 'cycle.lock'} is held); "
                        "run only one of cron and daemon mode"
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)


def run_once(agent: Agent) -> CycleResult:
    with cycle_lock(agent.dir.root):
        return agent.cycle()


def run_daemon(agent: Agent) -> int:
    import random
    import signal  # the daemon's: a cron cycle (run_once) never imports them

    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info(
            "daemon.signal signal=%s: finishing the current cycle", signal.Signals(signum).name
        )
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    cfg = agent.cfg
    backoff = 0.0
    rng = random.Random()
    log.info(
        "daemon.start machine=%s poll=%gs heartbeat=%gs",
        cfg.machine,
        cfg.poll_interval,
        cfg.heartbeat_interval,
    )
    status = "starting"
    while not stop.is_set():
        try:
            with cycle_lock(agent.dir.root):
                result = agent.cycle(status=status)
            status = "running"
        except BosunError as exc:
            log.error("daemon.cycle_skipped error=%s", exc)
            result = None
        except Exception:  # a bug: keep the machine managed, leave the traceback in the log
            log.exception("daemon.cycle_crashed; retrying after the backoff")
            result = CycleResult(False, False, ("agent bug",), store_down=True)
        if result is not None and result.store_down:
            backoff = min(cfg.poll_interval, max(1.0, backoff * 2))
            wait = backoff
            log.warning("daemon.store_down retry_in=%.1fs", wait)
        else:
            backoff = 0.0
            wait = jittered(cfg.poll_interval, cfg.jitter, rng)
        end = time.monotonic() + wait
        while not stop.is_set():
            left = end - time.monotonic()
            if left <= 0:
                break
            stop.wait(min(1.0, left))
            if not stop.is_set():
                agent.supervise_tick()
    with cycle_lock(agent.dir.root, wait=30.0):
        agent.final_report()
    log.info("daemon.stopped machine=%s", cfg.machine)
    return 0
