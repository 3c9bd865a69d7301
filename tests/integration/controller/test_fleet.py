"""A fleet on SeaweedFS: real bosun-agent processes, two `bosun controller run` processes.

Machines converge; a killed machine is replaced and dropped from the load balancer's peers
within the heartbeat timeout plus a cycle; killing the leader hands over to the standby
within the lease duration; no generation is ever reused; tampered and replayed snapshots
are rejected and reported in status/cluster.json, which the real `aws` CLI can read.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import yaml

from controller.planner.model import content_digest
from controller.spec.load import load_yaml
from controller.spec.revisions import apply
from tests.integration.controller.conftest import BIN, MASTER, Bucket, stop, wait_for
from wire.documents import open_desired
from wire.errors import BosunError
from wire.layout import DESIRED, STATUS_CLUSTER, report_key
from wire.signing import derive_machine_key, format_kid, write_key_file
from wire.store import StoredObject

HEARTBEAT_TIMEOUT = 4.0
EVERY = 1.0
LEASE = 6.0
SPEC = f"""
settings:
  heartbeat_timeout: {HEARTBEAT_TIMEOUT:g}s
  desired_lifetime: 1h
  skew_window: 5m
  controller_interval: {EVERY:g}s
services:
  web:
    version: "1.0"
    count: 2
    port: 8080
  lb:
    kind: loadbalancer
    balances: web
    version: "2.0"
    count: 1
    port: 80
"""
MACHINES = [f"m-{i}" for i in range(5)]


def start_agent(b: Bucket, machine: str, n: int) -> Any:
    key = b.tmp / f"{machine}.key"
    write_key_file(key, derive_machine_key(MASTER, machine, 0), overwrite=True)
    config = {
        "machine": machine,
        "store": b.url,
        "key_file": str(key),
        "state_dir": str(b.tmp / f"state-{machine}"),
        "eligible": ["web", "lb"],
        "poll_interval": 1.0,
        "heartbeat_interval": 1.0,
        "jitter": 0.0,
        "addresses": {"internal": f"10.1.0.{n + 1}", "external": ""},
        "services": {
            "web": {"port": 8080, "health": {"command": "true"}},
            "lb": {"port": 80, "health": {"command": "true"}},
        },
    }
    path = b.tmp / f"{machine}.yaml"
    path.write_text(yaml.safe_dump(config))
    return b.spawn([str(BIN / "bosun-agent"), "--config", str(path), "run"], f"agent-{machine}")


def start_controller(b: Bucket, name: str) -> Any:
    return b.spawn(
        [
            str(BIN / "bosun"),
            "--log-level",
            "info",
            "controller",
            "run",
            "--every",
            f"{EVERY:g}s",
            "--lease-duration",
            f"{LEASE:g}s",
            "--renew-deadline",
            f"{LEASE * 2 / 3:g}s",
            "--id",
            name,
            "--master-key",
            str(b.master_file),
            "--state-dir",
            str(b.tmp / f"st-{name}"),
        ],
        f"controller-{name}",
    )


class DesiredWatcher(threading.Thread):
    """Reads desired/ continuously: a generation must never come back with other content."""

    def __init__(self, b: Bucket) -> None:
        super().__init__(daemon=True)
        self.b = b
        self.seen: dict[tuple[str, int], str] = {}
        self.latest: dict[str, int] = {}
        self.problems: list[str] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            with contextlib.suppress(BosunError):
                self.scan()
            time.sleep(0.2)

    def scan(self) -> None:
        for info in self.b.store.list(DESIRED):
            machine = info.key[len(DESIRED) : -5]
            got = self.b.store.get(info.key)
            if not isinstance(got, StoredObject):
                continue
            key, kid = derive_machine_key(MASTER, machine, 0), format_kid(machine, 0)
            _env, doc = open_desired(
                got.body, info.key, lambda k, key=key, kid=kid: key if k == kid else None
            )
            digest = content_digest(doc)
            prev = self.seen.setdefault((machine, doc.generation), digest)
            if prev != digest:
                self.problems.append(f"{machine} generation {doc.generation} reused")
            if doc.generation < self.latest.get(machine, 0):
                self.problems.append(f"{machine} generation went back to {doc.generation}")
            self.latest[machine] = max(self.latest.get(machine, 0), doc.generation)


def status(b: Bucket) -> dict[str, Any]:
    got = b.store.get(STATUS_CLUSTER)
    assert isinstance(got, StoredObject)
    value: dict[str, Any] = orjson.loads(got.body)
    return value


def desired_of(b: Bucket, machine: str) -> Any:
    got = b.store.get(f"{DESIRED}{machine}.json")
    assert isinstance(got, StoredObject)
    key, kid = derive_machine_key(MASTER, machine, 0), format_kid(machine, 0)
    return open_desired(got.body, f"{DESIRED}{machine}.json", lambda k: key if k == kid else None)[
        1
    ]


def converged(b: Bucket, alive: list[str]) -> bool:
    st = status(b)
    web, lb = st["services"]["web"], st["services"]["lb"]
    machines = st["machines"]
    return (
        web["healthy"] == 2
        and lb["healthy"] == 1
        and all(machines[m]["applied_generation"] == machines[m]["generation"] for m in alive)
    )


def test_fleet_converges_replaces_and_fails_over(bucket: Bucket) -> None:
    """Real agents and two controllers: convergence, replacement, failover, rejections, aws CLI."""
    b = bucket
    apply(b.store, load_yaml(SPEC), now=time.time())
    agents = {m: start_agent(b, m, i) for i, m in enumerate(MACHINES)}
    first_reports = wait_for(
        "first reports",
        lambda: (
            {
                m: got
                for m in MACHINES
                if isinstance(got := b.store.get(report_key(m)), StoredObject)
            }
            if all(isinstance(b.store.get(report_key(m)), StoredObject) for m in MACHINES)
            else None
        ),
        30,
    )
    ctl_a = start_controller(b, "ctl-a")
    wait_for("ctl-a to lead", lambda: status(b)["controller"]["holder"] == "ctl-a", 30)
    ctl_b = start_controller(b, "ctl-b")
    watcher = DesiredWatcher(b)
    watcher.start()
    wait_for("convergence", lambda: converged(b, MACHINES), 40)

    # a machine dies: replaced, and dropped from the load balancer's peers
    st = status(b)
    victim = next(
        m
        for m, v in sorted(st["machines"].items())
        if v["service"] == "web" and v["mode"] == "active"
    )
    lb = next(
        m for m, v in st["machines"].items() if v["service"] == "lb" and v["mode"] == "active"
    )
    assert victim in [p.machine for p in desired_of(b, lb).peers.backends]
    stop(agents[victim], signal.SIGKILL)
    killed = time.monotonic()

    def replaced() -> bool:
        s = status(b)
        web = [
            m
            for m, v in s["machines"].items()
            if v["service"] == "web" and v["mode"] == "active" and not v["lost"]
        ]
        peers = [p.machine for p in desired_of(b, lb).peers.backends]
        return (
            s["machines"][victim]["lost"]
            and victim not in web
            and len(web) == 2
            and victim not in peers
            and len(peers) == 2
        )

    wait_for("replacement", replaced, 30)
    took = time.monotonic() - killed
    # heartbeat interval (1s) + timeout + one cycle, plus scheduling slack on a shared host
    print(f"replacement took {took:.1f}s")
    assert took <= 1.0 + HEARTBEAT_TIMEOUT + EVERY + 6.0, f"replacement took {took:.1f}s"

    # tampered and replayed snapshots of the dead machine are rejected and reported
    current = b.store.get(report_key(victim))
    assert isinstance(current, StoredObject)
    tampered = current.body.replace(b'"status": "running"', b'"status": "stopping"')
    assert tampered != current.body
    b.store.put(report_key(victim), tampered)
    wait_for("tamper rejection", lambda: status(b)["rejected"].get(victim), 15)
    old = first_reports[victim]  # an old version, as a noncurrent S3 version would hold
    b.store.put(report_key(victim), old.body)
    wait_for(
        "replay rejection", lambda: "replayed_seq" in status(b)["rejected"][victim]["counts"], 15
    )
    assert "bad_signature" in status(b)["rejected"][victim]["counts"]

    # the leader dies: the standby takes over within the lease duration
    stop(ctl_a, signal.SIGKILL)
    died = time.monotonic()
    wait_for("takeover", lambda: status(b)["controller"]["holder"] == "ctl-b", LEASE + 20)
    took = time.monotonic() - died
    print(f"takeover took {took:.1f}s")
    assert took <= LEASE + 2 * EVERY + 6.0, f"takeover took {took:.1f}s"
    assert status(b)["fence"] >= 2
    # the fleet still works under the new leader: a new machine joins and is used
    agents["m-5"] = start_agent(b, "m-5", 5)
    wait_for("new machine seen", lambda: "m-5" in status(b)["machines"], 20)
    watcher.halt.set()
    watcher.join(timeout=5)
    watcher.scan()
    assert watcher.problems == []

    # operators read the bucket with the real aws CLI
    aws_env = b.env(
        AWS_CONFIG_FILE=str(b.tmp / "none"), AWS_SHARED_CREDENTIALS_FILE=str(b.tmp / "none")
    )
    bucket_url = b.s3_root.rstrip("/")
    ls = subprocess.run(
        [
            str(BIN / "aws"),
            "--endpoint-url",
            b.server.endpoint,
            "s3",
            "ls",
            f"{bucket_url}/",
            "--recursive",
        ],
        env=aws_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ls.returncode == 0, ls.stderr
    assert "status/cluster.json" in ls.stdout and "desired/m-0.json" in ls.stdout
    cp = subprocess.run(
        [
            str(BIN / "aws"),
            "--endpoint-url",
            b.server.endpoint,
            "s3",
            "cp",
            f"{bucket_url}/status/cluster.json",
            "-",
        ],
        env=aws_env,
        capture_output=True,
        timeout=60,
    )
    assert cp.returncode == 0, cp.stderr
    assert orjson.loads(cp.stdout)["rejected"][victim]
    stop(ctl_b)
    assert Path(b.tmp / "controller-ctl-b.log").exists()
