"""The leader lease `control/lease.json` with a fencing token (docs/security.md#one-leader, #lease-responses, #clock-skew, #stop-on-lease-loss).

    {"format": "bosun.lease/1", "holder": "ctl-a", "token": 7, "duration": 30.0,
     "renewed_at": "2026-12-07T18:57:05.646Z", "nonce": "...", "released": false}

inside a control envelope signed with the control key, at version = token (wire.control).
A lease that does not verify, or whose token is below one already seen (an old copy put
back), is refused: followers treat it as a lease nobody renews, and take it over after
their own lease duration (docs/security.md#signed-control-objects).

* Create with `If-None-Match: *`; renew and take over with `If-Match` on the ETag read.
  Every takeover (and every creation) uses a token above any seen before, so a desired
  document's `fence` tells agents which controller is newer.
* Followers never compare wall clocks: a lease is expired when the *same ETag* has stayed
  current for `duration` seconds on the follower's own monotonic clock (or was released).
* The leader may act only until `renew_deadline` (< duration) after the start of its last
  successful renew. Answers: success -> holder; 412/404 -> lost, re-read; 409 -> re-read
  and retry once; 5xx/timeout -> unknown, keep acting only until the renew deadline.

Every write carries a fresh nonce, so a renew whose answer was lost (and whose retry then
failed its condition) is recognised as ours on the re-read.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from wire.control import open_control, seal_control
from wire.errors import (
    BosunError,
    ControlRefused,
    InvalidDocument,
    StoreAccessDenied,
    StoreConfigError,
    StoreError,
    StoreUnavailable,
    WriteConflict,
)
from wire.layout import LEASE
from wire.store import Missing, Store, StoredObject
from wire.times import format_time, parse_time

log = logging.getLogger(__name__)

LEASE_FORMAT = "bosun.lease/1"
Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class LeaseSettings:
    """duration: how long followers wait on an unchanged lease before taking it over;
    renew_deadline: how long after a successful renew the leader may still act."""

    duration: float = 30.0
    renew_deadline: float = 20.0

    def __post_init__(self) -> None:
        if not 0 < self.renew_deadline < self.duration:
            raise ValueError(
                f"lease renew deadline ({self.renew_deadline}s) must be positive and shorter "
                f"than the lease duration ({self.duration}s)"
            )


@dataclass(frozen=True, slots=True)
class LeaseDoc:
    holder: str
    token: int
    duration: float
    renewed_at: float
    nonce: str
    released: bool = False

    def encode(self, key: bytes) -> bytes:
        value = {
            "format": LEASE_FORMAT,
            "holder": self.holder,
            "token": self.token,
            "duration": self.duration,
            "renewed_at": format_time(self.renewed_at),
            "nonce": self.nonce,
            "released": self.released,
        }
        return seal_control(key, LEASE, value, version=max(self.token, 1), marks={})

    @classmethod
    def decode(cls, raw: bytes, where: str = LEASE, *, key: bytes | None = None) -> LeaseDoc:
        """Verified with the control key `key` (None: parsed only, for reading tools);
        ControlRefused when it does not verify."""
        if len(raw) > 64 * 1024:
            raise InvalidDocument(f"{where}: {len(raw)} bytes is over the 65536-byte cap")
        v = open_control(raw, LEASE, key).value
        try:
            if v.get("format") != LEASE_FORMAT:
                raise TypeError("format")
            doc = cls(
                holder=str(v["holder"]),
                token=v["token"],
                duration=float(v["duration"]),
                renewed_at=parse_time(v["renewed_at"], f"{where}.renewed_at"),
                nonce=str(v["nonce"]),
                released=bool(v.get("released", False)),
            )
            if not isinstance(doc.token, int) or isinstance(doc.token, bool) or doc.token < 0:
                raise TypeError("token")
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidDocument(
                f"{where}: not a {LEASE_FORMAT} document ({exc}); delete it to let a "
                "controller re-create it"
            ) from None
        return doc


@dataclass(frozen=True, slots=True)
class LeaseStatus:
    role: Literal["leader", "follower"]
    acting: bool  # may write desired/ now
    token: int  # our token when leader, else the current holder's token (0 if none)
    holder: str  # the current holder as last seen
    detail: str

    def __str__(self) -> str:
        return f"{self.role} (token {self.token}, holder {self.holder}): {self.detail}"


@dataclass(frozen=True, slots=True)
class Observation:
    """A follower's view of the lease: which ETag, since when (monotonic), highest token."""

    etag: str | None = None
    since: float = 0.0
    max_token: int = 0


@dataclass
class LeaseKeeper:
    store: Store
    holder: str
    settings: LeaseSettings = field(default_factory=LeaseSettings)
    clock: Clock = time.monotonic
    wall: Clock = time.time
    token_floor: Callable[[], int] = lambda: 0  # highest fence known elsewhere (memory)
    key: bytes = field(default=b"", repr=False)  # the control key signing the lease
    # called with (reason, detail, ETag) when the lease read is refused, and with
    # ("", "", None) when a verified lease is read or written again
    on_refused: Callable[[str, str, str | None], None] = lambda _r, _d, _e: None
    observation: Observation = field(default_factory=Observation)
    adopt_own: bool = True  # a lease held under our own name is ours to take at once
    _etag: str | None = None  # ETag of the lease we hold
    _token: int = 0
    _valid_until: float = float("-inf")
    _pending_nonce: str | None = None
    _pending_started: float = float("-inf")
    _keep_lock: threading.Lock = field(default_factory=threading.Lock)

    # ---- queries ------------------------------------------------------------------------

    @property
    def token(self) -> int:
        return self._token

    def can_act(self) -> bool:
        """True while we hold the lease and the renew deadline has not passed."""
        return self._etag is not None and self.clock() < self._valid_until

    def keep(self) -> bool:
        """`can_act()`, renewing first once a third of the renew deadline has passed since the
        last renew. Long cycles (a cold start, a large publish) call it between steps so they
        finish and save instead of being cut at the deadline and redoing everything next time.
        One renewal at a time: publish threads call it concurrently."""
        if self._etag is None:
            return False
        if self.remaining() < self.settings.renew_deadline * 2 / 3 and self._keep_lock.acquire(
            blocking=False
        ):
            try:
                if (
                    self._etag is not None
                    and self.remaining() < self.settings.renew_deadline * 2 / 3
                ):
                    self._renew()
            finally:
                self._keep_lock.release()
        return self.can_act()

    def export(self) -> dict[str, object]:
        """What a short-lived process (`bosun controller once`) keeps for its successor."""
        return {
            "etag": self.observation.etag,
            "since": self.observation.since,
            "max_token": self.observation.max_token,
            "held_etag": self._etag,
            "held_token": self._token,
        }

    def restore(self, saved: dict[str, object]) -> None:
        """Resume from `export()` (same machine, same boot: monotonic times compare).

        A held lease is not trusted to be valid: the next `ensure()` renews it with
        If-Match on its ETag, which fails if anyone else wrote the lease since.
        """
        etag, held = saved.get("etag"), saved.get("held_etag")
        since, max_token, token = (
            saved.get("since"),
            saved.get("max_token"),
            saved.get("held_token"),
        )
        if isinstance(since, float) and isinstance(max_token, int):
            self.observation = Observation(
                etag if isinstance(etag, str) else None, since, max_token
            )
        if isinstance(held, str) and isinstance(token, int) and token > 0:
            self._etag, self._token, self._valid_until = held, token, float("-inf")

    def remaining(self) -> float:
        return max(0.0, self._valid_until - self.clock()) if self._etag else 0.0

    # ---- the one entry point --------------------------------------------------------------

    def ensure(self) -> LeaseStatus:
        """Acquire, renew or follow; call at the start of every cycle."""
        if self._etag is not None:
            return self._renew()
        return self._follow()

    def reissue(self, min_token: int) -> bool:
        """While holding, raise our token to at least `min_token` (a fence seen in the bucket
        is above ours, e.g. after the lease object was lost). False if the lease is lost."""
        if self._etag is None or not self.can_act():
            return False
        if min_token <= self._token:
            return True
        try:
            etag, started = self._write(min_token, if_match=self._etag)
        except StoreError as exc:
            self._lose(f"reissue failed: {exc}")
            return False
        self._hold(etag, min_token, started, "reissued")
        return True

    def release(self) -> None:
        """Give the lease up (clean stop) so a follower can take over at once."""
        if self._etag is None:
            return
        doc = LeaseDoc(
            self.holder,
            self._token,
            self.settings.duration,
            self.wall(),
            secrets.token_hex(8),
            released=True,
        )
        etag, self._etag, self._valid_until = self._etag, None, float("-inf")
        try:
            self.store.put(LEASE, doc.encode(self.key), if_match=etag)
            log.info("lease.released", extra={"ctx": {"token": self._token}})
        except StoreError as exc:
            log.warning("lease.release_failed: %s", exc)

    # ---- leader ---------------------------------------------------------------------------

    def _write(self, token: int, *, if_match: str | None) -> tuple[str, float]:
        if not self.key:
            raise BosunError("a lease keeper needs the control key to sign control/lease.json")
        nonce = secrets.token_hex(8)
        doc = LeaseDoc(self.holder, token, self.settings.duration, self.wall(), nonce)
        started = self.clock()
        self._pending_nonce, self._pending_started = nonce, started
        if if_match is None:
            etag = self.store.put(LEASE, doc.encode(self.key), if_none_match="*")
        else:
            etag = self.store.put(LEASE, doc.encode(self.key), if_match=if_match)
        return etag, started

    def _decode(self, got: StoredObject) -> LeaseDoc | None:
        """The verified lease, or None (refused: unsigned, forged, or an old copy put back)."""
        try:
            doc = LeaseDoc.decode(got.body, self.store.describe(LEASE), key=self.key)
        except ControlRefused as exc:
            self.on_refused(exc.reason, str(exc), got.etag)
            return None
        if doc.token < self.observation.max_token:
            self.on_refused(
                "rolled_back",
                f"{LEASE} has token {doc.token}, below token {self.observation.max_token} "
                "already seen (an older copy put back)",
                got.etag,
            )
            return None
        self.on_refused("", "", None)
        return doc

    def _hold(self, etag: str, token: int, started: float, detail: str) -> LeaseStatus:
        took = token != self._token or self._etag is None
        self.on_refused("", "", None)  # what we wrote is signed
        self._etag, self._token = etag, token
        self._valid_until = started + self.settings.renew_deadline
        self.observation = Observation(etag, started, max(token, self.observation.max_token))
        if took:
            log.info("lease.acquired", extra={"ctx": {"token": token, "holder": self.holder}})
        return LeaseStatus("leader", self.can_act(), token, self.holder, detail)

    def _renew(self, *, retried: bool = False) -> LeaseStatus:
        assert self._etag is not None
        try:
            etag, started = self._write(self._token, if_match=self._etag)
        except WriteConflict as exc:
            if exc.status == 409 and not retried:
                return self._reread(retry_renew=True)
            return self._reread()
        except StoreUnavailable as exc:
            acting = self.can_act()
            log.warning("lease.renew_unknown: %s (acting for %.1fs more)", exc, self.remaining())
            return LeaseStatus(
                "leader",
                acting,
                self._token,
                self.holder,
                f"renew outcome unknown ({exc}); "
                + ("acting until the renew deadline" if acting else "stopped"),
            )
        except (StoreAccessDenied, StoreConfigError):
            raise
        except StoreError as exc:  # e.g. 404 on If-Match: the lease is gone
            log.warning("lease.renew_failed: %s", exc)
            return self._reread()
        return self._hold(etag, self._token, started, "renewed")

    def _reread(self, *, retry_renew: bool = False) -> LeaseStatus:
        """After a failed renew: is the lease still ours (lost answer, or 409)?"""
        nonce, token = self._pending_nonce, self._token
        try:
            got = self.store.get(LEASE)
        except StoreUnavailable as exc:
            return LeaseStatus(
                "leader",
                self.can_act(),
                token,
                self.holder,
                f"renew failed and re-read failed ({exc})",
            )
        if isinstance(got, StoredObject):
            doc = self._decode(got)
            if (
                doc is not None
                and doc.holder == self.holder
                and doc.token == token
                and not doc.released
            ):
                if doc.nonce == nonce:  # our write landed; its answer was lost
                    return self._hold(
                        got.etag, token, self._pending_started, "renewed (answer lost)"
                    )
                if retry_renew:
                    self._etag = got.etag
                    return self._renew(retried=True)
        self._lose("lease changed under us")
        return self._follow()

    def _lose(self, why: str) -> None:
        if self._etag is not None:
            log.warning("lease.lost", extra={"ctx": {"token": self._token, "why": why}})
        self._etag, self._valid_until = None, float("-inf")

    # ---- follower -------------------------------------------------------------------------

    def _follow(self) -> LeaseStatus:
        now = self.clock()
        got = self.store.get(LEASE)
        if isinstance(got, Missing):
            token = max(self.observation.max_token, self.token_floor(), self._token) + 1
            return self._try_take(token, None, "created the lease")
        if not isinstance(got, StoredObject):  # pragma: no cover - unconditional GET
            raise InvalidDocument(f"{self.store.describe(LEASE)}: unexpected not-modified")
        doc = self._decode(got)
        if doc is None:
            return self._follow_refused(got.etag, now)
        if doc.nonce == self._pending_nonce and doc.holder == self.holder and not doc.released:
            return self._hold(got.etag, doc.token, self._pending_started, "acquired (answer lost)")
        obs = self.observation
        max_token = max(obs.max_token, doc.token)
        if got.etag != obs.etag:
            self.observation = obs = Observation(got.etag, now, max_token)
        else:
            self.observation = obs = Observation(obs.etag, obs.since, max_token)
        waited = now - obs.since
        wait_for = max(doc.duration, self.settings.duration)
        own = self.adopt_own and doc.holder == self.holder
        if doc.released or own or waited >= wait_for:
            why = "released" if doc.released else "ours" if own else f"unchanged {waited:.1f}s"
            token = max(max_token, self.token_floor(), self._token) + 1
            return self._try_take(token, got.etag, f"took over ({why})")
        return LeaseStatus(
            "follower",
            False,
            doc.token,
            doc.holder,
            f"lease held by {doc.holder}; expires in {wait_for - waited:.1f}s unless renewed",
        )

    def _follow_refused(self, etag: str, now: float) -> LeaseStatus:
        """A refused lease is one nobody renews: take it over once the same object has
        stayed for our lease duration (a real leader would have renewed it)."""
        obs = self.observation
        if etag != obs.etag:
            self.observation = obs = Observation(etag, now, obs.max_token)
        waited = now - obs.since
        if waited >= self.settings.duration:
            token = max(obs.max_token, self.token_floor(), self._token) + 1
            return self._try_take(token, etag, "took over (the lease object was refused)")
        return LeaseStatus(
            "follower",
            False,
            obs.max_token,
            "?",
            f"{LEASE} refused; taking it over in {self.settings.duration - waited:.1f}s",
        )

    def _try_take(self, token: int, if_match: str | None, detail: str) -> LeaseStatus:
        try:
            etag, started = self._write(token, if_match=if_match)
        except WriteConflict:
            self.observation = Observation(None, 0.0, max(self.observation.max_token, token - 1))
            return LeaseStatus(
                "follower", False, token - 1, "?", "another controller won the lease"
            )
        except StoreUnavailable as exc:
            return LeaseStatus("follower", False, token - 1, "?", f"lease write unknown ({exc})")
        except (StoreAccessDenied, StoreConfigError):
            raise
        except StoreError as exc:
            return LeaseStatus("follower", False, token - 1, "?", f"lease write failed ({exc})")
        return self._hold(etag, token, started, detail)
