"""The parsed config kept in the state dir (agent.config_cache): used only for the exact text
it was parsed from, only when nobody else can write it, and the cron path then skips YAML."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from agent.config import ConfigError, load_config
from agent.config_cache import CACHE_FILE
from tests.unit.agent.kit import Machine


def _machine(tmp_path: Path, **extra: object) -> Machine:
    m = Machine(tmp_path / "m", f"file://{tmp_path}/bucket", extra=dict(extra)).write()
    m.state_dir.mkdir(mode=0o700)
    return m


def _forge(m: Machine, **settings: object) -> Path:
    """Rewrite the cache's settings, keeping its key: what a writer of the state dir could do."""
    cache = m.state_dir / CACHE_FILE
    doc = orjson.loads(cache.read_bytes())
    doc["settings"].update(settings)
    cache.write_bytes(orjson.dumps(doc))
    return cache


def test_the_second_load_reads_the_cache_and_a_changed_text_is_parsed_again(
    tmp_path: Path,
) -> None:
    """The first load writes the cache; a later load of the same text takes it from there; an
    edited config is parsed again (never the stale settings) and re-cached."""
    m = _machine(tmp_path)
    first = load_config(m.config_path, env={})
    cache = m.state_dir / CACHE_FILE
    assert cache.stat().st_mode & 0o777 == 0o600
    assert load_config(m.config_path, env={}) == first
    _forge(m, poll_interval=77)  # proves the settings come from the file when the text matches
    assert load_config(m.config_path, env={}).poll_interval == 77
    m.extra["poll_interval"] = 45
    m.write()
    assert load_config(m.config_path, env={}).poll_interval == 45
    assert json.loads(cache.read_text())["settings"]["poll_interval"] == 45


def test_a_cache_others_can_read_or_write_is_ignored(tmp_path: Path) -> None:
    """docs/security.md#config-cache: a group- or world-accessible cache file is not used."""
    m = _machine(tmp_path)
    real = load_config(m.config_path, env={}).poll_interval
    for mode in (0o640, 0o604, 0o620):
        _forge(m, poll_interval=77).chmod(mode)
        assert load_config(m.config_path, env={}).poll_interval == real != 77


def test_environment_overrides_apply_after_the_cache(tmp_path: Path) -> None:
    """BOSUN_* overrides are applied to the cached settings on every load."""
    m = _machine(tmp_path)
    load_config(m.config_path, env={})
    assert load_config(m.config_path, env={"BOSUN_POLL_INTERVAL": "12s"}).poll_interval == 12


def test_values_json_cannot_hold_are_not_cached(tmp_path: Path) -> None:
    """A YAML-only value (a date) is never cached (a JSON round trip would change it): every
    load parses the text and the decoder names the field each time."""
    m = _machine(tmp_path)
    m.config_path.write_text(m.config_path.read_text() + "capacity: {since: 2024-01-01}\n")
    for _ in range(2):
        with pytest.raises(ConfigError, match="capacity"):
            load_config(m.config_path, env={})
    assert not (m.state_dir / CACHE_FILE).exists()


def test_the_cron_cycle_imports_no_yaml_http_or_subprocess_once_cached(tmp_path: Path) -> None:
    """A steady cron cycle on a directory bucket, config cached, imports neither the YAML
    parser nor http.client, subprocess or the S3 client (the cron path's CPU floor)."""
    (tmp_path / "bucket").mkdir()
    m = _machine(tmp_path)
    code = (
        "import sys\nfrom agent.cli import main\n"
        f"sys.argv = ['bosun-agent', '--config', {str(m.config_path)!r}, 'run', '--once']\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert exc.code in (0, 1), exc.code\n"
        "print(sorted(n for n in ('yaml', 'http.client', 'subprocess', 'wire.store.s3', "
        "'obstore') if n in sys.modules))\n"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
        ).stdout.strip()
        for _ in range(2)
    ]
    assert runs == ["['yaml']", "[]"]
