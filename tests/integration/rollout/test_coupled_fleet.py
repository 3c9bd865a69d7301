"""A coupled release on a real fleet (docs/spec.md, "Coupled releases: `coupled:`").

Two services of the example app, each behind its own example balancer with its own client:
`router` depends_on `media`, and both are one `coupled:` release. Machines: lb-1 (media-lb),
lb-2 (router-lb), media-1..3 and router-1..3 (count 2 each: 2 active + 1 standby, the
canary's). Agents, the controller and the clients are the rollout fleet's (conftest.py).

The tests share the fleet and run in file order:
1. media and router 1.0 -> 2.0 together: both start in the same cycle and step in the same
   cycles (media first), both complete, and every answer of both clients ends up from 2.0
   with no error on the way;
2. `bosun rollout undo media` takes the release back: both services set back to 1.0 in one
   spec revision, the next cycle starts both rollouts back (router first, no warm machines
   with 3 per service: through the stages), both complete and every answer ends up from
   1.0, with no error;
3. media 1.0 -> 2.1 (good) with router 1.0 -> 2.0-bad (30% of its answers 500): router's
   canary fails its gate and, in that same cycle, router then media are reverted
   (dependents first), both with the release's name and the gate failure in their status;
   both clients end back on 1.0. The only errors a client sees are the bad canary's own
   500s (answered by a 2.0-bad backend, the failure under test); none from the balancers
   (no 502/503), none from another version, none on media, no failed connection.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from controller.spec.load import from_value
from controller.spec.revisions import apply
from devkit.demo import fleet
from devkit.demo.fleet import BAD
from tests.integration.rollout.conftest import (
    TIMING,
    Client,
    all_from,
    converged,
    errors,
    follow,
    start_client,
    stop_clients,
)
from tests.support.procfleet import ProcessFleet, build

T = dataclasses.replace(TIMING, rate=25.0)  # per client: two clients share the 2 cores
GROUP = "router-media"
ORDER = ("media", "router")  # dependency order
LB = {"media": "lb-1", "router": "lb-2"}
ROLES = {
    "lb-1": "media-lb",
    "lb-2": "router-lb",
    **{f"{svc}-{i}": svc for svc in ORDER for i in range(1, 4)},
}
END = ("complete", "reverted", "halted")
FIGURES: dict[str, Any] = {}


def spec_value(run_dir: Path, media: str, router: str) -> dict[str, Any]:
    bake = f"{T.bake:g}s"
    strategy = fleet.rollout_value(T, shadow=False)
    strategy["steps"] = [{"canary": 1, "weight": 50, "bake": bake}, {"percent": 100}]
    value = fleet.spec_value(T, run_dir)  # the demo's settings
    apps = {
        svc: {**fleet.app_value(run_dir, svc, version=v, count=2), "rollout": strategy}
        for svc, v in (("media", media), ("router", router))
    }
    apps["router"]["depends_on"] = ["media"]
    lbs = {
        f"{svc}-lb": {"kind": "loadbalancer", "balances": svc, "version": "1", "count": 1}
        for svc in ORDER
    }
    value["services"] = {**apps, **lbs}
    value["coupled"] = {GROUP: {"services": ["router", "media"]}}
    return value


@dataclass
class CoupledFleet(ProcessFleet):
    clients: dict[str, Client] = field(default_factory=dict)

    def apply(self, media: str, router: str) -> int:
        value = spec_value(self.run_dir, media, router)
        return apply(self.store, from_value(value, source="test"), now=time.time()).revision

    def settled(self) -> None:
        """Both services on 2 healthy active machines + 1 standby, 2 backends each."""
        for svc in ORDER:
            self.wait(
                f"{svc}: 2 healthy active + 1 standby, and 2 backends on {LB[svc]}",
                functools.partial(converged, self, svc, LB[svc], 2, 1),
                60,
            )


@pytest.fixture(scope="module")
def coupled_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CoupledFleet]:
    balancers = [f"{svc}-lb" for svc in ORDER]
    f = CoupledFleet(
        **build(tmp_path_factory.mktemp("coupled-fleet"), ROLES, T, balancers=balancers)
    )
    f.apply("1.0", "1.0")
    try:
        f.start("ctl-coupled")
        f.settled()
        for svc in ORDER:
            f.clients[svc] = start_client(f, LB[svc], f"{svc}-lb", T.rate, 2)
        yield f
    finally:
        stop_clients(*f.clients.values())
        f.stop()


def _by_cycle(events: list[dict[str, Any]]) -> dict[int, list[str]]:
    """The services of these events, per cycle, in the order they were written."""
    out: dict[int, list[str]] = {}
    for e in events:
        out.setdefault(int(e["cycle"]), []).append(str(e["service"]))
    return out


def _failures(f: CoupledFleet) -> dict[str, int]:
    """Each client's failed connections so far (what a test's figures count from)."""
    return {svc: f.clients[svc].failures for svc in ORDER}


def _client_figures(f: CoupledFleet, t0: float, failures: dict[str, int]) -> dict[str, Any]:
    """What the clients saw since `t0`: error answers by status and backend, and connections
    failed since `failures` was taken."""
    return {
        "client_errors": {svc: errors(f.clients[svc], t0) for svc in ORDER},
        "client_failures": {svc: f.clients[svc].failures - n for svc, n in failures.items()},
    }


def test_coupled_release_completes_in_lockstep(coupled_fleet: CoupledFleet) -> None:
    f = coupled_fleet
    t0 = time.time()
    failures = _failures(f)
    f.apply("2.0", "2.0")
    final = {svc: follow(f, svc, "2.0", END, 60)[-1] for svc in ORDER}
    for doc in final.values():
        assert (doc["state"], doc.get("group")) == ("complete", GROUP), doc
    last_old = {svc: all_from(f, f.clients[svc], "2.0", quiet=2.0, start=t0) for svc in ORDER}
    started = f.events(t0, "rollout.started")
    steps = f.events(t0, "rollout.step")
    FIGURES["complete"] = {
        "seconds": {svc: round(last_old[svc] - t0, 1) for svc in ORDER},
        "started": _by_cycle(started),
        "steps": _by_cycle(steps),
        **_client_figures(f, t0, failures),
        "answers": {svc: len(f.clients[svc].since(t0)) for svc in ORDER},
    }
    print(f"\ncoupled complete: {FIGURES['complete']}")
    assert all(e["data"].get("group") == GROUP for e in started + steps), started + steps
    assert list(_by_cycle(started).values()) == [list(ORDER)], started
    assert steps and all(s == list(ORDER) for s in _by_cycle(steps).values()), steps
    assert FIGURES["complete"]["client_errors"] == {"media": {}, "router": {}}, FIGURES
    assert FIGURES["complete"]["client_failures"] == {"media": 0, "router": 0}, FIGURES
    for svc in ORDER:
        # a probe that times out on a loaded host takes a backend out for a cycle or two:
        # wait (bounded) for both, then every recent answer must come from them on 2.0
        def both_serving(svc: str = svc) -> tuple[set[str], set[str]] | None:
            backends = {b["machine"] for b in f.peers(LB[svc]).get("backends", [])}
            recent = f.clients[svc].since(time.time() - 2.0)
            on_new = {a.backend for a in recent}
            if (
                len(backends) == 2
                and on_new == backends
                and all(a.version == "2.0" for a in recent)
            ):
                return backends, on_new
            return None

        f.wait(f"{svc}: 2 backends on 2.0 serving every answer", both_serving, 30)


def test_undo_of_a_member_takes_the_release_back(coupled_fleet: CoupledFleet) -> None:
    f = coupled_fleet
    f.settled()
    t0 = time.time()
    failures = _failures(f)
    undo = f.bosun("rollout", "undo", "media")
    assert undo.returncode == 0, undo.stderr
    assert f"coupled release {GROUP}: router 2.0 -> back to 1.0; media 2.0 -> back to 1.0" in (
        undo.stdout
    )
    final = {svc: follow(f, svc, "1.0", END, 60)[-1] for svc in ORDER}
    for doc in final.values():
        assert (doc["state"], doc.get("group")) == ("complete", GROUP), doc
        assert doc.get("undo", {}).get("warm") is False, doc
    settled = {svc: all_from(f, f.clients[svc], "1.0", quiet=2.0, start=t0) for svc in ORDER}
    undone = f.events(t0, "rollout.undo")
    started = f.events(t0, "rollout.started")
    FIGURES["undo"] = {
        "seconds_to_all_on_1.0": {svc: round(settled[svc] - t0, 1) for svc in ORDER},
        "undo": _by_cycle(undone),
        "started": _by_cycle(started),
        **_client_figures(f, t0, failures),
    }
    print(f"\ncoupled undo: {FIGURES['undo']}")
    assert list(_by_cycle(undone).values()) == [["router", "media"]], undone
    assert list(_by_cycle(started).values()) == [["router", "media"]], started
    assert FIGURES["undo"]["client_errors"] == {"media": {}, "router": {}}, FIGURES
    assert FIGURES["undo"]["client_failures"] == {"media": 0, "router": 0}, FIGURES


def test_failing_member_reverts_both_dependents_first(coupled_fleet: CoupledFleet) -> None:
    f = coupled_fleet
    f.settled()  # the previous release's machines are standbys again (keep_previous)
    t0 = time.time()
    failures = _failures(f)
    f.apply("2.1", BAD)
    to = {"media": "2.1", "router": BAD}
    final = {svc: follow(f, svc, to[svc], END, 60)[-1] for svc in ORDER}
    # status/rollouts/<svc>.json: both reverted as one release, with router's failure
    for doc in final.values():
        assert (doc["state"], doc.get("group"), doc.get("failure")) == ("reverted", GROUP, "gate")
    assert "error rate" in final["router"]["reason"], final["router"]
    assert final["media"]["reason"].startswith(f"coupled release {GROUP}: router failed: ")
    reverted = f.events(t0, "rollout.reverted")
    settled = {svc: all_from(f, f.clients[svc], "1.0", quiet=3.0, start=t0) for svc in ORDER}
    answers = {svc: f.clients[svc].since(t0) for svc in ORDER}
    fail_t = float(reverted[0]["t"]) if reverted else t0
    FIGURES["revert"] = {
        "reverted": [(e["service"], e["cycle"], e["reason"]) for e in reverted],
        "seconds_fail_to_all_on_1.0": {svc: round(settled[svc] - fail_t, 2) for svc in ORDER},
        "answers_by_new": {svc: sum(a.version == to[svc] for a in answers[svc]) for svc in ORDER},
        **_client_figures(f, t0, failures),
        "failure": {svc: final[svc].get("failure") for svc in ORDER},
    }
    print(f"\ncoupled revert: {FIGURES['revert']}")
    # the events: router then media, in one cycle, each naming the release
    assert [e["service"] for e in reverted] == ["router", "media"], reverted
    assert len({e["cycle"] for e in reverted}) == 1, reverted
    assert all(e["data"].get("group") == GROUP for e in reverted), reverted
    assert not f.events(t0, "rollout.step"), "a member moved past its canary"
    # media's canary really served 2.1 before it was reverted with router
    assert FIGURES["revert"]["answers_by_new"]["media"] > 0, FIGURES["revert"]
    # clients: only the bad canary's own 500s, none after the revert settled
    assert FIGURES["revert"]["client_errors"]["media"] == {}, FIGURES["revert"]
    bad = {k for k in FIGURES["revert"]["client_errors"]["router"] if k.endswith(f" {BAD}")}
    assert bad == set(FIGURES["revert"]["client_errors"]["router"]), FIGURES["revert"]
    assert all(" router-" in k for k in bad), bad  # answered by a router machine
    last_bad = max((a.at for a in answers["router"] if a.version == BAD), default=t0)
    after = [a for a in f.clients["router"].since(last_bad) if a.at > last_bad and a.status >= 500]
    assert after == [], after[:5]
    assert FIGURES["revert"]["client_failures"] == {"media": 0, "router": 0}, FIGURES
    for svc in ORDER:
        backends = sorted(b["machine"] for b in f.peers(LB[svc]).get("backends", []))
        recent = f.clients[svc].since(time.time() - 2.0)
        assert {a.version for a in recent} == {"1.0"}, (svc, recent[-3:])
        assert sorted({a.backend for a in recent}) == backends, (svc, backends)
