"""Three controllers racing for the lease with random pauses (docs/security.md#one-leader), over any store.

Each controller loops: acquire/renew, and while acting read a fenced object, sometimes
pause past its renew deadline, then write its token there conditionally. Returns which
controllers acted under each token and the tokens of the writes that succeeded, for the
caller to assert: one holder per token, written fences never decrease.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from controller.shell.lease import LeaseKeeper, LeaseSettings
from wire.errors import StoreError, WriteConflict
from wire.signing import derive_control_key
from wire.store import Store, StoredObject

TARGET = "desired/x.json"


@dataclass
class RaceResult:
    holders: dict[int, set[str]] = field(default_factory=dict)  # token -> names that acted
    committed: list[int] = field(default_factory=list)  # tokens of successful writes, in order


def lease_race(
    make_store: Callable[[], Store],
    settings: LeaseSettings,
    *,
    seconds: float,
    pause_chance: float,
    pause: tuple[float, float],
    idle: float,
) -> RaceResult:
    out = RaceResult()
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def controller(name: str, seed: int) -> None:
        rng = random.Random(seed)
        store = make_store()
        lease = LeaseKeeper(store, name, settings, key=derive_control_key(bytes(32)))
        while time.monotonic() < stop_at:
            try:
                st = lease.ensure()
            except StoreError:
                continue
            if st.acting:
                with lock:
                    out.holders.setdefault(st.token, set()).add(name)
                got = store.get(TARGET)
                fence = int(got.body) if isinstance(got, StoredObject) else 0
                etag = got.etag if isinstance(got, StoredObject) else None
                if rng.random() < pause_chance:
                    time.sleep(rng.uniform(*pause))  # paused past the renew deadline
                if lease.can_act() and fence <= st.token:
                    try:
                        if etag is None:
                            store.put(TARGET, str(st.token).encode(), if_none_match="*")
                        else:
                            store.put(TARGET, str(st.token).encode(), if_match=etag)
                        with lock:
                            out.committed.append(st.token)
                    except WriteConflict:
                        pass
            time.sleep(rng.uniform(0.0, idle))

    threads = [threading.Thread(target=controller, args=(n, i)) for i, n in enumerate("abc")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 60)
    return out
