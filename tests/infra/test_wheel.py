"""The wheel machines install carries the product only: no demo, no local servers, no tests."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_ships_no_development_support(tmp_path: Path) -> None:
    """Built as deploy.md builds it: wire/agent/controller only, devkit/ and examples/ left out."""
    # a copy of the sources, so the build leaves nothing (build/, egg-info) in the checkout
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for name in ("wire", "agent", "controller", "devkit", "examples"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps"]
    subprocess.run(
        [*pip_wheel, "--no-build-isolation", "--wheel-dir", str(tmp_path), str(src)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    (wheel,) = tmp_path.glob("bosun-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.startswith("bosun-")}
    assert tops == {"wire", "agent", "controller"}
    assert not [n for n in names if "demo" in n or "local_s3" in n]
    # the rooms are in it, each with its package marker
    for room in ("cli", "operations", "shell", "planner", "spec", "provision"):
        assert f"controller/{room}/__init__.py" in names
