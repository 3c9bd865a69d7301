"""What a steady cron cycle imports: `python -m agent run --once` (the installed command's
entry, `agent.entry`) on a directory bucket, the desired document applied by an earlier
run, imports none of the modules only a change, a template, a secret, an S3 bucket or a
hook needs (docs/agent.md#requests-and-cpu). A module list, read from `-X importtime`, which
Python writes as each module imports (the process ends with os._exit, so nothing printed
at exit would be seen); not a timing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.servers import S3Server
from tests.unit.agent.kit import Machine, desired, publish
from wire.store import DirectoryStore
from wire.store.s3 import S3Store

# each import is legitimate somewhere else in the agent; none on a steady no-op cycle
NOT_ON_THE_STEADY_PATH = (
    "jinja2",  # format: jinja (agent.templates)
    "cryptography",  # secrets (wire.secret_box decrypts)
    "obstore",  # an s3:// bucket
    "boto3",
    "botocore",
    "wire.store.s3",
    "yaml",  # the config cache holds the parsed agent.yaml
    "subprocess",  # hooks, checks, command probes, processes
    "http.client",  # http probes
    "socket",  # the route probe uses _socket
    "selectors",
    "shutil",  # argparse's help formatter would import it (with bz2 and lzma)
    "bz2",
    "lzma",
    "agent.staging",  # rendering and checking files: only when a document is applied
    "agent.drivers.files",
    "agent.templates",
    "agent.secret_files",
    "agent.textfile",  # only with metrics_textfile
    "agent.check",
    "random",  # --splay and the daemon's jitter
    "logging",  # a log line at or above --log-level (wire.logs)
    "string",
    "traceback",
    "configparser",  # credentials from a profile (keys in the environment need none)
    "hashlib",  # OpenSSL: signatures are checked only on a new document (agent.sha)
    "_hashlib",
    "hmac",
)


def _imported(config: Path, env: dict[str, str] | None = None) -> set[str]:
    done = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-m",
            "agent",
            "--config",
            str(config),
            "run",
            "--once",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=None if env is None else {**os.environ, **env},
        cwd=Path(__file__).resolve().parents[3],  # `-m agent` finds this tree's agent first
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("import time:")]
    return {line.rsplit("|", 1)[1].strip() for line in lines[1:]}  # [0] is the header


def test_a_steady_cron_cycle_imports_only_what_it_uses(tmp_path: Path) -> None:
    bucket = DirectoryStore(tmp_path / "bucket")
    services = {
        "web": {
            "port": 8080,
            "files": [
                {"path": str(tmp_path / "out" / "web.json")},
                {"path": str(tmp_path / "out" / "web.conf"), "format": "template",
                 "template": "version ${version} on ${port}\n"},
            ],
        }
    }  # fmt: skip
    m = Machine(tmp_path / "m", bucket.url, services=services).write()
    publish(bucket, desired(generation=1, config={"greeting": "hello"}))

    applying = _imported(m.config_path)  # applies the document (and caches the config)
    assert {"agent.staging", "agent.drivers.files", "yaml"} <= applying
    assert (tmp_path / "out" / "web.conf").read_text() == "version 1.0 on 8080\n"
    _imported(m.config_path)  # the first report settles
    steady = _imported(m.config_path)

    assert {"agent.entry", "agent.cli", "agent.cycle", "wire.store.directory"} <= steady
    assert sorted(set(NOT_ON_THE_STEADY_PATH) & steady) == []


def test_a_steady_cron_cycle_on_s3_imports_the_client_and_no_more(
    tmp_path: Path, moto_server: S3Server
) -> None:
    from tests.support.fixtures import fresh_bucket

    bucket: S3Store = fresh_bucket(moto_server)
    url = moto_server.store_url(bucket.bucket, bucket.prefix.rstrip("/"))
    m = Machine(tmp_path / "m", url).write()
    publish(bucket, desired(generation=1, config={"greeting": "hello"}))
    env = moto_server.credentials_env()

    _imported(m.config_path, env)  # applies the document
    _imported(m.config_path, env)  # the first report settles
    steady = _imported(m.config_path, env)

    assert {"agent.cycle", "obstore", "wire.store.s3", "wire.store.credentials"} <= steady
    client = {"obstore", "wire.store.s3"}
    assert sorted((set(NOT_ON_THE_STEADY_PATH) - client) & steady) == []
