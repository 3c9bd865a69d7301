"""Public-key signatures and sealing, for what operators and the controller exchange.

    operator key      Ed25519 seed in a 0600 file (`bosun keygen --operator NAME`); its public
                      half is listed in control/keys.json `operators`; it signs spec revisions
    controller key    derived from the master key: an Ed25519 key that signs status/cluster.json
                      and attests control/keys.json, and an X25519 key that operators seal
                      secret config values to (`bosun spec apply`); both public halves are
                      listed in control/keys.json `controller` and printed by `bosun keys show`

Ed25519 and not HMAC for operators: the controller must verify a spec without being able to
write one, and one operator's key must not let anyone sign as another
(docs/security.md#operator-signed-specs). `cryptography` is imported inside the functions, so
only a process that signs, verifies or seals pays for it (never the agent's steady cycle).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path

from wire.errors import BadSignature, BosunError, InvalidDocument
from wire.records import record
from wire.signing import b64, read_key_file, unb64, write_key_file

SEALED_PREFIX = "sealed1:"  # a value sealed to the controller's X25519 key
_SEAL_INFO = b"bosun/sealed/1"


def _derive(master: bytes, label: str) -> bytes:
    return hmac.new(master, label.encode(), hashlib.sha256).digest()


def _public_key(text: str, what: str) -> bytes:
    try:
        raw = unb64(text)
    except BadSignature:
        raise BadSignature(f"{what}: not a base64url public key") from None
    if len(raw) != 32:
        raise BadSignature(f"{what}: a public key is 32 bytes, got {len(raw)}")
    return raw


PUBLIC_PREFIX = "ed25519:"  # how a public key is printed: base64url may start with "-"


def printable(public: str) -> str:
    """A public key as commands print and take it (`ed25519:<base64url>`)."""
    return PUBLIC_PREFIX + public


def check_public(text: str, what: str) -> str:
    """The base64url key of `text` (`ed25519:` prefix optional) if it is a well-formed
    Ed25519 public key, else InvalidDocument naming `what`."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    text = text.removeprefix(PUBLIC_PREFIX)
    try:
        Ed25519PublicKey.from_public_bytes(_public_key(text, what))
    except (BadSignature, ValueError) as exc:
        raise InvalidDocument(
            f"{what}: {exc} (expected the key `bosun keygen --operator` printed)"
        ) from None
    return text


# ---- Ed25519 --------------------------------------------------------------------------------


def generate_seed() -> bytes:
    return secrets.token_bytes(32)


def public_of(seed: bytes) -> str:
    """The base64url Ed25519 public key of a 32-byte seed."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    pub = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    return b64(pub.public_bytes(Encoding.Raw, PublicFormat.Raw))


def ed_sign(seed: bytes, message: bytes) -> str:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return b64(Ed25519PrivateKey.from_private_bytes(seed).sign(message))


def ed_verify(public: str, message: bytes, sig: object) -> None:
    """Raise BadSignature unless `sig` is `public`'s Ed25519 signature of `message`."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if not isinstance(sig, str):
        raise BadSignature("signature is missing or not a string")
    raw_sig = unb64(sig)
    key = Ed25519PublicKey.from_public_bytes(_public_key(public, "public key"))
    try:
        key.verify(raw_sig, message)
    except InvalidSignature:
        raise BadSignature("Ed25519 signature does not verify") from None


def fingerprint(public: str) -> str:
    """A short id of a public key for messages: the first 12 hex digits of its sha256."""
    return hashlib.sha256(public.encode()).hexdigest()[:12]


def write_operator_key(path: Path, *, force: bool = False) -> str:
    """Write a new operator signing key (0600) and return its public key."""
    seed = generate_seed()
    write_key_file(path, seed, overwrite=force)
    return public_of(seed)


def read_operator_key(path: Path) -> bytes:
    return read_key_file(path)


# ---- the controller's public identity ------------------------------------------------------


@record
class ControllerPublic:
    """The public halves of the controller's keys, as listed in control/keys.json."""

    sign: str  # Ed25519: status/cluster.json and the keys attestation
    seal: str  # X25519: secrets operators seal for the controller


def controller_seed(master: bytes) -> bytes:
    return _derive(master, "bosun/controller/ed25519")


def _seal_private(master: bytes) -> bytes:
    return _derive(master, "bosun/controller/x25519")


def controller_public(master: bytes) -> ControllerPublic:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    x = X25519PrivateKey.from_private_bytes(_seal_private(master)).public_key()
    return ControllerPublic(
        public_of(controller_seed(master)), b64(x.public_bytes(Encoding.Raw, PublicFormat.Raw))
    )


# ---- sealing a value for the controller (X25519 + HKDF-SHA256 + ChaCha20-Poly1305) ---------


def _seal_key(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(hashes.SHA256(), 32, salt=ephemeral + recipient, info=_SEAL_INFO).derive(shared)


def seal_for_controller(seal_public: str, plaintext: bytes, aad: bytes) -> str:
    """`plaintext` encrypted so that only the holder of the master key can read it."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    recipient = _public_key(seal_public, "controller seal key")
    eph = X25519PrivateKey.generate()
    eph_pub = eph.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    key = _seal_key(eph.exchange(X25519PublicKey.from_public_bytes(recipient)), eph_pub, recipient)
    nonce = secrets.token_bytes(12)
    return SEALED_PREFIX + b64(
        eph_pub + nonce + ChaCha20Poly1305(key).encrypt(nonce, plaintext, aad)
    )


def open_sealed(master: bytes, token: str, aad: bytes) -> bytes:
    """The plaintext of a `seal_for_controller` token; BosunError when it was not sealed for
    this master key's controller (or was changed)."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    if not token.startswith(SEALED_PREFIX):
        raise BosunError(f"not a sealed value (expected the {SEALED_PREFIX!r} prefix)")
    try:
        raw = unb64(token[len(SEALED_PREFIX) :])
    except BadSignature:
        raise BosunError("sealed value is not base64url") from None
    if len(raw) < 32 + 12 + 16:
        raise BosunError("sealed value is too short")
    eph_pub, nonce, box = raw[:32], raw[32:44], raw[44:]
    private = X25519PrivateKey.from_private_bytes(_seal_private(master))
    recipient = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    key = _seal_key(
        private.exchange(X25519PublicKey.from_public_bytes(eph_pub)), eph_pub, recipient
    )
    try:
        return ChaCha20Poly1305(key).decrypt(nonce, box, aad)
    except InvalidTag:
        raise BosunError(
            "sealed value does not open with this controller's key (sealed for another "
            "controller, or changed)"
        ) from None


# ---- JSON objects signed by the controller (status/cluster.json) --------------------------


def _json_message(fmt: str, object_key: str, value: object) -> bytes:
    from wire.signing import canonical

    return fmt.encode() + b"\n" + object_key.encode() + b"\n" + canonical(value)


def sign_json(seed: bytes, fmt: str, object_key: str, value: object) -> str:
    """Ed25519 signature binding format, object key and the canonical value."""
    return ed_sign(seed, _json_message(fmt, object_key, value))


def verify_json(public: str, fmt: str, object_key: str, value: object, sig: object) -> None:
    ed_verify(public, _json_message(fmt, object_key, value), sig)
