"""Operator-signed specs (docs/security.md#operator-signed-specs) and adopting an unsigned
control/keys.json: once an operator key is listed, an unsigned, forged, unknown-key or
replayed revision is refused, counted, shown, and the controller keeps the last good one."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from controller.cli import cli
from controller.shell.key_epochs import set_operator
from controller.spec.document import to_json
from controller.spec.load import load_yaml
from controller.spec.revisions import apply, read_current
from controller.spec.signature import Signer, SpecUnverified
from devkit.operator_keys import operator_signer
from tests.unit.controller.conftest import MASTER, agents, body, controller, status
from tests.unit.controller.sim import SPEC_YAML
from tests.unit.controller.stores import Recording
from wire.errors import ControlRefused
from wire.layout import KEYS, SPEC_CURRENT, desired_key
from wire.pubkeys import generate_seed, public_of
from wire.signing import write_key_file


def versions(store: Recording) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for a in ("web-0", "web-1", "web-2", "web-3"):
        doc = orjson.loads(body(store, desired_key(a)))["body"]
        out[a] = doc["version"]
    return out


def test_unsigned_forged_unknown_and_replayed_specs_are_refused_and_counted(
    spec_store: Recording,
) -> None:
    """With an operator listed: the signed revision is planned with and status names who
    signed it; an unsigned, a forged (changed after signing), an unknown-key and an older
    signed revision put back are each refused with their reason, counted once per object
    version, and no desired document changes."""
    fleet = agents(spec_store)
    for a in fleet:
        a.report()
    ctl = controller(spec_store)
    ctl.cycle()
    alice = operator_signer(spec_store.inner, MASTER, None, "alice")
    spec = load_yaml(SPEC_YAML.replace('version: "1.0"', 'version: "1.1"'))
    apply(spec_store.inner, spec, now=time.time(), signer=alice, message="web 1.1")
    old_signed = body(spec_store, SPEC_CURRENT)
    apply(
        spec_store.inner,
        load_yaml(SPEC_YAML.replace('version: "1.0"', 'version: "1.2"')),
        now=time.time(),
        signer=alice,
        message="web 1.2",
    )
    for _ in range(3):
        ctl.cycle()
        for a in fleet:
            a.pull()
            a.report()
    st = status(spec_store)
    assert st["spec_refused"] is None
    assert st["spec_signature"] == {
        "revision": 3, "applied_by": "alice", "message": "web 1.2", "verified_by": "alice",
        "enforced": True,
    }  # fmt: skip
    running = versions(spec_store)
    assert "1.2" in running.values()

    forged = orjson.loads(body(spec_store, SPEC_CURRENT))
    forged["services"]["web"]["version"] = "6.6.6-forged"
    forged["revision"] = 4
    unsigned = {k: v for k, v in forged.items() if k != "signature"}
    mallory = Signer("alice", generate_seed(), alice.cluster)  # claims to be alice
    attacks = [
        ("unsigned", orjson.dumps(unsigned)),
        ("bad_signature", orjson.dumps(forged)),
        ("bad_signature", to_json(load_yaml(SPEC_YAML), applied_at=1.0, signer=mallory)),
        ("unknown_operator", to_json(load_yaml(SPEC_YAML), applied_at=1.0,
                                     signer=Signer("mallory", mallory.seed, alice.cluster))),
        ("replayed", old_signed),
    ]  # fmt: skip
    for n, (reason, raw) in enumerate(attacks, 1):
        spec_store.inner.put(SPEC_CURRENT, raw)
        ctl.cycle()
        ctl.cycle()  # the same refused object again: not counted twice
        st = status(spec_store)
        assert st["spec_refused"]["reason"] == reason, (n, st["spec_refused"])
        assert st["spec_refused"]["count"] == n
        assert st["spec_refused"]["planning_with"] == 3
        assert versions(spec_store) == running
    check = CliRunner().invoke(cli, ["status", "--check", "--store", spec_store.url])
    assert check.exit_code == 1 and "spec/current.json refused" in check.output


def test_spec_apply_signs_and_refuses_without_a_listed_key(
    spec_store: Recording, tmp_path: Path
) -> None:
    """`spec apply` without a key is refused once an operator is listed (nothing written);
    with a key not listed it is refused naming the command that lists it; with alice's key
    the revision is signed, and `spec show` / `spec history` say who and why."""
    run = CliRunner()
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(SPEC_YAML.replace("count: 2", "count: 3"))
    key = tmp_path / "alice.key"
    out = run.invoke(cli, ["keygen", "--operator", "alice", "-o", str(key)])
    assert out.exit_code == 0, out.output
    public = out.output.split("public key: ")[1].split()[0]
    master = tmp_path / "master.key"
    write_key_file(master, MASTER)
    st = ["--store", spec_store.url]
    out = run.invoke(
        cli, ["keys", "add-operator", "alice", public, *st, "--master-key", str(master)]
    )
    assert out.exit_code == 0, out.output
    before = body(spec_store, SPEC_CURRENT)
    out = run.invoke(cli, ["spec", "apply", str(spec_file), *st])
    assert out.exit_code != 0 and "must be signed" in str(out.exception)
    other = tmp_path / "bob.key"
    write_key_file(other, generate_seed())
    out = run.invoke(cli, ["spec", "apply", str(spec_file), *st, "--operator-key", str(other)])
    assert out.exit_code != 0 and "bosun keys add-operator" in str(out.exception)
    assert body(spec_store, SPEC_CURRENT) == before
    out = run.invoke(
        cli, ["spec", "apply", str(spec_file), *st, "--operator-key", str(key), "-m", "three web"]
    )
    assert out.exit_code == 0 and "signed by operator alice" in out.output, out.output
    show = run.invoke(cli, ["spec", "show", *st])
    assert "applied by alice, signed by alice (verified): three web" in show.output, show.output
    history = run.invoke(cli, ["spec", "history", *st])
    assert "REFUSED (unsigned)" in history.output  # revision 1 was applied unsigned
    assert "signed by alice (verified): three web" in history.output


def test_an_unsigned_keys_file_from_an_older_bosun_stops_a_cold_controller_until_adopted(
    spec_store: Recording, tmp_path: Path
) -> None:
    """An old unsigned control/keys.json read by a controller with no good copy: exit 2
    naming `bosun keys adopt` (never every machine at epoch 0); adopt shows the epochs and
    signs them; the controller then honours the revocation the file holds."""
    fleet = agents(spec_store)
    spec_store.inner.put(KEYS, b'{"format": "bosun.keys/1", "epochs": {"web-3": 1}}')
    for a in fleet[:3]:
        a.report()
    with pytest.raises(ControlRefused, match="bosun keys adopt"):
        controller(spec_store).cycle()
    master = tmp_path / "master.key"
    write_key_file(master, MASTER)
    args = ["keys", "adopt", "--store", spec_store.url, "--master-key", str(master), "--yes"]
    out = CliRunner().invoke(cli, args)
    assert out.exit_code == 0 and "web-3: epoch 1" in out.output and "signed" in out.output
    fleet[3].report()  # with its epoch-0 key: revoked by the adopted file
    report = controller(spec_store).cycle()
    assert report.rejected == 1 and report.accepted == 3
    again = CliRunner().invoke(cli, args)
    assert "already signed" in again.output


def test_a_spec_signed_for_another_cluster_is_refused(spec_store: Recording) -> None:
    """The same operator key listed in two clusters: a revision signed for one is refused
    by the other (the cluster id is bound into the signature)."""
    seed = generate_seed()
    doc = set_operator(spec_store.inner, MASTER, "alice", public_of(seed))
    elsewhere = Signer("alice", seed, "0123456789abcdef")
    assert doc.cluster != elsewhere.cluster
    spec_store.inner.put(
        SPEC_CURRENT, to_json(load_yaml(SPEC_YAML), applied_at=1.0, signer=elsewhere)
    )
    controller(spec_store).cycle()
    assert status(spec_store)["spec_refused"]["reason"] == "bad_signature"
    trust = controller(spec_store).keys
    trust.use(doc)
    with pytest.raises(SpecUnverified, match="signed for another cluster"):
        read_current(spec_store.inner, trust.spec_trust())
