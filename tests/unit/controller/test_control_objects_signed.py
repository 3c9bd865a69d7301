"""Signed, versioned control objects (docs/security.md#signed-control-objects): an attacker
who can write the bucket deletes, replaces or rolls back control/keys.json and
control/memory.json; each is refused, counted, shown in status, and the revocation holds."""

from __future__ import annotations

import orjson
import pytest

from controller.shell.key_epochs import bump_epoch
from tests.unit.controller.conftest import MASTER, agents, body, controller, status
from tests.unit.controller.stores import Recording
from wire.errors import ControlRefused
from wire.layout import KEYS, MEMORY, desired_key


def test_deleting_or_replacing_keys_after_a_revoke_never_undoes_it(spec_store: Recording) -> None:
    """Revoke web-3, then delete control/keys.json, put the pre-revoke copy back, or write
    an unsigned one: the old key stays refused by this controller, and a cold controller
    (no local state) finds the deletion through memory's record and stops."""
    fleet = agents(spec_store)
    for a in fleet:
        a.report()
    ctl = controller(spec_store)
    ctl.cycle()
    bump_epoch(spec_store.inner, MASTER, "web-3")  # creates keys.json v1 (epoch 0 -> 1)
    before_revoke = body(spec_store, KEYS)
    bump_epoch(spec_store.inner, MASTER, "web-3")
    ctl.cycle()
    for attack in (
        lambda: spec_store.inner.delete(KEYS),
        lambda: spec_store.inner.put(KEYS, before_revoke),
        lambda: spec_store.inner.put(KEYS, b'{"format": "bosun.keys/1", "epochs": {}}'),
    ):
        attack()
        fleet[3].epoch = 1  # the stolen, revoked key
        fleet[3].report()
        report = ctl.cycle()
        assert report.rejected == 1 and report.accepted == 0
        refused = status(spec_store)["control_refused"][KEYS]
        assert refused["active"], refused
        assert not open_desired_kid(spec_store, "web-3").endswith("@1")
    assert status(spec_store)["control_refused"][KEYS]["count"] == 3
    cold = controller(spec_store)
    spec_store.inner.delete(KEYS)
    with pytest.raises(ControlRefused, match="restore"):
        cold.cycle()


def open_desired_kid(store: Recording, machine: str) -> str:
    kid: str = orjson.loads(body(store, desired_key(machine)))["kid"]
    return kid


def test_memory_rolled_back_or_forged_is_refused_and_replaced(spec_store: Recording) -> None:
    """An older signed control/memory.json put back, or an unsigned one: refused, counted,
    shown; the controller keeps its own copy, no desired document changes, and its next
    save replaces the object at a higher version."""
    fleet = agents(spec_store)
    ctl = controller(spec_store)
    olds = []
    for _ in range(4):
        ctl.cycle()
        olds.append(body(spec_store, MEMORY))
        for a in fleet:
            a.pull()
            a.report()
    ctl.cycle()
    old = olds[0]
    assert orjson.loads(old)["body"]["version"] < orjson.loads(olds[-1])["body"]["version"]
    docs = {a.machine: body(spec_store, desired_key(a.machine)) for a in fleet}
    version = orjson.loads(body(spec_store, MEMORY))["body"]["version"]
    for forged in (old, b'{"format": "bosun.memory/1"}'):
        spec_store.inner.put(MEMORY, forged)
        ctl.cycle()
        assert {a.machine: body(spec_store, desired_key(a.machine)) for a in fleet} == docs
        assert orjson.loads(body(spec_store, MEMORY))["body"]["version"] > version
    assert status(spec_store)["control_refused"][MEMORY]["active"]
    ctl.cycle()  # the status written after the save says it is resolved
    refused = status(spec_store)["control_refused"][MEMORY]
    assert refused["count"] == 2 and not refused["active"]
    assert refused["reason"] == "unsigned"
