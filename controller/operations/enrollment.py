"""Enrollment: what a machine needs at boot, its derived key and an agent config.

`bosun enroll` derives the machine's key from the master key and its current epoch
(`wire.signing.derive_machine_key`) and renders it with an agent configuration skeleton in
one of three forms:

- `dir`: the machine's directory, agent.yaml naming its key file and the key (0600),
  written by `controller.operations.machine_dir` (the key is never put into the config);
- `env`: shell variables for a provisioning script (`BOSUN_MACHINE_KEY` is for the step that
  writes the key file; the agent reads its key only from `key_file`);
- `cloud-init`: a ready `#cloud-config` user-data that creates the `bosun` user, writes the
  config and the key file (0600, owner bosun), installs bosun with pip into /opt/bosun and
  enables the agent's systemd unit (the units are those in `infra/systemd/`).

The key only ever travels in file contents or standard output, never on a command line.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from wire.layout import MachineId, machine_id
from wire.signing import derive_machine_key, encode_key
from wire.store import parse_store_url

DEFAULT_KEY_FILE = "/etc/bosun/machine.key"
DEFAULT_CONFIG_FILE = "/etc/bosun/agent.yaml"
DEFAULT_STATE_DIR = "/var/lib/bosun"
INSTALL_DIR = "/opt/bosun"
PLACEHOLDER_STORE = "s3://BUCKET/PREFIX?region=REGION"
AGENT_ENV_FILE = "/etc/bosun/agent.env"
CREDENTIAL_VARIABLES = frozenset(
    {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION"}
)
FORMATS = ("dir", "env", "cloud-init")
SCHEDULES = ("daemon", "timer")


@dataclass(frozen=True, slots=True)
class AgentSettings:
    """Defaults written into a new agent config (intervals in seconds, jitter a fraction)."""

    poll_interval: float = 30
    heartbeat_interval: float = 300
    jitter: float = 0.1
    key_file: str = DEFAULT_KEY_FILE
    state_dir: str = DEFAULT_STATE_DIR


@dataclass(frozen=True, slots=True)
class Enrollment:
    machine: MachineId
    epoch: int
    eligible: tuple[str, ...]
    store: str | None
    key: bytes = field(repr=False)


def enroll(
    master: bytes, machine: str, *, eligible: Iterable[str], epoch: int, store: str | None
) -> Enrollment:
    """Derive `machine`'s key at `epoch`; validate the eligible service names and store URL."""
    name = machine_id(machine)
    services = tuple(dict.fromkeys(s.strip() for s in eligible if s.strip()))
    for service in services:
        machine_id(service)  # service names follow the machine id rules
    if store is not None:
        parse_store_url(store)
    return Enrollment(name, epoch, services, store, derive_machine_key(master, name, epoch))


def agent_config(e: Enrollment, settings: AgentSettings = AgentSettings()) -> dict[str, Any]:
    """The agent config skeleton as data (the fixed top-level keys of /etc/bosun/agent.yaml)."""
    return {
        "machine": e.machine,
        "store": e.store or PLACEHOLDER_STORE,
        "key_file": settings.key_file,
        "key_epoch": e.epoch,
        "state_dir": settings.state_dir,
        "eligible": list(e.eligible),
        "poll_interval": settings.poll_interval,
        "heartbeat_interval": settings.heartbeat_interval,
        "jitter": settings.jitter,
        "addresses": {"internal": "auto", "external": "auto"},
        "capacity": {},
        # one (empty) entry per eligible service: the agent requires each to be described
        "services": {service: {} for service in e.eligible},
    }


_COMMENTS = {
    "store": "the bucket the agent reports to and pulls from (see docs/deploy.md)",
    "key_file": "this machine's key: mode 0600, owner bosun; never in this file",
    "key_epoch": "bumped by `bosun revoke`; re-enroll to get the new key",
    "eligible": "services the controller may assign to this machine",
    "poll_interval": "seconds between pulls of desired/<machine>.json",
    "heartbeat_interval": "seconds after which an unchanged snapshot is sent anyway",
    "jitter": "fraction of poll_interval added to or taken from each wait at random (0-1)",
}

_SERVICES_EXAMPLE = """\
# How this machine applies each service it is eligible for (every eligible service needs
# an entry). Commands come only from this file, never from the bucket. Example:
# services:
#   web:
#     files:
#       - path: /etc/web/config.json
#         format: json
#     commands:
#       install: /usr/local/bin/install-web
#       reload: systemctl reload web
"""


def _scalar(value: Any) -> str:
    """One YAML flow value (JSON is valid YAML and quotes every string safely)."""
    return json.dumps(value)


def render_agent_yaml(config: Mapping[str, Any]) -> str:
    """The agent config as commented YAML; parses back to exactly `config`."""
    lines = [f"# bosun-agent configuration for {config['machine']} (written by `bosun enroll`)"]
    for key, value in config.items():
        comment = _COMMENTS.get(key)
        if comment:
            lines.append(f"# {comment}")
        if key == "services":
            lines.append(_SERVICES_EXAMPLE.rstrip("\n"))
        if isinstance(value, dict) and value:
            lines.append(f"{key}:")
            lines.extend(f"  {k}: {_scalar(v)}" for k, v in value.items())
        else:
            lines.append(f"{key}: {_scalar(value)}")
    return "\n".join(lines) + "\n"


def render_env(e: Enrollment, settings: AgentSettings = AgentSettings()) -> str:
    config = agent_config(e, settings)
    values = {
        "BOSUN_MACHINE": e.machine,
        "BOSUN_STORE": config["store"],
        "BOSUN_KEY_FILE": settings.key_file,
        "BOSUN_KEY_EPOCH": str(e.epoch),
        "BOSUN_STATE_DIR": settings.state_dir,
        "BOSUN_ELIGIBLE": ",".join(e.eligible),
        "BOSUN_MACHINE_KEY": encode_key(e.key),
    }
    return "".join(f"{k}={shlex.quote(v)}\n" for k, v in values.items())


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (file contents) as readable literal blocks."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _represent_str)


def check_credentials_env(text: str, *, source: str = "credentials file") -> str:
    """Validate an env file of S3 credentials (`NAME=value` lines, AWS_* names only)."""
    names = set()
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep or name not in CREDENTIAL_VARIABLES or not value.strip():
            raise ValueError(
                f"{source}:{number}: expected NAME=value with NAME one of "
                f"{', '.join(sorted(CREDENTIAL_VARIABLES))}"
            )
        names.add(name)
    missing = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} - names
    if missing:
        raise ValueError(f"{source}: missing {', '.join(sorted(missing))}")
    return text if text.endswith("\n") else text + "\n"


def render_cloud_init(
    e: Enrollment,
    units: Mapping[str, str],
    settings: AgentSettings = AgentSettings(),
    *,
    schedule: str = "daemon",
    pip_spec: str | None = None,
    credentials_env: str | None = None,
) -> str:
    """`#cloud-config` user-data; `units` maps unit file names to their text.

    `credentials_env` (checked by `check_credentials_env`) becomes /etc/bosun/agent.env,
    root-only: systemd reads it and hands the variables to the agent.
    """
    if e.store is None:
        raise ValueError("cloud-init needs the store URL: pass --store s3://bucket[/prefix]")
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")
    enable = "bosun-agent.service" if schedule == "daemon" else "bosun-agent-once.timer"
    if not pip_spec:
        raise ValueError(
            "cloud-init needs --pip-spec: what the machine installs Bosun from, e.g. a wheel "
            "URL (https://.../bosun-0.1.0-py3-none-any.whl, built with `pip wheel --no-deps "
            ".`) or git+https://git.example.com/bosun@v0.1.0 (the 'bosun' on PyPI is "
            "another project)"
        )
    spec = pip_spec
    files: list[dict[str, Any]] = [
        {
            "path": DEFAULT_CONFIG_FILE,
            "owner": "bosun:bosun",
            "permissions": "0640",
            "defer": True,
            "content": render_agent_yaml(agent_config(e, settings)),
        },
        {
            "path": settings.key_file,
            "owner": "bosun:bosun",
            "permissions": "0600",
            "defer": True,
            "content": encode_key(e.key) + "\n",
        },
    ]
    if credentials_env is not None:
        files.append(
            {
                "path": AGENT_ENV_FILE,
                "owner": "root:root",
                "permissions": "0600",
                "content": check_credentials_env(credentials_env),
            }
        )
    files += [
        {
            "path": f"/etc/systemd/system/{name}",
            "owner": "root:root",
            "permissions": "0644",
            "content": text,
        }
        for name, text in sorted(units.items())
    ]
    doc = {
        "users": [
            "default",
            {
                "name": "bosun",
                "system": True,
                "shell": "/usr/sbin/nologin",
                "homedir": settings.state_dir,
                "no_create_home": True,
                "lock_passwd": True,
            },
        ],
        "write_files": files,
        "runcmd": [
            [
                "sh",
                "-c",
                "command -v apt-get >/dev/null && { apt-get update -q; "
                "apt-get install -y python3-venv; } || true",
            ],
            [  # fail here, in the cloud-init log, rather than in pip's resolver
                "python3",
                "-c",
                "import sys; sys.exit(sys.version_info < (3, 11) and "
                "'bosun needs Python >= 3.11 as python3, found ' + sys.version.split()[0])",
            ],
            ["python3", "-m", "venv", INSTALL_DIR],
            [f"{INSTALL_DIR}/bin/pip", "install", "--quiet", spec],
            ["install", "-d", "-o", "bosun", "-g", "bosun", "-m", "0700", settings.state_dir],
            ["systemctl", "daemon-reload"],
            ["systemctl", "enable", "--now", enable],
        ],
    }
    header = (
        "#cloud-config\n"
        f"# Bosun enrollment of {e.machine} (key epoch {e.epoch}), written by `bosun enroll`.\n"
        "# It contains the machine key: treat this user-data as a secret (see docs/deploy.md).\n"
    )
    return header + yaml.dump(
        doc, Dumper=_BlockDumper, sort_keys=False, default_flow_style=False, width=1000
    )


# ---- systemd units (identical to infra/systemd/, a test keeps them equal) ----

_HARDENING = """\
# Journal logging
StandardOutput=journal
StandardError=journal
Environment=PYTHONUNBUFFERED=1
# Sandbox: a dedicated user, no privileges, a read-only system except the state directory
User=bosun
Group=bosun
UMask=0077
StateDirectory=bosun
StateDirectoryMode=0700
NoNewPrivileges=yes
CapabilityBoundingSet=
AmbientCapabilities=
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictSUIDSGID=yes
RestrictRealtime=yes
RestrictNamespaces=yes
LockPersonality=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
"""

_AGENT_SERVICE = (
    """\
# Bosun agent as a daemon: reports this machine's state to the bucket and applies the
# signed desired state the controller wrote for it. Installed by `bosun enroll -o cloud-init`.
# Scheduled style instead: disable this unit and enable bosun-agent-once.timer.
[Unit]
Description=Bosun agent (daemon)
Wants=network-online.target
After=network-online.target
StartLimitIntervalSec=0

[Service]
Type=exec
# Off AWS: the per-machine S3 credentials, AWS_ACCESS_KEY_ID=... and
# AWS_SECRET_ACCESS_KEY=... (mode 0600, root); read by systemd, not by the agent.
EnvironmentFile=-/etc/bosun/agent.env
ExecStart=/opt/bosun/bin/bosun-agent run
# SIGTERM goes to the agent only: it finishes its cycle (hooks included) and reports
# "stopping". Processes its `process` driver supervises run in their own session and are
# meant to outlive an agent restart (the agent adopts them again), so they are not killed.
KillMode=process
TimeoutStopSec=90s
Restart=on-failure
RestartSec=30s
SyslogIdentifier=bosun-agent
"""
    + _HARDENING
    + """\
# Files the agent's drivers render live outside its state directory: allow each target
# directory in a drop-in (systemctl edit bosun-agent.service), for example:
#   [Service]
#   ReadWritePaths=/etc/myapp

[Install]
WantedBy=multi-user.target
"""
)

_AGENT_ONCE_SERVICE = (
    """\
# One Bosun agent cycle (report, pull, verify, apply), started by bosun-agent-once.timer.
[Unit]
Description=Bosun agent (one cycle)
Wants=network-online.target
After=network-online.target
# One style per machine: the daemon and the timer never run together.
Conflicts=bosun-agent.service

[Service]
Type=oneshot
# Off AWS: the per-machine S3 credentials, AWS_ACCESS_KEY_ID=... and
# AWS_SECRET_ACCESS_KEY=... (mode 0600, root); read by systemd, not by the agent.
EnvironmentFile=-/etc/bosun/agent.env
ExecStart=/opt/bosun/bin/bosun-agent run --once
TimeoutStartSec=120s
# Processes the `process` driver supervises outlive the cycle that started them.
KillMode=process
SyslogIdentifier=bosun-agent
"""
    + _HARDENING
    + """\
# Files the agent's drivers render: allow each target directory in a drop-in, e.g.
#   ReadWritePaths=/etc/myapp
"""
)

_AGENT_ONCE_TIMER = """\
# Runs bosun-agent-once.service every minute, spread over 20 s so a fleet's requests do
# not arrive at the bucket in the same second.
[Unit]
Description=Bosun agent cycle every minute

[Timer]
OnBootSec=15s
OnUnitActiveSec=60s
RandomizedDelaySec=20s
AccuracySec=1s

[Install]
WantedBy=timers.target
"""

AGENT_UNITS: dict[str, str] = {
    "bosun-agent.service": _AGENT_SERVICE,
    "bosun-agent-once.service": _AGENT_ONCE_SERVICE,
    "bosun-agent-once.timer": _AGENT_ONCE_TIMER,
}
