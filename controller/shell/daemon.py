"""`bosun controller run`: cycles on an APScheduler BlockingScheduler until stopped.

One cycle at a time (`max_instances=1`, `coalesce=True`: a slow cycle is never overlapped
and missed runs collapse into one). SIGTERM and SIGINT stop the scheduler, wait for the
cycle in progress to finish, then release the lease so a standby takes over at once.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType

from apscheduler.schedulers.blocking import BlockingScheduler

from controller.shell.cycle import Controller, CycleReport
from controller.shell.heap import Heap
from wire.errors import BosunError

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 10.0  # until the first cycle has read the spec


def run_forever(
    controller: Controller,
    every: float | None,
    on_report: Callable[[CycleReport], None] | None = None,
    *,
    longest: float | None = None,
    on_failure: Callable[[str], None] | None = None,
) -> None:
    """Cycle until SIGTERM/SIGINT. `every`: a fixed interval; None: the applied spec's
    `settings.controller_interval`, followed as it changes (10 s until a spec is read).
    `longest`: an interval the lease allows (below its renew deadline); a spec asking for
    more is held to it, with a warning. `on_failure` hears of a cycle that raised:
    "failed" (a known error) or "crashed" (a bug)."""
    fixed = every is not None
    current = [every if every is not None else DEFAULT_INTERVAL]
    scheduler = BlockingScheduler(timezone=UTC)
    busy = threading.Lock()
    heap = Heap()
    stopping = threading.Event()

    def job() -> None:
        if stopping.is_set():
            return
        with busy:
            try:
                report = controller.cycle()
            except BosunError as exc:  # a bad cycle never stops the daemon
                log.error("cycle.failed: %s", exc)
                if on_failure is not None:
                    on_failure("failed")
                return
            except Exception:
                log.exception("cycle.crashed")
                if on_failure is not None:
                    on_failure("crashed")
                return
            finally:
                heap.after_cycle()  # the collector leaves the state kept between cycles be
            if on_report is not None:
                on_report(report)
            if not fixed and controller.interval is not None:
                follow(controller.interval)

    def follow(wanted: float) -> None:
        if longest is not None and wanted >= longest:
            log.warning(
                "controller.interval_held spec asks %gs, the lease allows below %gs: cycling "
                "every %gs",
                wanted,
                longest,
                longest / 2,
            )
            wanted = longest / 2
        if wanted != current[0]:
            log.info("controller.interval %gs -> %gs (spec)", current[0], wanted)
            current[0] = wanted
            scheduler.reschedule_job("cycle", trigger="interval", seconds=wanted)

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("controller.stopping", extra={"ctx": {"signal": signal.Signals(signum).name}})
        stopping.set()
        if scheduler.running:
            scheduler.shutdown(wait=False)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        scheduler.add_job(
            job,
            "interval",
            seconds=current[0],
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now(UTC),
            id="cycle",
            misfire_grace_time=max(1, int(current[0])),
        )
        scheduler.start()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        with busy:  # the cycle in progress, if any, finishes first
            try:
                controller.flush()  # heartbeats not saved yet (a bounded wait otherwise)
            except BosunError as exc:
                log.warning("controller.flush_failed: %s", exc)
            controller.lease.release()
    log.info("controller.stopped")
