"""The docs stay true: every spec example in them validates."""

from __future__ import annotations

import re
from pathlib import Path

from controller.spec.load import load_yaml

DOC = Path(__file__).resolve().parents[3] / "docs" / "spec.md"


def test_the_telephony_example_in_the_docs_is_a_valid_spec() -> None:
    """The first yaml block of docs/spec.md loads with router, media, lb and queue."""
    block = re.search(r"```yaml\n(.*?)```", DOC.read_text(), re.S)
    assert block is not None
    spec = load_yaml(block.group(1), source="docs/spec.md")
    assert set(spec.services) == {"router", "media", "lb", "queue"}
    assert spec.services["lb"].balances == "router"
    assert spec.services["router"].depends_on == ("media", "queue")


def test_the_rollout_example_in_the_docs_is_valid() -> None:
    """The rollout block of docs/spec.md loads under a service, ending with percent 100."""
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)
    rollout = next(b for b in blocks if b.lstrip().startswith("rollout:"))
    text = "services:\n  router:\n    version: '1'\n    count: 4\n" + rollout
    spec = load_yaml(text, source="docs/spec.md")
    strategy = spec.rollout_of("router")
    assert strategy is not None
    kinds = ["shadow", "canary", "percent", "select", "approve", "percent"]
    assert [s.kind for s in strategy.steps] == kinds
    assert strategy.gates.min_requests == 200 and strategy.on_failure == "revert"
    assert strategy.keep_previous == 3600.0 and strategy.watch == 1800.0


def test_every_full_spec_example_in_the_docs_validates() -> None:
    """Each yaml block in docs/*.md with a top-level `services:` (and no `machine:`, which
    makes it an agent config) is a valid spec."""
    checked = 0
    for doc in sorted(DOC.parent.glob("*.md")):
        for block in re.findall(r"```yaml\n(.*?)```", doc.read_text(), re.S):
            if re.search(r"^services:", block, re.M) and not re.search(r"^machine:", block, re.M):
                load_yaml(block, source=f"{doc.name}: {block.splitlines()[0][:60]}")
                checked += 1
    assert checked >= 3, checked
