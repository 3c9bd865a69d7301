"""Machine key epochs, rotations, operators, and the controller's key ring.

The master key lives in a local file (0600, `bosun keygen`); a machine's key is derived
from it and its current *epoch* (`wire.signing.derive_machine_key`). Epochs are public and
live in the bucket at `control/keys.json`, a control object signed with the controller's
control key and versioned (wire.control, docs/security.md#signed-control-objects):

    value: {"format": "bosun.keys/2",
            "epochs":    {"web-1": 2, ...},               machines absent are at epoch 0
            "previous":  {"web-1": {"epoch": 1, "until": 1764030000.0}},   rotation grace
            "revoked":   {"web-3": 1764020000.0},         when a machine was last revoked
            "operators": {"alice": "<ed25519 public key, base64url>"},  who may sign specs
            "cluster":   "<random id>",     bound into every operator signature
            "controller": {"sign": "<ed25519>", "seal": "<x25519>"},   the controller's
                                            public keys (wire.pubkeys), derived from the master
            "attestation": "<ed25519 signature by controller.sign of version + the rest>"}

`bosun revoke` bumps a machine's epoch and drops any grace: the old key stops verifying at
once. `bosun rotate` bumps it too but keeps the old epoch valid until `until`, so the agent
switches to its new key without a gap (docs/security.md#key-rotation). Every change is a
conditional read-modify-write signed with the master key at the version read plus one
(never below the version the controller's memory records for it). The attestation lets a
reading tool that pins the controller's public key (`BOSUN_CONTROLLER_KEY`, printed by
`bosun keys show`) trust the operator list without the master key.
"""

from __future__ import annotations

import logging
import random
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from controller.spec.signature import SpecTrust
from wire import codec
from wire.control import MAX_CONTROL_BYTES, Sealed, open_control, seal_control
from wire.errors import BadSignature, BosunError, InvalidDocument, WriteConflict
from wire.layout import INTAKE, KEYS, MEMORY, machine_id
from wire.signing import (
    canonical,
    derive_control_key,
    derive_machine_key,
    format_kid,
    generate_master_key,
    parse_kid,
    read_key_file,
    write_key_file,
)
from wire.store import Missing, Store, StoredObject

log = logging.getLogger(__name__)

KEYS_FORMAT = "bosun.keys/2"
OPERATOR_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_BUMP_ATTEMPTS = 20
DEFAULT_GRACE = 24 * 3600.0


def keygen(path: Path, *, force: bool = False) -> None:
    """Write a fresh master key to `path` (0600); refuse to overwrite unless `force`."""
    write_key_file(path, generate_master_key(), overwrite=force)


def load_master_key(path: Path) -> bytes:
    """Read the master key file, refusing one that group or others can read."""
    return read_key_file(path)


@dataclass(frozen=True, slots=True)
class Previous:
    """A rotated machine's old epoch, still accepted until `until` (Unix seconds)."""

    epoch: int
    until: float


@dataclass(frozen=True, slots=True)
class ControllerKeys:
    """The controller's public keys (wire.pubkeys.ControllerPublic) as listed."""

    sign: str
    seal: str


@dataclass(frozen=True, slots=True)
class KeysDoc:
    format: str = KEYS_FORMAT
    epochs: dict[str, int] = field(default_factory=dict)
    previous: dict[str, Previous] = field(default_factory=dict)
    revoked: dict[str, float] = field(default_factory=dict)
    operators: dict[str, str] = field(default_factory=dict)
    cluster: str = field(default="", metadata=codec.OMIT_EMPTY)
    controller: ControllerKeys | None = field(default=None, metadata=codec.OMIT_EMPTY)
    attestation: str = field(default="", metadata=codec.OMIT_EMPTY)

    @classmethod
    def decode(cls, value: object, where: str = KEYS) -> KeysDoc:
        doc: KeysDoc = codec.decode(cls, value, where, max_items=codec.MAX_FLEET_ITEMS)
        if doc.format != KEYS_FORMAT:
            raise InvalidDocument(f"{where}.format: expected {KEYS_FORMAT!r}, got {doc.format!r}")
        for name, epoch in doc.epochs.items():
            try:
                machine_id(name)
            except ValueError as exc:
                raise InvalidDocument(f"{where}.epochs: {exc}") from None
            if not 0 <= epoch < 10**9:
                raise InvalidDocument(f"{where}.epochs.{name}: expected an integer 0..999999999")
        return doc


def parse_epochs(raw: bytes, *, where: str = KEYS, key: bytes | None = None) -> dict[str, int]:
    """The epochs of a signed `control/keys.json` (verified when `key` is given)."""
    return KeysDoc.decode(open_control(raw, KEYS, key).value, where).epochs


def read_keys(store: Store, master: bytes | None) -> tuple[KeysDoc, Sealed | None, str | None]:
    """control/keys.json verified with `master`'s control key (None: parse only): the
    document, its sealed form (None when missing) and its ETag."""
    got = store.get(KEYS)
    if isinstance(got, Missing):
        return KeysDoc(), None, None
    if not isinstance(got, StoredObject):  # pragma: no cover - unconditional GET
        raise InvalidDocument(f"{store.describe(KEYS)}: unexpected not-modified answer")
    key = derive_control_key(master) if master is not None else None
    sealed = open_control(got.body, KEYS, key)
    return KeysDoc.decode(sealed.value, store.describe(KEYS)), sealed, got.etag


def load_epochs(store: Store, master: bytes | None = None) -> dict[str, int]:
    """machine -> current epoch (machines not listed are at epoch 0)."""
    return read_keys(store, master)[0].epochs


def recorded_version(store: Store, control: bytes, object_key: str) -> int:
    """The version of `object_key` that the controller's memory and intake record as seen
    (0 when neither does): a writer never goes below it."""
    floor = 0
    for holder in (MEMORY, INTAKE):
        got = store.get(holder, max_bytes=MAX_CONTROL_BYTES)
        if isinstance(got, StoredObject):
            try:
                floor = max(floor, open_control(got.body, holder, control).marks.get(object_key, 0))
            except BosunError:
                continue
    return floor


def update_keys(store: Store, master: bytes, change: Callable[[KeysDoc], KeysDoc]) -> KeysDoc:
    """Read-modify-write control/keys.json, signed, conditional, at a higher version.

    A conflicting concurrent change is resolved by re-reading (a fresh read-modify-write,
    at most a few times), never by overwriting. An existing object that does not verify is
    refused: restore it from a noncurrent version (docs/security.md#signed-control-objects).
    """
    control = derive_control_key(master)
    last: WriteConflict | None = None
    for _ in range(_BUMP_ATTEMPTS):
        doc, sealed, etag = read_keys(store, master)
        floor = recorded_version(store, control, KEYS)
        if sealed is None and floor:
            raise BadSignature(
                f"{store.describe(KEYS)} is missing but the controller recorded version "
                f"{floor} of it: restore it from a noncurrent version, do not re-create it"
            )
        version = max(sealed.version if sealed else 0, floor) + 1
        new = attest(change(doc), master, version)
        body = seal_control(control, KEYS, codec.encode(new), version=version, marks={})
        try:
            if etag is None:
                store.put(KEYS, body, if_none_match="*")
            else:
                store.put(KEYS, body, if_match=etag)
        except WriteConflict as exc:
            last = exc
            time.sleep(random.uniform(0, 0.05))  # another change won: re-read after a jitter
            continue
        return new
    raise WriteConflict(f"{store.describe(KEYS)} kept changing: {last}; run it again")


def attestation_message(doc: KeysDoc, version: int) -> bytes:
    value = codec.encode(replace(doc, attestation=""))
    return b"bosun.keys-attest/1\n" + str(version).encode() + b"\n" + canonical(value)


def attest(doc: KeysDoc, master: bytes, version: int) -> KeysDoc:
    """`doc` with a cluster id (kept once made), the controller's public keys and their
    Ed25519 attestation at `version`."""
    from wire.pubkeys import controller_public, controller_seed, ed_sign

    pub = controller_public(master)
    doc = replace(
        doc,
        cluster=doc.cluster or secrets.token_hex(8),
        controller=ControllerKeys(pub.sign, pub.seal),
        attestation="",
    )
    return replace(
        doc, attestation=ed_sign(controller_seed(master), attestation_message(doc, version))
    )


def set_operator(store: Store, master: bytes, name: str, public: str | None) -> KeysDoc:
    """Add (or replace) operator NAME's public key; `public` None removes it."""
    if not OPERATOR_NAME.fullmatch(name):
        raise InvalidDocument(
            f"operator name {name!r}: use 1-64 of a-z, 0-9, '.', '_', '-' (a login name)"
        )
    if public is not None:
        from wire.pubkeys import check_public

        public = check_public(public, f"operator {name}")  # refused here, not later

    def change(doc: KeysDoc) -> KeysDoc:
        operators = dict(doc.operators)
        if public is None:
            if name not in operators:
                raise InvalidDocument(
                    f"no operator {name!r} in {KEYS} (listed: {', '.join(sorted(operators)) or 'none'})"
                )
            operators.pop(name)
        else:
            operators[name] = public
        return replace(doc, operators=dict(sorted(operators.items())))

    return update_keys(store, master, change)


def bump_epoch(
    store: Store, master: bytes, machine: str, *, grace: float = 0.0, now: float | None = None
) -> int:
    """Raise `machine`'s epoch by one; return the new epoch. `grace` 0 revokes (the old
    key stops at once); above 0 rotates (the old key stays valid `grace` seconds)."""
    machine_id(machine)
    at = time.time() if now is None else now

    def change(doc: KeysDoc) -> KeysDoc:
        old = doc.epochs.get(machine, 0)
        previous = {m: p for m, p in doc.previous.items() if m != machine and p.until > at}
        revoked = dict(doc.revoked)
        if grace > 0:
            previous[machine] = Previous(old, at + grace)
        else:
            revoked[machine] = at
        return replace(
            doc, epochs={**doc.epochs, machine: old + 1}, previous=previous, revoked=revoked
        )

    new = update_keys(store, master, change).epochs[machine]
    what = "rotated" if grace > 0 else "revoked"
    log.info(f"keys.{what}", extra={"ctx": {"machine": machine, "epoch": new}})
    return new


@dataclass(slots=True)
class KeyRing:
    """Derived machine keys at their current epochs (and, during a rotation's grace, the
    previous one); the controller's `KeyLookup`."""

    master: bytes
    epochs: dict[str, int]
    previous: dict[str, Previous] = field(default_factory=dict)
    revoked: dict[str, float] = field(default_factory=dict)
    wall: Callable[[], float] = time.time
    reported: dict[str, int] = field(default_factory=dict)  # epoch of the last accepted report
    doc: KeysDoc = field(default_factory=KeysDoc)  # the verified control/keys.json in use
    _cache: dict[tuple[str, int], bytes] = field(default_factory=dict, repr=False)

    def use(self, doc: KeysDoc) -> None:
        self.epochs, self.previous, self.revoked = doc.epochs, doc.previous, doc.revoked
        self.doc = doc

    def spec_trust(self) -> SpecTrust:
        """The operator keys and cluster id specs are checked against."""
        return SpecTrust(tuple(sorted(self.doc.operators.items())), self.doc.cluster)

    def epoch(self, machine: str) -> int:
        return self.epochs.get(machine, 0)

    def key(self, machine: str, epoch: int) -> bytes:
        cached = self._cache.get((machine, epoch))
        if cached is None:
            cached = derive_machine_key(self.master, machine, epoch)
            self._cache[(machine, epoch)] = cached
        return cached

    def in_grace(self, machine: str, epoch: int) -> bool:
        prev = self.previous.get(machine)
        return prev is not None and prev.epoch == epoch and self.wall() < prev.until

    def signing_epoch(self, machine: str) -> int:
        """The current epoch, or during a rotation's grace the old one while the machine
        still reports with it (it cannot verify the new key before it holds it)."""
        seen = self.reported.get(machine)
        if seen is not None and self.in_grace(machine, seen):
            return seen
        return self.epoch(machine)

    def signing_key(self, machine: str) -> tuple[bytes, str]:
        """The key and kid to sign `machine`'s desired document with."""
        epoch = self.signing_epoch(machine)
        return self.key(machine, epoch), format_kid(machine, epoch)

    def why_refused(self, kid: str) -> str | None:
        """None if `kid` names a current key (or one in its rotation grace), else why not."""
        try:
            machine, epoch = parse_kid(kid)
        except BadSignature as exc:
            return str(exc)
        current = self.epoch(machine)
        if epoch != current and not self.in_grace(machine, epoch):
            return f"kid {kid!r} is at epoch {epoch}, the machine's current epoch is {current}"
        return None

    def lookup(self, kid: str) -> bytes | None:
        """Key for `kid`, or None when it is malformed or not at an accepted epoch."""
        if self.why_refused(kid) is not None:
            return None
        machine, epoch = parse_kid(kid)
        return self.key(machine, epoch)
