"""Render, then check, then switch: the files of a desired document before anything runs.

    render every file of the service          a template error: nothing written
    for each file whose bytes change:
        write it staged, beside the live file  (<dir>/.<name>.bosun-staged, fsynced)
        run its `check` on the staged file      ({file} in argv, BOSUN_FILE in the env)
    any check refuses: remove the staged files, raise; nothing live was touched
    the apply then renames each staged file over the live one and runs the reload hook

Staging happens before the apply transaction starts (`agent.apply`), so a template error
or a refused config leaves the live files, the running processes and the hooks alone: no
rollback is needed because nothing moved. The error (with the checker's output) is
reported as `applied.error`, and the next valid document applies.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from agent.config import FileSpec, ServiceConfig
from agent.drivers import ApplyError, Target
from agent.drivers.commands import run_hook
from agent.drivers.files import current, render
from wire.atomic import write_atomic
from wire.records import record

STAGED_SUFFIX = ".bosun-staged"


@record
class Staged:
    """A rendered file: its bytes, and the staged copy its check accepted (if it has one)."""

    spec: FileSpec
    content: bytes
    path: Path | None = None


def staged_path(live: Path) -> Path:
    return live.with_name(f".{live.name}{STAGED_SUFFIX}")


def stage(svc: ServiceConfig, target: Target) -> list[Staged]:
    """Render `svc`'s files for `target` and check the changed ones; ApplyError if any fails."""
    rendered = [(spec, render(spec, target)) for spec in svc.files]
    staged: list[Staged] = []
    try:
        for spec, content in rendered:
            live = Path(spec.path)
            previous, previous_mode = current(live)
            if spec.check is None or (previous == content and previous_mode == int(spec.mode, 8)):
                staged.append(Staged(spec, content))
                continue
            path = staged_path(live)
            try:
                live.parent.mkdir(parents=True, exist_ok=True)
                write_atomic(path, content, int(spec.mode, 8))
            except OSError as exc:
                raise ApplyError(f"{path}: cannot stage: {exc.strerror}") from None
            staged.append(Staged(spec, content, path))
            _check(spec, path, svc, target)
    except ApplyError:
        discard(staged)
        raise
    return staged


def _check(spec: FileSpec, path: Path, svc: ServiceConfig, target: Target) -> None:
    assert spec.check is not None
    try:
        run_hook(
            "check",
            spec.check,
            fields={**target.fields, "file": str(path)},
            env={**target.env(), "BOSUN_FILE": str(path)},
            timeout=svc.commands.timeout,
            cwd=svc.commands.cwd,
            what=f"{spec.path}: check",
        )
    except ApplyError as exc:
        raise ApplyError(
            f"{exc}; the live file and the running service were left as they were"
        ) from None


def discard(staged: list[Staged]) -> None:
    """Remove staged files that were not switched in (an error, or nothing to do)."""
    for item in staged:
        if item.path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(item.path)
