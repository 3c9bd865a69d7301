"""A private moto server with IAM enforcement on, shared by the infra tests.

moto checks requests against IAM only after `INITIAL_NO_AUTH_ACTION_COUNT` unauthenticated
actions; the server's `/moto-api/reset-auth` endpoint sets that count. The fixture seeds
the bucket and the users while authentication is off, then sets the count to 0: from then
on every request must be signed by one of the users created here and is checked against
the policies attached to it (moto matches literal resource ARNs and ignores conditions).

moto 5.2.6 is excluded (pyproject.toml; the lock holds 5.2.5). It authorizes S3 requests with
the *operation* name its router matched, so a ListObjectsV2 call is checked as the action
`s3:ListObjectsV2`, which IAM does not have: real S3 authorizes ListObjectsV2 (and ListObjects)
as `s3:ListBucket`, the action our controller and operator policies grant. The cause is in
`moto/core/responses.py`: up to 5.2.5 `BaseResponse._get_action()` first returned
`self.querystring["Action"]`, and for S3 `self.querystring` is the same dict as `self.data`,
where `S3Response._set_action()` had stored the IAM action from its ACTION_MAP ("ListBucket"
for a bucket GET). 5.2.6 stopped aliasing the two and dropped that lookup ("get rid of all
overrides once new routing is working"), so `_authenticate_and_authorize_s3_action()` now sees
the router's operation name. Versions before 5.2.5 fail differently with today's botocore
(SignatureDoesNotMatch on every signed request). The policy is right; the emulator regressed.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from controller.operations.policies import MACHINE_TAG, agent_policy, controller_policy
from tests.support.servers import ACCESS_KEY, SECRET_KEY, S3Server, start_moto
from wire.documents import Desired, seal
from wire.layout import desired_key
from wire.retry import RetryPolicy
from wire.signing import derive_machine_key, format_kid
from wire.store.s3 import S3Store

BUCKET = "bosun-iam"
PREFIX = "fleet"
LOOP_PREFIX = "loop"  # an empty prefix for the controller + agent loop test
MASTER = bytes(range(32))
SEEDED = [
    "desired/web-2.json",
    "reports/web-1.json",
    "reports/web-2.json",
    "control/lease.json",
    "spec/current.json",
    "status/cluster.json",
]


@dataclass(frozen=True)
class Principal:
    access_key: str
    secret_key: str

    def store(self, server: S3Server) -> S3Store:
        return S3Store(
            BUCKET,
            prefix=PREFIX,
            endpoint=server.endpoint,
            access_key=self.access_key,
            secret_key=self.secret_key,
            retry=RetryPolicy.none(),
        )

    def client(self, server: S3Server, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=server.endpoint,
            region_name="us-east-1",
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
        )

    def env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
        }


@dataclass(frozen=True)
class Enforced:
    server: S3Server
    web1: Principal
    greedy: Principal
    controller: Principal
    desired_web1: bytes
    loop_controller: Principal
    loop_web1: Principal

    def store_url(self) -> str:
        return self.server.store_url(BUCKET, PREFIX)


def signed_desired(machine: str) -> bytes:
    """A desired document signed like the controller (machine key at epoch 0 of MASTER)."""
    now = time.time()
    doc = Desired(
        machine=machine,
        generation=1,
        fence=1,
        issued_at=now,
        expires_at=now + 3600,
        spec_revision=1,
        mode="active",
        service="web",
        version="1.0",
        config={},
    )
    return seal(
        doc,
        key=derive_machine_key(MASTER, machine, 0),
        kid=format_kid(machine, 0),
        object_key=desired_key(machine),
    )


def _reset_auth(server: S3Server, count: str) -> None:
    req = urllib.request.Request(
        server.endpoint + "/moto-api/reset-auth",
        data=count.encode(),
        method="POST",
        headers={"Content-Type": "text/plain"},
    )
    urllib.request.urlopen(req, timeout=10).close()


def _user(
    iam: Any, name: str, *policies: dict[str, Any], tags: dict[str, str] | None = None
) -> Principal:
    iam.create_user(UserName=name, Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()])
    for n, doc in enumerate(policies):
        arn = iam.create_policy(PolicyName=f"{name}-{n}", PolicyDocument=json.dumps(doc))["Policy"][
            "Arn"
        ]
        iam.attach_user_policy(UserName=name, PolicyArn=arn)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return Principal(key["AccessKeyId"], key["SecretAccessKey"])


@pytest.fixture(scope="session")
def enforced() -> Iterator[Enforced]:
    """Seeded bucket and users on a private moto server, then IAM enforcement switched on."""
    server = start_moto()
    try:
        root = Principal(ACCESS_KEY, SECRET_KEY)
        s3 = root.client(server, "s3")
        s3.create_bucket(Bucket=BUCKET)
        for key in SEEDED:
            s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/{key}", Body=b'{"seed": true}')
        desired_web1 = signed_desired("web-1")
        s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/desired/web-1.json", Body=desired_web1)
        iam = root.client(server, "iam")
        web1 = _user(
            iam,
            "web-1",
            agent_policy(BUCKET, prefix=PREFIX, machine="web-1"),
            tags={MACHINE_TAG: "web-1"},
        )
        # An agent that some other policy over-grants: the agent policy's Deny still holds.
        over_grant = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": ["iam:*", "sts:*"], "Resource": "*"}],
        }
        greedy = _user(
            iam,
            "web-3",
            agent_policy(BUCKET, prefix=PREFIX, machine="web-3"),
            over_grant,
            tags={MACHINE_TAG: "web-3"},
        )
        controller = _user(iam, "controller", controller_policy(BUCKET, prefix=PREFIX))
        loop_controller = _user(
            iam, "loop-controller", controller_policy(BUCKET, prefix=LOOP_PREFIX)
        )
        loop_web1 = _user(
            iam, "loop-web-1", agent_policy(BUCKET, prefix=LOOP_PREFIX, machine="web-1")
        )
        _reset_auth(server, "0")
        yield Enforced(server, web1, greedy, controller, desired_web1, loop_controller, loop_web1)
    finally:
        server.stop()
