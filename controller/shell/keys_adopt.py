"""`bosun keys adopt`: sign, once, a control/keys.json written before signed control objects.

A bosun from before signed control objects wrote `{"format": "bosun.keys/1", "epochs":
{...}}` unsigned. A controller refuses it, and one that holds no good copy stops rather than
plan with every machine at epoch 0 (which would undo the revocations the file records). The
operator checks what the file holds (`read_unsigned` prints it) and adopts it: the same
epochs, re-written as a signed `bosun.keys/2` control object, conditional on the ETag read,
so a file changed in between is not signed (docs/security.md#signed-control-objects).
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from controller.shell.key_epochs import KeysDoc, attest, recorded_version
from wire import codec
from wire.control import MAX_CONTROL_BYTES, open_control, seal_control
from wire.errors import BosunError, InvalidDocument
from wire.layout import KEYS, machine_id
from wire.signing import derive_control_key
from wire.store import Store, StoredObject

OLD_FORMAT = "bosun.keys/1"


@dataclass(frozen=True, slots=True)
class Unsigned:
    doc: KeysDoc
    etag: str
    already_signed: bool  # it verifies with this master key: nothing to adopt


def read_unsigned(store: Store, master: bytes) -> Unsigned:
    """control/keys.json as it is, parsed; InvalidDocument when it is neither the old
    unsigned format nor a control object this master key signed."""
    got = store.get(KEYS, max_bytes=MAX_CONTROL_BYTES)
    if not isinstance(got, StoredObject):
        raise InvalidDocument(f"{store.describe(KEYS)} does not exist: nothing to adopt")
    try:
        sealed = open_control(got.body, KEYS, derive_control_key(master))
        return Unsigned(KeysDoc.decode(sealed.value), got.etag, True)
    except BosunError:
        pass
    try:
        value = orjson.loads(got.body)
    except orjson.JSONDecodeError as exc:
        raise InvalidDocument(f"{store.describe(KEYS)}: not valid JSON ({exc})") from None
    if not isinstance(value, dict) or value.get("format") != OLD_FORMAT:
        raise InvalidDocument(
            f"{store.describe(KEYS)} is neither an unsigned {OLD_FORMAT} file nor signed by "
            "this master key: not adopted (if the master key is right, restore the object "
            "from a noncurrent version)"
        )
    epochs = value.get("epochs")
    if set(value) != {"format", "epochs"} or not isinstance(epochs, dict):
        raise InvalidDocument(f"{store.describe(KEYS)}: expected format and epochs only")
    for name, epoch in epochs.items():
        machine_id(name)
        if not isinstance(epoch, int) or isinstance(epoch, bool) or not 0 <= epoch < 10**9:
            raise InvalidDocument(f"{store.describe(KEYS)}.epochs.{name}: expected 0..999999999")
    return Unsigned(KeysDoc(epochs=dict(sorted(epochs.items()))), got.etag, False)


def adopt(store: Store, master: bytes, seen: Unsigned) -> int:
    """Write `seen`'s epochs signed, If-Match its ETag; the version written."""
    control = derive_control_key(master)
    version = recorded_version(store, control, KEYS) + 1
    doc = attest(seen.doc, master, version)
    body = seal_control(control, KEYS, codec.encode(doc), version=version, marks={})
    store.put(KEYS, body, if_match=seen.etag)
    return version
