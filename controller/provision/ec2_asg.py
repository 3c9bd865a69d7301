"""The `ec2-asg` provisioner: sets the desired capacity of an EC2 Auto Scaling group.

The request's absolute `target` becomes the group's desired capacity, clamped to the
group's min and max size (the clamp is reported), so repeating a request changes nothing.
New instances boot with the group's launch template and join as standby; the template's
user data must give each instance its own machine identity (see docs/scaling.md: one
`bosun enroll` output is one machine), and the controller's role needs
autoscaling:SetDesiredCapacity and DescribeAutoScalingGroups on the group.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from controller.provision import ProvisionError, ProvisionRequest, ProvisionResult


class Ec2AsgProvisioner:
    kind = "ec2-asg"

    def __init__(
        self,
        group: str,
        *,
        region: str | None = None,
        endpoint: str | None = None,
        client: Any = None,
    ) -> None:
        self.group = group
        self.client = client or boto3.client(
            "autoscaling",
            region_name=region or "us-east-1",
            endpoint_url=endpoint,
            config=Config(
                retries={"total_max_attempts": 3, "mode": "standard"},
                connect_timeout=5,
                read_timeout=15,
            ),
        )

    def provision(self, request: ProvisionRequest) -> ProvisionResult:
        try:
            groups = self.client.describe_auto_scaling_groups(AutoScalingGroupNames=[self.group])
            found = groups.get("AutoScalingGroups", [])
            if not found:
                raise ProvisionError(f"Auto Scaling group {self.group!r} does not exist")
            asg = found[0]
            current, low, high = (
                int(asg["DesiredCapacity"]),
                int(asg["MinSize"]),
                int(asg["MaxSize"]),
            )
            wanted = min(max(request.target, low), high)
            note = (
                ""
                if wanted == request.target
                else f" (target {request.target} clamped to {low}..{high})"
            )
            if wanted == current:
                return ProvisionResult(
                    request.request_id,
                    (),
                    f"{self.group} already at desired capacity {current}{note}",
                )
            self.client.set_desired_capacity(
                AutoScalingGroupName=self.group, DesiredCapacity=wanted, HonorCooldown=False
            )
        except (ClientError, BotoCoreError) as exc:
            raise ProvisionError(f"Auto Scaling group {self.group!r}: {exc}") from exc
        return ProvisionResult(
            request.request_id,
            (f"asg:{self.group}:{current}->{wanted}",),
            f"{self.group} desired capacity {current} -> {wanted}{note}",
        )
