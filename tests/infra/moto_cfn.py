"""Completes moto's CloudFormation for the two S3 resource types our template uses.

moto 5 creates an `AWS::S3::Bucket` from CloudFormation but applies only
`BucketEncryption` and `Tags`, and does not know `AWS::S3::BucketPolicy` at all (it warns
and skips it). This shim applies the remaining bucket properties and the bucket policy
through the S3 API, translating CloudFormation property names to the API shapes as
documented (Prefix -> Filter.Prefix, ExpirationInDays -> Expiration.Days, ...). botocore
validates every translated request, and the tests then read the settings back through the
S3 API: what is proven is the value each property resolves to after CloudFormation's
parameters, conditions and `Fn::Sub` are applied, not AWS's own CloudFormation handler
(cfn-lint checks the template against the real resource schemas).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from moto.cloudformation import parsing
from moto.core.common_models import CloudFormationModel
from moto.s3.models import FakeBucket


def _s3(region: str) -> Any:
    return boto3.client("s3", region_name=region)


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ID": rule["Id"],
        "Status": rule["Status"],
        "Filter": {"Prefix": rule.get("Prefix", "")},
    }
    if "ExpirationInDays" in rule:
        out["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if str(rule.get("ExpiredObjectDeleteMarker", "")).lower() == "true":
        out["Expiration"] = {"ExpiredObjectDeleteMarker": True}
    if "NoncurrentVersionExpiration" in rule:
        out["NoncurrentVersionExpiration"] = {
            "NoncurrentDays": int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])
        }
    if "AbortIncompleteMultipartUpload" in rule:
        out["AbortIncompleteMultipartUpload"] = {
            "DaysAfterInitiation": int(
                rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"]
            )
        }
    return out


def _truthy(value: Any) -> bool:
    return str(value).lower() == "true"


def _complete_bucket(name: str, props: dict[str, Any], region: str) -> None:
    s3 = _s3(region)
    if "VersioningConfiguration" in props:
        s3.put_bucket_versioning(
            Bucket=name,
            VersioningConfiguration={"Status": props["VersioningConfiguration"]["Status"]},
        )
    if "PublicAccessBlockConfiguration" in props:
        s3.put_public_access_block(
            Bucket=name,
            PublicAccessBlockConfiguration={
                k: _truthy(v) for k, v in props["PublicAccessBlockConfiguration"].items()
            },
        )
    if "OwnershipControls" in props:
        s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=props["OwnershipControls"])
    if "LifecycleConfiguration" in props:
        s3.put_bucket_lifecycle_configuration(
            Bucket=name,
            LifecycleConfiguration={
                "Rules": [_lifecycle_rule(r) for r in props["LifecycleConfiguration"]["Rules"]]
            },
        )


class BucketPolicyModel(CloudFormationModel):
    """`AWS::S3::BucketPolicy` for moto's CloudFormation (test-only)."""

    def __init__(self, bucket: str) -> None:
        self.bucket = bucket

    @property
    def physical_resource_id(self) -> str:
        return self.bucket

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::S3::BucketPolicy"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return False

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[override]
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> BucketPolicyModel:
        props = cloudformation_json["Properties"]
        _s3(region_name).put_bucket_policy(
            Bucket=props["Bucket"], Policy=json.dumps(props["PolicyDocument"])
        )
        return cls(props["Bucket"])

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[override]
        cls,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> BucketPolicyModel:
        return cls.create_from_cloudformation_json(
            new_resource_name, cloudformation_json, account_id, region_name
        )

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[override]
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> None:
        _s3(region_name).delete_bucket_policy(Bucket=cloudformation_json["Properties"]["Bucket"])


@contextmanager
def complete_s3_cloudformation() -> Iterator[None]:
    """Within the block, moto's CloudFormation applies every S3 property our template uses."""
    original = FakeBucket.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]

    def create(
        cls: type[FakeBucket],
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> FakeBucket:
        bucket = original(
            cls, resource_name, cloudformation_json, account_id, region_name, **kwargs
        )
        _complete_bucket(resource_name, cloudformation_json.get("Properties", {}), region_name)
        return bucket

    FakeBucket.create_from_cloudformation_json = classmethod(create)  # type: ignore[method-assign,assignment]
    parsing.get_model_map.cache_clear()
    parsing.get_name_type_map.cache_clear()
    try:
        yield
    finally:
        FakeBucket.create_from_cloudformation_json = classmethod(original)  # type: ignore[method-assign,assignment]
