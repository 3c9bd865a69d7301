"""The agent's node_exporter textfile: written when configured, parsed by Prometheus' own
parser, true to the cycle; never written (nor prometheus_client imported) otherwise."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.unit.agent.kit import (
    CountingStore,
    Machine,
    desired,
    machine_key,
    make_agent,
    publish,
    sealed,
)
from wire.layout import desired_key
from wire.store import DirectoryStore


def _samples(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(path.read_text()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _one(samples: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    return samples[(name, tuple(sorted({"machine": "web-1", **labels}.items())))]  # type: ignore[no-any-return]


def test_textfile_tells_the_cycle(tmp_path: Path, bucket: DirectoryStore) -> None:
    """Applied generation, success, last pull and refusals by reason, as the cycle saw them."""
    prom = tmp_path / "textfile" / "bosun.prom"
    prom.parent.mkdir()
    services = {"web": {"port": 8080, "files": [{"path": str(tmp_path / "out" / "web.json")}]}}
    m = Machine(tmp_path / "m", bucket.url, services=services,
                extra={"metrics_textfile": str(prom)}).write()  # fmt: skip
    publish(bucket, desired(generation=3))
    agent = make_agent(m)
    before = time.time()
    assert agent.cycle().ok
    s = _samples(prom)
    assert _one(s, "bosun_agent_applied_generation") == 3
    assert _one(s, "bosun_agent_cycle_success") == 1
    assert _one(s, "bosun_agent_store_reachable") == 1
    assert _one(s, "bosun_agent_last_successful_pull_timestamp_seconds") >= before
    assert oct(prom.stat().st_mode & 0o777) == "0o644"
    # a document signed with another machine's key is refused: counted by reason
    bucket.put(desired_key("web-1"), sealed(desired(generation=9), key=machine_key("web-2")))
    assert not agent.cycle().ok
    s = _samples(prom)
    assert _one(s, "bosun_agent_cycle_success") == 0
    assert _one(s, "bosun_agent_applied_generation") == 3
    assert _one(s, "bosun_agent_refusals_total", reason="bad_signature") == 1
    pulled = _one(s, "bosun_agent_last_successful_pull_timestamp_seconds")

    class Down(CountingStore):
        def get(self, key: str, **kw: object) -> object:
            from wire.errors import StoreUnavailable

            raise StoreUnavailable("GET: connection refused")

    agent.store = Down(bucket)
    assert agent.cycle().store_down
    s = _samples(prom)
    assert _one(s, "bosun_agent_store_reachable") == 0
    assert _one(s, "bosun_agent_last_successful_pull_timestamp_seconds") == pulled
    assert [p.name for p in prom.parent.iterdir()] == ["bosun.prom"]  # no temp file left


def test_no_textfile_and_no_client_library_unless_configured(
    machine: Machine, bucket: DirectoryStore, tmp_path: Path
) -> None:
    """Without metrics_textfile the cycle writes no .prom file and the cron path never
    imports prometheus_client."""
    publish(bucket, desired(generation=1))
    code = (
        "import sys\n"
        "from agent.cli import main\n"
        f"sys.argv = ['bosun-agent', '--config', {str(machine.config_path)!r}, 'run', '--once']\n"
        "try:\n    main()\n"
        "except SystemExit as exc:\n    assert exc.code == 0, exc.code\n"
        "assert 'prometheus_client' not in sys.modules\n"
        "assert 'agent.textfile' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert not list(tmp_path.rglob("*.prom"))


def test_a_bad_textfile_path_is_refused(tmp_path: Path, bucket: DirectoryStore) -> None:
    """metrics_textfile must be absolute and end in .prom (node_exporter reads only those)."""
    import pytest

    from agent.config import ConfigError, load_config

    m = Machine(tmp_path / "m", bucket.url, extra={"metrics_textfile": "bosun.txt"}).write()
    with pytest.raises(
        ConfigError, match=r"metrics_textfile: expected an absolute path ending in \.prom"
    ):
        load_config(m.config_path, env={})
