"""systemd units and cron lines: valid for systemd, hardened, and wired to the --once modes."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "infra" / "systemd"
CRON = ROOT / "infra" / "cron" / "bosun"
SERVICES = sorted(p.name for p in UNITS.glob("*.service"))
TIMERS = sorted(p.name for p in UNITS.glob("*.timer"))
HARDENING = {
    "User": "bosun",
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "StateDirectory": "bosun",
    "StandardOutput": "journal",
}


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((UNITS / name).read_text())
    return parser


def _installable(tmp_path: Path) -> Path:
    """The units with /opt/bosun/bin pointing at this venv (verify checks ExecStart exists)."""
    out = tmp_path / "units"
    out.mkdir()
    for unit in UNITS.iterdir():
        text = unit.read_text().replace("/opt/bosun/bin/", f"{Path(sys.executable).parent}/")
        (out / unit.name).write_text(text)
    return out


def test_expected_units_exist() -> None:
    """Daemon and timer styles exist for both the agent and the controller."""
    assert SERVICES == [
        "bosun-agent-once.service",
        "bosun-agent.service",
        "bosun-controller-once.service",
        "bosun-controller.service",
    ]
    assert TIMERS == ["bosun-agent-once.timer", "bosun-controller-once.timer"]


@pytest.mark.parametrize("name", SERVICES)
def test_services_are_hardened(name: str) -> None:
    """Every service runs as bosun, sandboxed, logs to the journal, and restarts or is a oneshot."""
    service = _unit(name)["Service"]
    for key, value in HARDENING.items():
        assert service.get(key) == value, f"{name}: {key}"
    assert service.get("CapabilityBoundingSet") == ""
    if name.endswith("-once.service"):
        assert service["Type"] == "oneshot" and "once" in service["ExecStart"]
        assert "Conflicts" in _unit(name)["Unit"]
    else:
        assert service["Restart"] == "on-failure"
        assert service["KillMode"] == ("process" if "agent" in name else "mixed")


def test_controller_master_key_is_a_credential() -> None:
    """The controller gets the master key through LoadCredential, never a world-readable path."""
    for name in ("bosun-controller.service", "bosun-controller-once.service"):
        service = _unit(name)["Service"]
        assert service["LoadCredential"] == "master.key:/etc/bosun/master.key"
        assert "${CREDENTIALS_DIRECTORY}/master.key" in service["ExecStart"]


@pytest.mark.parametrize("name", TIMERS)
def test_timers_trigger_their_once_service(name: str, tmp_path: Path) -> None:
    """Each timer has a matching -once.service and installs into timers.target."""
    assert (UNITS / name.replace(".timer", ".service")).exists()
    assert _unit(name)["Install"]["WantedBy"] == "timers.target"


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    """`systemd-analyze verify` accepts every unit without a single warning."""
    binary = shutil.which("systemd-analyze")
    if binary is None:
        pytest.skip("systemd-analyze is not installed")
    units = _installable(tmp_path)
    done = subprocess.run(
        [binary, "verify", "--man=no", *sorted(str(p) for p in units.iterdir())],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and not done.stderr.strip() and not done.stdout.strip(), (
        done.stdout + done.stderr
    )


def test_systemd_analyze_verify_catches_mistakes(tmp_path: Path) -> None:
    """The verify check above can fail: a misspelt directive is reported."""
    binary = shutil.which("systemd-analyze")
    if binary is None:
        pytest.skip("systemd-analyze is not installed")
    units = _installable(tmp_path)
    unit = units / "bosun-agent.service"
    unit.write_text(unit.read_text().replace("ProtectSystem=strict", "ProtectSytem=strict"))
    done = subprocess.run(
        [binary, "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "ProtectSytem" in done.stderr


@pytest.mark.parametrize("name", [s for s in SERVICES])
def test_systemd_exposure_is_low(name: str, tmp_path: Path) -> None:
    """`systemd-analyze security` rates every service's exposure at 2.5 or below."""
    binary = shutil.which("systemd-analyze")
    if binary is None:
        pytest.skip("systemd-analyze is not installed")
    units = _installable(tmp_path)
    done = subprocess.run(
        [binary, "security", "--offline=true", "--no-pager", str(units / name)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout)
    if found is None:
        pytest.skip(
            f"systemd-analyze security --offline is not supported here: {done.stderr[:200]}"
        )
    assert float(found.group(1)) <= 2.5, done.stdout[-2000:]


def test_cron_lines() -> None:
    """The cron file runs the --once modes as bosun, without overlaps, with no bare '%'."""
    text = CRON.read_text()
    assert "%" not in text  # cron turns an unescaped % into a newline
    jobs = [
        line
        for line in text.splitlines()
        if line and not line.startswith("#") and "=" not in line.split()[0]
    ]
    assert len(jobs) == 2
    for job in jobs:
        fields = job.split(None, 6)
        assert all(re.fullmatch(r"[\d*/,-]+", f) for f in fields[:5]), job
        assert fields[5] == "bosun"
        assert "flock -n /var/lib/bosun/" in fields[6] and "logger -t bosun-" in fields[6]
    assert "bosun-agent run --once" in jobs[0]
    assert "bosun controller once" in jobs[1]
