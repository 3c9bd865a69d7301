"""What a controller process trusts: its key ring and the marks of its control objects.

`Trust` reads control/keys.json through the `ControlGuard` (a deleted, rolled-back or
forged one leaves the ring as it was, so a revocation survives it), carries the marks and
the last good keys between `bosun controller once` processes, and turns the lease's and
the memory's refusals into the wrong-key stop (docs/security.md#signed-control-objects,
docs/security.md#wrong-key).
"""

from __future__ import annotations

import logging
from dataclasses import replace

from controller.planner.model import Event
from controller.shell.control_guard import ControlGuard
from controller.shell.intake import WrongMasterKey
from controller.shell.key_epochs import KeyRing, KeysDoc
from wire.control import open_control
from wire.errors import BosunError, ControlRefused
from wire.layout import KEYS, LEASE, MEMORY
from wire.store import NotModified, Store, StoredObject

log = logging.getLogger(__name__)

BIG = 16 * 1024 * 1024


class Trust:
    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring
        self.guard = ControlGuard.for_master(ring.master)
        self.keys_etag: str | None = None
        self.keys_version = 0  # version of the control/keys.json the ring holds
        self.keys_raw: bytes | None = None  # its signed bytes

    def say_revoked(self, event: Event) -> Event:
        """A machine lost because its key was revoked says so, not "no snapshot"."""
        m = event.machine
        if event.kind != "machine.lost" or m is None or m not in self.ring.revoked:
            return event
        if self.ring.reported.get(m, -1) == self.ring.epoch(m):
            return event
        return replace(
            event,
            reason=f"key revoked (epoch now {self.ring.epoch(m)}): its reports signed with the "
            "old key are refused; re-enroll it with the new epoch",
        )

    def refuse_wrong_key(self, store: Store) -> None:
        """docs/security.md#wrong-key for the control objects: when neither the lease nor
        the memory verifies with our control key, the master key is probably wrong."""
        lease = self.guard.refused.get(LEASE)
        if lease is None or not lease.active or lease.reason != "bad_signature":
            return
        got = store.get(MEMORY, max_bytes=BIG)
        if not isinstance(got, StoredObject):
            return
        try:
            open_control(got.body, MEMORY, self.guard.key)
        except ControlRefused as exc:
            if exc.reason == "bad_signature":
                raise WrongMasterKey(
                    f"{LEASE} and {MEMORY} fail their signature check: the master key is "
                    "probably wrong (compare --master-key with the key the controller used); "
                    "nothing was planned or written"
                ) from None

    def lease_refused(self, reason: str, detail: str, etag: str | None) -> None:
        if reason:
            self.guard.refuse(LEASE, reason, detail, etag, self.ring.wall())
        else:
            self.guard.resolved(LEASE)

    def refresh_keys(self, store: Store, now: float) -> None:
        """control/keys.json, verified and not older than any version seen; a refused one
        (deleted, rolled back, unsigned) leaves the ring as it was, so a revocation
        survives it (docs/security.md#signed-control-objects)."""
        got = store.get(KEYS, if_none_match=self.keys_etag)
        if isinstance(got, NotModified):
            return
        raw = got.body if isinstance(got, StoredObject) else None
        etag = got.etag if isinstance(got, StoredObject) else None
        sealed = self.guard.open(KEYS, raw, etag, now)
        if sealed is not None:
            self.ring.use(KeysDoc.decode(sealed.value, store.describe(KEYS)))
            self.keys_etag, self.keys_version = etag, sealed.version
            self.keys_raw = raw
        elif raw is None and not self.guard.needed(KEYS):
            self.ring.use(KeysDoc())  # never created: every machine at epoch 0
            self.keys_etag, self.keys_version = None, 0
        else:
            self.keys_etag = etag  # refused: not re-read until it changes

    def export(self) -> dict[str, object]:
        """The marks and the keys in use, for the next short-lived process."""
        raw = self.keys_raw.decode() if self.keys_raw else None
        return {"marks": self.guard.export(), "keys": raw, **self.guard.export_refusals()}

    def restore(self, saved: dict[str, object]) -> None:
        """Resume from `export()`; a saved copy that does not verify is ignored."""
        marks, raw = saved.get("marks"), saved.get("keys")
        if isinstance(marks, dict):
            self.guard.restore(marks)
        self.guard.restore_refusals(saved)
        if isinstance(raw, str):
            try:
                sealed = open_control(raw.encode(), KEYS, self.guard.key)
                self.ring.use(KeysDoc.decode(sealed.value))
            except BosunError as exc:
                log.warning("trust.local_keys_ignored: %s", exc)
                return
            self.keys_raw, self.keys_version = raw.encode(), sealed.version

    def check_keys(self) -> None:
        """Stop when the keys this process holds are older than a version another control
        object records: planning with them could undo a revocation."""
        needed = self.guard.needed(KEYS)
        if needed > self.keys_version:
            refusal = self.guard.refused.get(KEYS)
            why = refusal.detail if refusal is not None else f"{KEYS} is older than recorded"
            raise ControlRefused(
                f"{why}; this controller holds no copy of version {needed} (recorded in "
                f"{MEMORY}): nothing is planned until {KEYS} is restored",
                reason=refusal.reason if refusal is not None else "rolled_back",
            )
