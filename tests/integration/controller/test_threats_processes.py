"""An attacker with write access to the bucket, against real `bosun` processes on SeaweedFS
(docs/security.md#signed-control-objects): control/keys.json deleted, put back from
before a revocation, or replaced by an unsigned copy; control/memory.json rolled back.
Each is refused, counted and shown in status, and nothing that runs changes."""

from __future__ import annotations

import time
from typing import Any

import orjson

from controller.spec.load import load_yaml
from controller.spec.revisions import apply
from tests.integration.controller.conftest import MASTER, Bucket
from tests.unit.controller.sim import SPEC_YAML, SimAgent
from wire.layout import KEYS, MEMORY, STATUS_CLUSTER, desired_key
from wire.store import StoredObject


def raw(b: Bucket, key: str) -> bytes:
    got = b.store.get(key)
    assert isinstance(got, StoredObject), key
    return got.body


def status(b: Bucket) -> dict[str, Any]:
    value: dict[str, Any] = orjson.loads(raw(b, STATUS_CLUSTER))
    return value


def converge(b: Bucket, fleet: list[SimAgent], common: list[str], rounds: int = 4) -> None:
    for _ in range(rounds):
        b.bosun("controller", "once", *common)
        for a in fleet:
            a.pull()
            a.report()


def test_an_attacker_cannot_undo_a_revocation_or_roll_memory_back(bucket: Bucket) -> None:
    """Revoke web-3; its stolen epoch-0 key keeps being refused whatever is done to
    control/keys.json; a cold controller stops instead of planning with fewer revocations;
    an older control/memory.json is refused and replaced, and no desired document changes."""
    b = bucket
    apply(b.store, load_yaml(SPEC_YAML), now=time.time())
    fleet = [SimAgent(b.store, MASTER, f"web-{i}", eligible=("web", "lb")) for i in range(4)]
    for a in fleet:
        a.report()
    key = ["--master-key", str(b.master_file)]
    common = [*key, "--state-dir", str(b.tmp / "st"), "--id", "cron", "--skip-probe"]
    converge(b, fleet, common)
    old_memory = raw(b, MEMORY)
    b.bosun("rotate", "web-0", "--grace", "1h", *key)  # keys.json v1: web-3 still at epoch 0
    before_revoke = raw(b, KEYS)
    b.bosun("revoke", "web-3", *key)  # v2: web-3 at epoch 1
    b.bosun("controller", "once", *common)
    thief = SimAgent(b.store, MASTER, "web-3", eligible=("web", "lb"))  # holds the epoch-0 key
    web3 = raw(b, desired_key("web-3"))  # never re-signed for the revoked key from here on
    # keys.json deleted, put back from before the revoke, replaced by an unsigned copy
    attacks = [
        lambda: b.store.delete(KEYS),
        lambda: b.store.put(KEYS, before_revoke),
        lambda: b.store.put(KEYS, b'{"format": "bosun.keys/1", "epochs": {}}'),
    ]
    rejected = status(b)["rejected"].get("web-3", {}).get("counts", {}).get("unknown_kid", 0)
    for n, attack in enumerate(attacks, 1):
        attack()
        thief.seq = 0
        thief.report()
        out = orjson.loads(b.bosun("controller", "once", "-o", "json", *common).stdout)
        assert out["rejected"] == 1, out
        st = status(b)
        assert st["rejected"]["web-3"]["counts"]["unknown_kid"] == rejected + n
        assert st["control_refused"][KEYS]["active"] and st["control_refused"][KEYS]["count"] == n
        assert raw(b, desired_key("web-3")) == web3
        check = b.bosun("status", "--check", check=False)
        assert f"{KEYS} refused" in check.stdout, check.stdout
    # a controller without local state finds the deletion through memory's record
    b.store.delete(KEYS)
    cold = b.bosun(
        "controller",
        "once",
        *key,
        "--state-dir",
        str(b.tmp / "cold"),
        "--id",
        "cron",
        "--skip-probe",
        check=False,
    )
    assert cold.returncode == 2 and "restore" in cold.stderr, cold.stderr
    b.store.put(KEYS, before_revoke)
    cold = b.bosun(
        "controller",
        "once",
        *key,
        "--state-dir",
        str(b.tmp / "cold"),
        "--id",
        "cron",
        "--skip-probe",
        check=False,
    )
    assert cold.returncode == 2 and "below version 2" in cold.stderr, cold.stderr

    # control/memory.json rolled back to an older signed version
    docs = {a.machine: raw(b, desired_key(a.machine)) for a in fleet}
    b.store.put(MEMORY, old_memory)
    b.bosun("controller", "once", *common)
    st = status(b)
    assert st["control_refused"][MEMORY]["reason"] == "rolled_back", st["control_refused"]
    assert {a.machine: raw(b, desired_key(a.machine)) for a in fleet} == docs
    version = orjson.loads(raw(b, MEMORY))["body"]["version"]
    assert version > orjson.loads(old_memory)["body"]["version"]
