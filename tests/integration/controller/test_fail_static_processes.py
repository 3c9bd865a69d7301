"""Fail static with real processes (docs/security.md#fail-static).

"Cut every agent off the bucket for three liveness windows with traffic flowing: no desired
document changes, zero client errors."

A real fleet on SeaweedFS: `bosun-agent` daemons (lb-1 running the example balancer,
web-1..3 the example app; spec web count 2, so web-1 and web-2 active, web-3 a warm
standby) and a `bosun controller run --every 1s`. Fault proxies sit between the AGENTS and
the bucket only (one for web-1 and web-3, one for lb-1 and web-2); the controller reaches
SeaweedFS directly, so it keeps planning, and would act on what it sees, the whole time. A
client sends GET / through the balancer throughout. Heartbeat 1 s, heartbeat_timeout 3 s:
a liveness window is 3 s.

The cut (one module fixture, observed every 0.2 s): every agent connection is held
unanswered (blackhole) for three windows and a second; the agents then come back in two
groups 2 s apart, as agents do after a real outage (each at its next poll). Then:

- while cut off: no desired/<m>.json changes (ETag, generation, mode, service), the
  balancer's peers file is untouched, no machine is lost or assigned;
- status/cluster.json holds web (3 of 3 silent, its own threshold) and lb (1 of 1, held by
  the fleet's share), one service.held event each; zero client errors, no gap of 1 s;
- after the agents are back the holds lift by themselves (service.hold_lifted, `holds`
  empty);
- and the return changes nothing either: agents come back spread over a poll, and the ones
  not back yet keep their place for one more liveness window (the hold clears, then lifts).

Control (the tests can fail): the same fleet with `settings.blind_threshold: off` and the
same cut demotes the active machines (their desired documents rewritten to standby) and
writes no hold.
"""

from __future__ import annotations

import http.client
import itertools
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from controller.operations.history import read_events
from controller.spec.load import from_value
from controller.spec.revisions import apply
from devkit.demo import fleet
from devkit.demo.fleet import Machine, Timing
from devkit.demo.procs import ProcessBook
from tests.support.faultproxy import FaultProxy
from tests.support.fixtures import fresh_bucket
from tests.support.procfleet import BOSUN
from tests.support.servers import S3Server, free_port
from wire.documents import parse_envelope
from wire.layout import DESIRED, STATUS_CLUSTER
from wire.store import StoredObject
from wire.store.s3 import S3Store

TIMING = Timing(
    every=1.0,
    poll=1.0,
    heartbeat=1.0,
    heartbeat_timeout=3.0,
    dwell=1.0,
    rate=20.0,
    bake=2.0,
    phase_timeout=30.0,
)
# a machine's liveness window: max(heartbeat_timeout, 2 heartbeats) (planner.blindness)
WINDOW = max(TIMING.heartbeat_timeout, 2 * TIMING.heartbeat)
OUTAGE = 3 * WINDOW + 1.0
STAGGER = 2.0  # the late group's agents come back this much after the early group's
WEB = ("web-1", "web-2", "web-3")
LATE = ("lb-1", "web-2")  # the balancer and a serving web machine (lowest ids are active)

# (etag, generation, mode, service) of every desired document
DesiredView = dict[str, tuple[str, int, str, str | None]]


@dataclass(frozen=True, slots=True)
class Answer:
    at: float
    status: int  # 0: no answer (connection refused/reset, timeout)
    backend: str
    detail: str = ""


class Client(threading.Thread):
    """GET / through the balancer at a steady rate; every answer (or failure) is kept."""

    def __init__(self, port: int, rate: float) -> None:
        super().__init__(name="fail-static-client", daemon=True)
        self.port, self.interval = port, 1.0 / rate
        self.halt = threading.Event()
        self.lock = threading.Lock()
        self.answers: list[Answer] = []

    def run(self) -> None:
        conn: http.client.HTTPConnection | None = None
        next_at = time.monotonic()
        while not self.halt.is_set():
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/")
                resp = conn.getresponse()
                body = resp.read()
                backend = resp.getheader("X-Bosun-Backend") or ""
                detail = "" if resp.status < 500 else body[:200].decode(errors="replace")
                answer = Answer(time.time(), resp.status, backend, detail)
            except (OSError, http.client.HTTPException) as exc:
                answer = Answer(time.time(), 0, "", repr(exc)[:200])
                if conn is not None:
                    conn.close()
                conn = None
            with self.lock:
                self.answers.append(answer)
            next_at += self.interval
            delay = next_at - time.monotonic()
            if delay > 0:
                self.halt.wait(delay)
            else:
                next_at = time.monotonic()
        if conn is not None:
            conn.close()

    def since(self, t: float) -> list[Answer]:
        with self.lock:
            return [a for a in self.answers if a.at >= t]


@dataclass
class Fleet:
    run_dir: Path
    store: S3Store  # direct to SeaweedFS: what the controller and the test use
    url: str  # the controller's store URL (direct)
    proxies: dict[str, FaultProxy]  # group -> the proxy its agents reach the bucket through
    machines: dict[str, Machine]
    book: ProcessBook
    client: Client | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    # ---- the bucket ---------------------------------------------------------------------
    def json(self, key: str) -> dict[str, Any] | None:
        got = self.store.get(key)
        if not isinstance(got, StoredObject):
            return None
        value: dict[str, Any] = orjson.loads(got.body)
        return value

    def cluster(self) -> dict[str, Any]:
        return self.json(STATUS_CLUSTER) or {}

    def desired(self) -> DesiredView:
        out: DesiredView = {}
        for info in self.store.list(DESIRED):
            got = self.store.get(info.key)
            if not isinstance(got, StoredObject):
                continue
            body = parse_envelope(got.body, where=info.key).body
            machine = info.key.rsplit("/", 1)[-1].removesuffix(".json")
            out[machine] = (got.etag, int(body["generation"]), body["mode"], body.get("service"))
        return out

    def events(self, since: float, kind: str = "") -> list[dict[str, Any]]:
        return [
            e
            for e in read_events(self.store, since - 5, time.time() + 5)
            if float(e.get("t", 0)) >= since and str(e.get("kind", "")).startswith(kind)
        ]

    def apply(self, **settings: Any) -> int:
        value = fleet.spec_value(TIMING, self.run_dir, web_count=2)
        value["settings"].update(settings)
        return apply(self.store, from_value(value, source="test"), now=time.time()).revision

    # ---- processes ----------------------------------------------------------------------
    def peers(self) -> set[str]:
        try:
            value = orjson.loads(self.machines["lb-1"].peers_file.read_bytes())
        except (OSError, ValueError):
            return set()
        return {b["machine"] for b in value.get("backends", [])}

    def exited(self) -> str | None:
        for name, proc in self.book.popens.items():
            if proc.poll() is not None:
                log = self.run_dir / "logs" / f"{name}.log"
                tail = log.read_text(errors="replace").splitlines()[-5:] if log.exists() else []
                return f"{name} exited with {proc.returncode}: " + " | ".join(tail)
        return None

    def wait(self, what: str, check: Callable[[], Any], timeout: float, every: float = 0.2) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = check()
            if got:
                return got
            dead = self.exited()
            assert dead is None, f"while waiting for {what}: {dead}"
            time.sleep(every)
        raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")

    def poll_records(self) -> None:
        self.book.poll_records({n: m.state_dir for n, m in self.machines.items()})

    def stable_desired(self, quiet: float, timeout: float) -> DesiredView:
        """The desired documents once none changed for `quiet` seconds."""
        state: dict[str, Any] = {"view": self.desired(), "since": time.monotonic()}

        def settled() -> DesiredView | None:
            view = self.desired()
            if view != state["view"]:
                state["view"], state["since"] = view, time.monotonic()
                return None
            return view if time.monotonic() - state["since"] >= quiet else None

        result: DesiredView = self.wait(f"desired/ unchanged for {quiet:g}s", settled, timeout)
        return result

    def cut(self, early: float, late: float, *, blackhole: bool) -> None:
        """Every agent off the bucket from now: the early group for `early` seconds, the
        late group for `late`."""
        self.proxies["early"].outage(early, blackhole=blackhole)
        self.proxies["late"].outage(late, blackhole=blackhole)

    def heal(self) -> None:
        for proxy in self.proxies.values():
            proxy.heal()

    def reports_put(self) -> dict[str, int]:
        return {g: p.counts().get("PUT reports", 0) for g, p in self.proxies.items()}


def _errors(answers: list[Answer]) -> list[Answer]:
    return [a for a in answers if a.status == 0 or a.status >= 500]


def _longest_gap(answers: list[Answer], start: float, end: float) -> float:
    """The longest time without a 200 between `start` and `end`."""
    times = [start, *(a.at for a in answers if a.status == 200 and start <= a.at <= end), end]
    return max(b - a for a, b in itertools.pairwise(times))


@pytest.fixture(scope="module")
def fs_fleet(seaweedfs: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    run_dir = tmp_path_factory.mktemp("fail-static-fleet")
    store = fresh_bucket(seaweedfs)
    prefix = store.prefix.strip("/")
    direct = seaweedfs.store_url(store.bucket, prefix)
    with FaultProxy(seaweedfs.endpoint) as early, FaultProxy(seaweedfs.endpoint) as late:
        proxies = {"early": early, "late": late}
        root = fleet.repo_root()
        master_path, master = fleet.make_master_key(run_dir)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BOSUN_"))}
        env.update(seaweedfs.credentials_env())
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        book = ProcessBook(run_dir, run_dir / "logs", env)
        machines: dict[str, Machine] = {}
        for name in ("lb-1", *WEB):
            eligible = ("lb",) if name == "lb-1" else ("web",)
            m = Machine(
                name, eligible, run_dir / "machines" / name, {s: free_port() for s in eligible}
            )
            proxy = proxies["late" if name in LATE else "early"]
            via = f"s3://{store.bucket}/{prefix}?endpoint={proxy.endpoint}&region=us-east-1"
            fleet.enroll_machine(
                m, master=master, store=via, timing=TIMING, root=root, run_dir=run_dir
            )
            machines[name] = m
            book.mark("--config", m.config_path)
            book.mark("--desired-file", m.desired_file)
            book.mark("--peers-file", m.peers_file)
        f = Fleet(run_dir, store, direct, proxies, machines, book)
        f.apply()
        try:
            book.spawn(
                "controller",
                [*BOSUN, "--log-level", "info", "controller", "run", "--store", direct,
                 "--master-key", str(master_path), "--every", f"{TIMING.every:g}s",
                 "--id", "ctl-fail-static", "--state-dir", str(run_dir / "controller")],
            )  # fmt: skip
            for name, m in machines.items():
                book.spawn(
                    f"agent-{name}",
                    [sys.executable, "-m", "agent", "--log-level", "info", "--config",
                     str(m.config_path), "run"],
                    cwd=m.home,
                )  # fmt: skip

            def converged() -> bool:
                f.poll_records()
                web = f.cluster().get("services", {}).get("web", {})
                return (web.get("healthy"), web.get("standby"), len(f.peers())) == (2, 1, 2)

            f.wait("web: 2 healthy active + 1 standby, and 2 LB backends", converged, 60)
            f.client = Client(machines["lb-1"].ports["lb"], TIMING.rate)
            f.client.start()
            client = f.client

            def serving() -> bool:
                recent = client.since(0)[-20:]
                return (
                    len(recent) == 20
                    and all(a.status == 200 for a in recent)
                    and len({a.backend for a in recent}) == 2
                )

            f.wait("the balancer to answer 200 from both backends", serving, 15)
            yield f
        finally:
            if f.client is not None:
                f.client.halt.set()
                f.client.join(timeout=5)
            f.poll_records()
            left = book.stop_all(grace=5.0, order=("controller", "agent-"))
            assert not left, f"{left} processes still running after the test"


@dataclass
class Cut:
    """What was seen around one cut of every agent (times are wall clock)."""

    baseline: DesiredView
    active: list[str]
    peers_before: set[str]
    t_cut: float
    t_back: float  # the early group's outage ends: nothing can have reconnected before
    t_end: float  # the observation ends (holds lifted, late group back for a few cycles)
    during: list[str]  # desired documents that differed from the baseline, before t_back
    after: list[str]  # ... from t_back to t_end
    peers_during: list[set[str]]  # the balancer's peers file, as sampled before t_back
    holds: dict[str, dict[str, Any]]  # service -> the latest hold seen in status/cluster.json
    puts_during: dict[str, int]  # report PUTs through each group's proxy before t_back
    events: list[dict[str, Any]]
    answers: list[Answer]

    def events_between(self, start: float, end: float, kind: str = "") -> list[dict[str, Any]]:
        return [
            e
            for e in self.events
            if start <= float(e["t"]) < end and str(e["kind"]).startswith(kind)
        ]

    def summary(self) -> dict[str, Any]:
        return {
            "events": [
                (
                    round(float(e["t"]) - self.t_cut, 1),
                    e["kind"],
                    e.get("machine"),
                    e.get("service"),
                    str(e.get("reason", ""))[:100],
                )
                for e in self.events
            ],
            "during": self.during,
            "after": self.after,
            "holds": self.holds,
            "errors": [
                (round(a.at - self.t_cut, 2), a.status, a.detail[:80])
                for a in _errors(self.answers)
            ][:10],
        }


def _record(f: Fleet, baseline: DesiredView, changes: list[str], t_cut: float) -> DesiredView:
    view = f.desired()
    for m in sorted(set(view) | set(baseline)):
        if view.get(m) != baseline.get(m):
            change = f"{m} {baseline.get(m)} -> {view.get(m)}"
            if not any(c.endswith(change) for c in changes):
                changes.append(f"+{time.time() - t_cut:.1f}s: {change}")
    return view


@pytest.fixture(scope="module")
def cut(fs_fleet: Fleet) -> Cut:
    """Every agent cut off at once (connections held unanswered) for three liveness windows
    and a second; the agents come back in two groups STAGGER seconds apart, as agents do
    after a real outage (each at its own next poll)."""
    f = fs_fleet
    assert f.client is not None
    baseline = f.stable_desired(quiet=2.5 * TIMING.every, timeout=20)
    assert set(baseline) == {"lb-1", *WEB}, baseline
    active = sorted(m for m, (_, _, mode, _) in baseline.items() if mode == "active")
    assert len(active) == 3, baseline  # lb-1 and two web
    assert set(LATE) <= set(active), (LATE, baseline)  # the balancer and one serving web
    peers_before = f.peers()
    for proxy in f.proxies.values():
        proxy.reset_counts()
    during: list[str] = []
    after: list[str] = []
    peers_during: list[set[str]] = []
    holds: dict[str, dict[str, Any]] = {}

    t_cut = time.time()
    f.cut(OUTAGE, OUTAGE + STAGGER, blackhole=True)
    t_back = t_cut + OUTAGE
    try:
        while time.time() < t_back - 0.1:
            _record(f, baseline, during, t_cut)
            peers_during.append(f.peers())
            for svc, hold in (f.cluster().get("holds") or {}).items():
                holds[svc] = hold
            dead = f.exited()
            assert dead is None, dead
            time.sleep(0.2)
        puts_during = f.reports_put()

        def settled() -> bool:
            _record(f, baseline, after, t_cut)
            lifted = {e.get("service") for e in f.events(t_cut, "service.hold_lifted")}
            return (
                time.time() >= t_back + STAGGER + 3 * TIMING.every
                and {"web", "lb"} <= lifted
                and not f.cluster().get("holds")
            )

        f.wait("the holds to lift once every agent is back", settled, STAGGER + 20)
    finally:
        f.heal()
    t_end = time.time()
    c = Cut(
        baseline, active, peers_before, t_cut, t_back, t_end, during, after, peers_during,
        holds, puts_during, f.events(t_cut), f.client.since(t_cut),
    )  # fmt: skip
    print("fail static:", orjson.dumps(c.summary(), option=orjson.OPT_INDENT_2).decode())
    return c


def test_nothing_changes_while_the_agents_are_cut_off(cut: Cut) -> None:
    """docs/security.md#fail-static: three liveness windows without a single report from
    any agent (proved: no report PUT passed either proxy): no desired document changes
    (ETag, generation, mode, service of each), the balancer keeps its peers, and no machine
    is lost, assigned or replaced."""
    assert cut.puts_during == {"early": 0, "late": 0}, cut.puts_during
    assert not cut.during, "desired documents changed while cut off:\n" + "\n".join(cut.during)
    assert all(p == cut.peers_before for p in cut.peers_during), cut.peers_during
    bad = ("machine.", "desired.written", "service.short")
    acted = [e for e in cut.events_between(cut.t_cut, cut.t_back) if e["kind"].startswith(bad)]
    assert not acted, acted


def test_the_planner_holds_both_services_and_says_so(cut: Cut) -> None:
    """status/cluster.json names a hold for web (all 3 of its machines silent: its own
    threshold) and lb (one machine, so only the fleet's share can hold it); one
    service.held event each, written during the cut."""
    assert set(cut.holds) == {"web", "lb"}, cut.holds
    web, lb = cut.holds["web"], cut.holds["lb"]
    assert (web["scope"], web["silent"], web["total"]) == ("service", 3, 3), web
    assert (lb["scope"], lb["silent"], lb["total"]) == ("fleet", 1, 1), lb
    assert cut.t_cut < seconds(web["since"]) < cut.t_back, web
    held = cut.events_between(cut.t_cut, cut.t_end, "service.held")
    assert sorted(e["service"] for e in held) == ["lb", "web"], held
    assert all(float(e["t"]) < cut.t_back for e in held), held


def test_no_client_errors_while_cut_off(cut: Cut) -> None:
    """Traffic through the balancer flows the whole time the agents are cut off: every
    request answered 200, never a gap of a second."""
    answers = [a for a in cut.answers if a.at < cut.t_back]
    assert len(answers) >= 0.8 * TIMING.rate * OUTAGE, len(answers)
    assert not _errors(answers), _errors(answers)[:5]
    gap = _longest_gap(answers, cut.t_cut, cut.t_back)
    assert gap < 1.0, f"no 200 for {gap:.1f}s"


def test_the_holds_lift_by_themselves_when_reports_return(cut: Cut) -> None:
    """One service.hold_lifted each, after the agents came back; `holds` empty."""
    lifted = cut.events_between(cut.t_cut, cut.t_end, "service.hold_lifted")
    assert sorted(e["service"] for e in lifted) == ["lb", "web"], lifted
    assert all(float(e["t"]) >= cut.t_back for e in lifted), lifted


def test_reconnecting_changes_nothing_either(cut: Cut) -> None:
    """The bar holds through the agents' return too: no desired document changes, no
    machine declared lost, zero client errors, until every agent reports again."""
    lost = cut.events_between(cut.t_back, cut.t_end, "machine.lost")
    errors = _errors([a for a in cut.answers if a.at >= cut.t_back])
    assert (cut.after, lost, errors) == ([], [], []), (
        "after the agents came back:\n" + "\n".join(cut.after)
        + f"\nlost: {[(e['machine'], round(float(e['t']) - cut.t_back, 1)) for e in lost]}"
        + f"\nclient errors: {len(errors)}"
    )  # fmt: skip


def test_control_blind_threshold_off_demotes_the_cut_off_machines(
    fs_fleet: Fleet, cut: Cut
) -> None:
    """The same cut with `settings.blind_threshold: off` (an operator who knows the machines
    are gone): the controller treats the silence as deaths and rewrites the active
    machines' desired documents to standby; no hold. Proves the tests above can fail."""
    f = fs_fleet
    f.apply(blind_threshold="off")
    baseline = f.stable_desired(quiet=2.5 * TIMING.every, timeout=20)
    active = sorted(m for m, (_, _, mode, _) in baseline.items() if mode == "active")
    assert len(active) == 3, baseline

    t_cut = time.time()
    f.cut(3 * WINDOW, 3 * WINDOW, blackhole=False)  # connections closed: agents fail fast

    def demoted() -> bool:
        view = f.desired()
        return all(view[m][2] == "standby" and view[m] != baseline[m] for m in active)

    try:
        f.wait("the cut-off actives' desired documents rewritten to standby", demoted, 3 * WINDOW)
        t_demoted = time.time()
        holds = f.cluster().get("holds")
    finally:
        f.heal()
    events = f.events(t_cut)
    print(
        "control: demoted after", round(t_demoted - t_cut, 1), sorted({e["kind"] for e in events})
    )
    assert not holds, holds
    assert not [e for e in events if e["kind"] == "service.held"], events
    lost = {e.get("machine") for e in events if e["kind"] == "machine.lost"}
    assert set(active) <= lost, events
    assert t_demoted - t_cut >= WINDOW - 2 * TIMING.every  # not before the window closed


def seconds(value: object) -> float:
    """A time of a bucket document (ISO 8601 UTC) in Unix seconds."""
    from wire.times import parse_time

    return parse_time(value, "test")
