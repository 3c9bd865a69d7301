"""Per-machine isolation (docs/security.md#machine-isolation, #least-privilege), proven in moto's IAM and checked with parliament."""

from __future__ import annotations

import importlib
import json
import re
import warnings
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.cli import cli
from controller.operations.policies import (
    MACHINE_TAG,
    agent_policy,
    controller_policy,
    operator_policy,
    substitute,
)
from tests.infra.conftest import BUCKET, PREFIX, Enforced
from wire.errors import StoreAccessDenied
from wire.layout import MACHINE_ID_PATTERN
from wire.store import Missing, NotModified, StoredObject

machine_ids = st.from_regex(MACHINE_ID_PATTERN, fullmatch=True).filter(lambda m: ".." not in m)


# ---- the variable form: linted, and its substitution is the literal form ---------------------


def _parliament() -> Any:
    # parliament opens its data files without closing them at import (a ResourceWarning,
    # which this suite turns into an error) and imports pkg_resources, which setuptools 81
    # deprecates with a UserWarning; both are theirs and harmless.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        warnings.filterwarnings("ignore", "pkg_resources is deprecated", UserWarning)
        return importlib.import_module("parliament")


def _findings(doc: dict[str, Any]) -> list[tuple[str, str]]:
    policy = _parliament().analyze_policy_string(json.dumps(doc))
    return [(f.issue, json.dumps(f.detail)) for f in policy.findings]


@pytest.mark.parametrize("prefix", ["", "fleet"])
def test_parliament_accepts_every_policy(prefix: str) -> None:
    """parliament finds nothing in the literal agent, controller and operator policies."""
    assert _findings(agent_policy(BUCKET, prefix=prefix, machine="web-1")) == []
    assert _findings(controller_policy(BUCKET, prefix=prefix)) == []
    assert _findings(operator_policy(BUCKET, prefix=prefix)) == []


def test_parliament_on_variable_form() -> None:
    """The tag-variable agent policy lints clean apart from parliament's hyphen blind spot.

    parliament strips policy variables with the regex `\\$\\{aws.[\\w/]+\\}`, which does not
    allow '-' (duo-labs/parliament#146, PR #185), so `${aws:PrincipalTag/bosun-machine}`
    is reported as a RESOURCE_MISMATCH on exactly our two resource ARNs; with the tag key
    spelled without the hyphen the same policy has no finding at all.
    """
    doc = agent_policy(BUCKET, prefix=PREFIX)
    findings = _findings(doc)
    assert [issue for issue, _ in findings] == ["RESOURCE_MISMATCH", "RESOURCE_MISMATCH"]
    assert "s3:PutObject" in findings[0][1] and "s3:GetObject" in findings[1][1]
    unhyphenated = json.loads(json.dumps(doc).replace(MACHINE_TAG, "bosunmachine"))
    assert _findings(unhyphenated) == []


def test_substitution_yields_the_literal_policy() -> None:
    """Resolving the principal tag to web-1 gives exactly what `bosun iam-policy web-1` prints."""
    for prefix in ("", "fleet", "a/b"):
        variable = agent_policy(BUCKET, prefix=prefix)
        assert substitute(variable, "web-1") == agent_policy(BUCKET, prefix=prefix, machine="web-1")
        assert "${" not in json.dumps(substitute(variable, "web-1"))


def _iam_matches(pattern: str, value: str) -> bool:
    """IAM's ARN matching: '*' any run of characters, '?' any one character."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value) is not None


@settings(max_examples=150, deadline=None)
@given(machine_ids, machine_ids)
def test_a_machine_id_matches_only_its_own_keys(mine: str, other: str) -> None:
    """No valid machine id can widen the substituted ARNs to another machine's objects."""
    literal = substitute(agent_policy(BUCKET, prefix=PREFIX), mine)
    resources = [s["Resource"] for s in literal["Statement"] if s["Effect"] == "Allow"]
    assert not any(c in r for r in resources for c in "*?${}")
    base = f"arn:aws:s3:::{BUCKET}/{PREFIX}/"
    assert _iam_matches(resources[0], f"{base}reports/{mine}.json")
    assert _iam_matches(resources[1], f"{base}desired/{mine}.json")
    if other != mine:
        for folder in ("reports", "desired"):
            assert not any(_iam_matches(r, f"{base}{folder}/{other}.json") for r in resources)


def test_cli_prints_literal_policy() -> None:
    """`bosun iam-policy web-1` prints the literal policy; a bad id or missing MACHINE is refused."""
    runner = CliRunner()
    done = runner.invoke(cli, ["iam-policy", "web-1", "--bucket", BUCKET, "--prefix", PREFIX])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output) == agent_policy(BUCKET, prefix=PREFIX, machine="web-1")
    variable = runner.invoke(cli, ["iam-policy", "--variable", "--bucket", BUCKET])
    assert json.loads(variable.output) == agent_policy(BUCKET)
    ctl = runner.invoke(cli, ["iam-policy", "--role", "controller", "--bucket", BUCKET])
    assert json.loads(ctl.output) == controller_policy(BUCKET)
    assert runner.invoke(cli, ["iam-policy", "--bucket", BUCKET]).exit_code == 2
    bad = runner.invoke(cli, ["iam-policy", "../web-2", "--bucket", BUCKET])
    assert bad.exit_code != 0 and "invalid machine id" in str(bad.exception or bad.output)


# ---- the literal form, enforced by moto's IAM (fixture in conftest.py) ---------------------


def test_agent_reaches_its_own_objects(enforced: Enforced) -> None:
    """web-1's credentials can PUT reports/web-1.json and GET desired/web-1.json (also conditionally)."""
    store = enforced.web1.store(enforced.server)
    etag = store.put("reports/web-1.json", b'{"from": "web-1"}')
    assert etag
    got = store.get("desired/web-1.json")
    assert isinstance(got, StoredObject) and got.body == enforced.desired_web1
    assert isinstance(store.get("desired/web-1.json", if_none_match=got.etag), NotModified)


@pytest.mark.parametrize(
    ("action", "key"),
    [
        ("put", "reports/web-2.json"),
        ("get", "desired/web-2.json"),
        ("get", "reports/web-1.json"),
        ("get", "reports/web-2.json"),
        ("put", "desired/web-1.json"),
        ("get", "control/lease.json"),
        ("put", "control/lease.json"),
        ("get", "spec/current.json"),
        ("put", "spec/current.json"),
        ("get", "status/cluster.json"),
        ("delete", "reports/web-1.json"),
        ("delete", "desired/web-1.json"),
        ("list", "reports/"),
        ("list", ""),
    ],
)
def test_agent_is_refused_everything_else(enforced: Enforced, action: str, key: str) -> None:
    """web-1's credentials are refused on other machines' objects, control/, spec/, list and delete."""
    store = enforced.web1.store(enforced.server)
    with pytest.raises(StoreAccessDenied):
        if action == "put":
            store.put(key, b"{}")
        elif action == "get":
            store.get(key)
        elif action == "delete":
            store.delete(key)
        else:
            list(store.list(key))


def test_agent_cannot_rename_itself(enforced: Enforced) -> None:
    """Even with another policy granting iam:* and sts:*, an agent cannot change its machine tag."""
    iam = enforced.greedy.client(enforced.server, "iam")
    for call in (
        lambda: iam.tag_user(UserName="web-3", Tags=[{"Key": MACHINE_TAG, "Value": "web-1"}]),
        lambda: iam.untag_user(UserName="web-3", TagKeys=[MACHINE_TAG]),
        lambda: iam.tag_user(UserName="web-1", Tags=[{"Key": MACHINE_TAG, "Value": "web-3"}]),
    ):
        with pytest.raises(iam.exceptions.ClientError) as err:
            call()
        assert err.value.response["Error"]["Code"] == "AccessDenied"
    # the over-grant itself works (so the refusal above is the Deny, not a broken setup)
    assert iam.list_users()["Users"]


def test_controller_policy_covers_the_cycle(enforced: Enforced) -> None:
    """The controller lists reports, reads them, writes desired/control/status, and cannot forge a report.

    The LIST is authorized as s3:ListBucket on the bucket ARN, as on real S3; moto 5.2.6 checks
    it as a non-existent `s3:ListObjectsV2` action and refuses it (see tests/infra/conftest.py).
    """
    store = enforced.controller.store(enforced.server)
    assert {o.key for o in store.list("reports/")} >= {"reports/web-2.json"}
    assert isinstance(store.get("reports/web-2.json"), StoredObject)
    for key in (
        "desired/web-9.json",
        "control/memory.json",
        "status/cluster.json",
        "history/web-2/0000000000000001.json",
        "events/2026/01/01/000000-0000000001.jsonl",
        "spec/history/00000001.json",
    ):
        store.put(key, b"{}")
    assert isinstance(store.get("desired/web-9.json"), StoredObject)
    with pytest.raises(StoreAccessDenied):
        store.put("reports/web-2.json", b"{}")
    assert isinstance(store.get("nothing/here.json"), Missing)
