"""bosun keygen / revoke / controller once through the click commands."""

from __future__ import annotations

import stat
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from controller.cli import cli
from controller.shell.key_epochs import load_epochs
from controller.shell.local_dir import exclusive
from tests.unit.controller.conftest import agents
from tests.unit.controller.stores import Recording
from wire.errors import BosunError
from wire.signing import write_key_file

from .conftest import MASTER


def run(*args: str, ok: bool = True) -> str:
    result = CliRunner().invoke(cli, list(args))
    if ok:
        assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def test_keygen_command(tmp_path: Path) -> None:
    """bosun keygen -o FILE writes 0600 and refuses a second time without --force."""
    key = tmp_path / "k"
    run("keygen", "-o", str(key))
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    result = CliRunner().invoke(cli, ["keygen", "-o", str(key)])
    assert result.exit_code != 0 and "--force" in str(result.exception)
    run("keygen", "-o", str(key), "--force")


def test_revoke_prints_the_reenroll_command(store: Recording, key_file: Path) -> None:
    """bosun revoke bumps the epoch and prints how to re-enroll at it; rotate too, keeping
    the old epoch for its grace."""
    out = run("revoke", "web-3", "--store", store.url, "--master-key", str(key_file),
              "--unknown")  # fmt: skip
    assert "bosun enroll web-3 --epoch 1" in out
    assert load_epochs(store, MASTER) == {"web-3": 1}
    out = run("rotate", "web-3", "--grace", "1h", "--store", store.url,
              "--master-key", str(key_file))  # fmt: skip
    assert "epoch 1 stays valid for 3600s" in out and "--epoch 2" in out
    assert load_epochs(store, MASTER) == {"web-3": 2}


def test_revoke_and_rotate_refuse_a_name_the_bucket_never_saw(
    spec_store: Recording, key_file: Path
) -> None:
    """A typo must not pass for a revocation: a machine with no report, no desired document
    and no key epoch is refused (nothing written) unless --unknown; one that reported, or
    that has an epoch already, is not."""
    common = ["--store", spec_store.url, "--master-key", str(key_file)]
    for verb in (["revoke"], ["rotate", "--grace", "1h"]):
        result = CliRunner().invoke(cli, [*verb, "web-33", *common])
        assert result.exit_code == 1, result.output
        assert "web-33: unknown to" in result.output and "--unknown" in result.output
    assert load_epochs(spec_store, MASTER) == {}
    fleet = agents(spec_store)
    fleet[0].report()
    run("revoke", fleet[0].machine, *common)  # reported: known
    run("rotate", fleet[0].machine, *common)  # an epoch, too
    assert load_epochs(spec_store, MASTER) == {fleet[0].machine: 2}


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "master.key"
    write_key_file(path, MASTER)
    return path


def test_controller_once_and_dry_run(spec_store: Recording, key_file: Path, tmp_path: Path) -> None:
    """once -o json reports the writes; --dry-run plans the same and writes nothing."""
    for a in agents(spec_store):
        a.report()
    common = [
        "--store",
        spec_store.url,
        "--master-key",
        str(key_file),
        "--state-dir",
        str(tmp_path / "st"),
    ]
    dry = orjson.loads(run("controller", "once", "--dry-run", "-o", "json", *common))
    assert dry["written"] == [] and len(dry["plan"]["writes"]) == 4
    assert not list(spec_store.inner.list("desired/"))
    text = run("controller", "once", "--dry-run", *common)
    assert "plan desired/web-0.json generation 1" in text
    real = orjson.loads(run("controller", "once", "-o", "json", *common, "--id", "ctl-a"))
    assert (
        real["lease"]["acting"]
        and len([k for k in real["written"] if k.startswith("desired/")]) == 4
    )
    other = orjson.loads(
        run(
            "controller",
            "once",
            "-o",
            "json",
            *common[:4],
            "--id",
            "ctl-b",
            "--state-dir",
            str(tmp_path / "st-b"),
        )
    )
    assert not other["lease"]["acting"] and other["written"] == []
    again = orjson.loads(run("controller", "once", "-o", "json", *common, "--id", "ctl-a"))
    assert again["lease"]["token"] == 1  # the saved lease view renews rather than takes over


def test_a_second_controller_process_on_one_state_dir_skips(tmp_path: Path) -> None:
    """Overlapping cron runs: the state-dir lock lets only one controller process run."""
    with (
        exclusive(tmp_path / "st"),
        pytest.raises(BosunError, match="another bosun controller"),
        exclusive(tmp_path / "st"),
    ):
        pass


def test_run_refuses_an_interval_not_below_the_renew_deadline(
    key_file: Path, tmp_path: Path
) -> None:
    """--every must be shorter than the renew deadline, or the lease would lapse between cycles."""
    result = CliRunner().invoke(
        cli,
        [
            "controller",
            "run",
            "--store",
            f"file://{tmp_path}/b",
            "--master-key",
            str(key_file),
            "--every",
            "30s",
            "--lease-duration",
            "30s",
        ],
    )
    assert result.exit_code == 2 and "renew deadline" in result.output
