"""The demo's cluster on disk: run directory, bucket, master key, machines, specs.

<dir>/bucket/            the bucket (directory backend; with --s3 it lives in SeaweedFS
                         under <dir>/seaweedfs/ and this folder is not used)
<dir>/master.key         the controller's master key (0600)
<dir>/machines/<m>/      one machine: agent.yaml, machine.key (0600), state/, logs
<dir>/controller/        the controller's local lock and lease view
<dir>/logs/              output of every process the demo started
<dir>/specs/             every spec the demo applied, as YAML
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from controller.operations.enrollment import AgentSettings, agent_config, enroll
from controller.shell.key_epochs import keygen, load_master_key
from devkit.demo.balancers import lb_service
from devkit.demo.procs import start_ticks
from devkit.local_s3 import free_port
from wire.signing import write_key_file

MARKER = ".bosun-demo"
LB_MACHINES = ("lb-1",)
# 4 active + 3 warm standby: a release takes its new-version machines from standby first,
# so at most one serving machine is ever switched in place at a time
WEB_MACHINES = tuple(f"web-{i}" for i in range(1, 8))
WEB_COUNT = 4
GOOD, BAD = "2.0", "2.0-bad"
BAD_FAIL_RATE = 0.3


@dataclass(frozen=True, slots=True)
class Timing:
    """How fast everything moves (seconds)."""

    every: float  # controller cycle
    poll: float  # agent poll (the agent's minimum is 1 s)
    heartbeat: float  # agent heartbeat
    heartbeat_timeout: float  # spec: a silent machine is lost after this
    dwell: float  # how long each phase shows steady traffic once its end state is reached
    rate: float  # client requests per second
    bake: float  # rollout bake per step
    phase_timeout: float  # bound on every wait


NORMAL = Timing(
    every=1.0,
    poll=1.0,
    heartbeat=2.0,
    heartbeat_timeout=6.0,
    dwell=4.0,
    rate=40.0,
    bake=5.0,
    phase_timeout=60.0,
)
FAST = Timing(
    every=0.5,
    poll=1.0,
    heartbeat=1.0,
    heartbeat_timeout=3.0,
    dwell=1.0,
    rate=30.0,
    bake=2.0,
    phase_timeout=30.0,
)


@dataclass(frozen=True, slots=True)
class Machine:
    name: str
    eligible: tuple[str, ...]
    home: Path
    ports: dict[str, int] = field(default_factory=dict)

    @property
    def config_path(self) -> Path:
        return self.home / "agent.yaml"

    @property
    def key_path(self) -> Path:
        return self.home / "machine.key"

    @property
    def state_dir(self) -> Path:
        return self.home / "state"

    @property
    def desired_file(self) -> Path:
        return self.home / "web-desired.json"

    @property
    def peers_file(self) -> Path:
        return self.home / "lb-peers.json"


def repo_root() -> Path:
    """The folder holding `examples/` (the checkout this bosun runs from, or the cwd)."""
    here = Path(__file__).resolve().parents[2]
    for candidate in (here, Path.cwd()):
        if (candidate / "examples" / "app" / "server.py").is_file():
            return candidate
    raise FileNotFoundError(
        "examples/app/server.py not found next to this bosun or in the current directory: "
        "run the demo from a checkout of the repository (scripts/demo does)"
    )


def prepare_dir(path: Path) -> Path:
    """An empty run directory; a previous demo's directory is wiped, anything else refused
    (also a demo's that is still running, e.g. with --keep-running)."""
    path = path.resolve()
    if path.exists():
        if not path.is_dir():
            raise FileExistsError(f"{path} exists and is not a directory: choose another --dir")
        marker = path / MARKER
        if any(path.iterdir()) and not marker.exists():
            raise FileExistsError(
                f"{path} is not empty and was not made by `scripts/demo`: choose another --dir "
                "(or remove it)"
            )
        owner = _owner(marker)
        if owner is not None:
            raise FileExistsError(
                f"{path} belongs to a demo that is still running (pid {owner}): stop it "
                "(Ctrl-C) or choose another --dir"
            )
        shutil.rmtree(path)
    path.mkdir(parents=True)
    (path / MARKER).write_text(f"{os.getpid()} {start_ticks(os.getpid())}\n")
    return path


def _owner(marker: Path) -> int | None:
    """The pid of the live demo that made this directory, if it still runs."""
    try:
        pid_text, ticks_text = marker.read_text().split()[:2]
        pid = int(pid_text)
    except (OSError, ValueError):
        return None
    if pid == os.getpid():
        return None
    ticks = start_ticks(pid)
    return pid if ticks is not None and str(ticks) == ticks_text else None


def make_master_key(run_dir: Path) -> tuple[Path, bytes]:
    path = run_dir / "master.key"
    keygen(path)
    return path, load_master_key(path)


def make_machines(run_dir: Path) -> list[Machine]:
    out = []
    for name in (*LB_MACHINES, *WEB_MACHINES):
        eligible = ("lb",) if name in LB_MACHINES else ("web",)
        ports = {svc: free_port() for svc in eligible}
        out.append(Machine(name, eligible, run_dir / "machines" / name, ports))
    return out


def enroll_machine(
    m: Machine,
    *,
    master: bytes,
    store: str,
    timing: Timing,
    root: Path,
    run_dir: Path,
    lb: str = "example",
    balancers: Collection[str] = ("lb",),
) -> None:
    """Derive the machine's key (0600 file) and write its agent.yaml, like `bosun enroll`.
    Services named in `balancers` run the example balancer, every other one the example app."""
    m.home.mkdir(parents=True, exist_ok=True)
    e = enroll(master, m.name, eligible=m.eligible, epoch=0, store=store)
    write_key_file(m.key_path, e.key)
    cfg: dict[str, Any] = agent_config(
        e,
        AgentSettings(
            poll_interval=timing.poll,
            heartbeat_interval=timing.heartbeat,
            jitter=0.1,
            key_file=str(m.key_path),
            state_dir=str(m.state_dir),
        ),
    )
    cfg["addresses"] = {"internal": "127.0.0.1", "external": ""}
    cfg["services"] = {
        svc: _service(m, svc, root, run_dir, balancer=svc in balancers) for svc in m.eligible
    }
    if lb != "example" and "lb" in m.eligible:  # a real balancer from examples/balancers/
        cfg["services"]["lb"] = lb_service(lb, m.state_dir, m.ports["lb"], m.peers_file, root)
    m.config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))


def _service(m: Machine, svc: str, root: Path, run_dir: Path, *, balancer: bool) -> dict[str, Any]:
    port = m.ports[svc]
    base = f"http://127.0.0.1:{port}"
    probes = {
        "health": {"http": f"{base}/health", "timeout": 1},
        "metrics": {"http": f"{base}/metrics", "timeout": 1},
    }
    proc = {"cwd": str(root), "stop_timeout": 3, "backoff_max": 4}
    if not balancer:
        return {
            "port": port,
            "files": [{"path": str(m.desired_file), "source": "desired"}],
            "process": {
                **proc,
                "command": [
                    sys.executable,
                    "-m",
                    "examples.app",
                    "--port",
                    "{port}",
                    "--version",
                    "{version}",
                    "--machine",
                    "{machine}",
                    "--desired-file",
                    str(m.desired_file),
                ],
            },
            **probes,
            "sessions": {"http": f"{base}/metrics", "key": "sessions", "timeout": 1},
        }
    return {
        "port": port,
        "files": [{"path": str(m.peers_file), "source": "peers"}],
        "process": {
            **proc,
            "command": [
                sys.executable,
                "-m",
                "examples.lb",
                "--port",
                "{port}",
                "--peers-file",
                str(m.peers_file),
                "--eject-seconds",
                "2",
                "--version",
                "{version}",
            ],
        },
        **probes,
    }


def spec_value(
    timing: Timing,
    run_dir: Path,
    *,
    web_count: int = WEB_COUNT,
    version: str = "1.0",
    rollout: bool = False,
    drain_timeout: float = 60.0,
    shadow: bool = True,
) -> dict[str, Any]:
    """The example cluster spec: `web` (the example app) behind `lb` (the example LB)."""
    web = app_value(
        run_dir, "orders", version=version, count=web_count, drain_timeout=drain_timeout
    )
    if rollout:
        web["rollout"] = rollout_value(timing, shadow=shadow)
    return {
        "settings": {
            "heartbeat_timeout": f"{timing.heartbeat_timeout:g}s",
            "desired_lifetime": "1h",
            "skew_window": "5m",
            "controller_interval": f"{timing.every:g}s",
        },
        "services": {
            "web": web,
            "lb": {"kind": "loadbalancer", "balances": "web", "version": "1", "count": 1},
        },
    }


def app_value(
    run_dir: Path, sink: str, *, version: str, count: int, drain_timeout: float = 60.0
) -> dict[str, Any]:
    """A service of the example app: version `BAD` answers `BAD_FAIL_RATE` of its requests
    with 500; writes go to `<run_dir>/sinks/<sink>.jsonl` (`<sink>-shadow.jsonl` as a shadow)."""
    return {
        "version": version,
        "count": count,
        "config": {
            "fail_rate": {BAD: BAD_FAIL_RATE, "*": 0},
            "sink": str(run_dir / "sinks" / f"{sink}.jsonl"),
            "shadow_sink": str(run_dir / "sinks" / f"{sink}-shadow.jsonl"),
        },
        "sessions": {"drain_timeout": f"{drain_timeout:g}s"},
    }


def rollout_value(timing: Timing, *, shadow: bool = True) -> dict[str, Any]:
    """A short release strategy (docs/spec.md's `rollout:` section); without its shadow step
    for a balancer that cannot mirror (`--lb haproxy|caddy`)."""
    bake = f"{timing.bake:g}s"
    return {
        "steps": [
            *([{"shadow": 1, "bake": bake}] if shadow else []),
            {"canary": 1, "weight": 50, "bake": bake},
            {"percent": 50, "bake": bake},
            {"percent": 100},
        ],
        "gates": {"max_error_rate": 0.05, "min_requests": 20},
        "on_failure": "revert",
        "keep_previous": f"{2 * timing.bake:g}s",  # then they are standbys for the next one
        "watch": bake,
        "progress_deadline": "2m",
    }


def write_spec(run_dir: Path, name: str, value: dict[str, Any]) -> Path:
    path = run_dir / "specs" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(value, sort_keys=False))
    return path
