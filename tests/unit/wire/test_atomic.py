"""`wire.atomic.write_atomic`: the order that makes a write crash-safe (docs/security.md#crash-safe-apply)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from wire import atomic


def test_data_is_synced_before_the_rename_and_the_directory_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fsync(file) -> rename -> fsync(directory): a crash leaves the old or the new content,
    and the rename itself survives a power loss."""
    calls: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        calls.append("fsync dir" if os.path.isdir(f"/proc/self/fd/{fd}") else "fsync file")
        real_fsync(fd)

    def replace(src: str, dst: str) -> None:
        calls.append("rename")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    target = tmp_path / "state.json"
    atomic.write_atomic(target, b"new")
    assert calls == ["fsync file", "rename", "fsync dir"]
    assert target.read_bytes() == b"new"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(atomic.TMP_PREFIX)]


def test_short_writes_are_continued_never_renamed_torn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """os.write may write less than asked (a full disk, a signal): the rest is written
    before the rename; a write that makes no progress fails and the old file stays."""
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, bytes(data[:3])))
    target = tmp_path / "state.json"
    atomic.write_atomic(target, b"0123456789" * 10)
    assert target.read_bytes() == b"0123456789" * 10
    monkeypatch.setattr(os, "write", lambda fd, data: 0)
    with pytest.raises(OSError, match="no progress"):
        atomic.write_atomic(target, b"torn")
    assert target.read_bytes() == b"0123456789" * 10
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temp file left
