"""Python's own hash functions, for the few small digests a cron agent takes.

`hashlib` loads OpenSSL's libcrypto, about 2 ms of every cron cycle. CPython carries its own
SHA-256 (`_sha2`, `_sha256` before Python 3.12) and MD5 (`_md5`), which give the same
digests: the agent's checks (agent.sha) and the directory store's ETags use them while
nothing else has loaded `hashlib`.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any


def builtin(name: str, *modules: str) -> Callable[[bytes], Any]:
    """The constructor `name` (`sha256`, `md5`) of the first of `modules` that has it; a
    Python built without them gets `hashlib`'s (OpenSSL's) after all."""
    for module in modules:
        try:
            make: Callable[[bytes], Any] = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
        return make
    import hashlib

    return functools.partial(getattr(hashlib, name), usedforsecurity=False)
