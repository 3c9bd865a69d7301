"""docs/examples.md: the snippets new users copy are valid for the real loaders."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from agent.config import parse_config
from controller.spec.load import load_yaml
from examples.lb.peers import parse_peers

DOC = Path(__file__).resolve().parents[3] / "docs" / "examples.md"


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC.read_text(), re.S)


def test_spec_and_agent_config_snippets_load() -> None:
    """The spec snippet passes the spec loader and the agent.yaml snippet the agent's."""
    spec_text, agent_text = blocks("yaml")
    spec = load_yaml(spec_text)
    assert spec.services["lb"].balances == "web"
    config = parse_config(yaml.safe_load(agent_text))
    web = config.services["web"]
    assert web.process is not None and "examples.app" in web.process.command
    assert "{version}" in web.process.command and web.files[0].source == "desired"
    assert config.services["lb"].files[0].source == "peers"


def test_peers_snippet_is_a_valid_peers_file() -> None:
    """The peers JSON shown in the docs decodes with the load balancer's own parser."""
    (peers_text,) = blocks("json")
    peers = parse_peers(peers_text.encode())
    assert [t.weight for t in peers.backends] == [100, 5]
    assert json.loads(peers_text)["mirror"][0]["machine"] == peers.mirror[0].machine
