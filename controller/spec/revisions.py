"""Reading and writing spec revisions in the bucket (the only I/O of controller.spec).

Apply protocol (nothing is written unless the new spec validated):
1. GET spec/current.json -> (current revision, etag) or none;
2. PUT spec/history/<rev+1>.json with If-None-Match: * (a concurrent apply loses here);
3. PUT spec/current.json with If-Match: <etag> (or If-None-Match: * when there was none).
History keys are write-once. The loser of a race at step 3 leaves an orphan history
entry that never became current; the next apply skips over it to the next free revision.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

from controller.spec.document import read_stored, to_json
from controller.spec.model import ClusterSpec
from controller.spec.signature import Provenance, Signer, SpecTrust
from wire.errors import DocumentTooLarge, InvalidDocument, ObjectMissing, SpecError, WriteConflict
from wire.layout import SPEC_CURRENT, SPEC_HISTORY, spec_history_key
from wire.store import Missing, NotModified, Store, StoredObject

log = logging.getLogger(__name__)

MAX_ORPHANS = 100
MAX_STORED_SPEC = 16 * 1024 * 1024  # as the controller reads it (a 4 MiB YAML grows as JSON)
# what reading a stored spec raises when the object is there but cannot be used
UNREADABLE = (SpecError, InvalidDocument, DocumentTooLarge)


class SpecChanged(SpecError):
    """The applied revision is not the one the caller based its change on."""


@dataclass(frozen=True, slots=True)
class Current:
    spec: ClusterSpec
    applied_at: float
    etag: str
    provenance: Provenance = field(default_factory=Provenance)


def read_current(store: Store, trust: SpecTrust | None = None) -> Current | None:
    """The applied spec, or None when no spec was ever applied; with `trust`, its signature
    is checked (SpecUnverified when it does not verify)."""
    got = store.get(SPEC_CURRENT, max_bytes=MAX_STORED_SPEC)
    if isinstance(got, Missing):
        return None
    if isinstance(got, NotModified):  # no If-None-Match was sent: a broken store
        raise ObjectMissing(f"{store.describe(SPEC_CURRENT)}: store answered not-modified")
    stored = read_stored(got.body, where=store.describe(SPEC_CURRENT), trust=trust)
    return Current(stored.spec, stored.applied_at, got.etag, stored.provenance)


def read_revision(store: Store, revision: int, trust: SpecTrust | None = None) -> ClusterSpec:
    return read_revision_stored(store, revision, trust)[0]


def read_revision_stored(
    store: Store, revision: int, trust: SpecTrust | None = None
) -> tuple[ClusterSpec, Provenance]:
    """A past revision and who applied it; the revision inside must be the key's (a revision
    copied under another history key is refused)."""
    key = spec_history_key(revision)
    got = store.get(key, max_bytes=MAX_STORED_SPEC)
    if not isinstance(got, StoredObject):
        raise ObjectMissing(
            f"{store.describe(key)} does not exist; `bosun spec show` prints the current revision"
        )
    stored = read_stored(got.body, where=store.describe(key), trust=trust)
    if stored.spec.revision != revision:
        raise InvalidDocument(
            f"{store.describe(key)} holds revision {stored.spec.revision}, not {revision}"
        )
    return stored.spec, stored.provenance


def _damaged_current(store: Store, problem: Exception) -> tuple[int, str]:
    """spec/current.json cannot be read: (the revision after the newest in spec/history/,
    the damaged object's ETag), so an apply can replace it."""
    etag = next((i.etag for i in store.list(SPEC_CURRENT) if i.key == SPEC_CURRENT), "")
    newest = 0
    for info in store.list(SPEC_HISTORY):
        stem = info.key[len(SPEC_HISTORY) :].removesuffix(".json")
        if stem.isdigit():
            newest = max(newest, int(stem))
    log.warning(
        "spec.current_replaced %s was unreadable (%s); applying over it as revision %d",
        store.describe(SPEC_CURRENT),
        problem,
        newest + 1,
    )
    return newest + 1, etag


def apply(
    store: Store,
    spec: ClusterSpec,
    *,
    now: float,
    expect_revision: int | None = None,
    signer: Signer | None = None,
    applied_by: str = "",
    message: str = "",
) -> ClusterSpec:
    """Write `spec` as the next revision; WriteConflict if another apply won the race.
    A damaged spec/current.json (malformed, hostile, too large) is replaced: the new
    revision follows the newest in spec/history/. With `expect_revision`, SpecChanged
    unless that is the applied revision (0: none applied). With `signer`, the revision is
    signed by that operator (docs/security.md#operator-signed-specs); `applied_by` and
    `message` are recorded with it."""
    try:
        current = read_current(store)
        revision = (current.spec.revision if current else 0) + 1
        expected = current.etag if current else ""
    except UNREADABLE as exc:
        revision, expected = _damaged_current(store, exc)
    if expect_revision is not None and revision - 1 != expect_revision:
        raise SpecChanged(
            f"{store.describe(SPEC_CURRENT)} is at revision {revision - 1}, not "
            f"{expect_revision} as expected: the spec changed underneath; nothing written. "
            "See what changed with `bosun spec diff FILE` and apply again"
        )
    for _ in range(MAX_ORPHANS):
        new = replace(spec, revision=revision)
        body = to_json(new, applied_at=now, applied_by=applied_by, message=message, signer=signer)
        try:
            store.put(spec_history_key(revision), body, if_none_match="*")
            break
        except WriteConflict:
            # an apply that lost its race on current.json left this revision behind
            log.info("spec.history_taken", extra={"ctx": {"revision": revision}})
            revision += 1
    else:
        raise WriteConflict(
            f"{store.describe(spec_history_key(revision))}: {MAX_ORPHANS} revisions after "
            f"the current one already exist; check spec/history/ and retry"
        )
    try:
        if expected:  # the applied (or damaged) object read above
            store.put(SPEC_CURRENT, body, if_match=expected)
        else:
            store.put(SPEC_CURRENT, body, if_none_match="*")
    except WriteConflict as exc:
        raise WriteConflict(
            f"{store.describe(SPEC_CURRENT)} changed while applying revision {revision} "
            "(another apply won); run the command again",
            status=exc.status,
        ) from exc
    log.info("spec.applied", extra={"ctx": {"revision": revision, "signed": signer is not None}})
    return new


def with_forget(spec: ClusterSpec, machines: tuple[str, ...]) -> ClusterSpec:
    """The spec with `machines` added to `forget:` (`bosun machines forget`)."""
    return replace(spec, forget=tuple(sorted(set(spec.forget) | set(machines))))
