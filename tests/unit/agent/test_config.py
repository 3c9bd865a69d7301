"""Agent config: strict decoding, durations, environment overrides, messages that name the path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from agent.config import ConfigError, load_config, parse_config, parse_duration
from tests.unit.agent.kit import Machine

DOCS_EXAMPLE = Path(__file__).resolve().parents[3] / "docs" / "agent.md"


def base(**kw: object) -> dict[str, object]:
    raw: dict[str, object] = {
        "machine": "web-1",
        "store": "file:///srv/bucket",
        "key_file": "/etc/bosun/key",
    }
    raw.update(kw)
    return raw


def test_minimal_config_gets_documented_defaults() -> None:
    """Only machine, store and key_file are required; the rest has the documented defaults."""
    cfg = parse_config(base())
    assert (cfg.state_dir, cfg.poll_interval, cfg.heartbeat_interval, cfg.jitter) == (
        "/var/lib/bosun",
        30,
        300,
        0.1,
    )
    assert cfg.kid == "web-1@0"


def test_durations_and_env_overrides() -> None:
    """Durations accept 30, '30s', '5m'; BOSUN_* variables override the file."""
    cfg = parse_config(
        base(
            poll_interval="45s",
            heartbeat_interval="5m",
            services={"web": {"commands": {"timeout": "2m"}}},
        ),
        env={
            "BOSUN_MACHINE": "web-9",
            "BOSUN_STORE": "s3://fleet?endpoint=http://127.0.0.1:1",
            "BOSUN_KEY_EPOCH": "3",
            "BOSUN_ELIGIBLE": "web",
            "BOSUN_JITTER": "0.5",
        },
    )
    assert (cfg.machine, cfg.kid, cfg.poll_interval, cfg.heartbeat_interval) == (
        "web-9",
        "web-9@3",
        45,
        300,
    )
    assert cfg.services["web"].commands.timeout == 120
    assert cfg.eligible == ("web",) and cfg.jitter == 0.5
    assert parse_duration("500ms", "x") == 0.5


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (base(pol_interval=3), "unknown field 'pol_interval'"),
        (
            base(services={"web": {"files": [{"path": "/x", "bogus": 1}]}}),
            "services.web.files[0]: unknown field 'bogus'",
        ),
        (
            base(services={"web": {"process": {"command": ["run", "{verison}"]}}}),
            "services.web.process.command: unknown placeholder",
        ),
        (base(eligible=["web"]), "eligible: 'web' has no entry under services"),
        (base(jitter=2), "jitter: must be a fraction between 0 and 1"),
        (base(poll_interval="soon"), "poll_interval: expected a duration"),
        (base(store="ftp://x"), "store: bad store URL"),
        (base(machine="Web_1!"), "machine: invalid machine id"),
        (base(key_epoch="one"), "key_epoch: expected integer"),
        (
            base(services={"web": {"health": {"http": "http://x", "tcp": "x:1"}}}),
            "services.web.health: set exactly one",
        ),
        (base(services={"web": {"files": [{"path": "rel/x"}]}}), "must be an absolute path"),
        (base(capacity={"cpu": "lots"}), "capacity.cpu: expected number"),
    ],
)
def test_invalid_config_names_the_path(raw: dict[str, object], message: str) -> None:
    """Every invalid key or value is refused with a message naming its path."""
    with pytest.raises(ConfigError, match=None) as info:
        parse_config(raw, where="agent.yaml")
    assert message in str(info.value)
    assert str(info.value).startswith("agent.yaml: ")


def test_missing_config_file_says_what_to_do(tmp_path: Path) -> None:
    """A missing config file says where it was looked for and how to create it."""
    with pytest.raises(ConfigError, match="does not exist; create it"):
        load_config(tmp_path / "nope.yaml", env={})


def test_documented_example_is_valid(tmp_path: Path) -> None:
    """The full example in docs/agent.md parses."""
    text = DOCS_EXAMPLE.read_text()
    example = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    cfg = parse_config(yaml.safe_load(example))
    assert "web" in cfg.services and cfg.services["web"].process is not None


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **(env or {})},
        cwd=Path(__file__).resolve().parents[3],
    )


def test_cli_bad_config_and_exposed_key_exit_2_with_one_line(tmp_path: Path) -> None:
    """Bad config, a missing key and a group-readable key each exit 2 with one clear line."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("machine: web-1\nstore: file:///tmp\nkey_file: /k\nbogus: 1\n")
    done = _cli("--config", str(bad), "run", "--once")
    assert (
        done.returncode == 2
        and done.stderr.count("\n") == 1
        and "unknown field 'bogus'" in done.stderr
    )
    m = Machine(tmp_path / "m", f"file://{tmp_path}/bucket").write()
    (tmp_path / "bucket").mkdir()
    m.key_path.chmod(0o640)
    done = _cli("--config", str(m.config_path), "run", "--once")
    assert done.returncode == 2 and f"fix with: chmod 600 {m.key_path}" in done.stderr
    m.key_path.unlink()
    done = _cli("--config", str(m.config_path), "run", "--once")
    assert done.returncode == 2 and "does not exist" in done.stderr and done.stderr.count("\n") == 1


def test_cli_once_status_and_no_boto3(tmp_path: Path) -> None:
    """run --once works and exits 0; status prints the applied state; the cron path never imports boto3."""
    (tmp_path / "bucket").mkdir()
    m = Machine(tmp_path / "m", f"file://{tmp_path}/bucket").write()
    probe = (
        f"import sys, runpy; sys.argv=['bosun-agent','--config',{str(m.config_path)!r},'run','--once'];"
        "import agent.cli as c\ntry: c.main()\nexcept SystemExit as e: code=e.code\n"
        "print('boto3' in sys.modules, 'botocore' in sys.modules, code)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert done.stdout.split() == ["False", "False", "0"], done.stderr
    status = _cli("--config", str(m.config_path), "status")
    assert status.returncode == 0 and "applied       generation 0" in status.stdout


ALLOWED_TOP = (
    "addresses, capacity, eligible, heartbeat_interval, jitter, key_epoch, key_file, machine, "
    "metrics_textfile, poll_interval, services, state_dir, store"
)
ALLOWED_SERVICE = "backends, commands, files, health, metrics, port, process, secrets, sessions"
ALLOWED_FILE = "check, format, key, mode, path, source, template, template_file"

SEVERAL_LEVELS = """\
machine: web-1
store: file:///tmp/bucket
key_file: {key}
poll: abc
jitter: 2
services:
  web:
    port: notaport
    bogus: 1
    files:
      - path: relative/x.json
        format: jinj
        template: "{{{{ x }}}}"
        extra: 1
      - mode: "9"
    process:
      command: 5
      stop_timeout: never
    health:
      http: 12
  api: 7
capacity:
  cpu: lots
"""

SEVERAL_LEVELS_PROBLEMS = [
    f"config: unknown field 'poll' (allowed: {ALLOWED_TOP})",
    "jitter: must be a fraction between 0 and 1, got 2.0",
    "services.web.port: expected integer, got string",
    f"services.web: unknown field 'bogus' (allowed: {ALLOWED_SERVICE})",
    "services.web.files[0].path: must be an absolute path, got 'relative/x.json'",
    "services.web.files[0].format: expected one of 'json', 'yaml', 'env', 'template', 'jinja', "
    "got 'jinj'",
    f"services.web.files[0]: unknown field 'extra' (allowed: {ALLOWED_FILE})",
    "services.web.files[1]: missing required field 'path'",
    "services.web.files[1].mode: expected an octal mode like '0644', got '9'",
    "services.web.process.command: expected string, got integer; "
    "services.web.process.command: expected array, got integer",
    "services.web.process.stop_timeout: expected a duration like 30, '30s' or '5m' "
    "(not negative), got 'never'",
    "services.web.health.http: expected string, got integer",
    "services.api: expected object, got integer",
    "capacity.cpu: expected number, got string",
]


def test_every_problem_at_every_level_in_one_run_in_document_order() -> None:
    """Unknown fields, wrong types and bad values at every level are all reported at once,
    in document order: an unknown field hides no sibling's type error, a bad service no
    other service's problems; a bad field's default standing in adds no problem of its own
    (format: jinj is not then "template needs format: jinja", a missing path not "must be
    an absolute path")."""
    raw = yaml.safe_load(SEVERAL_LEVELS.format(key="/etc/bosun/key"))
    with pytest.raises(ConfigError) as info:
        parse_config(raw, where="agent.yaml")
    lines = str(info.value).split("\n")
    assert lines[0] == f"agent.yaml: {len(SEVERAL_LEVELS_PROBLEMS)} problems:"
    assert [line.removeprefix("  ") for line in lines[1:]] == SEVERAL_LEVELS_PROBLEMS
    assert (info.value.key_file, info.value.machine) == ("/etc/bosun/key", "web-1")


def test_environment_problems_come_first_and_stand_beside_the_documents() -> None:
    """Every bad BOSUN_* override is reported (before the document's problems), and a bad
    duration does not make another check judge its default (heartbeat vs poll_interval)."""
    with pytest.raises(ConfigError) as info:
        parse_config(
            base(poll_interval="soon", heartbeat_interval=10, key_file=3),
            env={"BOSUN_JITTER": "lots", "BOSUN_KEY_EPOCH": "one"},
        )
    assert info.value.problems == (
        "BOSUN_KEY_EPOCH: expected a non-negative integer, got 'one'",
        "BOSUN_JITTER: expected a number between 0 and 1, got 'lots'",
        "key_file: expected string, got integer",
        "poll_interval: expected a duration like 30, '30s' or '5m' (not negative), got 'soon'",
    )
    assert info.value.key_file is None  # not known: check cannot look at it


def test_cli_check_reports_the_key_file_with_the_config_problems(tmp_path: Path) -> None:
    """`check` reports a bad config's problems and, after them, its key file's (missing,
    readable by others, or unreadable), in one run, exit 2; `run` stops at the config's."""
    key = tmp_path / "machine.key"
    config = tmp_path / "agent.yaml"
    config.write_text(SEVERAL_LEVELS.format(key=key))
    n = len(SEVERAL_LEVELS_PROBLEMS)
    done = _cli("--config", str(config), "check")
    lines = done.stderr.splitlines()
    assert done.returncode == 2, done.stderr
    assert lines[0] == f"bosun-agent: {config}: {n + 1} problems:"
    assert [line.removeprefix("  ") for line in lines[1:-1]] == SEVERAL_LEVELS_PROBLEMS
    assert lines[-1].startswith(f"  key file {key} does not exist (key_file in the config)")
    assert f"bosun enroll web-1 --key-out {key}" in lines[-1]
    key.write_text("x")
    key.chmod(0o644)
    done = _cli("--config", str(config), "check")
    assert done.returncode == 2 and done.stderr.splitlines()[-1] == (
        f"  key file {key} is accessible by group or others (mode 644); fix with: chmod 600 {key}"
    )
    key.unlink()
    key.mkdir(mode=0o700)  # there and private, but not readable as a file
    done = _cli("--config", str(config), "check")
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines()[-1] == f"  key file {key}: cannot read it: Is a directory"
    done = _cli("--config", str(config), "run", "--once")
    assert done.returncode == 2 and len(done.stderr.splitlines()) == n + 1
    assert "key file" not in done.stderr
