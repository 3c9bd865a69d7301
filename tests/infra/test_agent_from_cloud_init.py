"""An agent started from `bosun enroll -o cloud-init` reaches the bucket with least privilege."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml
from click.testing import CliRunner

from controller.cli import cli
from tests.infra.conftest import MASTER, Enforced
from wire.documents import open_snapshot
from wire.signing import derive_machine_key, write_key_file
from wire.store import StoredObject

AGENT = Path(sys.executable).parent / "bosun-agent"


def test_agent_from_cloud_init_runs_under_the_agent_policy(
    enforced: Enforced, tmp_path: Path
) -> None:
    """`bosun-agent check` and `run --once` pass with web-1's literal policy; the report verifies."""
    master = tmp_path / "master.key"
    write_key_file(master, MASTER)
    done = CliRunner().invoke(
        cli,
        [
            "enroll",
            "web-1",
            "--eligible",
            "web",
            "--master-key",
            str(master),
            "--epoch",
            "0",
            "-o",
            "cloud-init",
            "--store",
            enforced.store_url(),
            "--pip-spec",
            "https://pkg.example.com/bosun-0.1.0-py3-none-any.whl",
        ],
        catch_exceptions=False,
    )
    assert done.exit_code == 0, done.output
    files = {f["path"]: f for f in yaml.safe_load(done.stdout)["write_files"]}
    # lay the two files down as cloud-init would, under tmp_path instead of /etc
    config = tmp_path / "agent.yaml"
    config.write_text(files["/etc/bosun/agent.yaml"]["content"])
    key_file = tmp_path / "machine.key"
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, files["/etc/bosun/machine.key"]["content"].encode())
    os.close(fd)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "BOSUN_KEY_FILE": str(key_file),
        "BOSUN_STATE_DIR": str(tmp_path / "state"),
        **enforced.web1.env(),
    }
    (tmp_path / "state").mkdir(mode=0o700)

    def agent(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(AGENT), "--config", str(config), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    check = agent("check")
    assert check.returncode == 0 and "check passed" in check.stdout, check.stdout + check.stderr
    once = agent("run", "--once")
    assert once.returncode == 0, once.stdout + once.stderr

    got = enforced.controller.store(enforced.server).get("reports/web-1.json")
    assert isinstance(got, StoredObject)
    key = derive_machine_key(MASTER, "web-1", 0)
    _, snapshot = open_snapshot(got.body, "reports/web-1.json", lambda kid: key)
    assert snapshot.machine == "web-1"
    assert snapshot.applied.generation == 1
