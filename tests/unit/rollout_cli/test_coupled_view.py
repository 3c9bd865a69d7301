"""A coupled member's rollout says which release it moves with, in the view and the line."""

from __future__ import annotations

from rich.console import Console

from controller.cli import rollout_view as view
from controller.spec.revisions import read_current
from tests.unit.rollout_cli.conftest import Cluster


def test_status_names_the_coupled_release(rolling: Cluster) -> None:
    current = read_current(rolling.store)
    assert current is not None
    alone = rolling.rollout()
    assert "coupled" not in view.status_line("web", alone, current.spec)
    doc = {**alone, "group": "web-api-2"}
    console = Console(record=True, width=160)
    console.print(view.render_status(doc, current.spec))
    assert "coupled release web-api-2: its services move, and revert, together" in (
        console.export_text()
    )
    assert "(coupled release web-api-2)" in view.status_line("web", doc, current.spec)
