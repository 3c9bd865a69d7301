"""`spec apply`: --expect-revision refuses a spec changed underneath; overrides made with
`bosun update` are kept or reported, never dropped unseen."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from controller.cli import cli
from controller.spec.revisions import SpecChanged, read_current
from wire.store import DirectoryStore

SPEC = """
services:
  web: {version: "1.0", count: 4, config: {workers: 2}}
  lb: {kind: loadbalancer, balances: web, version: "1", count: 1}
"""


def bosun(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=True)


@pytest.fixture
def env(tmp_path: Path) -> tuple[DirectoryStore, str, Path]:
    root = tmp_path / "bucket"
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    return DirectoryStore(root), f"file://{root}", spec


def test_expect_revision_refuses_a_spec_changed_underneath(
    env: tuple[DirectoryStore, str, Path],
) -> None:
    """--expect-revision N applies only on N; otherwise it names both revisions, exits
    non-zero and writes nothing."""
    st, url, spec = env
    first = bosun("spec", "apply", str(spec), "--expect-revision", "0", "--store", url)
    assert first.exit_code == 0, first.output
    spec.write_text(SPEC.replace("count: 4", "count: 5"))
    ok = bosun("spec", "apply", str(spec), "--expect-revision", "1", "--store", url)
    assert ok.exit_code == 0 and "applied revision 2" in ok.output
    spec.write_text(SPEC.replace("count: 4", "count: 6"))
    keys = sorted(i.key for i in st.list(""))
    late = bosun("spec", "apply", str(spec), "--expect-revision", "1", "--store", url)
    assert isinstance(late.exception, SpecChanged)
    message = str(late.exception)
    assert "revision 2, not 1" in message and "changed underneath" in message
    assert "bosun spec diff" in message
    assert sorted(i.key for i in st.list("")) == keys  # nothing written
    current = read_current(st)
    assert current is not None and current.spec.services["web"].count == 5


def test_expect_revision_exits_2_through_main(
    env: tuple[DirectoryStore, str, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """From the command line the refusal is one line on stderr and exit status 2."""
    import sys

    from controller.cli import main

    _, url, spec = env
    assert bosun("spec", "apply", str(spec), "--store", url).exit_code == 0
    monkeypatch.setattr(
        sys, "argv", ["bosun", "spec", "apply", str(spec), "--expect-revision", "3", "--store", url]
    )
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 2
    assert "is at revision 1, not 3" in capsys.readouterr().err


def test_overrides_are_kept_and_reported_when_the_file_lists_none(
    env: tuple[DirectoryStore, str, Path],
) -> None:
    """An apply of a file without overrides keeps `bosun update`'s and says so; the file's
    other changes are applied."""
    st, url, spec = env
    bosun("spec", "apply", str(spec), "--store", url)
    upd = bosun("update", "web", "--version", "1.1", "--select", "count=1", "--store", url)
    assert upd.exit_code == 0, upd.output
    spec.write_text(SPEC.replace("count: 4", "count: 6"))
    result = bosun("spec", "apply", str(spec), "--store", url)
    assert result.exit_code == 0, result.output
    assert "kept override made with `bosun update`: web #2 count=1 -> version 1.1" in result.output
    assert "--drop-overrides" in result.output
    current = read_current(st)
    assert current is not None
    web = current.spec.services["web"]
    assert web.count == 6 and [(o.id, o.version) for o in web.overrides] == [(2, "1.1")]
    diff = bosun("spec", "diff", str(spec), "--store", url)
    assert "no differences" in diff.output  # diff shows what apply would do


def test_dropped_overrides_are_reported(env: tuple[DirectoryStore, str, Path]) -> None:
    """--drop-overrides, a file that now has the override's version, a file listing other
    overrides, and a removed service each drop it and say which and why."""
    st, url, spec = env
    bosun("spec", "apply", str(spec), "--store", url)
    bosun("update", "web", "--version", "1.1", "--select", "count=1", "--store", url)
    absorbed = SPEC.replace('version: "1.0"', 'version: "1.1"')
    spec.write_text(absorbed)
    result = bosun("spec", "apply", str(spec), "--store", url)
    assert "dropped override: web #2 count=1 -> version 1.1 (absorbed" in result.output
    current = read_current(st)
    assert current is not None and current.spec.services["web"].overrides == ()
    bosun("update", "web", "--config", "workers=8", "--select", "count=2", "--store", url)
    result = bosun("spec", "apply", str(spec), "--drop-overrides", "--store", url)
    assert "dropped override: web #4 count=2 -> config workers (--drop-overrides)" in result.output
    bosun("update", "web", "--version", "1.2", "--select", "count=1", "--store", url)
    listed = absorbed.replace(
        "config: {workers: 2}}",
        "config: {workers: 2}, overrides: [{id: 9, select: count=1, version: '1.3'}]}",
    )
    spec.write_text(listed)
    result = bosun("spec", "apply", str(spec), "--store", url)
    assert "web #6 count=1 -> version 1.2 (not in the file's overrides)" in result.output
    current = read_current(st)
    assert current is not None
    assert [o.id for o in current.spec.services["web"].overrides] == [9]
    spec.write_text('services:\n  lb2: {version: "1", count: 0}\n')
    result = bosun("spec", "apply", str(spec), "--store", url)
    assert "web #9 count=1 -> version 1.3 (service removed)" in result.output


def test_a_kept_override_that_no_longer_fits_is_refused_with_the_fix(
    env: tuple[DirectoryStore, str, Path],
) -> None:
    """Keeping `count=3` on a service the file shrinks to 2 machines fails validation and
    names --drop-overrides; nothing is written."""
    st, url, spec = env
    bosun("spec", "apply", str(spec), "--store", url)
    bosun("update", "web", "--version", "1.1", "--select", "count=3", "--store", url)
    spec.write_text(SPEC.replace("count: 4", "count: 2"))
    result = bosun("spec", "apply", str(spec), "--store", url)
    assert result.exit_code != 0
    assert "impossible selection 'count=3'" in str(result.exception)
    current = read_current(st)
    assert current is not None and current.spec.revision == 2
