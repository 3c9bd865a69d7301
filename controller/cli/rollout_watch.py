"""`bosun rollout status SERVICE --watch`: follow a rollout to its end, for people and for CI.

On a terminal the view is redrawn in place (rich Live); otherwise (a pipe, a CI log) one line
is printed per change, or with `-o json` one JSON document per line. The watch follows the
rollout to the spec's version of SERVICE (waiting for it to start when the spec was just
changed) and exits with a code a pipeline can gate on, as `kubectl rollout status` does:

    0  complete (or the service is back on the version the spec asks for)
    3  reverted (a gate failed, or `bosun rollout abort`)
    4  halted (a gate failed with on_failure: halt; `bosun rollout resume` goes on)
    5  the rollout's progress_deadline passed (it was reverted or halted for it)
    6  --timeout passed first; the rollout goes on
    2  an error (no spec, unknown service, unreadable status), as every bosun command
  130  interrupted (Ctrl-C)
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from rich.console import Console
from rich.live import Live

from controller.cli import rollout_view as view
from controller.planner.model import ROLLOUT_ACTIVE
from controller.spec.model import ClusterSpec
from wire.errors import ObjectMissing, SpecError
from wire.store import Store

EXIT_CODES = {
    "complete": 0,
    "reverted": 3,
    "halted": 4,
    "deadline": 5,
    "timeout": 6,
    "interrupted": 130,
}


@dataclass(frozen=True, slots=True)
class Watched:
    doc: dict[str, Any] | None  # the last status document read (None: no rollout yet)
    end: str  # a key of EXIT_CODES

    @property
    def code(self) -> int:
        return EXIT_CODES[self.end]


def deadline_passed(doc: dict[str, Any]) -> bool:
    """The rollout failed because its progress_deadline passed (the planner's `failure`
    field when it writes one, else the reason it gives)."""
    if doc.get("failure") is not None:
        return doc.get("failure") == "deadline"
    return str(doc.get("reason", "")).startswith("progress_deadline")


def outcome(spec: ClusterSpec, service: str, doc: dict[str, Any] | None) -> str | None:
    """How the rollout to the spec's version of SERVICE ended, or None while it is on its
    way (or has still to start: the controller starts it on its next cycle)."""
    version = spec.services[service].version
    if doc is None:
        return None
    state = doc.get("state")
    if doc.get("to_version") == version:
        if state == "complete":
            return "complete"
        if state in ("reverted", "halted"):
            return "deadline" if deadline_passed(doc) else str(state)
        return None  # active, or superseded and asked for again: a new one starts
    if state in ("superseded", "reverted") and doc.get("from_version") == version:
        return "complete"  # the spec went back to the version this rollout left: no rollout
    if state in ROLLOUT_ACTIVE or spec.rollout_of(service) is not None:
        return None  # the spec's change supersedes it, or starts the next one
    raise SpecError(
        f"rollout status --watch: {service} has no rollout strategy (services.{service}."
        f"rollout or a top-level rollout): its version {version} applies at once; "
        f"`bosun status` shows the machines"
    )


def read(store: Store, service: str) -> dict[str, Any] | None:
    try:
        return view.load_status(store, service)
    except ObjectMissing:
        return None


def watch(
    store: Store,
    service: str,
    interval: float,
    show: Callable[[ClusterSpec, dict[str, Any] | None], None],
    *,
    timeout: float = 0.0,
    clock: Callable[[], float] = time.monotonic,
) -> Watched:
    """Read spec and status every `interval` and `show` them, until the rollout ends (or
    `timeout` seconds when > 0, or Ctrl-C)."""
    started = clock()
    doc: dict[str, Any] | None = None
    try:
        while True:
            spec = view.load_spec(store, service, "status")
            doc = read(store, service)
            show(spec, doc)
            end = outcome(spec, service, doc)
            if end is not None:
                return Watched(doc, end)
            if timeout and clock() - started >= timeout:
                return Watched(doc, "timeout")
            time.sleep(interval)
    except KeyboardInterrupt:
        return Watched(doc, "interrupted")


def on_terminal(
    store: Store, service: str, console: Console, interval: float, *, timeout: float = 0.0
) -> Watched:
    """The live view, redrawn in place."""
    with Live(console=console, auto_refresh=False) as live:

        def show(spec: ClusterSpec, doc: dict[str, Any] | None) -> None:
            live.update(view.render_watch(service, doc, spec), refresh=True)

        return watch(store, service, interval, show, timeout=timeout)


def streamed(
    store: Store,
    service: str,
    interval: float,
    *,
    as_json: bool = False,
    timeout: float = 0.0,
    write: Callable[[str], None] | None = None,
) -> Watched:
    """One line per change: the status line (`view.status_line`) with the time, or the
    status document as one line of JSON."""
    out = write or _write_line
    last: list[str] = []

    def show(spec: ClusterSpec, doc: dict[str, Any] | None) -> None:
        if as_json:
            line = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS).decode() if doc else ""
            stamp = ""
        else:
            line = view.status_line(service, doc, spec)
            stamp = time.strftime("%H:%M:%SZ ", time.gmtime())
        if line and (not last or line != last[-1]):
            last[:] = [line]
            out(stamp + line)

    return watch(store, service, interval, show, timeout=timeout)


def _write_line(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def final_line(service: str, watched: Watched) -> str:
    """What the watch says when it stops, with its exit code."""
    doc = watched.doc or {}
    what = f"{service} {doc.get('from_version')} -> {doc.get('to_version')}" if doc else service
    reason = f": {doc['reason']}" if doc.get("reason") else ""
    text = {
        "complete": f"rollout of {what} complete{reason}",
        "reverted": f"rollout of {what} reverted{reason}",
        "halted": f"rollout of {what} halted{reason}; `bosun rollout resume {service}` "
        "goes on, `bosun rollout abort` reverts",
        "deadline": f"rollout of {what} passed its progress_deadline{reason}",
        "timeout": f"rollout of {what} still in progress when --timeout passed",
        "interrupted": f"stopped watching {what}; the rollout goes on",
    }[watched.end]
    return f"{text} (exit {watched.code})"
