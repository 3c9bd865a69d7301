"""`scripts/demo`: set the cluster up, tell the story, stop everything, print the summary."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import yaml
from rich.console import Console, RenderableType
from rich.live import Live

from controller.cli.common import make_console
from controller.spec.load import load_yaml
from controller.spec.revisions import apply as apply_revision
from devkit.demo import fleet
from devkit.demo.fleet import FAST, NORMAL, Machine, Timing
from devkit.demo.observe import Watcher
from devkit.demo.procs import ProcessBook
from devkit.demo.story import PHASES, PhaseFailed
from devkit.demo.summary import PhaseResult, Summary
from devkit.demo.traffic import Client
from devkit.demo.view import render
from devkit.local_s3 import S3Server, start_seaweedfs
from devkit.operator_keys import operator_key_path, operator_signer
from wire.errors import BosunError
from wire.store import Store, open_store
from wire.store.s3 import S3Store

BUCKET = "bosun-demo"


@dataclass(frozen=True, slots=True)
class DemoSettings:
    dir: Path
    s3: bool = False
    fast: bool = False
    keep_running: bool = False
    summary_json: Path | None = None
    lb: str = "example"  # or haproxy, nginx, caddy: a real balancer (devkit.demo.balancers)


MIRRORING = ("example", "nginx")  # balancers that copy traffic to a release's shadow


class Interrupted(BaseException):
    """Ctrl-C or SIGTERM: stop the story and clean up (not an Exception, so no phase's
    error handling can swallow it)."""


class Demo:
    """The running demo: its processes, the bucket, the watcher and the client."""

    def __init__(self, settings: DemoSettings, console: Console) -> None:
        self.settings = settings
        self.console = console
        self.timing: Timing = FAST if settings.fast else NORMAL
        self.stopping = threading.Event()
        self.run_dir = fleet.prepare_dir(settings.dir)
        self.root = fleet.repo_root()
        self.server: S3Server | None = None
        self.bucket_dir: Path | None = None
        # only the example balancer and nginx mirror: elsewhere the release has no shadow step
        self.spec_args: dict[str, Any] = {"shadow": settings.lb in MIRRORING}
        self.machines: dict[str, Machine] = {}
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BOSUN_"))}
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        self.book = ProcessBook(self.run_dir, self.run_dir / "logs", env)
        self.store_url = ""
        self.store: Store
        self.watcher: Watcher
        self.client = Client(self._client_target, self.timing.rate)
        self._client_started = False
        self.killed: set[str] = set()  # processes the story killed on purpose

    # ---- setup --------------------------------------------------------------------------
    def open_bucket(self) -> None:
        if self.settings.s3:
            self.say("starting SeaweedFS (a local S3 server)...")
            self.server = start_seaweedfs(workdir=self.run_dir / "seaweedfs")
            self.book.adopt("seaweedfs", self.server.proc)
            creds = self.server.credentials_env()
            s3 = S3Store(
                BUCKET,
                endpoint=self.server.endpoint,
                access_key=creds["AWS_ACCESS_KEY_ID"],
                secret_key=creds["AWS_SECRET_ACCESS_KEY"],
            )
            s3.create_bucket()
            self.store = s3
            self.store_url = self.server.store_url(BUCKET)
            self.book.env.update(creds)
        else:
            self.bucket_dir = self.run_dir / "bucket"
            self.bucket_dir.mkdir()
            self.store_url = f"file://{self.bucket_dir}"
            self.store = open_store(self.store_url)
        self.say(f"bucket: {self.store_url}")
        for cmd in self.explore_commands():
            if " s3 " in cmd:
                self.say(f"  {cmd}")

    def enroll_fleet(self) -> None:
        self.master_path, master = fleet.make_master_key(self.run_dir)
        for m in fleet.make_machines(self.run_dir):
            fleet.enroll_machine(
                m,
                master=master,
                store=self.store_url,
                timing=self.timing,
                root=self.root,
                run_dir=self.run_dir,
                lb=self.settings.lb,
            )
            self.machines[m.name] = m
            self.book.mark("--config", m.config_path)
            self.book.mark("--desired-file", m.desired_file)
            self.book.mark("--peers-file", m.peers_file)
        self.book.mark("--master-key", self.master_path)
        self.signer = operator_signer(self.store, master, self.run_dir)  # signs every revision
        self.book.mark("--operator-key", operator_key_path(self.run_dir))
        names = ", ".join(self.machines)
        self.say(f"master key {self.master_path}; enrolled {len(self.machines)} machines: {names}")

    def apply_spec(self, name: str, **changes: Any) -> None:
        """Apply the example spec with `changes` on top of the previous ones (a new revision)."""
        self.spec_args.update(changes)
        value = fleet.spec_value(self.timing, self.run_dir, **self.spec_args)
        path = fleet.write_spec(self.run_dir, name, value)
        spec = load_yaml(path.read_text(), source=str(path))
        applied = apply_revision(
            self.store, spec, now=time.time(), signer=self.signer, message=f"demo: {name}"
        )
        web = applied.services["web"]
        self.say(
            f"spec revision {applied.revision} ({path.name}): web {web.count} x {web.version}"
            + (", with a rollout strategy" if changes.get("rollout") or "rollout" in name else "")
        )

    def start_controller(self) -> None:
        bosun = Path(sys.executable).parent / "bosun"
        cmd = (
            [str(bosun)]
            if bosun.exists()
            else [sys.executable, "-c", "from controller.cli import main; main()"]
        )
        self.book.spawn(
            "controller",
            [
                *cmd,
                "--log-level",
                "info",
                "controller",
                "run",
                "--store",
                self.store_url,
                "--master-key",
                str(self.master_path),
                "--every",
                f"{self.timing.every:g}s",
                "--id",
                "demo-controller",
                "--state-dir",
                str(self.run_dir / "controller"),
            ],
        )
        self.say(f"controller: bosun controller run --every {self.timing.every:g}s")

    def start_agent(self, name: str) -> None:
        m = self.machines[name]
        self.book.spawn(
            f"agent-{name}",
            [
                sys.executable,
                "-m",
                "agent",
                "--log-level",
                "info",
                "--config",
                str(m.config_path),
                "run",
            ],
            cwd=m.home,
        )

    def start_fleet(self) -> None:
        for name in self.machines:
            self.start_agent(name)
        self.say(
            f"{len(self.machines)} agents: bosun-agent run (poll {self.timing.poll:g}s, "
            f"heartbeat {self.timing.heartbeat:g}s)"
        )
        self.watcher = Watcher(self.store, self.machines, self._on_change, lb_kind=self.settings.lb)
        state_dirs = {n: m.state_dir for n, m in self.machines.items()}
        self.watcher.extra = lambda: self.book.poll_records(state_dirs)
        self.watcher.start()

    # ---- used by the story ----------------------------------------------------------------
    def say(self, text: str) -> None:
        self.console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {text}", highlight=False)

    def _on_change(self, text: str) -> None:
        self.say(f"  [cyan]{text}[/]")

    def client_on(self) -> None:
        if not self._client_started:
            self._client_started = True
            self.client.start()
            self.say(f"client: {self.timing.rate:g} requests/s through the balancer")

    def _client_target(self) -> int | None:
        return self.watcher.view.lb_port

    def kill_machine(self, name: str) -> None:
        self.book.poll_records({name: self.machines[name].state_dir})
        self.killed.add(f"agent-{name}")
        self.book.kill_now(f"agent-{name}")
        for t in self.book.running():
            if t.name.startswith(f"{name}/"):
                self.book.kill_tracked(t)

    def restart_agent(self, name: str) -> None:
        self.killed.discard(f"agent-{name}")
        self.start_agent(name)

    def exited(self) -> str | None:
        """A process that should be running but exited, with the end of its log."""
        for name, proc in list(self.book.popens.items()):
            if name in self.killed or name == "seaweedfs" or proc.poll() is None:
                continue
            log = self.run_dir / "logs" / f"{name}.log"
            tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log.exists() else []
            return f"{name} exited with {proc.returncode}: " + " | ".join(tail)
        return None

    # ---- the story --------------------------------------------------------------------
    def run_phases(self, results: dict[str, PhaseResult], current: list[str | None]) -> None:
        for name, title, fn in PHASES:
            if self.stopping.is_set():
                break
            result = PhaseResult(name, title)
            current[0] = name
            self._started[name] = time.monotonic()
            self.client.set_phase(name)
            self.say(f"[bold]{title}[/]")
            t0 = time.monotonic()
            try:
                result.details = fn(self)
            except PhaseFailed as exc:
                result.status = "failed"
                result.details = {"reason": str(exc)}
                self.say(f"  [bold red]failed[/]: {exc}")
            except (BosunError, OSError, ValueError, KeyError) as exc:  # the bucket, a probe
                result.status = "failed"
                result.details = {"reason": f"{type(exc).__name__}: {exc}"}
                self.say(f"  [bold red]failed[/]: {type(exc).__name__}: {exc}")
            result.seconds = time.monotonic() - t0
            tally = self.client.tally(name)
            result.requests = tally.requests
            result.client_errors = tally.errors
            result.canary_window_errors = tally.canary_errors
            if tally.errors:
                result.details["last_client_error"] = tally.last_error
            results[name] = result
            if result.status == "ok":
                self.say(
                    f"  [green]ok[/] in {result.seconds:.1f}s: {result.details.get('note', '')}"
                )
            if result.status == "failed" and name in ("converge", "replace"):
                break  # the rest of the story needs a converged fleet
        current[0] = None
        self.client.set_phase("end")

    _started: dict[str, float]

    def explore_commands(self) -> list[str]:
        store = shlex.quote(self.store_url)
        out = [
            f"bosun status --store {store}",
            f"bosun machines --store {store}",
            f"bosun events --store {store}",
        ]
        if self.server is not None:
            creds = self.server.credentials_env()
            aws = (
                f"AWS_ACCESS_KEY_ID={creds['AWS_ACCESS_KEY_ID']} "
                f"AWS_SECRET_ACCESS_KEY={creds['AWS_SECRET_ACCESS_KEY']} "
                f"aws --region us-east-1 --endpoint-url {self.server.endpoint} s3"
            )
            out += [
                f"{aws} ls --recursive s3://{BUCKET}/",
                f"{aws} cp s3://{BUCKET}/status/cluster.json -",
                f"{aws} cp s3://{BUCKET}/desired/web-1.json -",
            ]
        elif self.bucket_dir is not None:
            out += [
                f"find {self.bucket_dir} -name '*.json' | sort",
                f"cat {self.bucket_dir}/status/cluster.json",
                f"cat {self.bucket_dir}/desired/web-1.json",
                "# the same objects over S3: scripts/demo --s3 prints "
                "`aws --endpoint-url ... s3 ls/cp` commands",
            ]
        lb = self.watcher.view.lb_port if hasattr(self, "watcher") else None
        if lb is not None and self.settings.lb != "example":
            config = {"haproxy": "haproxy.cfg", "nginx": "nginx.conf", "caddy": "Caddyfile"}
            lb_dir = self.machines["lb-1"].state_dir / "lb"
            out += [f"curl -s 127.0.0.1:{lb}/", f"cat {lb_dir / config[self.settings.lb]}"]
        elif lb is not None:
            out += [f"curl -s 127.0.0.1:{lb}/", f"curl -s 127.0.0.1:{lb}/_lb/status"]
        return out


@contextlib.contextmanager
def _signals(demo: Demo) -> Iterator[list[bool]]:
    """The first SIGINT/SIGTERM interrupts the story; during cleanup they are ignored."""
    state = [False]  # True: cleaning up

    def handler(signum: int, _frame: FrameType | None) -> None:
        demo.stopping.set()
        if not state[0]:
            state[0] = True
            raise Interrupted(signal.Signals(signum).name)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield state
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def run_demo(settings: DemoSettings, console: Console | None = None) -> Summary:
    console = console or make_console()  # piped: as wide as bosun status, not cut at 80
    began = time.monotonic()
    demo = Demo(settings, console)
    demo._started = {}
    summary = Summary(settings.fast, "", demo.run_dir, None)
    results: dict[str, PhaseResult] = {}
    current: list[str | None] = [None]
    story_done = False  # with --keep-running, Ctrl-C after the story is the normal end
    with _signals(demo) as cleaning:
        try:
            demo.open_bucket()
            summary.store, summary.bucket_dir = demo.store_url, demo.bucket_dir
            demo.enroll_fleet()
            demo.apply_spec("initial")
            demo.start_controller()
            demo.start_fleet()
            titles = [(n, t) for n, t, _ in PHASES]

            def picture() -> RenderableType:
                client = demo.client if demo._client_started else None
                return render(titles, results, current[0], demo._started, demo.watcher.view, client)

            live = None
            if console.is_terminal:
                live = Live(console=console, refresh_per_second=4, get_renderable=picture)
            with live or contextlib.nullcontext():
                demo.run_phases(results, current)
            summary.phases = [results[n] for n, _, _ in PHASES if n in results]
            summary.explore = demo.explore_commands()
            if settings.keep_running and not demo.stopping.is_set():
                _print_end(demo, summary, console, keep=True)
                console.print("[bold]the cluster keeps running: Ctrl-C to stop it[/]")
                story_done = True
                while not demo.stopping.wait(3600):
                    pass
        except Interrupted as exc:
            summary.interrupted = not story_done
            console.print(f"\n[yellow]{exc}: stopping every process the demo started...[/]")
        finally:
            cleaning[0] = True
            demo.stopping.set()
            summary.phases = summary.phases or [results[n] for n, _, _ in PHASES if n in results]
            summary.explore = summary.explore or demo.explore_commands()
            _shutdown(demo, summary)
            summary.seconds = time.monotonic() - began
            if settings.summary_json is not None:
                summary.write(settings.summary_json)
    _print_end(demo, summary, console, keep=False)
    return summary


def _shutdown(demo: Demo, summary: Summary) -> None:
    demo.client.stop()
    if hasattr(demo, "watcher"):
        demo.watcher.stop()
        demo.book.poll_records({n: m.state_dir for n, m in demo.machines.items()})
    left = demo.book.stop_all(order=("controller", "agent-"))
    if demo.server is not None:
        demo.server.stop(keep_data=True)
        left = demo.book.stop_all(grace=1.0)
    summary.processes = demo.book.pids()
    summary.processes_left_running = left


def _print_end(demo: Demo, summary: Summary, console: Console, *, keep: bool) -> None:
    """The summary table, then the commands to look around (curl only while it runs)."""
    console.print()
    summary.print(console, running=keep)
    console.print("\n[bold]look around:[/]")
    import shutil

    here = Path(sys.prefix) / "bin" / "bosun"
    if shutil.which("bosun") != str(here):  # a fresh clone's shell has .venv off its PATH
        console.print(
            f"  # bosun is {here}: `. {here.parent}/activate` puts it on PATH",
            highlight=False,
            soft_wrap=True,
        )
    for cmd in summary.explore:
        if keep or not cmd.startswith("curl"):
            console.print(f"  {cmd}", highlight=False, soft_wrap=True)
    where = demo.bucket_dir or (demo.run_dir / "seaweedfs")
    console.print(f"the bucket is kept in {where}; logs in {demo.run_dir / 'logs'}")
    specs = demo.run_dir / "specs"
    if specs.is_dir():
        names = sorted(specs.iterdir(), key=lambda p: p.stat().st_mtime_ns)
        console.print(f"specs applied, in order: {', '.join(p.name for p in names)}")


def spec_preview(settings: DemoSettings) -> str:
    """The initial spec as YAML (for docs and --help)."""
    timing = FAST if settings.fast else NORMAL
    return yaml.safe_dump(fleet.spec_value(timing, settings.dir), sort_keys=False)
