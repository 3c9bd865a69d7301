"""Master key files and machine key epochs (control/keys.json)."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest

from controller.shell.key_epochs import KeyRing, bump_epoch, keygen, load_epochs, load_master_key
from tests.unit.controller.conftest import MASTER
from tests.unit.controller.stores import Recording
from wire.control import seal_control
from wire.errors import BosunError, ControlRefused, InvalidDocument
from wire.layout import KEYS
from wire.signing import derive_control_key, derive_machine_key


def test_keygen_writes_an_owner_only_key_and_refuses_to_overwrite(tmp_path: Path) -> None:
    """bosun keygen: 0600 file, never silently replaced; --force replaces it."""
    path = tmp_path / "master.key"
    keygen(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = load_master_key(path)
    with pytest.raises(BosunError, match="--force"):
        keygen(path)
    assert load_master_key(path) == first
    keygen(path, force=True)
    assert load_master_key(path) != first


def test_a_group_readable_master_key_is_refused(tmp_path: Path) -> None:
    """The controller refuses a master key others can read, naming the chmod fix."""
    path = tmp_path / "master.key"
    keygen(path)
    path.chmod(0o640)
    with pytest.raises(BosunError, match="chmod 600"):
        load_master_key(path)


def test_epochs_start_at_zero_and_bumps_are_conditional(store: Recording) -> None:
    """revoke bumps one machine's epoch, creating keys.json create-only, then If-Match."""
    assert load_epochs(store, MASTER) == {}
    assert bump_epoch(store, MASTER, "web-1") == 1
    assert bump_epoch(store, MASTER, "web-1") == 2
    assert bump_epoch(store, MASTER, "db-1") == 1
    assert load_epochs(store, MASTER) == {"web-1": 2, "db-1": 1}
    body = store.inner.get(KEYS).body  # type: ignore[union-attr]
    assert b"key" not in body.replace(b"bosun.keys", b"")  # epochs only, no secrets


def test_concurrent_revokes_lose_no_bump(store: Recording) -> None:
    """Eight revokes at once: every bump lands exactly once (re-read on conflict)."""
    threads = [
        threading.Thread(target=bump_epoch, args=(store.inner, MASTER, f"m-{i % 2}"))
        for i in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert load_epochs(store, MASTER) == {"m-0": 4, "m-1": 4}


def test_malformed_keys_document_is_refused(store: Recording) -> None:
    """A keys.json with a bad epoch is an error, never guessed (no fallback to epoch 0); an
    unsigned one or one signed with another key is refused."""
    value = {"format": "bosun.keys/2", "epochs": {"web-1": "2"}}
    store.inner.put(
        KEYS, seal_control(derive_control_key(MASTER), KEYS, value, version=1, marks={})
    )
    with pytest.raises(InvalidDocument, match=r"epochs\.web-1"):
        load_epochs(store, MASTER)
    store.inner.put(KEYS, b'{"format": "bosun.keys/1", "epochs": {"web-1": 2}}')
    with pytest.raises(ControlRefused, match="not a signed"):
        load_epochs(store, MASTER)
    good = {"format": "bosun.keys/2", "epochs": {"web-1": 2}}
    store.inner.put(
        KEYS, seal_control(derive_control_key(b"x" * 32), KEYS, good, version=1, marks={})
    )
    with pytest.raises(ControlRefused, match="does not verify"):
        load_epochs(store, MASTER)


def test_key_ring_serves_only_the_current_epoch() -> None:
    """A kid at an older or newer epoch than the machine's current one gets no key (docs/security.md#key-rotation)."""
    master = b"m" * 32
    ring = KeyRing(master, {"web-1": 3})
    assert ring.lookup("web-1@3") == derive_machine_key(master, "web-1", 3)
    assert ring.lookup("web-1@2") is None and ring.lookup("web-1@4") is None
    assert ring.lookup("web-2@0") == derive_machine_key(master, "web-2", 0)
    assert ring.lookup("../x@0") is None and ring.lookup("web-1") is None
    assert "current epoch is 3" in (ring.why_refused("web-1@2") or "")
    assert ring.signing_key("web-1") == (derive_machine_key(master, "web-1", 3), "web-1@3")
