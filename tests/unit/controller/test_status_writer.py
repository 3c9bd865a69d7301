"""status/cluster.json is not even built when nothing it is made of changed, and is written
in exactly the cycles it would be written in if it were built every cycle."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.shell import cycle, records, status_writer
from tests.unit.controller.conftest import on_a_clock
from wire.layout import STATUS_CLUSTER


def scenario(root: Path) -> tuple[list[bool], int]:
    """Cycles with and without changes, on a clock that moves; per cycle whether the status
    was written, and how many times it was built."""
    store, clock, ctl, fleet = on_a_clock(root)
    written: list[bool] = []
    for step in range(14):
        clock.t += 5  # ages move every cycle; they are not content
        if step < 4 or step in (8, 11):  # the fleet reports (new seq: `seen` changes)
            for a in fleet[: 4 if step < 4 else 1]:
                a.pull()
                a.report(now=clock.t)
        if step == 10:
            fleet[2].healthy = False
            fleet[2].report(now=clock.t)
            fleet[1].report(now=clock.t, refusals={"stale_generation": 2})  # agent_refusals
        if step == 12:
            fleet[3].report(now=clock.t - 7200)  # refused (clock skew): `rejected`
        store.reset()
        ctl.cycle()
        written.append(STATUS_CLUSTER in store.puts())
    return written, ctl.status.built


def test_quiet_cycles_do_not_build_the_status_and_it_is_written_when_it_would_be(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cycle, "HEARTBEATS_EVERY", 0.0)  # heartbeats written at once
    skipping, built = scenario(tmp_path / "a")
    monkeypatch.setattr(status_writer.StatusInputs, "__eq__", lambda self, other: False)
    always, built_always = scenario(tmp_path / "b")
    assert skipping == always  # the same cycles write the status
    assert any(skipping[4:]) and not all(skipping[4:])  # changes are written, quiet ones not
    assert built_always == 14
    assert built <= sum(skipping) + 1  # built to be written (and once more at most)


def test_the_document_built_from_reused_entries_is_the_one_built_afresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each machine's entries are encoded once per change; the document and its digest are
    exactly those of records.status_document in every cycle."""
    compared: list[int] = []
    document = status_writer.StatusWriter.document

    def checked(self: status_writer.StatusWriter, status, state, observed, **kw):  # type: ignore[no-untyped-def]
        doc, digest = document(self, status, state, observed, **kw)
        fresh = records.status_document(
            status, state, observed, holder=self.holder, token=kw["token"], cycle=kw["cycle"]
        )
        fresh.update(kw["sections"])
        assert doc == fresh
        assert digest == records.status_digest(fresh)
        compared.append(len(doc["machines"]))
        return doc, digest

    monkeypatch.setattr(status_writer.StatusWriter, "document", checked)
    _written, built = scenario(tmp_path)
    assert len(compared) == built and max(compared) == 4
