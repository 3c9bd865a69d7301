"""IAM policy documents for a Bosun bucket: agent, controller and read-only operator.

docs/security.md#machine-isolation, #least-privilege: an agent's credentials may PUT only `reports/<machine>.json` and GET
only `desired/<machine>.json` (no list, no delete, no other key), and may not change the
identity tags that name its machine.

Two forms of the agent policy:

- the *variable* form, one managed policy for every machine, names the machine through the
  principal tag `bosun-machine` (`${aws:PrincipalTag/bosun-machine}`, resolved by AWS from
  the IAM user's or role's tags, or from a session tag). It is what
  `infra/cloudformation/bosun-bucket.yaml` deploys;
- the *literal* form, one policy per machine with its id written into the ARNs, for
  stores without policy variables (MinIO users, moto) and for operators who prefer
  per-machine policies. `bosun iam-policy MACHINE` prints it.

`substitute(policy, machine)` turns the variable form into the literal one; tests prove the
literal form in moto's IAM and that substitution yields exactly that literal form.
"""

from __future__ import annotations

import copy
from typing import Any

from wire.layout import (
    DESIRED,
    EVENTS,
    HISTORY,
    LEASE,
    REPORTS,
    SPEC_CURRENT,
    STATUS_CLUSTER,
    machine_id,
)

MACHINE_TAG = "bosun-machine"
MACHINE_VARIABLE = "${aws:PrincipalTag/" + MACHINE_TAG + "}"
VERSION = "2012-10-17"

# Actions that would let a principal rename itself (change the tag that names its machine).
IDENTITY_ACTIONS = (
    "iam:TagRole",
    "iam:TagUser",
    "iam:UntagRole",
    "iam:UntagUser",
    "sts:TagSession",
)

# Top-level folders the controller writes (everything in the bucket except `reports/`).
CONTROLLER_WRITES = (
    DESIRED,
    HISTORY,
    EVENTS,
    SPEC_CURRENT.split("/")[0] + "/",
    STATUS_CLUSTER.split("/")[0] + "/",
    LEASE.split("/")[0] + "/",
)

Policy = dict[str, Any]


def normalize_prefix(prefix: str) -> str:
    """'' or 'fleet/' from '', 'fleet', '/fleet/' (the store URL's path)."""
    stripped = prefix.strip("/")
    if not stripped:
        return ""
    for part in stripped.split("/"):
        if not part or part in (".", "..") or any(c in part for c in "*?${}"):
            raise ValueError(
                f"invalid prefix {prefix!r}: use path segments without wildcards or '..' "
                "(for example 'fleet')"
            )
    return stripped + "/"


def _bucket_arn(bucket: str, partition: str) -> str:
    if not bucket or any(c in bucket for c in "*?$/{}"):
        raise ValueError(f"invalid bucket name {bucket!r}")
    return f"arn:{partition}:s3:::{bucket}"


def agent_policy(
    bucket: str, *, prefix: str = "", machine: str | None = None, partition: str = "aws"
) -> Policy:
    """The agent policy: literal for `machine`, or the principal-tag variable form if None."""
    name = MACHINE_VARIABLE if machine is None else machine_id(machine)
    objects = _bucket_arn(bucket, partition) + "/" + normalize_prefix(prefix)
    put_own: dict[str, Any] = {
        "Sid": "PutOwnReport",
        "Effect": "Allow",
        "Action": "s3:PutObject",
        "Resource": f"{objects}{REPORTS}{name}.json",
    }
    get_own: dict[str, Any] = {
        "Sid": "GetOwnDesired",
        "Effect": "Allow",
        "Action": "s3:GetObject",
        "Resource": f"{objects}{DESIRED}{name}.json",
    }
    if machine is None:
        # Without the tag the variable does not resolve and the statement matches nothing;
        # the explicit condition makes that intent visible to readers and linters.
        untagged_guard = {"Null": {f"aws:PrincipalTag/{MACHINE_TAG}": "false"}}
        put_own["Condition"] = untagged_guard
        get_own["Condition"] = copy.deepcopy(untagged_guard)
    return {
        "Version": VERSION,
        "Statement": [
            put_own,
            get_own,
            {
                "Sid": "DenyIdentityChanges",
                "Effect": "Deny",
                "Action": list(IDENTITY_ACTIONS),
                "Resource": "*",
            },
        ],
    }


def controller_policy(bucket: str, *, prefix: str = "", partition: str = "aws") -> Policy:
    """Read everything, write and delete everything but `reports/`, list the bucket."""
    bucket_arn = _bucket_arn(bucket, partition)
    pfx = normalize_prefix(prefix)
    objects = f"{bucket_arn}/{pfx}"
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "ListBucket",
                "Effect": "Allow",
                "Action": ["s3:ListBucket", "s3:GetBucketLocation", "s3:GetBucketVersioning"],
                "Resource": bucket_arn,
            },
            {
                "Sid": "ReadAll",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": f"{objects}*",
            },
            {
                "Sid": "WriteControllerFolders",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:DeleteObject"],
                "Resource": [f"{objects}{folder}*" for folder in CONTROLLER_WRITES],
            },
            {
                "Sid": "ForgetReports",
                "Effect": "Allow",
                "Action": "s3:DeleteObject",
                "Resource": f"{objects}{REPORTS}*",
            },
        ],
    }


def operator_policy(bucket: str, *, prefix: str = "", partition: str = "aws") -> Policy:
    """Read-only: list, read objects and their old versions, read the bucket settings."""
    bucket_arn = _bucket_arn(bucket, partition)
    objects = f"{bucket_arn}/{normalize_prefix(prefix)}"
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "ListAndInspectBucket",
                "Effect": "Allow",
                "Action": [
                    "s3:ListBucket",
                    "s3:ListBucketVersions",
                    "s3:GetBucketLocation",
                    "s3:GetBucketVersioning",
                    "s3:GetLifecycleConfiguration",
                    "s3:GetEncryptionConfiguration",
                    "s3:GetBucketPolicy",
                    "s3:GetBucketPublicAccessBlock",
                ],
                "Resource": bucket_arn,
            },
            {
                "Sid": "ReadObjects",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                "Resource": f"{objects}*",
            },
        ],
    }


def substitute(policy: Policy, machine: str) -> Policy:
    """The variable-form policy with `machine` in place of the principal-tag variable.

    This is what AWS evaluates for a principal tagged `bosun-machine=<machine>`; the
    `Null` guard on the tag is then true by construction and is dropped.
    """
    name = machine_id(machine)

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace(MACHINE_VARIABLE, name)
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        return value

    out: Policy = walk(policy)
    for statement in out["Statement"]:
        if statement.get("Condition") == {"Null": {f"aws:PrincipalTag/{MACHINE_TAG}": "false"}}:
            del statement["Condition"]
    return out
