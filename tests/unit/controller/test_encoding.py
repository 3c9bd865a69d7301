"""Per-machine entries encoded once per change give what encoding everything gives."""

from __future__ import annotations

from dataclasses import replace

from controller.shell.encoding import Reuse, encode_intake
from controller.shell.intake_state import IntakeState, ReportRecord
from wire import codec


def test_an_entry_is_built_again_only_when_what_it_is_made_of_changes() -> None:
    reuse = Reuse()
    built: list[str] = []

    def build(name: str) -> dict[str, str]:
        built.append(name)
        return {"name": name}

    a = reuse.one("a", ("x", 1), lambda: build("a"))
    reuse.one("b", ("y", 1), lambda: build("b"))
    reuse.done()
    assert reuse.one("a", ("x", 1), lambda: build("a")) is a  # equal: the same value
    reuse.one("b", ("y", 2), lambda: build("b"))  # changed: built again
    reuse.done()  # "b" was asked for; an entry not asked for is forgotten
    reuse.one("a", ("x", 1), lambda: build("a"))
    reuse.done()
    reuse.one("b", ("y", 2), lambda: build("b"))
    assert built == ["a", "b", "b", "b"]


def test_the_intake_state_encodes_as_codec_encodes_it_across_changes() -> None:
    reuse = Reuse()
    reports = {
        f"m-{i}": ReportRecord(etag=f'"{i}"', seq=i, accepted_at=float(i)) for i in range(50)
    }
    state = IntakeState(
        fence=3, cycle=9, reports=reports, desired={"m-1": '"d"'}, signed={"m-1": 0}
    )
    assert encode_intake(state, reuse) == codec.encode(state)
    for step in range(3):
        reports = dict(state.reports)
        reports["m-7"] = reports["m-7"].rejecting(f'"r{step}"', "replayed_seq", "old", 5.0)
        reports.pop(f"m-{10 + step}")
        reports[f"new-{step}"] = ReportRecord(seq=step)
        state = replace(state, reports=reports, cycle=state.cycle + 1, status_digest=f"s{step}")
        assert encode_intake(state, reuse) == codec.encode(state)
