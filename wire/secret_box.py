"""Secret config values between controller and agent (docs/security.md#secrets).

A config value that is a secret is a one-key mapping `{"$secret": TOKEN}` wherever it sits
in a service's config. TOKEN says which form it is in:

    sealed1:...   in spec/current.json: sealed by `bosun spec apply` to the controller's
                  X25519 key (wire.pubkeys); only the controller opens it
    ref:<hex>     what the planner sees: a keyed digest of the value (HMAC with the control
                  key), so plans, memory and `--dry-run` never hold it and an unchanged
                  value is an unchanged config
    m1:...        in desired/<m>.json: ChaCha20-Poly1305 with a key derived by HKDF-SHA256
                  from machine m's key; the associated data binds machine, object key,
                  generation and the value's path, so a copy into another machine's document,
                  another generation or another place in the config does not open

The nonce of `m1:` is derived from the key, the associated data and the value (deterministic
encryption): re-signing the same generation gives the same bytes, so an agent never sees two
digests for one generation. Walking a config needs nothing but the standard library;
`cryptography` is imported only to encrypt or decrypt.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wire.errors import BadSignature, BosunError
from wire.signing import b64, unb64

MARK = "$secret"
MACHINE_PREFIX = "m1:"
REF_PREFIX = "ref:"


class SecretRefused(BosunError):
    """A secret value that does not decrypt for this machine, object and generation."""


def is_secret(value: object) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(MARK), str)


def find_secrets(value: Any, path: str = "") -> list[tuple[str, str]]:
    """(dotted path, token) of every secret in `value`; [] for most configs, cheaply."""
    out: list[tuple[str, str]] = []
    if is_secret(value):
        out.append((path, value[MARK]))
    elif isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, (dict, list)):
                out += find_secrets(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            if isinstance(v, (dict, list)):
                out += find_secrets(v, f"{path}[{i}]")
    return out


def has_secrets(value: Any) -> bool:
    return bool(find_secrets(value))


def map_secrets(value: Any, fn: Callable[[str, str], Any], path: str = "") -> Any:
    """`value` with each secret replaced by `fn(path, token)`."""
    if is_secret(value):
        return fn(path, value[MARK])
    if isinstance(value, dict):
        return {k: map_secrets(v, fn, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [map_secrets(v, fn, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def reference(control_key: bytes, plaintext: bytes) -> str:
    """The planner's stand-in for a secret: a keyed digest, equal for equal values."""
    import hmac  # here, not at import: an agent's steady cycle loads no OpenSSL

    return (
        REF_PREFIX
        + hmac.new(control_key, b"bosun/secret-ref\n" + plaintext, "sha256").hexdigest()[:32]
    )


def _aad(machine: str, object_key: str, generation: int, path: str) -> bytes:
    return f"bosun/secret/1\n{machine}\n{object_key}\n{generation}\n{path}".encode()


def _machine_secret_key(machine_key: bytes, machine: str) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(hashes.SHA256(), 32, salt=None, info=f"bosun/secret/{machine}".encode()).derive(
        machine_key
    )


def encrypt_for_machine(
    machine_key: bytes, machine: str, object_key: str, generation: int, path: str, plaintext: bytes
) -> str:
    import hashlib
    import hmac

    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    key = _machine_secret_key(machine_key, machine)
    aad = _aad(machine, object_key, generation, path)
    nonce = hmac.new(key, b"nonce\n" + aad + b"\n" + plaintext, hashlib.sha256).digest()[:12]
    return MACHINE_PREFIX + b64(nonce + ChaCha20Poly1305(key).encrypt(nonce, plaintext, aad))


def decrypt_for_machine(
    machine_key: bytes, machine: str, object_key: str, generation: int, path: str, token: str
) -> bytes:
    """The plaintext, or SecretRefused naming the path (never the value)."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    where = f"{object_key} config {path}"
    if not token.startswith(MACHINE_PREFIX):
        raise SecretRefused(f"{where}: a secret not encrypted for a machine ({token[:8]!r}...)")
    try:
        raw = unb64(token[len(MACHINE_PREFIX) :])
    except BadSignature:
        raise SecretRefused(f"{where}: secret is not base64url") from None
    if len(raw) < 12 + 16:
        raise SecretRefused(f"{where}: secret is too short")
    key = _machine_secret_key(machine_key, machine)
    try:
        return ChaCha20Poly1305(key).decrypt(
            raw[:12], raw[12:], _aad(machine, object_key, generation, path)
        )
    except InvalidTag:
        raise SecretRefused(
            f"{where}: secret does not decrypt for {machine} at generation {generation} "
            "(copied from another machine, document or place in the config)"
        ) from None
