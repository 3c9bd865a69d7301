"""bosun doctor: conditional-request probes pass on an atomic store and name what is missing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from controller.cli import cli
from controller.operations.store_probe import missing, probe, refuse_if_missing
from wire.errors import BosunError
from wire.store import DirectoryStore, GetResult


class Careless(DirectoryStore):
    """A store that ignores every condition (what a naive S3 clone does)."""

    def put(self, key: str, body: bytes, **kw: Any) -> str:
        return super().put(key, body, content_type=kw.get("content_type", "application/json"))

    def get(self, key: str, **kw: Any) -> GetResult:
        return super().get(key, max_bytes=kw.get("max_bytes", 256 * 1024))


def test_directory_store_has_every_behaviour(tmp_path: Path) -> None:
    """The directory backend passes every probe, including both 20-writer races, and cleans up."""
    store = DirectoryStore(tmp_path / "b")
    results = probe(store)
    assert len(results) == 10 and missing(results) == []
    assert list(store.list("control/doctor/")) == []


def test_a_store_ignoring_conditions_is_refused_naming_each_behaviour(tmp_path: Path) -> None:
    """Missing conditional PUT/GET behaviour is named and the store refused for controllers."""
    results = probe(Careless(tmp_path / "b"))
    names = {r.behaviour for r in missing(results)}
    assert "create-only refuses an existing key" in names
    assert "If-Match refuses a stale ETag" in names
    assert "conditional GET answers 304 (If-None-Match)" in names
    assert "20-writer create-only race has one winner" in names
    with pytest.raises(
        BosunError, match="refusing this store for controllers; missing behaviour: "
    ):
        refuse_if_missing(results)


def test_doctor_command_reports_a_fit_store(tmp_path: Path) -> None:
    """bosun doctor --store file://... prints the table and says the store is fit."""
    (tmp_path / "b").mkdir()  # doctor, a reader, never creates the directory
    result = CliRunner().invoke(cli, ["doctor", "--store", f"file://{tmp_path}/b"])
    assert result.exit_code == 0, result.output
    assert "store is fit for controllers" in result.output
