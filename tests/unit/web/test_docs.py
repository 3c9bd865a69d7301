"""docs/metrics.md and the Grafana dashboard name the metrics the code exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def _names(text: str) -> set[str]:
    return {re.sub(r"_(bucket|sum|count)$", "", n) for n in re.findall(r"bosun_[a-z_]+", text)}


def test_dashboard_and_docs_use_exported_names() -> None:
    """Every metric the Grafana dashboard queries is documented and defined in the code."""
    code = "".join(
        (ROOT / p).read_text() for p in ("controller/shell/metrics.py", "agent/textfile.py")
    )
    exported = {n for n in _names(code)} | {f"{n}_total" for n in _names(code)}
    docs = _names((ROOT / "docs" / "metrics.md").read_text())
    dashboard = json.loads((ROOT / "infra" / "grafana" / "bosun.json").read_text())
    queried = _names(" ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"]))
    assert queried and queried <= docs, queried - docs
    assert docs <= exported, docs - exported
