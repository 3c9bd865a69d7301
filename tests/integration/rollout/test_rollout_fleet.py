"""Rollouts on a real fleet: agents, the example app and balancer, a controller process.

The tests share one fleet and run in file order (each starts from where the last left it):
1. a bad release (30% errors) is halted at its canary and reverted automatically; the
   cycles from the failed gate to version 1 serving all traffic again are measured;
2. a good release goes through shadow, canary and steps, and no client request is
   answered by the new version while it is only a shadow;
3. a bad release right after a good one (the old machines still kept warm): what the
   planner does when every standby is a kept-warm previous machine (see the report);
4. a release still baking when its progress_deadline passes is reverted;
5. `bosun rollout undo` after a completed release whose previous machines are kept warm
   puts all traffic back on the old version in one cycle, with no client error; the time
   from the undo to the last answer from the undone version is measured, beside the time
   the same stages took going forward.
`bosun rollout status --watch` follows 1, 2, 4 and 5 off a terminal (a line per change) and
exits 3 (reverted), 0 (complete), 5 (deadline) and 0 (the undo).
"""

from __future__ import annotations

import fcntl
import itertools
import math
import os
import pty
import re
import struct
import subprocess
import termios
import threading
import time
from typing import Any

from devkit.demo.fleet import BAD, GOOD
from tests.integration.rollout.conftest import TIMING, Fleet, all_from, errors, follow
from tests.support.procfleet import BOSUN

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r")


class PtyRun:
    """A command on a pseudo-terminal (120x40); everything it draws is kept."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        self.proc = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
        )
        os.close(slave)
        self.master = master
        self.chunks: list[bytes] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # EIO: the other side closed
                break
            if not data:
                break
            self.chunks.append(data)

    def finish(self, timeout: float) -> tuple[int, str]:
        try:
            code = self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout=5)
            self.reader.join(timeout=5)
            os.close(self.master)
        return code, ANSI.sub("", b"".join(self.chunks).decode(errors="replace"))


FIGURES: dict[str, Any] = {}


class Watcher:
    """`bosun rollout status web --watch` with its output to pipes (not a terminal)."""

    def __init__(self, f: Fleet) -> None:
        argv = [*BOSUN, "rollout", "status", "web", "--watch", "--interval", "0.2s",
                "--timeout", "90s", "--store", f.url]  # fmt: skip
        self.proc = subprocess.Popen(
            argv, env=f.book.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def finish(self, timeout: float = 20) -> tuple[int, list[str], str]:
        """(exit code, the lines it streamed, what it wrote to stderr)."""
        try:
            out, err = self.proc.communicate(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout=5)
        return self.proc.returncode, out.splitlines(), err


def _check_stream(lines: list[str], version: str, end: str) -> None:
    """One line per change (none repeated), ending with the rollout's end state (a success's
    closing line is on stdout too, a failure's on stderr)."""
    if end == "complete":
        assert lines[-1].startswith("rollout of web ") and lines[-1].endswith("(exit 0)"), lines
        lines = lines[:-1]
    bodies = [line.split(" ", 1)[1] for line in lines]
    assert bodies, "the watch printed nothing"
    assert all(a != b for a, b in itertools.pairwise(bodies)), lines
    assert f"-> {version}: {end}" in bodies[-1], lines


def _strategy(*, shadow: bool) -> dict[str, Any]:
    from devkit.demo.fleet import rollout_value

    value = rollout_value(TIMING)
    if not shadow:
        value["steps"] = [s for s in value["steps"] if "shadow" not in s]
    return value


def _states(seen: list[dict[str, Any]], to: str) -> list[str]:
    out: list[str] = []
    for doc in seen:
        if doc["to_version"] == to and (not out or out[-1] != doc["state"]):
            out.append(doc["state"])
    return out


def _all_from(f: Fleet, version: str, quiet: float, start: float) -> float:
    assert f.client is not None
    return all_from(f, f.client, version, quiet, start)


def _errors(f: Fleet, since: float) -> dict[str, int]:
    assert f.client is not None
    return errors(f.client, since)


def test_bad_release_halted_at_canary_and_reverted(rollout_fleet: Fleet) -> None:
    """2.0-bad (30% errors) fails its canary gate; the next cycles put 1.0 back on all
    traffic (revert = mode change of warm machines), and the cycles it takes are measured."""
    f = rollout_fleet
    t0 = time.time()
    f.apply(BAD, _strategy(shadow=False))
    piped = Watcher(f)
    seen = follow(f, "web", BAD, ("reverted", "halted", "complete"), 45)
    final = seen[-1]
    assert final["state"] == "reverted", final
    code, lines, err = piped.finish()
    assert code == 3, (lines, err)
    _check_stream(lines, BAD, "reverted")
    assert "reverted" in err and "(exit 3)" in err
    assert final["step_kind"] == "canary" and final["step"] == 1, final
    assert "error rate" in final["reason"], final["reason"]
    reverted = f.events(t0, "rollout.reverted")
    assert len(reverted) == 1, reverted
    fail_cycle, fail_t = int(reverted[0]["cycle"]), float(reverted[0]["t"])
    last_bad = _all_from(f, "1.0", quiet=3.0, start=t0)
    # the balancer's peers and the canary's mode were written in the failing cycle itself
    written = [e for e in f.events(t0, "desired.written") if int(e["cycle"]) == fail_cycle]
    lb_same_cycle = any(e.get("machine") == "lb-1" for e in written)
    cycles = max(1, math.ceil((last_bad - fail_t) / TIMING.every))
    FIGURES["revert"] = {
        "fail_cycle": fail_cycle,
        "lb_peers_written_same_cycle": lb_same_cycle,
        "seconds_to_v1_only": round(last_bad - fail_t, 2),
        "cycles_to_v1_only": cycles,
        "client_errors": _errors(f, t0),
        "client_answers_by_2.0-bad": sum(a.version == BAD for a in f.client.since(t0)),  # type: ignore[union-attr]
        "gate": final["gate"],
        "states": _states(seen, BAD),
    }
    print(f"\nrevert: {FIGURES['revert']}")
    assert lb_same_cycle, f"lb-1 not rewritten in the failing cycle {fail_cycle}: {written}"
    others = {k: n for k, n in FIGURES["revert"]["client_errors"].items() if BAD not in k}
    details = sorted({a.detail for a in f.client.since(t0) if a.detail})  # type: ignore[union-attr]
    assert others == {}, f"client errors not answered by the bad canary: {others} {details}"
    assert cycles <= 4, FIGURES["revert"]
    assert not any(b["machine"] for b in f.peers().get("mirror", []))


def test_good_release_through_shadow_canary_and_steps(rollout_fleet: Fleet) -> None:
    """2.0 goes shadow -> canary -> steps -> complete; while it is a shadow it receives
    mirrored traffic but no client answer comes from it."""
    f = rollout_fleet
    assert f.client is not None
    t0 = time.time()
    f.apply(GOOD, _strategy(shadow=True))
    piped = Watcher(f)
    watcher: list[PtyRun] = []
    captures: dict[str, str] = {}

    def on_doc(doc: dict[str, Any]) -> None:
        if not watcher:  # `status --watch` on a terminal, from the first step to the end
            argv = [*BOSUN, "rollout", "status", "web", "--watch", "--store", f.url]
            watcher.append(PtyRun(argv, {**f.book.env, "TERM": "xterm"}))
        if doc["state"] == "canary" and doc["gate"].get("new_requests") and not captures:
            captures["canary"] = f.bosun("rollout", "status", "web").stdout

    seen = follow(f, "web", GOOD, ("complete", "reverted", "halted"), 60, on_doc)
    states = _states(seen, GOOD)
    code, drawn = watcher[0].finish(timeout=15)
    assert code == 0, drawn[-2000:]
    piped_code, lines, err = piped.finish()
    assert piped_code == 0, (lines, err)
    _check_stream(lines, GOOD, "complete")
    assert any(": shadow;" in line for line in lines) and any(": canary;" in line for line in lines)
    for text in ("web: 1.0 -> 2.0", "step 2 of 4: canary", "step 3 of 4: percent",
                 "new version 1 (serving)", "error rate", ">= 20", "complete"):  # fmt: skip
        assert text in drawn, (text, drawn[-3000:])
    print("\n" + captures.get("canary", "(no canary capture)"))
    assert seen[-1]["state"] == "complete", (states, seen[-1])
    for state in ("shadow", "canary", "steps"):
        assert state in states, states
    steps = f.events(t0, "rollout.step")
    into_canary = [e for e in steps if "now step 2" in e["reason"]]
    assert into_canary, steps
    canary_at = float(into_canary[0]["t"])
    shadow_window = [a for a in f.client.since(t0) if a.at < canary_at]
    assert shadow_window, "no client traffic during shadow"
    shadows = {
        str(e["machine"])
        for e in f.events(t0, "machine.assigned")
        if f"-> shadow/web@{GOOD}" in str(e.get("reason", ""))
    }
    assert shadows, "no machine was made a shadow"
    answered_by_new = [a for a in shadow_window if a.version == GOOD or a.backend in shadows]
    assert answered_by_new == [], answered_by_new[:5]
    assert all(a.version == "1.0" and a.status == 200 for a in shadow_window)
    mirrored = int(into_canary[0]["data"]["new_requests"])
    assert mirrored >= 20  # the shadow was measured on mirrored copies
    _all_from(f, GOOD, quiet=2.0, start=canary_at)
    assert _errors(f, t0) == {}, "a good release cost clients errors"
    FIGURES["good"] = {
        "states": states,
        "seconds": round(seconds(seen[-1]["finished_at"]) - t0, 1),
        "shadow_answers_checked": len(shadow_window),
        "shadow_machines": sorted(shadows),
        "shadow_mirrored_requests": mirrored,
    }
    print(f"\ngood: {FIGURES['good']}")


def test_bad_release_while_previous_machines_are_kept_warm(rollout_fleet: Fleet) -> None:
    """Right after 2.0 completed (1.0 machines kept warm as `previous`), 2.0-bad still gets
    its shadow step (the kept-warm machines are released to be standbys), is stopped, and
    2.0 serves all traffic again; records which steps ran and the gate numbers seen."""
    f = rollout_fleet
    t0 = time.time()
    f.apply(BAD, _strategy(shadow=True))
    seen = follow(f, "web", BAD, ("reverted", "halted", "complete"), 45)
    final = seen[-1]
    gates = [
        (d["state"], d["gate"].get("new_requests"), d["gate"].get("new_errors"),
         d["gate"].get("new_error_rate"))
        for d in seen if d["to_version"] == BAD and d.get("gate")
    ]  # fmt: skip
    skipped = f.events(t0, "rollout.step_skipped")
    reverted = f.events(t0, "rollout.reverted")
    assert len(reverted) == 1, reverted
    last_bad = _all_from(f, GOOD, quiet=2.0, start=t0)
    FIGURES["bad_after_good"] = {
        "states": _states(seen, BAD),
        "shadow_skipped": [e["reason"] for e in skipped],
        "gates": gates,
        "final": {k: final[k] for k in ("state", "step", "step_kind", "reason")},
        "seconds_to_v2_only": round(last_bad - float(reverted[0]["t"]), 2),
        "client_errors": _errors(f, t0),
    }
    print(f"\nbad after good: {FIGURES['bad_after_good']}")
    history = f.bosun("rollout", "history", "web")
    assert history.returncode == 0, history.stderr
    print(history.stdout)
    for text in ("reverted", "new_error_rate="):
        assert text in history.stdout, text
    assert not skipped, skipped  # the shadow step ran: no "no standby to mirror to"
    assert "shadow" in FIGURES["bad_after_good"]["states"], FIGURES["bad_after_good"]
    assert final["state"] == "reverted", final


def test_a_release_past_its_progress_deadline_is_reverted(rollout_fleet: Fleet) -> None:
    """2.1 passes its gates but its canary bakes for an hour: when the 4 s progress_deadline
    passes the controller reverts it, and `status --watch` exits 5 (not 3: no gate failed)."""
    f = rollout_fleet
    t0 = time.time()
    strategy = {**_strategy(shadow=False), "steps": [{"canary": 1, "bake": "1h"}],
                "watch": "0s", "progress_deadline": "4s"}  # fmt: skip
    f.apply("2.1", strategy)
    piped = Watcher(f)
    seen = follow(f, "web", "2.1", ("reverted", "halted", "complete"), 30)
    final = seen[-1]
    assert final["state"] == "reverted" and "progress_deadline" in final["reason"], final
    code, lines, err = piped.finish()
    assert code == 5, (lines, err)
    _check_stream(lines, "2.1", "reverted")
    assert "passed its progress_deadline" in err
    _all_from(f, GOOD, quiet=2.0, start=t0)
    FIGURES["deadline"] = {"seconds": round(seconds(final["finished_at"]) - t0, 1),
                           "lines": len(lines), "client_errors": _errors(f, t0)}  # fmt: skip
    print(f"\ndeadline: {FIGURES['deadline']}")


def test_undo_with_warm_machines_is_one_cycle_without_errors(rollout_fleet: Fleet) -> None:
    """2.2 completes with keep_warm: its previous machines (2.0) keep running out of the
    balancer; `bosun rollout undo web` then puts every answer back on 2.0 within one poll and
    one cycle (no stages), and no client request fails."""
    f = rollout_fleet
    assert f.client is not None
    strategy = {**_strategy(shadow=False), "keep_previous": "2m", "keep_warm": "1m"}
    machines = f.cluster()["machines"]
    old = next(
        s["running"] for s in machines.values() if s["mode"] == "active" and s["service"] == "web"
    )
    f.apply(old, strategy)  # the release to go back to, as the spec's revision before 2.2
    t0 = time.time()
    f.apply("2.2", strategy)
    seen = follow(f, "web", "2.2", ("complete", "reverted", "halted"), 60)
    assert seen[-1]["state"] == "complete", seen[-1]
    staged = _all_from(f, "2.2", quiet=2.0, start=t0)  # the last 2.0 answer going forward
    previous = sorted(
        m for m, s in f.cluster()["machines"].items() if s["mode"] == "warm" and s["running"] == old
    )
    assert len(previous) == 2, f.cluster()["machines"]

    def answering() -> bool:  # warm: their process runs, healthy, out of the balancer
        machines = f.cluster()["machines"]
        backends = {b["machine"] for b in f.peers().get("backends", [])}
        return all(machines[m]["health"] == "healthy" for m in previous) and not (
            backends & set(previous)
        )

    f.wait("the previous machines warm and healthy, out of the balancer", answering, 15)
    failures = f.client.failures
    t_undo = time.time()
    undo = f.bosun("rollout", "undo", "web")
    assert undo.returncode == 0, undo.stderr
    t_recorded = time.time()  # the CLI has written the spec revision
    piped = Watcher(f)  # follows the rollout to the spec's version: the undo's
    back = follow(f, "web", old, ("complete", "reverted", "halted"), 20)
    final = back[-1]
    assert final["state"] == "complete" and final.get("undo", {}).get("warm") is True, final
    last_undone = _all_from(f, old, quiet=3.0, start=t_undo)
    code, lines, err = piped.finish()
    assert code == 0, (lines, err)
    assert any("undo to revision" in line for line in lines), lines
    assert not f.events(t_undo, "rollout.step"), "the undo went through stages"
    backends = sorted(b["machine"] for b in f.peers().get("backends", []))
    acted = f.events(t_undo, "rollout.undo")
    assert len(acted) == 1 and acted[0]["data"]["warm"] is True, acted
    FIGURES["undo"] = {
        "seconds_undo_to_all_on_old": round(last_undone - t_undo, 2),
        "seconds_recorded_to_all_on_old": round(last_undone - t_recorded, 2),
        "seconds_cycle_acted_to_all_on_old": round(last_undone - seconds(acted[0]["t"]), 2),
        "seconds_stages_forward_baseline": round(staged - t0, 2),
        "poll_plus_cycle": TIMING.poll + TIMING.every,
        "client_errors": _errors(f, t_undo),
        "client_failures": f.client.failures - failures,
        "answers_checked": len(f.client.since(t_undo)),
        "backends": backends,
    }
    print(f"\nundo: {FIGURES['undo']}")
    assert backends == previous, (backends, previous)
    assert FIGURES["undo"]["client_errors"] == {}, FIGURES["undo"]
    assert FIGURES["undo"]["client_failures"] == 0, FIGURES["undo"]
    # one poll of the balancer's agent plus one controller cycle from the recorded undo, with
    # room for a loaded host
    assert last_undone - t_recorded <= TIMING.poll + TIMING.every + 2.0, FIGURES["undo"]


def seconds(value: object) -> float:
    """A time of a bucket document (ISO 8601 UTC) in Unix seconds."""
    from wire.times import parse_time

    return parse_time(value, "test")
