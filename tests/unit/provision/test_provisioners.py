"""Provisioners: a real command, and moto's EC2 Auto Scaling."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from controller.provision import ProvisionError, ProvisionRequest, build_provisioner
from controller.provision.command import CommandProvisioner
from controller.provision.ec2_asg import Ec2AsgProvisioner

REQUEST = ProvisionRequest(
    service="media", count=2, target=6, reason="standby exhausted", request_id="media-r7-1"
)


def script(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / "provision.py"
    path.write_text("import json, sys\n" + body)
    return [sys.executable, str(path)]


def test_command_gets_the_request_on_stdin_and_its_answer_is_returned(tmp_path: Path) -> None:
    """The JSON request reaches the program; its 'started' list comes back."""
    log = tmp_path / "requests.jsonl"
    argv = script(
        tmp_path,
        f"""
req = json.load(sys.stdin)
open({str(log)!r}, "a").write(json.dumps(req) + "\\n")
print(json.dumps({{"started": [f"{{req['service']}}-{{i}}" for i in range(req['count'])], "detail": "ok"}}))
""",
    )
    result = CommandProvisioner(argv).provision(REQUEST)
    assert result.started == ("media-0", "media-1") and result.request_id == "media-r7-1"
    assert json.loads(log.read_text()) == REQUEST.to_json()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("sys.stderr.write('quota exceeded'); sys.exit(3)", "exited 3: quota exceeded"),
        ("print('not json')", "expected JSON"),
        ("print(json.dumps({'started': 'media-1'}))", "a list of strings"),
        ("import time; time.sleep(5)", "did not finish within 0.5s"),
    ],
)
def test_command_failures_are_clear_errors(tmp_path: Path, body: str, message: str) -> None:
    """Non-zero exit, bad answers and timeouts name the command and the problem."""
    with pytest.raises(ProvisionError, match=message):
        CommandProvisioner(script(tmp_path, body), timeout=0.5).provision(REQUEST)


def test_missing_command_is_a_clear_error() -> None:
    """A command that does not exist is named."""
    with pytest.raises(ProvisionError, match="not found"):
        CommandProvisioner(["/nonexistent/provision"]).provision(REQUEST)


@pytest.fixture
def asg(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        ec2 = boto3.client("ec2", region_name="us-east-1")
        ec2.create_launch_template(
            LaunchTemplateName="media",
            LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "t3.micro"},
        )
        client = boto3.client("autoscaling", region_name="us-east-1")
        client.create_auto_scaling_group(
            AutoScalingGroupName="media-asg",
            LaunchTemplate={"LaunchTemplateName": "media"},
            MinSize=1,
            MaxSize=5,
            DesiredCapacity=2,
            AvailabilityZones=["us-east-1a"],
        )
        yield client


def _desired(client: Any) -> int:
    return int(
        client.describe_auto_scaling_groups(AutoScalingGroupNames=["media-asg"])[
            "AutoScalingGroups"
        ][0]["DesiredCapacity"]
    )


def test_asg_desired_capacity_follows_the_target_clamped_to_max(asg: Any) -> None:
    """Target 6 on a group with max 5 sets 5 and says it clamped."""
    result = Ec2AsgProvisioner("media-asg", client=asg).provision(REQUEST)
    assert _desired(asg) == 5
    assert "clamped to 1..5" in result.detail and result.started == ("asg:media-asg:2->5",)


def test_asg_requests_are_idempotent(asg: Any) -> None:
    """The same request twice changes the capacity once."""
    prov = Ec2AsgProvisioner("media-asg", client=asg)
    req = ProvisionRequest("media", 1, 3, "r", "id")
    first, second = prov.provision(req), prov.provision(req)
    assert _desired(asg) == 3 and first.started and not second.started


def test_asg_missing_group_is_a_clear_error(asg: Any) -> None:
    """A group that does not exist is named."""
    with pytest.raises(ProvisionError, match="'nope' does not exist"):
        Ec2AsgProvisioner("nope", client=asg).provision(REQUEST)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"type": "teleport"}, "expected 'command' or 'ec2-asg'"),
        ({"type": "command", "command": "make machines"}, "non-empty list of strings"),
        ({"type": "ec2-asg"}, "Auto Scaling group name"),
    ],
)
def test_bad_provisioner_settings_are_refused(settings: dict[str, Any], message: str) -> None:
    """Unknown types and missing settings are errors naming the field."""
    with pytest.raises(ProvisionError, match=message):
        build_provisioner(settings)


def test_build_command_provisioner() -> None:
    """Settings build the right provisioner."""
    prov = build_provisioner({"type": "command", "command": ["/bin/true"], "timeout": 5})
    assert isinstance(prov, CommandProvisioner) and prov.timeout == 5
