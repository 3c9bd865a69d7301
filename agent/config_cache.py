"""The parsed agent config, kept as JSON in the state dir, so a cron cycle skips YAML.

A cron agent reads the same `agent.yaml` every run; importing a YAML parser and parsing
costs more CPU than the rest of a no-op cycle. `settings(path, text, ...)` returns the
top-level mapping of the config text: from `<state_dir>/config.cache.json` when that file
records exactly this text (its path and SHA-256), else from `parse()`, then written there.
Everything after (environment overrides, strict decoding, validation) runs every time.

Where the cache is looked for: `BOSUN_STATE_DIR`, else a plain top-level `state_dir:` line of
the text, else the default state dir. It is written only where the parsed config puts the
state dir (an existing directory; the agent creates it on its first cycle), so a guess that
misses costs a parse, never a wrong answer.

Trust (docs/security.md#config-cache): the file is used only when it is owned by this
process's user and readable by nobody else, so it gives nobody a way to change the config
that they did not already have (the agent's own user can edit its state dir anyway); only
plain JSON values are cached (a YAML date or a non-string key parses every time).
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson

from agent.sha import sha256_hex
from wire.atomic import write_atomic

CACHE_FILE = "config.cache.json"
FORMAT = "bosun-agent-config-cache/1"
_STATE_DIR_LINE = re.compile(r"^state_dir:[ \t]*(['\"]?)([^'\"#\r\n]+?)\1[ \t]*(?:#.*)?$", re.M)


def settings(
    path: Path,
    text: str,
    env: Mapping[str, str],
    default_state_dir: str,
    parse: Callable[[], Any],
) -> Any:
    """The parsed top level of `text` (the config file at `path`), cached by its digest."""
    where = _state_dir_hint(text, env, default_state_dir)
    key = {"format": FORMAT, "path": str(path.absolute()), "sha256": _digest(text)}
    cache = Path(where) / CACHE_FILE
    found = _read(cache, key)
    if found is not None:
        return found
    value = parse()
    parsed_dir = env.get("BOSUN_STATE_DIR") or (
        value.get("state_dir", default_state_dir) if isinstance(value, dict) else None
    )
    if parsed_dir == where and _plain(value) and Path(where).is_dir():
        with contextlib.suppress(OSError):  # a read-only state dir: parse every time
            write_atomic(cache, orjson.dumps({**key, "settings": value}))
    return value


def _digest(text: str) -> str:
    return sha256_hex(text.encode("utf-8", "surrogatepass"))


def _state_dir_hint(text: str, env: Mapping[str, str], default: str) -> str:
    if env.get("BOSUN_STATE_DIR"):
        return env["BOSUN_STATE_DIR"]
    lines = _STATE_DIR_LINE.findall(text)
    return lines[-1][1] if lines else default


def _read(cache: Path, key: Mapping[str, str]) -> Any:
    try:
        fd = os.open(cache, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if (
            not stat.S_ISREG(info.st_mode)
            or info.st_uid != os.geteuid()
            or info.st_mode & 0o077
            or info.st_size > 1 << 20
        ):
            return None
        raw = os.read(fd, info.st_size + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict) or any(doc.get(k) != v for k, v in key.items()):
        return None
    return doc.get("settings")


def _plain(value: Any) -> bool:
    """Only JSON's own values (what orjson gives back unchanged)."""
    if value is None or isinstance(value, bool | int | str):
        return not isinstance(value, int) or -(1 << 63) <= value < 1 << 64
    if isinstance(value, float):
        return value == value and abs(value) != float("inf")
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False
