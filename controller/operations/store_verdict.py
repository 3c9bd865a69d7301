"""`bosun doctor`'s verdict: what is wrong with a store, and the fix, from what went wrong.

A setup mistake is not the store's fault: an unreachable endpoint, missing or unknown
credentials, a missing bucket or a policy that refuses the controller are told apart from a
store that lacks a behaviour Bosun relies on, each with the one thing to do about it. The
classification reads only the error (its class in `wire.errors` and the S3 code the store
client put in its message), so it does not depend on which S3 client raised it.

    reach(store) ──ok──▶ probe(store) ──▶ verdict(results)
        │ error                                 │ a probe's setup error first, then
        ▼                                       ▼ missing behaviours
    classify(error)                         Verdict(kind, problem, fix)
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from controller.operations.store_probe import PROBE_PREFIX, Probe, missing
from wire.errors import (
    BosunError,
    StoreAccessDenied,
    StoreConfigError,
    StoreError,
    StoreUnavailable,
)
from wire.store import Store

Kind = Literal[
    "ok",
    "unreachable",
    "no_credentials",
    "bad_credentials",
    "missing_bucket",
    "access_denied",
    "missing_behaviour",
    "store_error",
]

_BAD_KEY_CODES = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken")


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: Kind
    problem: str
    fix: str

    @property
    def ok(self) -> bool:
        return self.kind == "ok"

    def text(self) -> str:
        return self.problem if self.ok else f"{self.problem}\nfix: {self.fix}"


@dataclass(frozen=True, slots=True)
class Where:
    """What the fixes name: the store URL as given, its endpoint and bucket."""

    url: str
    endpoint: str | None = None
    bucket: str | None = None

    def endpoint_text(self) -> str:
        return self.endpoint or "the AWS S3 endpoint"


def classify(error: BaseException, where: Where) -> Verdict:
    """The verdict for one error met while talking to the store."""
    text = str(error)
    bucket = where.bucket or "the bucket"
    if isinstance(error, StoreConfigError) and "credentials" in text:
        return Verdict(
            "no_credentials",
            f"no credentials to sign requests to {where.endpoint_text()}",
            "export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (the controller reads "
            "/etc/bosun/controller.env under systemd), or use a profile or instance role",
        )
    if isinstance(error, StoreConfigError) and "does not exist" in text:
        mb = f"aws s3 mb s3://{bucket}" + (
            f" --endpoint-url {where.endpoint}" if where.endpoint else ""
        )
        return Verdict(
            "missing_bucket",
            f"bucket {bucket!r} does not exist at {where.endpoint_text()}",
            f"create it ({mb}) or correct the bucket name in --store",
        )
    if isinstance(error, StoreAccessDenied):
        if any(code in text for code in _BAD_KEY_CODES):
            return Verdict(
                "bad_credentials",
                f"{where.endpoint_text()} does not accept these credentials: {text}",
                "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (a typo, an old or "
                "deleted key, or a key for another server)",
            )
        return Verdict(
            "access_denied",
            f"access denied: {text}",
            "give these credentials the controller policy (ControllerPolicyArn from "
            f"infra/cloudformation, or `bosun iam-policy`), and check that bucket {bucket!r} "
            "exists (S3 answers 403, not 404, to a principal that may not list it)",
        )
    if isinstance(error, StoreUnavailable) and "cannot reach" in text:
        return Verdict(
            "unreachable",
            "cannot reach " + text.split("cannot reach ", 1)[1],
            "check the endpoint's host and port in --store (?endpoint=http://HOST:PORT) "
            "and that the S3 server is running and reachable from here",
        )
    if isinstance(error, StoreUnavailable):
        return Verdict(
            "unreachable",
            f"{where.endpoint_text()} is not answering normally: {text}",
            "try again later; if it persists, check the S3 server's health and logs",
        )
    if isinstance(error, StoreConfigError):
        return Verdict("store_error", text, f"correct --store ({where.url})")
    return Verdict("store_error", f"the store refused a request: {text}", _DOCS)


_DOCS = "see docs/deploy.md#seaweedfs-minio-and-other-s3-compatible-stores"


def reach(store: Store, where: Where) -> Verdict:
    """One read under the doctor's prefix: can we talk to this bucket at all?"""
    try:
        store.get(f"{PROBE_PREFIX}{secrets.token_hex(6)}/reach.json")
    except (StoreError, BosunError) as exc:
        return classify(exc, where)
    return Verdict("ok", "reached the bucket", "")


def verdict(results: Sequence[Probe], where: Where) -> Verdict:
    """A setup error met by a probe (e.g. reads allowed, writes denied) before missing
    behaviours: the store is only blamed when it answered and answered wrongly."""
    for r in results:
        if r.error is not None:
            found = classify(r.error, where)
            if found.kind not in ("store_error",):
                return found
    bad = missing(list(results))
    if not bad:
        return Verdict("ok", "store is fit for controllers", "")
    return Verdict(
        "missing_behaviour",
        "this store lacks behaviour Bosun relies on, so controllers refuse it: "
        + "; ".join(f"{r.behaviour} ({r.detail})" for r in bad),
        "use a store with atomic conditional writes and conditional GETs (AWS S3, a "
        f"recent SeaweedFS or MinIO); {_DOCS}",
    )


__all__ = ["Verdict", "Where", "classify", "reach", "verdict"]
