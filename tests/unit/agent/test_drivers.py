"""Drivers and the all-or-nothing apply, with real files and real processes."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import yaml

from agent.drivers.process import ProcessDriver
from tests.unit.agent.kit import Machine, desired, make_agent, peers, publish, report
from wire.store import DirectoryStore


def wait_for(predicate, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
    except OSError:
        return []


def proc_env(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().decode().split("\0")
    return dict(item.split("=", 1) for item in raw if "=" in item)


def test_files_render_json_yaml_env_template_and_peers(
    tmp_path: Path, bucket: DirectoryStore
) -> None:
    """files renders config, peers and templates in every format, with the configured mode."""
    out = tmp_path / "out"
    services = {
        "lb": {
            "port": 9000,
            "files": [
                {"path": str(out / "c.json")},
                {"path": str(out / "c.yaml"), "format": "yaml", "key": "nested"},
                {"path": str(out / "c.env"), "format": "env", "mode": "0600"},
                {"path": str(out / "peers.json"), "source": "peers"},
                {
                    "path": str(out / "t.conf"),
                    "format": "template",
                    "template": "listen ${port} v=${version} mode=${mode} limit=${config.nested.limit}\n",
                },
            ],
        }
    }
    m = Machine(tmp_path / "m", bucket.url, name="lb-1", services=services).write()
    doc = desired(
        machine="lb-1",
        service="lb",
        version="2.1",
        config={"nested": {"limit": 5}, "name": 'a "q" $x'},
        peers=peers(("web-1", "10.0.0.1", 8080, 90), mirror=(("web-9", "10.0.0.9", 8080, 100),)),
    )
    publish(bucket, doc)
    assert make_agent(m).cycle().ok
    assert json.loads((out / "c.json").read_text())["nested"] == {"limit": 5}
    assert yaml.safe_load((out / "c.yaml").read_text()) == {"limit": 5}
    assert (out / "c.env").read_text() == 'NAME="a \\"q\\" \\$x"\nNESTED="{\\"limit\\":5}"\n'
    assert (out / "c.env").stat().st_mode & 0o777 == 0o600
    assert json.loads((out / "peers.json").read_text()) == {
        "backends": [{"machine": "web-1", "address": "10.0.0.1", "port": 8080, "weight": 90}],
        "mirror": [{"machine": "web-9", "address": "10.0.0.9", "port": 8080, "weight": 100}],
    }
    assert (out / "t.conf").read_text() == "listen 9000 v=2.1 mode=active limit=5\n"


def test_failing_reload_rolls_files_back_and_reports(
    tmp_path: Path, bucket: DirectoryStore
) -> None:
    """A failing reload hook restores the previous files, re-runs hooks for the last-known-good and reports the failure."""
    out = tmp_path / "out"
    log = tmp_path / "hooks.log"
    services = {
        "web": {
            "files": [
                {"path": str(out / "a.json")},
                {"path": str(out / "b.json"), "source": "peers"},
            ],
            "commands": {
                "reload": f'echo "reload $BOSUN_GENERATION" >> {log}; '
                f'[ "$BOSUN_GENERATION" != 2 ] || {{ echo boom-output; exit 3; }}',
                "timeout": 5,
            },
        }
    }
    m = Machine(tmp_path / "m", bucket.url, services=services).write()
    agent = make_agent(m)
    publish(bucket, desired(generation=1, config={"v": 1}))
    agent.cycle()
    first_a, first_b = (out / "a.json").read_bytes(), (out / "b.json").read_bytes()
    publish(
        bucket, desired(generation=2, config={"v": 2}, peers=peers(("web-2", "10.0.0.2", 80, 100)))
    )
    result = agent.cycle()
    assert not result.ok
    assert (out / "a.json").read_bytes() == first_a and (out / "b.json").read_bytes() == first_b
    snap = report(bucket)
    assert snap.applied.result == "failed"
    assert snap.applied.generation == 1
    assert "reload hook exited with 3" in (snap.applied.error or "")
    assert "boom-output" in (snap.applied.error or "")
    assert log.read_text().splitlines() == ["reload 2", "reload 1"]  # failed, then last-known-good
    agent.cycle()  # the same failed document is not retried in a loop
    assert log.read_text().splitlines() == ["reload 2", "reload 1"]
    publish(bucket, desired(generation=3, config={"v": 3}))
    assert agent.cycle().ok
    assert json.loads((out / "a.json").read_text()) == {"v": 3}


def test_hook_timeout_is_killed_and_reported(tmp_path: Path, bucket: DirectoryStore) -> None:
    """A hook that hangs is killed after its timeout and the apply fails with that reason."""
    services = {"web": {"commands": {"install": "sleep 30", "timeout": 0.3}}}
    m = Machine(tmp_path / "m", bucket.url, services=services).write()
    publish(bucket, desired(generation=1))
    started = time.monotonic()
    make_agent(m).cycle()
    assert time.monotonic() - started < 5
    assert "install hook timed out after 0.3s" in (report(bucket).applied.error or "")


def test_process_substitution_env_modes_and_crash_restart(
    tmp_path: Path, bucket: DirectoryStore
) -> None:
    """process runs {version}/{port}/{mode} with BOSUN_* env, keeps running while draining, stops in standby, restarts after a crash."""
    script = "import sys, time; time.sleep(60)"
    services = {
        "web": {
            "port": 8181,
            "process": {
                "command": ["python3", "-c", script, "--version={version}", "--port={port}"],
                "env": {"EXTRA": "1"},
                "stop_timeout": 2,
                "backoff_max": 1,
            },
        }
    }
    m = Machine(tmp_path / "m", bucket.url, services=services).write()
    agent = make_agent(m)
    drv = ProcessDriver(m.state_dir)
    publish(bucket, desired(generation=1, version="1.0", config={"k": "v"}))
    agent.cycle()
    pid = drv.record("web").pid
    assert cmdline(pid)[-2:] == ["--version=1.0", "--port=8181"]
    env = proc_env(pid)
    assert (env["BOSUN_MODE"], env["BOSUN_VERSION"], env["EXTRA"]) == ("active", "1.0", "1")
    assert json.loads(env["BOSUN_CONFIG"]) == {"k": "v"}
    assert "machine.key" not in " ".join(env.values())
    publish(bucket, desired(generation=2, version="1.0", config={"k": "v"}, mode="draining"))
    agent.cycle()
    assert drv.record("web").pid == pid and drv.alive(drv.record("web"))
    publish(bucket, desired(generation=3, version="1.1", config={"k": "v"}))
    agent.cycle()
    new_pid = drv.record("web").pid
    assert new_pid != pid and cmdline(new_pid)[-2] == "--version=1.1"
    assert wait_for(lambda: not cmdline(pid))
    os.killpg(new_pid, signal.SIGKILL)  # crash
    assert wait_for(lambda: not drv.alive(drv.record("web")))
    assert report(bucket).services["web"].state == "running"
    agent.cycle()  # the cycle supervises: restart
    restarted = drv.record("web")
    assert restarted.pid != new_pid and drv.alive(restarted) and restarted.restarts == 1
    publish(bucket, desired(generation=4, version="1.1", mode="standby"))
    agent.cycle()
    assert not drv.alive(drv.record("web"))
    assert report(bucket).services["web"].state == "stopped"


def test_crossing_the_shadow_line_restarts_the_process(
    tmp_path: Path, bucket: DirectoryStore
) -> None:
    """shadow -> canary restarts with BOSUN_MODE=canary (no production writes as a shadow); canary -> active does not."""
    services = {"web": {"process": {"command": ["sleep", "60"], "stop_timeout": 2}}}
    m = Machine(tmp_path / "m", bucket.url, services=services).write()
    agent = make_agent(m)
    drv = ProcessDriver(m.state_dir)
    publish(bucket, desired(generation=1, version="2.0", mode="shadow"))
    agent.cycle()
    shadow_pid = drv.record("web").pid
    assert proc_env(shadow_pid)["BOSUN_MODE"] == "shadow"
    publish(bucket, desired(generation=2, version="2.0", mode="canary"))
    agent.cycle()
    canary_pid = drv.record("web").pid
    assert canary_pid != shadow_pid and proc_env(canary_pid)["BOSUN_MODE"] == "canary"
    publish(bucket, desired(generation=3, version="2.0", mode="active"))
    agent.cycle()
    assert drv.record("web").pid == canary_pid
    publish(bucket, desired(generation=4, version="2.0", mode="standby"))
    agent.cycle()


def test_switching_service_stops_the_other(tmp_path: Path, bucket: DirectoryStore) -> None:
    """A machine runs one service: moving from web to api stops web's process and runs api's stop hook path."""
    services = {
        name: {"process": {"command": ["sleep", "60"], "stop_timeout": 2}}
        for name in ("web", "api")
    }
    m = Machine(tmp_path / "m", bucket.url, services=services).write()
    agent = make_agent(m)
    drv = ProcessDriver(m.state_dir)
    publish(bucket, desired(generation=1, service="web"))
    agent.cycle()
    assert drv.alive(drv.record("web"))
    publish(bucket, desired(generation=2, service="api"))
    agent.cycle()
    assert not drv.alive(drv.record("web")) and drv.alive(drv.record("api"))
    drv.stop("api", None)


def test_unknown_service_fails_apply_and_keeps_running(
    tmp_path: Path, bucket: DirectoryStore
) -> None:
    """A desired service without local config fails the apply with the fix, keeping the last-known-good."""
    m = Machine(tmp_path / "m", bucket.url, services={"web": {}}).write()
    agent = make_agent(m)
    publish(bucket, desired(generation=1))
    agent.cycle()
    publish(bucket, desired(generation=2, service="db"))
    agent.cycle()
    snap = report(bucket)
    assert snap.applied.generation == 1 and snap.applied.result == "failed"
    assert "no entry under services" in (snap.applied.error or "")


def test_hooks_install_restart_reload_stop_get_desired_fields(
    tmp_path: Path, bucket: DirectoryStore
) -> None:
    """install gets the version (argv placeholder and env), restart runs on a new version, reload on changed files, stop on standby."""
    log = tmp_path / "hooks.log"
    services = {
        "web": {
            "files": [{"path": str(tmp_path / "out" / "c.json")}],
            "commands": {
                "install": [
                    "sh",
                    "-c",
                    f'echo "install $1 $BOSUN_MODE" >> {log}',
                    "sh",
                    "{version}",
                ],
                "restart": f'echo "restart $BOSUN_VERSION" >> {log}',
                "reload": f'echo "reload $BOSUN_CONFIG" >> {log}',
                "stop": f'echo "stop $BOSUN_MODE" >> {log}',
            },
        }
    }
    m = Machine(tmp_path / "m", bucket.url, services=services).write()
    agent = make_agent(m)
    steps = [
        desired(generation=1, version="1.0", config={"a": 1}),
        desired(generation=2, version="1.0", config={"a": 2}),
        desired(generation=3, version="1.1", config={"a": 2}),
        desired(generation=4, version="1.1", config={"a": 2}, mode="standby"),
    ]
    for doc in steps:
        publish(bucket, doc)
        assert agent.cycle().ok
    assert log.read_text().splitlines() == [
        "install 1.0 active",
        "restart 1.0",
        'reload {"a":2}',
        "install 1.1 active",
        "restart 1.1",
        "stop standby",
    ]
