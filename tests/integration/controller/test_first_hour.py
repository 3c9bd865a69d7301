"""The first hour of a new operator, as README.md and docs/deploy.md tell it, on SeaweedFS.

Real `bosun` and `bosun-agent` processes, one SeaweedFS: keygen, spec validate and apply,
doctor, enroll (the machine's directory), the agent's first cycles, controller cycles, and a
converged fleet read back with status, machines, history and events. Around each step, the
mistakes a new operator makes, each asserted on its message and exit code. With
WALKTHROUGH_TRANSCRIPT=FILE the commands and their output are written there.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import time
from pathlib import Path

import orjson
import yaml

from tests.integration.controller.conftest import BIN, Bucket

SPEC = """\
settings:
  heartbeat_timeout: 45s
  controller_interval: 10s
services:
  web:
    version: "1.0"
    count: 1
    port: 8080
"""


class Walk:
    """Runs commands as an operator would and keeps a transcript."""

    def __init__(self, bucket: Bucket) -> None:
        self.b = bucket
        self.dir = bucket.tmp / "operator"  # the fixture's own master key stays out of it
        self.dir.mkdir()
        self.lines: list[str] = []

    def run(
        self, *argv: str, code: int = 0, env: dict[str, str] | None = None, timeout: float = 60
    ) -> str:
        """Run `argv` (bosun or bosun-agent from the venv); assert its exit code; stdout+stderr."""
        program = str(BIN / argv[0])
        started = time.monotonic()
        done = subprocess.run(
            [program, *argv[1:]],
            env=env if env is not None else self.b.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.dir,
            check=False,
        )
        took = time.monotonic() - started
        out = done.stdout + done.stderr
        shown = " ".join(argv).replace(str(self.dir), ".")
        self.lines.append(f"$ {shown}    # exit {done.returncode}, {took:.1f}s")
        self.lines.extend(out.replace(str(self.dir), ".").rstrip("\n").splitlines()[:25])
        assert done.returncode == code, f"{shown}: exit {done.returncode}\n{out}"
        self.took = took
        return out

    def save(self) -> None:
        target = os.environ.get("WALKTHROUGH_TRANSCRIPT")
        if target:
            Path(target).write_text("\n".join(self.lines) + "\n")


def test_first_hour_from_keygen_to_a_converged_fleet(bucket: Bucket) -> None:
    """Every documented step works as written; every listed mistake exits non-zero with a
    message that says what is wrong and what to do."""
    w = Walk(bucket)
    url = bucket.url
    try:
        _walk(w, url)
    finally:
        w.save()


def _walk(w: Walk, url: str) -> None:
    d = w.dir
    no_creds = {k: v for k, v in w.b.env().items() if not k.startswith("AWS_")}
    no_creds["AWS_SHARED_CREDENTIALS_FILE"] = str(d / "none")
    no_creds["AWS_CONFIG_FILE"] = str(d / "none")
    no_creds["AWS_EC2_METADATA_DISABLED"] = "true"

    # 2. keys
    w.run("bosun", "keygen", "-o", "master.key")
    assert stat.S_IMODE((d / "master.key").stat().st_mode) == 0o600
    master = str(d / "master.key")

    # 3. spec; a service written twice is refused with its line
    (d / "dup.yaml").write_text(SPEC + '  web:\n    version: "2.0"\n    count: 1\n')
    out = w.run("bosun", "spec", "validate", "dup.yaml", code=2)
    assert "dup.yaml:9: key 'web' appears twice (first at line 5)" in out
    (d / "cluster.yaml").write_text(SPEC)
    w.run("bosun", "spec", "validate", "cluster.yaml")
    assert "applied revision 1" in w.run("bosun", "spec", "apply", "cluster.yaml", "--store", url)

    # 4. doctor: fit, then each setup mistake with its own verdict and fix
    assert "store is fit for controllers" in w.run("bosun", "doctor", "--store", url)
    closed = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:9", url)
    out = w.run("bosun", "doctor", "--store", closed, code=2)
    assert "cannot reach http://127.0.0.1:9" in out and "fix: check the endpoint" in out
    assert "missing behaviour" not in out and w.took < 5, (w.took, out)
    missing_bucket = url.replace("s3://bosun-test", "s3://bosun-tset")
    out = w.run("bosun", "doctor", "--store", missing_bucket, code=2)
    assert "bucket 'bosun-tset' does not exist" in out and "fix: create it (aws s3 mb" in out
    out = w.run("bosun", "doctor", "--store", url, code=2, env=no_creds)
    assert "no credentials" in out and "fix: export AWS_ACCESS_KEY_ID" in out

    # 5. enroll: the machine's directory; BOSUN_MASTER_KEY as for the controller
    out = w.run(
        "bosun", "enroll", "web-1", "--eligible", "lbb", "--master-key", master,
        "--store", url, code=2,
    )  # fmt: skip
    assert "'lbb' is not a service or pool of the applied spec (revision 1); known: web" in out
    assert not (d / "web-1").exists()
    env = {**w.b.env(), "BOSUN_MASTER_KEY": master}
    out = w.run("bosun", "enroll", "web-1", "--eligible", "web", "--store", url, env=env)
    config = d / "web-1" / "agent.yaml"
    assert f"wrote {config}" in out.replace("./", f"{d}/")
    key_file = Path(yaml.safe_load(config.read_text())["key_file"])
    assert key_file == d / "web-1" / "machine.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    out = w.run("bosun", "enroll", "web-1", "--eligible", "web", "--store", url, code=2, env=env)
    assert "agent.yaml already exists" in out and "--force" in out

    # the agent, with the options after the subcommand and a duration for --splay
    agent_env = {**w.b.env(), "BOSUN_STATE_DIR": str(d / "state-web-1")}
    once = ["bosun-agent", "run", "--once", "--config", str(config), "--log-level", "info"]
    out = w.run(*once, "--splay", "1s", env=agent_env)
    assert "once web-1 ok: applied generation 0 (none); report sent" in out

    # agent mistakes: every problem at once, a duplicate key, a missing key file
    bad = d / "bad.yaml"
    bad.write_text(
        config.read_text().replace("poll_interval: 30", "poll_interval: 5x")
        + "jitter: 0.2\nservices:\n  web: {port: 99999}\n"
    )
    out = w.run("bosun-agent", "check", "--config", str(bad), code=2, env=agent_env)
    assert f"{bad}:" in out and "key 'jitter' appears twice" in out
    bad.write_text(
        config.read_text()
        .replace("poll_interval: 30", "poll_interval: 5x")
        .replace("web: {}", "web: {port: 99999}")
        .replace('machine: "web-1"', 'machine: "Web_1"')
    )
    out = w.run("bosun-agent", "check", "--config", str(bad), code=2, env=agent_env)
    assert "3 problems" in out and "poll_interval: expected a duration" in out
    assert "services.web.port: must be 1-65535" in out and "machine: invalid machine id" in out
    nokey = d / "nokey.yaml"
    nokey.write_text(config.read_text().replace(str(key_file), str(d / "gone.key")))
    out = w.run(*once[:3], "--config", str(nokey), code=2, env=agent_env)
    assert f"key file {d / 'gone.key'} does not exist" in out and "bosun enroll web-1" in out

    # 4. the controller: a dry run shows no None, then real cycles
    ctl = ["--master-key", master, "--store", url, "--state-dir", str(d / "ctl"), "--id", "ctl-a"]
    out = w.run("bosun", "controller", "once", "--dry-run", *ctl)
    assert "None" not in out and "-> active/web@1.0" in out, out
    w.run("bosun", "controller", "once", *ctl)
    out = w.run(*once, env=agent_env)
    assert "once web-1 ok: applied generation 1 (ok); report sent" in out
    w.run("bosun", "controller", "once", *ctl)

    # 6. operate: a converged fleet, read back
    out = w.run("bosun", "status", "--store", url)
    # no health probe in the skeleton: health unknown, so "healthy" counts 0
    assert re.search(r"web\s+service\s+1\s+1\s+0\s+0\s+1\.0\s+-\s+1 on 1\.0", out), out
    assert "None" not in out and "applied_" in out
    rows = orjson.loads(w.run("bosun", "machines", "--store", url, "-o", "json"))
    assert [(r["machine"], r["mode"], r["generation"], r["applied_generation"]) for r in rows] == [
        ("web-1", "active", 1, 1)
    ]
    out = w.run("bosun", "history", "web-1", "--store", url, "--diff", "-2", "-1")
    assert out.startswith("--- web-1@") and '"generation": 1' in out
    out = w.run("bosun", "events", "--store", url, "--since", "1h")
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", out) and "machine.assigned" in out

    # reads that name what does not exist
    out = w.run("bosun", "machines", "--store", url, "--service", "nope", code=2)
    assert "no service 'nope' in status/cluster.json (services: web)" in out
    out = w.run("bosun", "history", "web-9", "--store", url, code=2)
    assert "no machine 'web-9'" in out and "(machines: web-1)" in out
    out = w.run("bosun", "history", "web-1", "--store", url, "--diff", "-9", "-1", code=2)
    assert "use -1 to -" in out
    typo = d / "bukcet"
    out = w.run("bosun", "status", "--store", f"file://{typo}", code=2)
    assert "not a directory" in out and not typo.exists()
