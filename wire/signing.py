"""Canonical JSON, key derivation and HMAC-SHA256 signatures.

    signature = HMAC-SHA256(key, format + "\\n" + object_key + "\\n" + canonical(body))
    machine key = HMAC-SHA256(master, "bosun/machine/" + machine + "/" + epoch)
    kid = "<machine>@<epoch>"

canonical() is orjson with sorted keys; orjson's output is a fixed point of
parse-then-serialize, so verifying the canonical form of the decoded body verifies exactly
the value that is then used.
"""

from __future__ import annotations

import base64
import binascii
import stat
from pathlib import Path
from typing import Any

import orjson

from wire.atomic import write_atomic
from wire.errors import BadSignature, BosunError, InvalidDocument
from wire.layout import MachineId, machine_id

# hashlib and hmac (OpenSSL's libcrypto, ~2 ms to load) are imported by the functions that
# hash and sign: a steady agent cycle uses this module's canonical JSON and key ids but
# neither (its own checks hash with agent.sha)

KEY_BYTES = 32


def canonical(body: Any) -> bytes:
    """Canonical bytes of a JSON value: orjson, sorted keys, no whitespace."""
    try:
        return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    except TypeError as exc:
        # e.g. nested deeper than orjson serialises: the document is malformed, not forged
        raise InvalidDocument(f"value cannot be canonicalised: {exc}") from exc


def digest(body: Any) -> str:
    """sha256 of the canonical body, hex: identifies a document's content."""
    import hashlib

    return hashlib.sha256(canonical(body)).hexdigest()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(text: str) -> bytes:
    if not isinstance(text, str) or not text:
        raise BadSignature("signature is empty or not a string")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise BadSignature(f"signature is not base64url: {exc}") from exc
    if b64(raw) != text:  # e.g. different unused trailing bits: one signature, one spelling
        raise BadSignature("signature is not canonical base64url")
    return raw


def generate_master_key() -> bytes:
    import secrets

    return secrets.token_bytes(KEY_BYTES)


def derive_machine_key(master: bytes, machine: str, epoch: int) -> bytes:
    """The key a machine holds: HMAC-SHA256(master, 'bosun/machine/<machine>/<epoch>')."""
    import hashlib
    import hmac

    if epoch < 0:
        raise ValueError(f"epoch must be >= 0, got {epoch}")
    label = f"bosun/machine/{machine_id(machine)}/{epoch}".encode()
    return hmac.new(master, label, hashlib.sha256).digest()


def format_kid(machine: str, epoch: int) -> str:
    return f"{machine_id(machine)}@{epoch}"


def parse_kid(kid: object) -> tuple[MachineId, int]:
    """Split '<machine>@<epoch>'; BadSignature if malformed."""
    if not isinstance(kid, str) or kid.count("@") != 1:
        raise BadSignature(f"malformed kid {kid!r}: expected '<machine>@<epoch>'")
    name, _, epoch_text = kid.partition("@")
    if not epoch_text.isdigit() or len(epoch_text) > 9:
        raise BadSignature(f"malformed kid {kid!r}: epoch must be a non-negative integer")
    try:
        return machine_id(name), int(epoch_text)
    except BosunError as exc:
        raise BadSignature(f"malformed kid {kid!r}: {exc}") from exc


def sign(key: bytes, fmt: str, object_key: str, body: Any) -> str:
    """Signature binding format, object key and body."""
    return sign_canonical(key, fmt, object_key, canonical(body))


def _mac_of_canonical(key: bytes, fmt: str, object_key: str, body: bytes | memoryview) -> bytes:
    import hashlib
    import hmac

    mac = hmac.new(key, fmt.encode() + b"\n" + object_key.encode() + b"\n", hashlib.sha256)
    mac.update(body)
    return mac.digest()


def sign_canonical(key: bytes, fmt: str, object_key: str, body: bytes) -> str:
    """`sign` of a body given as its canonical bytes (`canonical(body)`, already made)."""
    return b64(_mac_of_canonical(key, fmt, object_key, body))


def verify_canonical(
    key: bytes, fmt: str, object_key: str, body: bytes | memoryview, sig: str
) -> None:
    """Raise BadSignature unless `sig` signs these bytes as the canonical body: what verifies
    is exactly these bytes, before anything parses them."""
    import hmac

    expected = _mac_of_canonical(key, fmt, object_key, body)
    if not hmac.compare_digest(expected, unb64(sig)):
        raise BadSignature(f"signature does not verify for {object_key} ({fmt})")


def verify(key: bytes, fmt: str, object_key: str, body: Any, sig: object) -> None:
    """Raise BadSignature unless `sig` is the signature of (fmt, object_key, body)."""
    if not isinstance(sig, str):
        raise BadSignature("signature is missing or not a string")
    verify_canonical(key, fmt, object_key, canonical(body), sig)


# ---- key files ---------------------------------------------------------------------------


def encode_key(key: bytes) -> str:
    return b64(key)


def decode_key(text: str, *, source: str = "key") -> bytes:
    text = text.strip()
    try:
        key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise BosunError(f"{source}: not a base64url key ({exc.__class__.__name__})") from None
    if len(key) != KEY_BYTES:
        raise BosunError(f"{source}: key must be {KEY_BYTES} bytes, got {len(key)}")
    return key


def write_key_file(path: Path, key: bytes, *, overwrite: bool = False) -> None:
    """Write a key file readable by its owner only (0600), atomically."""
    if path.exists() and not overwrite:
        raise BosunError(f"{path} already exists; remove it or pass --force to overwrite")
    write_atomic(path, (encode_key(key) + "\n").encode(), 0o600)


def read_key_file(path: Path, *, check_mode: bool = True) -> bytes:
    """Read a key file; refuse one that group or others can read."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise BosunError(
            f"key file {path} does not exist; check the path (`bosun keygen -o FILE` writes a "
            "master or operator key, `bosun enroll` a machine key)"
        ) from None
    if check_mode and st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise BosunError(
            f"key file {path} is accessible by group or others "
            f"(mode {stat.S_IMODE(st.st_mode):o}); fix with: chmod 600 {path}"
        )
    return decode_key(path.read_text(), source=str(path))


def derive_control_key(master: bytes) -> bytes:
    """The key the controller signs its own control objects with (wire.control):
    HMAC-SHA256(master, 'bosun/control'); no machine label can collide with it."""
    import hashlib
    import hmac

    return hmac.new(master, b"bosun/control", hashlib.sha256).digest()
