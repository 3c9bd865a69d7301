"""`bosun doctor`: probe the store's conditional requests as S3 documents them.

A controller is only safe on a store whose conditional writes are atomic and whose
conditional GETs answer 304 (docs/security.md#one-leader, #fenced-writes, #store-atomicity). Each probe names one behaviour; any
missing one makes Bosun refuse the backend for controllers, naming it. The probes write
under `control/doctor/<random>/` and delete what they wrote.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from wire.errors import BosunError, StoreError, WriteConflict
from wire.store import NotModified, Store, StoredObject

RACERS = 20
PROBE_PREFIX = "control/doctor/"


@dataclass(frozen=True, slots=True)
class Probe:
    behaviour: str
    ok: bool
    detail: str
    # what was raised, when the probe could not run (store_verdict.classify tells why)
    error: BosunError | None = field(default=None, compare=False)


class _Probes:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.base = f"{PROBE_PREFIX}{secrets.token_hex(6)}/"
        self.results: list[Probe] = []
        self.keys: list[str] = []

    def key(self, name: str) -> str:
        k = self.base + name
        self.keys.append(k)
        return k

    def check(self, behaviour: str, fn: Callable[[], str]) -> None:
        try:
            detail = fn()
            self.results.append(
                Probe(behaviour, not detail.startswith("MISSING"), detail.removeprefix("MISSING: "))
            )
        except (StoreError, BosunError) as exc:
            self.results.append(Probe(behaviour, False, f"{type(exc).__name__}: {exc}", exc))


def _conflict(fn: Callable[[], object]) -> bool:
    try:
        fn()
    except WriteConflict:
        return True
    except StoreError:  # e.g. 404 on If-Match for a missing key: refused too
        return True
    return False


def probe(store: Store) -> list[Probe]:
    p = _Probes(store)
    s = store
    a = p.key("a.json")
    state: dict[str, str] = {}

    def create_only() -> str:
        state["e1"] = s.put(a, b'{"v": 1}', if_none_match="*")
        return "PUT If-None-Match: * on a new key succeeded"

    def create_only_refused() -> str:
        if _conflict(lambda: s.put(a, b'{"v": 2}', if_none_match="*")):
            return "PUT If-None-Match: * on an existing key answered 412"
        return "MISSING: PUT If-None-Match: * overwrote an existing object"

    def if_match_ok() -> str:
        state["e2"] = s.put(a, b'{"v": 3}', if_match=state["e1"])
        if state["e2"] == state["e1"]:
            return "MISSING: the ETag did not change when the content did"
        return "PUT If-Match on the current ETag succeeded with a new ETag"

    def if_match_stale() -> str:
        if _conflict(lambda: s.put(a, b'{"v": 4}', if_match=state["e1"])):
            return "PUT If-Match on a stale ETag answered 412"
        return "MISSING: PUT If-Match on a stale ETag overwrote the object"

    def if_match_missing() -> str:
        if _conflict(lambda: s.put(p.key("never.json"), b"{}", if_match=state["e1"])):
            return "PUT If-Match on a missing key was refused"
        return "MISSING: PUT If-Match on a missing key created it"

    def etags_agree() -> str:
        got = s.get(a)
        listed = {i.key: i.etag for i in s.list(p.base)}
        if not isinstance(got, StoredObject) or got.body != b'{"v": 3}':
            return "MISSING: GET did not return the last successful write"
        if got.etag != state["e2"] or listed.get(a) != state["e2"]:
            return (
                f"MISSING: PUT, GET and LIST disagree on the ETag ({state['e2']}, "
                f"{got.etag}, {listed.get(a)})"
            )
        return "PUT, GET and LIST report the same ETag"

    def get_304() -> str:
        got = s.get(a, if_none_match=state["e2"])
        if isinstance(got, NotModified):
            return "GET If-None-Match on the current ETag answered 304"
        return "MISSING: GET If-None-Match on the current ETag returned the body (no 304)"

    def get_stale_200() -> str:
        got = s.get(a, if_none_match=state["e1"])
        if isinstance(got, StoredObject) and got.body == b'{"v": 3}':
            return "GET If-None-Match on a stale ETag returned the current body"
        return f"MISSING: GET If-None-Match on a stale ETag answered {type(got).__name__}"

    def race(kind: str) -> str:
        key = p.key(f"race-{kind}.json")
        base_etag = s.put(key, b"{}") if kind == "if-match" else None
        winners: list[int] = []
        errors: list[str] = []
        lock = threading.Lock()
        gate = threading.Barrier(RACERS)

        def racer(i: int) -> None:
            body = b'{"racer": %d}' % i
            gate.wait(timeout=10)
            try:
                if base_etag is None:
                    s.put(key, body, if_none_match="*")
                else:
                    s.put(key, body, if_match=base_etag)
            except WriteConflict:
                return
            except StoreError as exc:
                with lock:
                    errors.append(str(exc))
                return
            with lock:
                winners.append(i)

        threads = [threading.Thread(target=racer, args=(i,)) for i in range(RACERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        got = s.get(key)
        what = "create-only" if base_etag is None else "If-Match"
        if len(winners) != 1:
            extra = f"; errors: {errors[0]}" if errors else ""
            return (
                f"MISSING: {len(winners)} of {RACERS} concurrent {what} writes won (want 1){extra}"
            )
        if not isinstance(got, StoredObject) or got.body != b'{"racer": %d}' % winners[0]:
            return f"MISSING: the stored object is not the winner's write ({what} race)"
        return f"{RACERS} concurrent {what} writes: exactly one won and is what is stored"

    p.check("conditional create (If-None-Match: *)", create_only)
    if "e1" in state:
        p.check("create-only refuses an existing key", create_only_refused)
        p.check("If-Match write on the current ETag", if_match_ok)
    if "e2" in state:
        p.check("If-Match refuses a stale ETag", if_match_stale)
        p.check("If-Match refuses a missing key", if_match_missing)
        p.check("ETags agree across PUT, GET and LIST", etags_agree)
        p.check("conditional GET answers 304 (If-None-Match)", get_304)
        p.check("conditional GET returns changed objects", get_stale_200)
    p.check(f"{RACERS}-writer create-only race has one winner", lambda: race("create"))
    p.check(f"{RACERS}-writer If-Match race has one winner", lambda: race("if-match"))
    for key in p.keys:
        with contextlib.suppress(StoreError):
            store.delete(key)
    return p.results


def missing(results: list[Probe]) -> list[Probe]:
    return [r for r in results if not r.ok]


def refuse_if_missing(results: list[Probe]) -> None:
    bad = missing(results)
    if bad:
        names = "; ".join(f"{r.behaviour}: {r.detail}" for r in bad)
        raise BosunError(f"refusing this store for controllers; missing behaviour: {names}")


__all__ = ["Probe", "missing", "probe", "refuse_if_missing"]
