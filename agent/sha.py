"""SHA-256 for the agent's own checks, without loading OpenSSL.

`hashlib` loads OpenSSL's libcrypto, about 2 ms of every cron cycle; a steady cycle hashes
a few small texts (its config, its snapshot's fingerprint, the documents it keeps), for
which Python's built-in SHA-256 (`_sha2`, `_sha256` before Python 3.12) does as well.
The digests are the same as `hashlib.sha256`'s and `wire.signing.digest`'s. `wire.signing`
keeps OpenSSL's for what the controller hashes by the hundred thousand, and signs with it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wire.builtin_hashes import builtin
from wire.signing import canonical

_SHA256: Callable[[bytes], Any] = builtin("sha256", "_sha2", "_sha256")


def sha256_hex(data: bytes) -> str:
    """The SHA-256 of `data`, hex."""
    return str(_SHA256(data).hexdigest())


def digest(body: Any) -> str:
    """`wire.signing.digest`: the SHA-256 of the canonical body, hex."""
    return sha256_hex(canonical(body))
