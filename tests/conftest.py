"""Suite-wide fixtures: no real AWS account is ever reachable, servers bind 127.0.0.1."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

# CI runs the same hypothesis examples every time (a red CI must be reproducible); local
# runs stay random so they keep exploring. `HYPOTHESIS_PROFILE=ci` forces it locally.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI") == "true" or os.environ.get("HYPOTHESIS_PROFILE") == "ci":
    settings.load_profile("ci")

# Session-scoped real servers (moto_server, seaweedfs), registered once for the whole suite:
# importing them into another conftest would start a second instance.
pytest_plugins = ["tests.support.fixtures"]


def pytest_configure(config: pytest.Config) -> None:
    # pytest-xdist's workers run with COLUMNS=80 and LINES=24 set: the CLI's tables would then
    # wrap at 80 columns in the commands tests run (module fixtures copy the environment
    # before any function fixture), unlike a serial run with its output piped
    for name in ("COLUMNS", "LINES"):
        os.environ.pop(name, None)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--heavy", action="store_true", help="also run the heavy load/fault variants")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--heavy"):
        return
    skip = pytest.mark.skip(reason="heavy variant: run with --heavy")
    for item in items:
        if "heavy" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _no_real_aws(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """Remove AWS_* variables and point config files nowhere, so no test reaches a real account."""
    for name in list(os.environ):
        if name.startswith("AWS_") or name.startswith("BOSUN_"):
            monkeypatch.delenv(name, raising=False)
    empty = tmp_path_factory.getbasetemp() / "no-aws-config"
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    yield
