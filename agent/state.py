"""The agent's local persisted state, written temp + fsync + rename (never torn).

    <state_dir>/state.json            seq, high-water marks per kid, etags, counters, last error
    <state_dir>/desired.cached.json   the newest verified desired document (answers a 304)
    <state_dir>/desired.applied.json  the last-known-good document (applied successfully)
    <state_dir>/cycle.lock            flock: one cycle at a time on this machine

The high-water marks (generation, fence, digest) are scoped to the kid (`machine@epoch`):
after a key rotation a generation published with the stolen old key cannot block updates.
A corrupt state file is moved aside with a clear message and the agent recovers from the
bucket on the next fetch.
"""

from __future__ import annotations

import os
import time
from dataclasses import field, replace
from pathlib import Path
from typing import Any

import orjson

from agent.sha import digest
from wire import codec
from wire.atomic import write_atomic
from wire.documents import Applied, Desired, Refusal, decode_desired_body, parse_envelope
from wire.errors import BosunError, InvalidDocument
from wire.logs import Log
from wire.records import record

log = Log(__name__)

STATE_FILE = "state.json"
CACHED_FILE = "desired.cached.json"
APPLIED_FILE = "desired.applied.json"


@record
class Mark:
    """The high-water mark of one kid: the newest generation, fence and digest accepted."""

    generation: int = 0
    fence: int = 0
    digest: str = ""


@record
class LocalState:
    """The agent's local state between cycles (`<state_dir>/state.json`)."""

    seq: int = 0
    marks: dict[str, Mark] = field(default_factory=dict)  # kid -> high-water mark
    etag: str | None = None  # If-None-Match for the next GET (cached or refused copy)
    cached_etag: str | None = None
    cached_digest: str | None = None
    refused_etag: str | None = None  # "<etag> <kid>": that version, refused by that key
    applied: Applied = field(default_factory=Applied)
    failed_digest: str | None = None  # a document whose apply failed: not retried as is
    refusals: dict[str, int] = field(default_factory=dict)
    last_refusal: Refusal | None = None
    last_error: str | None = None
    last_put_at: float = 0.0
    last_fingerprint: str = ""
    last_cycle_at: float = 0.0
    last_pull_at: float = 0.0  # the last time the bucket answered the desired GET

    def refuse(self, reason: str, detail: str, at: float) -> LocalState:
        counts = dict(self.refusals)
        counts[reason] = counts.get(reason, 0) + 1
        return replace(self, refusals=counts, last_refusal=Refusal(reason, detail[:500], at))

    def with_mark(self, kid: str, mark: Mark) -> LocalState:
        marks = dict(self.marks)
        marks[kid] = mark
        return replace(self, marks=marks)


class StateDir:
    def __init__(self, root: Path) -> None:
        self.root = root

    def ensure(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise BosunError(
                f"state_dir {self.root}: cannot create it ({exc.strerror}); "
                "create it owned by the agent's user or set state_dir"
            ) from None

    def load(self) -> tuple[LocalState, str | None]:
        """The state and, when the file was corrupt, a message saying what was done."""
        path = self.root / STATE_FILE
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return LocalState(), None
        try:
            value = orjson.loads(raw)
            state: LocalState = codec.decode(LocalState, value, str(path))
            return state, None
        except (orjson.JSONDecodeError, InvalidDocument) as exc:
            aside = path.with_name(f"{STATE_FILE}.corrupt-{int(time.time())}")
            os.replace(path, aside)
            msg = (
                f"local state {path} was corrupt ({str(exc)[:200]}); moved it to {aside} "
                "and recovering from the bucket"
            )
            log.error("state.corrupt %s", msg)
            return LocalState(last_error=msg), msg

    def save(self, state: LocalState) -> None:
        # Unix seconds: a local file read back exactly (and by an older agent after a downgrade)
        value = codec.encode(state, times="epoch")
        body = orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
        write_atomic(self.root / STATE_FILE, body)

    def write_doc(self, name: str, raw: bytes) -> None:
        write_atomic(self.root / name, raw)

    def read_doc(self, name: str, expect_digest: str | None) -> tuple[bytes, Desired] | None:
        """A locally kept desired document, if present and its digest is the expected one."""
        if not expect_digest:
            return None
        try:
            raw = (self.root / name).read_bytes()
            env = parse_envelope(raw, where=name)
            doc = decode_desired_body(env.body, where=name)
        except FileNotFoundError:
            return None
        except (OSError, BosunError) as exc:
            log.error("state.doc_unreadable file=%s error=%s", self.root / name, exc)
            return None
        if digest(env.body) != expect_digest:
            log.error(
                "state.doc_mismatch file=%s: digest differs from state.json", self.root / name
            )
            return None
        return raw, doc

    def read_json(self, name: str) -> dict[str, Any] | None:
        try:
            value = orjson.loads((self.root / name).read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None
        return value if isinstance(value, dict) else None
