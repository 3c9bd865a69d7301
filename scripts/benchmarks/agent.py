"""scripts/bench agent: CPU and peak RSS of a no-op `bosun-agent run --once` (cron) and CPU per
daemon cycle, against `ansible-pull`, and against a baseline git revision in the same run.

Steady state for bosun-agent: a signed desired document is already applied (one JSON file
rendered), so a cycle is one conditional GET answered 304 and no PUT. Measured per run
with os.wait4 in a minimal launcher (user + sys CPU of the run and everything it
waited for, and its peak RSS), against a directory bucket and against a real SeaweedFS.
Two ways of running the same code: **installed wheel** (what a machine runs: the wheel built
and installed into a fresh venv, bytecode compiled, `bosun-agent` console script) and
**dev checkout** (`python -m agent` from the source tree in the development venv, bytecode
compiled first: its editable-install finder costs start-up time a machine never pays).
`--baseline REV` measures the tree of git revision REV the same way, runs interleaved with
this tree's, so load on a shared host hits both alike. ansible-pull does the same no-op
from a local git repository: one `copy` task whose file is already in place (facts
gathering off, which favours ansible). ansible-core is installed into a separate venv
(default /tmp/bosun-bench-ansible, reused) and never into Bosun's; without network the
comparison is skipped with a message. Daemon: CPU per 1 s cycle from /proc over 15 s, the
daemons of this tree and the baseline running side by side (each on its own machine), and
its peak RSS.

Usage: scripts/bench agent [--runs N] [--baseline REV] [--no-seaweedfs] [--no-ansible]
                           [--ansible-venv DIR]
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
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

# (this script's directory is sys.path[0])
from _installed import compile_tree, export_revision, installed  # noqa: E402

from tests.unit.agent.kit import Machine, desired, publish  # noqa: E402
from wire.store import DirectoryStore  # noqa: E402
from wire.store.base import Store  # noqa: E402


@dataclass(frozen=True)
class Variant:
    """One way of running one tree's agent: its argv prefix and environment additions."""

    label: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path = ROOT  # python -m puts the working directory first on sys.path


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


def agent_machine(tmp: Path, store: Store, url: str, name: str = "web-1") -> Machine:
    services = {"web": {"port": 8080, "files": [{"path": str(tmp / "out" / "web.json")}]}}
    machine = Machine(tmp / "m", url, name=name, services=services)
    machine.extra = {"poll_interval": 30, "heartbeat_interval": "1h"}
    machine.write()
    publish(store, desired(machine=name, generation=1, config={"greeting": "hello"}))
    return machine


def bench_cron(
    where: str, machine: Machine, variants: list[Variant], env: dict[str, str], runs: int
) -> list[tuple[str, float, float, int]]:
    """The no-op cron cycle of every variant, runs interleaved (round robin)."""
    cpus: dict[str, list[float]] = {v.label: [] for v in variants}
    rss: dict[str, int] = dict.fromkeys(cpus, 0)
    for v in variants:
        argv = [*v.argv, "--config", str(machine.config_path), "run", "--once"]
        for _ in range(2):  # apply, then the first report settles (and the config is cached)
            measure(argv, {**env, **v.env}, v.cwd)
    for _ in range(runs):
        for v in variants:
            argv = [*v.argv, "--config", str(machine.config_path), "run", "--once"]
            cpu, peak, _ = measure(argv, {**env, **v.env}, v.cwd)
            cpus[v.label].append(cpu)
            rss[v.label] = max(rss[v.label], peak)
    return [
        (f"{v.label}, {where}", statistics.median(cpus[v.label]), min(cpus[v.label]), rss[v.label])
        for v in variants
    ]


def daemon_rss(
    machine: Machine, variant: Variant, env: dict[str, str], seconds: float = 4.0
) -> int:
    proc = subprocess.Popen(
        [*variant.argv, "--config", str(machine.config_path), "run"],
        env={**env, **variant.env},
        cwd=variant.cwd,
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


def daemon_cpus(
    machines: list[Machine], variants: list[Variant], env: dict[str, str], window: float = 15.0
) -> list[tuple[float, int]]:
    """CPU seconds per daemon cycle of each variant (poll every 1 s, no jitter, steady
    state: one 304 GET and the 1 s supervision ticks), and the cycles counted. The daemons
    run side by side, each on its own machine, and are measured over the same `window`
    after warm-up, so a shared host's load hits them alike. CPU from
    /proc/PID/task/*/schedstat (nanoseconds, every live thread: the daemon's threads live
    as long as it does); /proc/PID/stat's 10 ms ticks if absent."""
    tick = os.sysconf("SC_CLK_TCK")

    def cpu(pid: int) -> float:
        try:
            return (
                sum(
                    int((task / "schedstat").read_text().split()[0])
                    for task in Path(f"/proc/{pid}/task").iterdir()
                )
                / 1e9
            )
        except (OSError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / tick

    procs = []
    try:
        for machine, variant in zip(machines, variants, strict=True):
            machine.extra = {"poll_interval": 1, "jitter": 0, "heartbeat_interval": "1h"}
            machine.write()
            procs.append(
                subprocess.Popen(
                    [*variant.argv, "--config", str(machine.config_path), "run"],
                    env={**env, **variant.env},
                    cwd=variant.cwd,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        time.sleep(4.0)  # start, apply, first report
        c0, t0 = [cpu(p.pid) for p in procs], time.monotonic()
        time.sleep(window)
        c1, t1 = [cpu(p.pid) for p in procs], time.monotonic()
        cycles = max(1, round(t1 - t0))
        return [((b - a) / cycles, cycles) for a, b in zip(c0, c1, strict=True)]
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=30)
        for machine in machines:
            machine.extra = {"poll_interval": 30, "heartbeat_interval": "1h"}
            machine.write()


def variants_of(tree: Path, name: str, tmp: Path) -> list[Variant]:
    """The installed wheel and the dev checkout of the source tree `tree`."""
    print(f"building and installing the wheel of {name}...", flush=True)
    bin_dir = installed(tree, tmp / f"install-{name.replace('/', '_')}")
    compile_tree(tree)
    wheel_env = {"PYTHONPATH": "", "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    return [
        Variant(f"{name}, installed wheel", [str(bin_dir / "bosun-agent")], wheel_env),
        Variant(  # run from the tree itself: `python -m` puts the working directory first
            f"{name}, dev checkout",
            [sys.executable, "-m", "agent"],
            {"PYTHONPATH": str(tree)},
            cwd=tree,
        ),
    ]


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
    ap.add_argument("--baseline", metavar="REV", help="also measure git revision REV (e.g. main)")
    ap.add_argument("--no-seaweedfs", action="store_true")
    ap.add_argument("--no-ansible", action="store_true")
    ap.add_argument(
        "--ansible-venv", type=Path, default=Path(tempfile.gettempdir()) / "bosun-bench-ansible"
    )
    args = ap.parse_args()
    rows: list[tuple[str, float, float, int]] = []
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BOSUN_"))}
    tmp = Path(tempfile.mkdtemp(prefix="bosun-bench-agent-"))
    server = None
    daemon_rows: list[tuple[str, float, int]] = []
    rss_daemon: list[tuple[str, int]] = []
    try:
        variants = variants_of(ROOT, "this tree", tmp)
        if args.baseline:
            old = export_revision(ROOT, args.baseline, tmp / "baseline-src")
            variants += variants_of(old, args.baseline, tmp)
        wheels = [v for v in variants if v.label.endswith("installed wheel")]
        bucket = DirectoryStore(tmp / "bucket")
        machine = agent_machine(tmp / "dir", bucket, bucket.url)
        rows += bench_cron("directory bucket", machine, variants, base_env, args.runs)
        for v in wheels:
            rss_daemon.append((v.label, daemon_rss(machine, v, base_env)))
        daemons = [
            agent_machine(tmp / f"dir-daemon-{i}", bucket, bucket.url, name=f"web-d{i}")
            for i in range(len(wheels))
        ]
        measured = daemon_cpus(daemons, wheels, base_env)
        for v, (per_cycle, cycles) in zip(wheels, measured, strict=True):
            daemon_rows.append((f"{v.label}, directory bucket", per_cycle, cycles))
        if not args.no_seaweedfs:
            from tests.support.servers import ACCESS_KEY, SECRET_KEY, start_seaweedfs
            from wire.store.s3 import S3Store

            server = start_seaweedfs()
            admin = S3Store("bench-agent", endpoint=server.endpoint, access_key=ACCESS_KEY,
                            secret_key=SECRET_KEY)  # fmt: skip
            admin.create_bucket()
            env = {**base_env, **server.credentials_env()}
            url = server.store_url("bench-agent")
            swmachine = agent_machine(tmp / "sw", admin, url)
            rows += bench_cron("SeaweedFS S3", swmachine, variants, env, args.runs)
            daemons = [
                agent_machine(tmp / f"sw-daemon-{i}", admin, url, name=f"web-d{i}")
                for i in range(len(wheels))
            ]
            measured = daemon_cpus(daemons, wheels, env)
            for v, (per_cycle, cycles) in zip(wheels, measured, strict=True):
                daemon_rows.append((f"{v.label}, SeaweedFS S3", per_cycle, cycles))
        if not args.no_ansible:
            pull = ansible_ready(args.ansible_venv)
            if pull is not None:
                rows.append(bench_ansible(pull, tmp, args.runs))
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\ncron: no-op `run --once`, {args.runs} runs each, interleaved (CPU = user+sys of the"
          " process and its children; target <= 60 ms)")  # fmt: skip
    print(f"{'':56} {'CPU median':>11} {'CPU best':>9} {'peak RSS':>9}")
    for label, med, best, rss in rows:
        print(f"{label:56} {med * 1000:>8.0f} ms {best * 1000:>6.0f} ms {rss / 1024:>6.1f} MB")
    if not args.no_seaweedfs:
        print("(SeaweedFS is reached over http: an https endpoint, as AWS, also loads the system's"
              " root certificates, ~4-6 ms more; docs/agent.md#requests-and-cpu)")  # fmt: skip
    print("\ndaemon: CPU per cycle (poll 1 s, no jitter: one 304 GET and the supervision tick;"
          " target <= 3 ms)")  # fmt: skip
    for label, per_cycle, cycles in daemon_rows:
        print(f"{label:56} {per_cycle * 1000:>8.1f} ms  ({cycles} cycles)")
    for label, peak in rss_daemon:
        print(f"{label + ', daemon peak RSS':56} {peak / 1024:>8.1f} MB")
    ansible = next((r for r in rows if r[0].startswith("ansible")), None)
    if ansible is not None:
        for label, med, _best, _rss in rows:
            if not label.startswith("ansible"):
                print(
                    f"ratio ansible-pull / {label}: {ansible[1] / med:.1f}x less CPU (target >= 10x)"
                )
    else:
        print("ansible-pull not measured (see above)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
