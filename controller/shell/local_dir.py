"""The controller's small local state directory (one per store URL).

* `lock`: held for the whole life of a `bosun controller once|run` process, so two
  controllers on one host never share a lease view (an overlapping cron run just skips);
* `snapshots.json`: the accepted snapshots (signed bytes and ETags) a `once` process saw,
  so the next one re-verifies them locally instead of GETting every report again;
* `trust.json`: the highest version of each control object seen and the last verified
  `control/keys.json`, so a deleted or rolled-back control object is refused by the next
  `once` process too (docs/security.md#signed-control-objects);
* `lease.json`: a `once` process's lease view for its successor: the lease ETag it last saw
  and since when (monotonic, valid within one boot), and the lease it held.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import orjson

from wire.atomic import write_atomic
from wire.errors import BosunError


def default_state_dir(store_url: str) -> Path:
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return base / "bosun" / hashlib.sha256(store_url.encode()).hexdigest()[:12]


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


@contextlib.contextmanager
def exclusive(state_dir: Path) -> Iterator[None]:
    """Hold `state_dir/lock`; BosunError at once if another controller process holds it."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(state_dir / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BosunError(
                f"another bosun controller process holds {state_dir / 'lock'}; "
                "skipping (use --state-dir to run a second controller on this host)"
            ) from None
        yield
    finally:
        os.close(fd)


def load_lease_view(state_dir: Path) -> dict[str, object]:
    try:
        value = orjson.loads((state_dir / "lease.json").read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    if not isinstance(value, dict) or value.get("boot_id") != boot_id():
        return {}  # another boot: monotonic times do not compare
    return value


def save_lease_view(state_dir: Path, view: dict[str, object]) -> None:
    write_atomic(state_dir / "lease.json", orjson.dumps({**view, "boot_id": boot_id()}))


PROBE_VALID = 24 * 3600.0  # `controller once` re-probes the store at most daily


def probe_due(state_dir: Path, store: str, now: float) -> bool:
    """True unless this store passed the conditional-request probe here in the last day."""
    try:
        value = orjson.loads((state_dir / "probe.json").read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return True
    if not isinstance(value, dict) or value.get("store") != store:
        return True
    at = value.get("passed_at")
    return not isinstance(at, (int, float)) or not 0 <= now - at < PROBE_VALID


def save_probe_passed(state_dir: Path, store: str, now: float) -> None:
    write_atomic(state_dir / "probe.json", orjson.dumps({"store": store, "passed_at": now}))


def load_snapshots(state_dir: Path) -> dict[str, tuple[str, bytes]]:
    """machine -> (ETag, signed bytes); re-verified before use, so damage only costs GETs."""
    try:
        value = orjson.loads((state_dir / "snapshots.json").read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    out: dict[str, tuple[str, bytes]] = {}
    if isinstance(value, dict):
        for machine, item in value.items():
            if isinstance(item, list) and len(item) == 2 and all(isinstance(x, str) for x in item):
                out[str(machine)] = (item[0], item[1].encode())
    return out


def save_snapshots(state_dir: Path, raw: dict[str, tuple[str, bytes]]) -> None:
    body = orjson.dumps({m: [e, b.decode()] for m, (e, b) in raw.items()})
    write_atomic(state_dir / "snapshots.json", body)


def load_trust(state_dir: Path) -> dict[str, object]:
    """What `save_trust` kept (empty when missing or damaged: the bucket's cross-references
    still hold)."""
    try:
        value = orjson.loads((state_dir / "trust.json").read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def save_trust(state_dir: Path, trust: dict[str, object]) -> None:
    write_atomic(state_dir / "trust.json", orjson.dumps(trust), 0o600)
