"""Signing and writing the planner's desired documents (docs/security.md#stop-on-lease-loss, #fenced-writes).

Each write is conditional: `If-Match` on the ETag last read or written for that document
(kept in the intake state), or `If-None-Match: *` for a machine that never had one. When
the ETag is unknown (state lost, earlier conflict: recorded as "") the document is read first; if it
already carries a generation at or above the planned one, nothing is written and the
planner memory learns that generation (so no generation is ever reused).

Before every write the lease is checked: after the renew deadline nothing more is written.
A `WriteConflict` is never retried in place: the next cycle re-plans.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from hashlib import sha256

from controller.planner.model import (
    Event,
    EventKind,
    MachineMemory,
    Memory,
    Observed,
    PutDesired,
    RolloutStatus,
    content_digest,
)
from controller.shell.key_epochs import KeyRing
from wire.documents import MAX_DOCUMENT_BYTES, Desired, open_desired, seal
from wire.errors import BosunError, StoreUnavailable, WriteConflict
from wire.layout import MachineId, desired_key, rollout_status_key
from wire.store import Missing, Store, StoredObject
from wire.times import TimeForm, reads_iso_times

log = logging.getLogger(__name__)

SecretsHook = Callable[[Desired, bytes, str], Desired]  # (document, machine key, object key)
PUBLISH_THREADS = 8  # writers for a normal cycle
PUBLISH_THREADS_MAX = 32  # a large publish (a cold start, a fleet-wide change) gets up to this


@dataclass
class PublishResult:
    written: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # machine -> why
    learned: dict[str, Desired] = field(default_factory=dict)  # newer documents found
    etags: dict[str, str] = field(default_factory=dict)  # "": unknown, read before writing
    epochs: dict[str, int] = field(default_factory=dict)  # key epoch of each document written
    stopped: str = ""  # why publishing stopped early (lease deadline)
    events: list[Event] = field(default_factory=list)


def publish(
    store: Store,
    keys: KeyRing,
    writes: tuple[PutDesired, ...],
    known_etags: dict[str, str],
    *,
    fence: int,
    can_act: Callable[[], bool],
    threads: int = PUBLISH_THREADS,
    secrets: SecretsHook | None = None,
    times: Callable[[str], TimeForm] | None = None,
) -> PublishResult:
    """Write the documents, `threads` at a time; the lease is checked before each write.
    `secrets` encrypts a document's secret values for its machine before it is signed
    (controller.shell.spec_secrets); `times` says how a machine's document writes its times
    (`times_for`; None: ISO 8601)."""
    out = PublishResult()
    for w in writes:
        if w.desired.fence != fence:
            raise RuntimeError(f"planner fence {w.desired.fence} != lease token {fence}")  # a bug
    lock = threading.Lock()
    unwritten: list[PutDesired] = []

    def one(w: PutDesired) -> None:
        if not can_act():
            with lock:
                unwritten.append(w)
            return
        form = times(w.machine) if times is not None else "iso"
        _publish_one(store, keys, w, known_etags.get(w.machine), out, secrets, form)

    if threads <= 1 or len(writes) <= 2:
        for w in writes:
            one(w)
    else:
        with ThreadPoolExecutor(max_workers=writers(threads, len(writes))) as pool:
            list(pool.map(one, writes))
    if unwritten:
        out.stopped = (
            f"lease renew deadline passed: {len(unwritten)} desired documents "
            "not written; the next cycle re-plans"
        )
        out.events.append(
            Event("cycle.stopped", "lease_deadline", data={"unwritten": len(unwritten)})
        )
        for rest in unwritten:
            out.failed[rest.machine] = "lease deadline"
        log.warning("publish.stopped %s", out.stopped)
    out.written.sort()
    out.events.sort(key=lambda e: (e.machine or "", e.kind))
    return out


def times_for(observed: Observed) -> Callable[[str], TimeForm]:
    """How each machine's desired document writes its times: ISO 8601 when the machine's
    last accepted snapshot comes from an agent that reads them, Unix seconds otherwise (an
    older agent refuses strings there; docs/agent.md#times-in-documents)."""

    def form(machine: str) -> TimeForm:
        obs = observed.machines.get(MachineId(machine))
        return "iso" if obs is not None and reads_iso_times(obs.snapshot.agent_version) else "epoch"

    return form


def writers(threads: int, n: int) -> int:
    """Concurrent PUTs for `n` documents: one more writer per 64, up to PUBLISH_THREADS_MAX
    (SeaweedFS on 2 cores tops out from ~16 writers; S3 scales further per prefix)."""
    return min(PUBLISH_THREADS_MAX, max(threads, n // 64))


def _publish_one(
    store: Store,
    keys: KeyRing,
    w: PutDesired,
    etag: str | None,
    out: PublishResult,
    secrets: SecretsHook | None = None,
    form: TimeForm = "iso",
) -> None:
    m, doc = w.machine, w.desired
    key = desired_key(m)
    if etag == "" or (etag is None and w.previous_generation > 0):
        # We do not know what is there: read it before overwriting anything.
        etag = None
        try:
            got = store.get(key)
        except StoreUnavailable as exc:
            out.failed[m] = str(exc)
            return
        if isinstance(got, StoredObject):
            etag = got.etag
            out.etags[m] = etag
            try:
                _env, found = open_desired(got.body, key, keys.lookup)
            except BosunError as exc:
                log.warning("publish.unverifiable %s: %s (overwriting it)", key, exc)
            else:
                if found.generation >= doc.generation or found.fence > doc.fence:
                    out.learned[m] = found
                    out.failed[m] = (
                        f"{store.describe(key)} already has generation "
                        f"{found.generation} (fence {found.fence}); re-planning"
                    )
                    out.events.append(Event("desired.superseded", out.failed[m], m))
                    return
        elif not isinstance(got, Missing):  # pragma: no cover - unconditional GET
            out.failed[m] = "unexpected not-modified"
            return
    sign_key, kid = keys.signing_key(m)
    if secrets is not None:
        doc = secrets(doc, sign_key, key)
    body = seal(doc, key=sign_key, kid=kid, object_key=key, times=form)
    if len(body) > MAX_DOCUMENT_BYTES:  # the agent would refuse it: say so here instead
        out.failed[m] = (
            f"{key} would be {len(body)} bytes, over the {MAX_DOCUMENT_BYTES}-byte cap agents "
            "enforce; not written (shrink the service's config or split its load balancer)"
        )
        out.events.append(
            Event(
                "desired.too_large",
                out.failed[m],
                m,
                data={"generation": doc.generation, "bytes": len(body)},
            )
        )
        log.warning("publish.too_large %s", out.failed[m])
        return
    try:
        if etag is None:
            new = store.put(key, body, if_none_match="*")
        else:
            new = store.put(key, body, if_match=etag)
    except (WriteConflict, StoreUnavailable) as exc:
        out.failed[m] = str(exc)
        out.etags[m] = ""
        kind: EventKind = (
            "desired.conflict" if isinstance(exc, WriteConflict) else "desired.unknown"
        )
        out.events.append(Event(kind, str(exc)[:300], m, data={"generation": doc.generation}))
        log.warning("publish.%s %s", kind.split(".")[1], exc)
        return
    out.written.append(m)
    out.etags[m] = new
    out.epochs[m] = keys.signing_epoch(m)
    out.events.append(
        Event(
            "desired.written",
            w.reason,
            m,
            doc.service,
            data={
                "generation": doc.generation,
                "mode": doc.mode,
                "version": doc.version,
                "fence": doc.fence,
            },
        )
    )
    log.info("publish.written", extra={"ctx": {"machine": m, "generation": doc.generation}})


def settle_memory(planned: Memory, before: Memory, result: PublishResult) -> Memory:
    """The memory to save: failed writes restored to their previous entries, and newer
    documents found in the bucket taken into account."""
    failed = {m: before.machines.get(m, MachineMemory()) for m in result.failed}
    memory = planned.forget_writes(failed) if failed else planned
    for m, doc in result.learned.items():
        prev = memory.machines.get(m, MachineMemory())
        memory = memory.with_machine(
            m,
            replace(
                prev,
                generation=max(prev.generation, doc.generation),
                digest=content_digest(doc),
                issued_at=doc.issued_at,
                service=doc.service,
                mode=doc.mode,
                version=doc.version,
            ),
        )
    return memory


def publish_rollouts(
    store: Store,
    rollouts: Mapping[str, RolloutStatus],
    written: dict[str, str],
    can_act: Callable[[], bool],
) -> list[str]:
    """Write `status/rollouts/<service>.json` for each rollout whose status changed since
    this process last wrote it (`written`: service -> digest, updated in place)."""
    keys: list[str] = []
    for service, status in sorted(rollouts.items()):
        body = status.to_json()
        digest = sha256(body).hexdigest()
        if written.get(service) == digest or not can_act():
            continue
        key = rollout_status_key(service)
        store.put(key, body)
        written[service] = digest
        keys.append(key)
    return keys
