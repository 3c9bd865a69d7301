"""The least-privilege policies are enough for real Bosun processes: spec, controller, agent."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.infra.conftest import BUCKET, LOOP_PREFIX, MASTER, Enforced, Principal
from wire.documents import open_snapshot
from wire.signing import derive_machine_key, write_key_file
from wire.store import StoredObject

BIN = Path(sys.executable).parent
SPEC = {"services": {"web": {"version": "1.0", "count": 1}}}


def _env(tmp_path: Path, who: Principal, **extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
        **who.env(),
        **extra,
    }


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
    return done


def test_controller_and_agent_converge_under_their_policies(
    enforced: Enforced, tmp_path: Path
) -> None:
    """spec apply, doctor and controller cycles (controller policy) and agent cycles (agent policy) converge.

    Needs a moto that authorizes ListObjectsV2 as s3:ListBucket, as S3 does: 5.2.6 does not,
    and doctor then refuses the store (see tests/infra/conftest.py).
    """
    url = enforced.server.store_url(BUCKET, LOOP_PREFIX)
    master = tmp_path / "master.key"
    write_key_file(master, MASTER)
    spec = tmp_path / "cluster.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    ctl_env = _env(
        tmp_path, enforced.loop_controller, BOSUN_STORE=url, BOSUN_MASTER_KEY=str(master)
    )
    bosun = str(BIN / "bosun")
    _run([bosun, "doctor"], ctl_env)
    # `bosun spec apply`, called through its click group (whether or not it is registered yet)
    apply = f"from controller.cli.spec import spec_group; spec_group.main(['apply', {str(spec)!r}])"
    _run([sys.executable, "-c", apply], ctl_env)

    enrolled = _run(
        [
            bosun,
            "enroll",
            "web-1",
            "--eligible",
            "web",
            "--epoch",
            "0",
            "--master-key",
            str(master),
            "--store",
            url,
            "--key-out",
            str(tmp_path / "machine.key"),
            "--dir",
            str(tmp_path / "web-1"),
        ],
        ctl_env,
    )
    config = tmp_path / "web-1" / "agent.yaml"
    assert str(config) in enrolled.stdout
    (tmp_path / "state").mkdir(mode=0o700)
    agent_env = _env(
        tmp_path,
        enforced.loop_web1,
        BOSUN_KEY_FILE=str(tmp_path / "machine.key"),
        BOSUN_STATE_DIR=str(tmp_path / "state"),
    )
    agent = [str(BIN / "bosun-agent"), "--config", str(config), "run", "--once"]
    cycle = [bosun, "controller", "once", "--state-dir", str(tmp_path / "ctl"), "--id", "ctl-a"]

    _run(agent, agent_env)  # first report (no desired document yet)
    _run(cycle, ctl_env)  # accepts it, assigns web-1 to web, writes desired/web-1.json
    _run(agent, agent_env)  # applies generation 1
    _run(cycle, ctl_env)

    store = enforced.loop_controller.store(enforced.server)
    store.prefix = f"{LOOP_PREFIX}/"
    desired = store.get("desired/web-1.json")
    assert isinstance(desired, StoredObject)
    report = store.get("reports/web-1.json")
    assert isinstance(report, StoredObject)
    key = derive_machine_key(MASTER, "web-1", 0)
    _, snapshot = open_snapshot(report.body, "reports/web-1.json", lambda kid: key)
    assert snapshot.applied.generation >= 1 and snapshot.applied.result == "ok", snapshot.applied
    assert isinstance(store.get("status/cluster.json"), StoredObject)
