"""Loading and saving what the controller keeps in the bucket between cycles.

* `control/memory.json`: the planner's `Memory`; lost -> rebuilt from `desired/`.
* `control/intake.json`: the shell's `IntakeState` (seq high-water marks, ETags).
* `spec/current.json`: the applied cluster spec (read only).

Every save is conditional on the ETag read at the start of the cycle (or create-only), so
a stale controller can never overwrite what a newer one saved (docs/security.md#fenced-writes).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

from controller.planner.model import Memory
from controller.shell.control_guard import ControlGuard
from controller.shell.intake_state import IntakeState
from controller.shell.key_epochs import KeyRing
from controller.spec.document import read_stored
from controller.spec.model import ClusterSpec
from controller.spec.revisions import MAX_STORED_SPEC, UNREADABLE, read_revision
from controller.spec.signature import Provenance, SpecTrust, SpecUnverified
from wire.control import MAX_CONTROL_BYTES
from wire.documents import Desired, open_desired
from wire.errors import (
    BosunError,
    InvalidDocument,
    ObjectMissing,
    SpecError,
    StoreUnavailable,
    WriteConflict,
)
from wire.layout import DESIRED, INTAKE, MEMORY, SPEC_CURRENT, machine_from_key
from wire.store import Missing, NotModified, Store, StoredObject

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Loaded(Generic[T]):
    value: T
    etag: str | None  # None: the object did not exist (save with If-None-Match: *)
    recovered: bool = False


def _get(store: Store, key: str, max_bytes: int) -> StoredObject | None:
    got = store.get(key, max_bytes=max_bytes)
    if isinstance(got, Missing):
        return None
    if not isinstance(got, StoredObject):  # pragma: no cover - unconditional GET
        raise InvalidDocument(f"{store.describe(key)}: unexpected not-modified answer")
    return got


@dataclass
class SpecCache:
    etag: str | None = None
    spec: ClusterSpec | None = None
    problem: str | None = None  # why the object at `etag` was refused
    reason: str = ""  # its refusal reason (signature.SpecUnverified), "invalid" otherwise
    last_good: ClusterSpec | None = None  # the history revision planned with meanwhile
    trust: SpecTrust | None = None  # what `spec` was verified against
    provenance: Provenance | None = None  # who applied `spec` (the one planned with)


@dataclass(frozen=True, slots=True)
class SpecRefusal:
    """spec/current.json could not be used; the cycle plans with `planning_with` (the
    revision it last planned with, from spec/history/) or, with None, plans nothing.
    `count`: refusals counted, once per refused object version."""

    detail: str
    etag: str | None
    planning_with: int | None
    reason: str = "invalid"
    count: int = 1


def load_spec(
    store: Store, cache: SpecCache | None = None, trust: SpecTrust | None = None
) -> ClusterSpec | None:
    """The applied cluster spec (None when `bosun spec apply` never ran); a conditional GET
    when `cache` holds the last one read. A malformed one raises SpecError, InvalidDocument
    or DocumentTooLarge, one that does not verify against `trust` SpecUnverified
    (docs/security.md#operator-signed-specs); either is remembered by its ETag and not
    parsed again until it (or the trust) changes."""
    cache = cache if cache is not None else SpecCache()
    if cache.trust != trust:  # operator keys changed: check the signature again
        cache.etag, cache.trust = None, trust
    got = store.get(SPEC_CURRENT, if_none_match=cache.etag, max_bytes=MAX_STORED_SPEC)
    if isinstance(got, NotModified) and cache.etag is not None:
        if cache.problem is not None:
            raise SpecUnverified(cache.problem, reason=cache.reason)
        return cache.spec
    if not isinstance(got, StoredObject):
        cache.etag, cache.spec, cache.problem = None, None, None
        return None
    try:
        stored = read_stored(got.body, where=store.describe(SPEC_CURRENT), trust=trust)
    except (SpecError, InvalidDocument) as exc:
        cache.etag, cache.spec, cache.problem = got.etag, None, str(exc)
        cache.reason = exc.reason if isinstance(exc, SpecUnverified) else "invalid"
        raise
    cache.spec, cache.provenance = stored.spec, stored.provenance
    cache.etag, cache.problem = got.etag, None
    return cache.spec


def load_spec_or_last_good(
    store: Store, cache: SpecCache, revision: int, trust: SpecTrust | None = None
) -> tuple[ClusterSpec | None, SpecRefusal | None]:
    """The applied spec; if spec/current.json is refused (malformed, hostile, too large,
    not signed by a listed operator, or older than `revision`, the one last planned with),
    that revision from spec/history/ (verified the same way) so that nothing changes until
    a valid spec is applied, and why."""
    reason = "invalid"
    try:
        spec = load_spec(store, cache, trust)
        if spec is None or not revision or spec.revision >= revision:
            return spec, None
        raise SpecUnverified(
            f"{store.describe(SPEC_CURRENT)} is revision {spec.revision}, below revision "
            f"{revision} already planned with: an older revision put back (replayed)",
            reason="replayed",
        )
    except UNREADABLE as exc:
        problem = str(exc)
        reason = exc.reason if isinstance(exc, SpecUnverified) else "invalid"
    last = cache.last_good
    if revision and (last is None or last.revision != revision):
        try:
            last = read_revision(store, revision, trust)
        except ObjectMissing:
            last = None
        except UNREADABLE as exc:
            log.error("spec.history_unreadable %s", exc)
            last = None
    cache.last_good = last if revision else None
    planning_with = cache.last_good.revision if cache.last_good is not None else None
    read = cache.problem is not None or reason == "replayed"
    etag = cache.etag if read else None  # None: too large to read
    return cache.last_good, SpecRefusal(problem, etag, planning_with, reason)


Cache = dict[str, tuple[str, Any]]
"""key -> (ETag, decoded value) of objects this process read or wrote: re-read with
If-None-Match, so an unchanged control object costs a 304 instead of its body."""


def _get_cached(store: Store, key: str, cache: Cache | None) -> tuple[StoredObject | None, Any]:
    hit = cache.get(key) if cache is not None else None
    got = store.get(key, if_none_match=hit[0] if hit else None, max_bytes=MAX_CONTROL_BYTES)
    if isinstance(got, NotModified) and hit is not None:
        return StoredObject(key, b"", hit[0]), hit[1]
    if isinstance(got, Missing):
        return None, None
    if not isinstance(got, StoredObject):
        raise InvalidDocument(f"{store.describe(key)}: unexpected not-modified answer")
    return got, None


def remember(cache: Cache | None, key: str, etag: str | None, value: Any) -> None:
    if cache is not None and etag:
        cache[key] = (etag, value)


def _last_good(cache: Cache | None, key: str) -> Any:
    hit = cache.get(key) if cache is not None else None
    return hit[1] if hit is not None else None


def load_intake(
    store: Store, guard: ControlGuard, now: float, cache: Cache | None = None
) -> Loaded[IntakeState]:
    """The shell's intake state. One that does not verify, or older than a version seen
    (docs/security.md#signed-control-objects), is refused: the last good copy this process
    holds is used, else a fresh state (every report is accepted anew and starts a full
    liveness window); the next save replaces the refused object."""
    got, value = _get_cached(store, INTAKE, cache)
    if got is None:
        guard.open(INTAKE, None, None, now)
        return Loaded(_last_good(cache, INTAKE) or IntakeState(), None)
    if value is None:
        sealed = guard.open(INTAKE, got.body, got.etag, now)
        if sealed is None:
            return Loaded(_last_good(cache, INTAKE) or IntakeState(), got.etag, recovered=True)
        value = IntakeState.from_value(sealed.value, where=store.describe(INTAKE))
        remember(cache, INTAKE, got.etag, value)
    return Loaded(value, got.etag)


def load_memory(
    store: Store,
    keys: KeyRing,
    intake: IntakeState,
    guard: ControlGuard,
    now: float,
    cache: Cache | None = None,
) -> tuple[Loaded[Memory], IntakeState]:
    """The planner memory; when it is missing or refused (unsigned, forged, rolled back:
    docs/security.md#signed-control-objects), the last good copy this process holds, else
    rebuilt from the signed documents in desired/.

    Recovery also records every desired document's ETag in the intake state, so the next
    writes are conditioned on what is really there and no generation is reused.
    """
    got, value = _get_cached(store, MEMORY, cache)
    if got is not None and value is None:
        sealed = guard.open(MEMORY, got.body, got.etag, now)
        if sealed is not None:
            value = Memory.from_value(sealed.value, where=store.describe(MEMORY))
            remember(cache, MEMORY, got.etag, value)
    elif got is None:
        guard.open(MEMORY, None, None, now)
    etag = got.etag if got is not None else None
    if value is not None and got is not None and not isinstance(value, Memory):
        value = None  # pragma: no cover - the cache holds only Memory values
    if value is not None:
        return Loaded(value, etag), intake
    kept = _last_good(cache, MEMORY)
    if kept is not None:
        return Loaded(kept, etag, recovered=True), intake
    docs, etags = read_all_desired(store, keys)
    if not docs and not etags:
        return Loaded(Memory(), etag), intake
    memory = Memory.rebuild(docs)
    log.warning("memory.recovered", extra={"ctx": {"documents": len(docs)}})
    return (
        Loaded(memory, etag, recovered=True),
        replace(intake, fence=max(intake.fence, memory.fence), desired=etags),
    )


def read_all_desired(store: Store, keys: KeyRing) -> tuple[list[Desired], dict[str, str]]:
    """Every verifiable desired document, and the ETag of every object under desired/."""
    infos = [i for i in store.list(DESIRED) if i.key.endswith(".json")]

    def fetch(key: str) -> tuple[str, StoredObject | None]:
        return key, _get(store, key, 256 * 1024)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(fetch, [i.key for i in infos]))
    docs: list[Desired] = []
    etags: dict[str, str] = {}
    for key, got in results:
        if got is None:
            continue
        try:
            machine = machine_from_key(key, DESIRED)
        except ValueError:
            continue
        etags[machine] = got.etag
        try:
            _env, doc = open_desired(got.body, key, keys.lookup)
        except BosunError as exc:
            log.warning("memory.recover_skipped %s: %s", key, exc)
            continue
        docs.append(doc)
    return docs, etags


def save(store: Store, key: str, body: bytes, etag: str | None) -> str:
    """Conditional save: If-Match on the ETag read, or create-only. WriteConflict propagates."""
    if etag is None:
        return store.put(key, body, if_none_match="*")
    return store.put(key, body, if_match=etag)


def try_save(store: Store, key: str, body: bytes, etag: str | None) -> tuple[str | None, str]:
    """Like `save` but returns (new etag or None, problem) instead of raising on conflicts."""
    try:
        return save(store, key, body, etag), ""
    except WriteConflict as exc:
        return None, f"{exc}; another controller saved it, re-planning next cycle"
    except StoreUnavailable as exc:
        return None, f"{exc}; outcome unknown, re-reading next cycle"
