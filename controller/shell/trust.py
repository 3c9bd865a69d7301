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
from typing import Any

from controller.planner.model import Event
from controller.shell.control_guard import ControlGuard
from controller.shell.control_objects import SpecCache, SpecRefusal, load_spec_or_last_good
from controller.shell.intake import WrongMasterKey
from controller.shell.key_epochs import KeyRing, KeysDoc
from controller.shell.spec_secrets import SecretUnreadable, SpecSecrets
from controller.spec.model import ClusterSpec
from controller.status_document import SpecSignature
from wire import codec
from wire.control import MAX_CONTROL_BYTES, open_control
from wire.documents import dumps_pretty
from wire.errors import BosunError, ControlRefused
from wire.layout import KEYS, LEASE, MEMORY, SPEC_CURRENT, STATUS_CLUSTER
from wire.store import NotModified, Store, StoredObject

log = logging.getLogger(__name__)


class Trust:
    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring
        self.guard = ControlGuard.for_master(ring.master)
        self.keys_etag: str | None = None
        self.keys_version = 0  # version of the control/keys.json the ring holds
        self.keys_raw: bytes | None = None  # its signed bytes
        self.secrets = SpecSecrets(ring.master)
        self.specs = ControlGuard(self.guard.key)  # spec refusals, counted once per version
        self._status_key: tuple[bytes, str] | None = None  # Ed25519 seed, public key

    # ---- the spec and status/cluster.json (docs/security.md#operator-signed-specs) -------

    def load_spec(
        self, store: Store, cache: SpecCache, revision: int, now: float
    ) -> tuple[ClusterSpec | None, SpecRefusal | None]:
        """The spec to plan with (signed by a listed operator, not older than `revision`,
        its secrets opened: spec_secrets), or the last good one and why, counted."""
        spec, refused = load_spec_or_last_good(store, cache, revision, self.ring.spec_trust())
        try:
            spec = self.secrets.prepare(spec)
        except SecretUnreadable as exc:
            log.error("spec.secret_unreadable %s", exc)
            spec, refused = None, SpecRefusal(str(exc), cache.etag, None, "secret_unreadable")
        return spec, self.count_spec(refused, now)

    def count_spec(self, refused: SpecRefusal | None, now: float) -> SpecRefusal | None:
        """`refused` with how many distinct refused versions were counted so far."""
        if refused is None:
            self.specs.resolved(SPEC_CURRENT)
            return None
        self.specs.refuse(SPEC_CURRENT, refused.reason, refused.detail, refused.etag, now)
        count = self.specs.refused[SPEC_CURRENT].count
        return SpecRefusal(
            refused.detail, refused.etag, refused.planning_with, refused.reason, count
        )

    def status_sections(
        self, refused: SpecRefusal | None, cache: SpecCache, revision: int
    ) -> dict[str, Any]:
        """The status document's trust sections: the refused spec, the refused control
        objects and who signed the revision planned with."""
        trust = self.ring.spec_trust()
        prov = cache.provenance if refused is None else None
        signature = SpecSignature(revision, enforced=trust.enforced)
        if prov is not None:
            signature = SpecSignature(
                revision, prov.applied_by, prov.message, prov.verified_by, trust.enforced
            )
        return {
            "spec_refused": codec.encode(refused) if refused is not None else None,
            "control_refused": codec.encode(self.guard.refused),
            "spec_signature": codec.encode(signature),
        }

    def sign_status(self, doc: dict[str, Any]) -> bytes:
        """status/cluster.json signed with the controller's Ed25519 key, whose public half
        control/keys.json lists (`bosun keys show` prints it to pin)."""
        from wire.pubkeys import controller_seed, public_of, sign_json

        if self._status_key is None:
            seed = controller_seed(self.ring.master)
            self._status_key = (seed, public_of(seed))
        seed, public = self._status_key
        sig = sign_json(seed, "bosun.status/1", STATUS_CLUSTER, doc)
        return dumps_pretty({**doc, "signature": {"key": public, "sig": sig}})

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
        got = store.get(MEMORY, max_bytes=MAX_CONTROL_BYTES)
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
        elif raw is not None and self.keys_raw is None:
            # refused, and no good copy to keep: planning with every machine at epoch 0
            # would undo every revocation the refused object may hold
            refusal = self.guard.refused.get(KEYS)
            reason = refusal.reason if refusal is not None else "unsigned"
            raise ControlRefused(
                f"{store.describe(KEYS)} exists but is refused ({reason}) and this controller "
                "holds no good copy of it: nothing is planned. If it was written by a bosun "
                "before signed control objects, check what it holds and sign it once with "
                "`bosun keys adopt --store URL --master-key FILE`; if the master key is wrong, "
                "use the right one; otherwise restore it from a noncurrent version",
                reason=reason,
            )
        else:
            self.keys_etag = etag  # refused: not re-read until it changes

    def export(self) -> dict[str, object]:
        """The marks and the keys in use, for the next short-lived process."""
        raw = self.keys_raw.decode() if self.keys_raw else None
        specs = self.specs.export_refusals()
        return {
            "marks": self.guard.export(),
            "keys": raw,
            "spec": specs,
            **self.guard.export_refusals(),
        }

    def restore(self, saved: dict[str, object]) -> None:
        """Resume from `export()`; a saved copy that does not verify is ignored."""
        marks, raw = saved.get("marks"), saved.get("keys")
        if isinstance(marks, dict):
            self.guard.restore(marks)
        self.guard.restore_refusals(saved)
        specs = saved.get("spec")
        if isinstance(specs, dict):
            self.specs.restore_refusals(specs)
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
