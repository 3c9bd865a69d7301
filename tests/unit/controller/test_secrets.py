"""Secret config values (docs/security.md#secrets): sealed to the controller by `spec apply`,
a reference in plans and `--dry-run`, encrypted per machine in desired/, decrypted only by
that machine's agent into the files and environment its config names."""

from __future__ import annotations

import stat
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from agent.config import parse_config
from agent.secret_files import materialize
from agent.verify import Refused, verify_desired
from controller.cli import cli
from controller.shell.cycle import Controller
from controller.shell.lease import LeaseSettings
from tests.unit.controller.conftest import MASTER, agents
from tests.unit.controller.sim import SPEC_YAML
from tests.unit.controller.stores import Recording
from wire.documents import encode_body, open_desired, seal
from wire.layout import SPEC_CURRENT, desired_key
from wire.pubkeys import controller_public
from wire.secret_box import MARK, find_secrets
from wire.signing import derive_machine_key, format_kid, write_key_file
from wire.store import StoredObject

SECRET = "s3cr3t-Hunter2-value"
TOKEN = "tok-9f8e7d6c5b4a"
SPEC_WITH_SECRETS = SPEC_YAML.replace(
    "    port: 8080\n",
    "    port: 8080\n    config:\n      db: {password: {secret_file: db_password}}\n"
    "      api_token: {secret_env: TEST_API_TOKEN}\n      plain: visible\n",
    1,
)


def everything(store: Recording) -> bytes:
    root = Path(store.url.removeprefix("file://"))
    return b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())


def desired_raw(store: Recording, machine: str) -> bytes:
    got = store.inner.get(desired_key(machine))
    assert isinstance(got, StoredObject)
    return got.body


@pytest.fixture
def applied(spec_store: Recording, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Recording:
    """The spec with two secrets applied through the CLI, the controller key pinned."""
    master = tmp_path / "master.key"
    write_key_file(master, MASTER)
    run = CliRunner()
    st = ["--store", spec_store.url]
    key = tmp_path / "alice.key"
    out = run.invoke(cli, ["keygen", "--operator", "alice", "-o", str(key)])
    public = out.output.split("public key: ")[1].split()[0]
    run.invoke(cli, ["keys", "add-operator", "alice", public, *st, "--master-key", str(master)])
    (tmp_path / "db_password").write_text(SECRET + "\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC_WITH_SECRETS)
    monkeypatch.setenv("TEST_API_TOKEN", TOKEN)
    args = ["spec", "apply", str(spec), *st, "--operator-key", str(key)]
    out = run.invoke(cli, args)
    assert "must be pinned" in str(out.exception)  # no pin: sealing to an unverified key refused
    monkeypatch.setenv("BOSUN_CONTROLLER_KEY", controller_public(MASTER).sign)
    out = run.invoke(cli, args)
    assert out.exit_code == 0, (out.output, out.exception)
    return spec_store


def test_secrets_are_never_in_plaintext_and_reach_only_their_machine(
    applied: Recording, tmp_path: Path
) -> None:
    """The stored spec holds sealed values; a dry run and the plan hold references; each
    machine's document holds its own encryption; no object in the bucket holds a value.
    The agent verifies and writes the value to a 0600 file and the env it names; a secret
    copied into another machine's document (re-signed with that machine's own key) is
    refused as secret_refused."""
    stored = orjson.loads(desired_or_spec(applied))
    sealed = find_secrets(stored["services"]["web"]["config"])
    assert [p for p, _t in sealed] == ["api_token", "db.password"]
    assert all(t.startswith("sealed1:") for _p, t in sealed)
    fleet = agents(applied)
    for a in fleet:
        a.report()
    ctl = Controller(applied, MASTER, holder="ctl", lease=LeaseSettings(30, 20))
    dry = ctl.cycle(dry_run=True)
    assert dry.plan is not None
    assert SECRET.encode() not in repr(dry.plan).encode()
    assert "ref:" in repr(dry.plan)
    for _ in range(3):
        ctl.cycle()
        for a in fleet:
            a.pull()
            a.report()
    assert SECRET.encode() not in everything(applied) and TOKEN.encode() not in everything(applied)
    web = [a for a in fleet if a.desired is not None and a.desired.service == "web"]
    other = next(a for a in fleet if a not in web)
    a = web[0]
    raw = desired_raw(applied, a.machine)
    assert b'"m1:' in raw
    key = derive_machine_key(MASTER, a.machine, 0)
    v = verify_desired(raw, object_key=desired_key(a.machine), machine=a.machine,
                       kid=format_kid(a.machine, 0), key=key, mark=None)  # fmt: skip
    key_file = tmp_path / "machine.key"
    write_key_file(key_file, key)
    secrets_dir = tmp_path / "secrets"
    cfg = parse_config({
        "machine": a.machine, "store": applied.url, "key_file": str(key_file),
        "services": {"web": {"secrets": {"dir": str(secrets_dir),
                                         "env": {"API_TOKEN": "api_token"}}}},
    })  # fmt: skip
    config, env = materialize(cfg, "web", v.doc)
    assert env == {"API_TOKEN": TOKEN}
    path = Path(config["db"]["password"])
    assert path.read_text() == SECRET and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert config["plain"] == "visible" and SECRET not in orjson.dumps(config).decode()
    # machine `other` holds its own key and re-signs a document carrying a's secret
    _env, theirs = open_desired(
        desired_raw(applied, other.machine), desired_key(other.machine),
        lambda k: derive_machine_key(MASTER, other.machine, 0),
    )  # fmt: skip
    copied = type(theirs)(**{**{f: getattr(theirs, f) for f in theirs.__slots__},
                             "config": v.doc.config, "generation": theirs.generation + 1})  # fmt: skip
    other_key = derive_machine_key(MASTER, other.machine, 0)
    forged = seal(copied, key=other_key, kid=format_kid(other.machine, 0),
                  object_key=desired_key(other.machine))  # fmt: skip
    with pytest.raises(Refused) as refused:
        verify_desired(forged, object_key=desired_key(other.machine), machine=other.machine,
                       kid=format_kid(other.machine, 0), key=other_key, mark=None)  # fmt: skip
    assert refused.value.reason == "secret_refused"
    assert SECRET not in str(refused.value) and MARK in orjson.dumps(encode_body(copied)).decode()


def desired_or_spec(store: Recording) -> bytes:
    got = store.inner.get(SPEC_CURRENT)
    assert isinstance(got, StoredObject)
    return got.body


def test_without_a_place_for_them_the_agent_applies_no_secret(
    applied: Recording, tmp_path: Path
) -> None:
    """An agent config naming no secrets dir/env for the service: the apply fails naming
    the setting, and the value is written nowhere."""
    fleet = agents(applied)
    for a in fleet:
        a.report()
    ctl = Controller(applied, MASTER, holder="ctl", lease=LeaseSettings(30, 20))
    ctl.cycle()
    for a in fleet:
        a.pull()
    a = next(a for a in fleet if a.desired is not None and a.desired.service == "web")
    key = derive_machine_key(MASTER, a.machine, 0)
    key_file = tmp_path / "k"
    write_key_file(key_file, key)
    cfg = parse_config({"machine": a.machine, "store": applied.url, "key_file": str(key_file),
                        "services": {"web": {}}})  # fmt: skip
    assert a.desired is not None
    with pytest.raises(Exception, match=r"services\.web\.secrets"):
        materialize(cfg, "web", a.desired)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert not any(SECRET.encode() in p.read_bytes() for p in files if p.name != "db_password")
