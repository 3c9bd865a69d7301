"""The story the demo tells, one phase at a time; each phase ends in a checked state.

    converge   the fleet converges: 4 web + 1 lb active and healthy, the rest warm standby
    follow     the balancer follows its backends: web scaled to 5, then back to 4
    replace    a web machine is killed (SIGKILL, agent and app); a standby replaces it,
               the balancer drops it; then it boots again and rejoins as standby
    release    version 2.0 through shadow, canary and steps
    revert     version 2.0-bad halted by the gates and reverted automatically
    drain      a machine with an open call is drained before it changes

Every wait is bounded by the timing's phase timeout; a phase that misses its end state
is `failed` with what it last saw.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from devkit.demo.fleet import BAD, GOOD, WEB_COUNT
from devkit.demo.observe import View, http_json
from wire.documents import decode_snapshot_body, parse_envelope
from wire.errors import BosunError
from wire.layout import report_key
from wire.store import StoredObject

if TYPE_CHECKING:
    from devkit.demo.run import Demo


class PhaseFailed(Exception):
    """The phase did not reach its end state; the message says what was missing."""


def wait_until(demo: Demo, what: str, check: Callable[[View], bool], timeout: float) -> View:
    deadline = time.monotonic() + timeout
    view = demo.watcher.view
    while time.monotonic() < deadline:
        if demo.stopping.is_set():
            raise PhaseFailed(f"interrupted while waiting for {what}")
        problem = demo.exited()
        if problem:
            raise PhaseFailed(f"while waiting for {what}: {problem}")
        view = demo.watcher.wait(0.5)
        if check(view):
            return view
    raise PhaseFailed(f"timed out after {timeout:g}s waiting for {what}; {_glance(view)}")


def _glance(view: View) -> str:
    web, lb = view.service("web"), view.service("lb")
    return (
        f"last seen: web active {web.get('active')} healthy {web.get('healthy')} "
        f"versions {web.get('versions')}, lb healthy {lb.get('healthy')}, "
        f"balancer {view.lb_machine} backends {sorted(view.lb_backends())}"
    )


def fleet_ready(count: int) -> Callable[[View], bool]:
    """web has `count` healthy actives, lb one, all applied, the balancer lists exactly them."""

    def check(v: View) -> bool:
        web, lb = v.service("web"), v.service("lb")
        return (
            web.get("healthy") == count
            and web.get("active") == count
            and lb.get("healthy") == 1
            and v.settled()
            and v.lb is not None
            and set(v.lb_backends()) == v.actives("web")
        )

    return check


def dwell(demo: Demo) -> None:
    """Let the client's steady traffic run for a moment in the phase's end state."""
    demo.stopping.wait(demo.timing.dwell)


# ---- phases -------------------------------------------------------------------------------


def converge(demo: Demo) -> dict[str, Any]:
    started = time.monotonic()
    view = wait_until(
        demo,
        "4 web and 1 lb healthy behind the balancer",
        fleet_ready(WEB_COUNT),
        demo.timing.phase_timeout * 2,
    )
    demo.client_on()
    dwell(demo)
    return {
        "note": f"converged in {time.monotonic() - started:.1f}s",
        "web": sorted(view.actives("web")),
        "lb": view.lb_machine,
        "standby": sorted(m for m, s in view.machines().items() if s.get("mode") == "standby"),
    }


def follow(demo: Demo) -> dict[str, Any]:
    before = sorted(demo.watcher.view.lb_backends())
    demo.apply_spec("web-count-5", web_count=WEB_COUNT + 1)
    up = wait_until(
        demo,
        "a 5th web machine in the balancer",
        fleet_ready(WEB_COUNT + 1),
        demo.timing.phase_timeout,
    )
    added = sorted(set(up.lb_backends()) - set(before))
    dwell(demo)
    demo.apply_spec("web-count-4", web_count=WEB_COUNT)
    down = wait_until(
        demo, "web back to 4 in the balancer", fleet_ready(WEB_COUNT), demo.timing.phase_timeout
    )
    removed = sorted(set(up.lb_backends()) - set(down.lb_backends()))
    dwell(demo)
    return {
        "note": f"scaled to 5 (+{', '.join(added)}) and back to 4 (-{', '.join(removed)})",
        "added": added,
        "removed": removed,
        "backends": sorted(down.lb_backends()),
    }


def replace(demo: Demo) -> dict[str, Any]:
    view = demo.watcher.view
    victim = sorted(view.actives("web"))[-1]
    killed_at = time.monotonic()
    demo.kill_machine(victim)
    demo.say(f"[bold red]killed {victim}[/] (SIGKILL to its agent and its app)")

    def replaced(v: View) -> bool:
        return (
            v.machines().get(victim, {}).get("lost") is True
            and victim not in v.lb_backends()
            and fleet_ready(WEB_COUNT)(v)
        )

    after = wait_until(
        demo,
        f"{victim} replaced and out of the balancer",
        replaced,
        demo.timing.heartbeat_timeout + demo.timing.phase_timeout,
    )
    took = time.monotonic() - killed_at
    newcomer = sorted(after.actives("web") - view.actives("web"))
    dwell(demo)
    demo.restart_agent(victim)
    demo.say(f"{victim} boots again (its agent restarts)")
    wait_until(
        demo,
        f"{victim} back as warm standby",
        lambda v: (
            v.machines().get(victim, {}).get("mode") == "standby"
            and not v.machines().get(victim, {}).get("lost")
            and fleet_ready(WEB_COUNT)(v)
        ),
        demo.timing.phase_timeout,
    )
    return {
        "note": f"{victim} killed; replaced by {', '.join(newcomer) or '?'} in {took:.1f}s",
        "killed": victim,
        "replaced_by": newcomer,
        "seconds_to_replace": round(took, 2),
    }


def _running(v: View, machines: set[str]) -> set[str]:
    return {str(v.machines().get(m, {}).get("running")) for m in machines}


def _track(seen: list[str], v: View, version: str) -> str:
    """The rollout's state, once it is the rollout to `version`; new states go to `seen`."""
    r = v.rollout("web") or {}
    if r.get("to_version") != version:
        return ""
    state = str(r.get("state") or "")
    if state and (not seen or seen[-1] != state):
        seen.append(state)
    return state


def release(demo: Demo) -> dict[str, Any]:
    demo.apply_spec("release-2.0", version=GOOD, rollout=True)
    seen: list[str] = []

    def done(v: View) -> bool:
        return (
            _track(seen, v, GOOD) == "complete"
            and _running(v, v.actives("web")) == {GOOD}
            and fleet_ready(WEB_COUNT)(v)
        )

    wait_until(demo, f"the rollout of {GOOD} to complete", done, demo.timing.phase_timeout * 3)
    dwell(demo)
    stages = (
        ("shadow", "canary", "steps") if demo.spec_args.get("shadow", True) else ("canary", "steps")
    )
    missing = [s for s in stages if s not in seen]
    if missing:
        raise PhaseFailed(f"the rollout completed without the steps {missing}: {seen}")
    return {
        "note": f"{GOOD} released: {' -> '.join(seen)}",
        "states": seen,
        "answers_by_version": dict(demo.client.tally("release").by_version),
    }


def revert(demo: Demo) -> dict[str, Any]:
    demo.client.canary_versions = frozenset({BAD})
    demo.apply_spec("release-2.0-bad", version=BAD, rollout=True)
    seen: list[str] = []

    def reverted(v: View) -> bool:
        backends = set(v.lb_backends()) | v.lb_mirrors()
        return (
            _track(seen, v, BAD) in ("reverted", "halted")
            and _running(v, v.actives("web")) == {GOOD}
            and BAD not in _running(v, backends)
            and fleet_ready(WEB_COUNT)(v)
        )

    wait_until(
        demo, f"{BAD} halted and reverted to {GOOD}", reverted, demo.timing.phase_timeout * 3
    )
    reason = str((demo.watcher.view.rollout("web") or {}).get("reason", ""))
    demo.client.canary_versions = frozenset()
    demo.apply_spec("back-to-2.0", version=GOOD)  # the operator puts the spec back
    dwell(demo)
    return {
        "note": f"{BAD} stopped: {' -> '.join(seen)} ({reason})",
        "states": seen,
        "reverted": "reverted" in seen,
        "gate_reason": reason,
    }


def reported_sessions(demo: Demo, machine: str) -> int:
    """Open sessions in `machine`'s last report (read as an operator would, unverified)."""
    got = demo.store.get(report_key(machine))
    if not isinstance(got, StoredObject):
        return 0
    try:
        snap = decode_snapshot_body(parse_envelope(got.body).body)
    except BosunError:
        return 0
    return sum(snap.sessions.values())


def drain(demo: Demo) -> dict[str, Any]:
    view = demo.watcher.view
    actives = sorted(view.actives("web"))
    for m in actives:  # a call on every machine: the scale-down must drain one of them
        http_json(demo.machines[m].ports["web"], "POST", "/sessions/open?channel=voice")
    # The controller must know about the calls before the scale-down, or it has nothing to
    # drain: wait until every machine's own report in the bucket shows its call.
    wait_until(
        demo,
        "the agents to report their calls",
        lambda _v: all(reported_sessions(demo, m) > 0 for m in actives),
        demo.timing.phase_timeout,
    )
    demo.say(f"opened a voice session on {', '.join(actives)}; scaling web to {WEB_COUNT - 1}")
    demo.apply_spec("web-count-3", web_count=WEB_COUNT - 1)

    def draining(v: View) -> str | None:
        return next((m for m in actives if v.machines().get(m, {}).get("mode") == "draining"), None)

    seen = wait_until(
        demo, "a machine in draining", lambda v: draining(v) is not None, demo.timing.phase_timeout
    )
    held = draining(seen)
    assert held is not None
    version = seen.machines()[held].get("running")
    dwell(demo)
    still = demo.watcher.view.machines().get(held, {})
    if still.get("mode") != "draining" or still.get("running") != version:
        raise PhaseFailed(f"{held} changed while its session was open: {still}")
    # the desired peers drop it in the same cycle; the balancer applies them at its agent's
    # next poll: wait for that (bounded), then the machine must still be draining
    wait_until(
        demo, f"the balancer to stop sending {held} new requests",
        lambda v: held not in v.lb_backends(), demo.timing.phase_timeout,
    )  # fmt: skip
    if demo.watcher.view.machines().get(held, {}).get("mode") != "draining":
        raise PhaseFailed(f"{held} left draining while its session was open")
    for m in actives:
        http_json(demo.machines[m].ports["web"], "POST", "/sessions/close-all")
    demo.say("calls ended (sessions closed)")
    wait_until(
        demo,
        f"{held} to leave draining once its sessions ended",
        lambda v: (
            v.machines().get(held, {}).get("mode") == "standby" and fleet_ready(WEB_COUNT - 1)(v)
        ),
        demo.timing.phase_timeout,
    )
    return {"note": f"{held} drained, then moved to standby", "drained": held}


PHASES: tuple[tuple[str, str, Callable[[Demo], dict[str, Any]]], ...] = (
    ("converge", "(a) the fleet converges", converge),
    ("follow", "(b) the balancer follows its backends", follow),
    ("replace", "(c) a killed machine is replaced", replace),
    ("release", "(d) a good version: shadow, canary, steps", release),
    ("revert", "(e) a bad version: halted and reverted", revert),
    ("drain", "(f) a machine with a call is drained first", drain),
)
