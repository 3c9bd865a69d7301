"""The CloudFormation template lints clean and deploys the bucket and policies it promises."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws

from controller.operations.policies import agent_policy, controller_policy, operator_policy
from tests.infra.moto_cfn import complete_s3_cloudformation

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "infra" / "cloudformation" / "bosun-bucket.yaml"
REGION = "us-east-1"


def test_cfn_lint_passes() -> None:
    """cfn-lint finds no error or warning in the template."""
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    done = subprocess.run(
        [str(cfn_lint), str(TEMPLATE)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _deploy(params: dict[str, str]) -> dict[str, str]:
    cfn = boto3.client("cloudformation", region_name=REGION)
    cfn.create_stack(
        StackName="bosun",
        TemplateBody=TEMPLATE.read_text(),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
        Capabilities=["CAPABILITY_IAM"],
    )
    stack = cfn.describe_stacks(StackName="bosun")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack
    return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}


def _policy_document(arn: str) -> Any:
    iam = boto3.client("iam", region_name=REGION)
    version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    doc = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
    return json.loads(doc) if isinstance(doc, str) else doc


@pytest.mark.parametrize("prefix", ["", "fleet/"])
def test_template_deploys_locked_down_bucket(prefix: str) -> None:
    """Deployed into moto, the bucket is versioned, encrypted, private, TLS-only, with lifecycle rules."""
    params = {
        "BucketName": "bosun-fleet",
        "Prefix": prefix,
        "HistoryRetentionDays": "45",
        "NoncurrentVersionRetentionDays": "7",
    }
    with mock_aws(), complete_s3_cloudformation():
        out = _deploy(params)
        s3 = boto3.client("s3", region_name=REGION)
        bucket = out["BucketName"]
        assert bucket == "bosun-fleet"
        assert out["StoreUrl"] == f"s3://bosun-fleet/{prefix}"

        assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
        sse = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
        assert sse["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
        pab = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        assert pab == {
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        }

        rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}
        assert set(rules) == {"expire-history", "expire-events", "expire-noncurrent-versions"}
        assert rules["expire-history"]["Filter"]["Prefix"] == f"{prefix}history/"
        assert rules["expire-history"]["Expiration"]["Days"] == 45
        assert rules["expire-events"]["Filter"]["Prefix"] == f"{prefix}events/"
        assert rules["expire-events"]["Expiration"]["Days"] == 45
        noncurrent = rules["expire-noncurrent-versions"]
        assert noncurrent["Filter"]["Prefix"] == prefix
        assert noncurrent["NoncurrentVersionExpiration"]["NoncurrentDays"] == 7
        assert all(r["Status"] == "Enabled" for r in rules.values())

        policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
        tls = next(s for s in policy["Statement"] if s["Sid"] == "DenyInsecureTransport")
        assert tls["Effect"] == "Deny" and tls["Principal"] == "*" and tls["Action"] == "s3:*"
        assert tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        assert sorted(tls["Resource"]) == ["arn:aws:s3:::bosun-fleet", "arn:aws:s3:::bosun-fleet/*"]


@pytest.mark.parametrize("prefix", ["", "fleet/"])
def test_template_policies_equal_the_code(prefix: str) -> None:
    """The deployed managed policies are exactly what controller.operations.policies builds (agent in variable form)."""
    params = {"BucketName": "bosun-fleet", "Prefix": prefix}
    with mock_aws(), complete_s3_cloudformation():
        out = _deploy(params)
        agent = _policy_document(out["AgentPolicyArn"])
        controller = _policy_document(out["ControllerPolicyArn"])
        operator = _policy_document(out["OperatorPolicyArn"])
    assert agent == agent_policy("bosun-fleet", prefix=prefix)
    assert controller == controller_policy("bosun-fleet", prefix=prefix)
    assert operator == operator_policy("bosun-fleet", prefix=prefix)


def test_template_yaml_has_no_literal_machine_names() -> None:
    """The template's agent policy names machines only through the principal tag variable."""

    class Loader(yaml.SafeLoader):
        pass

    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode):
            return loader.construct_scalar(node)
        assert isinstance(node, yaml.SequenceNode)
        return loader.construct_sequence(node)

    for tag in ("!Sub", "!Ref", "!GetAtt", "!If", "!Equals", "!Not"):
        Loader.add_constructor(tag, construct)
    doc = yaml.load(TEMPLATE.read_text(), Loader=Loader)
    statements = doc["Resources"]["AgentPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    resources = [s["Resource"] for s in statements if s["Effect"] == "Allow"]
    assert resources and all("${!aws:PrincipalTag/bosun-machine}.json" in r for r in resources)
