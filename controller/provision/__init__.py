"""Provisioners: how the controller gets more (or fewer) machines when standby runs out.

The planner decides *that* a service needs machines and emits a `ProvisionRequest`; the
cycle hands it to the provisioner configured for that service. A provisioned machine
enrolls itself at boot (cloud-init from `bosun enroll`) and joins as standby.

Requests carry an absolute `target` (machines wanted in the service's pool) as well as the
`count` of new ones, so a provisioner that can set an absolute size (an Auto Scaling group)
is idempotent by construction, and `request_id` lets a command provisioner deduplicate.

    command   runs a local command; the JSON request on stdin, a JSON answer on stdout
    ec2-asg   sets the desired capacity of an EC2 Auto Scaling group (boto3)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from wire.errors import BosunError


class ProvisionError(BosunError):
    """A provisioner could not carry out a request; the message says which and why."""


@dataclass(frozen=True, slots=True)
class ProvisionRequest:
    service: str
    count: int  # new machines wanted (negative: machines that can go)
    target: int  # machines wanted in the service's pool in total
    reason: str
    request_id: str

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "count": self.count,
            "target": self.target,
            "reason": self.reason,
            "request_id": self.request_id,
        }


@dataclass(frozen=True, slots=True)
class ProvisionResult:
    request_id: str
    started: tuple[str, ...]  # what was started (machine or instance ids, or a capacity change)
    detail: str = ""


class Provisioner(Protocol):
    kind: str

    def provision(self, request: ProvisionRequest) -> ProvisionResult:
        """Carry out `request`, or raise ProvisionError."""
        ...


def build_provisioner(settings: dict[str, Any]) -> Provisioner:
    """A provisioner from its spec settings: `{type: command, command: [...], timeout: 60}`
    or `{type: ec2-asg, group: NAME, region: R, endpoint: URL}`."""
    kind = settings.get("type")
    if kind == "command":
        from controller.provision.command import CommandProvisioner

        command = settings.get("command")
        if (
            not isinstance(command, list)
            or not command
            or not all(isinstance(c, str) for c in command)
        ):
            raise ProvisionError("provisioner.command: expected a non-empty list of strings (argv)")
        return CommandProvisioner(command, timeout=float(settings.get("timeout", 60)))
    if kind == "ec2-asg":
        from controller.provision.ec2_asg import Ec2AsgProvisioner

        group = settings.get("group")
        if not isinstance(group, str) or not group:
            raise ProvisionError("provisioner.group: expected the Auto Scaling group name")
        return Ec2AsgProvisioner(
            group, region=settings.get("region"), endpoint=settings.get("endpoint")
        )
    raise ProvisionError(f"provisioner.type: expected 'command' or 'ec2-asg', got {kind!r}")
