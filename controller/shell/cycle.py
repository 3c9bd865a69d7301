"""One controller cycle: the imperative shell around the pure planner.

    lease.ensure()                        acquire / renew / follow (control/lease.json)
    keys, intake state, memory, spec      read (memory lost -> rebuilt from desired/)
    intake.collect()                      LIST reports/, GET what changed, verify, accept
    find_drift()                          LIST desired/ (during intake), read what is not as written
    plan(spec, observed, memory, now, fence=token)
    publish()                             sign + conditional PUT of changed desired docs
    run_provisions()                      the plan's ProvisionNeeded, each result an event
    history/, events/, status/            what operators read
    control/memory.json, control/intake.json   conditional saves

Only the lease holder acting before its renew deadline writes anything. Any step may
crash: the next cycle converges because every write is conditional and every decision is
re-derived from the bucket. A cycle in which nothing changed writes only the lease.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from controller.planner import plan as default_plan
from controller.planner.model import (
    STATUS_FORMAT,
    Event,
    MachineMemory,
    MachineStatus,
    Memory,
    Observed,
    Plan,
    Status,
)
from controller.shell import control_objects, records
from controller.shell.drift import find_drift, list_in_background
from controller.shell.encoding import Reuse, encode_intake
from controller.shell.intake import Intake, SnapshotCache, refuse_wrong_key
from controller.shell.intake_state import IntakeState
from controller.shell.key_epochs import KeyRing
from controller.shell.lease import LeaseDoc, LeaseKeeper, LeaseSettings, LeaseStatus, Observation
from controller.shell.listing import RangedLister
from controller.shell.provisioning import provision, run_provisions
from controller.shell.publish import (
    PUBLISH_THREADS,
    PublishResult,
    publish,
    settle_memory,
    times_for,
)
from controller.shell.status_writer import StatusWriter
from controller.shell.trust import Trust
from controller.spec.model import ClusterSpec, Settings
from wire import codec
from wire.control import MAX_CONTROL_BYTES, open_control
from wire.errors import StoreUnavailable
from wire.layout import (
    INTAKE,
    LEASE,
    MEMORY,
    SPEC_CURRENT,
    desired_key,
    report_key,
)
from wire.store import Store, StoredObject

log = logging.getLogger(__name__)

Planner = Callable[..., Plan]
_LOST = MachineMemory(lost=True)  # a machine memory does not know was never seen live


@dataclass
class CycleReport:
    lease: LeaseStatus
    cycle: int = 0
    listed: int = 0
    fetched: int = 0
    accepted: int = 0
    rejected: int = 0
    plan: Plan | None = None
    written: list[str] = field(default_factory=list)  # object keys written (besides the lease)
    failed: dict[str, str] = field(default_factory=dict)
    note: str = ""
    recovered_memory: bool = False
    unread: tuple[str, ...] = ()  # live machines whose report could not be read: no plan
    repaired: tuple[str, ...] = ()  # desired documents found not as last written
    forgotten: tuple[str, ...] = ()  # machines whose desired document and report were deleted
    timings: dict[str, float] = field(default_factory=dict)  # phase -> seconds

    def summary(self) -> str:
        if not self.lease.acting and self.plan is None:
            return f"cycle: not acting: {self.lease}"
        planned = len(self.plan.writes) if self.plan else 0
        return (
            f"cycle {self.cycle}: {self.lease.role} token {self.lease.token}; "
            f"{self.listed} reports, {self.fetched} fetched, {self.accepted} accepted, "
            f"{self.rejected} rejected; {planned} desired planned, "
            f"{sum(k.startswith('desired/') for k in self.written)} written, "
            f"{len(self.failed)} failed"
            + ("" if self.written else "; nothing written (the next cycle keeps this number)")
            + (f"; {self.note}" if self.note else "")
        )


class Controller:
    """Holds what survives between cycles in one process: lease view, caches, keys."""

    def __init__(
        self,
        store: Store,
        master_key: bytes,
        *,
        holder: str,
        lease: LeaseSettings | None = None,
        planner: Planner = default_plan,
        wall: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
        observation: Observation | None = None,
    ) -> None:
        self.store = store
        self.wall = wall
        self.planner = planner
        self.keys = KeyRing(master_key, {}, wall=wall)
        self.trust = Trust(self.keys)
        self.guard = self.trust.guard
        self.cache = SnapshotCache()
        self.spec_cache = control_objects.SpecCache()
        self._spec_problem: str | None = None  # the refused spec last logged
        self.control_cache: control_objects.Cache = {}
        self.status = StatusWriter(store, self.trust, holder)
        self.intake_entries = Reuse()  # control/intake.json's records, encoded once per change
        self._intake_saved_at = float("-inf")  # when this process last saved it
        self._intake_pending = False  # heartbeats accepted since, not saved yet
        self.publish_threads = PUBLISH_THREADS
        self.interval: float | None = None  # the applied spec's controller_interval, once read
        self.lister = RangedLister(store)  # LISTs in concurrent key ranges
        self.intake = Intake(store, self.keys, self.cache, self.lister)
        self.lease = LeaseKeeper(
            store,
            holder,
            lease or LeaseSettings(),
            key=self.guard.key,
            on_refused=self.trust.lease_refused,
            clock=clock,
            wall=wall,
            token_floor=self._token_floor,
            observation=observation or Observation(),
        )

    # ---- helpers -------------------------------------------------------------------------

    def _token_floor(self) -> int:
        """Highest fence recorded in the bucket (used when the lease object must be created)."""
        floor = 0
        try:
            got = self.store.get(INTAKE, max_bytes=MAX_CONTROL_BYTES)
            if isinstance(got, StoredObject):
                sealed = open_control(got.body, INTAKE, self.guard.key)
                floor = IntakeState.from_value(sealed.value).fence
            got = self.store.get(MEMORY, max_bytes=MAX_CONTROL_BYTES)
            if isinstance(got, StoredObject):
                sealed = open_control(got.body, MEMORY, self.guard.key)
                floor = max(floor, Memory.from_value(sealed.value).fence)
        except Exception as exc:  # a floor is best effort; the fences in desired/ still hold
            log.warning("lease.floor_unreadable: %s", exc)
        return floor

    def _peek_lease(self) -> LeaseStatus:
        got = self.store.get(LEASE)
        if isinstance(got, StoredObject):
            doc = LeaseDoc.decode(got.body, self.store.describe(LEASE), key=self.guard.key)
            return LeaseStatus(
                "follower", False, doc.token, doc.holder, "dry run: lease not touched"
            )
        return LeaseStatus("follower", False, 0, "-", "dry run: no lease yet")

    # ---- the cycle -----------------------------------------------------------------------

    def cycle(self, *, dry_run: bool = False) -> CycleReport:
        now = self.wall()
        t0 = time.perf_counter()
        status = self._peek_lease() if dry_run else self.lease.ensure()
        report = CycleReport(status)
        marks = report.timings

        def mark(phase: str) -> None:
            nonlocal t0
            t1 = time.perf_counter()
            marks[phase] = round(t1 - t0, 4)
            t0 = t1

        mark("lease")
        if not dry_run and not status.acting:
            self.trust.refuse_wrong_key(self.store)
            return report
        fence = status.token if not dry_run else status.token + (status.holder != self.lease.holder)
        self.trust.refresh_keys(self.store, now)
        intake_loaded = control_objects.load_intake(self.store, self.guard, now, self.control_cache)
        mem_loaded, intake_state = control_objects.load_memory(
            self.store, self.keys, intake_loaded.value, self.guard, now, self.control_cache
        )
        self.trust.check_keys()
        memory = mem_loaded.value
        report.recovered_memory = mem_loaded.recovered
        known_fence = max(memory.fence, intake_state.fence)
        if known_fence > fence:
            if dry_run:
                fence = known_fence + 1
            elif not self.lease.reissue(known_fence + 1):
                report.note = f"stale: the bucket has fence {known_fence} above our token {fence}"
                return report
            else:
                fence = self.lease.token
                report.lease = replace(status, token=fence)
        spec, refused = self.trust.load_spec(self.store, self.spec_cache, memory.spec_revision, now)
        spec_events = self._spec_refused(refused, report)
        settings = spec.settings if spec else Settings()
        self.interval = settings.controller_interval  # the daemon's cadence follows the spec
        mark("load")
        # for drift (the bucket heals), during intake
        listed = list_in_background(self.store, self.lister, intake_state.desired)
        got = self.intake.collect(intake_state, now, settings.skew_window)
        mark("intake")
        refuse_wrong_key(got)  # raises: nothing is planned, written or saved
        # after intake: the epoch each machine reports with decides its signing key
        memory = resign_after_revoke(memory, intake_state, self.keys)
        unread = [m for m in got.unread if not memory.machines.get(m, _LOST).lost]
        if unread:  # docs/security.md#cold-start: a failed read is not silence
            more = f" and {len(unread) - 5} more" if len(unread) > 5 else ""
            report.note = (
                f"the reports of {', '.join(unread[:5])}{more} could not be read and this "
                "process holds no earlier copy: planning waits for a complete read (next cycle)"
            )
            report.unread = tuple(unread)
            log.warning("cycle.incomplete %s", report.note)
            return report
        if not dry_run and not self.lease.keep():  # a cold intake can be long: renew first
            report.note = "lease renew deadline passed during intake; stopped before planning"
            return report
        report.cycle = cycle = intake_state.cycle + 1
        report.listed, report.fetched = got.listed, got.fetched
        report.accepted, report.rejected = len(got.accepted), len(got.observed.rejections)
        check = find_drift(self.store, self.keys, memory, got.state.desired, fence, listed.result())
        observed = replace(got.observed, drift=check.drift) if check.drift else got.observed
        known_etags = {**got.state.desired, **check.etags}
        report.repaired = tuple(sorted(check.drift))
        mark("drift")
        new_plan = self._plan(spec, observed, memory, now, fence)
        if new_plan is not None and self.keys.revoked:
            new_plan = replace(
                new_plan, events=tuple(self.trust.say_revoked(e) for e in new_plan.events)
            )
        report.plan = new_plan
        mark("plan")
        if dry_run:
            return report
        # the plan carries this cycle's snapshot rejections; keep what it cannot know
        events: list[Event] = [
            *spec_events,
            *check.events,
            *(e for e in got.events if new_plan is None or e.reason == "invalid_key"),
        ]
        pub = PublishResult()
        if new_plan is not None:
            pub = publish(
                self.store,
                self.keys,
                new_plan.writes,
                known_etags,
                fence=fence,
                can_act=self.lease.keep,
                threads=self.publish_threads,
                secrets=self.trust.secrets.for_machine,
                times=times_for(observed),
            )
            report.failed = pub.failed
            report.written += [f"desired/{m}.json" for m in pub.written]
            events += [*new_plan.events, *pub.events]
            if new_plan.provisions and not pub.stopped:
                events += provision(spec, new_plan.provisions, self.lease.keep)
            if new_plan.forgotten and not pub.stopped and self.lease.keep():
                report.forgotten = forget_objects(self.store, new_plan.forgotten)
        mark("publish")
        if pub.stopped or not self.lease.keep():
            report.note = pub.stopped or "lease renew deadline passed; stopped before the records"
            return report  # lease deadline: write nothing more this cycle
        report.written += records.archive_all(self.store, got.accepted, self.publish_threads)
        got = replace(got, accepted=())  # their signed bytes (~150 MB at 100,000 cold) go now
        if events:
            key = records.write_events(
                self.store,
                records.event_lines(events, now=now, cycle=cycle, fence=fence),
                now=now,
                cycle=cycle,
            )
            report.written.append(key)
        gone = set(report.forgotten)
        state = replace(
            got.state,
            fence=fence,
            cycle=cycle,
            reports={m: r for m, r in got.state.reports.items() if m not in gone},
            desired={m: e for m, e in {**known_etags, **pub.etags}.items() if m not in gone},
            signed={m: e for m, e in {**got.state.signed, **pub.epochs}.items() if m not in gone},
        )
        shown = new_plan.status if new_plan else bare_status(got.observed, now, fence)
        digest = self.status.write(
            shown,
            got.observed,
            state,
            token=fence,
            cycle=cycle,
            sections=self.trust.status_sections(refused, self.spec_cache, shown.spec_revision),
            rollouts=new_plan is not None,
            can_act=self.lease.keep,
            written=report.written,
            liveness_only=got.liveness_only,
            now=now,
            every=heartbeats_every(settings),
        )
        state = replace(state, status_digest=digest)
        mark("records")
        heartbeats = got.liveness_only and state.fence == intake_loaded.value.fence
        self._save_memory(new_plan, memory, mem_loaded, pub, fence, report)
        self._save_intake(state, intake_loaded, report, heartbeats, now, settings)
        mark("save")
        log.info("cycle.done %s", report.summary())
        return report

    def flush(self) -> None:
        """Save the heartbeats accepted but not saved yet (a clean stop: the next controller
        starts from every seq high-water mark this one knew)."""
        hit = self.control_cache.get(INTAKE)
        if not self._intake_pending or hit is None or not self.lease.keep():
            return
        etag, state = hit
        problem = self._write_intake(state, etag)
        if problem:
            log.warning("intake.flush_failed %s", problem)

    def _spec_refused(
        self, refused: control_objects.SpecRefusal | None, report: CycleReport
    ) -> list[Event]:
        """Note a refused spec/current.json; an event and an error log when it is new."""
        problem = refused.detail if refused is not None else None
        new = problem is not None and problem != self._spec_problem
        self._spec_problem = problem
        if refused is None:
            return []
        with_what = (
            f"planning with revision {refused.planning_with} (the last one planned with)"
            if refused.planning_with is not None
            else "planning nothing (no earlier revision to keep)"
        )
        report.note = f"{SPEC_CURRENT} refused; {with_what}"
        if not new:
            return []
        log.error("spec.refused %s; %s until a valid spec is applied", refused.detail, with_what)
        return [
            Event(
                "spec.refused",
                f"{refused.detail}; {with_what}",
                data={"etag": refused.etag, "planning_with": refused.planning_with},
            )
        ]

    def _plan(
        self, spec: ClusterSpec | None, observed: Observed, memory: Memory, now: float, fence: int
    ) -> Plan | None:
        if spec is None:
            return None
        return self.planner(spec, observed, memory, now, fence=fence)

    def _save_memory(
        self,
        new_plan: Plan | None,
        memory: Memory,
        mem_loaded: control_objects.Loaded[Memory],
        pub: PublishResult,
        fence: int,
        report: CycleReport,
    ) -> None:
        if new_plan is not None:
            settled = replace(settle_memory(new_plan.memory, memory, pub), fence=fence)
            unchanged = replace(settled, cycle=memory.cycle, fence=memory.fence) == memory
            if (
                not unchanged or mem_loaded.etag is None or mem_loaded.recovered
            ) and self.lease.keep():
                body, version = self.guard.seal(MEMORY, codec.encode(settled))
                etag, problem = control_objects.try_save(self.store, MEMORY, body, mem_loaded.etag)
                if not problem:
                    self.guard.saved(MEMORY, version)
                control_objects.remember(self.control_cache, MEMORY, etag, settled)
                if problem:
                    self.control_cache.clear()
                    report.note = problem
                    report.failed[MEMORY] = problem  # the intake state is not saved either
                    return
                report.written.append(MEMORY)

    def _save_intake(
        self,
        state: IntakeState,
        loaded: control_objects.Loaded[IntakeState],
        report: CycleReport,
        heartbeats: bool,
        now: float,
        settings: Settings,
    ) -> None:
        """Save control/intake.json when its content changed. When nothing but heartbeats
        changed since it was last saved (`heartbeats`: new seq, sent_at and ETags of machines
        whose substance is the same), at most once per `heartbeats_every`: the state is kept
        in this process meanwhile (docs/controller.md#heartbeats-between-writes)."""
        if MEMORY in report.failed:
            return  # do not save the intake state over a newer controller's
        fresh = loaded.etag is not None and not loaded.recovered
        if fresh and state.same_content(loaded.value):
            if not self._intake_pending or now - self._intake_saved_at < heartbeats_every(settings):
                return
        elif (
            fresh
            and heartbeats
            and now - self._intake_saved_at < heartbeats_every(settings)
            and state.same_but_heartbeats(loaded.value)
        ):
            # the next cycle starts from this state (its ETag: the object as saved)
            control_objects.remember(self.control_cache, INTAKE, loaded.etag, state)
            self._intake_pending = True
            return
        if not self.lease.keep():
            return
        problem = self._write_intake(state, loaded.etag)
        if problem:
            report.failed[INTAKE] = problem
        else:
            self._intake_saved_at = now
            report.written.append(INTAKE)

    def _write_intake(self, state: IntakeState, etag: str | None) -> str | None:
        """Seal and save control/intake.json over the object `etag` names (None: create);
        the problem, if it was not saved (the control cache is then cleared: the next cycle
        reads what is there)."""
        body, version = self.guard.seal(INTAKE, encode_intake(state, self.intake_entries))
        saved, problem = control_objects.try_save(self.store, INTAKE, body, etag)
        if problem:
            self.control_cache.clear()
            return problem
        self.guard.saved(INTAKE, version)
        control_objects.remember(self.control_cache, INTAKE, saved, state)
        self._intake_pending = False
        return None


HEARTBEATS_EVERY = 60.0
"""Seconds: the longest that heartbeats alone (docs/controller.md#heartbeats-between-writes)
wait before status/cluster.json and control/intake.json are written again."""


def heartbeats_every(settings: Settings) -> float:
    """HEARTBEATS_EVERY, or a quarter of the heartbeat timeout if that is shorter: a reader
    judging a machine stale from its `seen` time (past its liveness window, at least the
    timeout) then sees it at most a quarter of the window older than it is."""
    return min(HEARTBEATS_EVERY, settings.heartbeat_timeout / 4)


def forget_objects(store: Store, machines: tuple[str, ...]) -> tuple[str, ...]:
    """Delete the desired document and the report of each machine the spec forgets; a
    machine whose deletes fail is tried again next cycle (the plan forgets it again)."""
    done: list[str] = []
    for m in machines:
        try:
            store.delete(desired_key(m))
            store.delete(report_key(m))
        except StoreUnavailable as exc:
            log.warning("forget.failed %s: %s", m, exc)
            continue
        log.info("machine.forgotten %s", m)
        done.append(m)
    return tuple(done)


def resign_after_revoke(memory: Memory, state: IntakeState, keys: KeyRing) -> Memory:
    """Machines whose key epoch changed since their document was signed get it re-signed:
    their memory entry is marked as issued long ago, so the planner refreshes it.

    Only a machine with an epoch in control/keys.json (or a rotation's grace) or a document
    signed at an epoch above 0 can differ: the others sign at 0, as they were signed. They
    are found without asking the key ring for each of the fleet's machines every cycle."""
    named = (keys.epochs.keys() | keys.previous.keys()) & state.signed.keys()
    suspects = named.union(m for m, epoch in state.signed.items() if epoch)
    for machine in sorted(suspects):
        epoch = state.signed[machine]
        mm = memory.machines.get(machine)
        if mm is not None and keys.signing_epoch(machine) != epoch and mm.issued_at != 0.0:
            log.info("cycle.resign", extra={"ctx": {"machine": machine, "epoch": epoch}})
            memory = memory.with_machine(machine, replace(mm, issued_at=0.0))
    return memory


def bare_status(observed: Observed, now: float, fence: int) -> Status:
    """Status when no spec is applied yet: the machines seen, nothing planned."""
    machines: dict[str, MachineStatus] = {
        m: MachineStatus(
            service=None,
            mode="standby",
            version=None,
            running=None,
            health="unknown",
            age=round(now - obs.accepted_at, 3),
            lost=False,
            generation=0,
            applied_generation=obs.snapshot.applied.generation,
        )
        for m, obs in observed.machines.items()
    }
    return Status(STATUS_FORMAT, now, 0, fence, {}, machines, observed.rejections)


__all__ = ["Controller", "CycleReport", "bare_status", "resign_after_revoke", "run_provisions"]
