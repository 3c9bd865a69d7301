"""The controller cycle hands the planner's provision requests to a real command provisioner."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import yaml
from click.testing import CliRunner

from controller.cli import cli
from controller.planner.model import ProvisionNeeded
from controller.shell.cycle import Controller, run_provisions
from controller.shell.lease import LeaseSettings
from controller.spec.load import load_yaml
from controller.spec.revisions import apply
from tests.unit.controller.sim import SimAgent
from wire.layout import EVENTS, STATUS_CLUSTER
from wire.store import DirectoryStore, StoredObject

MASTER = bytes(range(32))


def _script(tmp_path: Path, answer: str = '{"started": ["vm-1"], "detail": "booting"}') -> Path:
    log = tmp_path / "requests.jsonl"
    script = tmp_path / "grow.sh"
    script.write_text(f"#!/bin/sh\ncat >> {log}\necho >> {log}\necho '{answer}'\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def _requests(tmp_path: Path) -> list[dict[str, object]]:
    log = tmp_path / "requests.jsonl"
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def _events(store: DirectoryStore) -> list[dict[str, object]]:
    out = []
    for info in store.list(EVENTS):
        got = store.get(info.key)
        assert isinstance(got, StoredObject)
        out += [json.loads(line) for line in got.body.decode().splitlines() if line]
    return out


def test_run_provisions_passes_the_request_to_the_command_and_records_its_answer(
    tmp_path: Path,
) -> None:
    """A real script gets the request as JSON on stdin; its answer becomes provision.started."""
    script = _script(tmp_path)
    spec = load_yaml(
        yaml.safe_dump(
            {
                "provisioner": {"type": "command", "command": [str(script)]},
                "services": {"voice": {"version": "1", "count": 1}},
            }
        )
    )
    req = ProvisionNeeded("voice", 2, 3, "1 of 3 machines", "voice-4")
    events = run_provisions(spec, (req,))
    assert _requests(tmp_path) == [
        {"service": "voice", "count": 2, "target": 3, "reason": "1 of 3 machines",
         "request_id": "voice-4"}
    ]  # fmt: skip
    assert events[0]["kind"] == "provision.started"
    assert events[0]["data"]["started"] == ["vm-1"]


def test_a_failing_provisioner_is_an_event_not_a_crash(tmp_path: Path) -> None:
    """A command that answers garbage yields provision.failed naming the problem."""
    script = _script(tmp_path, answer="not json")
    spec = load_yaml(
        yaml.safe_dump(
            {"services": {"voice": {"version": "1", "count": 1,
                                    "provisioner": {"type": "command", "command": [str(script)]}}}}
        )
    )  # fmt: skip
    events = run_provisions(spec, (ProvisionNeeded("voice", 1, 2, "short", "voice-1"),))
    assert [e["kind"] for e in events] == ["provision.failed"]
    assert "provisioner command" in str(events[0]["reason"])


def test_controller_cycles_ask_the_provisioner_once_while_machines_boot(tmp_path: Path) -> None:
    """Two controller cycles with warm standby missing call the command exactly once, and
    the request and its result are events in the bucket."""
    script = _script(tmp_path)
    store = DirectoryStore(tmp_path / "bucket")
    spec = {
        "settings": {"controller_interval": "10s", "heartbeat_timeout": "30s"},
        "provisioner": {"type": "command", "command": [str(script)]},
        "services": {
            "voice": {
                "version": "1",
                "count": 1,
                "scale": {"min": 1, "max": 3, "metric": "sessions.voice",
                          "target_per_machine": 10, "standby": 1, "boot_timeout": "10m"},
            }
        },
    }  # fmt: skip
    apply(store, load_yaml(yaml.safe_dump(spec)), now=time.time())
    agent = SimAgent(store, MASTER, "voice-a", eligible=("voice",))
    ctl = Controller(store, MASTER, holder="ctl", lease=LeaseSettings(30, 20))
    agent.report()
    for _ in range(3):
        ctl.cycle()
        agent.pull()
        agent.report()
    assert [r["request_id"] for r in _requests(tmp_path)] == ["voice-1"]
    kinds = [e["kind"] for e in _events(store)]
    assert kinds.count("provision.requested") == 1
    assert kinds.count("provision.started") == 1
    # the scaler's state is in status/cluster.json and in `bosun status`
    got = store.get(STATUS_CLUSTER)
    assert isinstance(got, StoredObject)
    scale = json.loads(got.body)["services"]["voice"]["scale"]
    assert (scale["min"], scale["max"], scale["metric"]) == (1, 3, "sessions.voice"), scale
    assert scale["target_per_machine"] == 10 and scale["measured"] == 0, scale
    shown = CliRunner().invoke(cli, ["status", "--store", store.url], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert "1..3: sessions.voice = 0 (target 10/machine)" in shown.output, shown.output
