"""docs/spec.md stays true: its full example validates."""

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
