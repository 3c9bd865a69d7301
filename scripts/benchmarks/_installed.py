"""Benchmark support: Bosun as users run it (an installed wheel, compiled bytecode), and the
tree of another git revision (a baseline measured in the same run as the new figures).

`installed(src, dest)` builds the wheel of the source tree `src` (as deploy.md builds it) and
installs it into a new venv at `dest`, with bytecode compiled as pip does on install. The
venv reuses this interpreter's site-packages for the dependencies (a `.pth` line: its own
`.pth` files, such as the development venv's editable-install finder, are not run), so the
venv starts like a machine's: no editable finder, no source compiled at start-up.
"""

from __future__ import annotations

import compileall
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
from pathlib import Path

PRODUCT = ("wire", "agent", "controller")
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check"]


def export_revision(root: Path, rev: str, dest: Path) -> Path:
    """The files of git revision `rev` of the repository at `root`, under `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile() as fh:
        subprocess.run(["git", "-C", str(root), "archive", rev], stdout=fh, check=True, timeout=120)
        fh.seek(0)
        with tarfile.open(fileobj=fh) as tar:
            tar.extractall(dest, filter="data")
    return dest


def compile_tree(src: Path) -> None:
    """Bytecode for a source tree (a checkout run with PYTHONDONTWRITEBYTECODE never has it)."""
    for name in PRODUCT:
        compileall.compile_dir(str(src / name), quiet=1)


def installed(src: Path, dest: Path) -> Path:
    """A venv at `dest` with the wheel of `src` installed; returns its bin directory."""
    build = dest / "build"
    build.mkdir(parents=True, exist_ok=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(src / name, build / name)
    for name in (*PRODUCT, "devkit", "examples"):
        if (src / name).exists():
            shutil.copytree(src / name, build / name, ignore=shutil.ignore_patterns("__pycache__"))
    wheels = dest / "wheels"
    subprocess.run(
        [
            *PIP,
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(wheels),
            str(build),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    venv = dest / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    (purelib / "bosun-deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    (wheel,) = wheels.glob("bosun-*.whl")
    subprocess.run(
        [
            *PIP,
            "--python",
            str(venv / "bin" / "python"),
            "install",
            "--quiet",
            "--no-deps",
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    for name in PRODUCT:  # as pip does unless PYTHONDONTWRITEBYTECODE is set (it is in tests)
        compileall.compile_dir(str(purelib / name), quiet=1)
    shutil.rmtree(build, ignore_errors=True)
    return venv / "bin"
