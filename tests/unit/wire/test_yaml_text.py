"""The one YAML reader: safe, refusing duplicate keys, errors with file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import ConfigError, load_config
from controller.spec.load import load_yaml
from wire.errors import SpecError
from wire.yaml_text import YamlError, load


def test_duplicate_key_is_refused_with_both_lines() -> None:
    """A key written twice names the file, its second line and its first."""
    with pytest.raises(YamlError) as err:
        load("a: 1\nb:\n  web: 1\n  web: 2\n", source="x.yaml")
    assert str(err.value).startswith("x.yaml:4: key 'web' appears twice (first at line 3)")


def test_merge_keys_and_unsafe_tags() -> None:
    """`<<: *base` may be overridden by an explicit key; python tags stay refused."""
    assert load("base: &b {x: 1, y: 2}\nc:\n  <<: *b\n  x: 3\n", source="m") == {
        "base": {"x": 1, "y": 2},
        "c": {"x": 3, "y": 2},
    }
    with pytest.raises(YamlError, match="m:1:"):
        load("a: !!python/object/apply:os.system ['true']\n", source="m")


def test_syntax_error_has_line_and_column() -> None:
    """Broken YAML says where."""
    with pytest.raises(YamlError, match=r"^s:2:1: not valid YAML"):
        load("a: [\n", source="s")


def test_spec_refuses_a_service_written_twice() -> None:
    """`web:` twice in a spec is an error, not the last one silently winning."""
    text = "services:\n  web: {version: '1', count: 1}\n  web: {version: '2', count: 1}\n"
    with pytest.raises(SpecError, match=r"cluster.yaml:3: key 'web' appears twice"):
        load_yaml(text, source="cluster.yaml")


def test_agent_config_refuses_a_key_written_twice(tmp_path: Path) -> None:
    """The agent config refuses duplicates with its path and line."""
    path = tmp_path / "agent.yaml"
    path.write_text("machine: web-1\nstore: file:///b\nkey_file: /k\nmachine: web-2\n")
    with pytest.raises(ConfigError, match=rf"{path}:4: key 'machine' appears twice"):
        load_config(path, env={})
