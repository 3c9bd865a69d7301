"""Machine key epochs and the controller's key ring.

The master key lives in a local file (0600, `bosun keygen`); a machine's key is derived
from it and its current *epoch* (`wire.signing.derive_machine_key`). Epochs are public
and live in the bucket at `control/keys.json`:

    {"format": "bosun.keys/1", "epochs": {"web-1": 2, ...}}

A machine absent from the map is at epoch 0. `bosun revoke` bumps a machine's epoch with a
conditional write, so the old key stops verifying at once: the key ring refuses every kid
whose epoch is not the machine's current one, without trying any other key.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from wire.documents import dumps_pretty, loads_object
from wire.errors import BadSignature, InvalidDocument, WriteConflict
from wire.layout import KEYS, machine_id
from wire.signing import (
    derive_machine_key,
    format_kid,
    generate_master_key,
    parse_kid,
    read_key_file,
    write_key_file,
)
from wire.store import Missing, Store, StoredObject

log = logging.getLogger(__name__)

KEYS_FORMAT = "bosun.keys/1"
_BUMP_ATTEMPTS = 20


def keygen(path: Path, *, force: bool = False) -> None:
    """Write a fresh master key to `path` (0600); refuse to overwrite unless `force`."""
    write_key_file(path, generate_master_key(), overwrite=force)


def load_master_key(path: Path) -> bytes:
    """Read the master key file, refusing one that group or others can read."""
    return read_key_file(path)


def parse_epochs(raw: bytes, *, where: str = KEYS) -> dict[str, int]:
    """Strictly decode `control/keys.json`."""
    value = loads_object(raw, where=where)
    if value.get("format") != KEYS_FORMAT or set(value) != {"format", "epochs"}:
        raise InvalidDocument(
            f"{where}: expected {{'format': {KEYS_FORMAT!r}, 'epochs': {{...}}}}; "
            "restore it from a noncurrent version or re-create it with bosun revoke"
        )
    epochs = value["epochs"]
    if not isinstance(epochs, dict):
        raise InvalidDocument(f"{where}.epochs: expected an object of machine -> epoch")
    out: dict[str, int] = {}
    for name, epoch in epochs.items():
        try:
            machine_id(name)
        except ValueError as exc:
            raise InvalidDocument(f"{where}.epochs: {exc}") from None
        if not isinstance(epoch, int) or isinstance(epoch, bool) or not 0 <= epoch < 10**9:
            raise InvalidDocument(f"{where}.epochs.{name}: expected an integer 0..999999999")
        out[name] = epoch
    return out


def encode_epochs(epochs: Mapping[str, int]) -> bytes:
    return dumps_pretty({"format": KEYS_FORMAT, "epochs": dict(sorted(epochs.items()))})


def read_epochs(store: Store) -> tuple[dict[str, int], str | None]:
    """The epoch map and the ETag it was read at (None when the object does not exist)."""
    got = store.get(KEYS)
    if isinstance(got, Missing):
        return {}, None
    if not isinstance(got, StoredObject):  # pragma: no cover - unconditional GET
        raise InvalidDocument(f"{store.describe(KEYS)}: unexpected not-modified answer")
    return parse_epochs(got.body, where=store.describe(KEYS)), got.etag


def load_epochs(store: Store) -> dict[str, int]:
    """machine -> current epoch (machines not listed are at epoch 0)."""
    return read_epochs(store)[0]


def bump_epoch(store: Store, machine: str) -> int:
    """Raise `machine`'s epoch by one with a conditional write; return the new epoch.

    A conflicting concurrent change is resolved by re-reading (a fresh read-modify-write,
    at most a few times), never by overwriting.
    """
    machine_id(machine)
    last: WriteConflict | None = None
    for _ in range(_BUMP_ATTEMPTS):
        epochs, etag = read_epochs(store)
        new = epochs.get(machine, 0) + 1
        epochs[machine] = new
        try:
            if etag is None:
                store.put(KEYS, encode_epochs(epochs), if_none_match="*")
            else:
                store.put(KEYS, encode_epochs(epochs), if_match=etag)
        except WriteConflict as exc:
            last = exc
            time.sleep(random.uniform(0, 0.05))  # another revoke won: re-read after a jitter
            continue
        log.info("keys.epoch_bumped", extra={"ctx": {"machine": machine, "epoch": new}})
        return new
    raise WriteConflict(
        f"{store.describe(KEYS)} kept changing while revoking {machine}: {last}; run it again"
    )


@dataclass(slots=True)
class KeyRing:
    """Derived machine keys at their current epochs; the controller's `KeyLookup`."""

    master: bytes
    epochs: Mapping[str, int]
    _cache: dict[tuple[str, int], bytes] = field(default_factory=dict, repr=False)

    def epoch(self, machine: str) -> int:
        return self.epochs.get(machine, 0)

    def key(self, machine: str, epoch: int) -> bytes:
        cached = self._cache.get((machine, epoch))
        if cached is None:
            cached = derive_machine_key(self.master, machine, epoch)
            self._cache[(machine, epoch)] = cached
        return cached

    def signing_key(self, machine: str) -> tuple[bytes, str]:
        """The key and kid to sign `machine`'s desired document with."""
        epoch = self.epoch(machine)
        return self.key(machine, epoch), format_kid(machine, epoch)

    def why_refused(self, kid: str) -> str | None:
        """None if `kid` names a current key, else the reason it is refused."""
        try:
            machine, epoch = parse_kid(kid)
        except BadSignature as exc:
            return str(exc)
        current = self.epoch(machine)
        if epoch != current:
            return f"kid {kid!r} is at epoch {epoch}, the machine's current epoch is {current}"
        return None

    def lookup(self, kid: str) -> bytes | None:
        """Key for `kid`, or None when it is malformed or not at the current epoch."""
        if self.why_refused(kid) is not None:
            return None
        machine, epoch = parse_kid(kid)
        return self.key(machine, epoch)
