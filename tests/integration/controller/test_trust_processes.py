"""An attacker with write access to the bucket, against real `bosun` and `bosun-agent`
processes on SeaweedFS (docs/security.md#operator-signed-specs, docs/security.md#secrets):
a well-formed unsigned spec, an old signed spec put back, one machine's secret copied into
another machine's document; and the secret-hygiene scan of every object (noncurrent versions
too), log line and file written during the run. One cluster for the module; the tests run in
file order and each leaves it converged."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import boto3
import orjson
import pytest

from tests.integration.controller.conftest import BIN, MASTER
from tests.support.fixtures import fresh_bucket, seaweedfs  # noqa: F401
from tests.support.servers import ACCESS_KEY, SECRET_KEY, S3Server
from wire.documents import open_desired, seal
from wire.layout import SPEC_CURRENT, STATUS_CLUSTER, desired_key, spec_history_key
from wire.pubkeys import controller_seed
from wire.signing import b64, derive_machine_key, format_kid, read_key_file, write_key_file
from wire.store import StoredObject
from wire.store.s3 import S3Store

SECRET = "pw-Zq8vY2-never-in-plaintext"
MACHINES = ("m-0", "m-1", "m-2")
SPEC = """
settings: {{heartbeat_timeout: 60s, desired_lifetime: 1h, controller_interval: 5s}}
services:
  web:
    version: "{version}"
    count: 2
    port: 8080
    config:
      db: {{password: {{secret_file: db_password}}}}
      greeting: hello
"""


@dataclass
class Cluster:
    store: S3Store
    url: str
    tmp: Path
    env: dict[str, str]
    versioned: bool
    endpoint: str
    logs: list[str] = field(default_factory=list)

    def run(self, *argv: str, check: bool = True, **extra: str) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(
            list(argv), env={**self.env, **extra}, capture_output=True, text=True, timeout=60,
            cwd=self.tmp,
        )  # fmt: skip
        self.logs.append(out.stdout + out.stderr)
        if check:
            assert out.returncode == 0, out.stdout + out.stderr
        return out

    def bosun(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run(str(BIN / "bosun"), *args, check=check)

    def controller(self) -> subprocess.CompletedProcess[str]:
        return self.bosun(
            "--log-level", "info", "controller", "once", "--master-key", str(self.tmp / "master.key"),
            "--state-dir", str(self.tmp / "ctl"), "--id", "cron", "--skip-probe",
        )  # fmt: skip

    def agent(self, m: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cfg = self.tmp / m / "agent.yaml"
        return self.run(sys.executable, "-m", "agent", "--log-level", "info", "--config", str(cfg),
                        "run", "--once", check=check)  # fmt: skip

    def rounds(self, n: int = 3) -> None:
        for _ in range(n):
            self.controller()
            for m in MACHINES:
                self.agent(m)

    def get(self, key: str) -> bytes:
        got = self.store.get(key)
        assert isinstance(got, StoredObject), key
        return got.body

    def status(self) -> dict[str, Any]:
        value: dict[str, Any] = orjson.loads(self.get(STATUS_CLUSTER))
        return value

    def desired(self) -> dict[str, bytes]:
        return {m: self.get(desired_key(m)) for m in MACHINES}

    def apply(self, version: str, message: str) -> None:
        spec = self.tmp / "spec.yaml"
        spec.write_text(SPEC.format(version=version))
        self.bosun("spec", "apply", str(spec), "--operator-key", str(self.tmp / "alice.key"),
                   "-m", message)  # fmt: skip

    def web(self) -> list[str]:
        out = []
        for m, raw in self.desired().items():
            body = orjson.loads(raw)["body"]
            if body.get("service") == "web" and body.get("mode") == "active":
                out.append(m)
        return out


def _agent_config(c: Cluster, m: str) -> None:
    home = c.tmp / m
    home.mkdir()
    key = home / "machine.key"
    write_key_file(key, derive_machine_key(MASTER, m, 0))
    hook = f"sh -c 'printf %s \"$DB_PASSWORD\" | sha256sum > {home}/env.sha256'"
    value = {
        "machine": m, "store": c.url, "key_file": str(key), "state_dir": str(home / "state"),
        "eligible": ["web"], "poll_interval": 1, "heartbeat_interval": 1,
        "services": {"web": {
            "port": 8080,
            "files": [{"path": str(home / "config.json"), "format": "json", "source": "config"}],
            "commands": {"restart": hook, "reload": hook},
            "secrets": {"dir": str(home / "secrets"), "env": {"DB_PASSWORD": "db.password"}},
        }},
    }  # fmt: skip
    (home / "agent.yaml").write_bytes(orjson.dumps(value))


@pytest.fixture(scope="module")
def cluster(seaweedfs: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:  # noqa: F811
    """Operator alice listed, the controller key pinned, a signed spec with a secret applied
    and three agents converged on it."""
    store = fresh_bucket(seaweedfs, own_bucket=True)
    s3 = boto3.client("s3", endpoint_url=seaweedfs.endpoint, region_name="us-east-1",
                      aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)  # fmt: skip
    try:
        s3.put_bucket_versioning(Bucket=store.bucket, VersioningConfiguration={"Status": "Enabled"})
        versioned = True
    except Exception:  # a store without versioning: there are no noncurrent versions to scan
        versioned = False
    tmp = tmp_path_factory.mktemp("trust")
    url = seaweedfs.store_url(store.bucket, store.prefix.rstrip("/"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BOSUN_"))}
    env.update(seaweedfs.credentials_env(), BOSUN_STORE=url, PYTHONDONTWRITEBYTECODE="1")
    c = Cluster(store, url, tmp, env, versioned, seaweedfs.endpoint)
    write_key_file(tmp / "master.key", MASTER)
    (tmp / "db_password").write_text(SECRET + "\n")
    out = c.bosun("keygen", "--operator", "alice", "-o", str(tmp / "alice.key"))
    public = out.stdout.split("public key: ")[1].split()[0]
    c.bosun("keys", "add-operator", "alice", public, "--master-key", str(tmp / "master.key"))
    shown = c.bosun("keys", "show", "--master-key", str(tmp / "master.key")).stdout
    c.env["BOSUN_CONTROLLER_KEY"] = shown.split("BOSUN_CONTROLLER_KEY=")[1].split()[0]
    for m in MACHINES:
        _agent_config(c, m)
    c.apply("1.0", "first release")
    c.rounds()
    yield c


def test_the_signed_spec_runs_and_the_secret_reaches_only_the_service(cluster: Cluster) -> None:
    """The controller plans with alice's signed revision (status says so, verified with the
    pinned key); each web machine has the value in a 0600 file and in the hook's environment
    (checked by its hash), and its rendered config holds the file's path."""
    c = cluster
    st = c.status()
    assert st["spec_signature"]["verified_by"] == "alice" and st["spec_refused"] is None
    out = c.bosun("status")
    assert "verified (controller key" in out.stdout, out.stdout
    assert "applied by alice (signed, verified by the controller): first release" in out.stdout
    web = c.web()
    assert len(web) == 2
    for m in web:
        secret_file = c.tmp / m / "secrets" / "db.password"
        assert secret_file.read_text() == SECRET
        assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
        rendered = orjson.loads((c.tmp / m / "config.json").read_bytes())
        assert rendered == {"db": {"password": str(secret_file)}, "greeting": "hello"}
        digest = (c.tmp / m / "env.sha256").read_text().split()[0]
        assert digest == hashlib.sha256(SECRET.encode()).hexdigest()


def test_a_well_formed_unsigned_spec_is_refused(cluster: Cluster) -> None:
    """A hand-written spec/current.json at a higher revision with a forged version, unsigned:
    refused (unsigned), counted, shown by status --check; nothing that runs changes."""
    c = cluster
    before = c.desired()
    forged = orjson.loads(c.get(SPEC_CURRENT))
    for k in ("signature", "applied_by", "message"):
        forged.pop(k, None)
    forged["revision"] += 5
    forged["services"]["web"]["version"] = "6.6.6-forged"
    c.store.put(SPEC_CURRENT, orjson.dumps(forged))
    c.rounds(2)
    refused = c.status()["spec_refused"]
    assert refused["reason"] == "unsigned" and refused["count"] == 1, refused
    assert c.desired() == before
    check = c.bosun("status", "--check", check=False)
    assert check.returncode == 1 and "spec/current.json refused" in check.stdout
    c.apply("1.0", "restore after the forged spec")  # an operator writes a good one over it
    c.rounds(1)
    assert c.status()["spec_refused"] is None


def test_an_old_signed_spec_put_back_is_refused(cluster: Cluster) -> None:
    """Release 1.1 signed; the signed revision of 1.0 copied back to spec/current.json is
    refused as replayed: the controller keeps planning with 1.1's revision, and no machine
    is given 1.0 back."""
    c = cluster
    c.apply("1.1", "release 1.1")
    c.rounds()
    current = orjson.loads(c.get(SPEC_CURRENT))["revision"]
    moved = {m for m, raw in c.desired().items() if orjson.loads(raw)["body"]["version"] == "1.1"}
    assert moved
    c.store.put(SPEC_CURRENT, c.get(spec_history_key(1)))
    c.rounds(2)
    refused = c.status()["spec_refused"]
    assert refused["reason"] == "replayed" and refused["planning_with"] == current, refused
    for m, raw in c.desired().items():
        body = orjson.loads(raw)["body"]
        assert body["spec_revision"] <= current and (m not in moved or body["version"] == "1.1")
    c.store.put(SPEC_CURRENT, c.get(spec_history_key(current)))
    c.rounds(2)


def test_a_secret_copied_into_another_machines_document_is_refused(cluster: Cluster) -> None:
    """Whoever holds machine B's key (B itself, compromised) signs a document for B carrying
    A's encrypted secret: B's agent refuses it (secret_refused, reported and shown in status),
    applies nothing, and its files stay as they were."""
    c = cluster
    a, b = c.web()
    key_b = derive_machine_key(MASTER, b, 0)
    _e, doc_a = open_desired(c.get(desired_key(a)), desired_key(a),
                             lambda k: derive_machine_key(MASTER, a, 0))  # fmt: skip
    _e, doc_b = open_desired(c.get(desired_key(b)), desired_key(b), lambda k: key_b)
    forged = replace(doc_b, generation=doc_b.generation + 1, config=doc_a.config)
    c.store.put(desired_key(b), seal(forged, key=key_b, kid=format_kid(b, 0),
                                     object_key=desired_key(b)))  # fmt: skip
    files = {
        p: p.read_bytes() for p in (c.tmp / b).rglob("*") if p.is_file() and "state" not in p.parts
    }
    refused = c.agent(b, check=False)
    assert refused.returncode != 0 and "secret_refused" in refused.stderr
    report = orjson.loads(c.get(f"reports/{b}.json"))["body"]
    assert report["refusals"].get("secret_refused") == 1, report["refusals"]
    assert report["applied"]["generation"] == doc_b.generation
    assert {p: p.read_bytes() for p in files} == files
    c.controller()
    assert c.status()["agent_refusals"][b]["counts"]["secret_refused"] == 1
    c.rounds(2)  # the controller re-signs b's own document over the forgery


def test_no_secret_or_key_in_any_object_version_log_or_file(cluster: Cluster) -> None:
    """Every object in the bucket (noncurrent versions too, when the store keeps them),
    every log line of every process and every file written (outside the key files, the
    secret's source and the directories the agents hand it over in) holds neither the secret
    nor any key: master, control, controller, operator or machine."""
    c = cluster
    keys = [MASTER, controller_seed(MASTER), read_key_file(c.tmp / "alice.key")]
    keys += [derive_machine_key(MASTER, m, 0) for m in MACHINES]
    needles = [SECRET.encode()] + [k for key in keys for k in (key, b64(key).encode())
                                   if len(k) > 20]  # fmt: skip
    s3 = boto3.client("s3", endpoint_url=c.endpoint, region_name="us-east-1",
                      aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)  # fmt: skip
    bodies: list[tuple[str, bytes]] = []
    if c.versioned:
        pages = s3.get_paginator("list_object_versions").paginate(Bucket=c.store.bucket)
        for page in pages:
            for v in page.get("Versions", []):
                got = s3.get_object(Bucket=c.store.bucket, Key=v["Key"], VersionId=v["VersionId"])
                bodies.append((f"{v['Key']}@{v['VersionId']}", got["Body"].read()))
    else:
        for info in c.store.list(""):
            bodies.append((info.key, c.get(info.key)))
    assert len(bodies) > 20
    logs = "\n".join(c.logs).encode()
    handed = {c.tmp / m / "secrets" for m in MACHINES}
    files = [p for p in c.tmp.rglob("*") if p.is_file()
             and p.name not in ("master.key", "alice.key", "machine.key", "db_password")
             and not any(h in p.parents for h in handed)]  # fmt: skip
    assert len(files) > 10
    for needle in needles:
        assert not [k for k, raw in bodies if needle in raw]
        assert needle not in logs
        assert not [p for p in files if needle in p.read_bytes()]
    assert any(b"secret_refused" in raw for _k, raw in bodies)  # the scan saw the attack
