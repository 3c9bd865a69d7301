"""The bucket heals: find desired documents that are not what the controller last wrote.

docs/security.md#crash-windows. The controller records the ETag of every desired document
it writes (`control/intake.json` `desired`). One LIST of `desired/` per cycle (a page per
1,000 machines, as for `reports/`) shows every document whose ETag differs from that
record or that is gone. Each one is read and judged:

    deleted                      repair: written again (If-None-Match: *)
    unverifiable                 repair: tampered with or forged; overwritten (If-Match)
    valid, another content       repair: a crash between the write and the memory save
                                 left it behind, or an older valid copy was put back;
                                 rewritten with a generation above the one found
    valid, the content we meant  the record was stale (state lost, a conflict): learn the
                                 ETag, nothing to write
    valid, a higher fence        a newer controller wrote it: never overwritten

Repairs are observations handed to the planner (`Observed.drift`: machine -> generation
found), which plans a write for each whatever its memory says, so recovery compares with
what is in `desired/`, not with what memory says was written.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field

from controller.planner.model import Event, Memory, content_digest
from controller.shell.key_epochs import KeyRing
from controller.shell.listing import RangedLister, machine_of
from wire.documents import open_desired
from wire.errors import BosunError, StoreUnavailable
from wire.layout import DESIRED, desired_key
from wire.store import ObjectInfo, Store, StoredObject

log = logging.getLogger(__name__)


@dataclass
class DriftCheck:
    drift: dict[str, int] = field(default_factory=dict)  # machine -> generation found (0: none)
    etags: dict[str, str] = field(default_factory=dict)  # current ETags learned ("": deleted)
    events: list[Event] = field(default_factory=list)
    listed: int = 0


def list_in_background(
    store: Store, lister: RangedLister | None = None, recorded: Iterable[str] = ()
) -> Future[list[ObjectInfo]]:
    """The LIST of `desired/`, made on its own thread while intake LISTs `reports/` (the
    two listings are independent), in key ranges with `lister` (`recorded`: the machines
    whose document this controller recorded, to cut the ranges on a first listing)."""
    done: Future[list[ObjectInfo]] = Future()

    def run() -> None:
        try:
            if lister is None:
                done.set_result(list(store.list(DESIRED)))
            else:
                done.set_result(lister.list(DESIRED, (f"{DESIRED}{m}.json" for m in recorded)))
        except BaseException as exc:  # handed to the caller of result()
            done.set_exception(exc)

    threading.Thread(target=run, name="bosun-list-desired", daemon=True).start()
    return done


def find_drift(
    store: Store,
    keys: KeyRing,
    memory: Memory,
    recorded: Mapping[str, str],
    fence: int,
    listing: Iterable[ObjectInfo] | None = None,
) -> DriftCheck:
    """Compare `desired/` with what this controller recorded writing; read what differs.
    `listing`: the LIST of `desired/` if the caller already made it (during intake)."""
    out = DriftCheck()
    listed: dict[str, str] = {}
    for info in store.list(DESIRED) if listing is None else listing:
        try:
            listed[machine_of(info.key, DESIRED)] = info.etag
        except ValueError:
            continue  # not a machine's document; reports and intake count foreign keys
    out.listed = len(listed)
    # the machines whose document is not as recorded (nothing written for it yet: none to
    # check), in machine order; the fleet is walked once, unsorted
    differ = sorted(
        m
        for m, mm in memory.machines.items()
        if mm.generation != 0 and ((etag := listed.get(m)) is None or etag != recorded.get(m))
    )
    for m in differ:
        mm = memory.machines[m]
        now_etag = listed.get(m)
        if now_etag is None:
            _repair(out, m, 0, "deleted", f"{desired_key(m)} is gone")
            out.etags[m] = ""
            continue
        try:
            got = store.get(desired_key(m))
        except StoreUnavailable as exc:
            log.warning("drift.unreadable %s", exc)  # learn nothing; the next cycle looks again
            continue
        if not isinstance(got, StoredObject):
            _repair(out, m, 0, "deleted", f"{desired_key(m)} vanished since the LIST")
            out.etags[m] = ""
            continue
        out.etags[m] = got.etag
        try:
            _env, found = open_desired(got.body, desired_key(m), keys.lookup)
        except BosunError as exc:
            _repair(out, m, mm.generation, "unverifiable", str(exc)[:300])
            continue
        if found.fence > fence:
            log.warning("drift.newer_fence %s has fence %d above ours", m, found.fence)
            reason = f"fence {found.fence} above our {fence}: not ours to repair"
            out.events.append(Event("desired.newer_fence", reason, m))
            continue
        if content_digest(found) == mm.digest and found.generation == mm.generation:
            continue  # the record was stale; the document is the one we meant
        _repair(
            out,
            m,
            found.generation,
            "differs",
            f"generation {found.generation} in the bucket, {mm.generation} in memory, "
            "with another content",
        )
    return out


def _repair(out: DriftCheck, m: str, generation: int, why: str, detail: str) -> None:
    out.drift[m] = generation
    out.events.append(Event("desired.drift", why, m, data={"detail": detail}))
    log.warning("drift.%s %s: %s", why, m, detail)
