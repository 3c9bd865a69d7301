"""`scripts/demo --fast` (`python -m devkit.demo`) run for real: the story's phases, client errors, cleanup, the bucket.

Each test runs the demo as a subprocess (its own bucket directory, 8 agent daemons, the
controller, the example app and balancer) with a bounded timeout and reads the
machine-readable summary it writes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
# what scripts/demo runs (from the repository root: devkit/ is not in the installed package)
DEMO = [sys.executable, "-m", "devkit.demo"]
PHASES = ["converge", "follow", "replace", "release", "revert", "drain"]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BOSUN_"))}
    env["COLUMNS"] = "160"
    return env


def _run_bounded(argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run the demo; past `timeout`, SIGTERM it so it still stops everything it started."""
    proc = subprocess.Popen(
        argv, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        try:
            stdout, stderr = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate(timeout=10)
        pytest.fail(f"the demo took over {timeout:g}s; output:\n{stdout[-4000:]}{stderr[-2000:]}")
    return subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr)


def _gone(proc: dict[str, Any]) -> bool:
    """The recorded process no longer exists (or its pid now belongs to another process)."""
    try:
        stat = Path(f"/proc/{proc['pid']}/stat").read_text()
    except OSError:
        return True
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[0] in ("Z", "X") or int(fields[19]) != proc["start_ticks"]


def _assert_all_stopped(summary: dict[str, Any]) -> None:
    assert summary["processes_left_running"] == 0
    assert summary["processes"], "the demo recorded no process at all"
    alive = [p for p in summary["processes"] if not _gone(p)]
    assert not alive, f"processes still running after the demo: {alive}"


@pytest.mark.timeout(180)
def test_fast_demo_tells_the_whole_story_and_cleans_up(tmp_path: Path) -> None:
    """Every phase ends ok, clients see errors only from the bad
    release's canary, every process is stopped and the bucket keeps status/cluster.json."""
    out = tmp_path / "summary.json"
    run_dir = tmp_path / "demo"
    result = _run_bounded([*DEMO, "--fast", "--dir", str(run_dir), "--summary-json", str(out)], 120)
    assert out.exists(), result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads(out.read_text())
    phases = {p["name"]: p for p in summary["phases"]}
    report = "\n".join(f"{p['name']}: {p['status']} {p['details']}" for p in summary["phases"]) + (
        "\n" + result.stdout[-3000:] + result.stderr[-2000:]
    )
    assert list(phases) == PHASES, report
    for name, p in phases.items():
        assert p["status"] == "ok", f"{name} failed:\n{report}"
        assert p["client_errors"] == p["canary_window_errors"], f"{name}:\n{report}"
        if name != "revert":
            assert p["canary_window_errors"] == 0, report
    assert summary["totals"]["client_errors_outside_canary_window"] == 0, report
    assert phases["follow"]["requests"] > 0 and phases["replace"]["requests"] > 0, report
    assert phases["replace"]["details"]["replaced_by"], report
    assert {"shadow", "canary", "steps"} <= set(phases["release"]["details"]["states"])
    assert phases["revert"]["details"]["reverted"] is True, report
    assert result.returncode == 0, report
    assert summary["ok"] is True
    _assert_all_stopped(summary)
    bucket = Path(summary["bucket_dir"])
    assert bucket == run_dir / "bucket"
    status = json.loads((bucket / "status" / "cluster.json").read_text())
    assert status["services"]["web"]["count"] >= 3


@pytest.mark.timeout(60)
def test_sigterm_stops_every_process_the_demo_started(tmp_path: Path) -> None:
    """A second demo refuses the directory of a running one; SIGTERM in the middle of the
    story stops the agents, the controller and the services they started, and still writes
    the summary (interrupted, nothing left running)."""
    out = tmp_path / "summary.json"
    run_dir = tmp_path / "demo"
    proc = subprocess.Popen(
        [*DEMO, "--fast", "--dir", str(run_dir), "--summary-json", str(out)],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        # wait until the agents have started services (a process record exists)
        while time.monotonic() < deadline and not list(run_dir.glob("machines/*/state/proc/*")):
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            time.sleep(0.2)
        assert list(run_dir.glob("machines/*/state/proc/*")), "no service started within 30 s"
        second = subprocess.run(
            [*DEMO, "--fast", "--dir", str(run_dir)],
            env=_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1 and "still running" in second.stderr, second.stderr
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    assert proc.returncode == 130, output.decode()[-3000:]
    summary = json.loads(out.read_text())
    assert summary["interrupted"] is True and summary["ok"] is False
    names = {p["name"] for p in summary["processes"]}
    assert "controller" in names and any(n.startswith("agent-") for n in names)
    assert any("/" in n for n in names), f"no agent-started service recorded: {names}"
    _assert_all_stopped(summary)


def test_refuses_a_directory_it_did_not_make(tmp_path: Path) -> None:
    """--dir pointing at someone's non-empty folder is refused and nothing in it is touched."""
    mine = tmp_path / "important"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    result = subprocess.run(
        [*DEMO, "--fast", "--dir", str(mine)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "was not made by `scripts/demo`" in result.stderr
    assert (mine / "notes.txt").read_text() == "keep me"


@pytest.mark.heavy
@pytest.mark.timeout(240)
@pytest.mark.parametrize("lb", ["nginx", "haproxy", "caddy"])
def test_the_demo_story_runs_on_a_real_balancer(tmp_path: Path, lb: str) -> None:
    """`scripts/demo --fast --lb KIND`: every phase ends ok behind a real HAProxy, nginx or
    Caddy driven by its recipe; clients see errors only in the bad release's canary window;
    the release has a shadow stage where the balancer mirrors (nginx)."""
    from devkit.demo.balancers import HOW, find_binary

    if find_binary(lb) is None:
        pytest.skip(f"{lb} is not installed ({HOW[lb]})")
    out = tmp_path / "summary.json"
    run_dir = Path(tempfile.mkdtemp(prefix="bd-"))  # unix socket paths must stay short
    argv = [*DEMO, "--fast", "--lb", lb, "--dir", str(run_dir / "demo"),
            "--summary-json", str(out)]  # fmt: skip
    result = _run_bounded(argv, 200)
    assert out.exists(), result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads(out.read_text())
    phases = {p["name"]: p for p in summary["phases"]}
    report = "\n".join(f"{p['name']}: {p['status']} {p['details']}" for p in summary["phases"])
    assert list(phases) == PHASES, report
    assert all(p["status"] == "ok" for p in phases.values()), report
    assert summary["totals"]["client_errors_outside_canary_window"] == 0, report
    stages = {"canary", "steps"} | ({"shadow"} if lb == "nginx" else set())
    assert stages <= set(phases["release"]["details"]["states"]), report
    config = {"haproxy": "haproxy.cfg", "nginx": "nginx.conf", "caddy": "Caddyfile"}[lb]
    assert (run_dir / "demo" / "machines" / "lb-1" / "state" / "lb" / config).exists()
    assert result.returncode == 0, report
    _assert_all_stopped(summary)
    shutil.rmtree(run_dir)


def test_a_real_balancer_with_too_long_a_socket_path_is_a_clear_error(tmp_path: Path) -> None:
    """--lb haproxy in a run directory too deep for a unix socket fails at once, saying why."""
    deep = tmp_path / ("d" * 90)
    result = subprocess.run(
        [*DEMO, "--fast", "--lb", "haproxy", "--dir", str(deep)],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert "is longer than a unix socket allows (107 bytes); use a shorter --dir" in result.stderr
