"""One agent cycle, the same code for `run --once` (cron) and the daemon.

    t0 = time taken at cycle start
    GET desired/<me>.json  If-None-Match: <etag of the cached *verified* copy, or of the
                           last refused copy>     (steady state: one request, a 304)
      200 -> verify (agent.verify) -> refuse (count + reason) | cache + raise the marks
      304 -> the cached verified copy (never trusted without one), expiry re-checked at t0
    apply the cached document when it is newer than the last-known-good (agent.apply)
    restart crashed supervised processes
    collect facts and probes; PUT the signed snapshot only when it changed (liveness
    counters aside) or the heartbeat interval has passed; seq = max(last + 1, unix ms)

Local state is written temp + fsync + rename before anything that depends on it.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from agent import __version__
from agent.apply import Applier, last_good_target
from agent.config import RUNNING_MODES, AgentConfig
from agent.drivers import ApplyError
from agent.probes import (
    addresses,
    backends_from,
    boot_id,
    health,
    load,
    metrics_from,
    read_json,
    sessions_from,
)
from agent.sha import digest
from agent.state import APPLIED_FILE, CACHED_FILE, Mark, StateDir
from agent.verify import Refused, check_expiry, verify_desired, verify_failures
from wire.documents import (
    Addresses,
    Applied,
    Desired,
    ServiceState,
    Snapshot,
    encode_body,
    parse_envelope,
    seal,
)
from wire.errors import DocumentTooLarge, StoreAccessDenied, StoreError
from wire.layout import desired_key, report_key
from wire.logs import Log
from wire.records import record
from wire.store.base import Missing, NotModified, Store, StoredObject
from wire.times import TimeForm, holds_iso_times

log = Log(__name__)


@record
class CycleResult:
    """What one cycle did: clean or not, whether a report was sent, its errors."""

    ok: bool
    put: bool
    errors: tuple[str, ...]
    store_down: bool = False


class Agent:
    def __init__(
        self, cfg: AgentConfig, key: bytes, store: Store, *, deadline: float | None = None
    ) -> None:
        self.cfg = cfg
        self.deadline = deadline  # seconds for all bucket requests of one cycle
        self._key = key
        self.store = store
        self.dir = StateDir(Path(cfg.state_dir))
        self.dir.ensure()
        self.applier = Applier(cfg)
        self.boot_id = boot_id()
        self.desired_key = desired_key(cfg.machine)
        self.report_key = report_key(cfg.machine)
        self.state, corrupt = self.dir.load()
        self.startup_errors = [corrupt] if corrupt else []
        self._pulled = False  # this cycle's desired GET was answered
        self._supervise_error: str | None = None  # logged once, not every tick

    def __repr__(self) -> str:  # never show the key
        return f"Agent(machine={self.cfg.machine!r}, store={self.store.url!r})"

    # ---- fetch and verify -----------------------------------------------------------------

    def _fetch(self, now: float, errors: list[str]) -> bool:
        """Update the cached verified copy from the bucket; False when the store failed."""
        st = self.state
        cached = self.dir.read_doc(CACHED_FILE, st.cached_digest)
        inm = None
        if (st.etag and st.etag == st.cached_etag and cached is not None) or (
            st.etag and st.refused_etag == self._refused_as(st.etag)
        ):
            inm = st.etag
        try:
            result = self.store.get(self.desired_key, if_none_match=inm)
            self._pulled = True
        except DocumentTooLarge as exc:
            self._refuse("too_large", str(exc), now, None, errors)
            return True
        except StoreAccessDenied as exc:
            # S3 answers 403, not 404, for a missing object when the credentials may not
            # list the bucket (the least-privilege agent policy): not written yet, or denied.
            errors.append(
                f"store: {exc}; if this machine is new, the controller has not written "
                f"{self.desired_key} yet; otherwise check the agent's policy"
            )
            log.warning("fetch.denied key=%s (missing or refused)", self.desired_key)
            return True
        except StoreError as exc:
            reason = "fetch_timeout" if exc.__class__.__name__ == "RequestTimedOut" else None
            if reason:
                self._refuse(reason, str(exc), now, None, errors)
            else:
                errors.append(f"store: {exc}")
            log.warning("fetch.failed key=%s error=%s", self.desired_key, exc)
            return False
        if isinstance(result, Missing):
            log.info("fetch.missing key=%s (no desired document yet)", self.desired_key)
            return True
        if isinstance(result, NotModified):
            if inm is None:
                self._refuse(
                    "unexpected_not_modified",
                    "the store answered 304 to an unconditional GET; nothing cached to trust",
                    now,
                    None,
                    errors,
                )
            return True
        assert isinstance(result, StoredObject)
        try:
            verified = verify_desired(
                result.body,
                object_key=self.desired_key,
                machine=self.cfg.machine,
                kid=self.cfg.kid,
                key=self._key,
                mark=st.marks.get(self.cfg.kid),
            )
            expired = check_expiry(verified.doc, now)
            if expired:
                raise Refused("expired", expired)
        except Refused as exc:
            self._refuse(exc.reason, exc.detail, now, result.etag, errors)
            return True
        self.dir.write_doc(CACHED_FILE, result.body)
        doc = verified.doc
        self.state = replace(
            self.state.with_mark(self.cfg.kid, Mark(doc.generation, doc.fence, verified.digest)),
            etag=result.etag,
            cached_etag=result.etag,
            cached_digest=verified.digest,
            refused_etag=None,
        )
        self.dir.save(self.state)
        log.info(
            "desired.accepted generation=%d fence=%d digest=%s",
            doc.generation,
            doc.fence,
            verified.digest[:12],
        )
        return True

    def _refused_as(self, etag: str) -> str:
        """A refusal is of an object version by a key: the same ETag is verified again by
        another key (a machine re-enrolled after its document was signed for the new one)."""
        return f"{etag} {self.cfg.kid}"

    def _refuse(
        self, reason: str, detail: str, now: float, etag: str | None, errors: list[str]
    ) -> None:
        log.warning("desired.refused reason=%s detail=%s", reason, detail)
        errors.append(f"refused ({reason}): {detail}")
        state = self.state.refuse(reason, detail, now)
        if etag is not None:
            state = replace(state, etag=etag, refused_etag=self._refused_as(etag))
        self.state = state
        self.dir.save(self.state)

    # ---- apply ----------------------------------------------------------------------------

    def _apply(self, now: float, errors: list[str]) -> tuple[Desired | None, bool]:
        """Apply the cached document if newer; the document now running and its staleness."""
        st = self.state
        lkg = self.dir.read_doc(APPLIED_FILE, st.applied.digest)
        running = lkg[1] if lkg else None
        cached = self.dir.read_doc(CACHED_FILE, st.cached_digest)
        if cached is not None and st.cached_digest not in (st.applied.digest, st.failed_digest):
            raw, doc = cached
            if check_expiry(doc, now) is None:
                try:
                    self.applier.apply(doc, running)
                except ApplyError as exc:
                    errors.append(f"apply: {exc}")
                    self.state = replace(
                        st,
                        applied=replace(st.applied, result="failed", error=str(exc)[:4000], at=now),
                        failed_digest=st.cached_digest,
                    )
                else:
                    self.dir.write_doc(APPLIED_FILE, raw)
                    assert st.cached_digest is not None
                    self.state = replace(
                        st,
                        applied=Applied(
                            doc.generation, doc.fence, st.cached_digest, "ok", None, now
                        ),
                        failed_digest=None,
                    )
                    running = doc
                    log.info(
                        "desired.applied generation=%d mode=%s version=%s",
                        doc.generation,
                        doc.mode,
                        doc.version,
                    )
                self.dir.save(self.state)
        stale = False
        for current in (running, cached[1] if cached else None):
            if current is not None and check_expiry(current, now):
                stale = True
        return running, stale

    # ---- report ---------------------------------------------------------------------------

    def _services(self, running: Desired | None) -> tuple[dict[str, ServiceState], dict[str, int]]:
        services: dict[str, ServiceState] = {}
        sessions: dict[str, int] = {}
        for name, svc in self.cfg.services.items():
            t = last_good_target(self.cfg, name, running)
            fields, env = t.fields, t.env()
            if svc.process is not None:
                state = self.applier.procs.state(name)
            else:
                state = "running" if t.mode in RUNNING_MODES else "stopped"
            up = state == "running"
            h = health(svc.health, fields, env) if svc.health and up else "unknown"
            raw_metrics = read_json(svc.metrics, fields, env) if svc.metrics and up else None
            m = metrics_from(raw_metrics)
            counts: dict[str, int] = {}
            if svc.sessions is not None and up:
                counts = sessions_from(read_json(svc.sessions, fields, env), svc.sessions.key)
            elif raw_metrics is not None:
                counts = sessions_from(raw_metrics, "sessions")
            for ch, n in counts.items():
                sessions[ch] = sessions.get(ch, 0) + n
            backends = {}
            if svc.backends is not None and up and running is not None and running.service == name:
                peers = running.peers
                given = [p.machine for p in (*peers.backends, *peers.evicted)]
                if given:  # a balancer with peers: what it observes of them (probes.py)
                    observed = read_json(svc.backends, fields, env)
                    backends = backends_from(observed, svc.backends.key, given)
            services[name] = ServiceState(
                version=m.get("version") or t.version,
                state=state,
                health=h,  # type: ignore[arg-type]
                port=svc.port,
                requests=m.get("requests", 0),
                errors=m.get("errors", 0),
                latency_ms=m.get("latency_ms"),
                backends=backends,
            )
        return services, sessions

    def snapshot(self, now: float, status: str, running: Desired | None, stale: bool) -> Snapshot:
        internal, external = addresses(self.cfg.addresses)
        services, sessions = self._services(running)
        st = self.state
        return Snapshot(
            machine=self.cfg.machine,
            seq=0,
            sent_at=now,
            boot_id=self.boot_id,
            agent_version=__version__,
            addresses=Addresses(internal, external),
            eligible=self.cfg.eligible,
            status=status,  # type: ignore[arg-type]
            capacity=dict(self.cfg.capacity),
            load=load(),
            sessions=sessions,
            services=services,
            applied=st.applied,
            desired_stale=stale,
            refusals=dict(st.refusals),
            last_refusal=st.last_refusal,
            verify_failures=verify_failures(st.refusals),
            heartbeat_interval=self.cfg.heartbeat_interval,
        )

    def _report(self, snap: Snapshot, now: float, force: bool, errors: list[str]) -> bool:
        fp = fingerprint(snap, self.cfg.kid)
        st = self.state
        due = now - st.last_put_at >= self.cfg.heartbeat_interval
        if not force and not due and fp == st.last_fingerprint:
            return False
        seq = max(st.seq + 1, int(now * 1000))
        self.state = replace(st, seq=seq)
        self.dir.save(self.state)  # seq is durable before it is used
        body = seal(
            replace(snap, seq=seq),
            key=self._key,
            kid=self.cfg.kid,
            object_key=self.report_key,
            times=self._times(),
        )
        try:
            self.store.put(self.report_key, body)
        except StoreError as exc:
            errors.append(f"store: {exc}")
            log.warning("report.failed key=%s error=%s", self.report_key, exc)
            return False
        self.state = replace(self.state, last_put_at=now, last_fingerprint=fp)
        log.info("report.put seq=%d heartbeat=%s", seq, due and fp == st.last_fingerprint)
        return True

    def _times(self) -> TimeForm:
        """ISO 8601 times in the snapshot once the desired document held was written with
        them (its controller reads them); Unix seconds before, which every controller reads
        (docs/agent.md#times-in-documents)."""
        cached = self.dir.read_doc(CACHED_FILE, self.state.cached_digest)
        if cached is None:
            return "epoch"
        return "iso" if holds_iso_times(parse_envelope(cached[0]).body) else "epoch"

    # ---- the cycle ------------------------------------------------------------------------

    def cycle(self, *, status: str = "running", force_report: bool = False) -> CycleResult:
        now = time.time()
        self._reload()
        errors: list[str] = list(self.startup_errors)
        self.startup_errors = []
        self._start_deadline()
        self._pulled = False
        store_ok = self._fetch(now, errors)
        running, stale = self._apply(now, errors)
        if running is not None:
            try:
                self.applier.supervise(running, now)
            except ApplyError as exc:
                errors.append(f"supervise: {exc}")
        snap = self.snapshot(now, status, running, stale)
        put = self._report(snap, now, force_report, errors)
        self.state = replace(
            self.state,
            last_cycle_at=now,
            last_pull_at=now if self._pulled else self.state.last_pull_at,
            last_error="; ".join(errors)[:4000] if errors else self.state.last_error,
        )
        self.dir.save(self.state)
        result = CycleResult(not errors, put, tuple(errors), store_down=not store_ok)
        if self.cfg.metrics_textfile:
            from agent.textfile import write_textfile

            write_textfile(
                Path(self.cfg.metrics_textfile), self.cfg.machine, self.state, result, stale
            )
        return result

    def _reload(self) -> None:
        """The disk is the source of truth: another agent process may have run a cycle."""
        self.state, corrupt = self.dir.load()
        if corrupt:
            self.startup_errors.append(corrupt)

    def _start_deadline(self) -> None:
        set_deadline = getattr(self.store, "set_deadline", None)
        if set_deadline is not None and self.deadline is not None:
            set_deadline(time.monotonic() + self.deadline)

    def running_doc(self) -> Desired | None:
        lkg = self.dir.read_doc(APPLIED_FILE, self.state.applied.digest)
        return lkg[1] if lkg else None

    def supervise_tick(self) -> None:
        """Between daemon cycles: restart a crashed supervised process (with backoff)."""
        try:
            self.applier.supervise(self.running_doc(), time.time())
        except ApplyError as exc:
            # the tick runs every second: the same failure is logged once (and again when it
            # changes), then its recovery, so a lasting problem does not flood the log
            if str(exc) != self._supervise_error:
                log.error("supervise.failed error=%s (logged once until it changes)", exc)
            self._supervise_error = str(exc)
            return
        if self._supervise_error is not None:
            log.info("supervise.recovered after error=%s", self._supervise_error)
            self._supervise_error = None

    def final_report(self) -> bool:
        """The last snapshot of a stopping daemon: `status: stopping`, always sent."""
        now = time.time()
        errors: list[str] = []
        self._reload()
        self._start_deadline()
        running = self.running_doc()
        stale = running is not None and check_expiry(running, now) is not None
        put = self._report(self.snapshot(now, "stopping", running, stale), now, True, errors)
        self.dir.save(self.state)
        return put


def fingerprint(snap: Snapshot, kid: str = "") -> str:
    """Digest of what matters for change detection: liveness fields and counters left out;
    the key it is signed with (`kid`) in, so a machine given a new key reports with it at
    once instead of at its next heartbeat (the controller signs for the epoch it sees)."""
    body: dict[str, Any] = encode_body(snap)
    if kid:
        body["kid"] = kid
    for name in ("seq", "sent_at", "load"):
        body.pop(name, None)
    body["sessions"] = {k: v > 0 for k, v in snap.sessions.items()}
    for svc in body["services"].values():
        for name in ("requests", "errors", "latency_ms", "metrics"):
            svc.pop(name, None)
    return digest(body)
