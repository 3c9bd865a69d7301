"""scripts/bench agent: CPU and peak RSS of a no-op `bosun-agent run --once` vs `ansible-pull`.

Steady state for bosun-agent: a signed desired document is already applied (one JSON file
rendered), so a cycle is one conditional GET answered 304 and no PUT. Measured per run
with os.wait4 in a minimal launcher (user + sys CPU of the run and everything it
waited for, and its peak RSS), against a directory bucket and against a real SeaweedFS (stdlib S3 client, no
boto3). ansible-pull does the same no-op from a local git repository: one `copy` task
whose file is already in place (facts gathering off, which favours ansible). ansible-core
is installed into a separate venv (default /tmp/bosun-bench-ansible, reused) and never
into Bosun's; without network the comparison is skipped with a message. Also: peak RSS of
the daemon after a few cycles.

Usage: scripts/bench agent [--runs N] [--no-seaweedfs] [--no-ansible] [--ansible-venv DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.unit.agent.kit import Machine, desired, publish  # noqa: E402
from wire.store import DirectoryStore  # noqa: E402
from wire.store.base import Store  # noqa: E402

AGENT = [sys.executable, "-m", "agent"]


# Linux keeps the parent's peak RSS across fork + exec in ru_maxrss, so a child spawned by
# this (large, boto3-importing) process would report at least our own peak. A minimal
# launcher (python -I -S, ~8 MB) forks the measured command and reports its rusage.
_LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    fd = os.open(os.devnull, os.O_WRONLY)
    os.dup2(fd, 1)
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, ru = os.wait4(pid, 0)
os.write(int(sys.argv[1]), f"{ru.ru_utime + ru.ru_stime} {ru.ru_maxrss} {os.waitstatus_to_exitcode(status)}".encode())
"""


def measure(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, int, int]:
    """(cpu seconds user+sys, peak RSS in KiB, exit code) of one run of `argv`."""
    read_fd, write_fd = os.pipe()
    try:
        proc = subprocess.run(
            [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(write_fd), *argv],
            env=env,
            cwd=cwd,
            stderr=subprocess.PIPE,
            pass_fds=(write_fd,),
            timeout=300,
        )
    finally:
        os.close(write_fd)
    with os.fdopen(read_fd, "rb") as fh:
        cpu, rss, code = fh.read().decode().split()
    if proc.returncode != 0 or int(code) != 0:
        raise RuntimeError(f"{' '.join(argv[:4])}... exited {code}: {proc.stderr.decode()[-2000:]}")
    return float(cpu), int(rss), int(code)


def series(argv: list[str], env: dict[str, str], cwd: Path, runs: int) -> tuple[float, float, int]:
    cpus, rss = [], []
    for _ in range(runs):
        cpu, peak, _ = measure(argv, env, cwd)
        cpus.append(cpu)
        rss.append(peak)
    return statistics.median(cpus), min(cpus), max(rss)


def agent_machine(tmp: Path, store: Store, url: str) -> Machine:
    services = {"web": {"port": 8080, "files": [{"path": str(tmp / "out" / "web.json")}]}}
    machine = Machine(tmp / "m", url, services=services)
    machine.extra = {"poll_interval": 30, "heartbeat_interval": "1h"}
    machine.write()
    publish(store, desired(generation=1, config={"greeting": "hello"}))
    return machine


def bench_agent(
    label: str, machine: Machine, env: dict[str, str], runs: int
) -> tuple[str, float, float, int]:
    argv = [*AGENT, "--config", str(machine.config_path), "run", "--once"]
    for _ in range(2):  # apply, then the first report settles
        measure(argv, env, ROOT)
    med, best, rss = series(argv, env, ROOT, runs)
    return label, med, best, rss


def daemon_rss(machine: Machine, env: dict[str, str], seconds: float = 4.0) -> int:
    proc = subprocess.Popen(
        [*AGENT, "--config", str(machine.config_path), "run"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(seconds)
        status = Path(f"/proc/{proc.pid}/status").read_text()
        return int(
            next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM"))
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def daemon_cpu(machine: Machine, env: dict[str, str], window: float = 10.0) -> tuple[float, int]:
    """CPU seconds per daemon cycle (poll every 1 s, no jitter, steady state: one 304 GET
    and the 1 s supervision ticks), from /proc/PID/stat over `window` seconds after warm-up;
    and the cycles counted in the window (from the agent's own log lines)."""
    machine.extra = {"poll_interval": 1, "jitter": 0, "heartbeat_interval": "1h"}
    machine.write()
    tick = os.sysconf("SC_CLK_TCK")

    def cpu(pid: int) -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick

    proc = subprocess.Popen(
        [*AGENT, "--config", str(machine.config_path), "run"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(4.0)  # start, apply, first report
        c0, t0 = cpu(proc.pid), time.monotonic()
        time.sleep(window)
        c1, t1 = cpu(proc.pid), time.monotonic()
        cycles = max(1, round(t1 - t0))
        return (c1 - c0) / cycles, cycles
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        machine.extra = {"poll_interval": 30, "heartbeat_interval": "1h"}
        machine.write()


def ansible_ready(venv: Path) -> Path | None:
    pull = venv / "bin" / "ansible-pull"
    if pull.exists():
        return pull
    print(
        f"installing ansible-core into {venv} (separate venv, for comparison only)...", flush=True
    )
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", "ansible-core"], check=True, timeout=600
        )
    except (subprocess.SubprocessError, OSError) as exc:
        print(
            f"SKIP ansible-pull: could not install ansible-core ({exc}); "
            "install it with: python3 -m venv DIR && DIR/bin/pip install ansible-core, then --ansible-venv DIR"
        )
        return None
    return pull if pull.exists() else None


def bench_ansible(pull: Path, tmp: Path, runs: int) -> tuple[str, float, float, int]:
    repo = tmp / "repo"
    repo.mkdir()
    target = tmp / "ansible-out" / "web.json"
    target.parent.mkdir()
    (repo / "web.json").write_text('{"greeting": "hello"}\n')
    (repo / "local.yml").write_text(
        "- hosts: localhost\n  connection: local\n  gather_facts: false\n  tasks:\n"
        f"    - copy: {{src: web.json, dest: {target}, mode: '0644'}}\n"
    )
    git = ["git", "-c", "user.email=b@b", "-c", "user.name=bench"]
    subprocess.run([*git, "init", "-q", "-b", "main", str(repo)], check=True)
    subprocess.run([*git, "-C", str(repo), "add", "."], check=True)
    subprocess.run([*git, "-C", str(repo), "commit", "-q", "-m", "playbook"], check=True)
    env = {
        **os.environ,
        "PATH": f"{pull.parent}:{os.environ['PATH']}",
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
        "ANSIBLE_HOME": str(tmp / "ansible-home"),
        "ANSIBLE_PYTHON_INTERPRETER": str(pull.parent / "python"),
    }
    argv = [
        str(pull),
        "-U",
        f"file://{repo}",
        "-C",
        "main",
        "-d",
        str(tmp / "checkout"),
        "-i",
        "localhost,",
        "local.yml",
    ]
    measure(argv, env, tmp)  # first run clones and copies
    med, best, rss = series(argv, env, tmp, runs)
    return "ansible-pull (no-op, local git)", med, best, rss


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--no-seaweedfs", action="store_true")
    ap.add_argument("--no-ansible", action="store_true")
    ap.add_argument(
        "--ansible-venv", type=Path, default=Path(tempfile.gettempdir()) / "bosun-bench-ansible"
    )
    args = ap.parse_args()
    rows: list[tuple[str, float, float, int]] = []
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BOSUN_"))}
    base_env["PYTHONPATH"] = str(ROOT)
    tmp = Path(tempfile.mkdtemp(prefix="bosun-bench-agent-"))
    server = None
    try:
        bucket = DirectoryStore(tmp / "bucket")
        machine = agent_machine(tmp / "dir", bucket, bucket.url)
        rows.append(
            bench_agent("bosun-agent --once (directory bucket)", machine, base_env, args.runs)
        )
        rss_daemon = daemon_rss(machine, base_env)
        per_cycle, cycles = daemon_cpu(machine, base_env)
        daemon_rows = [("directory bucket", per_cycle, cycles)]
        if not args.no_seaweedfs:
            from tests.support.servers import ACCESS_KEY, SECRET_KEY, start_seaweedfs
            from wire.store.s3 import S3Store

            server = start_seaweedfs()
            admin = S3Store("bench-agent", endpoint=server.endpoint, access_key=ACCESS_KEY,
                            secret_key=SECRET_KEY)  # fmt: skip
            admin.create_bucket()
            creds = server.credentials_env()
            swmachine = agent_machine(tmp / "sw", admin, server.store_url("bench-agent"))
            rows.append(
                bench_agent(
                    "bosun-agent --once (SeaweedFS, S3)",
                    swmachine,
                    {**base_env, **creds},
                    args.runs,
                )
            )
            per_cycle, cycles = daemon_cpu(swmachine, {**base_env, **creds})
            daemon_rows.append(("SeaweedFS, S3", per_cycle, cycles))
        if not args.no_ansible:
            pull = ansible_ready(args.ansible_venv)
            if pull is not None:
                rows.append(bench_ansible(pull, tmp, args.runs))
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nno-op cycle, {args.runs} runs each (CPU = user+sys of the child and its children)")
    print(f"{'':42} {'CPU median':>11} {'CPU best':>9} {'peak RSS':>9}")
    for label, med, best, rss in rows:
        print(f"{label:42} {med * 1000:>8.0f} ms {best * 1000:>6.0f} ms {rss / 1024:>6.1f} MB")
    print(
        f"{'bosun-agent daemon (peak RSS after cycles)':42} {'':>11} {'':>9} {rss_daemon / 1024:>6.1f} MB"
    )
    for where, per_cycle, cycles in daemon_rows:
        print(
            f"{'bosun-agent daemon CPU per cycle (' + where + ')':42} {per_cycle * 1000:>8.1f} ms"
            f"  ({cycles} cycles of 1 s; target <= 3 ms)"
        )
    ansible = next((r for r in rows if r[0].startswith("ansible")), None)
    if ansible is not None:
        for label, med, _best, _rss in rows:
            if label.startswith("bosun"):
                print(
                    f"ratio ansible-pull / {label}: {ansible[1] / med:.1f}x less CPU (target >= 10x)"
                )
    else:
        print("ansible-pull not measured (see above)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
