"""Planner cases as data: every file in cases/ is a sequence of cycles with expectations."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.planner.harness import CASES, load_case, run_case

FILES = sorted(CASES.glob("*.yaml"))
# a case may name a known planner bug (`known_bug: why`): strict xfail, so the fix unmarks it
PARAMS = [
    pytest.param(
        f,
        id=f.stem,
        marks=[pytest.mark.xfail(strict=True, reason=why)]
        if (why := load_case(f).get("known_bug"))
        else [],
    )
    for f in FILES
]


@pytest.mark.parametrize("path", PARAMS)
def test_case(path: Path) -> None:
    """The plan of every cycle in the case matches its expectations, invariants and idempotence."""
    case = load_case(path)
    assert case.get("name") and case.get("rule"), f"{path.name}: a case needs a name and a rule"
    problems = run_case(case)
    assert not problems, f"{path.name}: {case['name']}\n" + "\n".join(problems)


def test_cases_cover_every_rule() -> None:
    """Each planner rule of the issue has at least one data case."""
    rules = {load_case(f)["rule"] for f in FILES}
    wanted = {
        "liveness", "assignment", "standby", "pool", "replacement", "loadbalancer",
        "dependencies", "config-references", "sub-group", "generations", "rewrite",
    }  # fmt: skip
    assert wanted <= rules, f"no case for {sorted(wanted - rules)}"
