"""`bosun spec validate|apply|show|diff` and `bosun update` against a real directory store."""

from __future__ import annotations

from pathlib import Path

import click
import orjson
import pytest
from click.testing import CliRunner, Result

from controller.cli.spec import parse_config_pairs, spec_group, update_command
from controller.spec import document, revisions
from controller.spec.load import load_yaml
from controller.spec.revisions import apply, read_current, read_revision
from wire.errors import BosunError, SpecError, WriteConflict
from wire.layout import SPEC_CURRENT, spec_history_key
from wire.store import DirectoryStore

SPEC = """
services:
  media: {version: "3", count: 2}
  router: {version: "2", count: 3, depends_on: [media]}
  lb: {kind: loadbalancer, balances: router, version: "1", count: 1}
"""


@click.group()
def bosun() -> None:
    """The commands under test, grouped as `bosun` groups them."""


bosun.add_command(spec_group)
bosun.add_command(update_command)


def run(*args: str) -> Result:
    return CliRunner().invoke(bosun, list(args), catch_exceptions=True)


def keys(root: Path) -> list[str]:
    store = DirectoryStore(root)
    return sorted(info.key for info in store.list(""))


@pytest.fixture
def env(tmp_path: Path) -> tuple[Path, str, Path]:
    root = tmp_path / "bucket"
    DirectoryStore(root)
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    return root, f"file://{root}", spec


def test_validate_reports_services_and_touches_nothing(env: tuple[Path, str, Path]) -> None:
    """`spec validate` prints a summary of a good file."""
    _, _, spec = env
    result = run("spec", "validate", str(spec))
    assert result.exit_code == 0, result.output
    assert "valid; 3 services" in result.output


def test_apply_writes_history_then_current_with_increasing_revisions(
    env: tuple[Path, str, Path],
) -> None:
    """Each apply writes spec/history/<rev>.json and spec/current.json; revisions go 1, 2."""
    root, url, spec = env
    assert run("spec", "apply", str(spec), "--store", url).exit_code == 0
    store = DirectoryStore(root)
    current = read_current(store)
    assert current is not None and current.spec.revision == 1
    assert keys(root) == [SPEC_CURRENT, spec_history_key(1)]
    spec.write_text(SPEC.replace("count: 3", "count: 4"))
    result = run("spec", "apply", str(spec), "--store", url)
    assert result.exit_code == 0, result.output
    assert "applied revision 2" in result.output
    assert read_revision(store, 1).services["router"].count == 3
    assert read_revision(store, 2).services["router"].count == 4
    again = run("spec", "apply", str(spec), "--store", url)
    assert "unchanged" in again.output and keys(root) == [
        SPEC_CURRENT,
        spec_history_key(1),
        spec_history_key(2),
    ]


def test_a_spec_over_the_document_cap_is_read_back(env: tuple[Path, str, Path]) -> None:
    """A valid spec larger than a desired document's 256 KiB cap (a big config) is applied,
    shown and applied over again: every reader uses the spec's own bound."""
    root, url, spec = env
    blobs = ", ".join(f'b{i}: "{"x" * 60_000}"' for i in range(7))
    spec.write_text(SPEC + f'  big: {{version: "1", count: 0, config: {{{blobs}}}}}\n')
    assert run("spec", "apply", str(spec), "--store", url).exit_code == 0
    assert (root / SPEC_CURRENT).stat().st_size > 400_000
    shown = run("spec", "show", "--store", url)
    assert shown.exit_code == 0 and "b6" in shown.output, shown.output[-500:]
    spec.write_text(spec.read_text().replace("count: 3", "count: 4"))
    result = run("spec", "apply", str(spec), "--store", url)
    assert result.exit_code == 0 and "applied revision 2" in result.output, result.output


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("services: {web: {version: '1', count: 1, colour: red}}", "services.web.colour: unknown key"),
        ("services: {web: {version: 2, count: 1}}", "services.web.version: expected a string"),
        ("services: {web: {version: '1', count: 1, depends_on: [db]}}", "unknown service 'db'"),
        ("services: {a: {version: '1', count: 1, depends_on: [b]}, b: {version: '1', count: 1, depends_on: [a]}}",
         "cycle a -> b -> a"),
        ("services: {web: {version: '1', count: -2}}", "impossible count -2"),
        ("settings: {heartbeat_timeout: soon}", "bad duration 'soon'"),
    ],
)  # fmt: skip
def test_every_error_class_writes_nothing(
    env: tuple[Path, str, Path], text: str, message: str
) -> None:
    """validate and apply refuse a bad spec with its message; the store is left untouched."""
    root, url, spec = env
    assert run("spec", "apply", str(spec), "--store", url).exit_code == 0
    before = {k: (root / k).read_bytes() for k in keys(root)}
    spec.write_text(text)
    for args in (("spec", "validate", str(spec)), ("spec", "apply", str(spec), "--store", url)):
        result = run(*args)
        assert isinstance(result.exception, SpecError), result.output
        assert message in str(result.exception)
    assert {k: (root / k).read_bytes() for k in keys(root)} == before


def test_first_apply_creates_current_only_if_still_absent(
    env: tuple[Path, str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two first applies racing: the one that read "no spec" after the other won gets WriteConflict."""
    root, _, _ = env
    store = DirectoryStore(root)

    assert apply(store, load_yaml(SPEC), now=1.0).revision == 1
    before = (root / SPEC_CURRENT).read_bytes()
    monkeypatch.setattr(revisions, "read_current", lambda st: None)  # it read before the win
    with pytest.raises(WriteConflict, match="another apply won"):
        apply(store, load_yaml(SPEC.replace("count: 2", "count: 3")), now=2.0)
    assert (root / SPEC_CURRENT).read_bytes() == before


def test_a_lost_race_on_current_is_reported_and_the_orphan_revision_is_skipped(
    env: tuple[Path, str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """If current.json changed after it was read, apply fails clearly; the next apply skips the orphan."""
    root, _, _ = env
    store = DirectoryStore(root)

    apply(store, load_yaml(SPEC), now=1.0)
    real_read = revisions.read_current

    def stale_read(st: DirectoryStore) -> revisions.Current | None:
        cur = real_read(st)
        monkeypatch.setattr(revisions, "read_current", real_read)
        apply(store, load_yaml(SPEC.replace("count: 2", "count: 5")), now=2.0)  # someone else
        return cur

    monkeypatch.setattr(revisions, "read_current", stale_read)
    with pytest.raises(WriteConflict, match="another apply won"):
        apply(store, load_yaml(SPEC.replace("count: 2", "count: 6")), now=3.0)
    monkeypatch.setattr(revisions, "read_current", real_read)
    # revision 2 was taken by the winner, 3 is the loser's orphan; the next apply gets 4
    assert read_current(store).spec.revision == 2  # type: ignore[union-attr]
    assert apply(store, load_yaml(SPEC), now=4.0).revision == 4


def test_show_prints_current_and_past_revisions(env: tuple[Path, str, Path]) -> None:
    """`spec show` prints YAML of the current spec, --revision N an older one, -o json the stored form."""
    _, url, spec = env
    run("spec", "apply", str(spec), "--store", url)
    spec.write_text(SPEC.replace('version: "3"', 'version: "4"'))
    run("spec", "apply", str(spec), "--store", url)
    now = run("spec", "show", "--store", url)
    assert now.output.startswith("# revision 2") and "version: '4'" in now.output
    old = run("spec", "show", "--revision", "1", "--store", url)
    assert "version: '3'" in old.output
    js = run("spec", "show", "-o", "json", "--store", url)
    assert '"format": "bosun.spec/1"' in js.output and '"revision": 2' in js.output
    missing = run("spec", "show", "--revision", "9", "--store", url)
    assert isinstance(missing.exception, BosunError) and "does not exist" in str(missing.exception)


def test_show_without_any_spec_says_how_to_apply(env: tuple[Path, str, Path]) -> None:
    """`spec show` on an empty store explains that no spec was applied."""
    _, url, _ = env
    result = run("spec", "show", "--store", url)
    assert isinstance(result.exception, SpecError) and "bosun spec apply" in str(result.exception)


def test_diff_shows_changes_against_current(env: tuple[Path, str, Path]) -> None:
    """`spec diff` prints a unified diff; no differences says so; --exit-code exits 1 on change."""
    _, url, spec = env
    run("spec", "apply", str(spec), "--store", url)
    same = run("spec", "diff", str(spec), "--store", url)
    assert "no differences" in same.output
    spec.write_text(SPEC.replace("count: 3", "count: 7"))
    changed = run("spec", "diff", str(spec), "--store", url, "--exit-code")
    assert changed.exit_code == 1
    assert "-    count: 3" in changed.output and "+    count: 7" in changed.output


def test_update_records_an_override_as_a_new_revision(env: tuple[Path, str, Path]) -> None:
    """`bosun update` adds a selection override to the service in a new revision."""
    root, url, spec = env
    run("spec", "apply", str(spec), "--store", url)
    result = run("update", "router", "--version", "2.1", "--config", "log.level=debug",
                 "--config", "workers=4", "--select", "max(count=1,percent=10)", "--store", url)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "applied revision 2" in result.output
    current = read_current(DirectoryStore(root))
    assert current is not None
    (ov,) = current.spec.services["router"].overrides
    assert (ov.id, ov.select, ov.version) == (2, "max(count=1,percent=10)", "2.1")
    assert ov.config == {"log": {"level": "debug"}, "workers": 4}
    assert current.spec.services["router"].version == "2"  # the rest keep what they run


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nope", "--version", "2", "--select", "count=1"), "unknown service 'nope'"),
        (("router", "--select", "count=1"), "give --version, --config k=v, or both"),
        (("router", "--version", "2", "--select", "half"), "--select: 'half' is not a selection"),
        (("router", "--version", "2", "--select", "count=9"), "impossible selection 'count=9'"),
        (("router", "--version", "2 beta", "--select", "count=1"), "is not a version"),
        (("router", "--config", "=x", "--select", "count=1"), "expected key=value"),
    ],
)
def test_update_errors_write_nothing(
    env: tuple[Path, str, Path], args: tuple[str, ...], message: str
) -> None:
    """A bad update is refused with its reason and leaves the store unchanged."""
    root, url, spec = env
    run("spec", "apply", str(spec), "--store", url)
    before = keys(root)
    result = run("update", *args, "--store", url)
    assert isinstance(result.exception, SpecError), result.output
    assert message in str(result.exception)
    assert keys(root) == before


def test_config_pairs_are_typed_and_nested() -> None:
    """--config values are YAML scalars and dotted keys nest."""
    assert parse_config_pairs(("a.b=5", "a.c=true", "d=hello world", "e=", "f=[1,2]")) == {
        "a": {"b": 5, "c": True}, "d": "hello world", "e": "", "f": "[1,2]",
    }  # fmt: skip
    with pytest.raises(SpecError, match="already given a value"):
        parse_config_pairs(("a=1", "a.b=2"))


def test_stored_json_round_trips(env: tuple[Path, str, Path]) -> None:
    """The JSON form decodes back to the same spec and refuses a hand-edited cycle."""

    spec = load_yaml(SPEC)
    back, applied_at = document.from_json(document.to_json(spec, applied_at=5.0))
    assert back == spec and applied_at == 5.0
    value = orjson.loads(document.to_json(spec, applied_at=5.0))
    value["services"]["media"]["depends_on"] = ["router"]
    bad = orjson.dumps(value)
    with pytest.raises(SpecError, match="cycle"):
        document.from_json(bad)
