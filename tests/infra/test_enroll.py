"""`bosun enroll`: the derived key and an agent config, as YAML, env and cloud-init user-data."""

from __future__ import annotations

import shlex
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from controller.cli import cli
from controller.operations.enrollment import AGENT_UNITS, agent_config, enroll
from controller.shell.key_epochs import bump_epoch
from wire.signing import (
    derive_machine_key,
    encode_key,
    generate_master_key,
    read_key_file,
    write_key_file,
)
from wire.store import DirectoryStore

ROOT = Path(__file__).resolve().parents[2]
FIXED_KEYS = [
    "machine",
    "store",
    "key_file",
    "key_epoch",
    "state_dir",
    "eligible",
    "poll_interval",
    "heartbeat_interval",
    "jitter",
    "addresses",
    "capacity",
    "services",
]


@pytest.fixture
def master(tmp_path: Path) -> tuple[Path, bytes]:
    key = generate_master_key()
    path = tmp_path / "master.key"
    write_key_file(path, key)
    return path, key


def _run(*args: str) -> str:
    done = CliRunner().invoke(cli, ["enroll", *args], catch_exceptions=False)
    assert done.exit_code == 0, done.output
    return done.stdout


def _enroll_dir(tmp_path: Path, *args: str) -> tuple[dict[str, Any], Path, str]:
    """Run `bosun enroll` (-o dir) into tmp_path/machine; the config and the key's path."""
    target = tmp_path / "machine"
    out = _run(*args, "--dir", str(target))
    config = yaml.safe_load((target / "agent.yaml").read_text())
    return config, Path(config["key_file"]), out


def test_dir_form_writes_key_and_fixed_config(master: tuple[Path, bytes], tmp_path: Path) -> None:
    """-o dir (the default): agent.yaml with the fixed keys names the 0600 key file beside it."""
    path, key = master
    config, key_file, out = _enroll_dir(
        tmp_path,
        "web-1",
        "--eligible",
        "web,router",
        "--master-key",
        str(path),
        "--epoch",
        "4",
        "--store",
        "s3://fleet/prod?region=eu-west-1",
    )
    assert key_file == tmp_path / "machine" / "machine.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert read_key_file(key_file) == derive_machine_key(key, "web-1", 4)
    assert list(config) == FIXED_KEYS
    assert config["machine"] == "web-1" and config["key_epoch"] == 4
    assert config["eligible"] == ["web", "router"]
    assert config["store"] == "s3://fleet/prod?region=eu-west-1"
    assert config["state_dir"] == "/var/lib/bosun"
    assert config["addresses"] == {"internal": "auto", "external": "auto"}
    assert config["capacity"] == {}
    assert config["services"] == {"web": {}, "router": {}}
    text = (tmp_path / "machine" / "agent.yaml").read_text()
    assert "# services:" in text  # the commented example
    secret = encode_key(read_key_file(key_file))
    assert secret not in text and secret not in out
    assert "bosun-agent run --once --config" in out


def test_epoch_comes_from_the_store(master: tuple[Path, bytes], tmp_path: Path) -> None:
    """Without --epoch the machine's current epoch is read from control/keys.json; --epoch wins."""
    path, key = master
    bucket = tmp_path / "bucket"
    store = DirectoryStore(str(bucket))
    bump_epoch(store, key, "web-1")
    bump_epoch(store, key, "web-1")
    config, key_file, _ = _enroll_dir(
        tmp_path, "web-1", "--master-key", str(path), "--store", f"file://{bucket}"
    )
    assert config["key_epoch"] == 2
    assert read_key_file(key_file) == derive_machine_key(key, "web-1", 2)
    other, _, _ = _enroll_dir(
        tmp_path, "web-2", "--master-key", str(path), "--store", f"file://{bucket}", "--force"
    )
    assert other["key_epoch"] == 0
    pinned, _, _ = _enroll_dir(
        tmp_path,
        "web-1",
        "--master-key",
        str(path),
        "--epoch",
        "1",
        "--store",
        f"file://{bucket}",
        "--force",
    )
    assert pinned["key_epoch"] == 1


def test_key_out_is_the_configs_key_file(master: tuple[Path, bytes], tmp_path: Path) -> None:
    """--key-out writes the key 0600 there and the config's key_file names that path."""
    path, key = master
    target = tmp_path / "keys" / "web-1.key"
    config, key_file, out = _enroll_dir(
        tmp_path, "web-1", "--master-key", str(path), "--key-out", str(target)
    )
    assert key_file == target and config["key_file"] == str(target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert read_key_file(target) == derive_machine_key(key, "web-1", 0)
    assert encode_key(read_key_file(target)) not in out
    assert not (tmp_path / "machine" / "machine.key").exists()


def test_master_key_from_the_environment(master: tuple[Path, bytes], tmp_path: Path) -> None:
    """BOSUN_MASTER_KEY names the master key file, as for the controller."""
    path, key = master
    done = CliRunner().invoke(
        cli,
        ["enroll", "web-1", "--epoch", "0", "--dir", str(tmp_path / "m")],
        env={"BOSUN_MASTER_KEY": str(path)},
    )
    assert done.exit_code == 0, done.output
    assert read_key_file(tmp_path / "m" / "machine.key") == derive_machine_key(key, "web-1", 0)


def test_eligible_is_checked_against_the_applied_spec(
    master: tuple[Path, bytes], tmp_path: Path
) -> None:
    """An --eligible name that is neither a service nor a pool of the applied spec is refused
    (nothing written); pools are accepted; with no spec applied it is a warning."""
    from controller.spec.load import load_yaml
    from controller.spec.revisions import apply

    path, _ = master
    bucket = tmp_path / "bucket"
    store = DirectoryStore(str(bucket))
    url = f"file://{bucket}"
    runner = CliRunner()
    args = ["enroll", "web-1", "--master-key", str(path), "--store", url, "--dir"]
    done = runner.invoke(cli, [*args, str(tmp_path / "a"), "--eligible", "web"])
    assert done.exit_code == 0 and "no spec applied" in done.stderr, done.output
    spec = "services:\n  web: {version: '1.0', count: 1, pools: [general]}\n"
    apply(store, load_yaml(spec), now=1.0)
    done = runner.invoke(cli, [*args, str(tmp_path / "b"), "--eligible", "web,lbb"])
    assert done.exit_code != 0
    assert "'lbb' is not a service or pool of the applied spec" in str(done.exception)
    assert not (tmp_path / "b").exists()
    done = runner.invoke(cli, [*args, str(tmp_path / "c"), "--eligible", "web,general"])
    assert done.exit_code == 0, done.output


def test_existing_config_is_kept(master: tuple[Path, bytes], tmp_path: Path) -> None:
    """A second enroll into the same directory refuses to replace agent.yaml without --force."""
    path, _ = master
    _enroll_dir(tmp_path, "web-1", "--master-key", str(path), "--epoch", "0")
    done = CliRunner().invoke(
        cli, ["enroll", "web-1", "--master-key", str(path), "--dir", str(tmp_path / "machine")]
    )
    assert done.exit_code != 0 and "already exists" in str(done.exception)
    assert "--force" in str(done.exception)


def test_env_form(master: tuple[Path, bytes]) -> None:
    """-o env prints shell-quoted variables that a provisioning script can source."""
    path, key = master
    out = _run(
        "db-1",
        "--eligible",
        "db",
        "--master-key",
        str(path),
        "-o",
        "env",
        "--epoch",
        "0",
        "--store",
        "s3://fleet?endpoint=http://10.0.0.5:8333&region=us-east-1",
    )
    values = dict(shlex.split(line)[0].split("=", 1) for line in out.splitlines())
    assert values["BOSUN_MACHINE"] == "db-1"
    assert values["BOSUN_STORE"] == "s3://fleet?endpoint=http://10.0.0.5:8333&region=us-east-1"
    assert values["BOSUN_MACHINE_KEY"] == encode_key(derive_machine_key(key, "db-1", 0))
    assert values["BOSUN_ELIGIBLE"] == "db" and values["BOSUN_KEY_EPOCH"] == "0"


def test_bad_inputs_are_refused(
    master: tuple[Path, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bad machine ids, service names, store URLs and readable master keys exit with a message."""
    path, _ = master
    runner = CliRunner()
    monkeypatch.chdir(tmp_path)  # nothing may be written, but never into the repository
    for args in (
        ["../etc", "--master-key", str(path)],
        ["web-1", "--eligible", "Web Server", "--master-key", str(path)],
        ["web-1", "--master-key", str(path), "--epoch", "0", "--store", "ftp://x"],
        ["web-1", "--master-key", str(path), "-o", "cloud-init"],
    ):
        done = runner.invoke(cli, ["enroll", *args])
        assert done.exit_code != 0, args
    # cloud-init without --pip-spec: 'bosun' on PyPI is another project, so no default
    done = runner.invoke(cli, ["enroll", "web-1", "--master-key", str(path), "-o", "cloud-init",
                               "--epoch", "0", "--store", "s3://fleet"])  # fmt: skip
    assert done.exit_code != 0 and "--pip-spec" in done.output + str(done.exception), done.output
    path.chmod(0o644)
    done = runner.invoke(cli, ["enroll", "web-1", "--master-key", str(path)])
    assert done.exit_code != 0 and "chmod 600" in str(done.exception)


def _cloud_init(master: tuple[Path, bytes], *extra: str) -> tuple[str, dict[str, Any]]:
    path, _ = master
    out = _run(
        "web-1",
        "--eligible",
        "web,router",
        "--master-key",
        str(path),
        "-o",
        "cloud-init",
        "--epoch",
        "0",
        "--store",
        "s3://fleet/prod?region=eu-west-1",
        "--pip-spec",
        "bosun==0.1.0",
        *extra,
    )
    return out, yaml.safe_load(out)


def test_cloud_init_snippet(master: tuple[Path, bytes]) -> None:
    """cloud-init user-data writes a valid agent config, the 0600 key, the units, and enables the daemon."""
    _, key = master
    out, doc = _cloud_init(master)
    assert out.startswith("#cloud-config\n")
    files = {f["path"]: f for f in doc["write_files"]}
    key_file = files["/etc/bosun/machine.key"]
    assert key_file["content"].strip() == encode_key(derive_machine_key(key, "web-1", 0))
    assert key_file["permissions"] == "0600" and key_file["owner"] == "bosun:bosun"
    assert key_file["defer"] is True  # written after the bosun user exists
    config_file = files["/etc/bosun/agent.yaml"]
    config = yaml.safe_load(config_file["content"])
    assert list(config) == FIXED_KEYS
    expected = agent_config(
        enroll(
            key,
            "web-1",
            eligible=["web", "router"],
            epoch=0,
            store="s3://fleet/prod?region=eu-west-1",
        )
    )
    assert config == expected
    for name, text in AGENT_UNITS.items():
        assert files[f"/etc/systemd/system/{name}"]["content"] == text
    user = next(u for u in doc["users"] if isinstance(u, dict))
    assert user["name"] == "bosun" and user["system"] is True
    commands = [" ".join(c) for c in doc["runcmd"]]
    assert "/opt/bosun/bin/pip install --quiet bosun==0.1.0" in commands
    assert commands[-1] == "systemctl enable --now bosun-agent.service"
    secret = key_file["content"].strip()
    assert out.count(secret) == 1  # only as the key file's content: never in a command line
    assert not any(secret in c for c in commands)


def test_cloud_init_timer_schedule(master: tuple[Path, bytes]) -> None:
    """--schedule timer enables the once-a-minute timer instead of the daemon."""
    _, doc = _cloud_init(master, "--schedule", "timer")
    assert doc["runcmd"][-1] == ["systemctl", "enable", "--now", "bosun-agent-once.timer"]


def test_cloud_init_passes_cloud_init_schema(master: tuple[Path, bytes], tmp_path: Path) -> None:
    """The user-data validates against cloud-init's own schema (when cloud-init is installed)."""
    binary = shutil.which("cloud-init")
    if binary is None:
        pytest.skip("cloud-init is not installed (apt-get install cloud-init)")
    out, _ = _cloud_init(master)
    user_data = tmp_path / "user-data"
    user_data.write_text(out)
    done = subprocess.run(
        [binary, "schema", "--config-file", str(user_data)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and "Valid" in done.stdout, done.stdout + done.stderr


def test_embedded_units_equal_infra_files() -> None:
    """The units built into `bosun enroll` are byte-for-byte those in infra/systemd/."""
    for name, text in AGENT_UNITS.items():
        assert (ROOT / "infra" / "systemd" / name).read_text() == text, name


def _agent_loader() -> Any:
    try:
        from agent.config import load_config
    except ImportError as exc:  # the agent package lands separately
        pytest.skip(f"agent.config is not available yet: {exc}")
    return load_config


def test_cloud_init_config_loads_in_the_agent(master: tuple[Path, bytes], tmp_path: Path) -> None:
    """The agent.yaml inside the cloud-init user-data is accepted by the agent's own loader."""
    load_config = _agent_loader()
    _, doc = _cloud_init(master)
    files = {f["path"]: f for f in doc["write_files"]}
    path = tmp_path / "agent.yaml"
    path.write_text(files["/etc/bosun/agent.yaml"]["content"])
    cfg = load_config(path, env={})
    assert cfg.machine == "web-1" and cfg.store == "s3://fleet/prod?region=eu-west-1"
    assert tuple(cfg.eligible) == ("web", "router") and set(cfg.services) == {"web", "router"}
    assert cfg.key_file == "/etc/bosun/machine.key" and cfg.key_epoch == 0


def test_services_example_is_a_valid_agent_config(
    master: tuple[Path, bytes], tmp_path: Path
) -> None:
    """Uncommenting the services example in the skeleton gives a config the agent accepts."""
    load_config = _agent_loader()
    path, _ = master
    _enroll_dir(
        tmp_path, "web-1", "--eligible", "web", "--master-key", str(path), "--epoch", "0",
        "--store", "s3://fleet",
    )  # fmt: skip
    config_text = (tmp_path / "machine" / "agent.yaml").read_text()
    example = "\n".join(
        line[2:]
        for line in config_text.splitlines()
        if line.startswith("#   ") or line.startswith("# services:")
    )
    config = yaml.safe_load(config_text)
    del config["services"]
    target = tmp_path / "agent.yaml"
    target.write_text(yaml.safe_dump(config) + example + "\n")
    cfg = load_config(target, env={})
    assert cfg.services["web"].files[0].path == "/etc/web/config.json"


def test_cloud_init_carries_credentials_env(master: tuple[Path, bytes], tmp_path: Path) -> None:
    """--credentials-env becomes a root-only /etc/bosun/agent.env; a malformed file is refused."""
    creds = tmp_path / "web-1.env"
    creds.write_text("AWS_ACCESS_KEY_ID=AKIAEXAMPLE\nAWS_SECRET_ACCESS_KEY=s3cr3t\n")
    _, doc = _cloud_init(master, "--credentials-env", str(creds))
    files = {f["path"]: f for f in doc["write_files"]}
    env_file = files["/etc/bosun/agent.env"]
    assert env_file["permissions"] == "0600" and env_file["owner"] == "root:root"
    assert env_file["content"] == creds.read_text()
    assert "EnvironmentFile=-/etc/bosun/agent.env" in AGENT_UNITS["bosun-agent.service"]
    creds.write_text("AWS_ACCESS_KEY_ID=AKIAEXAMPLE\nrm -rf /\n")
    path, _ = master
    bad = CliRunner().invoke(
        cli,
        [
            "enroll",
            "web-1",
            "--master-key",
            str(path),
            "--epoch",
            "0",
            "-o",
            "cloud-init",
            "--store",
            "s3://fleet",
            "--credentials-env",
            str(creds),
        ],
    )
    assert bad.exit_code == 2 and "expected NAME=value" in bad.output


def test_unreadable_epochs_say_how_to_proceed(master: tuple[Path, bytes]) -> None:
    """When control/keys.json cannot be read, enroll fails with a hint to pass --epoch."""
    path, _ = master
    done = CliRunner().invoke(
        cli,
        ["enroll", "web-1", "--master-key", str(path), "--store", "s3://fleet?region=us-east-1"],
    )
    assert done.exit_code != 0
    assert "pass --epoch N" in str(done.exception)
